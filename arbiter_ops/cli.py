"""The Typer app: global options -> Options, one short function per command, one error boundary.

Every option's default and help come from its command's options dataclass (``commands/<name>.py``), so they
are written once; a function here only declares which flags and arguments map to those fields, and what Typer
itself must check (positive seconds, ``min=``). Only typer, click and the light command modules are imported at
module level: `arbiter-ops --help` must not pay for boto3, stripe, jinja2, pydantic or moto.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from arbiter_ops import _click as click
from arbiter_ops import completion
from arbiter_ops.cli_params import argument as _argument
from arbiter_ops.cli_params import not_empty as _not_empty
from arbiter_ops.cli_params import option as _option
from arbiter_ops.cli_params import show_version as _show_version
from arbiter_ops.commands import (
    bootstrap,
    build,
    check_secrets,
    deploy,
    history,
    local,
    logs,
    migrate,
    promote,
    prune,
    push,
    render,
    rollback,
    run,
    secrets,
    smoke_test,
    status,
    stripe_webhook,
    unlock,
)
from arbiter_ops.core.context import Options
from arbiter_ops.runner import CommandRun, run_app

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
secrets_app = typer.Typer(
    help="The environment's secret: import a dotenv file, set one key, diff two environments.", no_args_is_help=True
)
app.add_typer(secrets_app, name="secrets")


def _invoke(ctx: typer.Context, name: str, run: Callable[[Any, Any], int], cls: type, values: dict[str, Any]) -> int:
    """Build the command's options from what Typer parsed, and run it inside the one error boundary."""
    with CommandRun(ctx.obj, name) as command_run:
        return run(command_run.ctx, build(cls, values))


@app.callback()
def _global(
    ctx: typer.Context,
    config: str | None = typer.Option(
        None, "--config", envvar="ARBITER_OPS_CONFIG", metavar="FILE", help="Config file (else ./arbiter-ops.toml)."
    ),
    env: str = typer.Option(
        "local", "--env", envvar="ARBITER_OPS_ENV", metavar="NAME", help="Environment to act on.",
        autocompletion=completion.environments,
    ),
    output: str = typer.Option(
        "text", "--output", envvar="ARBITER_OPS_OUTPUT", metavar="[text|json]", help="json: one document on stdout.",
        autocompletion=completion.outputs,
    ),
    region: str | None = typer.Option(None, "--region", metavar="REGION", help="AWS region (else AWS_REGION, config)."),
    profile: str | None = typer.Option(None, "--profile", envvar="AWS_PROFILE", metavar="NAME", help="AWS profile."),
    yes: bool = typer.Option(False, "--yes", envvar="ARBITER_OPS_YES", help="Skip confirmation (CI)."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More detail (repeatable)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Less detail."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version."),
    _show_completion: str | None = completion.option("--show-completion"),
    _install_completion: str | None = completion.option("--install-completion"),
) -> None:
    if output not in ("text", "json"):
        raise click.BadParameter(f"must be 'text' or 'json' (got {output[:40]!r})", param_hint="--output")
    for flag, value in (("--config", config), ("--region", region), ("--profile", profile)):
        _not_empty(flag)(value)
    ctx.obj = Options(config, env, output, region, profile, yes, verbose, quiet)


R = render.RenderOptions


@app.command("render")
def render_(
    ctx: typer.Context,
    service: str = _argument(R, "service"),
    image_tag: str | None = _option(R, "image_tag", "--image-tag"),
    out: str | None = _option(R, "out", "--out"),
    diff: bool = _option(R, "diff", "--diff"),
) -> int:
    """Render a service's ECS task definition for --env from its template, and validate it.

    Prints JSON ready for `aws ecs register-task-definition --cli-input-json`.
    """
    return _invoke(ctx, "render", render.run, R, locals())


CS = check_secrets.CheckSecretsOptions


@app.command("check-secrets")
def check_secrets_(
    ctx: typer.Context,
    services: list[str] = _argument(CS, "services"),
    task_def: list[str] = _option(CS, "task_def", "--task-def"),
) -> int:
    """Validate secret key coverage and hygiene of the task definitions against Secrets Manager.

    Every `valueFrom` must name an existing secret and JSON key; required variables, Stripe key mode,
    AUTH_SECRET = NEXTAUTH_SECRET, APP_ENV/APP_MODE, origins and URLs are checked. No value is ever printed.
    """
    return _invoke(ctx, "check-secrets", check_secrets.run, CS, locals())


P = push.PushOptions


@app.command("push")
def push_(
    ctx: typer.Context,
    services: list[str] = _argument(P, "services"),
    tag: str | None = _option(P, "tag", "--tag", "--image-tag"),
    allow_dirty: bool = _option(P, "allow_dirty", "--allow-dirty"),
    force: bool = _option(P, "force", "--force"),
    no_create: bool = _option(P, "no_create", "--no-create"),
) -> int:
    """Build each service's image and push it to ECR under an immutable tag.

    ECR login with the authorization token (password on stdin), docker build of the service's context
    (platform linux/amd64 by default), docker push, and the pushed digest. A tag already in ECR is skipped:
    nothing is built. A missing repository is created with IMMUTABLE tags and scan on push.
    """
    return _invoke(ctx, "push", push.run, P, locals())


