"""`check-secrets` end to end: the CLI in-process, secrets created over HTTP in a moto server.

One test per finding code (grep the code to find it), a clean production setup, the API-call budget
(one GetSecretValue per secret, no ECS call), and a leak test through every output path.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import secrets
import string
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from arbiter_ops.cli import run_cli

ACCT = "123456789012"
REGION = "us-east-1"
ARN = f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:"
PROD_SECRET = "arbiter-ai/production"
STAGING_SECRET = "arbiter-ai/staging"


def _random(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def clean_payload(env: str = "production") -> dict[str, str]:
    """Every key the rendered task definitions reference, with values valid for the environment."""
    live = env == "production"
    origin = "https://arbiter-ai.com" if live else f"https://{env}.arbiter-ai.com"
    return {
        "DATABASE_URL": f"postgresql+asyncpg://arbiter:{_random(20)}@arbiter-db.internal:5432/arbiter",
        "FRONTEND_DATABASE_URL": f"postgresql://arbiter:{_random(20)}@arbiter-db.internal:5432/arbiter",
        "REDIS_URL": "rediss://arbiter-redis.internal:6379/0",
        "NEXTAUTH_SECRET": _random(48),
        "STRIPE_SECRET_KEY": ("sk_live_" if live else "sk_test_") + _random(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + _random(32),
        "STRIPE_PRICE_ID": "price_" + _random(14),
        "ALLOWED_ORIGINS": origin,
        "APP_BASE_URL": origin,
    }


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines in captured stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Aws:
    """The test's own boto3 clients, talking HTTP to moto."""

    def __init__(self, url: str) -> None:
        kw: dict[str, Any] = {"endpoint_url": url, "region_name": REGION}
        self.sm = boto3.client("secretsmanager", **kw)
        self.ssm = boto3.client("ssm", **kw)
        self.ecs = boto3.client("ecs", **kw)

    def secret(self, name: str, payload: dict[str, Any] | str) -> str:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return str(self.sm.create_secret(Name=name, SecretString=text)["ARN"])


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Aws:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "CI"):
        monkeypatch.delenv(var, raising=False)
    for var in ("ARBITER_OPS_CONFIG", "ARBITER_OPS_ENV", "ARBITER_OPS_OUTPUT", "ARBITER_OPS_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCOUNT_ID", ACCT)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)  # no ./arbiter-ops.toml from the repository
    return Aws(moto_url)


Run = Callable[..., tuple[int, dict[str, Any], str]]


@pytest.fixture
def check(aws: Aws, capfd: pytest.CaptureFixture[str]) -> Run:
    """``check(*args, env=...)`` -> (exit code, the JSON document, stderr)."""

    def run(*args: str, env: str = "production", pre: tuple[str, ...] = ()) -> tuple[int, dict[str, Any], str]:
        capfd.readouterr()
        code = run_cli(["--output", "json", "--env", env, *pre, "check-secrets", *args])
        out, err = capfd.readouterr()
        return code, json.loads(out), err

    return run


