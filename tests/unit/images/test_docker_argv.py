"""The docker argv builders and output readers: pure functions, tested without running anything."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from arbiter_ops.core.errors import ExternalError
from arbiter_ops.images import docker

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:abc1234"


def test_login_takes_the_password_from_stdin_never_from_argv() -> None:
    argv = docker.login_argv("123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS")
    assert argv == [
        "docker",
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    ]
    assert "--password" not in argv and "-p" not in argv


def test_build_has_platform_dockerfile_build_args_and_tag() -> None:
    argv = docker.build_argv(
        IMAGE, "/src/backend", "/src/backend/Dockerfile.prod", build_args={"VERSION": "1.2", "A": "b=c"}
    )
    assert argv == [
        "docker",
        "build",
        "--platform",
        "linux/amd64",  # Fargate's default, also on an arm laptop
        "-f",
        "/src/backend/Dockerfile.prod",
        "--build-arg",
        "A=b=c",
        "--build-arg",
        "VERSION=1.2",
        "-t",
        IMAGE,
        "/src/backend",
    ]
    assert "--platform" not in docker.build_argv(IMAGE, ".", "Dockerfile", platform=None)


def test_push_inspect_version_and_buildx_probe() -> None:
    assert docker.push_argv(IMAGE) == ["docker", "push", IMAGE]
    assert docker.inspect_digests_argv(IMAGE)[:3] == ["docker", "image", "inspect"]
    assert docker.version_argv() == ["docker", "version", "--format", "{{.Server.Version}}"]
    assert docker.buildx_available_argv() == ["docker", "buildx", "version"]


def test_buildx_builds_and_pushes_in_one_step() -> None:
    argv = docker.buildx_build_push_argv(
        IMAGE, "ctx", "ctx/Dockerfile", metadata_file="/tmp/m.json", platform="linux/arm64", build_args={"K": "v"}
    )
    assert argv[:3] == ["docker", "buildx", "build"]
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert argv[argv.index("-f") + 1] == "ctx/Dockerfile"
    assert argv[argv.index("--build-arg") + 1] == "K=v"
    assert argv[argv.index("-t") + 1] == IMAGE
    assert argv[argv.index("--metadata-file") + 1] == "/tmp/m.json"
    assert "--push" in argv and "--provenance=false" in argv
    assert argv[-1] == "ctx"


def test_display_hides_build_arg_values() -> None:
    shown = docker.display(docker.build_argv(IMAGE, ".", "Dockerfile", build_args={"NPM_TOKEN": "npm_s3cr3t"}))
    assert "NPM_TOKEN=…" in shown and "npm_s3cr3t" not in shown


def test_registry_host_and_image_ref_map_ecr_and_the_sandbox_alike() -> None:
    assert docker.registry_host("https://123456789012.dkr.ecr.us-east-1.amazonaws.com") == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    )
    assert docker.registry_host("http://127.0.0.1:5000/") == "127.0.0.1:5000"
    assert docker.image_ref("127.0.0.1:5000", "arbiter-ai/backend", "v1") == "127.0.0.1:5000/arbiter-ai/backend:v1"


def test_digests_are_read_from_push_inspect_and_buildx_output() -> None:
    digest = "sha256:" + "c4" * 32
    out = f"The push refers to repository [r/x]\nd5524f4cda43: Pushed\nabc1234: digest: {digest} size: 524\n"
    assert docker.push_digest(out, "abc1234") == digest
    assert docker.push_digest(out, "other") is None
    inspect = json.dumps([f"elsewhere/x@sha256:{'0' * 64}", f"127.0.0.1:5000/arbiter-ai/backend@{digest}"])
    assert docker.repo_digest(inspect, "127.0.0.1:5000", "arbiter-ai/backend") == digest
    assert docker.repo_digest("not json", "r", "x") is None
    assert docker.buildx_digest(json.dumps({"containerimage.digest": digest})) == digest
    assert docker.buildx_digest("{}") is None


def test_run_docker_only_runs_argv_from_the_builders() -> None:
    with pytest.raises(ValueError):
        docker.run_docker(["rm", "-rf", "/"])


def test_a_missing_docker_binary_is_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(docker.DOCKER_ENV, "/nonexistent/docker")
    with pytest.raises(ExternalError) as err:
        docker.run_docker(docker.version_argv())
    assert err.value.exit_code == 3 and docker.DOCKER_ENV in err.value.line()


def test_private_config_keeps_settings_but_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user-docker"
    (user / "contexts").mkdir(parents=True)
    (user / "config.json").write_text(
        json.dumps({"auths": {"r": {"auth": "c2VjcmV0"}}, "credsStore": "desktop", "currentContext": "colima"})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(user))
    with docker.private_config() as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        assert json.loads(Path(path, "config.json").read_text()) == {"currentContext": "colima"}
        assert Path(path, "contexts").resolve() == (user / "contexts").resolve()
    assert not Path(path).exists()
    assert "auths" in json.loads((user / "config.json").read_text())  # the user's file is untouched


def test_a_dead_engine_is_named_by_the_address_docker_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/nowhere.sock")
    said = "Cannot connect to the Docker daemon at unix:///run/nowhere.sock. Is the docker daemon running?"
    with pytest.raises(ExternalError) as err:
        docker._raise_known(docker.DockerResult(docker.push_argv(IMAGE), 1, said))
    assert err.value.code == "docker-unreachable" and err.value.exit_code == 3
    assert "unix:///run/nowhere.sock (DOCKER_HOST)" in err.value.line()


def test_a_refused_login_is_exit_3_and_names_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    said = "login attempt to http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized"
    with pytest.raises(ExternalError) as err:
        docker._raise_known(docker.DockerResult(docker.login_argv("127.0.0.1:5000", "AWS"), 1, said))
    assert err.value.code == "registry-login-failed" and err.value.exit_code == 3
    assert "127.0.0.1:5000 refused the login" in err.value.line()
