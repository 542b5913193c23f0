"""One-off ECS tasks in the AWS sandbox: RunTask plays out like Fargate, with exit codes, stop codes and
CloudWatch logs; tasks that cannot start fail to start for ECS's reasons. Real HTTP, plain boto3."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from arbiter_sandbox.control import SandboxControl

if TYPE_CHECKING:
    from aws_world import EcsWorld

ALEMBIC = ["alembic", "upgrade", "head"]


def test_run_task_plays_out_with_the_configured_exit_code_and_logs(world: EcsWorld) -> None:
    td = world.register("v1")
    control = SandboxControl(world.aws.endpoint_url)
    control.task_outcome(command_contains="alembic", exit_code=3, log_lines=["INFO start", "ERROR boom", "bye"])

    task = world.run_task(td, command=ALEMBIC, startedBy="arbiter-ops")
    assert re.fullmatch(rf"arn:aws:ecs:us-east-1:123456789012:task/{world.cluster}/[0-9a-f]{{32}}", task["taskArn"])
    assert (task["lastStatus"], task["desiredStatus"]) == ("PROVISIONING", "RUNNING")
    assert (task["group"], task["startedBy"], task["launchType"]) == ("family:backend", "arbiter-ops", "FARGATE")
    assert task["overrides"]["containerOverrides"] == [{"name": "app", "command": ALEMBIC}]

    statuses = []
    for _ in range(4):
        polled = world.describe_task(task["taskArn"])
        statuses.append(polled["lastStatus"])
        if polled["lastStatus"] == "RUNNING":
            assert world.log_lines(task["taskArn"]) == ["INFO start", "ERROR boom"]  # visible while running
    assert statuses == ["PENDING", "RUNNING", "DEPROVISIONING", "STOPPED"]
    assert (polled["desiredStatus"], polled["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    assert polled["stoppedReason"] == "Essential container in task exited"
    container = polled["containers"][0]
    assert (container["name"], container["image"], container["lastStatus"]) == ("app", world.image("v1"), "STOPPED")
    assert container["exitCode"] == 3
    assert polled["createdAt"] <= polled["startedAt"] <= polled["stoppingAt"] <= polled["stoppedAt"]
    assert world.log_lines(task["taskArn"]) == ["INFO start", "ERROR boom", "bye"]


def test_a_task_without_a_scenario_exits_0_with_alembic_like_logs(world: EcsWorld) -> None:
    td = world.register("v1")
    world.aws.ecs.task_outcome(command_contains="something-else", exit_code=9)  # does not match: stays armed
    _, task = world.follow_task(world.run_task(td, command=ALEMBIC)["taskArn"])
    assert task["containers"][0]["exitCode"] == 0
    lines = world.log_lines(task["taskArn"])
    assert lines and all(line.startswith("INFO  [alembic") for line in lines)
    assert world.aws.ecs.state()["task_outcomes"][0]["exit_code"] == 9


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("scenario", "ResourceInitializationError: unable to pull secrets or registry auth: scenario"),
        (
            "missing-image",
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref",
        ),
        ("missing-log-group", "ResourceInitializationError: failed to validate logger args:"),
        ("missing-secret", "ResourceInitializationError: unable to pull secrets or registry auth:"),
    ],
)
def test_tasks_that_cannot_start_fail_to_start(world: EcsWorld, setup: str, reason: str) -> None:
    td = world.register("v1")
    if setup == "scenario":
        world.aws.ecs.task_outcome(fail_to_start=reason)
    elif setup == "missing-image":
        td = world.register("v9")
    elif setup == "missing-log-group":
        td = world.register("v1", log_group="/ecs/nowhere")
    else:
        missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf:url::"
        td = world.register("v1", secrets=[{"name": "DB", "valueFrom": missing}])
    statuses, task = world.follow_task(world.run_task(td, command=ALEMBIC)["taskArn"])
    assert "RUNNING" not in statuses
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith(reason)
    if setup == "missing-log-group":
        assert "The specified log group does not exist." in task["stoppedReason"]
    assert "exitCode" not in task["containers"][0]


def test_a_secret_that_exists_lets_the_task_start(world: EcsWorld) -> None:
    arn = world.client("secretsmanager").create_secret(Name="db", SecretString='{"url": "x"}')["ARN"]
    td = world.register("v1", secrets=[{"name": "DB", "valueFrom": f"{arn}:url::"}])
    _, task = world.follow_task(world.run_task(td)["taskArn"])
    assert task["stopCode"] == "EssentialContainerExited"


def test_a_json_key_the_secret_lacks_fails_the_task_to_start_naming_the_key(world: EcsWorld) -> None:
    """ECS resolves `ARN:json-key::` when the task starts: a key missing from the secret's current value stops the
    task with TaskFailedToStart before any container runs, and the reason names the key (as stopped tasks report
    it; https://repost.aws/knowledge-center/ecs-unable-to-pull-secrets). Once the key is there, tasks start."""
    sm = world.client("secretsmanager")
    arn = sm.create_secret(Name="arbiter-ai/production", SecretString='{"DATABASE_URL": "x"}')["ARN"]
    references = [
        {"name": "DATABASE_URL", "valueFrom": f"{arn}:DATABASE_URL::"},
        {"name": "STRIPE_PRICE_ID", "valueFrom": f"{arn}:STRIPE_PRICE_ID::"},
    ]
    td = world.register("v1", secrets=references)
    statuses, task = world.follow_task(world.run_task(td)["taskArn"])
    assert "RUNNING" not in statuses
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"] == (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): retrieved secret "
        "from Secrets Manager did not contain json key STRIPE_PRICE_ID"
    )
    assert "exitCode" not in task["containers"][0]

    sm.put_secret_value(SecretId=arn, SecretString='{"DATABASE_URL": "x", "STRIPE_PRICE_ID": "price_1"}')
    _, task = world.follow_task(world.run_task(td)["taskArn"])
    assert task["stopCode"] == "EssentialContainerExited"

    sm.put_secret_value(SecretId=arn, SecretString="not json")  # a key asked of a value that is no JSON object
    _, task = world.follow_task(world.run_task(td)["taskArn"])
    assert task["stopCode"] == "TaskFailedToStart"


