"""Docker, the Kamal way: every invocation is an argv list built by a pure function, run in one place.

The builders return argv lists that start with ``"docker"``; :func:`run_docker` is the one executor: it
swaps in the configured binary (``ARBITER_OPS_DOCKER``, else ``docker`` on PATH), runs it with a bounded
timeout, and turns the failures a user can meet into typed errors (exit 3). It goes through the ``docker``
CLI rather than an SDK because the CLI honours ``DOCKER_HOST``, contexts and plugins the way the user's own
shell does, and it reports push and login failures with real exit codes.

Credentials never land in the user's ``~/.docker``: :func:`private_config` makes a throw-away
``DOCKER_CONFIG`` for one run, carrying over the user's non-secret settings (current context, proxies,
plugins) but none of their credentials, and deletes it afterwards. The registry password only ever
travels on stdin (``docker login --password-stdin``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from arbiter_ops.core.errors import ExternalError, OpsTimeout
from arbiter_ops.core.redact import REDACTOR

DOCKER_ENV = "ARBITER_OPS_DOCKER"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Settings of the user's config.json that would put credentials (or a helper that stores them) in play.
_CREDENTIAL_KEYS = {"auths", "credsStore", "credHelpers"}
_PUSH_DIGEST = re.compile(r"^(?P<tag>\S+): digest: (?P<digest>sha256:[0-9a-f]{64}) size: \d+", re.MULTILINE)
_NO_DAEMON = ("cannot connect to the docker daemon", "is the docker daemon running", "error during connect")
_DAEMON_AT = re.compile(r"Cannot connect to the Docker daemon at (\S+?)\.? Is the docker daemon running", re.IGNORECASE)
_LOGIN_REFUSED = ("401 unauthorized", "unauthorized", "authentication required", "denied", "no basic auth")


# -- where images live ------------------------------------------------------------------------------
def registry_host(proxy_endpoint: str) -> str:
    """The registry docker talks to, from ECR's ``proxyEndpoint`` ("https://ACCOUNT.dkr.ecr.REGION.amazonaws.com").

    In AWS this is the host of the task definitions' image URIs too; in the sandbox it is the local registry
    ("127.0.0.1:PORT") while task definitions keep the ECR form. This function is that mapping, in one place.
    """
    return re.sub(r"^[a-z]+://", "", proxy_endpoint.strip()).rstrip("/")


def image_ref(registry: str, repository: str, tag: str) -> str:
    return f"{registry}/{repository}:{tag}"


# -- argv builders (pure) -------------------------------------------------------------------------------
def version_argv() -> list[str]:
    """Asks the engine (not only the client) for its version: fails fast when DOCKER_HOST is dead."""
    return ["docker", "version", "--format", "{{.Server.Version}}"]


def login_argv(registry: str, username: str) -> list[str]:
    """The password goes on stdin: an argv is visible to every user of the machine (ps, /proc)."""
    return ["docker", "login", "--username", username, "--password-stdin", registry]


def _build_options(image: str, dockerfile: str, platform: str | None, build_args: dict[str, str] | None) -> list[str]:
    argv: list[str] = []
    if platform:
        argv += ["--platform", platform]
    argv += ["-f", dockerfile]
    for key, value in sorted((build_args or {}).items()):
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, "-t", image]


def build_argv(
    image: str,
    context: str,
    dockerfile: str,
    *,
    platform: str | None = "linux/amd64",
    build_args: dict[str, str] | None = None,
) -> list[str]:
    """``docker build``; ``dockerfile`` is a path as docker sees it (relative to the cwd, not the context)."""
    return ["docker", "build", *_build_options(image, dockerfile, platform, build_args), context]


def push_argv(image: str) -> list[str]:
    return ["docker", "push", image]


def inspect_digests_argv(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image]


def buildx_available_argv() -> list[str]:
    return ["docker", "buildx", "version"]


def buildx_build_push_argv(
    image: str,
    context: str,
    dockerfile: str,
    *,
    metadata_file: str,
    platform: str | None = "linux/amd64",
    build_args: dict[str, str] | None = None,
) -> list[str]:
    """Build and push in one step. ``--provenance=false`` keeps the pushed artifact a single image manifest,
    so the digest printed is the one ``docker inspect`` and a task definition pinned by digest agree on."""
    options = _build_options(image, dockerfile, platform, build_args)
    return [
        "docker",
        "buildx",
        "build",
        *options,
        "--provenance=false",
        "--metadata-file",
        metadata_file,
        "--push",
        context,
    ]


def display(argv: list[str]) -> str:
    """An argv for the log, build-arg values hidden (they may carry tokens the redactor never saw)."""
    shown: list[str] = []
    for i, token in enumerate(argv):
        if i > 0 and argv[i - 1] == "--build-arg" and "=" in token:
            token = token.split("=", 1)[0] + "=…"
        shown.append(token)
    return " ".join(shown)


# -- reading docker's answers (pure) --------------------------------------------------------------------
def push_digest(output: str, tag: str) -> str | None:
    """The digest ``docker push`` printed for ``tag`` ("TAG: digest: sha256:... size: N")."""
    for match in _PUSH_DIGEST.finditer(output):
        if match["tag"] == tag:
            return match["digest"]
    return None


def repo_digest(inspect_output: str, registry: str, repository: str) -> str | None:
    """The digest under ``registry/repository`` among ``docker image inspect``'s RepoDigests."""
    try:
        digests = json.loads(inspect_output.strip() or "[]") or []
    except ValueError:
        return None
    for entry in digests:
        name, _, digest = str(entry).partition("@")
        if name == f"{registry}/{repository}" and digest.startswith("sha256:"):
            return digest
    return None


