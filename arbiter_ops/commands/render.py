"""`render SERVICE`: the guide's Step 3 task definitions, rendered per environment and validated."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from arbiter_ops.commands import option
from arbiter_ops.core.errors import UsageError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


@dataclass(frozen=True)
class RenderOptions:
    service: str = option("", "backend or frontend (or any service in the config).")
    image_tag: str | None = option(
        None, "Image tag (default: the image the live service runs, else the short git SHA)."
    )
    out: str | None = option(None, "Write the JSON to this file instead of stdout.")
    diff: bool = option(False, "Show the difference against the live task definition.")


def run(ctx: Context, opts: RenderOptions) -> int:
    from arbiter_ops.ecs.render import render_service, resolve_image_tag
    from arbiter_ops.ecs.taskdef import diff_text

    service, image_tag, out, diff = opts.service, opts.image_tag, opts.out, opts.diff
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
        ctx.output.raw_stdout(text, is_json=True)
    return 0
