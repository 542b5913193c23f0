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
