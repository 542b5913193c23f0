"""`run SERVICE -- COMMAND...`: a one-off task of the service's task definition, against the sandbox over HTTP."""

from __future__ import annotations

import json
from typing import Any

from conftest import sandbox_client

SEED = ["python", "-m", "scripts.seed_catalog"]
SEED_LINES = ["seed_catalog_start", "seed_catalog_complete seeded=150 skipped=0 total=150"]


def _run_tasks(sandbox: Any) -> list[dict[str, Any]]:
    ecs = sandbox_client(sandbox, "ecs")
    arns = ecs.list_tasks(cluster="arbiter-ai", startedBy="arbiter-ops/run", desiredStatus="STOPPED")["taskArns"]
    return ecs.describe_tasks(cluster="arbiter-ai", tasks=arns)["tasks"] if arns else []


def test_the_catalog_seed_streams_its_logs_and_exits_with_its_exit_code(sandbox, cli) -> None:
    sandbox.aws.ecs.task_outcome(command_contains="seed_catalog", exit_code=0, log_lines=SEED_LINES)
    r = cli("run", "backend", "--", *SEED)
    assert r.code == 0, r.err
    assert all(line in r.err for line in SEED_LINES)  # streamed as the container printed them
    assert "`python -m scripts.seed_catalog` exited 0" in r.out
    (task,) = _run_tasks(sandbox)
    assert task["overrides"]["containerOverrides"] == [{"name": "backend", "command": SEED}]
    assert task["taskDefinitionArn"].endswith("arbiter-backend:1")  # the live revision, reused: none registered
    network = task["attachments"][0]["details"]
    assert any(d["name"] == "subnetId" for d in network)  # the backend service's network


def test_a_failing_command_exits_1_with_its_cause(sandbox, cli) -> None:
    sandbox.aws.ecs.task_outcome(command_contains="seed_catalog", exit_code=2, log_lines=["Traceback: no module x"])
    r = cli("--output", "json", "run", "backend", "--", *SEED)
    assert r.code == 1, r.err
    doc = r.json()
    assert (doc["ok"], doc["exit_code"], doc["error"]["code"]) == (False, 2, "task-failed")
    assert doc["reason"] == "`python -m scripts.seed_catalog` exited 2"
    assert doc["log_tail"] == ["Traceback: no module x"]


def test_a_task_that_does_not_start_names_ecs_reason(sandbox, cli) -> None:
    reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
    sandbox.aws.ecs.task_outcome(command_contains="seed_catalog", fail_to_start=reason)
    r = cli("run", "backend", "--", *SEED)
    assert r.code == 1 and "the task failed to start: " in r.text and "CannotPullContainerError" in r.text


def test_a_secret_key_gone_from_the_secret_fails_the_task_to_start_naming_the_key(sandbox, cli) -> None:
    """`run` has no check-secrets gate: the task meets ECS's own refusal at start, and the user reads which key."""
    secrets = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(secrets.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    del payload["STRIPE_PRICE_ID"]
    secrets.put_secret_value(SecretId="arbiter-ai/local", SecretString=json.dumps(payload))
    r = cli("--output", "json", "run", "backend", "--", *SEED)
    assert r.code == 1, r.text
    doc = r.json()
    assert doc["stop_code"] == "TaskFailedToStart", doc
    assert doc["reason"].startswith("the task failed to start: ResourceInitializationError: ")
    assert doc["reason"].endswith("did not contain json key STRIPE_PRICE_ID")
    assert "Traceback" not in r.text


def test_bad_input(sandbox, cli) -> None:
    assert cli("run", "backend").code == 2  # no command
    assert cli("run", "nope", "--", "true").code == 2  # unknown service
    missing = cli("run", "backend", "--image-tag", "v9", "--", "true")
    assert missing.code == 1 and "image arbiter-ai/backend:v9 does not exist in ECR" in missing.err


def test_deploy_seeds_an_empty_catalog_when_asked(sandbox, cli) -> None:
    """A fresh environment has an empty catalog: http-catalog fails (and the deploy rolls back) unless
    --seed-catalog-if-empty runs the app's seed and looks again, as the seed fills what the catalog lists."""
    sandbox.api.set_mode(catalog_empty=True)
    refused = cli("--output", "json", "deploy", "--image-tag", "v2", "--no-migrate")
    assert refused.code == 1 and refused.json()["rolled_back"] is True
    assert "http-catalog: GET /api/v1/catalog/ answered an empty catalog" in refused.json()["error"]["message"]
    sandbox.aws.ecs.task_outcome(command_contains="seed_catalog", exit_code=0, log_lines=SEED_LINES)
    r = cli("--output", "json", "deploy", "--image-tag", "v2", "--no-migrate", "--seed-catalog-if-empty")
    assert r.code == 0, r.err
    smoke = {s["name"]: s for s in r.json()["steps"]}["smoke-test"]
    assert smoke["detail"].startswith("the catalog was empty: the catalog seed exited 0; ")
    assert "seed_catalog_complete seeded=150" in r.err  # its log lines, streamed
    seeds = [t for t in sandbox.aws.ecs.state()["tasks"] if t.get("startedBy") == "arbiter-ops/deploy"]
    assert len(seeds) == 1
