"""Stale values in running tasks: `status` and the smoke test's `secrets-fresh` compare the tasks' startedAt with
the current version date of the secrets they reference (ListSecretVersionIds; no value read)."""

from __future__ import annotations

import json
import time
from typing import Any

from conftest import sandbox_client

SECRET = "arbiter-ai/local"


def change_the_secret(sandbox: Any) -> None:
    """What an operator does by hand (the guide's put-secret-value), after the tasks started."""
    time.sleep(1.1)  # version dates have one-second resolution in the sandbox, as in moto
    sm = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(sm.get_secret_value(SecretId=SECRET)["SecretString"])
    sm.put_secret_value(SecretId=SECRET, SecretString=json.dumps({**payload, "STRIPE_PRICE_ID": "price_1Changed"}))


def stale(cli: Any) -> list[dict[str, Any]]:
    r = cli("--output", "json", "status")
    assert r.code == 0, r.text
    doc = r.json()
    ops = doc["api_calls"]["by_operation"]
    assert "secretsmanager:GetSecretValue" not in ops and ops["secretsmanager:ListSecretVersionIds"] == 1
    return list(doc["stale_secrets"])


def test_status_names_the_services_holding_the_old_value_until_they_are_restarted(sandbox: Any, cli: Any) -> None:
    assert stale(cli) == []
    change_the_secret(sandbox)
    found = stale(cli)
    assert sorted(s["service"] for s in found) == ["backend", "frontend"]
    assert all(s["secret"] == SECRET and s["tasks"] == s["running"] == 2 for s in found), found
    assert all(s["started"] < s["changed"] for s in found)
    text = cli("status")
    assert "backend: tasks started " in text.out and f"hold the previous value of {SECRET} (changed " in text.out
    assert "run `arbiter-ops --env local deploy --force-new-deployment`" in text.out
    deploy = cli(
        "--output", "json", "deploy", "--image-tag", "v1", "--no-migrate", "--no-smoke", "--force-new-deployment"
    )
    assert deploy.code == 0, deploy.err
    assert stale(cli) == []


def test_the_smoke_check_warns_and_then_passes(sandbox: Any, cli: Any) -> None:
    def check() -> dict[str, Any]:
        r = cli("--output", "json", "smoke-test", "--only", "secrets-fresh")
        assert r.code == 0, r.text  # a warning: the site works, with the old value
        return dict(r.json()["checks"][0])

    assert check()["status"] == "pass"
    change_the_secret(sandbox)
    warned = check()
    assert warned["status"] == "warn" and "hold the previous value of arbiter-ai/local" in warned["detail"]
    assert "backend" in warned["detail"] and "frontend" in warned["detail"]
    deploy = cli("deploy", "--image-tag", "v1", "--no-migrate", "--no-smoke", "--force-new-deployment")
    assert deploy.code == 0, deploy.err
    assert check()["status"] == "pass"


def test_a_reference_pinned_to_a_version_is_not_stale() -> None:
    """ECS resolves ``...:KEY:AWSPREVIOUS:`` to that version whatever AWSCURRENT is: nothing to restart for."""
    from arbiter_ops.secrets.freshness import referenced_secrets

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:arbiter-ai/local"
    td = {
        "containerDefinitions": [
            {
                "name": "backend",
                "secrets": [
                    {"name": "A", "valueFrom": f"{arn}:A::"},
                    {"name": "B", "valueFrom": f"{arn.replace('local', 'pinned')}:B:AWSPREVIOUS:"},
                    {"name": "C", "valueFrom": "not an arn at all"},
                ],
            }
        ]
    }
    assert referenced_secrets(td) == {arn: "arbiter-ai/local"}
