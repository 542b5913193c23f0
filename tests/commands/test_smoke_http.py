"""The HTTP checks against the Arbiter API stand-in over real HTTP: what each watches, retries (a blip
passes, an outage fails), timeouts, redirects, and all four in flight at once."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

HTTP_IDS = {"http-health", "http-catalog", "http-sign-in", "http-query"}


def smoke(cli: Any, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    result = cli("smoke-test", "--output", "json", *args)
    return result, {c["id"]: c for c in result.json()["checks"]}


def failures(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {i: c["detail"] for i, c in checks.items() if c["status"] == "fail"}


def config(tmp_path: Path, **smoke_settings: Any) -> str:
    """A config file whose [smoke] table has these settings."""
    lines = ["[smoke]"]
    for key, value in smoke_settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "smoke.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_health_503_fails_after_bounded_retries(sandbox, cli) -> None:
    sandbox.api.set_mode(health_status=503)
    result, checks = smoke(cli)
    assert result.code == 1
    assert failures(checks) == {"http-health": "GET /health answered 503 after 3 attempts"}  # retries = 2


def test_one_blip_is_not_a_failure(sandbox, cli) -> None:
    sandbox.api.faults.add({"kind": "error", "operation": "GET /health", "status": 502, "count": 1})
    result, checks = smoke(cli, "--only", "http-health")
    assert result.code == 0
    assert checks["http-health"]["detail"].endswith("after 2 attempts")


def test_an_outage_fails_every_http_check_and_nothing_else(sandbox, cli, tmp_path) -> None:
    sandbox.api.set_mode(down=True)
    result, checks = smoke(cli, "--config", config(tmp_path, retries=1))
    assert result.code == 1
    assert set(failures(checks)) == HTTP_IDS
    assert (
        failures(checks)["http-catalog"] == "GET /api/v1/catalog/ answered 503 (Service Unavailable) after 2 attempts"
    )


def test_slower_than_the_timeout(sandbox, cli, tmp_path) -> None:
    sandbox.api.faults.add({"kind": "latency", "operation": "GET /health", "latency_ms": 1500})
    result, checks = smoke(cli, "--config", config(tmp_path, timeout=0.3, retries=1))
    assert result.code == 1
    url = f"{sandbox.endpoints.app_base_url}/health"
    assert failures(checks) == {"http-health": f"GET {url} timed out after 0.3 s (2 attempts)"}


def test_whole_app_slower_than_the_timeout(sandbox, cli, tmp_path) -> None:
    sandbox.api.set_mode(delay_ms=1000)
    result, checks = smoke(cli, "--config", config(tmp_path, timeout=0.2, retries=0))
    assert result.code == 1
    assert set(failures(checks)) == HTTP_IDS
    assert all("timed out after 0.2 s" in detail for detail in failures(checks).values())


# backend/app/api/deps.py's 401 body, {"detail": {code, message}}
INVALID = "(INVALID_TOKEN: Invalid authentication token)"


def test_tokens_rejected(sandbox, cli) -> None:
    """Both signed-in checks present the token, so both fail: sign-in because /users/me refuses it, and
    the query because its session is refused before anything is answered."""
    sandbox.api.set_mode(reject_tokens=True)
    result, checks = smoke(cli)
    assert result.code == 1
    failing = failures(checks)
    assert set(failing) == {"http-sign-in", "http-query"}
    assert failing["http-sign-in"].startswith(f"GET /api/v1/users/me answered 401 {INVALID}: the backend refused")
    assert "NEXTAUTH_SECRET of arbiter-ai/local" in failing["http-sign-in"]
    assert failing["http-query"].startswith(f"POST /api/v1/sessions answered 401 {INVALID}")


def test_backend_using_another_nextauth_secret(sandbox, cli) -> None:
    sandbox.api.set_secret("a-different-secret-the-backend-was-started-with-0123456789")
    result, checks = smoke(cli, "--only", "http-sign-in")
    assert result.code == 1
    assert f"answered 401 {INVALID}" in checks["http-sign-in"]["detail"]


def test_catalog_error(sandbox, cli, tmp_path) -> None:
    sandbox.api.set_mode(error_routes=["/api/v1/catalog/"])
    result, checks = smoke(cli, "--config", config(tmp_path, retries=0))
    assert result.code == 1
    assert failures(checks) == {"http-catalog": f"GET /api/v1/catalog/ answered 500 {SNAG}"}


# backend/app/api/middleware.py's 500 body, {"error": {code, message}}
SNAG = "(INTERNAL_ERROR: The Arbiter hit a snag. Our team has been notified — please try again shortly!)"


def test_query_error(sandbox, cli, tmp_path) -> None:
    sandbox.api.set_mode(error_routes=["/api/v1/judge"])
    result, checks = smoke(cli, "--config", config(tmp_path, retries=0))
    assert result.code == 1
    assert failures(checks) == {"http-query": f"POST /api/v1/judge answered 500 {SNAG}"}


def test_redirects_are_not_followed_unless_configured(sandbox, cli, tmp_path) -> None:
    result, checks = smoke(cli, "--only", "http-catalog", "--config", config(tmp_path, catalog_path="/api/v1/catalog"))
    assert result.code == 1
    detail = checks["http-catalog"]["detail"]
    assert detail.startswith("GET /api/v1/catalog answered 307 redirect to ") and "follow_redirects" in detail
    following = config(tmp_path, catalog_path="/api/v1/catalog", follow_redirects=True)
    result, checks = smoke(cli, "--only", "http-catalog", "--config", following)
    assert result.code == 0, checks


def test_configured_paths_and_identity_are_used(sandbox, cli, tmp_path) -> None:
    cfg = config(tmp_path, identity_email="ops-bot@arbiter-ai.com", game_name="Ticket to Ride", query="ping")
    result, checks = smoke(cli, "--only", "http-sign-in", "--only", "http-query", "--config", cfg)
    assert result.code == 0
    assert "for ops-bot@arbiter-ai.com" in checks["http-sign-in"]["detail"]  # the email the backend returned
    assert "character verdict from mock" in checks["http-query"]["detail"]


# -- each behaviour of the real app makes exactly the check it concerns fail or warn -------------------------
def test_a_degraded_backend_fails_health_naming_what_is_down(sandbox, cli, tmp_path) -> None:
    """routes/health.py answers 200 with status degraded when the database or Redis is down. Without Redis the
    rest still answers (its rate limits fail open); without the database every route that reads it is a 500."""
    sandbox.api.set_mode(redis_up=False)
    result, checks = smoke(cli)
    assert result.code == 1
    assert failures(checks) == {"http-health": "GET /health answered 200 with status 'degraded': redis disconnected"}
    sandbox.api.set_mode(redis_up=True, database_up=False)
    result, checks = smoke(cli, "--config", config(tmp_path, retries=0))
    failing = failures(checks)
    assert failing["http-health"] == "GET /health answered 200 with status 'degraded': database disconnected"
    assert failing["http-catalog"] == f"GET /api/v1/catalog/ answered 500 {SNAG}"


def test_an_empty_catalog_fails_with_the_command_that_seeds_it(sandbox, cli) -> None:
    sandbox.api.set_mode(catalog_empty=True)
    result, checks = smoke(cli)
    assert result.code == 1
    assert failures(checks) == {
        "http-catalog": "GET /api/v1/catalog/ answered an empty catalog: seed it with "
        "`arbiter-ops --env local run backend -- python -m scripts.seed_catalog`"
    }


def test_a_game_without_a_ready_ruleset_is_a_warning(sandbox, cli) -> None:
    """routes/judge.py: 409 when the session's game has no READY ruleset (a fresh environment has none)."""
    sandbox.api.set_mode(ready_games=[])
    result, checks = smoke(cli)
    assert result.code == 0 and failures(checks) == {}
    assert checks["http-query"]["status"] == "warn"
    assert "POST /api/v1/judge answered 409 (" in checks["http-query"]["detail"]  # the backend's own reason
    assert "no ruleset of 'Catan (6th Ed)' is ready yet" in checks["http-query"]["detail"]


