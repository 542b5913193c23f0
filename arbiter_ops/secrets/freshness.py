"""Stale values in running tasks: ECS resolves a task's `secrets` once, when the task starts, so a task started
before its secret's current version was stored still holds the previous value (aws/copilot-cli #3271).

For each service: its running tasks (ListTasks + DescribeTasks: ``startedAt``), the secrets their task
definitions reference (their current version, not one pinned by stage or VersionId), and each secret's current
version date (ListSecretVersionIds: ``CreatedDate`` of the AWSCURRENT version). No value is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code
from arbiter_ops.core.errors import ExternalError
from arbiter_ops.secrets.analysis import references
from arbiter_ops.secrets.value_from import ValueFromError, parse_value_from

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

FIX = "arbiter-ops deploy --force-new-deployment"


@dataclass(frozen=True)
class Stale:
    service: str
    secret: str  # the secret's name
    tasks: int  # how many running tasks started before its current version
    running: int  # how many running tasks the service has
    started: datetime  # the earliest start among them
    changed: datetime  # when the current version was stored

    def message(self, env_name: str) -> str:
        some = "" if self.tasks == self.running else f"{self.tasks} of {self.running} "
        return (
            f"{self.service}: {some}tasks started {_clock(self.started)} hold the previous value of {self.secret} "
            f"(changed {_clock(self.changed)}): run `arbiter-ops --env {env_name} deploy --force-new-deployment`"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "secret": self.secret,
            "tasks": self.tasks,
            "running": self.running,
            "started": self.started.isoformat(),
            "changed": self.changed.isoformat(),
        }


def _clock(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    today = datetime.now(UTC).date() == utc.date()
    return utc.strftime("%H:%M:%S UTC" if today else "%Y-%m-%d %H:%M UTC")


def running_tasks(ctx: Context, ecs_service: str) -> list[dict[str, Any]]:
    """The service's RUNNING tasks as DescribeTasks describes them."""
    from arbiter_ops.ecs.api import describe_tasks, list_task_arns

    arns = list_task_arns(ctx, service_name=ecs_service)
    tasks = [t for t in describe_tasks(ctx, arns) if t.get("lastStatus") == "RUNNING"]
    return tasks


def referenced_secrets(task_definition: dict[str, Any]) -> dict[str, str]:
    """secret id (its ARN without the key) -> its name, for every reference to a secret's current version."""
    out: dict[str, str] = {}
    for container in task_definition.get("containerDefinitions") or []:
        for _name, value_from in references(container):
            try:
                ref = parse_value_from(value_from)
            except ValueFromError:
                continue  # check-secrets says so
            if ref.store == "secretsmanager" and ref.version_stage in (None, "AWSCURRENT") and not ref.version_id:
                out.setdefault(ref.secret_id, ref.name)
    return out


def current_version_date(ctx: Context, secret_id: str) -> datetime | None:
    """When the AWSCURRENT version was stored; None when the secret does not exist (check-secrets says so)."""
    from botocore.exceptions import ClientError

    client = ctx.client("secretsmanager")
    token: str | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"SecretId": secret_id, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            resp = call(client.list_secret_version_ids, **kwargs)
            for version in resp.get("Versions", []):
                if "AWSCURRENT" in (version.get("VersionStages") or []) and version.get("CreatedDate"):
                    return _aware(version["CreatedDate"])
            token = resp.get("NextToken")
            if not token:
                return None
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return None
        raise ExternalError(
            f"cannot list the versions of secret {secret_id}: AWS answered {code or 'an error'}",
            hint="the caller needs secretsmanager:ListSecretVersionIds on it (`arbiter-ops bootstrap` prints it)",
            code="aws-access-denied" if "AccessDenied" in code else "aws-error",
        ) from None


def _aware(moment: Any) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(moment), UTC)


def stale_tasks(
    ctx: Context,
    services: Iterable[tuple[str, str]],
    task_definition: Callable[[str], dict[str, Any] | None],
) -> list[Stale]:
    """For each (service name, ECS service name): which referenced secrets changed after its tasks started.
    ``task_definition`` describes a task definition by ARN (the caller's, so that lookups are shared)."""
    dates: dict[str, datetime | None] = {}
    found: list[Stale] = []
    for name, ecs_service in services:
        tasks = [t for t in running_tasks(ctx, ecs_service) if t.get("startedAt")]
        by_secret: dict[str, tuple[str, list[datetime]]] = {}
        for task in tasks:
            td = task_definition(str(task.get("taskDefinitionArn"))) or {}
            for secret_id, secret_name in referenced_secrets(td).items():
                by_secret.setdefault(secret_id, (secret_name, []))[1].append(_aware(task["startedAt"]))
        for secret_id, (secret_name, starts) in by_secret.items():
            if secret_id not in dates:
                dates[secret_id] = current_version_date(ctx, secret_id)
            changed = dates[secret_id]
            old = [s for s in starts if changed is not None and s < changed]
            if old and changed is not None:
                found.append(Stale(name, secret_name, len(old), len(tasks), min(old), changed))
    return found
