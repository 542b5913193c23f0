"""One answer to "does this image exist in ECR?", shared by push, deploy's image check and smoke-test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.core.aws import call, error_code

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


def find_image(ctx: Context, repository: str, tag: str) -> dict[str, Any] | None:
    """The ECR image detail of ``repository:tag`` (digest, tags, pushedAt), or None if there is none.

    One DescribeImages call; a missing repository is "no image" too (the caller says what to do).
    """
    from botocore.exceptions import ClientError

    try:
        resp = call(ctx.client("ecr").describe_images, repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        if error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return None
        raise
    details = resp.get("imageDetails") or []
    return dict(details[0]) if details else None


def parse_image_uri(image: str) -> tuple[str, str] | None:
    """(repository, tag) of an ECR image URI ``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG``; None if
    the image is not in ECR or is pinned by digest."""
    if ".dkr.ecr." not in image or "@" in image:
        return None
    path = image.split("/", 1)[1] if "/" in image else ""
    if ":" not in path:
        return path, "latest"
    repository, tag = path.rsplit(":", 1)
    return repository, tag


def require_task_image(ctx: Context, task_definition: dict[str, Any], container: str, tag: str) -> str:
    """The image of ``container`` in the task definition; Refused (exit 1) when it is an ECR image whose tag is
    not there (a task of it would stop with CannotPullContainerError)."""
    from arbiter_ops.core.errors import Refused

    containers = task_definition.get("containerDefinitions") or []
    image = next((str(c.get("image")) for c in containers if c.get("name") == container), "")
    parsed = parse_image_uri(image)
    if parsed is None:
        ctx.output.detail(f"{image} is not an ECR image: its existence is not checked")
        return image
    repository, image_tag = parsed
    if find_image(ctx, repository, image_tag) is None:
        raise Refused(
            f"image {repository}:{tag} does not exist in ECR",
            hint="push it first (`arbiter-ops push`), or pass an existing --image-tag",
            code="image-not-found",
        )
    return image
