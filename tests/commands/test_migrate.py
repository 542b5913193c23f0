"""`migrate` against the local sandbox over HTTP: the ECS overlay plays RunTask out one lifecycle step per
DescribeTasks (per-call progress), with the exit code, stop code and CloudWatch log lines a test arms."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from conftest import context, sandbox_client

from arbiter_ops.core.context import Context
from arbiter_ops.core.output import Output
from arbiter_ops.db.migrations import STARTED_BY, STOP_REASON, PollPolicy, last_migration, run_migration

LINES = [
    "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.",
    "INFO  [alembic.runtime.migration] Will assume transactional DDL.",
    "INFO  [alembic.runtime.migration] Running upgrade 0001 -> 0002, add embeddings",
]
FAST_POLL = "0.01"  # first polling interval (seconds); grows by 1.5x like the default 1 s -> 5 s


@pytest.fixture
def fast(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ARBITER_OPS_POLL_INTERVAL", FAST_POLL)
    return sandbox


def _local_ctx() -> Context:
    return context("local", Output("text"))


def _task(sandbox: Any, arn: str) -> dict[str, Any]:
    return sandbox_client(sandbox, "ecs").describe_tasks(cluster="arbiter-ai", tasks=[arn])["tasks"][0]


def _migration_tasks(sandbox: Any) -> list[dict[str, Any]]:
    """The overlay's own records (reading them takes no lifecycle step, unlike DescribeTasks)."""
    return [t for t in sandbox.aws.ecs.state()["tasks"] if t.get("startedBy") == STARTED_BY]


def _calls(doc: dict[str, Any], operation: str) -> int:
    return sum(n for k, n in doc["api_calls"]["by_operation"].items() if k.endswith(f":{operation}"))


def test_a_migration_that_exits_0_passes_and_shows_its_log_lines(fast: Any, cli: Any) -> None:
    fast.aws.ecs.task_outcome(command_contains="alembic", exit_code=0, log_lines=LINES)
    r = cli("--output", "json", "migrate")
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["command"], doc["ok"], doc["env"], doc["verdict"]) == ("migrate", True, "local", "ok")
    assert (doc["exit_code"], doc["stop_code"]) == (0, "EssentialContainerExited")
    assert doc["log_tail"] == LINES
    assert doc["image_tag"] == "v1"  # the live one
    assert doc["task_definition"].endswith(":task-definition/arbiter-backend:1")  # identical: not registered
    assert doc["registered"] is False
    assert doc["preflight"]["status"] == "pass"
    assert doc["duration_ms"] >= 0
    for line in LINES:  # live, on stderr: stdout is the JSON document only
        assert line in r.err
    task = _task(fast, doc["task_arn"])
    assert (task["lastStatus"], task["startedBy"], task["launchType"]) == ("STOPPED", STARTED_BY, "FARGATE")
    assert task["overrides"]["containerOverrides"] == [{"name": "backend", "command": ["alembic", "upgrade", "head"]}]
    # Bounded API use: one DescribeTasks per poll (4 steps to STOPPED here), at most one log page per poll
    # plus the end-of-stream read, one RunTask. The secret is read three times: the check-secrets gate, the
    # preflight's DATABASE_URL and the post-migration schema check's (one shared read would save two).
    assert _calls(doc, "DescribeTasks") == doc["polls"] == 4
    assert _calls(doc, "GetLogEvents") <= doc["polls"]
    assert (_calls(doc, "RunTask"), _calls(doc, "RegisterTaskDefinition"), _calls(doc, "StopTask")) == (1, 0, 0)
    assert _calls(doc, "GetSecretValue") == 3
    assert doc["api_calls"]["total"] <= 17, doc["api_calls"]


def test_a_new_image_tag_registers_a_revision_and_runs_it(fast: Any, cli: Any) -> None:
    r = cli("--output", "json", "migrate", "--image-tag", "v2", "--command", "alembic upgrade +1")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["registered"] is True and doc["task_definition"].endswith("arbiter-backend:2")
    task = _task(fast, doc["task_arn"])
    assert task["taskDefinitionArn"] == doc["task_definition"]
    assert task["overrides"]["containerOverrides"][0]["command"] == ["alembic", "upgrade", "+1"]
    assert task["containers"][0]["image"].endswith("arbiter-ai/backend:v2")


def test_a_migration_that_exits_1_fails_and_shows_the_last_log_lines(fast: Any, cli: Any) -> None:
    lines = [*LINES[:2], 'sqlalchemy.exc.ProgrammingError: relation "users" does not exist', "FAILED"]
    fast.aws.ecs.task_outcome(command_contains="alembic", exit_code=1, log_lines=lines)
    r = cli("migrate")
    assert r.code == 1, r.text
    assert "migration failed: the migration exited 1" in r.out
    summary = r.out.split("last log lines:", 1)[1]
    assert 'relation "users" does not exist' in summary and "FAILED" in summary
    assert "FAILED" in r.err  # and live while it ran


