"""Alembic migrations as a one-off Fargate task of the backend (:mod:`arbiter_ops.ecs.task`), and their record.

Shared by `migrate` and by `deploy` (its migration gate), and by smoke-test's `migrations` check
(:func:`last_migration`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import error_code
from arbiter_ops.core.errors import ExternalError, Refused
from arbiter_ops.core.polling import PollPolicy
from arbiter_ops.db.preflight import Check
from arbiter_ops.ecs.task import TaskResult, TaskTimeout, judge, run_task

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

STARTED_BY = "arbiter-ops/migrate"
STOP_REASON = f"{STARTED_BY}: timeout"
DEFAULT_COMMAND = ("alembic", "upgrade", "head")
BACKEND = "backend"
MigrationResult = TaskResult
MigrationTimeout = TaskTimeout
__all__ = ["STARTED_BY", "STOP_REASON", "MigrationResult", "MigrationTimeout", "PollPolicy", "run_migration"]


def run_migration(
    ctx: Context,
    task_definition_arn: str,
    command: list[str],
    timeout: float,
    on_log: Callable[[str], None],
    **kwargs: Any,
) -> TaskResult:
    """``command`` (``alembic upgrade head``) as a one-off task of the backend, started by arbiter-ops/migrate."""
    return run_task(
        ctx, BACKEND, task_definition_arn, command, timeout, on_log, started_by=STARTED_BY, what="the migration",
        **kwargs,
    )  # fmt: skip


def database_url_from_secret(ctx: Context) -> tuple[str, str]:
    """(DATABASE_URL from the environment's secret, where it came from). Refused (1) when the secret or key
    is missing, ExternalError (3) when AWS refuses to answer."""
    from botocore.exceptions import ClientError

    from arbiter_ops.secrets.store import read_key

    key = ctx.config.service(BACKEND).secrets.get("DATABASE_URL", "DATABASE_URL")
    source = f"{key} from secret {ctx.secret_id}"
    try:
        value = read_key(ctx.client("secretsmanager"), ctx.secret_id, key)
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            raise Refused(
                f"secret {ctx.secret_id} not found", hint="pass --database-url, or create the secret (guide Step 1d)"
            ) from None
        raise ExternalError(f"cannot read secret {ctx.secret_id}: AWS answered {code or 'an error'}") from None
    if value is None:
        raise Refused(
            f"secret {ctx.secret_id} has no {key} key", hint="`arbiter-ops check-secrets` lists what is missing"
        )
    return value, source


SEED_COMMAND = ("python", "-m", "scripts.seed_catalog")  # gndumbri/arbiter-ai backend/scripts/seed_catalog.py


def catalog_is_empty(checks: list[Any]) -> bool:
    """The smoke test failed only because the catalog is empty (a fresh environment: nothing seeded yet)."""
    failed = [c for c in checks if c.status == "fail"]
    return len(failed) == 1 and failed[0].id == "http-catalog" and "empty catalog" in failed[0].detail


def seed_catalog(ctx: Context, task_definition_arn: str, timeout: float, on_log: Callable[[str], None]) -> TaskResult:
    """The real app's catalog seed as a one-off task of the backend (idempotent: it skips existing games)."""
    return run_task(
        ctx, BACKEND, task_definition_arn, list(SEED_COMMAND), timeout, on_log, started_by="arbiter-ops/deploy",
        what="the catalog seed",
    )  # fmt: skip


def migrate_and_verify(
    ctx: Context, task_definition_arn: str, command: list[str], timeout: float, on_log: Callable[[str], None]
) -> TaskResult:
    """deploy's migration gate: the migration task, then (exit 0 is not enough) the schema it must leave, then its
    record. The result's verdict is "failed" when either fails."""
    from arbiter_ops.core.errors import OpsError

    result = run_migration(ctx, task_definition_arn, command, timeout, on_log)
    if result.ok:  # the real app's pgvector revision once fell back to text and exited 0
        try:
            url: str | None = database_url_from_secret(ctx)[0]
        except OpsError:
            url = None  # not readable: the check says it did not look
        schema = verify_schema(ctx, url)
        on_log(f"{schema.status}: {schema.detail}")
        if schema.status == "fail":
            result.verdict, result.reason = "failed", schema.detail
    record_migration(ctx, result)
    return result


def verify_schema(ctx: Context, database_url: str | None) -> Check:
    """After a migration that exited 0: the columns `[migrate] expect_vector_columns` names are of type vector.
    ``info`` (nothing checked) when there is no URL or the database cannot be reached from here."""
    from arbiter_ops.db.preflight import vector_columns

    columns = ctx.config.migrate.expect_vector_columns
    if not columns:
        return Check("vector-columns", "info", "not checked: [migrate] expect_vector_columns is empty")
    if database_url is None:
        return Check("vector-columns", "info", "not checked: no database URL")
    return vector_columns(database_url, columns)


def last_migration(ctx: Context) -> dict[str, Any] | None:
    """The most recent stopped task started by arbiter-ops/migrate, with its exit code; None if ECS has none
    (it keeps stopped tasks for about an hour)."""
    from botocore.exceptions import ClientError

    from arbiter_ops.ecs.api import describe_tasks, list_task_arns

    try:
        arns = list_task_arns(ctx, started_by=STARTED_BY, desired_status="STOPPED")
        tasks = describe_tasks(ctx, arns)
    except ClientError as exc:
        if error_code(exc) == "ClusterNotFoundException":
            return None
        raise
    if not tasks:
        return None
    # boto3 parses timestamps into datetimes; every task has createdAt
    task = max(tasks, key=lambda t: t["createdAt"].timestamp() if t.get("createdAt") else 0.0)
    container_name = ctx.config.service(BACKEND).container
    result = MigrationResult(str(task.get("taskDefinitionArn")), task["taskArn"], verdict="ok", reason="")
    judge(task, {"name": container_name}, result, "the migration")
    overrides = (task.get("overrides") or {}).get("containerOverrides", [])
    return {
        "task_arn": result.task_arn,
        "task_definition": result.task_definition,
        "ok": result.ok,
        "exit_code": result.exit_code,
        "stop_code": result.stop_code,
        "reason": result.reason,
        "stopped_reason": result.stopped_reason,
        "created_at": task["createdAt"].isoformat() if task.get("createdAt") else None,
        "stopped_at": task["stoppedAt"].isoformat() if task.get("stoppedAt") else None,
        "command": next((o.get("command") for o in overrides if o.get("name") == container_name), None),
    }


def record_migration(ctx: Context, result: MigrationResult) -> None:
    """The durable record the smoke-test `migrations` check reads first (ECS forgets tasks in an hour)."""
    from arbiter_ops.core.errors import OpsError
    from arbiter_ops.state.audit import record

    data = {k: v for k, v in result.as_json().items() if k != "network_configuration"}
    try:
        record(ctx, "migrate", data)
    except OpsError as exc:
        ctx.output.warn(f"could not write the migration record: {exc.line()}")
