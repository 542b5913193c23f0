"""`smoke-test --env production` pointed at the sandbox: the production-only checks (`app-env`,
`allowed-origins`) read what the live backend really runs with.

The sandbox is dressed as production the way an operator would set up a real account: a production
secret and task definitions rendered by arbiter-ops for production and rolled out; the CLI reaches it
through AWS_ENDPOINT_URL and ARBITER_OPS_BASE_URL. `stripe-webhook` is skipped here: a live-mode endpoint
needs an https:// URL, and the sandbox's app answers plain http on 127.0.0.1 (the check is tested in local).
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

import pytest
from conftest import sandbox_client

CLUSTER = "arbiter-ai"
ORIGIN = "https://arbiter-ai.com"


def _random(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def smoke(cli: Any, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    result = cli("smoke-test", "--env", "production", "--skip", "stripe-webhook", "--output", "json", *args)
    return result, {c["id"]: c for c in result.json()["checks"]}


def failures(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {i: c["detail"] for i, c in checks.items() if c["status"] == "fail"}


class Production:
    def __init__(self, sandbox: Any, cli: Any) -> None:
        self.sandbox, self.cli = sandbox, cli
        self.ecs = sandbox_client(sandbox, "ecs")

    def render(self, service: str) -> dict[str, Any]:
        result = self.cli("render", service, "--env", "production", "--image-tag", "v1")
        assert result.code == 0, result.err
        return dict(result.json())

    def roll_out(self, service: str, task_definition: dict[str, Any]) -> None:
        arn = self.ecs.register_task_definition(**task_definition)["taskDefinition"]["taskDefinitionArn"]
        self.ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=arn)
        for _ in range(100):  # the overlay advances one step per DescribeServices
            svc = self.ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
            if len(svc["deployments"]) == 1 and svc["runningCount"] == svc["desiredCount"]:
                assert svc["taskDefinition"] == arn
                return
        raise AssertionError(f"{service} never finished rolling out")


@pytest.fixture
def production(sandbox: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> Production:
    for key, value in {
        "AWS_ENDPOINT_URL": sandbox.endpoints.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ACCOUNT_ID": "123456789012",
        "ARBITER_OPS_BASE_URL": sandbox.endpoints.app_base_url,
        "ARBITER_OPS_STRIPE_API_BASE": sandbox.endpoints.stripe_api_base,
    }.items():
        monkeypatch.setenv(key, value)
    payload = {
        "DATABASE_URL": f"postgresql+asyncpg://arbiter:{_random(20)}@arbiter-db.internal:5432/arbiter",
        "FRONTEND_DATABASE_URL": f"postgresql://arbiter:{_random(20)}@arbiter-db.internal:5432/arbiter",
        "REDIS_URL": "rediss://arbiter-redis.internal:6379/0",
        "NEXTAUTH_SECRET": sandbox.nextauth_secret,  # what the running backend (the stand-in) verifies with
        "STRIPE_SECRET_KEY": "sk_live_" + _random(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + _random(32),
        "STRIPE_PRICE_ID": "price_" + _random(14),
        "ALLOWED_ORIGINS": ORIGIN,
        "APP_BASE_URL": ORIGIN,
    }
    sandbox_client(sandbox, "secretsmanager").create_secret(
        Name="arbiter-ai/production", SecretString=json.dumps(payload)
    )
    prod = Production(sandbox, cli)
    for service in ("backend", "frontend"):
        prod.roll_out(service, prod.render(service))
    return prod


def _backend_with(prod: Production, **environment: str) -> dict[str, Any]:
    """The production backend task definition with these plain variables (and not as secrets)."""
    td = prod.render("backend")
    container = td["containerDefinitions"][0]
    container["secrets"] = [s for s in container["secrets"] if s["name"] not in environment]
    plain = {e["name"]: e["value"] for e in container["environment"]} | environment
    container["environment"] = [{"name": k, "value": v} for k, v in plain.items()]
    return td


def test_production_passes(production, cli) -> None:
    result, checks = smoke(cli)
    assert result.code == 0, failures(checks)
    assert checks["app-env"]["detail"] == "the live backend runs with APP_ENV=production and APP_MODE=production"
    # (the origin itself shows as **** while the redactor treats APP_BASE_URL, a public URL, as a secret)
    assert checks["allowed-origins"]["status"] == "pass"


def test_app_env_staging_in_production(production, cli) -> None:
    production.roll_out("backend", _backend_with(production, APP_ENV="staging"))
    result, checks = smoke(cli)
    assert result.code == 1
    assert failures(checks) == {"app-env": "the live backend: APP_ENV is 'staging' (expected 'production')"}


def test_allowed_origins_not_the_production_domain(production, cli) -> None:
    production.roll_out("backend", _backend_with(production, ALLOWED_ORIGINS=f"{ORIGIN},http://localhost:3000"))
    result, checks = smoke(cli)
    assert result.code == 1
    assert list(failures(checks)) == ["allowed-origins"]
    assert failures(checks)["allowed-origins"].startswith(
        "ALLOWED_ORIGINS of the live backend allows http://localhost:3000, outside arbiter-ai.com (expected "
    )


def test_app_mode_read_from_the_secret(production, cli, sandbox) -> None:
    """APP_MODE given through the secret (a valueFrom) is read from the secret."""
    td = production.render("backend")
    container = td["containerDefinitions"][0]
    arn = sandbox_client(sandbox, "secretsmanager").describe_secret(SecretId="arbiter-ai/production")["ARN"]
    container["environment"] = [e for e in container["environment"] if e["name"] != "APP_MODE"]
    container["secrets"].append({"name": "APP_MODE", "valueFrom": f"{arn}:APP_MODE::"})
    sm = sandbox_client(sandbox, "secretsmanager")
    payload = json.loads(sm.get_secret_value(SecretId="arbiter-ai/production")["SecretString"])
    sm.put_secret_value(SecretId="arbiter-ai/production", SecretString=json.dumps({**payload, "APP_MODE": "sandbox"}))
    production.roll_out("backend", td)
    result, checks = smoke(cli, "--only", "app-env")
    assert result.code == 1
    assert checks["app-env"]["detail"] == "the live backend: APP_MODE is 'sandbox' (expected 'production')"