def test_a_task_that_fails_to_start_is_exit_1_naming_the_reason(fast: Any, cli: Any) -> None:
    reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
    fast.aws.ecs.task_outcome(command_contains="alembic", fail_to_start=reason)
    r = cli("--output", "json", "migrate")
    assert r.code == 1, r.text
    doc = r.json()
    assert (doc["ok"], doc["verdict"], doc["stop_code"], doc["exit_code"]) == (
        False,
        "failed",
        "TaskFailedToStart",
        None,
    )
    assert doc["reason"] == f"the task failed to start: {reason}"
    assert reason in r.err
    assert _calls(doc, "GetLogEvents") == 0  # it never ran: there is no stream to read


def test_a_secret_key_the_backend_references_but_the_secret_lacks_stops_migrate_before_run_task(
    fast: Any, cli: Any
) -> None:
    """migrate gates on check-secrets of the backend as deploy does: in ECS the task would stop at start with
    'did not contain json key STRIPE_PRICE_ID' (as the sandbox's RunTask now does); here nothing is run."""
    secrets = sandbox_client(fast, "secretsmanager")
    payload = json.loads(secrets.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    del payload["STRIPE_PRICE_ID"]
    secrets.put_secret_value(SecretId="arbiter-ai/local", SecretString=json.dumps(payload))
    r = cli("--output", "json", "migrate")
    assert r.code == 1, r.text
    doc = r.json()
    assert doc["error"]["code"] == "secrets", doc
    assert "STRIPE_PRICE_ID" in doc["error"]["message"]
    assert _migration_tasks(fast) == []  # no task was run

    payload["STRIPE_PRICE_ID"] = "price_local"
    secrets.put_secret_value(SecretId="arbiter-ai/local", SecretString=json.dumps(payload))
    again = cli("--output", "json", "migrate")
    assert again.code == 0, again.text
    assert again.json()["check_secrets"].startswith("0 errors")


def test_a_key_removed_after_the_gate_fails_the_task_to_start_naming_the_key(fast: Any, cli: Any) -> None:
    """The gate passes; then someone drops STRIPE_PRICE_ID before ECS resolves the task's secrets: the task
    stops with TaskFailedToStart and migrate says which key, exit 1."""
    secrets = sandbox_client(fast, "secretsmanager")
    payload = json.loads(secrets.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])
    del payload["STRIPE_PRICE_ID"]
    change = {"secret_id": "arbiter-ai/local", "secret_string": json.dumps(payload)}
    fast.aws.ecs.task_outcome(command_contains="alembic", secret_change=change)
    r = cli("--output", "json", "migrate")
    assert r.code == 1, r.text
    doc = r.json()
    assert doc["check_secrets"].startswith("0 errors")  # the gate saw the key
    assert (doc["verdict"], doc["stop_code"]) == ("failed", "TaskFailedToStart")
    assert doc["reason"].startswith("the task failed to start: ResourceInitializationError: ")
    assert doc["reason"].endswith("did not contain json key STRIPE_PRICE_ID")
    assert doc["cause"] == "secret arbiter-ai/local has no key STRIPE_PRICE_ID"  # deploy's own cause parser
    assert "migration failed: secret arbiter-ai/local has no key STRIPE_PRICE_ID" in r.err


def test_a_timeout_stops_the_task_and_exits_3(fast: Any, cli: Any) -> None:
    fast.aws.ecs.task_outcome(command_contains="alembic", never_stops=True, log_lines=["INFO waiting for a lock"])
    # 2 s: enough polls (the sandbox moves a task one step per DescribeTasks) for it to be RUNNING and log,
    # even on a loaded machine; 0.3 s was sometimes too few.
    r = cli("--output", "json", "migrate", "--timeout", "2")
    assert r.code == 3, r.text
    doc = r.json()
    assert (doc["ok"], doc["verdict"], doc["error"]["code"]) == (False, "timeout", "timeout")
    assert "did not finish within 2 s" in doc["reason"] and "stopped" in doc["reason"]
    assert doc["log_tail"] == ["INFO waiting for a lock"]
    assert _calls(doc, "StopTask") == 1
    assert _calls(doc, "DescribeTasks") == doc["polls"] <= 20  # adaptive: not a tight loop
    [stopped] = _migration_tasks(fast)  # already STOPPED when migrate returned, without a further poll
    assert (stopped["lastStatus"], stopped["stopCode"]) == ("STOPPED", "UserInitiated")
    task = _task(fast, doc["task_arn"])
    assert (task["lastStatus"], task["stoppedReason"]) == ("STOPPED", STOP_REASON)


def test_an_image_tag_missing_in_ecr_is_exit_1_before_run_task(fast: Any, cli: Any) -> None:
    r = cli("--output", "json", "migrate", "--image-tag", "v9")
    assert r.code == 1, r.text
    doc = r.json()
    assert doc["error"]["code"] == "image-not-found"
    assert "arbiter-ai/backend:v9 does not exist in ECR" in doc["error"]["message"]
    assert _migration_tasks(fast) == []
    revisions = sandbox_client(fast, "ecs").list_task_definitions(familyPrefix="arbiter-backend")
    assert len(revisions["taskDefinitionArns"]) == 1  # nothing registered either