def buildx_digest(metadata: str) -> str | None:
    try:
        digest = json.loads(metadata).get("containerimage.digest")
    except (ValueError, AttributeError):
        return None
    return digest if isinstance(digest, str) and digest.startswith("sha256:") else None


# -- the one executor -------------------------------------------------------------------------------
@dataclass
class DockerResult:
    argv: list[str]
    code: int
    output: str  # stdout and stderr, interleaved as docker wrote them, redacted

    def tail(self, lines: int = 8) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def docker_binary() -> str:
    configured = os.environ.get(DOCKER_ENV)
    found = shutil.which(configured or "docker")
    if not found:
        raise ExternalError(
            f"the docker CLI was not found ({configured or 'docker'} is not on PATH)",
            hint=f"install Docker, or set {DOCKER_ENV} to the docker binary",
            code="docker-missing",
        )
    return found


def run_docker(
    argv: list[str],
    input: str | None = None,
    timeout: float = 600.0,
    *,
    config_dir: str | None = None,
    on_line: Callable[[str], None] | None = None,
    heartbeat: Callable[[float], None] | None = None,
    check: bool = True,
) -> DockerResult:
    """Run one docker command; every docker invocation of arbiter-ops goes through here.

    ``input`` is written to stdin (a password: never part of argv, output or any exception). ``config_dir``
    is the run's private DOCKER_CONFIG. ``on_line`` sees each output line as it comes (progress);
    ``heartbeat(elapsed)`` is called every 15 s while waiting, so a long build or push shows it is alive.
    A dead engine and a refused login become ExternalError (exit 3); other failures too unless
    ``check=False``; running past ``timeout`` seconds kills docker and raises OpsTimeout.
    """
    if not argv or argv[0] != "docker":
        raise ValueError("argv must come from a builder of arbiter_ops.images.docker")
    env = dict(os.environ)
    if config_dir is not None:
        env["DOCKER_CONFIG"] = config_dir
    full = [docker_binary(), *argv[1:]]
    try:
        proc = subprocess.Popen(
            full,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    except OSError as exc:
        raise ExternalError(f"cannot run {full[0]}: {exc.strerror}", code="docker-missing") from None
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = REDACTOR(raw.rstrip("\n"))
            lines.append(line)
            if on_line is not None and line.strip():
                on_line(line)

    reader = threading.Thread(target=read, name="docker-output", daemon=True)
    reader.start()
    if input is not None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(input)
        proc.stdin.close()
    started = time.monotonic()
    next_beat = started + 15.0
    while True:
        try:
            proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            now = time.monotonic()
            if now - started > timeout:
                proc.kill()
                proc.wait(timeout=10)
                raise OpsTimeout(
                    f"`{display(argv)}` did not finish within {timeout:.0f} s",
                    hint="check the Docker engine and the network to the registry",
                ) from None
            if heartbeat is not None and now >= next_beat:
                heartbeat(now - started)
                next_beat = now + 15.0
    reader.join(timeout=5)
    result = DockerResult(argv, proc.returncode, "\n".join(lines))
    if result.code != 0:
        _raise_known(result)
        if check:
            raise ExternalError(
                f"`{display(argv)}` failed (exit {result.code}): {result.tail(3) or 'no output'}",
                code="docker-failed",
            )
    return result


def _raise_known(result: DockerResult) -> None:
    text = result.output.lower()
    if any(marker in text for marker in _NO_DAEMON):
        context = os.environ.get("DOCKER_CONTEXT") or _current_context()
        if os.environ.get("DOCKER_HOST"):
            source = "DOCKER_HOST"
        elif context and context != "default":
            source = f"docker context {context!r}, DOCKER_HOST unset"
        else:
            source = "the default, DOCKER_HOST unset"
        said = _DAEMON_AT.search(result.output)  # docker names the address it tried (a context's, too)
        raise ExternalError(
            f"cannot connect to the Docker engine at {said[1] if said else docker_host()} ({source})",
            hint="start Docker, or point DOCKER_HOST at a running engine",
            code="docker-unreachable",
        )
    if result.argv[1:2] == ["login"]:
        registry = result.argv[-1]
        if any(marker in text for marker in _LOGIN_REFUSED):
            raise ExternalError(
                f"the registry {registry} refused the login with the ECR authorization token (401 Unauthorized)",
                hint="check that the AWS identity may call ecr:GetAuthorizationToken for this account and region, "
                "and that the registry is the account's",
                code="registry-login-failed",
            )
        # Whatever docker said, it is about reaching the registry; the password is never in it (stdin only).
        raise ExternalError(
            f"docker login to {registry} failed: {result.tail(1) or 'no output'}",
            hint="check the network to the registry",
            code="registry-login-failed",
        )


# -- a private DOCKER_CONFIG per run ------------------------------------------------------------------
def user_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _user_settings() -> dict[str, object]:
    """The user's config.json without credentials (empty when there is none or it is unreadable)."""
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((user_config_dir() / "config.json").read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            return {k: v for k, v in loaded.items() if k not in _CREDENTIAL_KEYS}
    return {}


def _current_context() -> str | None:
    context = _user_settings().get("currentContext")
    return context if isinstance(context, str) else None


@contextlib.contextmanager
def private_config() -> Iterator[str]:
    """A throw-away DOCKER_CONFIG: the user's settings without their credentials; removed on exit.

    The user's contexts, CLI plugins (buildx) and buildx builders are linked in so that the docker CLI
    behaves as it does in their shell (Docker Desktop selects its engine through ``currentContext``).
    """
    path = tempfile.mkdtemp(prefix="arbiter-ops-docker-")  # mode 0700: the token is readable by us only
    try:
        source = user_config_dir()
        Path(path, "config.json").write_text(json.dumps(_user_settings()), encoding="utf-8")
        for name in ("contexts", "cli-plugins", "buildx"):
            if (source / name).is_dir():
                with contextlib.suppress(OSError):
                    os.symlink(source / name, Path(path, name))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
