"""`render SERVICE`: the guide's Step 3 task definitions, rendered per environment and validated."""

from __future__ import annotations

import json
from pathlib import Path

from arbiter_ops.core.context import Context, git_short_sha
from arbiter_ops.core.errors import CredentialsError, UsageError
from arbiter_ops.ecs.taskdef import RenderInputs, check_image_tag, diff_text, render


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


def render_service(ctx: Context, service: str, image_tag: str) -> dict:
    inputs = RenderInputs(
        env_name=ctx.env_name,
        region=ctx.region,
        account_id=ctx.account_id(),
        image_tag=image_tag,
        base_url=ctx.render_base_url(),
    )
    return render(ctx.config, service, inputs)


def render_command(ctx: Context, service: str, *, image_tag: str | None, out: str | None, diff: bool) -> int:
    cfg = ctx.config.service(service)  # unknown service: exit 2 before anything else
    tag = resolve_image_tag(ctx, service, image_tag)
    td = render_service(ctx, service, tag)
    text = json.dumps(td, indent=2) + "\n"
    if diff:
        from arbiter_ops.ecs.api import live_task_definition

        live = live_task_definition(ctx, cfg)
        label = live["taskDefinitionArn"] if live else f"{cfg.family} (not registered)"
        delta = diff_text(live, td, label, f"rendered {cfg.family} ({ctx.env_name})")
        if delta:
            ctx.output.err.print(delta, markup=False, highlight=False)
        else:
            ctx.output.info(f"no difference from the live task definition {label}")
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None
        ctx.output.info(f"wrote {out}")
    else:
        # Both modes: stdout is the task definition itself (contract), ready for --cli-input-json.
        ctx.output.raw_stdout(text)
    return 0