@pytest.fixture
def rendered(aws: Aws, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """The task definition `render` writes for a service (``--out FILE``), as a dict."""

    def render(service: str, env: str = "production") -> dict[str, Any]:
        path = tmp_path / f"rendered-{service}-{env}.json"
        assert run_cli(["--env", env, "render", service, "--image-tag", "v1", "--out", str(path)]) == 0
        capfd.readouterr()
        return dict(json.loads(path.read_text()))

    return render


def write(tmp_path: Path, td: dict[str, Any], name: str = "td.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(td, default=str))
    return str(path)


def main_container(td: dict[str, Any]) -> dict[str, Any]:
    return dict(td["containerDefinitions"][0])


def set_secret(td: dict[str, Any], name: str, value_from: str | None) -> dict[str, Any]:
    """Remap (or with None remove) one `secrets` entry of the main container."""
    td = copy.deepcopy(td)
    c = td["containerDefinitions"][0]
    c["secrets"] = [s for s in c["secrets"] if s["name"] != name]
    if value_from is not None:
        c["secrets"].append({"name": name, "valueFrom": value_from})
    return td


def set_env(td: dict[str, Any], name: str, value: str | None) -> dict[str, Any]:
    td = copy.deepcopy(td)
    c = td["containerDefinitions"][0]
    c["environment"] = [e for e in c["environment"] if e["name"] != name]
    if value is not None:
        c["environment"].append({"name": name, "value": value})
    return td


def found(doc: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [f for f in doc["findings"] if f["code"] == code]


def errors(doc: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(f["code"], f["service"], f["name"]) for f in doc["findings"] if f["severity"] == "error"]


def by_operation(doc: dict[str, Any]) -> dict[str, int]:
    return dict(doc.get("api_calls", {}).get("by_operation", {}))


# -- the clean setup, and the exit codes -------------------------------------------------------
def test_clean_production_setup_exits_0_with_no_error(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    code, doc, _ = check()
    assert (code, doc["command"], doc["ok"], doc["env"]) == (0, "check-secrets", True, "production")
    assert doc["findings"] == []
    assert doc["summary"] == {"error": 0, "warning": 0, "info": 0}
    # Rendering for --env reads no ECS; the one secret is read once.
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 1}


def test_a_setup_with_errors_exits_1(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, {k: v for k, v in clean_payload().items() if k != "NEXTAUTH_SECRET"})
    code, doc, _ = check()
    assert (code, doc["ok"]) == (1, False)
    assert doc["summary"]["error"] == len(errors(doc)) >= 2  # backend NEXTAUTH_SECRET + frontend AUTH_SECRET


def test_finding_fields_are_exactly_the_contracts(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, clean_payload() | {"PINECONE_API_KEY": "pc-" + _random(20)})
    _, doc, _ = check()
    assert set(doc) == {"command", "ok", "env", "findings", "summary", "api_calls"}
    keys = {"code", "severity", "service", "container", "name", "secret", "key", "message"}
    assert all(set(f) == keys for f in doc["findings"])


def test_text_output_groups_findings_with_a_fix(aws: Aws, capfd: pytest.CaptureFixture[str]) -> None:
    aws.secret(PROD_SECRET, clean_payload() | {"STRIPE_SECRET_KEY": "sk_test_" + _random(24), "EXTRA_KEY": "x"})
    capfd.readouterr()
    assert run_cli(["--env", "production", "check-secrets"]) == 1
    out, _ = capfd.readouterr()
    assert out.index("backend / container backend") < out.index("stripe-key-mode") < out.index("unused-key")
    assert "fix: use the live key" in out
    assert "1 error, 0 warnings, 1 info" in out


def test_unknown_service_is_bad_input(aws: Aws, check: Run) -> None:
    code, doc, _ = check("worker")
    assert (code, doc["ok"], doc["error"]["code"]) == (2, False, "unknown-service")


# -- one test per finding code -----------------------------------------------------------------
def test_missing_key(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, {k: v for k, v in clean_payload().items() if k != "REDIS_URL"})
    code, doc, _ = check()
    assert code == 1
    assert [(f["service"], f["name"], f["key"]) for f in found(doc, "missing-key")] == [
        ("backend", "REDIS_URL", "REDIS_URL")
    ]
    assert not found(doc, "required-missing")  # the variable is given; its key is what is missing


def test_secret_not_found(aws: Aws, check: Run) -> None:
    code, doc, _ = check()  # no secret at all
    assert code == 1
    assert {f["code"] for f in doc["findings"]} == {"secret-not-found"}  # not also missing-key / required-missing
    assert {f["secret"] for f in doc["findings"]} == {ARN + PROD_SECRET}


def test_secret_not_json(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, "postgresql+asyncpg://not-a-json-document")
    code, doc, _ = check("frontend")
    assert code == 1
    assert {(f["code"], f["name"]) for f in doc["findings"] if f["service"]} == {
        ("secret-not-json", "AUTH_SECRET"),
        ("secret-not-json", "DATABASE_URL"),
    }


def test_bad_value_from(aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    td = set_secret(rendered("backend"), "REDIS_URL", f"{ARN}{PROD_SECRET}:REDIS_URL")  # no trailing "::"
    td = set_secret(td, "STRIPE_PRICE_ID", f"{PROD_SECRET}:STRIPE_PRICE_ID::")  # a name, not an ARN
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert sorted((f["name"], f["secret"]) for f in found(doc, "bad-value-from")) == [
        ("REDIS_URL", None),
        ("STRIPE_PRICE_ID", None),
    ]
    assert not found(doc, "required-missing")


def test_arn_mismatch(aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    other_region = f"arn:aws:secretsmanager:us-west-2:{ACCT}:secret:{PROD_SECRET}:REDIS_URL::"
    other_account = f"arn:aws:secretsmanager:{REGION}:210987654321:secret:{PROD_SECRET}:DATABASE_URL::"
    td = set_secret(set_secret(rendered("backend"), "REDIS_URL", other_region), "DATABASE_URL", other_account)
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert sorted(f["name"] for f in found(doc, "arn-mismatch")) == ["DATABASE_URL", "REDIS_URL"]
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 1}  # the foreign ones are not read


def test_required_missing_is_an_error_in_production_and_a_warning_in_staging(
    aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    aws.secret(STAGING_SECRET, clean_payload("staging"))
    prod = set_secret(rendered("backend"), "STRIPE_WEBHOOK_SECRET", None)
    code, doc, _ = check("--task-def", write(tmp_path, prod))
    assert code == 1
    assert [(f["name"], f["severity"]) for f in found(doc, "required-missing")] == [("STRIPE_WEBHOOK_SECRET", "error")]
    staging = set_secret(rendered("backend", "staging"), "STRIPE_WEBHOOK_SECRET", None)
    code, doc, _ = check("--task-def", write(tmp_path, staging, "staging.json"), env="staging")
    # Outside production the most specific code is webhook-unsigned: the app then accepts unsigned webhooks.
    assert found(doc, "required-missing") == []
    unsigned = [(f["name"], f["severity"]) for f in found(doc, "webhook-unsigned")]
    assert unsigned == [("STRIPE_WEBHOOK_SECRET", "warning")]
    assert code == 0 and doc["ok"] is True  # warn on missing, outside production


def test_plaintext_secret(aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    td = set_secret(rendered("backend"), "STRIPE_SECRET_KEY", None)
    td = set_env(td, "STRIPE_SECRET_KEY", "sk_live_" + _random(24))
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert [(f["name"], f["secret"], f["key"]) for f in found(doc, "plaintext-secret")] == [
        ("STRIPE_SECRET_KEY", None, None)
    ]


def test_duplicate_name(aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    td = set_env(rendered("backend"), "REDIS_URL", "rediss://elsewhere:6379/0")
    td["containerDefinitions"][0]["environment"].append({"name": "LOG_LEVEL", "value": "DEBUG"})  # twice
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert sorted(f["name"] for f in found(doc, "duplicate-name")) == ["LOG_LEVEL", "REDIS_URL"]


def test_placeholder_value(aws: Aws, check: Run) -> None:
    # The guide's Step 1d, as written: template values, not real ones.
    aws.secret(
        PROD_SECRET,
        clean_payload()
        | {
            "DATABASE_URL": "postgresql+asyncpg://arbiter:<PW>@<RDS_ENDPOINT>:5432/arbiter",
            "NEXTAUTH_SECRET": "<RANDOM_32_CHARS>",
            "STRIPE_SECRET_KEY": "sk_live_...",
            "STRIPE_WEBHOOK_SECRET": "whsec_...",
            "STRIPE_PRICE_ID": "price_...",
            "REDIS_URL": "",
        },
    )
    code, doc, _ = check("backend")
    assert code == 1
    assert sorted(f["name"] for f in found(doc, "placeholder-value")) == [
        "DATABASE_URL",
        "NEXTAUTH_SECRET",
        "REDIS_URL",
        "STRIPE_PRICE_ID",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
    ]
    assert {f["code"] for f in doc["findings"]} == {"placeholder-value"}  # one problem, one finding


def test_stripe_key_mode(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, clean_payload() | {"STRIPE_SECRET_KEY": "sk_test_" + _random(24)})
    aws.secret(STAGING_SECRET, clean_payload("staging") | {"STRIPE_SECRET_KEY": "rk_live_" + _random(24)})
    code, doc, _ = check()
    assert (code, errors(doc)) == (1, [("stripe-key-mode", "backend", "STRIPE_SECRET_KEY")])
    code, doc, _ = check(env="staging")
    assert (code, errors(doc)) == (1, [("stripe-key-mode", "backend", "STRIPE_SECRET_KEY")])


def test_weak_secret(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, clean_payload() | {"NEXTAUTH_SECRET": _random(31)})
    code, doc, _ = check()
    assert (code, errors(doc)) == (1, [("weak-secret", "backend", "NEXTAUTH_SECRET")])


def test_auth_secret_mismatch(aws: Aws, check: Run, tmp_path: Path) -> None:
    # A config that maps the frontend's AUTH_SECRET to a key of its own: now they can drift apart.
    (tmp_path / "arbiter-ops.toml").write_text(
        '[services.frontend.secrets]\nAUTH_SECRET = "AUTH_SECRET"\nDATABASE_URL = "FRONTEND_DATABASE_URL"\n'
    )
    aws.secret(PROD_SECRET, clean_payload() | {"AUTH_SECRET": _random(48)})
    code, doc, _ = check()
    assert (code, errors(doc)) == (1, [("auth-secret-mismatch", "frontend", "AUTH_SECRET")])
    assert found(doc, "auth-secret-mismatch")[0]["key"] == "AUTH_SECRET"


def test_app_env_mismatch(aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    td = set_env(set_env(rendered("backend"), "APP_MODE", "sandbox"), "APP_ENV", None)
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert sorted(f["name"] for f in found(doc, "app-env-mismatch")) == ["APP_ENV", "APP_MODE"]


def test_origin_mismatch(aws: Aws, check: Run) -> None:
    aws.secret(
        PROD_SECRET,
        clean_payload()
        | {"ALLOWED_ORIGINS": "http://arbiter-ai.com", "APP_BASE_URL": "https://staging.arbiter-ai.com"},
    )
    code, doc, _ = check()
    assert code == 1
    assert sorted(f["name"] for f in found(doc, "origin-mismatch")) == ["ALLOWED_ORIGINS", "APP_BASE_URL"]


def test_bad_url(aws: Aws, check: Run) -> None:
    aws.secret(
        PROD_SECRET,
        clean_payload()
        | {
            "DATABASE_URL": "postgresql://arbiter:pw@db:5432/arbiter",  # the backend needs asyncpg
            "FRONTEND_DATABASE_URL": "postgresql+asyncpg://arbiter:pw@db:5432/arbiter",  # Node cannot use it
            "REDIS_URL": "http://cache:6379",
        },
    )
    code, doc, _ = check()
    assert (code, doc["ok"]) == (0, True)  # warnings only
    assert sorted((f["service"], f["name"], f["severity"]) for f in found(doc, "bad-url")) == [
        ("backend", "DATABASE_URL", "warning"),
        ("backend", "REDIS_URL", "warning"),
        ("frontend", "DATABASE_URL", "warning"),
    ]


def test_unused_key(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, clean_payload() | {"PINECONE_API_KEY": "pc-" + _random(20)})
    code, doc, _ = check()
    assert code == 0
    assert doc["findings"] == [
        {
            "code": "unused-key",
            "severity": "info",
            "service": None,
            "container": None,
            "name": None,
            "secret": ARN + PROD_SECRET,
            "key": "PINECONE_API_KEY",
            "message": f"key PINECONE_API_KEY of secret {PROD_SECRET} is not used by any container",
        }
    ]


# -- API-call budget ---------------------------------------------------------------------------
def test_two_services_one_secret_with_twelve_keys_is_read_once(aws: Aws, check: Run, tmp_path: Path) -> None:
    payload = clean_payload() | {"SENTRY_DSN": "https://k@sentry.example/1", "LOG_FORMAT": "json", "FEATURE_X": "on"}
    assert len(payload) == 12
    # Every key is mapped: 11 by the backend, 2 by the frontend (NEXTAUTH_SECRET shared).
    (tmp_path / "arbiter-ops.toml").write_text(
        "[services.backend.secrets]\n" + "".join(f'{k} = "{k}"\n' for k in payload if k != "FRONTEND_DATABASE_URL")
    )
    aws.secret(PROD_SECRET, payload)
    code, doc, _ = check()
    assert (code, doc["findings"]) == (0, [])
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 1}


def test_task_def_files_make_no_ecs_call(
    aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    backend_file = write(tmp_path, rendered("backend"), "backend.json")  # as `render --out` writes it
    # As `aws ecs describe-task-definition` prints it: the `taskDefinition` wrapper and the read-only fields.
    aws.ecs.register_task_definition(**rendered("frontend"))
    described = aws.ecs.describe_task_definition(taskDefinition="arbiter-frontend")
    described.pop("ResponseMetadata", None)
    assert "taskDefinitionArn" in described["taskDefinition"]
    frontend_file = write(tmp_path, described, "frontend-described.json")
    code, doc, _ = check("--task-def", backend_file, "--task-def", frontend_file)
    assert (code, doc["findings"]) == (0, [])
    assert not [op for op in by_operation(doc) if op.startswith("ecs:")]
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 1}


def test_a_file_belongs_to_a_service_named_after_its_family(aws: Aws, check: Run, tmp_path: Path) -> None:
    aws.secret("arbiter-ai/worker", {"QUEUE_URL": "https://sqs.example/q"})
    td = {
        "family": "arbiter-worker",
        "containerDefinitions": [
            {"name": "worker", "secrets": [{"name": "QUEUE_URL", "valueFrom": f"{ARN}arbiter-ai/worker:QUEUE_URL::"}]}
        ],
    }
    code, doc, _ = check("arbiter-worker", "--task-def", write(tmp_path, td))
    assert (code, doc["findings"]) == (0, [])


def test_ssm_parameters_are_checked_in_batches_of_10(
    aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    aws.secret(PROD_SECRET, clean_payload())
    td = rendered("backend")
    for i in range(12):
        if i != 7:  # one of them does not exist
            aws.ssm.put_parameter(Name=f"/arbiter/prod/p{i}", Value=f"value-{i}", Type="SecureString")
        ref = f"arn:aws:ssm:{REGION}:{ACCT}:parameter/arbiter/prod/p{i}" if i % 2 else f"/arbiter/prod/p{i}"
        td = set_secret(td, f"P{i}", ref)
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert [(f["name"], f["secret"]) for f in found(doc, "secret-not-found")] == [("P7", "/arbiter/prod/p7")]
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 1, "ssm:GetParameters": 2}


def test_a_version_stage_is_read_as_its_own_version(
    aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    old = clean_payload()
    aws.secret(PROD_SECRET, {k: v for k, v in old.items() if k != "REDIS_URL"})
    aws.sm.put_secret_value(SecretId=PROD_SECRET, SecretString=json.dumps(old))  # the old one is AWSPREVIOUS
    td = set_secret(rendered("backend"), "REDIS_URL", f"{ARN}{PROD_SECRET}:REDIS_URL:AWSPREVIOUS:")
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert code == 1
    assert [(f["name"], f["key"]) for f in found(doc, "missing-key")] == [("REDIS_URL", "REDIS_URL")]
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 2}  # AWSCURRENT and AWSPREVIOUS


def test_a_full_arn_is_read_without_its_key_suffix(
    aws: Aws, check: Run, rendered: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    full = aws.secret(PROD_SECRET, clean_payload())
    td = rendered("backend")
    for entry in td["containerDefinitions"][0]["secrets"]:
        entry["valueFrom"] = f"{full}:{entry['name']}::"
    code, doc, _ = check("--task-def", write(tmp_path, td))
    assert (code, errors(doc)) == (0, [])
    assert by_operation(doc) == {"secretsmanager:GetSecretValue": 1}


# -- no secret value ever appears --------------------------------------------------------------
@pytest.fixture(scope="module")
def faulty_url(moto_url: str) -> Iterator[str]:
    """moto's own app (same state) behind a WSGI middleware that answers GetSecretValue of
    ``arbiter-ai/denied`` like IAM and of ``arbiter-ai/undecryptable`` like KMS would."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)
    faults = {
        b"arbiter-ai/denied": ("AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized"),
        b"arbiter-ai/undecryptable": ("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text"),
    }

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if environ.get("HTTP_X_AMZ_TARGET", "").endswith(".GetSecretValue"):
            for marker, (code, message) in faults.items():
                if marker in body:
                    answer = json.dumps({"__type": code, "message": message}).encode()
                    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1")])
                    return [answer]
        return moto_app(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


CANARY = "LEAK-CANARY"


def leaky_setup(aws: Aws, rendered: Callable[..., dict[str, Any]], tmp_path: Path) -> list[str]:
    """Distinctive values through every rule that looks at a value; returns the --task-def arguments."""
    c = f"{CANARY}-{uuid.uuid4().hex}"
    aws.secret(
        PROD_SECRET,
        {
            "DATABASE_URL": f"mysql://{c}-db",  # bad-url
            "FRONTEND_DATABASE_URL": f"{c}-fedb",  # bad-url, not even a URL
            "REDIS_URL": f"{c}-redis",
            "NEXTAUTH_SECRET": f"{CANARY}-{c[-8:]}",  # weak-secret
            "AUTH_SECRET": f"{c}-auth",  # auth-secret-mismatch
            "STRIPE_SECRET_KEY": f"sk_test_{c}",  # stripe-key-mode
            "STRIPE_WEBHOOK_SECRET": f"whsec_{c}",
            "STRIPE_PRICE_ID": f"<{c}>",  # placeholder-value
            "ALLOWED_ORIGINS": f"http://{c}",  # origin-mismatch
            "APP_BASE_URL": f"https://{c}.example",
            "APP_MODE": c,  # app-env-mismatch, from a secret
            "UNUSED": c,  # unused-key
        },
    )
    aws.secret("arbiter-ai/raw", f"{c} is not JSON {{")  # secret-not-json
    aws.secret("arbiter-ai/denied", {"X": f"{c}-denied"})
    aws.secret("arbiter-ai/undecryptable", {"X": f"{c}-kms"})
    aws.ssm.put_parameter(Name="/arbiter/prod/leak", Value=f"{c}-ssm", Type="String")
    backend = set_env(rendered("backend"), "APP_MODE", None)
    backend = set_secret(backend, "APP_MODE", f"{ARN}{PROD_SECRET}:APP_MODE::")
    backend = set_secret(backend, "RAW_JSON_KEY", f"{ARN}arbiter-ai/raw:SOME_KEY::")
    backend = set_secret(backend, "PASTED", f"{ARN}x:{c}-pasted")  # bad-value-from: a value pasted into an ARN
    backend = set_secret(backend, "FROM_SSM", "/arbiter/prod/leak")
    backend = set_env(backend, "LEGACY_API_KEY", f"{c}-plain")  # plaintext-secret
    frontend = set_secret(rendered("frontend"), "AUTH_SECRET", f"{ARN}{PROD_SECRET}:AUTH_SECRET::")
    return ["--task-def", write(tmp_path, backend, "b.json"), "--task-def", write(tmp_path, frontend, "f.json")]


LEAK_RUNS = {
    "text": ([], False),
    "text -vv": (["-vv"], False),
    "json -vv": (["--output", "json", "-vv"], False),
    "github text": (["-v"], True),
    "github json": (["--output", "json"], True),
}


@pytest.mark.parametrize("run", list(LEAK_RUNS))
def test_no_secret_value_appears_in_any_output(
    run: str,
    aws: Aws,
    rendered: Callable[..., dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    task_defs = leaky_setup(aws, rendered, tmp_path)
    options, github = LEAK_RUNS[run]
    summary = tmp_path / "step-summary.md"
    if github:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    capfd.readouterr()
    code = run_cli([*options, "--env", "production", "check-secrets", *task_defs])
    out, err = capfd.readouterr()
    written = summary.read_text() if summary.exists() else ""
    assert code == 1
    expected = {"bad-url", "weak-secret", "auth-secret-mismatch", "stripe-key-mode", "placeholder-value",
                "origin-mismatch", "app-env-mismatch", "unused-key", "secret-not-json", "bad-value-from",
                "plaintext-secret"}  # fmt: skip
    assert all(code_ in out + err for code_ in expected)  # every path was taken
    assert CANARY not in out + err + written
    if github:
        assert "::error title=check-secrets" in out + err and "| `weak-secret` |" in written


def test_more_findings_than_github_shows_end_with_one_annotation_counting_the_rest(
    aws: Aws,
    rendered: Callable[..., dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """GitHub shows 10 error and 10 warning annotations per step and drops the rest without a word."""
    task_defs = leaky_setup(aws, rendered, tmp_path)
    backend = json.loads(Path(task_defs[1]).read_text())
    for i in range(5):  # five more errors: keys the secret does not hold
        backend = set_secret(backend, f"GONE_{i}", f"{ARN}{PROD_SECRET}:GONE_{i}::")
    Path(task_defs[1]).write_text(json.dumps(backend))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    capfd.readouterr()
    assert run_cli(["--output", "json", "--env", "production", "check-secrets", *task_defs]) == 1
    out, err = capfd.readouterr()
    findings = json.loads(out)["findings"]
    errors = [f for f in findings if f["severity"] == "error"]
    assert len(errors) > 10  # more than GitHub shows
    annotations = [line for line in err.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 9  # one error is left for a failure line of the run's own
    assert annotations[-1].startswith(f"::error title={len(errors) - 8} more errors::")
    for level in ("error", "warning"):
        assert len([line for line in err.splitlines() if line.startswith(f"::{level} ")]) <= 10


@pytest.mark.parametrize("secret", ["arbiter-ai/denied", "arbiter-ai/undecryptable"])
@pytest.mark.parametrize("options", [[], ["-vv"], ["--output", "json", "-vv"]])
def test_an_aws_error_is_exit_3_and_leaks_nothing(
    secret: str,
    options: list[str],
    aws: Aws,
    rendered: Callable[..., dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    faulty_url: str,
) -> None:
    task_defs = leaky_setup(aws, rendered, tmp_path)
    backend = json.loads(Path(task_defs[1]).read_text())  # read after arbiter-ai/production: its values are known
    Path(task_defs[1]).write_text(json.dumps(set_secret(backend, "ZZ_LAST", f"{ARN}{secret}:X::")))
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty_url)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    capfd.readouterr()
    code = run_cli([*options, "--env", "production", "check-secrets", *task_defs])
    out, err = capfd.readouterr()
    assert code == 3
    assert CANARY not in out + err
    assert f"cannot read secret {secret}" in err
    if "json" in options:
        doc = json.loads(out)
        assert (doc["ok"], doc["command"]) == (False, "check-secrets")
        assert doc["error"]["code"] in ("aws-access-denied", "aws-error")


def test_the_guides_step_1d_secret_keeps_the_json_readable(aws: Aws, check: Run) -> None:
    aws.secret(PROD_SECRET, clean_payload() | {"APP_ENV": "production", "AWS_REGION": REGION, "LOG_LEVEL": "INFO"})
    code, doc, _ = check()
    assert code == 0
    assert doc["env"] == "production"
    assert {f["secret"] for f in doc["findings"]} == {ARN + PROD_SECRET}
