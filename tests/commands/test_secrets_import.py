"""`secrets import FILE` and `secrets set KEY` against the sandbox's Secrets Manager, over real HTTP.

The template fixture (tests/fixtures/backend.env.production.example) has the key names and placeholder shapes
of the real app's backend/.env.production.example (gndumbri/arbiter-ai).
"""

from __future__ import annotations

import io
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_subprocess, sandbox_client

TEMPLATE = ROOT / "tests" / "fixtures" / "backend.env.production.example"
SECRET = "arbiter-ai/local"
PLACEHOLDER_KEYS = [
    "DATABASE_URL",
    "NEXTAUTH_SECRET",
    "REDIS_URL",
    "STRIPE_PRICE_ID",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
]
WRITES = ("secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage", "secretsmanager:CreateSecret")
CANARY = "CANARY-9f3kQ2xWv7"


def payload(sandbox: Any, secret: str = SECRET) -> dict[str, Any]:
    return json.loads(sandbox_client(sandbox, "secretsmanager").get_secret_value(SecretId=secret)["SecretString"])


def versions(sandbox: Any, secret: str = SECRET) -> dict[str, list[str]]:
    resp = sandbox_client(sandbox, "secretsmanager").list_secret_version_ids(SecretId=secret, IncludeDeprecated=True)
    return {v["VersionId"]: v.get("VersionStages", []) for v in resp["Versions"]}


def current_version(sandbox: Any, secret: str = SECRET) -> str:
    return next(v for v, stages in versions(sandbox, secret).items() if "AWSCURRENT" in stages)


def writes(doc: dict[str, Any]) -> dict[str, int]:
    return {op: n for op, n in doc.get("api_calls", {}).get("by_operation", {}).items() if op in WRITES}


def filled(stripe_key: str = "sk_test_51Fill" + "x" * 20, secret: str = "n" * 48, password: str = "s3cret-pw") -> str:
    """The template with its placeholders filled in with values check-secrets accepts."""
    text = TEMPLATE.read_text()
    for placeholder, value in {
        "<PASSWORD>": password,
        "<PROD_RDS_ENDPOINT>": "arbiter-db.internal",
        "<PROD_ELASTICACHE_ENDPOINT>": "arbiter-redis.internal",
        "<GENERATE_A_STRONG_SECRET>": secret,
        "sk_live_...": stripe_key,
        "price_...": "price_1PqRsTuVwX",
        "whsec_...": "whsec_fill" + "w" * 24,
    }.items():
        text = text.replace(placeholder, value)
    return text


def write(tmp_path: Path, text: str, name: str = "app.env") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_real_apps_template_is_refused_naming_each_placeholder_and_writing_nothing(sandbox: Any, cli: Any) -> None:
    before, stored = payload(sandbox), versions(sandbox)
    r = cli("--output", "json", "secrets", "import", str(TEMPLATE))
    assert r.code == 1, r.text
    doc = r.json()
    assert doc["ok"] is False and doc["command"] == "secrets import" and doc["env"] == "local"
    message = doc["error"]["message"]
    named = message.split("rejects: ", 1)[1].split(";", 1)[0].split(", ")
    assert named == PLACEHOLDER_KEYS, message
    assert {f["key"] for f in doc["findings"] if f["code"] == "placeholder-value"} == set(PLACEHOLDER_KEYS)
    assert writes(doc) == {} and doc["written"] is False
    assert payload(sandbox) == before and versions(sandbox) == stored
    text = cli("secrets", "import", str(TEMPLATE))
    errors = [line for line in text.err.splitlines() if line.startswith("error:")]
    assert text.code == 1 and len(errors) == 1 and all(k in errors[0] for k in PLACEHOLDER_KEYS), text.err


def test_the_filled_in_template_imports_other_keys_survive_and_a_second_run_changes_nothing(
    sandbox: Any, cli: Any, tmp_path: Path
) -> None:
    before, old_version = payload(sandbox), current_version(sandbox)
    path = write(tmp_path, filled())
    r = cli("--output", "json", "secrets", "import", path)
    assert r.code == 0, r.text
    doc = r.json()
    assert doc["ok"] and doc["written"] and not doc["created"]
    assert "CATALOG_SYNC_CRON" in doc["plan"]["added"] and "FRONTEND_DATABASE_URL" in doc["plan"]["kept"]
    after = payload(sandbox)
    assert after["FRONTEND_DATABASE_URL"] == before["FRONTEND_DATABASE_URL"]  # a key not in the file survives
    assert after["CATALOG_SYNC_CRON"] == "15 */6 * * *"  # unquoted, with spaces, as python-dotenv reads it
    assert after["OPEN_RULES_ALLOWED_LICENSES"] == "creative commons,open gaming license,orc"
    assert after["DATABASE_URL"] == "postgresql+asyncpg://arbiter:s3cret-pw@arbiter-db.internal:5432/arbiter"
    assert "AWSPREVIOUS" in versions(sandbox)[old_version]  # the compare-and-set kept the previous version
    again = cli("--output", "json", "secrets", "import", path)
    assert again.code == 0, again.text
    plan = again.json()["plan"]
    assert plan["added"] == plan["changed"] == [] and len(plan["unchanged"]) == len(after) - len(plan["kept"])
    assert writes(again.json()) == {} and again.json()["written"] is False
    assert payload(sandbox) == after


