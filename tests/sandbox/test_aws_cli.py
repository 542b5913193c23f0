"""The sandbox, and what a deploy leaves in it, as AWS's own CLI sees them: its waiters and its error handling are
AWS's code, not ours, so a sandbox answer they would not accept fails here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail


def aws(sandbox: Any, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "aws"  # the test extra's awscli, in this venv
    if not exe.exists():
        skip_or_fail("the AWS CLI is not installed (pip install -e '.[test]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=sandbox.endpoints.aws_endpoint_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_MAX_ATTEMPTS="1",  # a refusal is an answer here, not something to retry
    )
    return subprocess.run([str(exe), *args, "--output", "json"], capture_output=True, text=True, env=env,
                          timeout=timeout)  # fmt: skip


def test_after_a_deploy_says_ok_the_cli_waiter_agrees_the_services_are_stable(sandbox, cli) -> None:
    r = cli("--output", "json", "deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 0, r.err
    # botocore's own services-stable waiter: one deployment per service, running == desired.
    both = ("--cluster", "arbiter-ai", "--services", "backend", "frontend")
    wait = aws(sandbox, "ecs", "wait", "services-stable", *both)
    assert wait.returncode == 0, wait.stderr
    described = aws(sandbox, "ecs", "describe-services", *both)
    assert described.returncode == 0, described.stderr
    services = json.loads(described.stdout)["services"]
    assert {s["serviceName"]: s["taskDefinition"].rsplit("/", 1)[-1] for s in services} == {
        "backend": "arbiter-backend:2",
        "frontend": "arbiter-frontend:2",
    }
    assert all(s["deployments"][0]["rolloutState"] == "COMPLETED" for s in services)


def test_the_cli_meets_the_refusals_aws_gives(sandbox) -> None:
    eleven = [f"svc{i}" for i in range(11)]
    r = aws(sandbox, "ecs", "describe-services", "--cluster", "arbiter-ai", "--services", *eleven)
    assert r.returncode != 0 and "InvalidParameterException" in r.stderr, r.stderr
    assert "service names can have at most 10 items" in r.stderr
    r = aws(sandbox, "ecs", "update-service", "--cluster", "arbiter-ai", "--service", "backend",
            "--task-definition", "arbiter-backend:99")  # fmt: skip
    assert r.returncode != 0 and "(ClientException)" in r.stderr and "Unable to describe task definition." in r.stderr
    # A service ECS does not know is a MISSING failure, which the waiter takes as final (not a timeout).
    r = aws(sandbox, "ecs", "wait", "services-stable", "--cluster", "arbiter-ai", "--services", "nope")
    assert r.returncode != 0 and 'matched expected path: "MISSING"' in r.stderr, r.stderr


@pytest.mark.parametrize("secret", ["arbiter-ai/local"])
def test_the_cli_reads_the_seeded_secret_as_json(sandbox, secret: str) -> None:
    r = aws(sandbox, "secretsmanager", "get-secret-value", "--secret-id", secret)
    assert r.returncode == 0, r.stderr
    payload = json.loads(json.loads(r.stdout)["SecretString"])
    assert {"DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"} <= set(payload)
