"""`deploy` against the sandbox over HTTP: call budget, idempotence, refusals, rollback, exit 4."""

from __future__ import annotations

from typing import Any

from conftest import DEPLOY_STEPS, context, sandbox_client

MUTATING = ("Register", "Update", "Put", "Delete", "Run", "Stop", "Create", "Tag")


def _ops(doc: dict[str, Any]) -> dict[str, int]:
    """Logical calls by operation name (without the service prefix)."""
    out: dict[str, int] = {}
    for key, n in doc["api_calls"]["by_operation"].items():
        op = key.split(":", 1)[1]
        out[op] = out.get(op, 0) + n
    return out


def _step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["name"] == name)


def _revisions(sandbox: Any) -> dict[str, str]:
    ecs = sandbox_client(sandbox, "ecs")
    services = ecs.describe_services(cluster="arbiter-ai", services=["backend", "frontend"])["services"]
    return {s["serviceName"]: s["taskDefinition"].rsplit("/", 1)[-1] for s in services}


def deploy(cli: Any, *args: str) -> Any:
    return cli("--output", "json", "deploy", *args)


def test_both_services_deploy_within_the_call_budget(sandbox, cli) -> None:
    r = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["ok"] is True and doc["image_tag"] == "v2" and doc["rolled_back"] is False
    assert [s["name"] for s in doc["steps"]] == DEPLOY_STEPS
    assert doc["task_definitions"] == {
        "backend": "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-backend:2",
        "frontend": "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-frontend:2",
    }
    assert _revisions(sandbox) == {"backend": "arbiter-backend:2", "frontend": "arbiter-frontend:2"}
    ops = _ops(doc)
    polls = int(_step(doc, "wait")["detail"].rsplit("(", 1)[1].split()[0])
    # 4 per service + 1 DescribeServices for the live revisions + 1 per poll for all services together
    # + 1 GetSecretValue per distinct secret + at most 5 for lock, audit and identity.
    for op in ("DescribeTaskDefinition", "DescribeImages", "RegisterTaskDefinition", "UpdateService"):
        assert ops[op] == 2, (op, ops)
    assert ops["DescribeServices"] == 1 + polls
    assert ops["GetSecretValue"] == 1
    lock_audit_identity = sum(
        n for k, n in doc["api_calls"]["by_operation"].items() if k.startswith(("dynamodb:", "sts:"))
    )
    assert lock_audit_identity <= 5
    assert doc["api_calls"]["total"] == 8 + 1 + polls + 1 + lock_audit_identity
    assert "desiredCount" not in str(doc)  # and the desired count stayed
    ecs = sandbox_client(sandbox, "ecs")
    assert all(
        s["desiredCount"] == 2
        for s in ecs.describe_services(cluster="arbiter-ai", services=["backend", "frontend"])["services"]
    )


def test_the_same_tag_again_changes_nothing(sandbox, cli) -> None:
    assert deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke").code == 0
    again = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert again.code == 0, again.err
    ops = _ops(again.json())
    assert ops.get("RegisterTaskDefinition", 0) == 0 and ops.get("UpdateService", 0) == 0
    assert _step(again.json(), "update")["status"] == "skipped"


def test_force_new_deployment_restarts_on_the_same_revision(sandbox, cli) -> None:
    r = deploy(cli, "--image-tag", "v1", "--no-migrate", "--no-smoke", "--force-new-deployment")
    assert r.code == 0, r.err
    ops = _ops(r.json())
    assert ops.get("RegisterTaskDefinition", 0) == 0 and ops["UpdateService"] == 2
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}


def test_image_missing_in_ecr_is_refused_before_any_change(sandbox, cli) -> None:
    r = deploy(cli, "--image-tag", "v9", "--no-smoke")
    assert r.code == 1
    doc = r.json()
    assert doc["error"]["code"] == "image-missing" and "arbiter-ai/backend:v9" in doc["error"]["message"]
    assert not any(op.startswith(MUTATING) for op in _ops(doc) if op not in ("PutItem", "DeleteItem"))
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}


def test_a_failed_rollout_is_rolled_back(sandbox, cli) -> None:
    sandbox.aws.ecs.fail_next_deployment("backend")
    r = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 1, r.err
    doc = r.json()
    assert doc["ok"] is False and doc["rolled_back"] is True
    assert _step(doc, "wait")["status"] == "failed" and _step(doc, "rollback")["status"] == "ok"
    assert doc["task_definitions"]["backend"].endswith("arbiter-backend:1")
    assert doc["task_definitions"]["frontend"].endswith("arbiter-frontend:1")
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}


def test_a_retry_after_a_failed_rollout_reuses_its_revision(sandbox, cli) -> None:
    """No revision churn: the failed deploy's revision is the family's newest, identical to what the retry and a
    migration render; both reuse it instead of registering copies."""
    sandbox.aws.ecs.fail_next_deployment("backend")
    assert deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke").code == 1
    migrate = cli("--output", "json", "migrate")  # the live tag (v1): the live revision, reused
    assert migrate.code == 0, migrate.err
    assert migrate.json()["registered"] is False and migrate.json()["task_definition"].endswith("arbiter-backend:1")
    again = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert again.code == 0, again.err
    assert _ops(again.json()).get("RegisterTaskDefinition", 0) == 0
    assert _revisions(sandbox) == {"backend": "arbiter-backend:2", "frontend": "arbiter-frontend:2"}
    arns = sandbox_client(sandbox, "ecs").list_task_definitions(familyPrefix="arbiter-backend")["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2"]


def test_a_failed_rollback_exits_4(sandbox, cli) -> None:
    sandbox.aws.ecs.fail_next_deployment("backend", count=2)  # the rollout and then its rollback
    r = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 4, r.err
    doc = r.json()
    assert _step(doc, "rollback")["status"] == "failed" and doc["error"]["code"] == "rollback-failed"


