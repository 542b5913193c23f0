"""The Typer app: global options -> Context, one short function per command, one error boundary.

Only typer (and click) are imported at module level: `arbiter-ops --help` must not pay for boto3,
stripe, jinja2, pydantic or moto. Command modules are imported inside the command functions.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from arbiter_ops import __version__
from arbiter_ops import _click as click
from arbiter_ops.core.errors import OpsError
from arbiter_ops.runner import CommandRun, GlobalOpts, hoist_global_options, report_failure

app = typer.Typer(
    name="arbiter-ops",
    help="Deployment operations for Arbiter AI on AWS ECS Fargate. Default environment: `local`, an "
    "embedded sandbox on 127.0.0.1; nothing real is touched unless --env names an environment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
local_app = typer.Typer(help="Start, describe or stop a persistent local sandbox.", no_args_is_help=True)
app.add_typer(local_app, name="local")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"arbiter-ops {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    config: str | None = typer.Option(None, "--config", envvar="ARBITER_OPS_CONFIG", help="Config file."),
    env: str = typer.Option("local", "--env", envvar="ARBITER_OPS_ENV", help="Environment to act on."),
    output: str = typer.Option("text", "--output", envvar="ARBITER_OPS_OUTPUT", help="text or json."),
    region: str | None = typer.Option(None, "--region", help="AWS region (else AWS_REGION, else config)."),
    profile: str | None = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile."),
    yes: bool = typer.Option(False, "--yes", envvar="ARBITER_OPS_YES", help="Skip confirmation (CI)."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More detail (repeatable)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Less detail."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    if output not in ("text", "json"):
        raise click.BadParameter("must be 'text' or 'json'", param_hint="--output")
    ctx.obj = GlobalOpts(config, env, output, region, profile, yes, verbose, quiet)


def _run(ctx: typer.Context, name: str) -> CommandRun:
    return CommandRun(ctx.obj, name)


@app.command()
def render(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="backend or frontend (or any service in the config)."),
    image_tag: str | None = typer.Option(
        None, "--image-tag", help="Image tag (default: the image the live service runs, else the short git SHA)."
    ),
    out: str | None = typer.Option(None, "--out", help="Write the JSON to this file instead of stdout."),
    diff: bool = typer.Option(False, "--diff", help="Show the difference against the live task definition."),
) -> int:
    """Render a service's ECS task definition for --env from its template, and validate it.

    Prints JSON ready for `aws ecs register-task-definition --cli-input-json`.
    """
    with _run(ctx, "render") as run:
        from arbiter_ops.commands.render import render_command

        return render_command(run.ctx, service, image_tag=image_tag, out=out, diff=diff)


@app.command("check-secrets")
def check_secrets(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Services to check (default: all)."),
    task_def: list[str] = typer.Option(
        [], "--task-def", help="Check this task definition file instead of rendering (repeatable)."
    ),
) -> int:
    """Validate secret key coverage and hygiene of the task definitions against Secrets Manager.

    Every `valueFrom` must name an existing secret and JSON key; required variables, Stripe key mode,
    AUTH_SECRET = NEXTAUTH_SECRET, APP_ENV/APP_MODE, origins and URLs are checked. No value is ever printed.
    """
    with _run(ctx, "check-secrets") as run:
        from arbiter_ops.commands.check_secrets import check_secrets_command

        return check_secrets_command(run.ctx, services or [], task_defs=task_def)


@app.command()
def push(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Services to push (default: all)."),
    tag: str | None = typer.Option(
        None, "--tag", "--image-tag", help="Image tag (default: the short git SHA; --image-tag as in deploy)."
    ),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Push even with uncommitted changes."),
    force: bool = typer.Option(
        False, "--force", help="Rebuild and push a tag already in ECR (refused by IMMUTABLE repositories)."
    ),
    no_create: bool = typer.Option(False, "--no-create", help="Fail instead of creating a missing ECR repository."),
) -> int:
    """Build each service's image and push it to ECR under an immutable tag.

    ECR login with the authorization token (password on stdin), docker build of the service's context
    (platform linux/amd64 by default), docker push, and the pushed digest. A tag already in ECR is skipped:
    nothing is built. A missing repository is created with IMMUTABLE tags and scan on push.
    """
    with _run(ctx, "push") as run:
        from arbiter_ops.commands.push import push_command

        return push_command(run.ctx, services or [], tag=tag, allow_dirty=allow_dirty, force=force, no_create=no_create)


@app.command()
def promote(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Services to promote (default: all)."),
    from_tag: str = typer.Option(..., "--from-tag", help="The tag the image has now."),
    to_tag: str = typer.Option(..., "--to-tag", help="The tag to give it."),
) -> int:
    """Give an image already in ECR another tag, without rebuilding (BatchGetImage + PutImage).

    Idempotent: a tag that already names the same image is left alone. In an IMMUTABLE repository a tag
    that names another image is never moved.
    """
    with _run(ctx, "promote") as run:
        from arbiter_ops.commands.promote import promote_command

        return promote_command(run.ctx, services or [], from_tag=from_tag, to_tag=to_tag)


def _positive_timeout(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter("must be a positive number of seconds", param_hint="--timeout")
    return value


@app.command()
def migrate(
    ctx: typer.Context,
    image_tag: str | None = typer.Option(None, "--image-tag", help="Backend image tag (default: the live one)."),
    timeout: float | None = typer.Option(
        None, "--timeout", callback=_positive_timeout, help="Seconds to wait for the task (default 900)."
    ),
    command: str | None = typer.Option(None, "--command", help='Container command (default "alembic upgrade head").'),
    preflight: bool = typer.Option(False, "--preflight", help="Check the database instead of migrating."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Preflight this URL instead of DATABASE_URL from the environment's secret."
    ),
) -> int:
    """Run Alembic migrations as a one-off ECS task of the backend task definition, wait, show its logs.

    The verdict is the container's exit code. --preflight checks PostgreSQL instead: server version,
    the `vector` extension, and the current Alembic revision.
    """
    with _run(ctx, "migrate") as run:
        from arbiter_ops.commands.migrate import migrate_command

        return migrate_command(
            run.ctx,
            image_tag=image_tag,
            timeout=timeout,
            command=command,
            preflight=preflight,
            database_url=database_url,
        )


@app.command("stripe-webhook")
def stripe_webhook(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; change nothing."),
    prune: bool = typer.Option(False, "--prune", help="Delete other endpoints on the same URL."),
    rotate: bool = typer.Option(False, "--rotate", help="Recreate the endpoint to get (and store) a new secret."),
    check: bool = typer.Option(False, "--check", help="Report the endpoint and prove the stored secret works."),
) -> int:
    """Ensure exactly one Stripe webhook endpoint at <base_url>/api/v1/billing/webhooks/stripe with the
    required events, and its signing secret stored in the environment's secret (STRIPE_WEBHOOK_SECRET)."""
    with _run(ctx, "stripe-webhook") as run:
        from arbiter_ops.commands.stripe_webhook import stripe_webhook_command

        return stripe_webhook_command(run.ctx, dry_run=dry_run, prune=prune, rotate=rotate, check=check)


