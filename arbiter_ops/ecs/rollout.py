"""Honest waiting for ECS rollouts: poll, read what failed, decide (:mod:`arbiter_ops.ecs.verdict`).

One DescribeServices call per poll (per 10 services) covers every service; the stopped tasks of a deployment
are read only when its ``failedTasks`` grew (and the log tail of the first one that crashed), so a rollout that
goes well costs nothing more than its polls. Polls start fast and slow down; there is always a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arbiter_ops.core.errors import OpsTimeout
from arbiter_ops.core.polling import PollPolicy
from arbiter_ops.ecs.api import describe_service_names
from arbiter_ops.ecs.causes import CRASH_LOOP, explain
from arbiter_ops.ecs.verdict import TIMED_OUT, Limits, Progress, Target, Watch, judge, ours_in

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

POLL_MIN = 2.0
POLL_MAX = 15.0

__all__ = ["Limits", "Poller", "Progress", "RolloutTimeout", "Target", "wait_for"]


class RolloutTimeout(OpsTimeout):
    """The overall timeout passed; ``progress`` holds each service's last state (``timed-out`` where waiting)."""

    def __init__(self, message: str, progress: list[Progress], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.progress = progress


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
    limits: Limits | None = None,
) -> tuple[list[Progress], int]:
    """Poll until every service is done or one failed (returned at once, with the number of polls);
    :class:`RolloutTimeout` after ``timeout``."""
    poller = poller or Poller()
    limits = limits or Limits()
    started = time.monotonic()
    watches = [Watch(t, last_change=started) for t in targets]
    polls = 0
    while True:
        services = describe_service_names(ctx, [t.ecs_service for t in targets])
        polls += 1
        now = time.monotonic()
        for watch in watches:
            _read_failures(ctx, services.get(watch.target.ecs_service), watch)
        progress = [judge(services.get(w.target.ecs_service), w, now, limits) for w in watches]
        elapsed = now - started
        if on_progress:
            on_progress(progress, elapsed)
        if any(p.state == "failed" for p in progress) or all(p.state == "done" for p in progress):
            return progress, polls
        if elapsed >= timeout:
            waiting = [p for p in progress if p.state == "waiting"]
            for p in waiting:
                p.decide(TIMED_OUT, f"not stable after {timeout:g} s ({p.rollout}, {p.running}/{p.desired} running)")
            raise RolloutTimeout(
                f"services not stable after {timeout:.0f} s: "
                + ", ".join(f"{p.name} ({p.rollout}, {p.running}/{p.desired} running)" for p in waiting),
                progress,
                hint="check the service events (`arbiter-ops status`); raise --timeout for slow starts",
            )
        time.sleep(min(poller.next(), max(0.0, timeout - elapsed)))


def _read_failures(ctx: Context, svc: dict[str, Any] | None, watch: Watch) -> None:
    """When our deployment's failedTasks grew: read its failed tasks (and the first crash's log tail)."""
    from arbiter_ops.ecs.stopped import deployment_failures, log_tail

    target = watch.target
    ours = ours_in(svc, target) if svc else None
    if ours is None or not ours.get("id"):
        return
    failed = int(ours.get("failedTasks", 0) or 0)
    if failed <= watch.seen_failed:
        return
    watch.seen_failed = failed
    name = (target.container or {}).get("name")
    had_first = bool(watch.failures)
    watch.failures = deployment_failures(ctx, target.ecs_service, str(ours["id"]), name)
    first = watch.failures[0] if watch.failures else None
    if first is not None and not had_first and explain(first)[0] == CRASH_LOOP:
        first.log_tail = log_tail(ctx, target.container, first.task_id)
