"""The verdict on one service (pure): our deployment by id, the failures read from its stopped tasks, the
breaker's way back, someone else's deployment, a stall, and the causes parsed from ECS's stopped-task texts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from arbiter_ops.ecs.causes import StoppedTask, explain
from arbiter_ops.ecs.rollout import Poller
from arbiter_ops.ecs.verdict import Limits, Target, Watch, judge

OLD = "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-backend:1"
NEW = "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-backend:2"
OURS, PREVIOUS, OTHER = "ecs-svc/1111111111111111111", "ecs-svc/2222222222222222222", "ecs-svc/3333333333333333333"
LIMITS = Limits(max_failed_tasks=2, stall_timeout=60)
KEY_MISSING = (
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
    "unable to retrieve secret from asm: service call has been retried 1 time(s): retrieved secret from Secrets "
    "Manager did not contain json key STRIPE_PRICE_ID"
)


def dep(id_: str, status: str, td: str, rollout: str, running: int = 2, failed: int = 0) -> dict[str, Any]:
    return {
        "id": id_,
        "status": status,
        "taskDefinition": td,
        "desiredCount": 2,
        "runningCount": running,
        "pendingCount": 0,
        "failedTasks": failed,
        "rolloutState": rollout,
        "createdAt": datetime(2026, 12, 1, 14, 2, 11, tzinfo=UTC),
    }


def service(td: str, *deployments: dict[str, Any]) -> dict[str, Any]:
    return {"serviceName": "backend", "status": "ACTIVE", "taskDefinition": td, "deployments": list(deployments)}


def watch(**target: Any) -> Watch:
    base = {"deployment_id": OURS, "previous_deployment_id": PREVIOUS, "secret_of_key": {}}
    return Watch(Target("backend", "backend", NEW, **{**base, **target}))


def failure(reason: str | None = KEY_MISSING, code: str = "TaskFailedToStart") -> StoppedTask:
    return StoppedTask("3f2a" + "0" * 28, code, reason, None, None)


def test_our_deployment_completed_is_succeeded() -> None:
    p = judge(service(NEW, dep(OURS, "PRIMARY", NEW, "COMPLETED")), watch(), 0, LIMITS)
    assert (p.state, p.verdict) == ("done", "succeeded")


def test_a_completed_deployment_that_is_not_ours_is_not_success() -> None:
    """moto's lie and the race after UpdateService: a PRIMARY COMPLETED deployment of someone else."""
    p = judge(service(NEW, dep(OTHER, "PRIMARY", NEW, "COMPLETED")), watch(), 0, LIMITS)
    assert p.verdict == "superseded" and OTHER in p.reason and "14:02:11" in p.reason


def test_the_breaker_going_back_to_the_previous_deployment_is_rolled_back_by_ecs() -> None:
    svc = service(OLD, dep(PREVIOUS, "PRIMARY", OLD, "IN_PROGRESS"), dep(OURS, "ACTIVE", NEW, "FAILED", 0, 3))
    w = watch(secret_of_key={"STRIPE_PRICE_ID": "arbiter-ai/production"})
    w.failures = [failure()]
    p = judge(svc, w, 0, LIMITS)
    assert p.verdict == "rolled-back-by-ecs" and "arbiter-backend:1" in p.reason
    assert "secret arbiter-ai/production has no key STRIPE_PRICE_ID" in p.reason and p.failed_tasks == 3


def test_two_failed_tasks_of_ours_decide_before_the_breaker() -> None:
    svc = service(NEW, dep(OURS, "PRIMARY", NEW, "IN_PROGRESS", 0, 2), dep(PREVIOUS, "ACTIVE", OLD, "COMPLETED"))
    w = watch(secret_of_key={"STRIPE_PRICE_ID": "arbiter-ai/production"})
    assert judge(svc, w, 0, LIMITS).state == "waiting"  # failedTasks says 2, but nothing read yet: no cause
    w.failures = [failure(), failure()]
    p = judge(svc, w, 0, LIMITS)
    assert (p.verdict, p.reason) == ("failed-to-start", "secret arbiter-ai/production has no key STRIPE_PRICE_ID")
    assert p.line().startswith("backend: failed-to-start — secret arbiter-ai/production has no key STRIPE_PRICE_ID")
    assert "(task 3f2a0000…, 2 of 2 failed)" in p.line()
    one = watch()
    one.failures = [failure()]
    single = service(NEW, dep(OURS, "PRIMARY", NEW, "IN_PROGRESS", 0, 1), dep(PREVIOUS, "ACTIVE", OLD, "COMPLETED"))
    assert judge(single, one, 0, LIMITS).state == "waiting"


