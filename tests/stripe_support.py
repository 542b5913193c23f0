"""Helpers for the stripe-webhook tests: drive the Stripe stand-in over its HTTP API (as any script would),
read the environment's secret with a plain boto3 client, and set up a `production` environment."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from conftest import sandbox_client

LOCAL_SECRET = "arbiter-ai/local"
PROD_SECRET = "arbiter-ai/production"
PROD_BASE_URL = "https://arbiter-ai.com"
WEBHOOK_PATH = "/api/v1/billing/webhooks/stripe"
EVENTS = ["checkout.session.completed", "customer.subscription.updated", "customer.subscription.deleted"]


def random_key(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def stripe_http(sandbox: Any, method: str, path: str, data: Any = None, key: str | None = None) -> dict[str, Any]:
    """One request to the Stripe stand-in's public API (form-encoded, as Stripe takes it)."""
    headers = {"Authorization": f"Bearer {key or sandbox.stripe_key}"}
    body = None
    if data is not None:
        body = urlencode(data)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = httpx.request(method, sandbox.endpoints.stripe_api_base + path, content=body, headers=headers, timeout=10)
    resp.raise_for_status()
    return resp.json()


def create_endpoint(sandbox: Any, url: str, events: list[str], key: str | None = None, **extra: str) -> str:
    data = [("url", url)] + [(f"enabled_events[{i}]", e) for i, e in enumerate(events)] + list(extra.items())
    return str(stripe_http(sandbox, "POST", "/v1/webhook_endpoints", data, key)["id"])


def delete_seeded_endpoint(sandbox: Any) -> None:
    stripe_http(sandbox, "DELETE", f"/v1/webhook_endpoints/{sandbox.seeded.webhook_endpoint_id}")


def local_url(sandbox: Any) -> str:
    return sandbox.endpoints.app_base_url + WEBHOOK_PATH


def endpoints(sandbox: Any, live: bool = False) -> list[dict[str, Any]]:
    """What Stripe holds (with the secrets, which only the stand-in's control route shows)."""
    return [e for e in sandbox.stripe.endpoints() if e["livemode"] == live]


def requests_since(sandbox: Any, mark: int, method: str | None = None) -> list[dict[str, Any]]:
    log = list(sandbox.stripe.request_log)[mark:]
    return [r for r in log if method is None or r["method"] == method]


def mark(sandbox: Any) -> int:
    return len(sandbox.stripe.request_log)


def read_secret(sandbox: Any, secret_id: str = LOCAL_SECRET, stage: str = "AWSCURRENT") -> dict[str, Any]:
    resp = sandbox_client(sandbox, "secretsmanager").get_secret_value(SecretId=secret_id, VersionStage=stage)
    return json.loads(resp["SecretString"])


def write_secret(sandbox: Any, payload: Any, secret_id: str = LOCAL_SECRET) -> None:
    """Replace AWSCURRENT by moving the label (put as AWSPENDING, then move AWSCURRENT).

    Not a plain PutSecretValue: moto 5.2.5 does not update its "default version" on UpdateSecretVersionStage,
    so after arbiter-ops' compare-and-set a plain put would leave two versions labelled AWSCURRENT, and a
    GetSecretValue without VersionStage reads a stale version (real AWS does neither). See the xfail test in
    test_secret_store.py. Reads here always name the stage for the same reason.
    """
    sm = sandbox_client(sandbox, "secretsmanager")
    text = payload if isinstance(payload, str) else json.dumps(payload)
    old = sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["VersionId"]
    new = sm.put_secret_value(SecretId=secret_id, SecretString=text, VersionStages=["AWSPENDING"])["VersionId"]
    sm.update_secret_version_stage(
        SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=old
    )
    sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=new)


def version_stages(sandbox: Any, secret_id: str = LOCAL_SECRET) -> dict[str, list[str]]:
    return sandbox_client(sandbox, "secretsmanager").describe_secret(SecretId=secret_id)["VersionIdsToStages"]


def use_production(sandbox: Any, monkeypatch: pytest.MonkeyPatch, stripe_key: str, create: bool = True) -> None:
    """`--env production` on the sandbox: real env vars, a live key the stand-in accepts, our own secret."""
    for name, value in {
        "ARBITER_OPS_BASE_URL": PROD_BASE_URL,
        "ARBITER_OPS_STRIPE_API_BASE": sandbox.endpoints.stripe_api_base,
        "AWS_ENDPOINT_URL": sandbox.endpoints.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ACCOUNT_ID": "123456789012",
    }.items():
        monkeypatch.setenv(name, value)
    sandbox.stripe.add_api_key(stripe_key)
    if create:
        payload = {"STRIPE_SECRET_KEY": stripe_key, "STRIPE_WEBHOOK_SECRET": "whsec_...", "APP_ENV": "production"}
        sandbox_client(sandbox, "secretsmanager").create_secret(Name=PROD_SECRET, SecretString=json.dumps(payload))