def test_an_unreachable_database_skips_the_preflight_visibly_and_migrates(fast: Any, cli: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("migrate", "--database-url", f"postgresql://arbiter:pw-not-shown@127.0.0.1:{port}/arbiter")
    assert r.code == 0, r.text
    assert "preflight skipped: cannot connect to postgresql://arbiter@127.0.0.1" in r.err
    assert "migration succeeded: exit 0" in r.out
    assert "pw-not-shown" not in r.text


def test_production_without_yes_is_refused_before_any_aws_call(cli: Any) -> None:
    r = cli("--env", "production", "--output", "json", "migrate")
    assert r.code == 2, r.text
    assert r.json()["error"]["code"] == "confirmation-required"


def test_a_malformed_command_is_bad_input(cli: Any) -> None:
    r = cli("migrate", "--command", "alembic 'upgrade")
    assert r.code == 2 and "--command cannot be parsed" in r.err


def test_run_migration_uses_the_backend_service_network_and_last_migration_finds_it(fast: Any) -> None:
    ctx = _local_ctx()
    assert last_migration(ctx) is None  # none ever run
    sent: list[dict[str, Any]] = []
    # botocore's event system, not a patch: record the RunTask request as it leaves the client.
    ctx.client("ecs").meta.events.register("provide-client-params.ecs.RunTask", lambda params, **_: sent.append(params))
    ecs = sandbox_client(fast, "ecs")
    service = ecs.describe_services(cluster="arbiter-ai", services=["backend"])["services"][0]
    arn = service["taskDefinition"]
    fast.aws.ecs.task_outcome(command_contains="alembic", exit_code=0, log_lines=LINES)
    lines: list[str] = []
    progress: list[str] = []
    result = run_migration(
        ctx,
        arn,
        ["alembic", "upgrade", "head"],
        30,
        lines.append,
        poll=PollPolicy(initial=0.01, maximum=0.05),
        on_progress=progress.append,
    )
    assert result.ok and result.exit_code == 0 and lines == LINES == result.log_tail
    assert result.network_configuration == service["networkConfiguration"]
    assert sent[0]["networkConfiguration"] == service["networkConfiguration"]
    # Read back as ECS shows it: the task's ENI sits in one of the backend service's subnets.
    (task,) = ecs.describe_tasks(cluster="arbiter-ai", tasks=[result.task_arn])["tasks"]
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["subnetId"] in service["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
    assert (sent[0]["startedBy"], sent[0]["launchType"]) == (STARTED_BY, "FARGATE")
    assert any("RUNNING" in p for p in progress) and any("STOPPED" in p for p in progress)
    assert ctx.aws.counter.count("DescribeTasks") == result.polls

    # The smoke-test `migrations` check reads it back; a failed one later becomes the most recent.
    found = last_migration(ctx)
    assert found is not None
    assert (found["task_arn"], found["ok"], found["exit_code"]) == (result.task_arn, True, 0)
    fast.aws.ecs.task_outcome(command_contains="alembic", exit_code=2)
    failed = run_migration(ctx, arn, ["alembic", "upgrade", "head"], 30, lines.append, poll=PollPolicy(0.01, 0.05))
    assert failed.verdict == "failed" and failed.exit_code == 2
    latest = last_migration(ctx)
    assert latest is not None
    assert (latest["task_arn"], latest["ok"], latest["exit_code"]) == (failed.task_arn, False, 2)


def test_preflight_passes_out_of_the_box_on_the_sandbox(sandbox: Any, cli: Any) -> None:
    r = cli("--output", "json", "migrate", "--preflight")
    assert r.code == 0, r.text
    pre = r.json()["preflight"]
    assert (pre["status"], pre["server_major"], pre["vector_available"] is not None) == ("pass", 16, True)
    assert pre["source"] == "DATABASE_URL from secret arbiter-ai/local"
    text = cli("migrate", "--preflight")
    assert text.code == 0 and "preflight passed" in text.out


def test_a_migration_that_left_a_text_embedding_column_fails(sandbox, cli) -> None:
    """Exit 0 is not enough: the real app's pgvector revision once swallowed its error, created
    rule_chunks.embedding as text and exited 0; every query then answers 500."""
    import psycopg

    ok = cli("--output", "json", "migrate")
    assert ok.code == 0, ok.err
    assert ok.json()["schema"] == {"status": "pass", "detail": "rule_chunks.embedding: vector"}
    with psycopg.connect(sandbox.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE rule_chunks ALTER COLUMN embedding TYPE text")
    try:
        r = cli("--output", "json", "migrate")
        assert r.code == 1, r.err
        doc = r.json()
        assert doc["verdict"] == "failed" and doc["exit_code"] == 0
        assert doc["reason"] == "the pgvector migration fell back to text: rule_chunks.embedding is text"
        deploy = cli("--output", "json", "deploy", "--image-tag", "v2", "--no-smoke")
        assert deploy.code == 1 and "fell back to text" in deploy.json()["error"]["message"]
    finally:
        with psycopg.connect(sandbox.database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE rule_chunks ALTER COLUMN embedding TYPE vector(1024) USING NULL")
