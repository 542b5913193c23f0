"""The local environment: the seed contract, the embedded sandbox, and `local up/status/down`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import extra_services_toml, run_subprocess, sandbox_client


def test_seed_matches_the_contract(sandbox) -> None:
    ecr = sandbox_client(sandbox, "ecr")
    for repo in ("arbiter-ai/backend", "arbiter-ai/frontend"):
        tags = {t for i in ecr.describe_images(repositoryName=repo)["imageDetails"] for t in i.get("imageTags", [])}
        assert {"v1", "v2"} <= tags
    ecs = sandbox_client(sandbox, "ecs")
    services = ecs.describe_services(cluster="arbiter-ai", services=["backend", "frontend"])["services"]
    assert len(services) == 2
    for svc in services:
        td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        assert td["containerDefinitions"][0]["image"].endswith(":v1")
        breaker = svc["deploymentConfiguration"]["deploymentCircuitBreaker"]
        assert breaker == {"enable": True, "rollback": True}
        assert svc["runningCount"] == svc["desiredCount"] == 2
    payload = json.loads(
        sandbox_client(sandbox, "secretsmanager").get_secret_value(SecretId="arbiter-ai/local")["SecretString"]
    )
    for key in (
        "DATABASE_URL",
        "FRONTEND_DATABASE_URL",
        "REDIS_URL",
        "NEXTAUTH_SECRET",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_PRICE_ID",
        "ALLOWED_ORIGINS",
        "APP_BASE_URL",
        "APP_ENV",
        "APP_MODE",
        "LLM_PROVIDER",
        "EMBEDDING_PROVIDER",
        "VECTOR_STORE_PROVIDER",
        "AWS_REGION",
        "TRUSTED_PROXY_HOPS",
        "LOG_LEVEL",
    ):
        assert payload.get(key), key
    assert payload["STRIPE_SECRET_KEY"].startswith("sk_test_") and len(payload["NEXTAUTH_SECRET"]) >= 32
    assert payload["DATABASE_URL"].startswith("postgresql+asyncpg://")
    (endpoint,) = sandbox.stripe.endpoints()
    assert endpoint["secret"] == payload["STRIPE_WEBHOOK_SECRET"]
    assert endpoint["url"] == sandbox.endpoints.app_base_url + "/api/v1/billing/webhooks/stripe"


def test_sandbox_database_is_postgres_16_with_pgvector(sandbox) -> None:
    import psycopg

    with psycopg.connect(sandbox.database_url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        vector = conn.execute("select 1 from pg_available_extensions where name = 'vector'").fetchone()
    assert version.startswith("16.") and vector


def test_reset_returns_to_the_fresh_seed(sandbox) -> None:
    ecs = sandbox_client(sandbox, "ecs")
    ecs.delete_service(cluster="arbiter-ai", service="backend", force=True)
    started = time.perf_counter()
    sandbox.reset()
    print(f"sandbox reset + reseed: {time.perf_counter() - started:.3f} s")
    services = ecs.describe_services(cluster="arbiter-ai", services=["backend"])["services"]
    assert services and services[0]["status"] == "ACTIVE"


def test_render_diff_on_local_with_nothing_running(tmp_path: Path) -> None:
    """A subprocess with no sandbox around: the command starts an embedded one and stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env["ARBITER_OPS_LOCAL_STATE"] = str(tmp_path / "none.json")
    r = run_subprocess("render", "backend", "--diff", "--image-tag", "v2", env=env, cwd=tmp_path)
    assert r.code == 0, r.err
    assert "embedded local sandbox" in r.err
    assert '+      "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:v2",' in r.err


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_local_up_status_down_leaves_no_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env["ARBITER_OPS_LOCAL_STATE"] = str(tmp_path / "state" / "local.json")
    up = run_subprocess("--output", "json", "local", "up", env=env, cwd=tmp_path)
    try:
        assert up.code == 0, up.err
        doc = json.loads(up.out)
        assert doc["command"] == "local up" and doc["ok"] is True
        assert set(doc) >= {"aws_endpoint_url", "stripe_api_base", "app_base_url", "pid"}
        pid = doc["pid"]
        pg_dir = json.loads(Path(env["ARBITER_OPS_LOCAL_STATE"]).read_text())["pg_data_dir"]
        pg_pid = int(Path(pg_dir, "postmaster.pid").read_text().splitlines()[0])
        assert _alive(pid) and _alive(pg_pid)
        again = run_subprocess("--output", "json", "local", "up", env=env, cwd=tmp_path)
        assert again.code == 0 and json.loads(again.out)["pid"] == pid  # idempotent
        status = run_subprocess("--output", "json", "local", "status", env=env, cwd=tmp_path)
        assert json.loads(status.out)["aws_endpoint_url"] == doc["aws_endpoint_url"]
        # A command with --env local uses it (no embedded sandbox started).
        r = run_subprocess("-v", "render", "backend", "--diff", "--image-tag", "v2", env=env, cwd=tmp_path)
        assert r.code == 0 and f"using the local sandbox of pid {pid}" in r.err
    finally:
        down = run_subprocess("local", "down", env=env, cwd=tmp_path)
    assert down.code == 0, down.err
    assert not _alive(pid) and not _alive(pg_pid)
    assert not Path(env["ARBITER_OPS_LOCAL_STATE"]).exists()
    after = run_subprocess("--output", "json", "local", "status", env=env, cwd=tmp_path)
    assert after.code == 1 and json.loads(after.out)["ok"] is False


