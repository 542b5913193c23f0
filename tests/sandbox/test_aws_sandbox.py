"""The AWS sandbox's ECS deployments behave like ECS: rollouts move poll by poll, a missing image trips the
circuit breaker and rolls back, and reset forgets everything. Real HTTP, plain boto3."""

from __future__ import annotations

import re
import statistics
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from arbiter_sandbox.aws_server import AwsSandbox
from arbiter_sandbox.control import SandboxControl

if TYPE_CHECKING:
    from aws_world import EcsWorld

BREAKER = "ECS deployment circuit breaker: tasks failed to start."


def counts(service: dict[str, Any]) -> list[tuple[str, str, int, int, int]]:
    """(status, rolloutState, pending, running, failed) of each deployment, PRIMARY first."""
    return [
        (d["status"], d["rolloutState"], d["pendingCount"], d["runningCount"], d["failedTasks"])
        for d in service["deployments"]
    ]


def messages(service: dict[str, Any]) -> list[str]:
    return [e["message"] for e in service["events"]]


def completed(service: dict[str, Any]) -> bool:
    return len(service["deployments"]) == 1 and service["deployments"][0]["rolloutState"] == "COMPLETED"


def test_a_created_service_starts_steady_and_keeps_its_deployment_configuration(world: EcsWorld) -> None:
    created = world.create_service(world.register("v1"))
    for service in (created, world.describe()):
        assert service["deploymentConfiguration"] == {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        }
        assert counts(service) == [("PRIMARY", "COMPLETED", 0, 2, 0)]
        assert (service["runningCount"], service["pendingCount"]) == (2, 0)
    running = world.ecs.list_tasks(cluster=world.cluster, serviceName="backend")["taskArns"]
    assert len(running) == 2
    with pytest.raises(ClientError) as info:
        world.ecs.list_tasks(cluster=world.cluster, serviceName="other")
    assert info.value.response["Error"]["Code"] == "ServiceNotFoundException"


def test_update_service_rolls_out_poll_by_poll(world: EcsWorld) -> None:
    v1 = world.register("v1")
    world.create_service(v1)
    v2 = world.register("v2")
    old_id = world.describe()["deployments"][0]["id"]

    updated = world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition="backend:2")["service"]
    new = updated["deployments"][0]
    assert updated["taskDefinition"] == v2  # the ARN, not "backend:2" as moto keeps it
    assert updated["desiredCount"] == 2  # kept without desiredCount
    assert re.fullmatch(r"ecs-svc/\d{19}", new["id"])
    assert (new["status"], new["rolloutState"], new["taskDefinition"]) == ("PRIMARY", "IN_PROGRESS", v2)
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} in progress."
    assert new["launchType"] == "FARGATE" and new["networkConfiguration"] == world.network()
    assert [(d["id"], d["status"], d["taskDefinition"]) for d in updated["deployments"][1:]] == [(old_id, "ACTIVE", v1)]

    polls = world.poll(completed)
    assert [counts(s) for s in polls] == [
        [("PRIMARY", "IN_PROGRESS", 2, 0, 0), ("ACTIVE", "COMPLETED", 0, 2, 0)],
        [("PRIMARY", "IN_PROGRESS", 0, 2, 0), ("ACTIVE", "COMPLETED", 0, 2, 0)],
        [("PRIMARY", "IN_PROGRESS", 0, 2, 0), ("ACTIVE", "COMPLETED", 0, 0, 0)],
        [("PRIMARY", "COMPLETED", 0, 2, 0)],
    ]
    assert [(s["pendingCount"], s["runningCount"]) for s in polls] == [(2, 2), (0, 4), (0, 2), (0, 2)]
    final = polls[-1]
    assert final["deployments"][0]["id"] == new["id"]
    assert final["deployments"][0]["rolloutStateReason"] == f"ECS deployment {new['id']} completed."
    assert final["taskDefinition"] == v2 and final["desiredCount"] == 2
    events = messages(final)
    assert events[0] == "(service backend) has reached a steady state."
    assert re.fullmatch(
        r"\(service backend\) has stopped 2 running tasks: \(task [0-9a-f]{32}\) \(task [0-9a-f]{32}\)\.", events[1]
    )
    assert re.fullmatch(
        r"\(service backend\) has started 2 tasks: \(task [0-9a-f]{32}\) \(task [0-9a-f]{32}\)\.", events[2]
    )
    assert all(set(e) >= {"id", "createdAt", "message"} for e in final["events"])
    # The tasks of the new revision run; those of the old one were stopped by the scheduler.
    running = world.ecs.describe_tasks(
        cluster=world.cluster, tasks=world.ecs.list_tasks(cluster=world.cluster, serviceName="backend")["taskArns"]
    )["tasks"]
    assert {(t["taskDefinitionArn"], t["lastStatus"], t["startedBy"]) for t in running} == {(v2, "RUNNING", new["id"])}


