"""The pure parts of check-secrets: `valueFrom` parsing and the analysis rules, without AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arbiter_ops.secrets.analysis import (
    Expectations,
    Fetched,
    ServiceRules,
    TaskDefinitionInput,
    analyze,
    references_to_fetch,
)
from arbiter_ops.secrets.rules import placeholder_reason
from arbiter_ops.secrets.value_from import ValueFromError, parse_value_from

ACCT = "123456789012"
PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:"
SECRET = PREFIX + "arbiter-ai/production"
VERSION = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"

PROD = Expectations(
    env_name="production",
    production=True,
    region="us-east-1",
    account_id=ACCT,
    app_env="production",
    app_mode="production",
    domain="arbiter-ai.com",
    services={
        "backend": ServiceRules("backend", ("NEXTAUTH_SECRET", "STRIPE_SECRET_KEY", "DATABASE_URL")),
        "frontend": ServiceRules("frontend", ("AUTH_SECRET",)),
    },
)


# -- valueFrom ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value_from", "secret_id", "key", "stage", "version"),
    [
        (SECRET + ":DATABASE_URL::", SECRET, "DATABASE_URL", None, None),
        (SECRET + "-AbCdEf:DATABASE_URL::", SECRET + "-AbCdEf", "DATABASE_URL", None, None),
        (SECRET + ":DATABASE_URL:AWSPREVIOUS:", SECRET, "DATABASE_URL", "AWSPREVIOUS", None),
        (SECRET + f":DATABASE_URL::{VERSION}", SECRET, "DATABASE_URL", None, VERSION),
        (SECRET, SECRET, None, None, None),
        (SECRET + "::AWSPREVIOUS:", SECRET, None, "AWSPREVIOUS", None),
    ],
)
def test_secrets_manager_value_from_forms(
    value_from: str, secret_id: str, key: str | None, stage: str | None, version: str | None
) -> None:
    ref = parse_value_from(value_from)
    assert (ref.store, ref.secret_id, ref.key, ref.version_stage, ref.version_id) == (
        "secretsmanager",
        secret_id,
        key,
        stage,
        version,
    )
    assert (ref.region, ref.account) == ("us-east-1", ACCT)


def test_full_arn_is_told_apart_from_a_partial_one() -> None:
    assert parse_value_from(SECRET + "-AbCdEf:K::").full_arn
    assert not parse_value_from(SECRET + ":K::").full_arn


@pytest.mark.parametrize(
    ("value_from", "name"),
    [
        (f"arn:aws:ssm:us-east-1:{ACCT}:parameter/arbiter/prod/db", "/arbiter/prod/db"),
        (f"arn:aws:ssm:us-east-1:{ACCT}:parameter/plain", "plain"),
        ("/arbiter/prod/db", "/arbiter/prod/db"),
        ("plain_name", "plain_name"),
    ],
)
def test_ssm_value_from_forms(value_from: str, name: str) -> None:
    ref = parse_value_from(value_from)
    assert (ref.store, ref.secret_id) == ("ssm", name)


@pytest.mark.parametrize(
    "value_from",
    [
        "",
        None,
        SECRET + ":DATABASE_URL",  # no trailing "::": ECS rejects it
        SECRET + ":DATABASE_URL:",
        SECRET + ":A:B:C:D",
        f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:",
        "arn:aws:secretsmanager:us-east-1:12345:secret:x:K::",
        "arn:aws:secretsmanager:nowhere:123456789012:secret:x",
        f"arn:aws:s3:::bucket/{ACCT}",
        "arbiter-ai/production:DATABASE_URL::",  # a name is not an ARN: ECS reads it as an SSM name
        "arbiter-ai/production",
        SECRET + ":K::not-a-uuid",
        " " + SECRET,
    ],
)
def test_malformed_value_from(value_from: Any) -> None:
    with pytest.raises(ValueFromError):
        parse_value_from(value_from)


def test_a_malformed_value_from_is_never_quoted() -> None:
    pasted = "LEAK-CANARY-pasted-value"
    with pytest.raises(ValueFromError) as info:
        parse_value_from(f"{SECRET}:{pasted}")
    assert pasted not in str(info.value)


# -- analysis ----------------------------------------------------------------------------------
def td(*containers: dict[str, Any], family: str = "arbiter-backend") -> dict[str, Any]:
    return {"family": family, "containerDefinitions": list(containers)}


def container(name: str, env: dict[str, str] | None = None, **secrets: str) -> dict[str, Any]:
    return {
        "name": name,
        "environment": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "secrets": [{"name": k, "valueFrom": v} for k, v in secrets.items()],
    }


def ref(key: str, secret: str = SECRET) -> str:
    return f"{secret}:{key}::"


GOOD = {
    "NEXTAUTH_SECRET": "n" * 48,
    "STRIPE_SECRET_KEY": "sk_live_" + "a" * 24,
    "DATABASE_URL": "postgresql+asyncpg://u:p@h:5432/d",
    "ALLOWED_ORIGINS": "https://arbiter-ai.com",
    "APP_BASE_URL": "https://arbiter-ai.com",
}
BACKEND_ENV = {"APP_ENV": "production", "APP_MODE": "production"}


def backend(env: dict[str, str] | None = None, **secrets: str) -> TaskDefinitionInput:
    keys = ("NEXTAUTH_SECRET", "STRIPE_SECRET_KEY", "DATABASE_URL", "ALLOWED_ORIGINS", "APP_BASE_URL")
    mapped = {k: ref(k) for k in keys}
    mapped.update(secrets)
    return TaskDefinitionInput("backend", td(container("backend", {**BACKEND_ENV, **(env or {})}, **mapped)))


def run(
    inputs: list[TaskDefinitionInput], payload: dict[str, Any] | str | None = None, expect: Expectations = PROD
) -> list[Any]:
    """Analyze with every referenced secret answering ``payload`` (None: not found)."""
    fetched = {}
    for r in references_to_fetch(inputs, expect):
        if payload is None:
            fetched[r.fetch_key] = Fetched("not-found")
        else:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            fetched[r.fetch_key] = Fetched("ok", payload=text, arn=r.secret_id + "-AbCdEf")
    return analyze(inputs, fetched, expect)


def codes(findings: list[Any]) -> list[tuple[str, str | None]]:
    return [(f.code, f.name) for f in findings]


def test_clean_backend_has_no_finding() -> None:
    assert run([backend()], GOOD) == []
    assert codes(run([backend()], GOOD | {"PINECONE_API_KEY": "pc"})) == [("unused-key", None)]


def test_a_missing_secret_is_secret_not_found_only() -> None:
    found = run([backend()], None)
    assert {c for c, _ in codes(found)} == {"secret-not-found"}  # no missing-key, no required-missing


def test_a_placeholder_stripe_key_is_not_also_a_wrong_mode_key() -> None:
    found = run([backend()], GOOD | {"STRIPE_SECRET_KEY": "sk_live_..."})
    assert codes(found) == [("placeholder-value", "STRIPE_SECRET_KEY")]


def test_a_placeholder_url_is_not_also_a_bad_url() -> None:
    found = run([backend()], GOOD | {"DATABASE_URL": "postgres://arbiter:<PW>@<RDS_ENDPOINT>:5432/arbiter"})
    assert codes(found) == [("placeholder-value", "DATABASE_URL")]


def test_a_duplicate_sensitive_name_is_not_also_plaintext() -> None:
    found = run([backend(env={"DATABASE_URL": "postgresql+asyncpg://x:y@h/d"})], GOOD)
    assert codes(found) == [("duplicate-name", "DATABASE_URL")]


def test_a_non_json_payload_is_never_echoed() -> None:
    raw = "LEAK-CANARY-not-json {"
    found = run([backend()], raw)
    assert {f.code for f in found} == {"secret-not-json"}
    assert all(raw not in json.dumps(f.as_json()) + f.fix for f in found)


def test_auth_secret_compares_resolved_values_across_services() -> None:
    frontend = TaskDefinitionInput(
        "frontend", td(container("frontend", AUTH_SECRET=ref("AUTH_SECRET")), family="arbiter-frontend")
    )
    same = run([backend(), frontend], GOOD | {"AUTH_SECRET": GOOD["NEXTAUTH_SECRET"]})
    assert "auth-secret-mismatch" not in {f.code for f in same}
    other = run([backend(), frontend], GOOD | {"AUTH_SECRET": "m" * 48})
    assert [(f.code, f.service, f.key) for f in other if f.severity == "error"] == [
        ("auth-secret-mismatch", "frontend", "AUTH_SECRET")
    ]


def test_required_missing_is_a_warning_outside_production() -> None:
    staging = Expectations(
        **{**PROD.__dict__, "env_name": "staging", "production": False, "app_env": "staging", "app_mode": "sandbox"}
    )
    inputs = [TaskDefinitionInput("backend", td(container("backend", {"APP_ENV": "staging", "APP_MODE": "sandbox"})))]
    found = run(inputs, GOOD, staging)
    assert {(f.code, f.severity) for f in found} == {("required-missing", "warning"), ("webhook-unsigned", "warning")}


def test_report_services_keeps_others_as_context() -> None:
    frontend = TaskDefinitionInput(
        "frontend", td(container("frontend", AUTH_SECRET=ref("NEXTAUTH_SECRET")), family="arbiter-frontend")
    )
    payload = json.dumps(GOOD | {"FRONTEND_DATABASE_URL": "postgresql://u:p@h:5432/d"})
    inputs = [backend(env={"STRIPE_SECRET_KEY": "sk_live_plain"}), frontend]
    fetched = {r.fetch_key: Fetched("ok", payload=payload) for r in references_to_fetch(inputs, PROD)}
    found = analyze(inputs, fetched, PROD, report_services={"frontend"})
    # The backend's errors are not reported; its keys still count as used (only FRONTEND_DATABASE_URL is not).
    assert [(f.code, f.service, f.key) for f in found] == [("unused-key", None, "FRONTEND_DATABASE_URL")]


@pytest.mark.parametrize(
    "value",
    ["", "  ", "<RANDOM_32_CHARS>", "postgresql://arbiter:<PW>@<RDS_ENDPOINT>/arbiter", "<your-password>",
     "sk_live_...", "whsec_...", "price_...", "CHANGEME"],
)  # fmt: skip
def test_placeholders(value: str) -> None:
    assert placeholder_reason(value)


@pytest.mark.parametrize(
    "value", ["sk_live_abc", "postgresql://u:p@h/d", "changeme-not", "a...b", "Arbiter AI <noreply@arbiter-ai.com>"]
)
def test_not_placeholders(value: str) -> None:
    assert placeholder_reason(value) is None


def test_an_email_address_in_angle_brackets_is_not_a_placeholder() -> None:
    """The contract, as amended: EMAIL_FROM = "Arbiter AI <noreply@arbiter-ai.com>" is an RFC 5322 address."""
    found = run([backend({"EMAIL_FROM": "Arbiter AI <noreply@arbiter-ai.com>"})], GOOD)
    assert found == []


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "SLACK_BOT_TOKEN", "OPENAI_API_KEY"])
def test_tokens_and_api_keys_in_plain_environment_are_plaintext_secrets(name: str) -> None:
    found = run([backend({name: "a-value-that-is-a-secret"})], GOOD)
    assert codes(found) == [("plaintext-secret", name)]


def test_log_driver_secret_options_and_registry_credentials_are_checked_like_secrets() -> None:
    """ECS resolves logConfiguration.secretOptions and repositoryCredentials at task start, as it does secrets."""
    backend_td = backend().task_definition
    main = backend_td["containerDefinitions"][0]
    main["logConfiguration"] = {
        "logDriver": "splunk",
        "options": {},
        "secretOptions": [{"name": "splunk-token", "valueFrom": ref("SPLUNK_TOKEN")}],
    }
    main["repositoryCredentials"] = {"credentialsParameter": "arn:aws:ssm:eu-west-1:123456789012:parameter/registry"}
    found = run([TaskDefinitionInput("backend", backend_td)], GOOD)
    assert sorted(codes(found)) == [
        ("arn-mismatch", "repositoryCredentials.credentialsParameter"),
        ("missing-key", "logConfiguration.secretOptions splunk-token"),
    ]
    used = run([TaskDefinitionInput("backend", backend_td)], GOOD | {"SPLUNK_TOKEN": "t" * 20})
    assert codes(used) == [("arn-mismatch", "repositoryCredentials.credentialsParameter")]  # and not unused-key


def test_a_configured_service_whose_container_is_absent_misses_what_it_requires() -> None:
    other = TaskDefinitionInput("backend", td(container("sidecar", BACKEND_ENV, **{k: ref(k) for k in GOOD})))
    found = run([other], GOOD)
    required = ("DATABASE_URL", "NEXTAUTH_SECRET", "STRIPE_SECRET_KEY")
    assert sorted(codes(found)) == [("required-missing", n) for n in required]
    assert all("whose container backend is not in the task definition" in f.message for f in found)


PASTED = ["sk_live_51HxYzAbCdEfGhIj", "whsec_abc123def456", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
          "AKIAIOSFODNN7EXAMPLE", "Xk9fP2qLm8RtZ4vB7nYc"]  # fmt: skip


@pytest.mark.parametrize("pasted", PASTED)
def test_a_secret_pasted_where_the_reference_belongs_is_never_quoted(pasted: str) -> None:
    found = run([backend(STRIPE_SECRET_KEY=pasted)], GOOD)
    assert codes(found) == [("bad-value-from", "STRIPE_SECRET_KEY"), ("unused-key", None)]
    assert "looks like a secret value, not a reference" in found[0].message
    assert all(pasted not in str(f.as_json()) + f.fix for f in found)


@pytest.mark.parametrize("name", ["arbiter-ai-prod-db-password", "ArbiterProdDbPassword2024", "/arbiter/prod/KEY"])
def test_an_ssm_parameter_name_is_not_taken_for_a_secret(name: str) -> None:
    assert parse_value_from(name).store == "ssm"


# -- the real backend's startup guards (gndumbri/arbiter-ai backend/app/core/environment.py) --------------
STAGING = Expectations(
    **{**PROD.__dict__, "env_name": "staging", "production": False, "app_env": "staging", "app_mode": "sandbox"}
)
STAGING_ENV = {"APP_ENV": "staging", "APP_MODE": "sandbox"}
STAGING_GOOD = GOOD | {"STRIPE_SECRET_KEY": "sk_test_" + "t" * 24, "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 32}
KEYS = ("NEXTAUTH_SECRET", "STRIPE_SECRET_KEY", "DATABASE_URL", "APP_BASE_URL")


def app(env: dict[str, str], expect: Expectations = PROD, keys: tuple[str, ...] = KEYS, **secrets: str) -> list[Any]:
    """The findings for a backend with these plain variables and these keys mapped from the secret."""
    mapped = {k: ref(k) for k in keys}
    if expect is STAGING:
        mapped["STRIPE_WEBHOOK_SECRET"] = ref("STRIPE_WEBHOOK_SECRET")
    base = STAGING_ENV if expect is STAGING else BACKEND_ENV
    inputs = [TaskDefinitionInput("backend", td(container("backend", {**base, **env}, **mapped, **secrets)))]
    found = run(inputs, STAGING_GOOD if expect is STAGING else GOOD, expect)
    return [f for f in found if f.code != "unused-key"]  # keys the case leaves unmapped on purpose


@pytest.mark.parametrize(
    ("origins", "expect"),
    [
        ('["https://arbiter-ai.com"]', PROD),  # a JSON list: the app splits on commas, never parses JSON
        ("staging.arbiter-ai.com", STAGING),  # no scheme, outside production too
        ("*", STAGING),  # refused in every mode
        ("https://arbiter-ai.com,*", PROD),
    ],
    ids=["json-list", "no-scheme-in-staging", "star-in-staging", "star-in-production"],
)
def test_origins_the_app_refuses_at_startup_are_one_finding(origins: str, expect: Expectations) -> None:
    found = app({"ALLOWED_ORIGINS": origins}, expect)
    assert [(f.code, f.name, f.severity) for f in found] == [("origin-mismatch", "ALLOWED_ORIGINS", "error")]
    assert "the app refuses at startup" in found[0].message


def test_an_app_base_url_that_is_not_a_full_url_is_refused_in_every_environment() -> None:
    plain = app({"ALLOWED_ORIGINS": "https://staging.arbiter-ai.com", "APP_BASE_URL": "arbiter-ai.com"}, STAGING,
                keys=KEYS[:3])  # fmt: skip
    assert [(f.code, f.name, f.severity) for f in plain] == [("origin-mismatch", "APP_BASE_URL", "error")]


def test_production_without_app_base_url_is_an_origin_mismatch() -> None:
    found = app({"ALLOWED_ORIGINS": "https://arbiter-ai.com"}, keys=KEYS[:3])
    assert codes(found) == [("origin-mismatch", "APP_BASE_URL")]
    assert "http://localhost:3000" in found[0].message


@pytest.mark.parametrize(("provider", "key"), [("LLM_PROVIDER=openai", "OPENAI_API_KEY"),
                                               ("LLM_PROVIDER=anthropic", "ANTHROPIC_API_KEY"),
                                               ("EMBEDDING_PROVIDER=openai", "OPENAI_API_KEY")])  # fmt: skip
def test_a_provider_without_its_api_key_is_required_missing(provider: str, key: str) -> None:
    name, value = provider.split("=")
    found = run([backend({name: value})], GOOD)
    assert [(f.code, f.name, f.severity) for f in found] == [("required-missing", key, "error")]
    assert f"{key} is needed by {provider}" in found[0].message and "refuses to start" in found[0].message
    assert run([backend({name: value}, **{key: ref(key)})], GOOD | {key: "k" * 40}) == []


def test_auth_secret_is_the_backends_alias_of_nextauth_secret() -> None:
    keys = ("STRIPE_SECRET_KEY", "DATABASE_URL", "ALLOWED_ORIGINS", "APP_BASE_URL")
    found = app({}, keys=keys, AUTH_SECRET=ref("NEXTAUTH_SECRET"))
    assert found == []  # no false required-missing NEXTAUTH_SECRET


def test_a_mock_provider_is_an_error_in_production_and_info_elsewhere() -> None:
    prod = run([backend({"LLM_PROVIDER": "mock"})], GOOD)
    assert [(f.code, f.name, f.severity) for f in prod] == [("mock-provider", "LLM_PROVIDER", "error")]
    staging = app({"ALLOWED_ORIGINS": "https://staging.arbiter-ai.com", "EMBEDDING_PROVIDER": "mock"}, STAGING)
    assert [(f.code, f.name, f.severity) for f in staging] == [("mock-provider", "EMBEDDING_PROVIDER", "info")]


def test_an_empty_webhook_secret_outside_production_is_webhook_unsigned_only() -> None:
    found = app({"ALLOWED_ORIGINS": "https://staging.arbiter-ai.com"}, STAGING, keys=(*KEYS, "STRIPE_WEBHOOK_SECRET"))
    assert found == []
    empty = STAGING_GOOD | {"STRIPE_WEBHOOK_SECRET": ""}
    mapped = {k: ref(k) for k in (*KEYS, "STRIPE_WEBHOOK_SECRET")}
    plain = {**STAGING_ENV, "ALLOWED_ORIGINS": "https://x.io"}
    inputs = [TaskDefinitionInput("backend", td(container("backend", plain, **mapped)))]
    found = [f for f in run(inputs, empty, STAGING) if f.code != "unused-key"]
    assert [(f.code, f.severity) for f in found] == [("webhook-unsigned", "warning")]
