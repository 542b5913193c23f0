"""`promote`: retag inside the sandbox's ECR (BatchGetImage + PutImage), idempotent, conflicts explained."""

from __future__ import annotations

import secrets
from typing import Any

from conftest import run_subprocess, sandbox_client
from docker_world import fresh_tag

REPOS = {"backend": "arbiter-ai/backend", "frontend": "arbiter-ai/frontend"}


def digest_of(sandbox: Any, repository: str, tag: str) -> str | None:
    ecr = sandbox_client(sandbox, "ecr")
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ecr.exceptions.ImageNotFoundException:
        return None
    return str(details[0]["imageDigest"])


def test_promote_round_trip_and_a_second_identical_promote_changes_nothing(sandbox: Any, cli: Any) -> None:
    first = cli("promote", "--from-tag", "v2", "--to-tag", "release", "--output", "json")

    assert first.code == 0, first.text
    doc = first.json()
    assert (doc["command"], doc["ok"], doc["env"]) == ("promote", True, "local")
    for image in doc["images"]:
        repository = REPOS[image["service"]]
        v2 = digest_of(sandbox, repository, "v2")
        assert (image["from_tag"], image["to_tag"], image["action"], image["digest"]) == (
            "v2",
            "release",
            "promoted",
            v2,
        )
        assert digest_of(sandbox, repository, "release") == v2  # the same image, not a copy
    assert doc["api_calls"]["by_operation"].get("ecr:PutImage") == 2

    again = cli("promote", "--from-tag", "v2", "--to-tag", "release", "--output", "json")

    assert again.code == 0, again.text
    assert [i["action"] for i in again.json()["images"]] == ["unchanged", "unchanged"]
    assert "ecr:PutImage" not in again.json()["api_calls"]["by_operation"]


def test_an_immutable_tag_naming_another_image_is_a_conflict_explained(sandbox: Any, cli: Any) -> None:
    v1 = digest_of(sandbox, REPOS["backend"], "v1")
    result = cli("promote", "backend", "--from-tag", "v2", "--to-tag", "v1", "--output", "json")
    assert result.code == 1, result.text
    error = result.json()["error"]
    assert error["code"] == "immutable-tag"
    assert "IMMUTABLE" in error["message"] and v1 in error["message"] and "new tag" in error["message"]
    assert digest_of(sandbox, REPOS["backend"], "v1") == v1


def test_a_missing_source_tag_is_exit_1_and_no_service_is_changed(sandbox: Any, cli: Any) -> None:
    # Only the backend has the source tag: the frontend's refusal must leave the backend untouched too.
    assert cli("promote", "backend", "--from-tag", "v2", "--to-tag", "only-backend").code == 0
    result = cli("promote", "--from-tag", "only-backend", "--to-tag", "rc", "--output", "json")
    assert result.code == 1, result.text
    error = result.json()["error"]
    assert error["code"] == "image-not-found" and "only-backend" in error["message"]
    assert "arbiter-ai/frontend" in error["message"]
    assert digest_of(sandbox, REPOS["backend"], "rc") is None


def test_a_mutable_repository_moves_the_tag(sandbox: Any, cli: Any, tmp_path: Any) -> None:
    repository = f"arbiter-ai/mutable-{secrets.token_hex(3)}"
    ecr = sandbox_client(sandbox, "ecr")
    ecr.create_repository(repositoryName=repository, imageTagMutability="MUTABLE")
    for tag in ("v1", "v2"):
        manifest = ecr.batch_get_image(repositoryName=REPOS["backend"], imageIds=[{"imageTag": tag}])["images"][0]
        ecr.put_image(repositoryName=repository, imageManifest=manifest["imageManifest"], imageTag=tag)
    (tmp_path / "arbiter-ops.toml").write_text(f'[services.backend]\necr_repository = "{repository}"\n')
    assert cli("promote", "backend", "--from-tag", "v1", "--to-tag", "stable").code == 0
    moved = cli("promote", "backend", "--from-tag", "v2", "--to-tag", "stable")
    assert moved.code == 0, moved.text
    assert "moved from" in moved.err
    assert digest_of(sandbox, repository, "stable") == digest_of(sandbox, repository, "v2")


def test_bad_input_is_exit_2(sandbox: Any, cli: Any) -> None:
    assert cli("promote", "--from-tag", "bad tag!", "--to-tag", "x").code == 2
    assert cli("promote", "--from-tag", "v1", "--to-tag", "v1").code == 2
    assert cli("promote", "nosuch", "--from-tag", "v1", "--to-tag", "x").code == 2
    assert cli("promote", "--to-tag", "x").code == 2  # --from-tag is required


def test_production_needs_confirmation(sandbox: Any, tmp_path: Any) -> None:
    (tmp_path / "arbiter-ops.toml").write_text(
        "[environments.prodlike]\n"
        'app_mode = "production"\napp_env = "production"\naccount_id = "123456789012"\n'
        f'endpoint_url = "{sandbox.endpoints.aws_endpoint_url}"\n'
    )
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    args = ("promote", "--from-tag", "v2", "--to-tag", "prod", "--env", "prodlike")
    refused = run_subprocess(*args, env=creds)
    assert refused.code == 2 and "--yes" in refused.err
    assert digest_of(sandbox, REPOS["backend"], "prod") is None
    assert run_subprocess(*args, "--yes", env=creds).code == 0
    assert digest_of(sandbox, REPOS["backend"], "prod") == digest_of(sandbox, REPOS["backend"], "v2")


def test_a_pushed_image_promoted_is_pullable_under_the_new_tag(
    docker_world: Any,
    sandbox: Any,
    project: Any,
    cli: Any,
) -> None:
    tag, release = fresh_tag(), fresh_tag()
    assert cli("push", "backend", "--tag", tag).code == 0
    result = cli("promote", "backend", "--from-tag", tag, "--to-tag", release, "--output", "json")
    assert result.code == 0, result.text
    pushed = docker_world.registry.digest(REPOS["backend"], tag)
    assert result.json()["images"][0]["digest"] == pushed
    assert docker_world.registry.digest(REPOS["backend"], release) == pushed  # the registry has it too
