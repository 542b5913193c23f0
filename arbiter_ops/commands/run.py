"""`run SERVICE [--image-tag TAG] -- COMMAND...`: any one-off task of a service's task definition.

The engine `migrate` uses (:mod:`arbiter_ops.ecs.task`): the service's task definition rendered for --env (the
image the live service runs, unless --image-tag), registered only if no identical revision exists, run with the
service's network and `startedBy: arbiter-ops/run`, its log lines streamed live, its verdict the container's
exit code. The real app's catalog is seeded this way: `arbiter-ops run backend -- python -m scripts.seed_catalog`
(gndumbri/arbiter-ai backend/scripts/seed_catalog.py). Exit 0 ok, 1 a non-zero exit or a task that did not
start (with the cause), 3 timeout (the task is stopped).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.core.errors import UsageError
from arbiter_ops.core.polling import WAIT_TIMEOUT
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.ecs.task import TaskResult

STARTED_BY = "arbiter-ops/run"
FAILURE_LINES = 10  # log lines repeated under a failure summary


@dataclass(frozen=True)
class RunOptions:
    service: str = option("", "The service whose task definition runs the command (backend, frontend, ...).")
    command: list[str] = option(list, "The command, after `--` (e.g. `-- python -m scripts.seed_catalog`).")
    image_tag: str | None = option(None, "Image tag (default: the one the live service runs).")
    timeout: float = option(WAIT_TIMEOUT, "Seconds to wait for the task (it is stopped after that).")


def run(ctx: Context, opts: RunOptions) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.core.polling import PollPolicy
    from arbiter_ops.ecs.api import register_unless_identical
    from arbiter_ops.ecs.render import render_service, resolve_image_tag
    from arbiter_ops.ecs.task import TaskTimeout, run_task
    from arbiter_ops.ecs.taskdef import check_image_tag
    from arbiter_ops.images.ecr import require_task_image

    cfg = ctx.config.service(opts.service)  # an unknown service: exit 2 before anything
    if not opts.command:
        raise UsageError(
            "no command to run", hint=f"give it after --: arbiter-ops run {opts.service} -- python -m scripts.NAME"
        )
    poll = PollPolicy.from_env()
    if opts.image_tag:
        check_image_tag(opts.image_tag)
    shown = shlex.join(opts.command)
    ctx.confirm_production(f"run `{shown}` as a one-off task of {opts.service}")
    tag = resolve_image_tag(ctx, opts.service, opts.image_tag)
    td = render_service(ctx, opts.service, tag)
    image = require_task_image(ctx, td, cfg.container, tag)
    arn, registered = register_unless_identical(ctx, td, service=cfg)
    ctx.output.info(f"{'registered' if registered else 'using'} task definition {arn_name(arn)}")
    doc: dict[str, Any] = {"service": opts.service, "image_tag": tag, "image": image, "container_command": opts.command}
    doc.update(task_definition=arn, registered=registered)

    def on_log(line: str) -> None:
        ctx.output.passthrough(line)  # plain lines, as the container printed them

    try:
        result = run_task(
            ctx, opts.service, arn, list(opts.command), opts.timeout, on_log, started_by=STARTED_BY,
            what=f"`{shown}`", poll=poll, on_progress=lambda m: ctx.output.info(f"run: {m}"), task_definition=td,
        )  # fmt: skip
    except TaskTimeout as exc:
        return _report(ctx, doc, exc.result, exit_code=3, timed_out=exc.line())
    return _report(ctx, doc, result, exit_code=0 if result.ok else 1)


def _report(ctx: Context, doc: dict[str, Any], result: TaskResult, exit_code: int, timed_out: str | None = None) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.state.audit import record_quietly

    out = ctx.output
    keep = ("verdict", "task_arn", "exit_code", "stop_code", "reason", "cause", "stopped_reason", "duration_ms")
    keep += ("log_tail",)
    doc.update({k: getattr(result, k) for k in keep})
    record_quietly(ctx, "run", {k: doc[k] for k in ("service", "image_tag", "container_command", *keep[:5], keep[7])})
    task = arn_name(result.task_arn or "")
    summary = f"{result.reason} (task {task}, {result.duration_ms / 1000:.1f} s)"
    tail = result.log_tail[-FAILURE_LINES:]
    if timed_out is not None:
        doc["error"] = {"code": "timeout", "message": timed_out}
    elif not result.ok:
        doc["error"] = {"code": "task-failed", "message": summary}
    if not result.ok:
        details = summary + ("\n" + "\n".join(tail) if tail else "")
        out.annotate("error", f"arbiter-ops run {doc['service']} failed", details)

    def text() -> None:
        if not result.ok and tail:
            out.human.print("last log lines:", markup=False)
            for line in tail:
                out.human.print(f"  {out.redact(line)}", markup=False)
        out.human.print(out.redact(summary), markup=False)

    if out.mode == "json" and not out.quiet:
        out.info(summary)
    return finish(ctx, doc, result.ok, text=text, exit_code=exit_code)