def test_update_without_a_new_revision_starts_no_deployment_but_force_does(world: EcsWorld) -> None:
    v1 = world.register("v1")
    world.create_service(v1)
    first = world.describe()["deployments"][0]["id"]
    same = world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v1, desiredCount=3)
    assert [d["id"] for d in same["service"]["deployments"]] == [first]
    scaled = world.poll(lambda s: s["runningCount"] == 3)
    assert counts(scaled[-1]) == [("PRIMARY", "COMPLETED", 0, 3, 0)]

    forced = world.ecs.update_service(
        cluster=world.cluster,
        service="backend",
        forceNewDeployment=True,
        deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50},
    )["service"]
    assert len(forced["deployments"]) == 2 and forced["deployments"][0]["id"] != first
    assert forced["deploymentConfiguration"]["maximumPercent"] == 150
    assert forced["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    final = world.poll(completed)[-1]
    assert final["deployments"][0]["taskDefinition"] == v1 and final["runningCount"] == 3


def test_an_image_missing_in_ecr_trips_the_breaker_and_rolls_back(world: EcsWorld) -> None:
    v1 = world.register("v1")
    world.create_service(v1)
    stable_id = world.describe()["deployments"][0]["id"]
    v3 = world.register("v3")  # never pushed
    world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v3)

    polls = world.poll(lambda s: s["deployments"][0]["taskDefinition"] == v1)
    assert len(polls) <= 4, "the breaker must trip within a few polls"
    failed = next(d for d in polls[-1]["deployments"] if d["taskDefinition"] == v3)
    assert (failed["status"], failed["rolloutState"], failed["rolloutStateReason"]) == ("ACTIVE", "FAILED", BREAKER)
    assert failed["failedTasks"] == 4  # two batches of 2: the second crosses the documented minimum of 3
    rollback = polls[-1]["deployments"][0]
    # "rolled back to the last completed deployment": that deployment itself, back IN_PROGRESS, not a new one
    assert (rollback["id"], rollback["status"], rollback["rolloutState"]) == (stable_id, "PRIMARY", "IN_PROGRESS")
    assert rollback["rolloutStateReason"] == f"ECS deployment {stable_id} in progress."
    assert polls[-1]["taskDefinition"] == v1  # moto's own service record switched back too
    events = messages(polls[-1])
    assert "(service backend) is unable to consistently start tasks successfully." in events
    assert not any("failed to start" in e or "CannotPull" in e for e in events)  # the reason is on the task

    stopped = world.ecs.list_tasks(cluster=world.cluster, serviceName="backend", desiredStatus="STOPPED")["taskArns"]
    tasks = world.ecs.describe_tasks(cluster=world.cluster, tasks=stopped)["tasks"]
    assert len(tasks) == failed["failedTasks"]
    for task in tasks:
        assert (task["lastStatus"], task["stopCode"], task["taskDefinitionArn"]) == ("STOPPED", "TaskFailedToStart", v3)
        assert task["startedBy"] == failed["id"]
        assert task["stoppedReason"] == (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
            f"failed to resolve ref {world.image('v3')}: not found"
        )
        assert "exitCode" not in task["containers"][0]

    final = world.poll(completed)[-1]
    assert final["deployments"][0]["id"] == rollback["id"]
    assert (final["taskDefinition"], final["runningCount"]) == (v1, 2)


