"""`render`: the guide's task definitions per environment, validated before AWS sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, skip_or_fail

from arbiter_ops.ecs.taskdef import botocore_problems

GUIDE_BACKEND_SECRETS = {
    # Step 3c's five ...
    "DATABASE_URL",
    "REDIS_URL",
    "NEXTAUTH_SECRET",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    # ... and what Step 1d stores that the app and the go-live checklist need.
    "STRIPE_PRICE_ID",
    "ALLOWED_ORIGINS",
    "APP_BASE_URL",
}
PROD = ("--env", "production")


@pytest.fixture(autouse=True)
def _account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCOUNT_ID", "111122223333")


def _one_line_error(result) -> str:
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


def test_backend_production_is_valid_register_input_with_guide_secrets(cli) -> None:
    r = cli("render", "backend", *PROD, "--image-tag", "abc123")
    assert r.code == 0, r.err
    td = json.loads(r.out)
    assert botocore_problems(td) == []
    (container,) = td["containerDefinitions"]
    assert container["image"] == "111122223333.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:abc123"
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(secrets) == GUIDE_BACKEND_SECRETS
    assert "PINECONE_API_KEY" not in json.dumps(td)
    prefix = "arn:aws:secretsmanager:us-east-1:111122223333:secret:arbiter-ai/production"
    assert secrets["DATABASE_URL"] == f"{prefix}:DATABASE_URL::"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["APP_MODE"] == env["APP_ENV"] == "production"
    assert env["VECTOR_STORE_PROVIDER"] == "pgvector" and env["LLM_PROVIDER"] == "bedrock"
    assert (td["cpu"], td["memory"], td["networkMode"]) == ("512", "1024", "awsvpc")
    assert container["portMappings"][0]["containerPort"] == 8000
    assert "localhost:8000/health" in " ".join(container["healthCheck"]["command"])
    assert container["logConfiguration"]["logDriver"] == "awslogs"


def test_frontend_shares_the_jwt_key_and_gets_a_node_database_url(cli) -> None:
    r = cli("render", "frontend", *PROD, "--image-tag", "abc123")
    assert r.code == 0, r.err
    td = json.loads(r.out)
    (container,) = td["containerDefinitions"]
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert secrets["AUTH_SECRET"].endswith(":NEXTAUTH_SECRET::")
    assert secrets["DATABASE_URL"].endswith(":FRONTEND_DATABASE_URL::")
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["NEXTAUTH_URL"] == "https://arbiter-ai.com" and env["AUTH_TRUST_HOST"] == "true"
    assert (td["cpu"], td["memory"]) == ("256", "512")


def test_environment_modes_follow_the_guide(cli) -> None:
    r = cli("render", "backend", "--env", "staging", "--image-tag", "t1")
    env = {e["name"]: e["value"] for e in json.loads(r.out)["containerDefinitions"][0]["environment"]}
    assert (env["APP_MODE"], env["APP_ENV"]) == ("sandbox", "staging")


def test_global_options_after_the_command_and_from_env_vars(cli, monkeypatch) -> None:
    a = cli("render", "backend", "--env", "production", "--image-tag", "x1")
    b = cli("--env", "production", "render", "backend", "--image-tag", "x1")
    monkeypatch.setenv("ARBITER_OPS_ENV", "production")
    c = cli("render", "backend", "--image-tag", "x1")
    assert a.code == b.code == c.code == 0
    assert a.out == b.out == c.out


def test_json_mode_stdout_is_exactly_one_document(cli) -> None:
    r = cli("render", "backend", *PROD, "--image-tag", "abc123", "--output", "json")
    assert r.code == 0
    assert json.loads(r.out)["family"] == "arbiter-backend"  # the task definition itself (contract)
    bad = cli("render", "nope", *PROD, "--output", "json")
    assert bad.code == 2
    doc = json.loads(bad.out)
    assert doc == {
        "command": "render",
        "ok": False,
        "env": "production",
        "error": {"code": "unknown-service", "message": doc["error"]["message"]},
    }
    usage = cli("--output", "json", "render", "backend", "--no-such-flag")
    assert usage.code == 2 and json.loads(usage.out)["error"]["code"] == "usage"


def test_out_file(cli, tmp_path: Path) -> None:
    target = tmp_path / "td.json"
    r = cli("render", "backend", *PROD, "--image-tag", "abc123", "--out", str(target))
    assert r.code == 0 and r.out == ""
    assert json.loads(target.read_text())["family"] == "arbiter-backend"


def _custom(tmp_path: Path, template_text: str, extra: str = "") -> str:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "custom.json.j2").write_text(template_text)
    cfg = tmp_path / "arbiter-ops.toml"
    cfg.write_text(f'[services.backend]\ntemplate = "custom.json.j2"\n{extra}')
    return str(cfg)


REAL_TEMPLATE = ROOT / "templates" / "backend-task-definition.json.j2"


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("undefined", ["custom.json.j2", "line 3", "no_such_variable"]),
        ("badjson", ["did not render valid JSON", "line 14"]),
        ("fargate", ["1024", "512", "Fargate"]),
        ("service", ["unknown service 'nope'"]),
        ("env", ["unknown environment 'nowhere'"]),
        ("toml", ["TOML syntax error", "arbiter-ops.toml"]),
        ("key", ["services.backend.cpuu", "unknown key"]),
        ("type", ["services.backend.cpu", "integer"]),
        ("missing-template", ["template gone.json.j2 not found"]),
        ("both", ["SECRET_THING", "both environment and secrets"]),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(cli, tmp_path: Path, case: str, expect: list[str]) -> None:
    args = ["render", "backend", *PROD, "--image-tag", "t"]
    real = REAL_TEMPLATE.read_text()
    if case == "undefined":
        args += ["--config", _custom(tmp_path, '{\n "family": "x",\n "cpu": "{{ no_such_variable }}"\n}')]
    elif case == "badjson":
        args += ["--config", _custom(tmp_path, real.replace('"essential": true,', '"essential": true,,'))]
    elif case == "fargate":
        args += ["--config", _custom(tmp_path, real, "cpu = 1024\nmemory = 512\n")]
    elif case == "service":
        args[1] = "nope"
    elif case == "env":
        args[3] = "nowhere"
    elif case == "toml":
        (tmp_path / "arbiter-ops.toml").write_text("[services.backend\ncpu = 1")
    elif case == "key":
        (tmp_path / "arbiter-ops.toml").write_text("[services.backend]\ncpuu = 1024\n")
    elif case == "type":
        (tmp_path / "arbiter-ops.toml").write_text('[services.backend]\ncpu = "lots"\n')
    elif case == "missing-template":
        (tmp_path / "arbiter-ops.toml").write_text('[services.backend]\ntemplate = "gone.json.j2"\n')
    elif case == "both":
        args += [
            "--config",
            _custom(
                tmp_path,
                real,
                '[services.backend.environment]\nSECRET_THING = "a"\n[services.backend.secrets]\nSECRET_THING = "K"\n',
            ),
        ]
    r = cli(*args)
    assert r.code == 2, (case, r.err)
    line = _one_line_error(r)
    for fragment in expect:
        assert fragment in line, (case, line)
    assert r.out == ""


def test_local_render_needs_no_credentials(cli, monkeypatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ACCOUNT_ID"):
        monkeypatch.delenv(key, raising=False)
    r = cli("render", "backend", "--image-tag", "v2")
    assert r.code == 0, r.err
    assert json.loads(r.out)["containerDefinitions"][0]["image"].startswith("123456789012.dkr.ecr.")


@pytest.mark.parametrize(("service", "tool"), [("backend", "python"), ("frontend", "node")])
def test_the_health_check_runs_with_what_the_real_image_has(sandbox, cli, tmp_path, service, tool) -> None:
    """The real backend image is python:3.12-slim, the frontend node:20-alpine: no curl in either. The rendered
    command runs as ECS runs CMD-SHELL (/bin/sh -c) with a PATH holding only the image's interpreter, against
    the app stand-in, and passes; curl's command, under the same PATH, cannot."""
    import os
    import shutil
    import subprocess
    import sys
    import urllib.parse

    # The real binaries (pyenv's python3 on PATH is a shell shim that needs bash).
    interpreter = os.path.realpath(sys.executable) if tool == "python" else shutil.which("node")
    if interpreter is None:
        skip_or_fail(f"{tool} is not installed here")  # node is on every machine of this workplace
    port = urllib.parse.urlsplit(sandbox.endpoints.app_base_url).port
    config = tmp_path / "arbiter-ops.toml"
    config.write_text(f"[services.{service}]\nport = {port}\n")
    r = cli("--config", str(config), "render", service, "--image-tag", "v1")
    assert r.code == 0, r.err
    kind, command = json.loads(r.out)["containerDefinitions"][0]["healthCheck"]["command"]
    assert kind == "CMD-SHELL" and "curl" not in command
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / tool).symlink_to(interpreter)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}

    def run(cmd: str) -> int:
        return subprocess.run(["/bin/sh", "-c", cmd], env=env, capture_output=True, timeout=30).returncode

    assert run(command) == 0
    path = "/health" if service == "backend" else "/"
    assert run(f"curl -f http://localhost:{port}{path} || exit 1") != 0  # the old default: no curl here
    sandbox.api.set_mode(down=True)
    assert run(command) != 0  # and it does fail when the app answers 503
