"""The real app's four-service topology (examples/arbiter-ai-four-services.toml): backend, frontend, and the
Celery worker and beat on the backend's image (gndumbri/arbiter-ai infra/terraform/ecs.tf), on a local sandbox
seeded from that config."""

from __future__ import annotations

import os
import time
from pathlib import Path

import boto3
from conftest import ROOT, run_subprocess

EXAMPLE = ROOT / "examples" / "arbiter-ai-four-services.toml"


def test_four_services_deploy_and_beat_stays_single(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env.update(
        ARBITER_OPS_LOCAL_STATE=str(tmp_path / "local.json"),
        ARBITER_OPS_SANDBOX_STEP_SECONDS="0",  # instant rollouts
        ARBITER_OPS_SANDBOX_POSTGRES="0",
        ARBITER_OPS_CONFIG=str(EXAMPLE),
    )
    up = run_subprocess("--output", "json", "local", "up", env=env, cwd=tmp_path)
    assert up.code == 0, up.err
    try:
        ecs = boto3.client(
            "ecs",
            endpoint_url=up.json()["aws_endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        cluster = "arbiter-ai-cluster"
        # Someone's console edit (or Terraform's default) lets beat's deployments overlap: the deploy puts it back.
        ecs.update_service(
            cluster=cluster,
            service="arbiter-ai-beat",
            deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100},
        )
        r = run_subprocess("--output", "json", "deploy", "--image-tag", "v2", "--no-migrate", env=env, cwd=tmp_path)
        assert r.code == 0, r.err
        doc = r.json()
        assert set(doc["task_definitions"]) == {"backend", "frontend", "worker", "beat"}
        assert all(arn.endswith(":2") for arn in doc["task_definitions"].values())
        smoke = {s["name"]: s for s in doc["steps"]}["smoke-test"]
        assert smoke["status"] == "ok", smoke
        names = [f"arbiter-ai-{n}" for n in ("backend", "frontend", "worker", "beat")]
        live = {s["serviceName"]: s for s in ecs.describe_services(cluster=cluster, services=names)["services"]}
        beat = live["arbiter-ai-beat"]["deploymentConfiguration"]
        assert (beat["maximumPercent"], beat["minimumHealthyPercent"]) == (100, 0)
        worker_td = ecs.describe_task_definition(taskDefinition=live["arbiter-ai-worker"]["taskDefinition"])
        container = worker_td["taskDefinition"]["containerDefinitions"][0]
        assert container["command"][-2:] == ["worker", "--loglevel=info"]
        assert not container.get("portMappings") and not container.get("healthCheck")  # no port, no ALB
        assert container["image"].endswith("/arbiter-ai-backend:v2")  # the backend's image
        assert live["arbiter-ai-worker"]["loadBalancers"] == []

        # Two beat tasks: every scheduled job would run twice.
        ecs.update_service(cluster=cluster, service="arbiter-ai-beat", desiredCount=2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the sandbox's ECS moves when it is described, as a user would poll it
            ecs.describe_services(cluster=cluster, services=["arbiter-ai-beat"])
            running = ecs.list_tasks(cluster=cluster, serviceName="arbiter-ai-beat", desiredStatus="RUNNING")
            if len(running["taskArns"]) == 2:
                break
            time.sleep(0.2)
        check = run_subprocess("--output", "json", "smoke-test", "--only", "beat-singleton", env=env, cwd=tmp_path)
        assert check.code == 1, check.err
        (result,) = check.json()["checks"]
        assert result["detail"] == "arbiter-ai-beat runs 2 tasks at once: every scheduled job runs 2 times"
    finally:
        down = run_subprocess("local", "down", env=env, cwd=tmp_path)
        assert down.code == 0, down.err
