"""`secrets diff ENV_A ENV_B` on the sandbox: staging and production are two more environments of its account,
their secrets created with plain boto3 as an operator's script would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import sandbox_client

CANARY = "CANARY-d1ffQ8zR"


@pytest.fixture
def two_envs(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = sandbox.endpoints.aws_endpoint_url
    (tmp_path / "arbiter-ops.toml").write_text(
        "".join(
            f'[environments.{env}]\naccount_id = "123456789012"\nendpoint_url = "{url}"\n'
            for env in ("staging", "production")
        )
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_REGION", raising=False)
    sm = sandbox_client(sandbox, "secretsmanager")
    base = json.loads(sm.get_secret_value(SecretId="arbiter-ai/local")["SecretString"])

    def create(env: str, **changes: str | None) -> None:
        data = {k: v for k, v in {**base, **changes}.items() if v is not None}
        sm.create_secret(Name=f"arbiter-ai/{env}", SecretString=json.dumps(data))

    return create


def _rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in doc["keys"]}


def test_a_key_only_in_one_and_stripe_modes_as_expected(two_envs: Any, cli: Any) -> None:
    two_envs("staging", STRIPE_SECRET_KEY=f"sk_test_{CANARY}", STAGING_ONLY_FLAG=CANARY)
    two_envs("production", STRIPE_SECRET_KEY=f"sk_live_{CANARY}", NEXTAUTH_SECRET=f"{CANARY}{'p' * 40}")
    r = cli("--output", "json", "secrets", "diff", "staging", "production")
    assert r.code == 0, r.text
    rows = _rows(r.json())
    assert rows["STAGING_ONLY_FLAG"]["status"] == "only-a" and rows["STAGING_ONLY_FLAG"]["problem"] is False
    assert rows["STRIPE_SECRET_KEY"]["status"] == "kind-differs-expected"
    assert rows["STRIPE_SECRET_KEY"]["kinds"] == {"staging": "sk_test_", "production": "sk_live_"}
    assert rows["NEXTAUTH_SECRET"]["status"] == "same"  # other values, the same kind: fine
    assert r.json()["summary"]["only_in"] == {"staging": 1, "production": 0}
    text = cli("secrets", "diff", "staging", "production")
    assert text.code == 0 and "STAGING_ONLY_FLAG" in text.out and "only in staging" in text.out
    for result in (r, text):
        assert CANARY not in result.text and "****" not in result.text


def test_a_referenced_key_missing_in_one_environment_is_exit_1(two_envs: Any, cli: Any) -> None:
    two_envs("staging")
    two_envs(
        "production",
        STRIPE_PRICE_ID=None,
        DATABASE_URL=f"postgres://u:{CANARY}@db:5432/arbiter",
        STRIPE_SECRET_KEY=f"sk_live_{CANARY}",
    )
    r = cli("--output", "json", "secrets", "diff", "staging", "production")
    assert r.code == 1, r.text
    doc = r.json()
    rows = _rows(doc)
    assert doc["ok"] is False and doc["command"] == "secrets diff"
    price = rows["STRIPE_PRICE_ID"]
    assert price["status"] == "missing-referenced" and price["problem"] and price["kinds"]["production"] is None
    assert price["referenced_by"]["production"] == ["backend"]
    url = rows["DATABASE_URL"]  # the backend's asyncpg driver cannot use a postgres:// URL
    assert url["status"] == "kind-differs" and url["problem"]
    assert url["kinds"] == {"staging": "postgresql+asyncpg://", "production": "postgres://"}
    text = cli("secrets", "diff", "staging", "production")
    assert text.code == 1 and "2 problem(s): DATABASE_URL, STRIPE_PRICE_ID" in text.out.replace("\n", " ")
    for result in (r, text):
        assert CANARY not in result.text and "****" not in result.text


def test_the_same_stripe_mode_in_production_and_staging_is_a_problem(two_envs: Any, cli: Any) -> None:
    two_envs("staging")
    two_envs("production")  # the sandbox's sk_test_ key in both
    r = cli("--output", "json", "secrets", "diff", "staging", "production")
    assert r.code == 1 and _rows(r.json())["STRIPE_SECRET_KEY"]["status"] == "same-mode", r.text


def test_an_environment_without_its_secret_lacks_every_referenced_key(two_envs: Any, cli: Any) -> None:
    two_envs("staging")
    r = cli("--output", "json", "secrets", "diff", "staging", "production")
    assert r.code == 1, r.text
    assert r.json()["environments"][1] == {
        "name": "production",
        "secret": "arbiter-ai/production",
        "exists": False,
        "keys": 0,
    }
    missing = {row["key"] for row in r.json()["keys"] if row["status"] == "missing-referenced"}
    assert {"DATABASE_URL", "NEXTAUTH_SECRET", "STRIPE_SECRET_KEY", "FRONTEND_DATABASE_URL"} <= missing
