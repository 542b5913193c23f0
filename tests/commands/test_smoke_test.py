"""`smoke-test` as a command: the seeded sandbox passes, the output formats, selection, deadlines, exit
codes, and neither NEXTAUTH_SECRET nor the minted token ever printed.

What each check watches is tested in test_smoke_infra.py, test_smoke_http.py and test_smoke_production.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import context

from arbiter_ops.checks.token import mint_hs256

CONTRACT_IDS = [
    "rds",
    "redis",
    "secrets",
    "images",
    "ecs-services",
    "alb-routing",
    "certificate",
    "dns",
    "migrations",
    "stripe-webhook",
    "app-env",
    "allowed-origins",
    "http-health",
    "http-catalog",
    "http-sign-in",
    "http-query",
]


def smoke(cli: Any, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    result = cli("smoke-test", "--output", "json", *args)
    return result, {c["id"]: c for c in result.json()["checks"]}


def failures(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {i: c["detail"] for i, c in checks.items() if c["status"] == "fail"}


def test_seeded_sandbox_passes_with_every_contract_check(sandbox, cli) -> None:
    result, checks = smoke(cli)
    assert result.code == 0, result.text
    doc = result.json()
    assert (doc["command"], doc["ok"], doc["env"]) == ("smoke-test", True, "local")
    ids = [c["id"] for c in doc["checks"]]
    assert ids == [*CONTRACT_IDS, "beat-singleton", "secrets-fresh"]  # all of them, in the contract's order, then ours
    for c in doc["checks"]:
        assert set(c) == {"id", "status", "detail", "duration_ms"}
        assert isinstance(c["duration_ms"], int) and c["duration_ms"] >= 0 and c["detail"]
    assert failures(checks) == {}
    assert checks["app-env"]["status"] == checks["allowed-origins"]["status"] == "skip"
    assert checks["migrations"]["status"] in ("pass", "warn")
    passing = set(CONTRACT_IDS) - {"app-env", "allowed-origins", "migrations"}
    assert {i for i in passing if checks[i]["status"] != "pass"} == set()


def test_text_output_is_a_checklist(sandbox, cli) -> None:
    result = cli("smoke-test")
    assert result.code == 0, result.text
    lines = result.out.splitlines()
    for check_id in CONTRACT_IDS:
        (line,) = [ln for ln in lines if f" {check_id} " in ln]
        assert line[0] in "✓!-" and line.rstrip().endswith("ms)")
    assert "✓ http-query" in result.out and "- app-env" in result.out
    assert "smoke-test local passed" in lines[-1]


def test_only_and_skip_select_checks(sandbox, cli) -> None:
    result, checks = smoke(cli, "--only", "dns", "--only", "rds")
    assert result.code == 0 and list(checks) == ["rds", "dns"]
    result, checks = smoke(cli, "--skip", "http-query", "--skip", "migrations")
    assert result.code == 0
    skipped_ids = ("http-query", "migrations")
    assert [i for i in checks if i in CONTRACT_IDS] == [i for i in CONTRACT_IDS if i not in skipped_ids]


def test_unknown_check_id_is_a_usage_error_listing_the_valid_ones(sandbox, cli) -> None:
    result = cli("smoke-test", "--only", "http-helth")
    assert result.code == 2 and "Traceback" not in result.text
    assert "unknown check id http-helth" in result.err and "http-health" in result.err
    result = cli("smoke-test", "--skip", "nope", "--output", "json")
    assert result.code == 2
    assert result.json()["error"]["code"] == "unknown-check" and "ecs-services" in result.json()["error"]["message"]


def test_a_check_that_overruns_its_deadline_fails_and_is_not_waited_for(sandbox, cli, tmp_path) -> None:
    sandbox.aws.faults.add({"kind": "latency", "operation": "rds:DescribeDBInstances", "latency_ms": 8000})
    config = str(_config(tmp_path, aws_timeout=1))
    result, checks = smoke(cli, "--config", config, "--only", "rds", "--only", "redis")
    assert result.code == 3  # a check that could not be performed in time did not find the site broken
    assert failures(checks) == {"rds": "timed out after 1 s"}
    assert checks["redis"]["status"] == "pass"


def test_github_mode_annotates_failures_and_writes_a_step_summary(sandbox, cli, monkeypatch, tmp_path) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    sandbox.api.set_mode(health_status=503)
    result = cli("smoke-test", "--config", str(_config(tmp_path, retries=0)))
    assert result.code == 1
    assert "::error title=smoke-test http-health::GET /health answered 503" in result.out
    assert "::warning title=smoke-test migrations::" in result.out
    text = summary.read_text()
    assert "| ✗ | `http-health` | fail | GET /health answered 503" in text
    assert "| ✓ | `rds` | pass |" in text and "smoke-test local FAILED" in text


def test_only_checks_that_could_not_run_exit_3(sandbox, cli, monkeypatch, tmp_path) -> None:
    """No AWS credentials: the AWS checks could not be performed; that is the environment's fault (3)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoints.aws_endpoint_url)
    monkeypatch.setenv("ARBITER_OPS_BASE_URL", sandbox.endpoints.app_base_url)
    monkeypatch.setenv("ARBITER_OPS_STRIPE_API_BASE", sandbox.endpoints.stripe_api_base)
    result, checks = smoke(cli, "--env", "production")
    assert result.code == 3, result.text
    assert "no AWS credentials found" in checks["rds"]["detail"]
    assert checks["http-health"]["status"] == "pass"  # what needs no AWS still ran
    assert checks["http-sign-in"]["status"] == "fail"  # its secret is behind the missing credentials


