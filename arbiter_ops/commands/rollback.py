"""`rollback SERVICE [--to-revision N]`: put a service back on an earlier task definition, and wait."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbiter_ops.commands import option
from arbiter_ops.core.errors import Refused, interruption
from arbiter_ops.core.polling import WAIT_TIMEOUT
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context



def previous_revision(ctx: Context, service: str, current: str) -> str | None:
    """The revision this service ran before the deploy that put ``current`` there (audit records), else
    the revision numbered one lower, if it exists."""
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.ecs.api import describe_task_definition
    from arbiter_ops.state.audit import latest

    for entry in latest(ctx, "deploy", limit=25):
        before = (entry.get("before") or {}).get(service)
        after = (entry.get("after") or {}).get(service)
        if after == current and before and before != current:
            return str(before)
    family, _, number = current.rpartition(":")
    if number.isdigit() and int(number) > 1:
        td = describe_task_definition(ctx, f"{arn_name(family)}:{int(number) - 1}")
        if td is not None:
            return str(td["taskDefinitionArn"])
    return None


@dataclass(frozen=True)
class RollbackOptions:
    service: str = option("", "The service to put back.")
    to_revision: int | None = option(None, "Task definition revision number.")
    timeout: float = option(WAIT_TIMEOUT, "Seconds to wait.")


def run(ctx: Context, opts: RollbackOptions) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.ecs.api import describe_services, describe_task_definition
    from arbiter_ops.ecs.services import Change, say_where_things_stand, update_services, wait_stable
    from arbiter_ops.state.audit import record, record_quietly
    from arbiter_ops.state.lock import acquire_lock

    service, to_revision, timeout = opts.service, opts.to_revision, opts.timeout
    cfg = ctx.config.service(service)
    ctx.confirm_production(f"roll back {service}")
    lock = acquire_lock(ctx, f"rollback {service}")
    try:
        live = describe_services(ctx, [cfg]).get(cfg.ecs_service)
        if live is None:
            raise Refused(f"service {cfg.ecs_service} does not exist in cluster {ctx.env.cluster}")
        current = str(live["taskDefinition"])
        if to_revision is not None:
            td = describe_task_definition(ctx, f"{cfg.family}:{to_revision}")
            if td is None:
                raise Refused(f"revision {to_revision} of {cfg.family} does not exist", code="no-such-revision")
            target = str(td["taskDefinitionArn"])
        else:
            found = previous_revision(ctx, service, current)
            if found is None:
                raise Refused(f"no earlier revision of {cfg.family} to return to", hint="pass --to-revision N")
            target = found
            td = describe_task_definition(ctx, target)
        if td is not None and td.get("status") == "INACTIVE":  # deregistered: ECS refuses to run it
            raise Refused(
                f"{arn_name(target)} is deregistered (INACTIVE): ECS cannot run it",
                hint="pass --to-revision N of an active revision (`aws ecs list-task-definitions`)",
                code="inactive-revision",
            )
        if target == current:
            return finish(
                ctx,
                {"service": service, "from": current, "to": target, "changed": False},
                True,
                lambda: ctx.output.human.print(f"{service} already runs {arn_name(target)}", markup=False),
            )
        change = Change(service, cfg.ecs_service, current, target)
        ctx.output.info(f"rolling {service} back: {arn_name(current)} -> {arn_name(target)}")
        began = time.monotonic()
        since = update_services(ctx, [change])
        entry = {"action": "rollback", "services": [service], "before": {service: current}, "after": {service: target}}
        try:
            (progress,), _ = wait_stable(ctx, [change], timeout, since, f"rolling back {service}")
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: record it, and say where the service stands
            what = interruption(exc)[0]
            record_quietly(ctx, "deploy", {**entry, "ok": False, "error": what, "duration_ms": _ms(began)})
            lock.release()
            env = ctx.env_name
            steps = f"the rollback to {arn_name(target)} may still be rolling: see `arbiter-ops --env {env} status`"
            services = {service: cfg.ecs_service}
            say_where_things_stand(ctx, f"rollback of {service} {what}", services, entry["before"], steps)
            raise
        ok = progress.state == "done"
        record(ctx, "deploy", {**entry, "ok": ok, "duration_ms": _ms(began)})
    finally:
        lock.release()
    doc = {"service": service, "from": current, "to": target, "changed": True}
    if not ok:
        doc["error"] = {"code": "rollback-failed", "message": progress.reason}
        ctx.output.error_line(f"rollback of {service} did not settle: {progress.reason}")
    return finish(
        ctx,
        doc,
        ok,
        lambda: ctx.output.human.print(f"{service} now runs {arn_name(target)}", markup=False),
    )


def _ms(began: float) -> int:
    return int((time.monotonic() - began) * 1000)