PR = promote.PromoteOptions


@app.command("promote")
def promote_(
    ctx: typer.Context,
    services: list[str] = _argument(PR, "services"),
    from_tag: str = _option(PR, "from_tag", "--from-tag", default=...),
    to_tag: str = _option(PR, "to_tag", "--to-tag", default=...),
) -> int:
    """Give an image already in ECR another tag, without rebuilding (BatchGetImage + PutImage).

    Idempotent: a tag that already names the same image is left alone. In an IMMUTABLE repository a tag
    that names another image is never moved.
    """
    return _invoke(ctx, "promote", promote.run, PR, locals())


M = migrate.MigrateOptions


@app.command("migrate")
def migrate_(
    ctx: typer.Context,
    image_tag: str | None = _option(M, "image_tag", "--image-tag"),
    timeout: float | None = _option(M, "timeout", "--timeout", callback=click.positive_seconds),
    command: str | None = _option(M, "command", "--command"),
    preflight: bool = _option(M, "preflight", "--preflight"),
    database_url: str | None = _option(M, "database_url", "--database-url"),
) -> int:
    """Run Alembic migrations as a one-off ECS task of the backend task definition, wait, show its logs.

    The verdict is the container's exit code. --preflight checks PostgreSQL instead: server version,
    the `vector` extension, and the current Alembic revision.
    """
    return _invoke(ctx, "migrate", migrate.run, M, locals())


SW = stripe_webhook.StripeWebhookOptions


@app.command("stripe-webhook")
def stripe_webhook_(
    ctx: typer.Context,
    dry_run: bool = _option(SW, "dry_run", "--dry-run"),
    prune: bool = _option(SW, "prune", "--prune"),
    rotate: bool = _option(SW, "rotate", "--rotate"),
    check: bool = _option(SW, "check", "--check"),
    timeout: float = _option(SW, "timeout", "--timeout", callback=click.positive_seconds),
) -> int:
    """Ensure exactly one Stripe webhook endpoint at <base_url>/api/v1/billing/webhooks/stripe with the
    required events, and its signing secret stored in the environment's secret (STRIPE_WEBHOOK_SECRET)."""
    return _invoke(ctx, "stripe-webhook", stripe_webhook.run, SW, locals())


ST = smoke_test.SmokeTestOptions


@app.command("smoke-test")
def smoke_test_(
    ctx: typer.Context,
    only: list[str] = _option(ST, "only", "--only"),
    skip: list[str] = _option(ST, "skip", "--skip"),
) -> int:
    """The go-live checklist: infrastructure checks (read-only) and HTTP checks, run concurrently."""
    return _invoke(ctx, "smoke-test", smoke_test.run, ST, locals())


D = deploy.DeployOptions


@app.command("deploy")
def deploy_(
    ctx: typer.Context,
    services: list[str] = _argument(D, "services"),
    image_tag: str | None = _option(D, "image_tag", "--image-tag"),
    dry_run: bool = _option(D, "dry_run", "--dry-run"),
    no_migrate: bool = _option(D, "no_migrate", "--no-migrate"),
    no_smoke: bool = _option(D, "no_smoke", "--no-smoke"),
    timeout: float = _option(D, "timeout", "--timeout", callback=click.positive_seconds),
    max_failed_tasks: int = _option(D, "max_failed_tasks", "--max-failed-tasks", min=1),
    stall_timeout: float = _option(D, "stall_timeout", "--stall-timeout", callback=click.positive("--stall-timeout")),
    force_new_deployment: bool = _option(D, "force_new_deployment", "--force-new-deployment"),
    lock_wait: float = _option(D, "lock_wait", "--lock-wait", callback=click.seconds),
    seed_catalog_if_empty: bool = _option(D, "seed_catalog_if_empty", "--seed-catalog-if-empty"),
) -> int:
    """The whole pipeline: lock, render, check-secrets, images, register, migrate, update, wait, smoke-test.

    A failed rollout or smoke test rolls every service back (exit 1); a failed rollback exits 4.
    """
    return _invoke(ctx, "deploy", deploy.run, D, locals())


RB = rollback.RollbackOptions


@app.command("rollback")
def rollback_(
    ctx: typer.Context,
    service: str = _argument(RB, "service"),
    to_revision: str | None = _option(RB, "to_revision", "--to-revision", callback=click.revision),
    timeout: float = _option(RB, "timeout", "--timeout", callback=click.positive_seconds),
) -> int:
    """Return a service to its previous task definition (or --to-revision N) and wait until stable."""
    return _invoke(ctx, "rollback", rollback.run, RB, locals())


RN = run.RunOptions


