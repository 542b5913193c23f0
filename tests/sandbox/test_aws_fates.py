"""How the sandbox's ECS shows a deployment that goes wrong, checked from outside with plain boto3: the reason is on
the stopped task (stopCode, stoppedReason, the container's exitCode and reason, startedBy = the deployment's id),
the breaker trips at its documented threshold, and every service event is one of the documented messages."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from arbiter_sandbox.ecs_scenarios import DOCUMENTED_EVENTS, SERVICE_EVENT_PAGE

if TYPE_CHECKING:
    from aws_world import EcsWorld


def stopped_tasks(world: EcsWorld, deployment_id: str) -> list[dict[str, Any]]:
    """The stopped tasks a deployment started (ListTasks documents startedBy as usable only alone)."""
    arns = world.ecs.list_tasks(cluster=world.cluster, serviceName="backend", desiredStatus="STOPPED")["taskArns"]
    tasks = world.ecs.describe_tasks(cluster=world.cluster, tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["startedBy"] == deployment_id]


def new_deployment(world: EcsWorld, **fate: Any) -> tuple[str, str]:
    """A service on v1, a deployment of v2 armed with ``fate``: (v2's ARN, the new deployment's id)."""
    world.create_service(world.register("v1"))
    v2 = world.register("v2")
    world.aws.ecs.fail_next_deployment("backend", **fate)
    updated = world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v2)["service"]
    return v2, updated["deployments"][0]["id"]


def ours(service: dict[str, Any], deployment_id: str) -> dict[str, Any]:
    return next(d for d in service["deployments"] if d["id"] == deployment_id)


def test_a_crashing_app_stops_with_its_exit_code_and_its_last_lines_in_its_log_stream(world: EcsWorld) -> None:
    _, dep = new_deployment(world, kind="crash", exit_code=1, log_lines=["boot", "KeyError: 'STRIPE_PRICE_ID'"])
    world.poll(lambda s: ours(s, dep)["failedTasks"] >= 2)
    tasks = stopped_tasks(world, dep)
    assert len(tasks) == 2
    for task in tasks:
        assert (task["stopCode"], task["stoppedReason"]) == (
            "EssentialContainerExited",
            "Essential container in task exited",
        )
        assert task["startedBy"] == dep and "startedAt" in task
        assert task["containers"][0]["exitCode"] == 1 and "reason" not in task["containers"][0]
        assert world.log_lines(task["taskArn"]) == ["boot", "KeyError: 'STRIPE_PRICE_ID'"]


def test_an_out_of_memory_kill_is_exit_137_with_the_documented_container_reason(world: EcsWorld) -> None:
    _, dep = new_deployment(world, kind="crash", exit_code=137)
    world.poll(lambda s: ours(s, dep)["failedTasks"] >= 2)
    container = stopped_tasks(world, dep)[0]["containers"][0]
    assert (container["exitCode"], container["reason"]) == (
        137,
        "OutOfMemoryError: Container killed due to memory usage",
    )


def test_a_failing_health_check_stops_the_task_with_the_documented_reason_and_event(world: EcsWorld) -> None:
    _, dep = new_deployment(world, kind="unhealthy")
    polls = world.poll(lambda s: ours(s, dep)["failedTasks"] >= 2)
    task = stopped_tasks(world, dep)[0]
    assert (task["stopCode"], task["stoppedReason"]) == (
        "ServiceSchedulerInitiated",
        "Task failed container health checks",
    )
    assert task["containers"][0]["healthStatus"] == "UNHEALTHY"
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    assert f"(service backend) (task {task_id}) failed container health checks." in [
        e["message"] for e in polls[-1]["events"]
    ]


def test_a_stalled_deployment_stays_pending_and_never_completes(world: EcsWorld) -> None:
    _, dep = new_deployment(world, kind="stall")
    seen = [world.describe() for _ in range(8)]
    assert [(ours(s, dep)["rolloutState"], ours(s, dep)["pendingCount"]) for s in seen[1:]] == [("IN_PROGRESS", 2)] * 7
    assert ours(seen[-1], dep)["failedTasks"] == 0 and seen[-1]["runningCount"] == 2  # the old tasks keep serving


def test_a_superseded_deployment_gives_way_to_a_new_one_with_its_own_id(world: EcsWorld) -> None:
    v2, dep = new_deployment(world, kind="supersede")
    first = world.describe()["deployments"]
    primary = first[0]
    assert primary["id"] != dep and primary["status"] == "PRIMARY" and primary["taskDefinition"] != v2
    assert ours(world.describe(), dep)["status"] == "ACTIVE"


@pytest.mark.parametrize(("desired", "threshold"), [(1, 3), (2, 3), (10, 5), (12, 6)])
def test_the_breaker_threshold_is_half_the_desired_count_within_its_documented_bounds(
    world: EcsWorld, desired: int, threshold: int
) -> None:
    world.create_service(world.register("v1"), desired=desired)
    # maximumPercent 110: room for one extra task at a time, so failures are counted one by one
    world.ecs.update_service(cluster=world.cluster, service="backend", deploymentConfiguration={"maximumPercent": 110})
    world.aws.ecs.fail_next_deployment("backend", reason="CannotStartContainerError: boom")
    dep = world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=world.register("v2"))[
        "service"
    ]["deployments"][0]["id"]
    polls = world.poll(lambda s: ours(s, dep)["rolloutState"] == "FAILED", limit=40)
    counts = [ours(s, dep)["failedTasks"] for s in polls]
    assert counts[-1] == threshold and all(c < threshold for c in counts[:-1])


def test_every_emitted_event_is_a_documented_message(world: EcsWorld) -> None:
    """Each fate played to its end; the service's events must each match a message of the documented list."""
    assert SERVICE_EVENT_PAGE.startswith("https://docs.aws.amazon.com/AmazonECS/latest/developerguide/")
    seen: list[str] = []
    world.create_service(world.register("v1"))
    for fate in ({"kind": "start"}, {"kind": "crash"}, {"kind": "unhealthy"}, {"kind": "supersede"}, {}):
        if fate:
            world.aws.ecs.fail_next_deployment("backend", **fate)
        world.ecs.update_service(cluster=world.cluster, service="backend", forceNewDeployment=True)
        for _ in range(14):
            seen.extend(e["message"] for e in world.describe()["events"])
    assert {m for m in seen if "failed container health checks" in m}, "the unhealthy fate was played"
    undocumented = sorted({m for m in seen if not any(re.fullmatch(p, m) for p, _ in DOCUMENTED_EVENTS)})
    assert undocumented == []
