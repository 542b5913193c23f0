"""Deploys as processes (the lock, SIGINT), under injected faults, and rollback / status / unlock / bootstrap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import context, sandbox_client

from arbiter_ops.core.context import Context
from arbiter_ops.core.output import Output
from arbiter_ops.state.audit import latest
from arbiter_ops.state.lock import lock_holder


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "arbiter_ops", "--output", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ARBITER_OPS_POLL_INTERVAL": "0.2"},
    )


def _ctx() -> Context:
    return context("local", Output("text", quiet=True))


def test_two_deploys_at_once_one_proceeds_the_other_names_the_holder(sandbox) -> None:
    sandbox.aws.ecs.set_progress("timed", step_seconds=1.0)  # the winner holds the lock for a few seconds
    first, second = (
        _spawn("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke"),
        _spawn("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke"),
    )
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, json.loads(out), err))
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], results
    loser = next(doc for code, doc, _ in results if code == 3)
    assert loser["error"]["code"] == "locked"
    assert "local is locked by" in loser["error"]["message"] and "(deploy v2, since" in loser["error"]["message"]
    assert lock_holder(_ctx()) is None


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_during_the_wait_releases_the_lock_and_says_where_things_stand(sandbox, sig, code) -> None:
    """CI cancels a job with SIGTERM (and a closed terminal sends SIGHUP): handled as Ctrl-C is."""
    sandbox.aws.ecs.set_progress("timed", step_seconds=30.0)  # the rollout will not finish by itself
    proc = _spawn("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    ctx = _ctx()
    deadline = time.monotonic() + 60
    while not _updated(sandbox):  # UpdateService sent: the deploy is in its wait loop
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert lock_holder(ctx) is not None
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    print(f"{sig.name}: the process ended {time.monotonic() - sent:.2f} s after the signal")
    assert proc.returncode == code, err
    assert "Traceback" not in err and lock_holder(ctx) is None
    name = signal.Signals(sig).name
    assert f"interrupted by {name}; the lock is released and the audit record written" in err
    assert "backend: runs arbiter-backend:2 (was arbiter-backend:1), rollout IN_PROGRESS" in err
    assert "to finish it: `arbiter-ops --env local deploy --image-tag v2`" in err
    doc = json.loads(out)
    assert (doc["ok"], doc["error"]) == (False, {"code": "interrupted", "message": f"interrupted by {name}"})
    records = latest(ctx, "deploy")
    assert records[0]["error"] == f"interrupted by {name}" and records[0]["ok"] is False
    # The next deploy is not refused (the lock is gone): it finishes the rollout.
    sandbox.aws.ecs.set_progress("per-call")
    again = _spawn("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    _, again_err = again.communicate(timeout=120)
    assert again.returncode == 0, again_err


def _updated(sandbox: Any) -> bool:
    services = sandbox.aws.ecs.state()["services"]
    return any(len(s.get("deployments", [])) > 1 for s in services)


def short_retry_timing(tmp_path: Path) -> dict[str, str]:
    """botocore's own retry configuration with short delays: legacy mode reads its timing from the `_retry` data
    file, and AWS_DATA_PATH puts ours first. Same policies (which errors are retried), 10 ms instead of 1 s."""
    import botocore

    data = json.loads((Path(botocore.__file__).parent / "data" / "_retry.json").read_text())
    data["retry"]["__default__"]["delay"] = {"type": "exponential", "base": 0.01, "growth_factor": 2}
    (tmp_path / "_retry.json").write_text(json.dumps(data))
    return {"AWS_RETRY_MODE": "legacy", "AWS_DATA_PATH": str(tmp_path)}


def test_ten_deploys_in_a_row_under_throttling_and_5xx(sandbox, cli, tmp_path, monkeypatch) -> None:
    for key, value in short_retry_timing(tmp_path).items():
        monkeypatch.setenv(key, value)
    sandbox.aws.faults.add({"kind": "throttle", "operation": "*", "probability": 0.3, "seed": 7})
    sandbox.aws.faults.add({"kind": "error", "status": 503, "operation": "*", "probability": 0.05, "seed": 11})
    retried = 0
    for i in range(10):
        tag = ("v2", "v1")[i % 2]
        r = cli("--output", "json", "deploy", "--image-tag", tag, "--no-migrate", "--no-smoke")
        assert r.code == 0, (i, r.err)
        doc = r.json()
        by_op = doc["api_calls"]["by_operation"]
        assert by_op["ecs:RegisterTaskDefinition"] == 2, (i, by_op)  # exactly one new revision per service
        retried += doc["api_calls"]["attempts"] - doc["api_calls"]["total"]
    assert retried > 30  # the faults really fired, and botocore's retries absorbed them
    revisions = sandbox_client(sandbox, "ecs").list_task_definitions(familyPrefix="arbiter-backend")
    assert len(revisions["taskDefinitionArns"]) == 11


def test_rollback_status_and_unlock(sandbox, cli) -> None:
    assert cli("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke").code == 0
    status = cli("--output", "json", "status")
    assert status.code == 0, status.err
    doc = status.json()
    backend = next(s for s in doc["services"] if s["service"] == "backend")
    assert backend["image_tag"] == "v2" and backend["running"] == backend["desired"] == 2
    assert doc["last_deploys"][0]["image_tag"] == "v2" and doc["last_deploys"][0]["ok"] is True
    back = cli("--output", "json", "rollback", "backend")
    assert back.code == 0, back.err
    assert back.json()["to"].endswith("arbiter-backend:1")
    again = cli("--output", "json", "rollback", "backend", "--to-revision", "2")
    assert again.code == 0 and again.json()["to"].endswith("arbiter-backend:2")
    assert cli("rollback", "backend", "--to-revision", "99").code == 1
    # unlock --force clears a crashed run's lock
    from arbiter_ops.state.lock import acquire_lock

    acquire_lock(_ctx(), "deploy crashed")
    assert cli("deploy", "--image-tag", "v1", "--no-migrate", "--no-smoke").code == 3
    assert cli("unlock").code == 2
    cleared = cli("--output", "json", "unlock", "--force")
    assert cleared.code == 0 and "deploy crashed" in cleared.json()["cleared"]
    assert lock_holder(_ctx()) is None


def test_bootstrap_is_idempotent(sandbox, cli) -> None:
    sandbox_client(sandbox, "dynamodb").delete_table(TableName="arbiter-ops-state")
    missing = cli("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert missing.code == 3 and "bootstrap" in missing.err
    first = cli("--output", "json", "bootstrap")
    assert first.code == 0, first.err
    assert "dynamodb table arbiter-ops-state" in first.json()["created"]
    assert set(first.json()["policies"]) >= {"deploy", "smoke-test", "check-secrets", "push", "migrate"}
    second = cli("--output", "json", "bootstrap")
    assert second.json()["created"] == []


def test_the_smoke_test_policy_printed_by_bootstrap_is_the_documented_read_only_one(sandbox, cli) -> None:
    from conftest import ROOT

    doc = cli("--output", "json", "bootstrap").json()
    printed = {a for s in doc["policies"]["smoke-test"]["Statement"] for a in s["Action"]}
    documented = json.loads((ROOT / "docs" / "smoke-test-iam.json").read_text())
    assert printed == {a for s in documented["Statement"] for a in s["Action"]}
    assert all(a.split(":")[1].startswith(("Describe", "List", "Get", "Query")) for a in printed)


def test_rollback_to_a_deregistered_revision_is_refused_before_any_change(sandbox, cli) -> None:
    """ECS refuses an INACTIVE revision (the sandbox too, as AWS): say so, instead of an AWS error mid-way."""
    assert cli("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke").code == 0
    ecs = sandbox_client(sandbox, "ecs")
    ecs.deregister_task_definition(taskDefinition="arbiter-backend:1")
    r = cli("--output", "json", "rollback", "backend", "--to-revision", "1")
    assert r.code == 1, r.text
    assert r.json()["error"] == {
        "code": "inactive-revision",
        "message": "arbiter-backend:1 is deregistered (INACTIVE): ECS cannot run it; pass --to-revision N of an "
        "active revision (`aws ecs list-task-definitions`)",
    }
    default = cli("--output", "json", "rollback", "backend")  # the audit's previous revision: the same one
    assert default.code == 1 and default.json()["error"]["code"] == "inactive-revision"
    services = ecs.describe_services(cluster="arbiter-ai", services=["backend"])["services"]
    assert services[0]["taskDefinition"].endswith("arbiter-backend:2")  # nothing changed