@app.command("smoke-test")
def smoke_test(
    ctx: typer.Context,
    only: list[str] = typer.Option([], "--only", help="Run only this check id (repeatable)."),
    skip: list[str] = typer.Option([], "--skip", help="Skip this check id (repeatable)."),
) -> int:
    """The go-live checklist: infrastructure checks (read-only) and HTTP checks, run concurrently."""
    with _run(ctx, "smoke-test") as run:
        from arbiter_ops.commands.smoke_test import smoke_test_command

        return smoke_test_command(run.ctx, only=only, skip=skip)


@app.command()
def deploy(
    ctx: typer.Context,
    services: list[str] = typer.Argument(None, help="Services to deploy (default: all)."),
    image_tag: str | None = typer.Option(None, "--image-tag", help="Image tag (default: the short git SHA)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and per-service diffs; change nothing."),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Skip the migration gate."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip the smoke test after the rollout."),
    timeout: float | None = typer.Option(
        None, "--timeout", callback=_positive_timeout, help="Seconds to wait for each rollout (default 900)."
    ),
    force_new_deployment: bool = typer.Option(
        False, "--force-new-deployment", help="Restart tasks even on the same revision (e.g. after a secret changed)."
    ),
    lock_wait: float = typer.Option(0.0, "--lock-wait", min=0, help="Seconds to wait for another deploy's lock."),
) -> int:
    """The whole pipeline: lock, render, check-secrets, images, register, migrate, update, wait, smoke-test.

    A failed rollout or smoke test rolls every service back (exit 1); a failed rollback exits 4.
    """
    with _run(ctx, "deploy") as run:
        from arbiter_ops.commands.deploy import deploy_command

        return deploy_command(
            run.ctx,
            services or [],
            image_tag=image_tag,
            dry_run=dry_run,
            no_migrate=no_migrate,
            no_smoke=no_smoke,
            timeout=timeout,
            force_new_deployment=force_new_deployment,
            lock_wait=lock_wait,
        )


