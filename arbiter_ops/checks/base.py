"""What every go-live check shares: its outcome, the failure it may raise, the run's memo of lookups made once
for all checks (one DescribeServices, one token), and the deadlines. The checks themselves are in
:mod:`.infra`, :mod:`.app` and :mod:`.http`; :mod:`.checklist` lists them in order and runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

Status = Literal["pass", "fail", "warn", "skip"]
Kind = Literal["aws", "http"]

# On top of an HTTP check's own request budget: reading NEXTAUTH_SECRET, thread start-up.
HTTP_CHECK_GRACE = 15.0
# Backoff between HTTP attempts: 0.5 s, 1 s, 2 s, ... at most 4 s, plus up to 0.25 s of jitter.
HTTP_BACKOFF_INITIAL = 0.5
HTTP_BACKOFF_MAX = 4.0
HTTP_BACKOFF_JITTER = 0.25


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str


def passed(detail: str) -> Outcome:
    return Outcome("pass", detail)


def failed(detail: str) -> Outcome:
    return Outcome("fail", detail)


def warned(detail: str) -> Outcome:
    return Outcome("warn", detail)


def skipped(detail: str) -> Outcome:
    return Outcome("skip", detail)


class CheckFailed(Exception):
    """Raised by a check (or a lookup it shares) to fail with this message."""


@dataclass
class CheckResult:
    id: str
    status: Status
    detail: str
    duration_ms: int
    external: bool = False  # the check could not be performed (AWS unreachable, no credentials)

    def as_json(self) -> dict[str, Any]:
        """The contract's fields, exactly."""
        return {"id": self.id, "status": self.status, "detail": self.detail, "duration_ms": self.duration_ms}


class CheckRun:
    """What the checks of one run share: the context, and lookups made once for all of them (one
    DescribeServices for ecs-services, images, secrets and app-env; one token for both signed-in checks)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._keys: dict[str, threading.Lock] = {}
        self._values: dict[str, tuple[bool, Any]] = {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per run, whichever check asks first; a failure is remembered too, so every
        check that depends on it fails with the same reason without asking AWS again."""
        with self._lock:
            key_lock = self._keys.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, compute())
                except Exception as exc:
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        return value


# -- lookups shared by several checks ------------------------------------------------------------
def live_services(run: CheckRun) -> dict[str, dict[str, Any]]:
    """Configured service name -> its live ECS service (absent if it does not exist): one call for all."""
    from arbiter_ops.ecs.api import describe_services

    def compute() -> dict[str, dict[str, Any]]:
        services = run.ctx.config.services
        live = describe_services(run.ctx, list(services.values()))
        return {name: live[cfg.ecs_service] for name, cfg in services.items() if cfg.ecs_service in live}

    result: dict[str, dict[str, Any]] = run.memo("services", compute)
    return result


def live_task_definition(run: CheckRun, service: str) -> dict[str, Any] | None:
    """The task definition the live service runs (None if the service or the revision does not exist)."""
    from arbiter_ops.ecs.api import describe_task_definition

    live = live_services(run).get(service)
    if not live or not live.get("taskDefinition"):
        return None
    arn = str(live["taskDefinition"])
    td: dict[str, Any] | None = run.memo(f"td:{arn}", lambda: describe_task_definition(run.ctx, arn))
    return td