def test_the_free_tier_limit_fails_naming_the_fix(sandbox, cli) -> None:
    """routes/judge.py: a FREE user's 6th query in a UTC day is 429; each smoke run makes one."""
    for _ in range(5):
        assert smoke(cli, "--only", "http-query")[0].code == 0
    result, checks = smoke(cli, "--only", "http-query")
    assert result.code == 1
    detail = checks["http-query"]["detail"]
    assert detail.startswith("POST /api/v1/judge answered 429 (Daily query limit reached (5/5).")
    assert "give it a PRO subscription" in detail
    sandbox.api.set_mode(tier="PRO")
    assert smoke(cli, "--only", "http-query")[0].code == 0


def test_a_422_names_the_field_the_backend_refused(sandbox, cli, tmp_path) -> None:
    result, checks = smoke(cli, "--only", "http-query", "--config", config(tmp_path, game_name=""))
    assert result.code == 1
    assert "POST /api/v1/sessions answered 422 (game_name: String should have at least 1 character)" in (
        checks["http-query"]["detail"]
    )


def test_all_four_http_checks_are_in_flight_at_once(sandbox, cli) -> None:
    """Asserted without a clock: the stand-in holds each answer 500 ms and counts overlapping requests."""
    sandbox.api.set_mode(delay_ms=500)
    args = [a for i in sorted(HTTP_IDS) for a in ("--only", i)]
    result, _ = smoke(cli, *args)
    assert result.code == 0, result.text
    with urllib.request.urlopen(f"{sandbox.endpoints.app_base_url}/_sandbox/stats", timeout=5) as resp:
        stats = json.loads(resp.read())
    with urllib.request.urlopen(f"{sandbox.endpoints.app_base_url}/_sandbox/requests", timeout=5) as resp:
        log = json.loads(resp.read())
    # Four checks, five requests: http-query creates a session and then asks the judge.
    assert stats["max_in_flight"] >= 4 and stats["total"] == 5, (stats, log, result.json())


def test_a_backend_clock_behind_ours_is_tolerated_up_to_the_backdating(sandbox, cli) -> None:
    """The real backend's PyJWT allows no leeway: a token whose iat is in the backend's future is 401. Our iat is
    back-dated 30 s, so a backend 20 s behind still signs us in; one 60 s behind refuses the token."""
    import time

    sandbox.api.clock = lambda: time.time() - 20
    result, checks = smoke(cli, "--only", "http-sign-in")
    assert result.code == 0, checks
    sandbox.api.clock = lambda: time.time() - 60
    result, checks = smoke(cli, "--only", "http-sign-in")
    assert result.code == 1
    assert f"answered 401 {INVALID}" in checks["http-sign-in"]["detail"]
