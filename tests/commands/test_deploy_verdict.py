"""`deploy`'s verdict per failure class, over HTTP against the sandbox, nothing of ours patched: the verdict, the
cause, the exit code, and that it was decided from at most 2 failed tasks of *our* deployment, within one poll
of the second (the sandbox moves one step per DescribeServices: a later decision would have met more failures).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import sandbox_client
from test_deploy import _ops, _revisions, _step, deploy

FAST = ("--image-tag", "v2", "--no-migrate", "--no-smoke")


def _failed_tasks_of(sandbox: Any, service: str, deployment_task_definition: str) -> list[dict[str, Any]]:
    """The stopped tasks of the deployment that ran ``deployment_task_definition`` (what ECS shows anyone)."""
    ecs = sandbox_client(sandbox, "ecs")
    arns = ecs.list_tasks(cluster="arbiter-ai", serviceName=service, desiredStatus="STOPPED")["taskArns"]
    tasks = ecs.describe_tasks(cluster="arbiter-ai", tasks=arns)["tasks"] if arns else []
    return [
        t
        for t in tasks
        if t["taskDefinitionArn"].endswith(deployment_task_definition)
        and not str(t.get("stoppedReason", "")).startswith("Scaling activity")
    ]


def _verdict(doc: dict[str, Any], service: str = "backend") -> dict[str, Any]:
    return doc["services"][service]


def test_a_successful_deploy_costs_no_call_for_verdicts(sandbox, cli) -> None:
    r = deploy(cli, *FAST)
    assert r.code == 0, r.err
    doc = r.json()
    assert {n: v["verdict"] for n, v in doc["services"].items()} == {"backend": "succeeded", "frontend": "succeeded"}
    assert all(v["failed_tasks"] == 0 and v["first_failure"] is None for v in doc["services"].values())
    ops = _ops(doc)
    assert not {"ListTasks", "DescribeTasks", "GetLogEvents"} & set(ops), ops


@pytest.mark.parametrize(
    ("fate", "verdict", "cause"),
    [
        (
            {
                "kind": "start",
                "reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                "failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:v2: not found",
            },
            "failed-to-start",
            "image arbiter-ai/backend:v2 not found",
        ),
        (
            {"kind": "crash", "exit_code": 1, "log_lines": ["INFO boot", "KeyError: 'STRIPE_PRICE_ID'"]},
            "crash-loop",
            "exit 1; last log lines: INFO boot | KeyError: 'STRIPE_PRICE_ID'",
        ),
        ({"kind": "crash", "exit_code": 137}, "crash-loop", "exit 137: out of memory"),
        ({"kind": "unhealthy"}, "unhealthy", "the container health check failed"),
    ],
)
def test_each_failure_class_is_named_after_two_failed_tasks_and_rolled_back(
    sandbox, cli, fate: dict[str, Any], verdict: str, cause: str
) -> None:
    sandbox.aws.ecs.fail_next_deployment("backend", **fate)
    r = deploy(cli, *FAST)
    assert r.code == 1, r.err
    doc = r.json()
    v = _verdict(doc)
    assert (v["verdict"], v["cause"], v["failed_tasks"]) == (verdict, cause, 2)
    assert v["first_failure"]["task"] and v["first_failure"]["stop_code"]
    if verdict == "crash-loop":
        assert v["first_failure"]["exit_code"] == fate["exit_code"]
    assert doc["rolled_back"] is True and doc["error"]["code"] == "rolled-back"
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}
    assert len(_failed_tasks_of(sandbox, "backend", "arbiter-backend:2")) == 2  # decided at the 2nd, not later
    assert f"backend: {verdict} — {cause}" in r.err
    assert f"backend: {verdict} — {cause}" in _step(doc, "wait")["detail"]


def test_a_key_removed_after_the_gate_fails_the_rollout_naming_secret_and_key(sandbox, cli) -> None:
    """The gate saw the key; someone drops it before ECS resolves the new tasks' secrets. Both revisions read it,
    so the way back fails the same way, as it would in AWS: exit 4, the key named both times (the old tasks of
    the previous deployment keep serving meanwhile)."""
    secrets = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(secrets.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    del payload["STRIPE_PRICE_ID"]
    change = {"secret_id": "arbiter-ai/local", "secret_string": json.dumps(payload)}
    sandbox.aws.ecs.fail_next_deployment("backend", kind="edit-secret", secret_change=change)
    r = deploy(cli, *FAST)
    assert r.code == 4, r.err
    doc = r.json()
    assert _step(doc, "check-secrets")["status"] == "ok"  # the gate saw the key
    v = _verdict(doc)
    assert (v["verdict"], v["cause"]) == ("failed-to-start", "secret arbiter-ai/local has no key STRIPE_PRICE_ID")
    assert v["first_failure"]["stop_code"] == "TaskFailedToStart"
    assert v["first_failure"]["stopped_reason"].startswith("ResourceInitializationError: unable to pull secrets")
    assert doc["error"]["code"] == "rollback-failed"
    assert "secret arbiter-ai/local has no key STRIPE_PRICE_ID" in _step(doc, "rollback")["detail"]
    running = sandbox_client(sandbox, "ecs").list_tasks(cluster="arbiter-ai", serviceName="backend")["taskArns"]
    assert len(running) == 2  # the previous deployment's tasks were never stopped


def test_the_breakers_own_rollback_is_rolled_back_by_ecs(sandbox, cli) -> None:
    """With --max-failed-tasks above the breaker's threshold (3 for 2 tasks), ECS decides first; the deploy
    sends no UpdateService of its own for the way back."""
    sandbox.aws.ecs.fail_next_deployment("backend", reason="CannotStartContainerError: boom")
    r = deploy(cli, *FAST, "--max-failed-tasks", "10")
    assert r.code == 1, r.err
    doc = r.json()
    v = _verdict(doc)
    assert v["verdict"] == "rolled-back-by-ecs" and "arbiter-backend:1" in v["cause"] and "boom" in v["cause"]
    assert doc["rolled_back"] is True
    assert "already put back by ECS's circuit breaker" in _step(doc, "rollback")["detail"]
    updates = _ops(doc)["UpdateService"]
    assert updates == 2 + 1  # both services, then only the frontend back (the backend was back already)


def test_someone_elses_deployment_supersedes_ours_and_is_not_fought(sandbox, cli) -> None:
    sandbox.aws.ecs.fail_next_deployment("backend", kind="supersede")
    r = deploy(cli, "backend", *FAST)
    assert r.code == 1, r.err
    doc = r.json()
    v = _verdict(doc)
    assert v["verdict"] == "superseded" and "replaced ours" in v["cause"]
    assert doc["error"]["code"] == "superseded" and doc["rolled_back"] is False
    assert not any(s["name"] == "rollback" for s in doc["steps"])
    assert _ops(doc)["UpdateService"] == 1


def test_a_rollout_without_change_for_the_stall_timeout_is_stalled(sandbox, cli) -> None:
    sandbox.aws.ecs.fail_next_deployment("backend", kind="stall")
    r = deploy(cli, "backend", *FAST, "--stall-timeout", "0.5")
    assert r.code == 1, r.err
    doc = r.json()
    v = _verdict(doc)
    assert v["verdict"] == "stalled" and "no change for 0.5 s" in v["cause"]
    assert doc["rolled_back"] is True


def test_a_rollout_past_its_timeout_is_timed_out(sandbox, cli) -> None:
    sandbox.aws.ecs.fail_next_deployment("backend", kind="stall")
    r = deploy(cli, "backend", *FAST, "--timeout", "0.5")
    assert r.code == 1, r.err
    v = _verdict(r.json())
    assert v["verdict"] == "timed-out" and "not stable after 0.5 s" in v["cause"]


@pytest.mark.parametrize("bad", [["--max-failed-tasks", "0"], ["--stall-timeout", "0"], ["--stall-timeout", "-1"]])
def test_bad_verdict_limits_are_usage_errors(sandbox, cli, bad: list[str]) -> None:
    r = cli("deploy", *FAST, *bad)
    assert r.code == 2 and "Traceback" not in r.err
    assert bad[0] in r.err
