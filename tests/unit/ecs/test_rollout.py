"""The rollout verdicts, as a pure function of one DescribeServices entry (no AWS needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arbiter_ops.ecs.rollout import Poller, Target, assess

OLD = "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-backend:1"
NEW = "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-backend:2"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def service(task_definition: str, deployments: list[dict[str, Any]], events: list[str] = ()) -> dict[str, Any]:
    return {
        "serviceName": "backend",
        "status": "ACTIVE",
        "taskDefinition": task_definition,
        "desiredCount": 2,
        "deployments": deployments,
        "events": [{"message": m, "createdAt": T0 + timedelta(seconds=10 + i)} for i, m in enumerate(events)],
    }


def dep(status: str, td: str, rollout: str | None, running: int = 2, **extra: Any) -> dict[str, Any]:
    d = {"status": status, "taskDefinition": td, "desiredCount": 2, "runningCount": running, "pendingCount": 0}
    if rollout:
        d["rolloutState"] = rollout
    return d | extra


TARGET = Target("backend", "backend", NEW, T0)


def test_completed_primary_on_the_new_revision_is_done() -> None:
    assert assess(service(NEW, [dep("PRIMARY", NEW, "COMPLETED")]), TARGET).state == "done"


def test_in_progress_with_the_old_deployment_still_listed_is_waiting() -> None:
    svc = service(NEW, [dep("PRIMARY", NEW, "IN_PROGRESS", running=1), dep("ACTIVE", OLD, "COMPLETED")])
    assert assess(svc, TARGET).state == "waiting"


def test_a_stale_completed_deployment_of_the_old_revision_is_not_success() -> None:
    """moto's lie: the one PRIMARY deployment still names the old revision, COMPLETED."""
    assert assess(service(NEW, [dep("PRIMARY", OLD, "COMPLETED")]), TARGET).state == "waiting"


def test_rollout_failed_fails_at_once_with_ecs_reason() -> None:
    svc = service(
        NEW,
        [dep("PRIMARY", NEW, "FAILED", rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.")],
    )
    p = assess(svc, TARGET)
    assert p.state == "failed" and "circuit breaker" in p.reason


def test_switched_back_by_the_circuit_breaker_is_a_failure_even_when_stable() -> None:
    p = assess(service(OLD, [dep("PRIMARY", OLD, "COMPLETED")]), TARGET)
    assert p.state == "failed" and "arbiter-backend:1" in p.reason


def test_repeated_task_start_failures_fail_before_ecs_gives_up() -> None:
    events = ["(service backend) (task a) failed to start: CannotPullContainerError: x"] * 3
    svc = service(NEW, [dep("PRIMARY", NEW, "IN_PROGRESS", running=0), dep("ACTIVE", OLD, None)], events)
    assert assess(svc, TARGET).state == "failed"
    earlier = Target("backend", "backend", NEW, T0 + timedelta(hours=1))  # those events predate this deploy
    assert assess(svc, earlier).state == "waiting"


def test_without_a_rollout_state_one_deployment_at_desired_is_done() -> None:
    assert assess(service(NEW, [dep("PRIMARY", NEW, None)]), TARGET).state == "done"
    two = service(NEW, [dep("PRIMARY", NEW, None), dep("ACTIVE", OLD, None)])
    assert assess(two, TARGET).state == "waiting"


def test_polling_starts_fast_and_slows_down() -> None:
    poller = Poller(minimum=1.0, maximum=5.0)
    intervals = [poller.next() for _ in range(8)]
    assert intervals[0] == 1.0 and intervals == sorted(intervals) and intervals[-1] == 5.0