def test_a_failed_migration_changes_no_service(sandbox, cli) -> None:
    sandbox.aws.ecs.task_outcome(command_contains="alembic", exit_code=1, log_lines=["ERROR boom"])
    r = deploy(cli, "--image-tag", "v2", "--no-smoke")
    assert r.code == 1, r.err
    doc = r.json()
    assert _step(doc, "migrate")["status"] == "failed"
    assert "UpdateService" not in _ops(doc)
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}
    assert "ERROR boom" in r.err


def test_dry_run_makes_no_mutating_call(sandbox, cli) -> None:
    r = deploy(cli, "--image-tag", "v2", "--dry-run")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["dry_run"] is True and doc["plan"]["register"] == ["backend", "frontend"]
    assert "backend:v2" in doc["plan"]["diffs"]["backend"]
    assert not [op for op in _ops(doc) if op.startswith(MUTATING)]
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}


def test_one_service_only(sandbox, cli) -> None:
    r = deploy(cli, "frontend", "--image-tag", "v2", "--no-smoke")
    assert r.code == 0, r.err
    assert _step(r.json(), "migrate")["status"] == "skipped"
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:2"}


def test_bad_inputs(sandbox, cli) -> None:
    assert deploy(cli, "nope", "--image-tag", "v2").code == 2
    assert deploy(cli, "--image-tag", "bad tag!").code == 2
    assert deploy(cli, "--image-tag", "v2", "--timeout", "-1").code == 2


def test_production_needs_yes_without_a_terminal(cli, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCOUNT_ID", "123456789012")
    r = cli("--output", "json", "--env", "production", "deploy", "--image-tag", "v2")
    assert r.code == 2 and r.json()["error"]["code"] == "confirmation-required"
    assert "--yes" in r.json()["error"]["message"]


def test_lock_wait_waits_for_the_holder(sandbox, cli) -> None:
    import threading

    from arbiter_ops.core.output import Output
    from arbiter_ops.state.lock import acquire_lock

    ctx = context("local", Output("text", quiet=True))
    held = acquire_lock(ctx, "deploy elsewhere")
    threading.Timer(1.5, held.release).start()
    r = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke", "--lock-wait", "30")
    assert r.code == 0, r.err
    assert "waiting for the local lock held by" in r.err


def test_a_terminal_gets_a_live_rollout_table(sandbox, cli, monkeypatch) -> None:
    """On a terminal (not CI) the wait shows copilot's table: revision, rollout, counts, latest event."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: treat the captured stderr as a terminal
    monkeypatch.setenv("COLUMNS", "200")
    r = cli("deploy", "--image-tag", "v2", "--no-migrate", "--no-smoke")
    assert r.code == 0, r.err
    for header in ("service", "revision", "rollout", "desired", "running", "pending", "failed", "latest event"):
        assert header in r.err
    assert "steady state" in r.err and "[   0s]" not in r.err  # the table, not the CI lines


def test_a_rollout_that_does_not_settle_in_time_is_rolled_back(sandbox, cli) -> None:
    # per-call progress: the first poll sees the rollout IN_PROGRESS, past the tiny timeout; the rollback
    # gets its own, longer time and completes.
    r = deploy(cli, "--image-tag", "v2", "--no-migrate", "--no-smoke", "--timeout", "0.001")
    assert r.code == 1, r.err
    doc = r.json()
    assert _step(doc, "wait")["status"] == "failed" and "not stable after" in _step(doc, "wait")["detail"]
    assert _step(doc, "rollback")["status"] == "ok" and doc["rolled_back"] is True
    assert _revisions(sandbox) == {"backend": "arbiter-backend:1", "frontend": "arbiter-frontend:1"}


def test_no_secret_value_appears_in_a_deploy_run(sandbox, cli, monkeypatch, tmp_path) -> None:
    import json as _json

    payload = _json.loads(
        sandbox_client(sandbox, "secretsmanager").get_secret_value(SecretId="arbiter-ai/local")["SecretString"]
    )
    secrets = [payload[k] for k in ("NEXTAUTH_SECRET", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")]
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    text = cli("-vv", "deploy", "--image-tag", "v2")
    assert text.code == 0, text.err
    as_json = cli("-vv", "--output", "json", "deploy", "--image-tag", "v1")
    assert as_json.code == 0, as_json.err
    written = summary.read_text()
    assert "smoke-test" in written and "check-secrets" in written  # the summary really was written
    for value in secrets:
        for where in (text.out, text.err, as_json.out, as_json.err, written):
            assert value not in where


def test_a_json_deploy_without_a_terminal_loads_neither_rich_nor_boto3(sandbox, tmp_path) -> None:
    """What a CI step pays for: a deploy whose stderr is a pipe writes its lines itself (no rich) and makes its
    clients from botocore (no boto3, s3transfer or multiprocessing)."""
    import json
    import subprocess
    import sys

    listing = tmp_path / "modules.txt"
    code = (
        "import sys, atexit\n"
        f"atexit.register(lambda: open({str(listing)!r}, 'w').write(','.join(sorted(m.split('.')[0] "
        "for m in sys.modules))))\n"
        "from arbiter_ops.cli import main\n"
        "sys.argv = ['arbiter-ops', '--output', 'json', 'deploy', '--image-tag', 'v2', '--no-migrate', '--no-smoke']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert "rolled out" in proc.stderr or "running" in proc.stderr  # its progress lines were written
    loaded = set(listing.read_text().split(","))
    assert {"botocore", "jinja2", "typer"} <= loaded  # the probe sees what was imported
    assert not loaded & {"rich", "boto3", "s3transfer", "multiprocessing"}, loaded & {"rich", "boto3", "s3transfer"}
