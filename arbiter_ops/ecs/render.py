"""A service's task definition as the environment runs it: rendered for --env with the account, region and
public URL of the context, and the image tag to use when none is given (the live one, else the git SHA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arbiter_ops.core.context import git_short_sha
from arbiter_ops.core.errors import CredentialsError
from arbiter_ops.ecs.taskdef import RenderInputs, check_image_tag, render

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


def resolve_image_tag(ctx: Context, service: str, image_tag: str | None) -> str:
    """--image-tag, else the tag the live service runs, else the short git SHA."""
    if image_tag:
        return check_image_tag(image_tag)
    from arbiter_ops.ecs.api import image_tag_of, live_task_definition

    cfg = ctx.config.service(service)
    try:
        live = live_task_definition(ctx, cfg)
    except CredentialsError:
        live = None
        ctx.output.detail("no AWS credentials: cannot read the live image tag; using the git SHA")
    tag = image_tag_of(live, cfg.container) if live else None
    if tag:
        ctx.output.detail(f"image tag {tag} (the one the live {cfg.ecs_service} service runs)")
        return tag
    return check_image_tag(git_short_sha())


def render_service(ctx: Context, service: str, image_tag: str) -> dict[str, Any]:
    inputs = RenderInputs(
        env_name=ctx.env_name,
        region=ctx.region,
        account_id=ctx.account_id(),
        image_tag=image_tag,
        base_url=ctx.render_base_url(),
    )
    return render(ctx.config, service, inputs)