def test_no_change_for_the_stall_timeout_is_stalled() -> None:
    svc = service(NEW, dep(OURS, "PRIMARY", NEW, "IN_PROGRESS", 0), dep(PREVIOUS, "ACTIVE", OLD, "COMPLETED"))
    w = watch()
    assert judge(svc, w, 0, LIMITS).state == "waiting"
    assert judge(svc, w, 59, LIMITS).state == "waiting"
    moved = service(NEW, dep(OURS, "PRIMARY", NEW, "IN_PROGRESS", 1), dep(PREVIOUS, "ACTIVE", OLD, "COMPLETED"))
    assert judge(moved, w, 100, LIMITS).state == "waiting"  # a change restarts the clock
    p = judge(moved, w, 161, LIMITS)
    assert p.verdict == "stalled" and "no change for 60 s" in p.reason


def test_without_a_deployment_id_the_revision_decides() -> None:
    w = watch(deployment_id=None, previous_deployment_id=None)
    assert judge(service(NEW, dep(OTHER, "PRIMARY", NEW, "COMPLETED")), w, 0, LIMITS).verdict == "succeeded"
    assert judge(service(NEW, dep(OTHER, "PRIMARY", OLD, "COMPLETED")), w, 0, LIMITS).state == "waiting"
    assert judge(service(OLD, dep(OTHER, "PRIMARY", OLD, "COMPLETED")), w, 0, LIMITS).verdict == "rolled-back-by-ecs"


CRASH = ("EssentialContainerExited", "Essential container in task exited")
OOM = "OutOfMemoryError: Container killed due to memory usage"
TG_ARN = "arn:aws:elasticloadbalancing:x:tg/be/1"
TG = f"target-group {TG_ARN}"


@pytest.mark.parametrize(
    ("task", "verdict", "cause"),
    [
        (failure(), "failed-to-start", "the secret has no key STRIPE_PRICE_ID"),
        (
            failure(
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:v9: not found"
            ),
            "failed-to-start",
            "image arbiter-ai/backend:v9 not found",
        ),
        (
            failure(
                "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
                "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to "
                "fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:arbiter-ai/prod-AbC123 from "
                "secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret."
            ),
            "failed-to-start",
            "secret arbiter-ai/prod not found",
        ),
        (StoppedTask("t", *CRASH, 137, OOM), "crash-loop", "exit 137: out of memory"),
        (
            StoppedTask("t", *CRASH, 1, None, log_tail=["a", "", "b", "c", "KeyError: 'X'"]),
            "crash-loop",
            "exit 1; last log lines: b | c | KeyError: 'X'",
        ),
        (
            StoppedTask("t", "ServiceSchedulerInitiated", "Task failed container health checks", 143, None),
            "unhealthy",
            "the container health check failed",
        ),
        (
            StoppedTask("t", "ServiceSchedulerInitiated", f"Task failed ELB health checks in ({TG})", 143, None),
            "unhealthy",
            f"the load balancer's health checks failed in {TG_ARN}",
        ),
    ],
)
def test_causes_from_the_documented_stopped_task_texts(task: StoppedTask, verdict: str, cause: str) -> None:
    assert explain(task) == (verdict, cause)


def test_tasks_a_rollout_or_a_person_stopped_are_not_failures() -> None:
    scaled = StoppedTask("t", "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment x)", 0, None)
    assert not scaled.is_failure
    assert not StoppedTask("t", "UserInitiated", "Task stopped by user", 143, None).is_failure
    assert StoppedTask("t", *CRASH, 1, None).is_failure


def test_polling_starts_fast_and_slows_down() -> None:
    poller = Poller(minimum=1.0, maximum=5.0)
    intervals = [poller.next() for _ in range(8)]
    assert intervals[0] == 1.0 and intervals == sorted(intervals) and intervals[-1] == 5.0
