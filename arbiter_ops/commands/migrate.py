"""`migrate`: Alembic migrations as a gated one-off ECS task; `migrate --preflight`: is the database ready?

Normal mode, in order (production asks for confirmation or --yes first, before any AWS call):
1. resolve the image tag (--image-tag, else the live one), render the backend task definition for it, run
   check-secrets on it as deploy does (an error is exit 1: ECS would fail the task at start), and check
   that the image exists in ECR (a missing tag is exit 1 before anything runs);
2. preflight the database when it is reachable from here (printed as skipped otherwise; a failed check
   stops here with exit 1: `CREATE EXTENSION vector` would fail inside the task anyway);
3. register the task definition unless the latest revision is identical, run the migration task with the
   backend service's network configuration, print its log lines live (stderr), wait until it stops.
Exit 0 ok, 1 failed (non-zero exit, failed to start, check-secrets or preflight failed, image missing),
3 timeout.

--preflight: exit 0 pass, 1 a check failed, 3 the database cannot be reached from here (an external
failure per the contract: never a silent pass, and not a "no" either, since nothing was checked).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import ExternalError, OpsError, Refused, UsageError
from arbiter_ops.core.polling import WAIT_TIMEOUT
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.db.migrations import MigrationResult
    from arbiter_ops.db.preflight import PreflightResult

FAILURE_LINES = 10  # log lines repeated under a failure summary


@dataclass(frozen=True)
class MigrateOptions:
    image_tag: str | None = option(None, "Backend image tag (default: the live one).")
    timeout: float | None = option(
        None, f"Seconds to wait for the task (default {WAIT_TIMEOUT:g}; with --preflight, to connect: 5)."
    )
    command: str | None = option(None, 'Container command (default "alembic upgrade head").')
    preflight: bool = option(False, "Check the database instead of migrating.")
    database_url: str | None = option(
        None, "Preflight this URL instead of DATABASE_URL from the environment's secret."
    )


def run(ctx: Context, opts: MigrateOptions) -> int:
    from arbiter_ops.core.redact import REDACTOR
    from arbiter_ops.db.preflight import CONNECT_TIMEOUT

    image_tag, timeout, command, database_url = opts.image_tag, opts.timeout, opts.command, opts.database_url
    preflight = opts.preflight
    if database_url:
        REDACTOR.add(database_url)  # first thing: it carries a password
    if preflight:
        if image_tag or command:
            raise UsageError("--preflight checks the database only: --image-tag and --command do not apply")
        return _preflight_only(ctx, database_url, timeout or CONNECT_TIMEOUT)
    return _migrate(ctx, image_tag, timeout or WAIT_TIMEOUT, _argv(command), database_url)


def _argv(command: str | None) -> list[str]:
    from arbiter_ops.db.migrations import DEFAULT_COMMAND

    if command is None:
        return list(DEFAULT_COMMAND)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--command cannot be parsed: {exc}", hint='quote it like a shell would: "a b c"') from None
    if not argv:
        raise UsageError("--command is empty", hint=f'the default is "{" ".join(DEFAULT_COMMAND)}"')
    return argv


# -- the database URL --------------------------------------------------------------------------
def _resolve_url(ctx: Context, explicit: str | None) -> tuple[str, str]:
    from arbiter_ops.db.migrations import database_url_from_secret

    return (explicit, "--database-url") if explicit else database_url_from_secret(ctx)


# -- preflight ---------------------------------------------------------------------------------
def _preflight_only(ctx: Context, explicit: str | None, connect_timeout: float) -> int:
    from arbiter_ops.core.redact import REDACTOR

    url, source = _resolve_url(ctx, explicit)
    ctx.output.info(f"preflight: connecting ({source})")
    result = _checked(url, source, connect_timeout)
    exit_code = {"pass": 0, "fail": 1, "skipped": 3}[result.status]
    out = ctx.output
    if result.status != "pass":
        out.annotate("error", f"arbiter-ops migrate --preflight {result.status}", result.reason)

    def text() -> None:
        for line in _preflight_lines(result, source):
            out.human.print(REDACTOR(line), markup=False)

    if out.mode == "json" and not out.quiet:
        out.info(_preflight_lines(result, source)[-1])
    doc = {"mode": "preflight", "preflight": {**result.as_json(), "source": source}}
    if result.status == "skipped":
        doc["error"] = {"code": "database-unreachable", "message": result.reason}
    return finish(ctx, doc, result.ok, text=text, exit_code=exit_code)


def _checked(url: str, source: str, connect_timeout: float) -> PreflightResult:
    from arbiter_ops.db.preflight import EXPECTED_MAJOR
    from arbiter_ops.db.preflight import preflight as check_database

    try:
        return check_database(url, EXPECTED_MAJOR, connect_timeout=connect_timeout)
    except UsageError as exc:
        if source == "--database-url":
            raise  # the user's own input: exit 2
        # A malformed URL in the secret is the environment's problem, and the app would fail on it too.
        raise Refused(f"{source}: {exc.message}", hint="`arbiter-ops check-secrets` reports it as bad-url") from None


def _preflight_lines(result: PreflightResult, source: str) -> list[str]:
    lines = [f"preflight of {result.target} ({source})"]
    lines += [f"  {c.status:<5} {c.id:<15} {c.detail}" for c in result.checks]
    if result.status == "pass":
        lines.append("preflight passed")
    elif result.status == "fail":
        lines.append(f"preflight failed: {result.reason}")
    else:
        lines.append(f"preflight skipped: {result.reason}")
    return lines


def _preflight_before_migration(ctx: Context, explicit: str | None) -> dict[str, Any]:
    """The preflight in front of a migration: run when the database is reachable, printed either way."""
    from arbiter_ops.db.preflight import CONNECT_TIMEOUT

    try:
        url, source = _resolve_url(ctx, explicit)
    except (Refused, ExternalError) as exc:
        ctx.output.info(f"preflight skipped: {exc.line()}")
        return {"status": "skipped", "reason": exc.line()}
    result = _checked(url, source, CONNECT_TIMEOUT)
    for line in _preflight_lines(result, source):
        ctx.output.info(line)
    return {**result.as_json(), "source": source}


# -- the migration -----------------------------------------------------------------------------
def _migrate(ctx: Context, image_tag: str | None, timeout: float, argv: list[str], explicit_url: str | None) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.core.polling import PollPolicy
    from arbiter_ops.db.migrations import BACKEND, MigrationTimeout, run_migration, verify_schema
    from arbiter_ops.ecs.api import register_unless_identical
    from arbiter_ops.ecs.render import render_service, resolve_image_tag
    from arbiter_ops.ecs.taskdef import check_image_tag
    from arbiter_ops.images.ecr import require_task_image
    from arbiter_ops.secrets.check import gate

    poll = PollPolicy.from_env()  # bad input (exit 2) before any AWS call or prompt
    if image_tag:
        check_image_tag(image_tag)
    # Confirm first: a CI job without --yes is refused before any AWS call, not after a minute of checks.
    what = f"backend image {image_tag}" if image_tag else "the backend image the live service runs"
    ctx.confirm_production(f"run `{' '.join(argv)}` with {what}")
    tag = resolve_image_tag(ctx, BACKEND, image_tag)
    td = render_service(ctx, BACKEND, tag)
    # As deploy does: a secret reference ECS cannot resolve would only fail the task once it starts.
    secrets = gate(ctx, {BACKEND: td})
    image = require_task_image(ctx, td, ctx.config.service(BACKEND).container, tag)
    doc: dict[str, Any] = {"image_tag": tag, "image": image, "container_command": argv, "check_secrets": secrets}
    checked = _preflight_before_migration(ctx, explicit_url)
    doc["preflight"] = checked
    if checked["status"] == "fail":
        message = f"preflight failed, migration not run: {checked['reason']}"
        return _refuse(ctx, doc, message)

    arn, registered = register_unless_identical(ctx, td, service=ctx.config.service(BACKEND))
    ctx.output.info(f"{'registered' if registered else 'using'} task definition {arn_name(arn)}")
    doc.update(task_definition=arn, registered=registered)

    def on_log(line: str) -> None:
        ctx.output.passthrough(line)  # plain lines, as the container printed them

    try:
        result = run_migration(
            ctx,
            arn,
            argv,
            timeout,
            on_log,
            poll=poll,
            on_progress=lambda m: ctx.output.info(f"migrate: {m}"),
            task_definition=td,  # what was registered (or found identical): no need to read it back
        )
    except MigrationTimeout as exc:
        return _report(ctx, doc, exc.result, exit_code=3, error=exc)
    if result.ok:  # exit 0 is not enough: the real app's pgvector revision once fell back to text and exited 0
        schema = verify_schema(ctx, _resolve_url(ctx, explicit_url)[0] if checked["status"] != "skipped" else None)
        ctx.output.info(f"  {schema.status:<5} {schema.id:<15} {schema.detail}")
        doc["schema"] = {"status": schema.status, "detail": schema.detail}
        if schema.status == "fail":
            result.verdict, result.reason = "failed", schema.detail
    return _report(ctx, doc, result, exit_code=0 if result.ok else 1)


def _refuse(ctx: Context, doc: dict[str, Any], message: str) -> int:
    ctx.output.annotate("error", "arbiter-ops migrate failed", message)
    ctx.output.error_line(message)
    doc["error"] = {"code": "preflight-failed", "message": message}
    return finish(ctx, doc, False, exit_code=1)


def _report(
    ctx: Context, doc: dict[str, Any], result: MigrationResult, exit_code: int, error: OpsError | None = None
) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.core.redact import REDACTOR
    from arbiter_ops.db.migrations import record_migration

    record_migration(ctx, result)
    out = ctx.output
    doc.update(
        verdict=result.verdict,
        task_arn=result.task_arn,
        exit_code=result.exit_code,
        stop_code=result.stop_code,
        reason=result.reason,
        cause=result.cause,
        stopped_reason=result.stopped_reason,
        duration_ms=result.duration_ms,
        log_tail=result.log_tail,
        log_stream=result.log_stream,
        polls=result.polls,
        network_configuration=result.network_configuration,
    )
    task_id = arn_name(result.task_arn or "")
    seconds = result.duration_ms / 1000
    if result.ok:
        summary = f"migration succeeded: exit 0 in {seconds:.1f} s (task {task_id})"
    else:
        summary = (
            f"migration timed out: {result.reason}"
            if error
            else f"migration failed: {_why(result)} (task {task_id}, {seconds:.1f} s)"
        )
        tail = result.log_tail[-FAILURE_LINES:]
        out.annotate("error", "arbiter-ops migrate failed", summary + ("\n" + "\n".join(tail) if tail else ""))
        out.step_summary(_markdown(ctx, summary, tail))
    if error is not None:
        doc["error"] = {"code": error.code, "message": error.line()}

    def text() -> None:
        if error is not None:
            out.error_line(error.line())
        if not result.ok and result.log_tail:
            out.human.print("last log lines:", markup=False)
            for line in result.log_tail[-FAILURE_LINES:]:
                out.human.print(f"  {REDACTOR(line)}", markup=False)
        out.human.print(REDACTOR(summary), markup=False)

    if out.mode == "json" and not out.quiet:
        out.info(summary)
    return finish(ctx, doc, result.ok, text=text, exit_code=exit_code)


def _markdown(ctx: Context, summary: str, tail: list[str]) -> str:
    body = [f"### arbiter-ops migrate: {ctx.env_name}", "", summary]
    if tail:
        body += ["", "```", *tail, "```"]
    return "\n".join(body)


def _why(result: MigrationResult) -> str:
    """A task that never ran: its short cause (as a deploy names it); one that exited: its exit (logs follow)."""
    return result.cause if result.cause and result.exit_code is None else result.reason
