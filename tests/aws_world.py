"""Fixtures for the AWS sandbox's own tests (a pytest plugin loaded by tests/conftest.py): one sandbox
per session, reset before each test, and a small
ECS world (VPC, ECR images, log group, cluster, task definitions, a steady service) built over plain boto3."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from arbiter_sandbox.aws_server import AwsSandbox

ACCOUNT = "123456789012"
REGION = "us-east-1"
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture(scope="session")
def aws_sandbox() -> Iterator[AwsSandbox]:
    sandbox = AwsSandbox()
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def aws(aws_sandbox: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> AwsSandbox:
    """The session's sandbox, reset (resources, overlay, faults), with dummy credentials in the environment."""
    seconds = aws_sandbox.reset()
    print(f"aws sandbox reset: {seconds * 1000:.1f} ms")
    for key, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return aws_sandbox


@pytest.fixture
def aws_client(aws: AwsSandbox) -> Callable[..., Any]:
    """boto3 clients against the sandbox: ``aws_client("ecs")`` or with a botocore ``config=``."""
    import boto3

    def make(service: str, **kwargs: Any) -> Any:
        return boto3.client(service, endpoint_url=aws.endpoint_url, region_name=REGION, **kwargs)

    return make


def manifest(tag: str) -> str:
    """A Docker v2 manifest whose digests differ per tag (moto derives the image digest from the layers)."""
    layer = json.dumps(tag).encode().hex().ljust(64, "0")[:64]
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7,
                "digest": f"sha256:{layer}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 9,
                    "digest": f"sha256:{layer}",
                }
            ],
        }
    )


@dataclass
class EcsWorld:
    """What seeded infrastructure would hold, plus helpers to poll the way a deploy tool does."""

    aws: AwsSandbox
    client: Callable[..., Any]
    cluster: str = "arbiter"
    log_group: str = "/ecs/backend"
    subnets: list[str] = field(default_factory=list)
    security_group: str = ""

    def __post_init__(self) -> None:
        self.ecs = self.client("ecs")
        self.logs = self.client("logs")
        self.ecr = self.client("ecr")

    def image(self, tag: str, repo: str = "backend") -> str:
        return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repo}:{tag}"

    def push(self, tag: str, repo: str = "backend") -> str:
        """Put an image into the sandbox's ECR; returns its digest."""
        image = self.ecr.put_image(repositoryName=repo, imageTag=tag, imageManifest=manifest(tag))["image"]
        return str(image["imageId"]["imageDigest"])

    def register(
        self,
        tag: str = "v1",
        image: str | None = None,
        log_group: str | None = None,
        secrets: list[dict[str, str]] | None = None,
    ) -> str:
        container: dict[str, Any] = {
            "name": "app",
            "image": image or self.image(tag),
            "essential": True,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group or self.log_group,
                    "awslogs-region": REGION,
                    "awslogs-stream-prefix": "ecs",
                },
            },
        }
        if secrets is not None:
            container["secrets"] = secrets
        td = self.ecs.register_task_definition(
            family="backend",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
            containerDefinitions=[container],
        )
        return str(td["taskDefinition"]["taskDefinitionArn"])

    def network(self) -> dict[str, Any]:
        return {"awsvpcConfiguration": {"subnets": self.subnets, "securityGroups": [self.security_group]}}

    def create_service(self, task_definition: str, desired: int = 2, rollback: bool = True) -> dict[str, Any]:
        return dict(
            self.ecs.create_service(
                cluster=self.cluster,
                serviceName="backend",
                taskDefinition=task_definition,
                desiredCount=desired,
                launchType="FARGATE",
                networkConfiguration=self.network(),
                deploymentConfiguration={
                    "deploymentCircuitBreaker": {"enable": True, "rollback": rollback},
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                },
            )["service"]
        )

    def describe(self, service: str = "backend") -> dict[str, Any]:
        return dict(self.ecs.describe_services(cluster=self.cluster, services=[service])["services"][0])

    def poll(self, until: Callable[[dict[str, Any]], bool], limit: int = 20) -> list[dict[str, Any]]:
        """DescribeServices until ``until(service)``; every snapshot seen, the last one satisfying it."""
        seen = []
        for _ in range(limit):
            seen.append(self.describe())
            if until(seen[-1]):
                return seen
        raise AssertionError(f"no such state after {limit} polls; last: {json.dumps(seen[-1], default=str)[:2000]}")

    def run_task(self, task_definition: str, command: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        overrides = {"containerOverrides": [{"name": "app", "command": command}]} if command else {}
        return dict(
            self.ecs.run_task(
                cluster=self.cluster,
                taskDefinition=task_definition,
                launchType="FARGATE",
                networkConfiguration=self.network(),
                overrides=overrides,
                **kwargs,
            )["tasks"][0]
        )

    def describe_task(self, task_arn: str) -> dict[str, Any]:
        return dict(self.ecs.describe_tasks(cluster=self.cluster, tasks=[task_arn])["tasks"][0])

    def follow_task(self, task_arn: str, limit: int = 10) -> tuple[list[str], dict[str, Any]]:
        """DescribeTasks until STOPPED: the lastStatus of every poll and the final task."""
        statuses = []
        for _ in range(limit):
            task = self.describe_task(task_arn)
            statuses.append(task["lastStatus"])
            if task["lastStatus"] == "STOPPED":
                return statuses, task
        raise AssertionError(f"task not STOPPED after {limit} polls: {statuses}")

    def log_lines(self, task_arn: str, container: str = "app") -> list[str]:
        stream = f"ecs/{container}/{task_arn.rsplit('/', 1)[-1]}"
        events = self.logs.get_log_events(logGroupName=self.log_group, logStreamName=stream, startFromHead=True)
        return [e["message"] for e in events["events"]]


@pytest.fixture
def world(aws: AwsSandbox, aws_client: Callable[..., Any]) -> EcsWorld:
    """A VPC with two subnets, ECR repo "backend" holding v1 and v2, a log group and cluster "arbiter"."""
    ec2 = aws_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    sg = ec2.create_security_group(GroupName="ecs", Description="ecs tasks", VpcId=vpc)["GroupId"]
    w = EcsWorld(aws, aws_client, subnets=subnets, security_group=sg)
    w.ecr.create_repository(repositoryName="backend")
    w.push("v1")
    w.push("v2")
    w.logs.create_log_group(logGroupName=w.log_group)
    w.ecs.create_cluster(clusterName=w.cluster)
    return w
