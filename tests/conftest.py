"""Shared fixtures: drive the CLI in-process (fast) or as a subprocess (real), against real HTTP servers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["aws_world", "docker_world"]  # fixtures: the AWS sandbox; a real Docker engine + registry
REQUIRE_REAL = os.environ.get("ARBITER_OPS_REQUIRE_REAL") == "1"
# The contract's deploy step names, in order, of a deploy without rollback.
DEPLOY_STEPS = [
    "lock",
    "render",
    "check-secrets",
    "images",
    "register",
    "migrate",
    "update",
    "wait",
    "smoke-test",
    "unlock",
]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(*args: str) -> Result:
    """Run the CLI in this process, capturing stdout and stderr."""
    from arbiter_ops.cli import run_cli as _run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def run_subprocess(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> Result:
    """Run `python -m arbiter_ops` as a separate process (what a user or CI step does); ``stdin`` is what it
    reads there (else it inherits the test's)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "arbiter_ops", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        input=stdin,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def extra_services_toml(count: int, cpu: int = 512, memory: int = 1024) -> str:
    """``count`` more services (svc0, svc1, ...) of the backend's template, each with its own family, ECS service and
    ECR repository: the embedded sandbox seeds what a config names."""
    return "\n".join(
        f"""[services.svc{i}]
family = "arbiter-svc{i}"
container = "backend"
ecs_service = "svc{i}"
ecr_repository = "arbiter-ai/svc{i}"
template = "backend-task-definition.json.j2"
cpu = {cpu}
memory = {memory}
port = 8000
health_check_path = "/health"
desired_count = 1
context = "./svc{i}"
"""
        for i in range(count)
    )


def context(env: str = "local", output: Any = None) -> Any:
    """A Context as a command run builds it (built-in config, `--env local` finding the test's sandbox)."""
    from arbiter_ops.core.config import load_config
    from arbiter_ops.core.context import Context, Options
    from arbiter_ops.core.output import Output
    from arbiter_ops.local import ensure_local

    return Context(Options(env=env), load_config(None), output or Output("text"), find_local=ensure_local)


def skip_or_fail(reason: str) -> None:
    """A component that cannot start: skip with the reason, but fail in CI (ARBITER_OPS_REQUIRE_REAL=1)."""
    if REQUIRE_REAL:
        pytest.fail(f"required component unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture(scope="session")
def moto_server() -> Any:
    """A plain moto server over HTTP (for tests that need no ECS behaviour)."""
    os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "0")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (in-process and subprocesses) at the moto server with dummy credentials; reset state."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    for key, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCOUNT_ID": "123456789012",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test inherits the developer's arbiter-ops settings, GitHub mode or cwd config."""
    for key in list(os.environ):
        if key.startswith("ARBITER_OPS_") and key != "ARBITER_OPS_REQUIRE_REAL":
            monkeypatch.delenv(key, raising=False)
    for key in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("ARBITER_OPS_POLL_INTERVAL", "0.01")  # the sandbox moves per call, not per second
    monkeypatch.chdir(tmp_path)
    from arbiter_ops.core.redact import REDACTOR

    REDACTOR.clear()  # process-wide: values one test fetched must not mask another's output


@pytest.fixture(scope="session")
def _local_sandbox() -> Any:
    """One sandbox for the session (AWS + Stripe + Arbiter API + PostgreSQL), per-call ECS progress."""
    try:
        from arbiter_ops.core.config import load_config
        from arbiter_sandbox.runtime import LocalSandbox
    except ImportError as exc:
        skip_or_fail(f"the [local] extra is not installed: {exc}")
    sandbox = LocalSandbox(load_config(None), progress="per-call")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(_local_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The session sandbox, reset to its fresh seed, and the CLI's `--env local` pointed at it."""
    from arbiter_sandbox.runtime import STATE_ENV, write_state

    _local_sandbox.reset()
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "local-state.json"))
    write_state(_local_sandbox.endpoints)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return _local_sandbox


def sandbox_client(sandbox: Any, service: str) -> Any:
    """A plain boto3 client on the sandbox, as any script would make one."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=sandbox.endpoints.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