def test_run_smoke_returns_the_verdict_and_prints_nothing(sandbox, capsys) -> None:
    from arbiter_ops.checks.checklist import run_smoke
    from arbiter_ops.core.output import Output

    ctx = context("local", Output())
    ctx.local()  # finding the sandbox says which one it uses; the checks themselves print nothing
    capsys.readouterr()
    sandbox.api.set_mode(reject_tokens=True)
    ok, results = run_smoke(ctx, only=["http-health", "http-sign-in"])
    assert not ok and [(r.id, r.status) for r in results] == [("http-health", "pass"), ("http-sign-in", "fail")]
    assert capsys.readouterr() == ("", "")


# -- never printed -------------------------------------------------------------------------------
def _config(tmp_path: Path, **smoke: Any) -> Path:
    path = tmp_path / "arbiter-ops.toml"
    lines = ["[smoke]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v!r}" for k, v in smoke.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def tokens_mintable(secret: str, since: float, until: float) -> list[str]:
    """Every token the run can have minted: HS256 is deterministic, so the configured identity's token for
    each second of the run's window covers the real ones (no patching of our own code)."""
    from arbiter_ops.checks.http import TOKEN_TTL_S
    from arbiter_ops.core.config import SmokeConfig

    smoke = SmokeConfig()
    return [
        mint_hs256(secret, smoke.identity_sub, smoke.identity_email, smoke.identity_name, ttl_s=TOKEN_TTL_S, now=second)
        for second in range(int(since) - 1, int(until) + 2)
    ]


def test_nextauth_secret_and_token_appear_in_no_output(sandbox, cli, monkeypatch, tmp_path) -> None:
    secret = sandbox.nextauth_secret
    since = time.time()
    summary = tmp_path / "summary.md"
    outputs = []
    for mode in ("text", "json"):
        outputs.append(cli("smoke-test", "--output", mode, "-vv"))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    # The app echoing the secret in an error (a bad backend would) must still not get it printed.
    sandbox.api.faults.add({"kind": "error", "operation": "POST /api/v1/judge", "status": 400, "message": secret})
    sandbox.api.set_mode(health_status=503)
    for mode in ("text", "json"):
        outputs.append(cli("smoke-test", "--output", mode, "--config", str(_config(tmp_path, retries=0))))
    assert [r.code for r in outputs] == [0, 0, 1, 1]
    assert "POST /api/v1/judge answered 400 (****)" in outputs[-1].out
    minted = tokens_mintable(secret, since, time.time())
    assert minted and all(t.count(".") == 2 for t in minted)
    everything = "".join(r.out + r.err for r in outputs) + summary.read_text()
    for value in [secret, *minted, *(t.rsplit(".", 1)[1] for t in minted)]:
        assert value not in everything


def test_minted_token_is_accepted_by_the_backend_and_short_lived() -> None:
    """The backend's PyJWT allows no leeway (backend/app/api/deps.py): a backend clock up to 30 s behind ours still
    accepts the token, whose iat is back-dated; one whose iat is in the backend's future is refused."""
    from arbiter_sandbox.api_server import TokenError, verify_token

    token = mint_hs256("s" * 48, "smoke", "smoke@example.com", "Smoke", ttl_s=300, now=1_000_000)
    claims = verify_token(token, "s" * 48, now=1_000_000 - 20)  # the backend's clock 20 s behind ours
    assert claims == {"sub": "smoke", "email": "smoke@example.com", "name": "Smoke", "iat": 999_970, "exp": 1_000_300}
    unbackdated = mint_hs256("s" * 48, "smoke", "smoke@example.com", ttl_s=300, now=1_000_000, backdate_s=0)
    with pytest.raises(TokenError):
        verify_token(unbackdated, "s" * 48, now=1_000_000 - 1)  # one second: "The token is not yet valid (iat)"
    with pytest.raises(ValueError):
        mint_hs256("s" * 48, "smoke", "smoke@example.com", ttl_s=301)
