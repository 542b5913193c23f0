"""Why a task stopped, in a few words, from what ECS records on the stopped task (pure; no AWS).

ECS writes the reason on the task, not in the service's events: ``stopCode``, ``stoppedReason`` and each
container's ``exitCode`` and ``reason`` ("Amazon ECS stopped tasks error messages",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html). ``deploy`` (for the
tasks of its deployment) and ``migrate`` / ``run`` (for their one-off task) read them through :func:`explain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

FAILED_TO_START = "failed-to-start"
CRASH_LOOP = "crash-loop"
UNHEALTHY = "unhealthy"

_JSON_KEY = re.compile(r"did not contain json key (\S+)")
_SECRET_MISSING = re.compile(r"failed to fetch secret (\S+) from secrets manager")
_SSM_MISSING = re.compile(r"invalid ssm parameters: (\S+)")
_IMAGE_MISSING = re.compile(r"failed to resolve ref (\S+?):? not found")
_ELB = re.compile(r"failed ELB health checks in \(?(?:elb|target-group)? ?([^)]*)\)?")
LOG_TAIL_IN_CAUSE = 3  # log lines quoted in a crash's cause (the JSON's log_tail has more)


@dataclass
class StoppedTask:
    """One stopped task of a deployment (or a one-off task), as DescribeTasks shows it."""

    task_id: str
    stop_code: str | None
    stopped_reason: str | None
    exit_code: int | None
    container_reason: str | None
    health: str | None = None
    log_tail: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, task: dict[str, Any], container_name: str | None = None) -> StoppedTask:
        containers = task.get("containers") or [{}]
        main = next((c for c in containers if c.get("name") == container_name), containers[0])
        return cls(
            task_id=str(task.get("taskArn", "")).rsplit("/", 1)[-1],
            stop_code=task.get("stopCode"),
            stopped_reason=task.get("stoppedReason"),
            exit_code=main.get("exitCode"),
            container_reason=main.get("reason"),
            health=main.get("healthStatus"),
        )

    @property
    def is_failure(self) -> bool:
        """Stopped by a failure, not by a rollout replacing it, a scale-in or a person (StopTask)."""
        if self.stop_code == "TaskFailedToStart":
            return True
        if self.stop_code in ("UserInitiated", "SpotInterruption", "TerminationNotice"):
            return False
        reason = self.stopped_reason or ""
        if "health check" in reason:
            return True
        if self.stop_code == "EssentialContainerExited":
            return True
        return not reason.startswith("Scaling activity") and self.exit_code not in (None, 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task_id,
            "stop_code": self.stop_code,
            "stopped_reason": self.stopped_reason,
            "exit_code": self.exit_code,
            "log_tail": list(self.log_tail),
        }


def explain(task: StoppedTask, secret_of_key: dict[str, str] | None = None) -> tuple[str, str]:
    """(verdict class, short cause) of one failed task: "secret arbiter-ai/production has no key K",
    "image arbiter-ai/backend:v9 not found", "exit 137: out of memory", "exit 1; last log lines: ..."."""
    reason = task.stopped_reason or ""
    if task.stop_code == "TaskFailedToStart" or reason.startswith(("ResourceInitializationError", "CannotPull")):
        return FAILED_TO_START, _start_cause(reason or task.container_reason or "", secret_of_key or {})
    if "failed container health checks" in reason:
        return UNHEALTHY, "the container health check failed"
    if "failed ELB health checks" in reason:
        match = _ELB.search(reason)
        where = f" in {match.group(1).strip()}" if match and match.group(1).strip() else ""
        return UNHEALTHY, f"the load balancer's health checks failed{where}"
    if task.exit_code is not None:
        return CRASH_LOOP, crash_cause(task.exit_code, task.container_reason, task.log_tail)
    return FAILED_TO_START, _first_line(reason or task.container_reason or "stopped without a reason")


def crash_cause(exit_code: int, container_reason: str | None, log_tail: list[str]) -> str:
    if exit_code == 137 and container_reason and "OutOfMemory" in container_reason:
        return "exit 137: out of memory"
    cause = f"exit {exit_code}"
    if exit_code == 137:
        cause += " (killed)"
    lines = [line for line in log_tail if line.strip()][-LOG_TAIL_IN_CAUSE:]
    if lines:
        cause += "; last log lines: " + " | ".join(lines)
    return cause


def _start_cause(reason: str, secret_of_key: dict[str, str]) -> str:
    if match := _JSON_KEY.search(reason):
        key = match.group(1)
        secret = secret_of_key.get(key)
        return f"secret {secret} has no key {key}" if secret else f"the secret has no key {key}"
    if match := _SECRET_MISSING.search(reason):
        return f"secret {_secret_name(match.group(1))} not found"
    if match := _SSM_MISSING.search(reason):
        return f"SSM parameter {match.group(1)} not found"
    if match := _IMAGE_MISSING.search(reason):
        return f"image {_short_image(match.group(1))} not found"
    if "log group does not exist" in reason:
        return "the CloudWatch log group does not exist"
    return _first_line(reason)


def _secret_name(ref: str) -> str:
    """``arbiter-ai/production`` from a Secrets Manager ARN (with or without the random suffix and JSON key)."""
    parts = ref.split(":")
    name = parts[6] if len(parts) > 6 and parts[5] == "secret" else ref
    return re.sub(r"-[A-Za-z0-9]{6}$", "", name)


def _short_image(ref: str) -> str:
    """``arbiter-ai/backend:v9`` from ``123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:v9``."""
    first, _, rest = ref.partition("/")
    return rest if rest and ("." in first or ":" in first) else ref


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