def test_without_rollback_the_failed_deployment_stays_primary_and_the_old_one_keeps_running(world: EcsWorld) -> None:
    v1 = world.register("v1")
    world.create_service(v1, rollback=False)
    v3 = world.register("v3")
    world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v3)
    polls = world.poll(lambda s: s["deployments"][0]["rolloutState"] == "FAILED")
    for _ in range(3):  # nothing moves any more
        polls.append(world.describe())
    assert counts(polls[-1]) == [("PRIMARY", "FAILED", 0, 0, 4), ("ACTIVE", "COMPLETED", 0, 2, 0)]
    assert polls[-1]["deployments"][0]["rolloutStateReason"] == BREAKER
    assert polls[-1]["taskDefinition"] == v3 and polls[-1]["runningCount"] == 2


def test_an_armed_failure_counts_the_rollback_too(world: EcsWorld) -> None:
    """A singleton's 100 / 0 stops the old tasks first, so the breaker's rollback (the last COMPLETED deployment)
    must start tasks anew, and they fail too: a rollback that fails is not rolled back again."""
    world.create_service(world.register("v1"))
    singleton = {"maximumPercent": 100, "minimumHealthyPercent": 0}
    world.ecs.update_service(cluster=world.cluster, service="backend", deploymentConfiguration=singleton)
    stable_id = world.describe()["deployments"][0]["id"]
    v2 = world.register("v2")
    SandboxControl(world.aws.endpoint_url).fail_next_deployment(
        "backend", count=2, reason="CannotStartContainerError: boom"
    )
    world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v2)
    polls = world.poll(lambda s: sum(d["rolloutState"] == "FAILED" for d in s["deployments"]) == 2, limit=20)
    for _ in range(3):
        polls.append(world.describe())
    last = polls[-1]
    primary, failed = last["deployments"]
    assert (primary["id"], primary["status"], primary["rolloutState"]) == (stable_id, "PRIMARY", "FAILED")
    assert (failed["taskDefinition"], failed["status"], failed["rolloutState"]) == (v2, "ACTIVE", "FAILED")
    assert last["taskDefinition"] == primary["taskDefinition"] != v2
    stopped = world.ecs.list_tasks(cluster=world.cluster, serviceName="backend", desiredStatus="STOPPED")["taskArns"]
    tasks = world.ecs.describe_tasks(cluster=world.cluster, tasks=stopped)["tasks"]
    failures = {t["stoppedReason"] for t in tasks if t["stopCode"] == "TaskFailedToStart"}
    assert failures == {"CannotStartContainerError: boom"}
    # Consumed: the next deployment succeeds.
    world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v2, forceNewDeployment=True)
    assert world.poll(completed)[-1]["taskDefinition"] == v2


@pytest.mark.parametrize("mode", ["instant", "timed"])
def test_progress_modes(world: EcsWorld, mode: str) -> None:
    world.create_service(world.register("v1"))
    v2 = world.register("v2")
    world.aws.ecs.set_progress(mode, step_seconds=0.05)
    world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v2)
    if mode == "instant":
        assert completed(world.describe())
    else:
        import time

        time.sleep(0.3)  # 6 steps due; the rollout takes 4
        assert completed(world.describe())
    assert world.describe()["taskDefinition"] == v2