def test_stop_task_on_a_task_that_never_stops(world: EcsWorld) -> None:
    td = world.register("v1")
    world.aws.ecs.task_outcome(never_stops=True)
    arn = world.run_task(td, command=["sleep", "infinity"])["taskArn"]
    assert [world.describe_task(arn)["lastStatus"] for _ in range(5)] == ["PENDING"] + ["RUNNING"] * 4
    assert world.ecs.list_tasks(cluster=world.cluster, family="backend")["taskArns"] == [arn]

    stopped = world.ecs.stop_task(cluster=world.cluster, task=arn, reason="cancelled by arbiter-ops")["task"]
    assert (stopped["desiredStatus"], stopped["stopCode"]) == ("STOPPED", "UserInitiated")
    assert stopped["stoppedReason"] == "cancelled by arbiter-ops"
    statuses, task = world.follow_task(arn)
    assert statuses == ["DEPROVISIONING", "STOPPED"]
    assert task["stopCode"] == "UserInitiated" and task["containers"][0]["exitCode"] == 143
    assert world.ecs.list_tasks(cluster=world.cluster, family="backend")["taskArns"] == []
    assert world.ecs.list_tasks(cluster=world.cluster, desiredStatus="STOPPED", startedBy="nobody")["taskArns"] == []
    assert world.ecs.list_tasks(cluster=world.cluster, desiredStatus="STOPPED")["taskArns"] == [arn]


def test_instant_progress_stops_at_the_first_poll(world: EcsWorld) -> None:
    td = world.register("v1")
    world.aws.ecs.set_progress("instant")
    arn = world.run_task(td)["taskArn"]
    assert world.describe_task(arn)["lastStatus"] == "STOPPED"


def test_run_task_errors_have_ecs_shapes(world: EcsWorld) -> None:
    td = world.register("v1")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"cluster": "nope"}, "ClusterNotFoundException", "Cluster not found."),
        ({"taskDefinition": "missing:1"}, "InvalidParameterException", "TaskDefinition not found."),
        (
            {"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}},
            "InvalidParameterException",
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ),
        (
            {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0000"]}}},
            "InvalidParameterException",
            "Error retrieving subnet information for [subnet-0000]",
        ),
    ]
    for change, code, message in cases:
        params = {
            "cluster": world.cluster,
            "taskDefinition": td,
            "launchType": "FARGATE",
            "networkConfiguration": world.network(),
            **change,
        }
        with pytest.raises(ClientError) as info:
            world.ecs.run_task(**params)
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["Error"]["Message"].startswith(message)
    described = world.ecs.describe_tasks(cluster=world.cluster, tasks=[world.run_task(td)["taskArn"], "0" * 32])
    assert len(described["tasks"]) == 1
    assert described["failures"][0]["reason"] == "MISSING"


def test_images_by_digest_are_looked_up_in_ecr(world: EcsWorld) -> None:
    digest = world.push("v5")
    repo = world.image("v5").rsplit(":", 1)[0]
    _, task = world.follow_task(world.run_task(world.register(image=f"{repo}@{digest}"))["taskArn"])
    assert task["stopCode"] == "EssentialContainerExited"
    _, task = world.follow_task(world.run_task(world.register(image=f"{repo}@sha256:{'0' * 64}"))["taskArn"])
    assert task["stopCode"] == "TaskFailedToStart" and "CannotPullContainerError" in task["stoppedReason"]
    _, task = world.follow_task(world.run_task(world.register(image="public.ecr.aws/nginx/nginx:1"))["taskArn"])
    assert task["stopCode"] == "EssentialContainerExited"  # not the sandbox's ECR: counts as present
