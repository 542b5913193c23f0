"""`promote --from-tag A --to-tag B [SERVICE...]`: give an image already in ECR a second tag, no rebuild.

ECR retags by putting the same manifest under the new tag (BatchGetImage + PutImage): no docker, no layer
moves, the digest stays. Every service is checked before any tag is written, so a missing source tag or a
conflict in one repository leaves all of them unchanged. Re-running the same promote changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import Refused, UsageError
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

# Everything a tag can name in ECR: BatchGetImage returns the manifest in its stored type only if accepted.
ACCEPTED_MEDIA_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+json",
]
IMMUTABLE = ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION")


@dataclass
class Promotion:
    service: str
    repository: str
    from_tag: str
    to_tag: str
    digest: str
    manifest: str
    media_type: str | None
    action: str  # promoted | unchanged
    moved_from: str | None = None  # a MUTABLE repository's previous digest under to_tag

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "repository": self.repository,
            "from_tag": self.from_tag,
            "to_tag": self.to_tag,
            "digest": self.digest,
            "action": self.action,
        }


@dataclass(frozen=True)
class PromoteOptions:
    services: list[str] = option(list, "Services to promote (default: all).")
    from_tag: str = option("", "The tag the image has now.")
    to_tag: str = option("", "The tag to give it.")


def run(ctx: Context, opts: PromoteOptions) -> int:
    from arbiter_ops.ecs.taskdef import check_image_tag

    services, from_tag, to_tag = opts.services, opts.from_tag, opts.to_tag
    check_image_tag(from_tag)
    check_image_tag(to_tag)
    if from_tag == to_tag:
        raise UsageError(f"--from-tag and --to-tag are both {from_tag!r}", hint="name the new tag in --to-tag")
    names = services or list(ctx.config.services)
    configs = {name: ctx.config.service(name) for name in names}  # an unknown service: exit 2 first
    plans = [plan(ctx, name, cfg.ecr_repository, from_tag, to_tag) for name, cfg in configs.items()]
    todo = [p for p in plans if p.action == "promoted"]
    if todo:
        ctx.confirm_production(f"tag {len(todo)} image(s) {from_tag} as {to_tag}")
    for p in todo:
        put(ctx, p)
    for p in plans:
        if p.action == "unchanged":
            ctx.output.info(f"{p.service}: {p.repository}:{p.to_tag} already is {p.digest}; nothing to do")

    def text() -> None:
        width = max(len(p.service) for p in plans)
        for p in plans:
            line = f"{p.service:<{width}}  {p.action:<9}  {p.repository}:{p.from_tag} -> {p.to_tag}  {p.digest}"
            ctx.output.human.print(line, markup=False)

    document = {"from_tag": from_tag, "to_tag": to_tag, "images": [p.as_json() for p in plans]}
    return finish(ctx, document, True, text=text)


def plan(ctx: Context, service: str, repository: str, from_tag: str, to_tag: str) -> Promotion:
    """Read the source image and what the target tag names now; raise if the promote cannot happen."""
    from botocore.exceptions import ClientError

    from arbiter_ops.core.aws import call, error_code
    from arbiter_ops.images.ecr import find_image

    ecr = ctx.client("ecr")
    try:
        resp = call(
            ecr.batch_get_image,
            repositoryName=repository,
            imageIds=[{"imageTag": from_tag}],
            acceptedMediaTypes=ACCEPTED_MEDIA_TYPES,
        )
        repo = call(ecr.describe_repositories, repositoryNames=[repository])["repositories"][0]
    except ClientError as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            raise Refused(
                f"{service}: the ECR repository {repository} does not exist",
                hint="push an image first (`arbiter-ops push`)",
                code="repository-not-found",
            ) from None
        raise
    images = resp.get("images") or []
    if not images:
        raise Refused(
            f"{service}: image tag {from_tag!r} not found in ECR repository {repository}",
            hint="push it first (`arbiter-ops push --tag ...`), or check --from-tag",
            code="image-not-found",
        )
    image = images[0]
    digest = str(image["imageId"]["imageDigest"])
    promotion = Promotion(
        service,
        repository,
        from_tag,
        to_tag,
        digest,
        image["imageManifest"],
        image.get("imageManifestMediaType"),
        "promoted",
    )
    current = find_image(ctx, repository, to_tag)
    if current is None:
        return promotion
    if current.get("imageDigest") == digest:
        promotion.action = "unchanged"
        return promotion
    if repo.get("imageTagMutability") in IMMUTABLE:
        raise Refused(
            _conflict(service, repository, to_tag, current.get("imageDigest"), from_tag, digest), code="immutable-tag"
        )
    promotion.moved_from = current.get("imageDigest")
    return promotion


def _conflict(service: str, repository: str, to_tag: str, current: Any, from_tag: str, digest: str) -> str:
    return (
        f"{service}: {repository}:{to_tag} already names another image ({current}), not {from_tag} ({digest}); "
        "the repository has IMMUTABLE tags, so ECR never moves a tag once it is set — promote to a new tag, "
        "or deploy the image by its own tag"
    )


def put(ctx: Context, p: Promotion) -> None:
    from botocore.exceptions import ClientError

    from arbiter_ops.core.aws import call, error_code
    from arbiter_ops.images.ecr import find_image

    params: dict[str, Any] = {
        "repositoryName": p.repository,
        "imageManifest": p.manifest,
        "imageTag": p.to_tag,
        "imageDigest": p.digest,
    }
    if p.media_type:
        params["imageManifestMediaType"] = p.media_type
    try:
        call(ctx.client("ecr").put_image, **params)
    except ClientError as exc:
        # Someone set the tag between our read and this write (AWS: ImageTagAlreadyExists; moto: ImageAlreadyExists).
        if error_code(exc) in ("ImageTagAlreadyExistsException", "ImageAlreadyExistsException"):
            now = (find_image(ctx, p.repository, p.to_tag) or {}).get("imageDigest")
            if now == p.digest:
                p.action = "unchanged"
                return
            raise Refused(
                _conflict(p.service, p.repository, p.to_tag, now, p.from_tag, p.digest), code="immutable-tag"
            ) from None
        raise
    moved = f" (moved from {p.moved_from})" if p.moved_from else ""
    ctx.output.info(f"{p.service}: {p.repository}:{p.to_tag} -> {p.digest}{moved}")