@app.command()
def rollback(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="The service to put back."),
    to_revision: int | None = typer.Option(None, "--to-revision", min=1, help="Task definition revision number."),
    timeout: float | None = typer.Option(
        None, "--timeout", callback=_positive_timeout, help="Seconds to wait (default 900)."
    ),
) -> int:
    """Return a service to its previous task definition (or --to-revision N) and wait until stable."""
    with _run(ctx, "rollback") as run:
        from arbiter_ops.commands.rollback import rollback_command

        return rollback_command(run.ctx, service, to_revision=to_revision, timeout=timeout)


@app.command()
def status(ctx: typer.Context) -> int:
    """One table of the environment: services, revisions, images, running/desired, rollouts, last deploys."""
    with _run(ctx, "status") as run:
        from arbiter_ops.commands.status import status_command

        return status_command(run.ctx)


@app.command()
def bootstrap(ctx: typer.Context) -> int:
    """Create what arbiter-ops needs in an account (lock/audit table, ECR repositories, log groups),
    idempotently, and print the IAM policies its commands need."""
    with _run(ctx, "bootstrap") as run:
        from arbiter_ops.commands.admin import bootstrap_command

        return bootstrap_command(run.ctx)


@app.command()
def unlock(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Required: clear the lock whoever holds it."),
) -> int:
    """Clear the environment's deploy lock left by a crashed run."""
    with _run(ctx, "unlock") as run:
        from arbiter_ops.commands.admin import unlock_command

        return unlock_command(run.ctx, force=force)


@local_app.command("up")
def local_up(ctx: typer.Context) -> int:
    """Start a persistent local sandbox in the background (AWS, Stripe and Arbiter API on 127.0.0.1)."""
    with _run(ctx, "local up") as run:
        from arbiter_ops.commands.local import up

        return up(run.ctx)


@local_app.command("status")
def local_status(ctx: typer.Context) -> int:
    """Describe the persistent local sandbox."""
    with _run(ctx, "local status") as run:
        from arbiter_ops.commands.local import status

        return status(run.ctx)


@local_app.command("down")
def local_down(ctx: typer.Context) -> int:
    """Stop the persistent local sandbox and every process it started."""
    with _run(ctx, "local down") as run:
        from arbiter_ops.commands.local import down

        return down(run.ctx)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(list(sys.argv[1:] if argv is None else argv)))


def run_cli(argv: list[str]) -> int:
    args = hoist_global_options(argv)
    command = typer.main.get_command(app)
    try:
        rv: Any = command.main(args=args, prog_name="arbiter-ops", standalone_mode=False)
    except click.Exit as exc:
        return int(exc.exit_code or 0)
    except click.Abort:
        return report_failure(args, OpsError("aborted", code="aborted"), exit_code=130)
    except click.ClickException as exc:
        if click.NoArgsIsHelpError is not None and isinstance(exc, click.NoArgsIsHelpError):
            sys.stderr.write(exc.format_message() + "\n")  # the help text itself
            return 2
        return report_failure(args, exc)
    except OpsError as exc:
        return report_failure(args, exc)
    except KeyboardInterrupt:
        return report_failure(args, OpsError("interrupted", code="interrupted"), exit_code=130)
    except Exception as exc:  # a bug of ours: one line, the traceback only with -v
        return report_failure(args, exc)
    return int(rv) if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("COLUMNS", "100")
    main()
