"""Faults injected by the AWS sandbox look like AWS's own to botocore (throttling, transient errors) in each
protocol; seeded faults repeat; a CLI subprocess with only AWS_ENDPOINT_URL sees all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from arbiter_sandbox.aws_server import AwsSandbox
from arbiter_sandbox.control import SandboxControl, SandboxControlError

if TYPE_CHECKING:
    from aws_world import EcsWorld

# botocore's "max_attempts" counts retries (2 attempts here); "total_max_attempts" counts attempts.
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})
SINGLE = Config(retries={"total_max_attempts": 1, "mode": "standard"})
RETRY = Config(retries={"max_attempts": 5, "mode": "standard"})


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["ResponseMetadata"]["HTTPStatusCode"], info.value.response["Error"]["Code"]


def test_throttled_describe_services_is_retried_by_botocore(world: EcsWorld) -> None:
    world.create_service(world.register("v1"))
    control = SandboxControl(world.aws.endpoint_url)
    control.add_fault(kind="throttle", operation="DescribeServices", count=2)
    impatient = world.client("ecs", config=NO_RETRY)
    assert error_of(lambda: impatient.describe_services(cluster=world.cluster, services=["backend"])) == (
        400,
        "ThrottlingException",
    )
    control.clear_faults()
    control.add_fault(kind="throttle", operation="ecs:DescribeServices", count=2)
    patient = world.client("ecs", config=RETRY)
    answer = patient.describe_services(cluster=world.cluster, services=["backend"])
    assert answer["services"][0]["serviceName"] == "backend"
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert control.faults() == []  # both consumed
    impatient.list_clusters()  # other operations were never affected


def test_a_fault_rule_for_one_service_leaves_others_alone(aws: AwsSandbox, aws_client: Callable[..., Any]) -> None:
    aws.faults.add({"kind": "throttle", "operation": "rds:*"})
    aws_client("ecs", config=SINGLE).list_clusters()
    assert error_of(lambda: aws_client("rds", config=SINGLE).describe_db_instances())[1] == "Throttling"


@pytest.mark.parametrize(
    ("service", "call", "operation", "throttle_code"),
    [
        ("rds", "describe_db_instances", "DescribeDBInstances", "Throttling"),  # query protocol
        ("ec2", "describe_vpcs", "DescribeVpcs", "RequestLimitExceeded"),  # ec2 protocol
        ("secretsmanager", "list_secrets", "ListSecrets", "ThrottlingException"),  # JSON
        ("route53", "list_hosted_zones", "GET /2013-04-01/hostedzone", "Throttling"),  # REST-XML
    ],
)
def test_each_protocol_gets_its_own_throttling_and_transient_errors(
    aws: AwsSandbox, aws_client: Callable[..., Any], service: str, call: str, operation: str, throttle_code: str
) -> None:
    # One attempt each (botocore's backoff makes retries slow): the error shapes, then one retry that succeeds.
    client, patient = aws_client(service, config=SINGLE), aws_client(service, config=RETRY)
    aws.faults.add({"kind": "throttle", "operation": operation, "count": 1})
    assert error_of(getattr(client, call)) == (400, throttle_code)
    aws.faults.add({"kind": "error", "operation": operation, "count": 1})
    status, code = error_of(getattr(client, call))
    assert status == 500 and code in ("InternalFailure", "InternalError")
    aws.faults.add({"kind": "error", "operation": operation, "count": 1, "status": 503})
    assert error_of(getattr(client, call)) == (503, "Unavailable" if service == "ec2" else "ServiceUnavailable")
    for kind in ("throttle", "error"):  # botocore classifies both as retryable
        aws.faults.add({"kind": kind, "operation": operation, "count": 1})
        assert getattr(patient, call)()["ResponseMetadata"]["RetryAttempts"] == 1


def test_cloudwatch_cbor_throttling(aws: AwsSandbox, aws_client: Callable[..., Any]) -> None:
    aws.faults.add({"kind": "throttle", "operation": "monitoring:ListMetrics", "count": 1})
    assert error_of(aws_client("cloudwatch", config=SINGLE).list_metrics) == (400, "ThrottlingException")


def test_a_seeded_fault_rate_repeats_after_reset(aws: AwsSandbox, aws_client: Callable[..., Any]) -> None:
    def outcomes() -> list[str]:
        aws.reset()
        SandboxControl(aws.endpoint_url).add_fault(kind="error", operation="ListClusters", probability=0.3, seed=42)
        ecs = aws_client("ecs", config=SINGLE)
        seen = []
        for _ in range(30):
            try:
                ecs.list_clusters()
                seen.append("ok")
            except ClientError as exc:
                seen.append(exc.response["Error"]["Code"])
        return seen

    first, second = outcomes(), outcomes()
    assert first == second
    assert 3 <= first.count("InternalFailure") <= 18 and "ok" in first


def test_latency_faults_delay_but_answer(aws: AwsSandbox, aws_client: Callable[..., Any]) -> None:
    aws.faults.add({"kind": "latency", "operation": "ListClusters", "latency_ms": 250, "count": 1})
    started = time.perf_counter()
    aws_client("ecs").list_clusters()
    assert time.perf_counter() - started >= 0.25


def test_control_routes_over_http(aws: AwsSandbox) -> None:
    control = SandboxControl(aws.endpoint_url)
    assert control.health() == {"ok": True, "name": "aws"}
    with pytest.raises(SandboxControlError) as info:
        control.add_fault(kind="throttle", probability=0.5)  # no seed: not repeatable
    assert info.value.status == 400 and "seed" in str(info.value)
    with pytest.raises(SandboxControlError):
        control.set_progress("sometimes")
    with pytest.raises(SandboxControlError) as missing:
        control._call("GET", "/_sandbox/nothing")
    assert missing.value.status == 404
    assert control.set_progress("timed", step_seconds=0.5) == {"mode": "timed", "step_seconds": 0.5}
    with pytest.raises(SandboxControlError) as bad_change:
        control.task_outcome(secret_change={"secret_id": "s"})
    assert bad_change.value.status == 400
    change = {"secret_id": "s", "secret_string": "{}"}
    control.task_outcome(command_contains="alembic", exit_code=1, log_lines=["x"], secret_change=change)
    control.fail_next_deployment("backend", count=2, reason="no")
    state = control.ecs_state()
    assert state["progress"]["mode"] == "timed"
    assert state["task_outcomes"][0]["command_contains"] == "alembic"
    assert state["task_outcomes"][0]["secret_change"] == change
    assert state["failing_deployments"] == {
        "backend": {"count": 2, "kind": "start", "reason": "no", "exit_code": 1, "log_lines": [], "secret_change": []}
    }
    with pytest.raises(SandboxControlError) as bad_kind:
        control.fail_next_deployment("backend", kind="sometimes")
    assert bad_kind.value.status == 400
    assert control.reset()["ok"] is True
    assert control.ecs_state()["task_outcomes"] == []


SUBPROCESS_SCRIPT = textwrap.dedent(
    """
    import json, boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    ecs = boto3.client("ecs", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    out = {}
    try:
        ecs.describe_services(cluster="arbiter", services=["backend"])
    except ClientError as exc:
        out["throttled"] = exc.response["Error"]["Code"]
    ecs.update_service(cluster="arbiter", service="backend", taskDefinition="backend:3")
    out["polls"] = []
    for _ in range(10):
        service = ecs.describe_services(cluster="arbiter", services=["backend"])["services"][0]
        out["polls"].append([(d["taskDefinition"][-9:], d["rolloutState"]) for d in service["deployments"]])
        if service["taskDefinition"].endswith("backend:1") and len(service["deployments"]) == 1:
            break
    print(json.dumps(out))
    """
)


def test_a_cli_subprocess_with_only_an_endpoint_url_sees_the_same_behaviour(world: EcsWorld) -> None:
    world.create_service(world.register("v1"))
    world.register("v2")
    world.register("v3")  # not in ECR: the breaker trips and rolls back to backend:1
    SandboxControl(world.aws.endpoint_url).add_fault(kind="throttle", operation="DescribeServices", count=1)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ENDPOINT_URL": world.aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    run = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["throttled"] == "ThrottlingException"
    states = out["polls"]
    assert states[0] == [["backend:3", "IN_PROGRESS"], ["backend:1", "COMPLETED"]]
    assert any(["backend:3", "FAILED"] in poll for poll in states)
    assert states[-1] == [["backend:1", "COMPLETED"]]