def test_check_secrets_passes_on_the_fresh_sandbox(sandbox, cli) -> None:
    r = cli("--output", "json", "check-secrets")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["ok"] is True and doc["summary"]["error"] == 0 and doc["summary"]["warning"] == 0
    assert doc["env"] == "local"


TWELVE_SERVICES = extra_services_toml(10)  # plus the built-in backend and frontend


def test_a_deploy_of_twelve_services_describes_at_most_ten_per_call(tmp_path: Path) -> None:
    """The embedded sandbox seeds what the config names, and refuses a DescribeServices of more than 10 services
    as AWS does: a deploy of 12 services only succeeds if every DescribeServices it makes is batched."""
    config = tmp_path / "arbiter-ops.toml"
    config.write_text(TWELVE_SERVICES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env.update(
        ARBITER_OPS_LOCAL_STATE=str(tmp_path / "none.json"),
        ARBITER_OPS_SANDBOX_STEP_SECONDS="0",
        ARBITER_OPS_SANDBOX_POSTGRES="0",
    )
    r = run_subprocess("--output", "json", "deploy", "--image-tag", "v2", "--no-smoke", env=env, cwd=tmp_path)
    assert r.code == 0, r.err
    doc = r.json()
    assert len(doc["task_definitions"]) == 12 and all(arn.endswith(":2") for arn in doc["task_definitions"].values())
    calls = doc["api_calls"]["by_operation"]
    # One poll of 12 services is two calls (10 + 2): at least the register step's read and one poll.
    assert calls["ecs:DescribeServices"] >= 4 and calls["ecs:UpdateService"] == 12


def test_a_sandbox_part_that_did_not_start_is_said_first(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env.update(ARBITER_OPS_LOCAL_STATE=str(tmp_path / "none.json"), ARBITER_OPS_SANDBOX_POSTGRES="0")
    r = run_subprocess("status", env=env, cwd=tmp_path)
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    assert "embedded local sandbox" in lines[0]
    assert lines[1].startswith("warning: PostgreSQL was not started") and "migrate --preflight will fail" in lines[1]


def test_local_up_is_found_from_a_subdirectory_of_the_project(tmp_path: Path) -> None:
    """`local up` at the project's top; commands from a subdirectory use that sandbox, and say which."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env["ARBITER_OPS_SANDBOX_POSTGRES"] = "0"
    (tmp_path / ".git").mkdir()
    deep = tmp_path / "backend" / "app"
    deep.mkdir(parents=True)
    up = run_subprocess("--output", "json", "local", "up", env=env, cwd=deep)
    try:
        assert up.code == 0, up.err
        pid = up.json()["pid"]
        assert (tmp_path / ".arbiter-ops" / "local.json").is_file()  # at the project's top, not in backend/app
        status = run_subprocess("status", env=env, cwd=tmp_path / "backend")
        assert status.code == 0, status.err
        assert f"using the local sandbox of pid {pid} ({tmp_path / '.arbiter-ops' / 'local.json'})" in status.err
        assert "embedded" not in status.err
    finally:
        down = run_subprocess("local", "down", env=env, cwd=deep)
    assert down.code == 0 and not _alive(pid), down.err
