"""The verdict on one service's rollout, from what AWS really sends (pure: no AWS call here).

A deploy tracks *its own* deployment: the id UpdateService returned. Each poll's DescribeServices entry, plus
the failed tasks of that deployment read so far (:mod:`arbiter_ops.ecs.stopped`, only when its ``failedTasks``
grew), give one of:

- ``succeeded``: our deployment is PRIMARY, COMPLETED, with its tasks running;
- ``failed-to-start`` / ``crash-loop`` / ``unhealthy``: ``max_failed_tasks`` of our deployment's tasks failed
  (or ECS marked it FAILED), classified from the first one's stop code, reason and exit code;
- ``rolled-back-by-ecs``: the deployment circuit breaker put the last COMPLETED deployment back as PRIMARY;
- ``superseded``: a deployment we did not start became PRIMARY (someone else deployed): say which, do not fight;
- ``stalled``: no change in counts or rollout state for ``stall_timeout`` seconds;
- ``timed-out``: the overall timeout passed (set by the wait, not here).

Tasks of an earlier deployment never count: the failures are read by ``startedBy`` = our deployment's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arbiter_ops.core.aws import arn_name
from arbiter_ops.ecs.causes import FAILED_TO_START, StoppedTask, explain

SUCCEEDED = "succeeded"
ROLLED_BACK_BY_ECS = "rolled-back-by-ecs"
SUPERSEDED = "superseded"
STALLED = "stalled"
TIMED_OUT = "timed-out"
MISSING = "missing"
MAX_FAILED_TASKS = 2
STALL_TIMEOUT = 600.0


@dataclass
class Target:
    name: str  # the config's service name
    ecs_service: str
    task_definition: str  # the revision the service must end on
    since: datetime | None = None  # events before this belong to earlier deploys
    deployment_id: str | None = None  # ours, as UpdateService returned it (None: judge by revision)
    previous_deployment_id: str | None = None  # the COMPLETED one ours replaced (the breaker's way back)
    container: dict[str, Any] | None = None  # the main container's definition (its name and awslogs options)
    secret_of_key: dict[str, str] = field(default_factory=dict)  # JSON key -> secret name, for causes


@dataclass(frozen=True)
class Limits:
    max_failed_tasks: int = MAX_FAILED_TASKS
    stall_timeout: float = STALL_TIMEOUT


@dataclass
class Watch:
    """What the wait knows of one service between polls."""

    target: Target
    seen_failed: int = 0  # our deployment's failedTasks when its stopped tasks were last read
    failures: list[StoppedTask] = field(default_factory=list)
    last_key: tuple[Any, ...] | None = None
    last_change: float = 0.0


@dataclass
class Progress:
    name: str
    state: str = "waiting"  # waiting | done | failed
    verdict: str = ""  # set once decided (see the module's list)
    reason: str = ""  # the cause, in a few words
    revision: str = "?"
    rollout: str = "-"
    desired: int = 0
    running: int = 0
    pending: int = 0
    failed_tasks: int = 0
    events: list[str] = field(default_factory=list)
    task_definition: str = ""  # what the service runs now
    first_failure: StoppedTask | None = None

    def decide(self, verdict: str, reason: str) -> Progress:
        self.state = "done" if verdict == SUCCEEDED else "failed"
        self.verdict, self.reason = verdict, reason
        return self

    def line(self) -> str:
        """One line per failed service: ``backend: failed-to-start — <cause> (task 3f2…, 2 of 2 failed)``."""
        extra = ""
        if self.first_failure is not None:
            extra = f" (task {self.first_failure.task_id[:8]}…, {self.failed_tasks} of {self.desired} failed)"
        return f"{self.name}: {self.verdict or self.state} — {self.reason}{extra}"

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict or None,
            "cause": self.reason or None,
            "failed_tasks": self.failed_tasks,
            "first_failure": self.first_failure.as_json() if self.first_failure else None,
        }


def revision_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1] if arn else "?"


def family_revision(arn: str) -> str:
    return arn_name(arn) if arn else "?"


def ours_in(svc: dict[str, Any], target: Target) -> dict[str, Any] | None:
    """Our deployment in a DescribeServices entry: by id, else the PRIMARY one if it runs our revision."""
    deployments = svc.get("deployments") or []
    if target.deployment_id:
        return next((d for d in deployments if d.get("id") == target.deployment_id), None)
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    return primary if primary and primary.get("taskDefinition") == target.task_definition else None


def judge(svc: dict[str, Any] | None, watch: Watch, now: float, limits: Limits) -> Progress:
    """The verdict on one service at this poll (``now``: a monotonic clock, for the stall)."""
    target = watch.target
    if svc is None:
        return Progress(target.name).decide(MISSING, "service not found")
    deployments = svc.get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None) or {}
    ours = ours_in(svc, target)
    shown = ours or primary
    p = Progress(
        name=target.name,
        revision=revision_of(str(shown.get("taskDefinition", ""))),
        rollout=shown.get("rolloutState") or "-",
        desired=int(shown.get("desiredCount", svc.get("desiredCount", 0)) or 0),
        running=int(shown.get("runningCount", 0) or 0),
        pending=int(shown.get("pendingCount", 0) or 0),
        failed_tasks=max(int((ours or {}).get("failedTasks", 0) or 0), len(watch.failures)),
        events=[str(e.get("message", "")) for e in _events_since(svc, target.since)[:3]],
        task_definition=str(svc.get("taskDefinition", "")),
        first_failure=watch.failures[0] if watch.failures else None,
    )
    if svc.get("status") not in (None, "ACTIVE"):
        return p.decide(MISSING, f"service is {svc.get('status')}")
    klass, cause = explain(p.first_failure, target.secret_of_key) if p.first_failure else (FAILED_TO_START, "")
    if target.deployment_id and primary.get("id") != target.deployment_id:
        return _replaced(p, primary, ours, target, cause)
    if not target.deployment_id and svc.get("taskDefinition") != target.task_definition:
        return _replaced(p, primary, ours, target, cause)
    if ours is None:
        return p  # judged by revision: the new deployment is not PRIMARY yet
    if ours.get("rolloutState") == "FAILED":
        return p.decide(klass, cause or str(ours.get("rolloutStateReason") or "the rollout failed"))
    if p.first_failure is not None and p.failed_tasks >= limits.max_failed_tasks:
        return p.decide(klass, cause)
    if ours.get("rolloutState"):
        if ours["rolloutState"] == "COMPLETED" and p.running >= p.desired:
            return p.decide(SUCCEEDED, "")
    elif len(deployments) == 1 and p.running == p.desired:
        return p.decide(SUCCEEDED, "")
    key = (p.rollout, p.running, p.pending, p.failed_tasks)
    if key != watch.last_key:
        watch.last_key, watch.last_change = key, now
    elif now - watch.last_change >= limits.stall_timeout:
        return p.decide(
            STALLED,
            f"no change for {limits.stall_timeout:g} s ({p.rollout}, {p.running}/{p.desired} running, "
            f"{p.pending} pending)",
        )
    return p


def _replaced(
    p: Progress, primary: dict[str, Any], ours: dict[str, Any] | None, target: Target, cause: str
) -> Progress:
    """Another deployment is PRIMARY: ECS's breaker went back to the last COMPLETED one, or someone deployed."""
    now_on = family_revision(str(primary.get("taskDefinition", "")))
    breaker = (
        not target.deployment_id  # judged by revision only: the service was switched back
        or (ours or {}).get("rolloutState") == "FAILED"
        or (target.previous_deployment_id is not None and primary.get("id") == target.previous_deployment_id)
    )
    if breaker:
        why = f": {cause}" if cause else ""
        return p.decide(ROLLED_BACK_BY_ECS, f"ECS's circuit breaker put the service back on {now_on}{why}")
    created = primary.get("createdAt")
    when = f", created {created:%H:%M:%S}" if isinstance(created, datetime) else ""
    return p.decide(
        SUPERSEDED,
        f"deployment {primary.get('id', '?')} of {now_on}{when} replaced ours (someone else deployed): "
        "left to run, not rolled back",
    )


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