@app.command("run")
def run_(
    ctx: typer.Context,
    service: str = _argument(RN, "service"),
    command: list[str] = _argument(RN, "command"),
    image_tag: str | None = _option(RN, "image_tag", "--image-tag"),
    timeout: float = _option(RN, "timeout", "--timeout", callback=click.positive_seconds),
) -> int:
    """Run a command as a one-off task of a service's task definition, with its network; stream its logs.

    The verdict is the container's exit code. Example: `arbiter-ops run backend -- python -m scripts.seed_catalog`.
    """
    return _invoke(ctx, "run", run.run, RN, locals())


def _plain_command(path: str, run: Callable[[Any, Any], int], cls: type, summary: str) -> None:
    """A command without options of its own (`status`, `bootstrap`, `local up`)."""

    def command(ctx: typer.Context) -> int:
        return _invoke(ctx, path, run, cls, {})

    command.__doc__ = summary
    group, _, verb = path.rpartition(" ")
    (local_app if group == "local" else app).command(verb)(command)


_plain_command(
    "status", status.run, status.StatusOptions,
    "One table of the environment: services, revisions, images, running/desired, rollouts, last deploys.",
)  # fmt: skip
_plain_command(
    "bootstrap", bootstrap.run, bootstrap.BootstrapOptions,
    "Create what arbiter-ops needs in an account (lock/audit table, ECR repositories with their lifecycle policy, "
    "log groups), idempotently, and print the IAM policies its commands need.",
)  # fmt: skip


LG = logs.LogsOptions


@app.command("logs")
def logs_(
    ctx: typer.Context,
    service: str = _argument(LG, "service"),
    since: str = _option(LG, "since", "--since", callback=click.duration("--since")),
    follow: bool = _option(LG, "follow", "--follow", "-f"),
    filter: str | None = _option(LG, "filter", "--filter"),
    task: str | None = _option(LG, "task", "--task"),
) -> int:
    """A service's CloudWatch logs, every task's lines merged in time order (--follow: until Ctrl-C)."""
    return _invoke(ctx, "logs", logs.run, LG, locals())


H, PN = history.HistoryOptions, prune.PruneOptions


@app.command("history")
def history_(
    ctx: typer.Context,
    service: str | None = _argument(H, "service"),
    limit: int = _option(H, "limit", "--limit", min=1),
) -> int:
    """The audit records, newest first: deploys, rollbacks, migrations, one-off runs; who, when, verdict."""
    return _invoke(ctx, "history", history.run, H, locals())


@app.command("prune")
def prune_(
    ctx: typer.Context,
    services: list[str] = _argument(PN, "services"),
    keep: int = _option(PN, "keep", "--keep", min=1, default=...),
    dry_run: bool = _option(PN, "dry_run", "--dry-run"),
) -> int:
    """Deregister old task-definition revisions; never the live one, a running deployment's or the rollback target."""
    return _invoke(ctx, "prune", prune.run, PN, locals())


U = unlock.UnlockOptions


@app.command("unlock")
def unlock_(ctx: typer.Context, force: bool = _option(U, "force", "--force")) -> int:
    """Clear the environment's deploy lock left by a crashed run."""
    return _invoke(ctx, "unlock", unlock.run, U, locals())


SI, SS, SD = secrets.SecretsImportOptions, secrets.SecretsSetOptions, secrets.SecretsDiffOptions


@secrets_app.command("import")
def secrets_import_(
    ctx: typer.Context,
    file: str = _argument(SI, "file"),
    dry_run: bool = _option(SI, "dry_run", "--dry-run"),
    replace: bool = _option(SI, "replace", "--replace"),
) -> int:
    """Merge a dotenv file into the environment's secret: validated first, a value-free plan, compare-and-set."""
    return _invoke(ctx, "secrets import", secrets.run_import, SI, locals())


@secrets_app.command("set")
def secrets_set_(
    ctx: typer.Context, key: str = _argument(SS, "key"), dry_run: bool = _option(SS, "dry_run", "--dry-run")
) -> int:
    """Set one KEY of the environment's secret to the one value read from stdin (never from the command line)."""
    return _invoke(ctx, "secrets set", secrets.run_set, SS, locals())


@secrets_app.command("diff")
def secrets_diff_(ctx: typer.Context, env_a: str = _argument(SD, "env_a"), env_b: str = _argument(SD, "env_b")) -> int:
    """Two environments' secrets side by side: keys only in one, referenced keys missing, kinds that differ."""
    return _invoke(ctx, "secrets diff", secrets.run_diff, SD, locals())


L = local.LocalOptions
_plain_command("local up", local.up, L, "Start a persistent local sandbox in the background: AWS, Stripe, Arbiter API.")
_plain_command("local status", local.status, L, "Describe the persistent local sandbox.")
_plain_command("local down", local.down, L, "Stop the persistent local sandbox and every process it started.")


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(list(sys.argv[1:] if argv is None else argv)))


def run_cli(argv: list[str]) -> int:
    return run_app(app, argv)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("COLUMNS", "100")
    main()