def test_fargate_task_definitions_are_validated_like_ecs(world: EcsWorld) -> None:
    base: dict[str, Any] = {
        "family": "bad",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "nginx"}],
    }
    refused: list[tuple[dict[str, Any], str]] = [
        ({"memory": "4096"}, "No Fargate configuration exists for given values: 256 CPU, 4096 memory"),
        ({"cpu": "300"}, "No Fargate configuration exists"),
        ({"networkMode": "bridge"}, "Fargate only supports network mode"),
        ({"cpu": None}, "Fargate requires that 'cpu' be defined at the task level."),
    ]
    for change, message in refused:
        params = {k: v for k, v in {**base, **change}.items() if v is not None}
        with pytest.raises(ClientError) as info:
            world.ecs.register_task_definition(**params)
        assert info.value.response["Error"]["Code"] == "ClientException"
        assert message in info.value.response["Error"]["Message"]
    ok = world.ecs.register_task_definition(**{**base, "cpu": "1 vCPU", "memory": "2 GB"})["taskDefinition"]
    assert ok["revision"] == 1
    assert world.ecs.register_task_definition(
        **{
            **base,
            "requiresCompatibilities": ["EC2"],
            "networkMode": "bridge",
            "containerDefinitions": [{"name": "a", "image": "x", "memory": 64}],
        }
    )


def test_reset_forgets_everything_and_is_fast(world: EcsWorld, aws: AwsSandbox) -> None:
    from moto.moto_api import state_manager

    world.create_service(world.register("v1"))
    aws.faults.add({"kind": "throttle", "operation": "ListClusters"})
    aws.ecs.fail_next_deployment("backend")
    aws.ecs.set_progress("instant")
    state_manager.set_transition("ecs::task", {"progression": "immediate"})

    took = [aws.reset()]
    assert world.ecs.list_clusters()["clusterArns"] == []  # no fault left, no cluster left
    assert aws.ecs.state()["services"] == [] and aws.ecs.state()["failing_deployments"] == {}
    assert aws.ecs.progress.mode == "per-call"
    assert state_manager.get_transition("ecs::task") == {"progression": "manual", "times": 1}
    for _ in range(4):  # with some state each time, as between tests
        world.ecs.create_cluster(clusterName=world.cluster)
        arn = world.register("v1")
        world.ecs.create_service(cluster=world.cluster, serviceName="s", taskDefinition=arn, desiredCount=2)
        took.append(aws.reset())
    print(f"reset with state: median {statistics.median(took) * 1000:.1f} ms over {len(took)}")


def test_a_plain_moto_reset_resets_the_overlay_too(world: EcsWorld) -> None:
    import urllib.request

    world.create_service(world.register("v1"))
    urllib.request.urlopen(urllib.request.Request(f"{world.aws.endpoint_url}/moto-api/reset", method="POST")).read()
    assert world.aws.ecs.state()["services"] == []
    assert world.ecs.list_clusters()["clusterArns"] == []


def test_deleting_a_service_stops_its_tasks(world: EcsWorld) -> None:
    world.create_service(world.register("v1", log_group="/ecs/created-later"))  # steady even without its log group
    world.ecs.update_service(cluster=world.cluster, service="backend", desiredCount=0)
    world.poll(lambda s: s["runningCount"] == 0)
    world.ecs.delete_service(cluster=world.cluster, service="backend")
    assert world.ecs.list_tasks(cluster=world.cluster)["taskArns"] == []
    assert world.describe()["status"] == "INACTIVE"
    again = world.create_service(world.register("v2"))  # the name is free again
    assert counts(again) == [("PRIMARY", "COMPLETED", 0, 2, 0)]