def test_text_plan_shows_lengths_never_values(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    old = payload(sandbox)["NEXTAUTH_SECRET"]
    r = cli("secrets", "import", write(tmp_path, f"NEXTAUTH_SECRET={'q' * 52}\nNEW_FLAG=on\n"), "--dry-run")
    assert r.code == 0, r.text
    assert f"NEXTAUTH_SECRET  changed (length {len(old)} → 52)" in r.out
    assert "NEW_FLAG  added" in r.out and "dry run: nothing written" in r.out
    assert old not in r.text and "q" * 52 not in r.text
    assert payload(sandbox)["NEXTAUTH_SECRET"] == old


def test_dry_run_makes_no_write_call(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    before = payload(sandbox)
    r = cli("--output", "json", "secrets", "import", write(tmp_path, filled()), "--dry-run")
    assert r.code == 0, r.text
    assert r.json()["plan"]["added"] and writes(r.json()) == {} and payload(sandbox) == before


def test_replace_removes_what_the_file_lacks_but_never_a_referenced_key(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    current = payload(sandbox)
    kept = {k: v for k, v in current.items() if k != "LOG_LEVEL"}
    text = "".join(f"{k}={json.dumps(v)}\n" for k, v in kept.items())
    r = cli("--output", "json", "secrets", "import", write(tmp_path, text), "--replace")
    assert r.code == 0, r.text
    assert r.json()["plan"]["removed"] == ["LOG_LEVEL"] and "LOG_LEVEL" not in payload(sandbox)
    without = {k: v for k, v in kept.items() if k != "STRIPE_PRICE_ID"}  # the backend references it
    text = "".join(f"{k}={json.dumps(v)}\n" for k, v in without.items())
    refused = cli("--output", "json", "secrets", "import", write(tmp_path, text), "--replace")
    assert refused.code == 1 and "STRIPE_PRICE_ID is referenced by the backend" in refused.json()["error"]["message"]
    assert writes(refused.json()) == {} and "STRIPE_PRICE_ID" in payload(sandbox)


def test_values_the_rules_reject_are_refused_each_by_key(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    text = (
        "STRIPE_SECRET_KEY=sk_live_51Hlivekey0123456789\n"  # a live key outside production
        "NEXTAUTH_SECRET=too-short\n"
        "FRONTEND_DATABASE_URL=postgresql+asyncpg://u:p@db:5432/arbiter\n"  # the frontend's Node driver cannot
        "REDIS_URL=http://cache:6379\n"
        "LOG_LEVEL=DEBUG\n"
    )
    before = payload(sandbox)
    r = cli("--output", "json", "secrets", "import", write(tmp_path, text))
    assert r.code == 1, r.text
    codes = {(f["key"], f["code"]) for f in r.json()["findings"]}
    assert {
        ("STRIPE_SECRET_KEY", "stripe-key-mode"),
        ("NEXTAUTH_SECRET", "weak-secret"),
        ("FRONTEND_DATABASE_URL", "bad-url"),
        ("REDIS_URL", "bad-url"),
    } <= codes
    message = r.json()["error"]["message"]
    assert "LOG_LEVEL" not in message and all(
        k in message for k in ("STRIPE_SECRET_KEY", "NEXTAUTH_SECRET", "FRONTEND_DATABASE_URL", "REDIS_URL")
    )
    assert payload(sandbox) == before and writes(r.json()) == {}


def test_import_creates_the_secret_of_a_new_environment(
    sandbox: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "arbiter-ops.toml").write_text(
        "[environments.prodlike]\n"
        'app_mode = "production"\napp_env = "production"\naccount_id = "123456789012"\n'
        f'endpoint_url = "{sandbox.endpoints.aws_endpoint_url}"\n'
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    path = write(tmp_path, filled(stripe_key="sk_live_51Live" + "y" * 20))
    test_key = write(tmp_path, filled(), "test-key.env")  # a test-mode key is refused in production
    refused = cli("--env", "prodlike", "--yes", "--output", "json", "secrets", "import", test_key)
    assert refused.code == 1 and "STRIPE_SECRET_KEY" in refused.json()["error"]["message"], refused.text
    r = cli("--env", "prodlike", "--yes", "--output", "json", "secrets", "import", path)
    assert r.code == 0, r.text
    assert r.json()["created"] is True and r.json()["plan"]["exists"] is False
    stored = payload(sandbox, "arbiter-ai/prodlike")
    keys = [line.split("=", 1)[0] for line in TEMPLATE.read_text().splitlines() if "=" in line and line[0] != "#"]
    assert stored["STRIPE_SECRET_KEY"].startswith("sk_live_51Live") and list(stored) == keys
    again = cli("--env", "prodlike", "--yes", "--output", "json", "secrets", "import", path)
    assert again.code == 0 and writes(again.json()) == {}, again.text


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_set_reads_exactly_one_value_from_stdin(sandbox: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    before = payload(sandbox)
    _stdin(monkeypatch, "price_1NewPriceId\n")
    r = cli("--output", "json", "secrets", "set", "STRIPE_PRICE_ID")
    assert r.code == 0, r.text
    assert r.json()["plan"]["changed"][0]["key"] == "STRIPE_PRICE_ID" and "price_1NewPriceId" not in r.text
    assert payload(sandbox) == {**before, "STRIPE_PRICE_ID": "price_1NewPriceId"}
    _stdin(monkeypatch, "price_1NewPriceId\n")
    again = cli("--output", "json", "secrets", "set", "STRIPE_PRICE_ID")
    assert again.code == 0 and writes(again.json()) == {} and again.json()["plan"]["unchanged"] == ["STRIPE_PRICE_ID"]
    _stdin(monkeypatch, "<PRICE_ID>\n")
    refused = cli("--output", "json", "secrets", "set", "STRIPE_PRICE_ID")
    assert refused.code == 1 and "STRIPE_PRICE_ID" in refused.json()["error"]["message"]
    assert payload(sandbox)["STRIPE_PRICE_ID"] == "price_1NewPriceId"


def test_set_as_a_user_pipes_it(sandbox: Any, tmp_path: Path) -> None:
    r = run_subprocess("--output", "json", "secrets", "set", "STRIPE_PRICE_ID", cwd=tmp_path, stdin="price_1Piped\r\n")
    assert r.code == 0, r.text
    assert payload(sandbox)["STRIPE_PRICE_ID"] == "price_1Piped"  # one value, its line ending dropped
    assert writes(r.json()) == {
        "secretsmanager:PutSecretValue": 1,
        "secretsmanager:UpdateSecretVersionStage": 2,  # AWSCURRENT moved (the compare-and-set), AWSPENDING dropped
    }


def test_an_empty_plain_setting_no_container_uses_is_not_a_placeholder(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    r = cli("--output", "json", "secrets", "import", write(tmp_path, "SENTRY_DSN=\nEXTRA_API_KEY=\n"))
    assert r.code == 1, r.text  # an empty *_KEY is still a forgotten value
    assert [f["key"] for f in r.json()["findings"]] == ["EXTRA_API_KEY"]
    assert cli("secrets", "import", write(tmp_path, "SENTRY_DSN=\n")).code == 0
    assert payload(sandbox)["SENTRY_DSN"] == ""


# -- the canary: no value in any output, on success and on refusal -------------------------------------------
def forms(value: str) -> set[str]:
    return {value, urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1], value[-12:]}


MODES = {"text": [], "json": ["--output", "json"], "verbose": ["-vv"], "github": ["--output", "json"]}
SCENARIOS = {
    "import": (0, f"NEXTAUTH_SECRET={CANARY}{'a' * 32}\nDATABASE_URL=postgresql+asyncpg://u:{CANARY}@db:5432/a\n"),
    "import-dry-run": (0, f"STRIPE_PRICE_ID=price_{CANARY}\nNOTE={CANARY}\n"),
    "import-refused": (1, f"NEXTAUTH_SECRET={CANARY}\nSTRIPE_SECRET_KEY=sk_live_{CANARY}\nNOTE={CANARY}\n"),
    "import-unparsable": (2, f'NOTE={CANARY}\nsk_live_{CANARY}\nX="{CANARY}\n'),
    "set": (0, f"sk_test_{CANARY}\n"),
    "set-refused": (1, f"sk_live_{CANARY}\n"),
    "set-two-lines": (2, f"sk_test_{CANARY}\nsecond-{CANARY}\n"),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_value_ever_appears_in_any_output(
    scenario: str, mode: str, sandbox: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, text = SCENARIOS[scenario]
    summary = tmp_path / "summary.md"
    if mode == "github":
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    if scenario.startswith("set"):
        _stdin(monkeypatch, text)
        r = cli(*MODES[mode], "secrets", "set", "STRIPE_SECRET_KEY")
    else:
        extra = ["--dry-run"] if scenario.endswith("dry-run") else []
        r = cli(*MODES[mode], "secrets", "import", write(tmp_path, text), *extra)
    assert r.code == code, r.text
    everything = r.text + (summary.read_text() if summary.exists() else "")
    if mode == "github" and code:
        assert "::error" in everything
    assert "Traceback" not in everything and "****" not in everything  # never even tried to print one
    for form in forms(CANARY):
        assert form not in everything, (form, everything)
    if mode == "json":
        json.loads(r.out)  # one document, nothing else on stdout
