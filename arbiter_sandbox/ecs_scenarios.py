"""The scenarios a test arms in the sandbox's ECS: what the next one-off task does (:class:`TaskOutcome`) and what
the next deployments of a service meet (:class:`Fate`). A scenario only decides *what happens*; how ECS then
shows it (stop codes, reasons, counts, events) follows the pages ``ecs_deployments`` cites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from arbiter_sandbox.ecs_tasks import DEFAULT_LOG_LINES, TaskPlan, Where

SERVICE_LOG_LINES = ["INFO:     Started server process [1]", "INFO:     Application startup complete."]
CRASH_LOG_LINES = ("INFO:     Waiting for application startup.", "ERROR:    Application startup failed. Exiting.")
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"  # stopped-task-error-codes.html
DEFAULT_START_FAILURE = (
    "CannotStartContainerError: Error response from daemon: failed to create task for container: "
    "sandbox scenario: deployment armed to fail"
)
FATES = ("start", "crash", "unhealthy", "stall", "supersede", "edit-secret")

# The only service event messages the sandbox emits, each as the page that documents it words it.
SERVICE_EVENT_PAGE = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html"
DOCUMENTED_EVENTS: tuple[tuple[str, str], ...] = (
    (r"\(service [\w-]+\) has reached a steady state\.", SERVICE_EVENT_PAGE),
    (r"\(service [\w-]+\) is unable to consistently start tasks successfully\.", SERVICE_EVENT_PAGE),
    (
        r"\(service [\w-]+\) has started \d+ tasks: (\(task [0-9a-f]{32}\) ?)+\.",
        "https://docs.aws.amazon.com/cli/latest/reference/ecs/describe-services.html",
    ),
    (
        r"\(service [\w-]+\) has stopped \d+ running tasks: (\(task [0-9a-f]{32}\) ?)+\.",
        "https://docs.aws.amazon.com/cli/latest/reference/ecs/describe-services.html",
    ),
    (
        r"\(service [\w-]+\) \(task [0-9a-f]{32}\) failed container health checks\.",
        "https://repost.aws/knowledge-center/ecs-task-container-health-check-failures",
    ),
)


@dataclass(frozen=True)
class Fate:
    """What a test armed for a service's next deployment (a sandbox scenario; what follows is ECS's behaviour):
    its tasks fail to start with ``reason`` ("start"), run and then exit with ``exit_code`` after writing
    ``log_lines`` ("crash"; 137 is the kernel's OOM kill), fail their container health check ("unhealthy"),
    never leave PENDING ("stall"), or someone else's UpdateService replaces it right after it began
    ("supersede": a new deployment of the revision the service ran before), or someone edits a secret after our
    checks and before ECS resolves the tasks' secrets ("edit-secret": ``secret_change``, then ECS's own
    resolution decides)."""

    kind: str = "start"
    reason: str | None = None
    exit_code: int = 1
    log_lines: tuple[str, ...] = ()
    secret_change: tuple[tuple[str, str], ...] = ()  # (("secret_id", ...), ("secret_string", ...))

    def plan(self) -> TaskPlan:
        lines = list(SERVICE_LOG_LINES)
        if self.kind == "start":
            return TaskPlan(log_lines=lines, fail_reason=self.reason or DEFAULT_START_FAILURE, never_stops=True)
        if self.kind == "crash":
            reason = OUT_OF_MEMORY if self.exit_code == 137 else None
            out = list(self.log_lines or CRASH_LOG_LINES)
            return TaskPlan(self.exit_code, out, fate="crash", container_reason=reason)
        if self.kind in ("unhealthy", "stall"):
            return TaskPlan(log_lines=lines, never_stops=True, fate=self.kind)
        return TaskPlan(log_lines=lines, never_stops=True)


@dataclass
class TaskOutcome:
    """A scenario armed by a test for the next RunTask whose command contains ``command_contains``."""

    command_contains: str | None = None
    exit_code: int = 0
    log_lines: list[str] | None = None
    fail_to_start: str | None = None
    never_stops: bool = False
    # {"secret_id", "secret_string"}: someone edits the secret after our checks and before ECS resolves the
    # task's secrets (the race check-secrets cannot close); the task then meets whatever the new value holds.
    secret_change: dict[str, str] | None = None

    def matches(self, command: str) -> bool:
        return self.command_contains is None or self.command_contains in command

    def plan(self) -> TaskPlan:
        lines = list(self.log_lines) if self.log_lines is not None else list(DEFAULT_LOG_LINES)
        return TaskPlan(self.exit_code, lines, self.fail_to_start, self.never_stops)


# service name -> the fate armed for its next deployment (None: it may succeed)
ArmFailure = Callable[[str], Fate | None]


class Scenarios:
    """Armed outcomes and fates (callers hold the overlay's lock)."""

    def __init__(self) -> None:
        self._outcomes: list[TaskOutcome] = []
        self._failing: dict[str, tuple[int, Fate]] = {}  # service name -> (deployments left, their fate)

    def task_outcome(
        self,
        command_contains: str | None = None,
        exit_code: int = 0,
        log_lines: list[str] | None = None,
        fail_to_start: str | None = None,
        never_stops: bool = False,
        secret_change: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Arm the outcome of the next RunTask whose overridden command contains ``command_contains``."""
        if not _valid_change(secret_change):
            raise ValueError("secret_change needs a secret_id and a secret_string")
        outcome = TaskOutcome(
            command_contains, int(exit_code), log_lines, fail_to_start, bool(never_stops), secret_change
        )
        if log_lines is not None and not all(isinstance(line, str) for line in log_lines):
            raise ValueError("log_lines must be a list of strings")
        self._outcomes.append(outcome)
        return asdict(outcome)

    def fail_next_deployment(
        self,
        service: str,
        count: int = 1,
        reason: str | None = None,
        kind: str = "start",
        exit_code: int = 1,
        log_lines: list[str] | None = None,
        secret_change: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The next ``count`` deployments of ``service`` (a rollback that must start tasks included) meet
        :class:`Fate` ``kind``: fail to start (``reason``), crash (``exit_code``, ``log_lines``), unhealthy, stall,
        or superseded."""
        if not service or int(count) < 1:
            raise ValueError("a service name and a positive count are needed")
        if kind not in FATES:
            raise ValueError(f"kind must be one of {', '.join(FATES)}")
        if log_lines is not None and not all(isinstance(line, str) for line in log_lines):
            raise ValueError("log_lines must be a list of strings")
        if kind == "start":
            reason = reason or DEFAULT_START_FAILURE
        if (kind == "edit-secret") != (secret_change is not None) or not _valid_change(secret_change):
            raise ValueError('kind "edit-secret" (and only it) needs a secret_change with secret_id and secret_string')
        change = tuple(sorted((secret_change or {}).items()))
        fate = Fate(kind, reason, int(exit_code), tuple(log_lines or ()), change)
        self._failing[service] = (int(count), fate)
        return {"service": service, "count": int(count), **asdict(fate)}

    def arm(self, service: str) -> Fate | None:
        """Consume one armed deployment fate of ``service``, or None."""
        if service not in self._failing:
            return None
        left, fate = self._failing[service]
        if left <= 1:
            del self._failing[service]
        else:
            self._failing[service] = (left - 1, fate)
        return fate

    def take_outcome(self, command: str) -> TaskOutcome | None:
        for i, outcome in enumerate(self._outcomes):
            if outcome.matches(command):
                return self._outcomes.pop(i)
        return None

    def dump(self) -> dict[str, Any]:
        return {
            "task_outcomes": [asdict(o) for o in self._outcomes],
            "failing_deployments": {k: {"count": c, **asdict(f)} for k, (c, f) in self._failing.items()},
        }

    def clear(self) -> None:
        self._outcomes.clear()
        self._failing.clear()


def _valid_change(change: Any) -> bool:
    return change is None or (
        isinstance(change, dict)
        and isinstance(change.get("secret_id"), str)
        and isinstance(change.get("secret_string"), str)
    )


def put_secret(where: Where, change: dict[str, str]) -> None:
    """A new AWSCURRENT value, as PutSecretValue stores it, just before a task's secrets are resolved."""
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[where.account][where.region]
    backend.put_secret_value(change["secret_id"], change["secret_string"], "", "", ["AWSCURRENT"])
