"""A real Docker engine, a real registry and a git project for the push tests (a pytest plugin, see conftest).

Session-scoped: one ``dockerd`` (vfs storage, no networking of its own, its own socket, data and exec
roots under a temp dir) and one ``docker-registry`` with htpasswd auth on 127.0.0.1, the recipe of
shared/NOTES.md. ``docker_world`` attaches the registry to the test's sandbox as the ECR behind it and points
``DOCKER_HOST`` at the engine. Both processes run in their own process group and are stopped at session end
(group and all: dockerd's managed containerd too). Not root, or a binary missing: skip (fail in CI).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail

from arbiter_sandbox.registry import MANIFEST_TYPES, RegistryBridge

START_TIMEOUT = 60.0
GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
SERVICES = ("backend", "frontend")


def git(project: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=project, capture_output=True, text=True, check=True).stdout.strip()


def write_contexts(project: Path, dockerfile: str = "FROM scratch\nCOPY hello.txt /hello.txt\n") -> None:
    for service in SERVICES:
        (project / service).mkdir(exist_ok=True)
        (project / service / "Dockerfile").write_text(dockerfile)
        (project / service / "hello.txt").write_text(f"hello from {service} {secrets.token_hex(8)}\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The current directory as a project: a git work tree with both build contexts, committed."""
    write_contexts(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "initial")
    return tmp_path


def fresh_tag() -> str:
    return f"t-{secrets.token_hex(4)}"  # the registry outlives each test's sandbox reset


def _require(binaries: tuple[str, ...]) -> None:
    if os.geteuid() != 0:
        skip_or_fail("a real Docker engine needs root (dockerd); run the suite as root or in CI")
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        skip_or_fail(
            f"missing {', '.join(missing)}: apt-get install -y docker.io docker-registry apache2-utils "
            "(scripts/test does it as root)"
        )


def _wait(what: str, ready: Any, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``ready()`` until true; bounded, with a line of progress every 5 s."""
    started = time.monotonic()
    next_note = started + 5
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        now = time.monotonic()
        if now - started > START_TIMEOUT:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{what} not ready after {START_TIMEOUT:.0f} s: {tail}")
        if now >= next_note:
            print(f"waiting for {what} ({now - started:.0f} s)")
            next_note = now + 5
        time.sleep(0.1)


def _descendants(pid: int) -> list[int]:
    """Processes started by ``pid``, transitively (dockerd's managed containerd leaves its process group)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError):  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM what we started (its group and its descendants), wait (bounded), then SIGKILL what is left."""
    ours = _descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    deadline = time.monotonic() + 10  # dockerd stops its containerd itself; give it the time to
    while time.monotonic() < deadline and not all(_gone(pid) for pid in ours):
        time.sleep(0.2)
    for pid in [proc.pid, *ours]:
        with contextlib.suppress(ProcessLookupError):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@dataclass
class Engine:
    host: str  # unix:///...

    def docker(self, *args: str, timeout: float = 60) -> str:
        env = {**os.environ, "DOCKER_HOST": self.host}
        out = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def image_ids(self) -> set[str]:
        return set(self.docker("images", "--all", "--quiet", "--no-trunc").split())


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    _require(("dockerd", "docker"))
    root = Path(tempfile.mkdtemp(prefix="aodk-", dir="/tmp"))  # short: a unix socket path has 108 bytes
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    argv = [
        "dockerd",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--storage-driver=vfs",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{sock}",
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Engine(f"unix://{sock}")

    def ready() -> bool:
        env = {**os.environ, "DOCKER_HOST": engine.host}
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=10).returncode == 0

    try:
        _wait("dockerd", ready, proc, log)
        yield engine
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Registry:
    url: str  # http://127.0.0.1:PORT
    password: str
    username: str = "AWS"

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def get(self, path: str, method: str = "GET", accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}", **({"Accept": accept} if accept else {})}
        request = urllib.request.Request(self.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def tags(self, repository: str) -> list[str]:
        status, _, body = self.get(f"/v2/{repository}/tags/list")
        return list(json.loads(body).get("tags") or []) if status == 200 else []

    def digest(self, repository: str, tag: str) -> str | None:
        status, headers, _ = self.get(f"/v2/{repository}/manifests/{tag}", "HEAD", ", ".join(MANIFEST_TYPES))
        return headers.get("Docker-Content-Digest") if status == 200 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def docker_registry() -> Iterator[Registry]:
    _require(("docker-registry", "htpasswd"))
    root = Path(tempfile.mkdtemp(prefix="aoreg-"))
    password = secrets.token_urlsafe(24)
    htpasswd = subprocess.run(["htpasswd", "-Bbn", "AWS", password], capture_output=True, text=True, check=True)
    (root / "htpasswd").write_text(htpasswd.stdout, encoding="utf-8")
    port = _free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: arbiter-ops-tests\n    path: {root / 'htpasswd'}\n",
        encoding="utf-8",
    )
    log = root / "registry.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry = Registry(f"http://127.0.0.1:{port}", password)

    def ready() -> bool:
        try:
            return registry.get("/v2/")[0] == 200
        except OSError:
            return False

    try:
        _wait("docker-registry", ready, proc, log)
        yield registry
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class DockerWorld:
    engine: Engine
    registry: Registry
    bridge: RegistryBridge


@pytest.fixture
def docker_world(
    sandbox: Any, docker_engine: Engine, docker_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DockerWorld]:
    """The test's sandbox with the registry as its ECR storage, and DOCKER_HOST on the test engine."""
    bridge = RegistryBridge(docker_registry.url, docker_registry.password)
    sandbox.aws.registry = bridge
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    try:
        yield DockerWorld(docker_engine, docker_registry, bridge)
    finally:
        sandbox.aws.registry = None  # the session sandbox goes back to plain moto for other tests