def test_concurrent_clients_see_one_consistent_rollout(world: EcsWorld) -> None:
    import threading

    world.create_service(world.register("v1"))
    v2 = world.register("v2")
    world.ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=v2)
    clients = [world.client("ecs") for _ in range(8)]  # boto3 client creation is not thread-safe
    failures: list[BaseException] = []

    def poll(ecs: Any) -> None:
        try:
            for _ in range(10):
                ecs.describe_services(cluster=world.cluster, services=["backend"])
            arn = ecs.run_task(
                cluster=world.cluster, taskDefinition=v2, launchType="FARGATE", networkConfiguration=world.network()
            )["tasks"][0]["taskArn"]
            for _ in range(4):
                ecs.describe_tasks(cluster=world.cluster, tasks=[arn])
        except BaseException as exc:  # reported below: a thread's exception would vanish
            failures.append(exc)

    threads = [threading.Thread(target=poll, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    final = world.poll(completed)[-1]
    assert (final["taskDefinition"], final["runningCount"], final["pendingCount"]) == (v2, 2, 0)
    stopped = world.ecs.list_tasks(cluster=world.cluster, serviceName="backend", desiredStatus="STOPPED")["taskArns"]
    assert len(stopped) == 2  # exactly the old revision's tasks: no step ran twice over the same state
    one_off = world.ecs.list_tasks(cluster=world.cluster, family="backend", desiredStatus="STOPPED")["taskArns"]
    assert len(one_off) == 2 + 8


def test_describe_services_refuses_more_than_ten_as_aws_does(world: EcsWorld) -> None:
    """API reference, DescribeServices: at most 10 services per call; AWS answers InvalidParameterException."""
    ecs = world.ecs
    names = [f"svc-{i}" for i in range(11)]
    with pytest.raises(ClientError) as refused:
        ecs.describe_services(cluster=world.cluster, services=names)
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == "service names can have at most 10 items."
    assert ecs.describe_services(cluster=world.cluster, services=names[:10])["failures"]  # ten is fine


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error["Message"]


def test_a_deregistered_revision_is_refused_by_update_service_and_run_task(world: EcsWorld) -> None:
    """API reference, UpdateService / RunTask Errors: ClientException; `rollback --to-revision N` to a deregistered
    revision must fail here as it fails in AWS (moto accepts it)."""
    ecs = world.ecs
    old = world.register("v1")
    world.create_service(old)
    newer = world.register("v2")
    ecs.deregister_task_definition(taskDefinition=old)
    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=old)
    assert _error(refused) == ("ClientException", "TaskDefinition is inactive")
    with pytest.raises(ClientError) as refused:
        world.run_task(old)
    assert _error(refused) == ("ClientException", "TaskDefinition is inactive")
    ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=newer)  # an active one: ok


def test_a_deleted_service_cannot_be_updated(world: EcsWorld) -> None:
    """API reference, UpdateService Errors: ServiceNotActiveException (moto answers 200)."""
    ecs = world.ecs
    td = world.register("v1")
    world.create_service(td)
    ecs.update_service(cluster=world.cluster, service="backend", desiredCount=0)
    ecs.delete_service(cluster=world.cluster, service="backend")
    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster=world.cluster, service="backend", taskDefinition=td)
    assert _error(refused) == ("ServiceNotActiveException", "Service was not ACTIVE.")


def test_unknown_tasks_are_missing_failures_and_stopping_one_is_invalid(world: EcsWorld) -> None:
    """API reference: DescribeTasks reports an unknown task as a Failure with reason MISSING; StopTask of an
    unknown task is InvalidParameterException (moto answers nothing, and an HTML 500)."""
    ecs = world.ecs
    world.register("v1")
    ghost = "0123456789abcdef0123456789abcdef"
    resp = ecs.describe_tasks(cluster=world.cluster, tasks=[ghost])
    assert resp["tasks"] == []
    assert resp["failures"] == [
        {"arn": f"arn:aws:ecs:us-east-1:123456789012:task/{world.cluster}/{ghost}", "reason": "MISSING"}
    ]
    with pytest.raises(ClientError) as refused:
        ecs.stop_task(cluster=world.cluster, task=ghost)
    assert _error(refused) == ("InvalidParameterException", "The referenced task was not found.")


def test_register_task_definition_has_ecs_quota(world: EcsWorld, aws_client: Any) -> None:
    """'Request throttling for the Amazon ECS API': 20 at once, then ThrottlingException 'Rate exceeded.'."""
    from botocore.config import Config

    ecs = aws_client("ecs", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    body = {"family": "quota", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64}]}
    accepted = 0
    with pytest.raises(ClientError) as info:
        for _ in range(40):  # far faster than the refill of 1 per second
            ecs.register_task_definition(**body)
            accepted += 1
    assert 20 <= accepted < 40
    assert (info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]) == (
        "ThrottlingException",
        "Rate exceeded.",
    )
    assert world.aws.ecs.state()["throttled"] == {"RegisterTaskDefinition": 1}
