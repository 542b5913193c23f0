"""`push`: a real Docker engine builds, a real registry (as the sandbox's ECR) receives; and every refusal."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import run_subprocess, sandbox_client, skip_or_fail
from docker_world import SERVICES, fresh_tag, git, write_contexts


def ecr_digest(sandbox: Any, repository: str, tag: str) -> str:
    ecr = sandbox_client(sandbox, "ecr")
    return ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"][0][
        "imageDigest"
    ]


def test_push_builds_pushes_and_reports_the_registry_digest(
    docker_world: Any, sandbox: Any, project: Path, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_docker = tmp_path / "user-docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(user_docker))
    sha = git(project, "rev-parse", "--short", "HEAD")

    result = cli("push", "--output", "json")

    assert result.code == 0, result.text
    doc = result.json()
    assert (doc["command"], doc["ok"], doc["env"], doc["tag"]) == ("push", True, "local", sha)
    assert doc["registry"] == docker_world.registry.host
    assert [i["service"] for i in doc["images"]] == list(SERVICES)
    for image in doc["images"]:
        repository = f"arbiter-ai/{image['service']}"
        assert (image["repository"], image["tag"], image["action"]) == (repository, sha, "pushed")
        assert sha in docker_world.registry.tags(repository)  # the registry's own HTTP API
        assert image["digest"] == docker_world.registry.digest(repository, sha)
        assert ecr_digest(sandbox, repository, sha) == image["digest"]  # ECR's view follows the registry
    assert "building" in result.err and "pushed" in result.err  # progress, on stderr in JSON mode
    assert docker_world.registry.password not in result.text
    assert not (user_docker / "config.json").exists()  # credentials never land in the user's DOCKER_CONFIG


def test_the_sandbox_ecr_token_is_the_registry_login(docker_world: Any, sandbox: Any) -> None:
    data = sandbox_client(sandbox, "ecr").get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(data["authorizationToken"]).decode() == f"AWS:{docker_world.registry.password}"
    assert data["proxyEndpoint"] == docker_world.registry.url


def test_push_in_text_mode_prints_the_digest(docker_world: Any, project: Path, cli: Any) -> None:
    tag = fresh_tag()
    result = cli("push", "backend", "--tag", tag)
    assert result.code == 0, result.text
    digest = docker_world.registry.digest("arbiter-ai/backend", tag)
    assert digest and digest in result.out and "pushed" in result.out


def test_push_creates_a_missing_repository_with_immutable_tags_and_scan_on_push(
    docker_world: Any, sandbox: Any, project: Path, cli: Any
) -> None:
    repository = f"arbiter-ai/new-{secrets.token_hex(3)}"
    (project / "arbiter-ops.toml").write_text(f'[services.backend]\necr_repository = "{repository}"\n')
    tag = fresh_tag()

    result = cli("push", "backend", "--tag", tag, "--allow-dirty", "--output", "json")

    assert result.code == 0, result.text
    repo = sandbox_client(sandbox, "ecr").describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert docker_world.registry.tags(repository) == [tag]
    assert result.json()["images"][0]["digest"] == docker_world.registry.digest(repository, tag)


def test_a_tag_already_in_ecr_builds_and_pushes_nothing(
    docker_world: Any, sandbox: Any, project: Path, cli: Any
) -> None:
    # A context that cannot build: had push tried, it would fail.
    write_contexts(project, dockerfile="FROM scratch\nCOPY no-such-file /x\n")
    git(project, "commit", "-q", "-am", "unbuildable")
    before = docker_world.engine.image_ids()

    result = cli("push", "--tag", "v1", "--output", "json")  # the seed's v1 is in both repositories

    assert result.code == 0, result.text
    images = result.json()["images"]
    assert [i["action"] for i in images] == ["skipped", "skipped"]
    assert images[0]["digest"] == ecr_digest(sandbox, "arbiter-ai/backend", "v1")
    assert docker_world.engine.image_ids() == before  # nothing built
    assert all("v1" not in docker_world.registry.tags(f"arbiter-ai/{s}") for s in SERVICES)  # nothing pushed
    assert "nothing to build" in result.err


def test_wrong_registry_credentials_are_exit_3_without_the_password(docker_world: Any, project: Path, cli: Any) -> None:
    wrong = f"wrong-{secrets.token_urlsafe(18)}"
    docker_world.bridge.issued_password = wrong

    result = cli("push", "backend", "--tag", fresh_tag(), "--output", "json")

    assert result.code == 3, result.text
    error = result.json()["error"]
    assert error["code"] == "registry-login-failed"
    assert "refused the login" in error["message"] and docker_world.registry.host in error["message"]
    assert "error: the registry" in result.err
    for secret in (wrong, docker_world.registry.password):
        assert secret not in result.out and secret not in result.err


def test_unreachable_engine_is_exit_3_naming_docker_host(sandbox: Any, project: Path, tmp_path: Path) -> None:
    if shutil.which("docker") is None:  # no engine needed, but the CLI must be there to fail to reach one
        skip_or_fail("the docker CLI is not installed: apt-get install -y docker.io")
    dead = f"unix://{tmp_path}/no-engine.sock"
    result = run_subprocess("push", "backend", "--tag", fresh_tag(), "--output", "json", env={"DOCKER_HOST": dead})
    assert result.code == 3, result.text
    message = result.json()["error"]["message"]
    assert "DOCKER_HOST" in message and dead in message
    assert "Traceback" not in result.err


def test_force_on_an_immutable_repository_is_refused_and_explained(sandbox: Any, project: Path, cli: Any) -> None:
    result = cli("push", "backend", "--tag", "v1", "--force")
    assert result.code == 1
    assert "IMMUTABLE" in result.err and "new tag" in result.err


def test_no_create_fails_with_guidance_and_creates_nothing(sandbox: Any, project: Path, cli: Any) -> None:
    (project / "arbiter-ops.toml").write_text('[services.backend]\necr_repository = "arbiter-ai/absent"\n')
    result = cli("push", "backend", "--tag", "t1", "--no-create", "--allow-dirty", "--output", "json")
    assert result.code == 1, result.text
    error = result.json()["error"]
    assert error["code"] == "repository-not-found" and "bootstrap" in error["message"]
    names = [r["repositoryName"] for r in sandbox_client(sandbox, "ecr").describe_repositories()["repositories"]]
    assert "arbiter-ai/absent" not in names


def test_a_dirty_work_tree_is_refused_unless_allowed(sandbox: Any, project: Path, cli: Any, tmp_path: Path) -> None:
    (project / "backend" / "hello.txt").write_text("edited, not committed\n")

    refused = cli("push", "--output", "json")
    assert refused.code == 1, refused.text
    assert refused.json()["error"]["code"] == "dirty-work-tree"
    assert "backend/hello.txt" in refused.err and "--allow-dirty" in refused.err

    allowed = cli("push", "--tag", "v1", "--allow-dirty")  # already in ECR: nothing else needed
    assert allowed.code == 0, allowed.text


def test_allow_dirty_never_reuses_the_commit_tag(
    sandbox: Any, project: Path, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "backend" / "hello.txt").write_text("edited, not committed\n")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # stop before anything is built
    sha = git(project, "rev-parse", "--short", "HEAD")
    result = cli("push", "backend", "--allow-dirty")
    assert result.code == 3
    assert f"tag {sha}-dirty-" in result.err


def test_bad_input_is_exit_2(sandbox: Any, project: Path, cli: Any) -> None:
    assert cli("push", "--tag", "bad tag!").code == 2
    unknown = cli("push", "nosuch", "--tag", "v1", "--output", "json")
    assert unknown.code == 2 and json.loads(unknown.out)["error"]["code"] == "unknown-service"


def test_production_needs_confirmation_before_anything_changes(sandbox: Any, project: Path, cli: Any) -> None:
    (project / "arbiter-ops.toml").write_text(
        "[environments.prodlike]\n"
        'app_mode = "production"\napp_env = "production"\naccount_id = "123456789012"\n'
        f'endpoint_url = "{sandbox.endpoints.aws_endpoint_url}"\n'
    )
    result = run_subprocess(
        "push",
        "backend",
        "--tag",
        fresh_tag(),
        "--allow-dirty",
        "--env",
        "prodlike",
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "DOCKER_HOST": "unix:///dev/null"},
    )
    assert result.code == 2, result.text
    assert "--yes" in result.err


def test_a_failed_build_is_exit_1_and_the_other_services_still_push(docker_world: Any, project: Path, cli: Any) -> None:
    (project / "backend" / "Dockerfile").write_text("FROM scratch\nCOPY no-such-file /x\n")
    git(project, "commit", "-q", "-am", "break the backend")
    tag = fresh_tag()

    result = cli("push", "--tag", tag, "--output", "json")

    assert result.code == 1, result.text
    doc = result.json()
    backend, frontend = doc["images"]
    assert doc["ok"] is False
    assert backend["action"] == "failed" and backend["error"]["code"] == "build-failed"
    assert "no-such-file" in backend["error"]["message"]
    assert frontend["action"] == "pushed" and frontend["digest"] == docker_world.registry.digest(
        "arbiter-ai/frontend", tag
    )
    assert tag not in docker_world.registry.tags("arbiter-ai/backend")
    assert "error: backend: docker build of backend failed" in result.err
