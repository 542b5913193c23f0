"""Honest waiting for ECS rollouts.

A service is done only when its PRIMARY deployment runs the target revision with rolloutState COMPLETED
(or, without a rollout state, a single deployment with running = desired). It failed at once when the
rollout is FAILED, when ECS's circuit breaker switched the service back to another revision, or when the
events show tasks failing to start again and again. One DescribeServices call per poll (per 10 services) covers every
service; polls start fast and slow down; there is always a timeout.

:func:`assess` is a pure function of one DescribeServices entry, so the verdicts are testable on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import arn_name
from arbiter_ops.core.errors import OpsTimeout
from arbiter_ops.core.polling import PollPolicy
from arbiter_ops.ecs.api import describe_service_names

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

START_FAILURE_MARKERS = ("failed to start", "unable to consistently start tasks", "CannotPullContainerError")
START_FAILURE_LIMIT = 3
POLL_MIN = 2.0
POLL_MAX = 15.0


@dataclass
class Target:
    name: str  # the config's service name
    ecs_service: str
    task_definition: str  # the revision the service must end on
    since: datetime | None = None  # events before this belong to earlier deploys


@dataclass
class Progress:
    name: str
    state: str = "waiting"  # waiting | done | failed
    reason: str = ""
    revision: str = "?"
    rollout: str = "-"
    desired: int = 0
    running: int = 0
    pending: int = 0
    failed_tasks: int = 0
    events: list[str] = field(default_factory=list)
    task_definition: str = ""  # what the service runs now


def revision_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1] if arn else "?"


def family_revision(arn: str) -> str:
    return arn_name(arn) if arn else "?"


def _events_since(svc: dict[str, Any], since: datetime | None) -> list[dict[str, Any]]:
    events = svc.get("events") or []
    if since is None:
        return list(events)
    out = []
    for e in events:
        created = e.get("createdAt")
        if isinstance(created, datetime) and created.tzinfo and since.tzinfo and created < since:
            continue
        out.append(e)
    return out


def assess(svc: dict[str, Any], target: Target) -> Progress:
    """The verdict on one service (a DescribeServices entry) against its target revision."""
    deployments = svc.get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None) or {}
    events = _events_since(svc, target.since)
    p = Progress(
        name=target.name,
        revision=revision_of(primary.get("taskDefinition", "")),
        rollout=primary.get("rolloutState") or "-",
        desired=int(primary.get("desiredCount", svc.get("desiredCount", 0)) or 0),
        running=int(primary.get("runningCount", 0) or 0),
        pending=int(primary.get("pendingCount", 0) or 0),
        failed_tasks=int(primary.get("failedTasks", 0) or 0),
        events=[str(e.get("message", "")) for e in events[:3]],
        task_definition=str(svc.get("taskDefinition", "")),
    )
    if svc.get("status") not in (None, "ACTIVE"):
        p.state, p.reason = "failed", f"service is {svc.get('status')}"
        return p
    if svc.get("taskDefinition") != target.task_definition:
        # ECS put it back (circuit breaker rollback) or someone else deployed meanwhile.
        p.state = "failed"
        p.reason = (
            f"ECS switched the service to {family_revision(str(svc.get('taskDefinition')))} "
            f"instead of {family_revision(target.task_definition)} (deployment circuit breaker rollback)"
        )
        return p
    if primary.get("taskDefinition") != target.task_definition:
        return p  # the new deployment is not primary yet
    if primary.get("rolloutState") == "FAILED":
        p.state = "failed"
        p.reason = primary.get("rolloutStateReason") or "the rollout failed"
        return p
    start_failures = [
        str(e.get("message", "")) for e in events if any(m in str(e.get("message", "")) for m in START_FAILURE_MARKERS)
    ]
    if len(start_failures) >= START_FAILURE_LIMIT:
        p.state = "failed"
        p.reason = f"tasks keep failing to start: {start_failures[0]}"
        return p
    if primary.get("rolloutState"):
        if primary["rolloutState"] == "COMPLETED" and p.running >= p.desired:
            p.state = "done"
    elif len(deployments) == 1 and p.running == p.desired:
        p.state = "done"
    return p


class Poller:
    """The shared :class:`PollPolicy` with a rollout's bounds: a rollout often settles quickly, but may take
    minutes, so polls start at 2 s and slow to 15 s (API budget)."""

    def __init__(self, minimum: float | None = None, maximum: float = POLL_MAX) -> None:
        if minimum is None:
            policy = PollPolicy.from_env(POLL_MIN, maximum)
        else:
            policy = PollPolicy(minimum, max(maximum, minimum))
        self._intervals = policy.intervals()

    def next(self) -> float:
        return next(self._intervals)


def wait_for(
    ctx: Context,
    targets: list[Target],
    timeout: float,
    on_progress: Callable[[list[Progress], float], None] | None = None,
    poller: Poller | None = None,
) -> tuple[list[Progress], int]:
    """Poll until every service is done or one failed (returned at once, with the number of polls);
    OpsTimeout after ``timeout``."""
    poller = poller or Poller()
    started = time.monotonic()
    names = [t.ecs_service for t in targets]
    polls = 0
    while True:
        services = describe_service_names(ctx, names)
        polls += 1
        progress = []
        for t in targets:
            svc = services.get(t.ecs_service)
            progress.append(assess(svc, t) if svc else Progress(t.name, state="failed", reason="service not found"))
        elapsed = time.monotonic() - started
        if on_progress:
            on_progress(progress, elapsed)
        if any(p.state == "failed" for p in progress) or all(p.state == "done" for p in progress):
            return progress, polls
        if elapsed >= timeout:
            waiting = ", ".join(
                f"{p.name} ({p.rollout}, {p.running}/{p.desired} running)" for p in progress if p.state == "waiting"
            )
            raise OpsTimeout(
                f"services not stable after {timeout:.0f} s: {waiting}",
                hint="check the service events (`arbiter-ops status`); raise --timeout for slow starts",
            )
        time.sleep(min(poller.next(), max(0.0, timeout - elapsed)))
