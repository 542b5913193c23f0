"""`status`: one table of the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


@dataclass(frozen=True)
class StatusOptions:
    """No options of its own."""


def run(ctx: Context, opts: StatusOptions) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.ecs.api import describe_services, describe_task_definition, image_tag_of
    from arbiter_ops.state.audit import latest
    from arbiter_ops.state.lock import lock_holder

    cfgs = ctx.config.services
    live = describe_services(ctx, list(cfgs.values()))
    rows: list[dict[str, Any]] = []
    for name, cfg in cfgs.items():
        svc = live.get(cfg.ecs_service)
        if svc is None:
            rows.append({"service": name, "status": "MISSING"})
            continue
        td = describe_task_definition(ctx, svc["taskDefinition"]) or {}
        primary = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        rows.append(
            {
                "service": name,
                "status": svc.get("status"),
                "task_definition": svc.get("taskDefinition"),
                "image_tag": image_tag_of(td, cfg.container) if td else None,
                "desired": svc.get("desiredCount"),
                "running": svc.get("runningCount"),
                "pending": svc.get("pendingCount"),
                "rollout": primary.get("rolloutState"),
                "deployments": len(svc.get("deployments", [])),
                "latest_event": (svc.get("events") or [{}])[0].get("message"),
            }
        )
    stale, stale_note = _stale(ctx, [(n, cfgs[n].ecs_service) for n in cfgs if n in live_names(live, cfgs)])
    deploys = latest(ctx, "deploy", limit=5)
    holder = lock_holder(ctx)
    doc = {
        "cluster": ctx.env.cluster,
        "services": rows,
        "last_deploys": deploys,
        "lock": holder,
        "stale_secrets": [s.as_json() for s in stale],
    }
    ok = all(r.get("status") == "ACTIVE" and r.get("running") == r.get("desired") for r in rows)

    def text() -> None:
        from rich.table import Table

        table = Table(title=f"{ctx.env_name} ({ctx.env.cluster})", title_justify="left")
        for col in ("service", "revision", "image", "running/desired", "pending", "rollout", "latest event"):
            table.add_column(col, overflow="fold", max_width=50 if col == "latest event" else None)
        for r in rows:
            table.add_row(
                r["service"],
                arn_name(str(r.get("task_definition", ""))),
                str(r.get("image_tag") or "-"),
                f"{r.get('running', '-')}/{r.get('desired', '-')}",
                str(r.get("pending", "-")),
                str(r.get("rollout") or r.get("status")),
                str(r.get("latest_event") or ""),
            )
        ctx.output.print_rich(table)
        if holder:
            ctx.output.human.print(f"locked by {holder}", markup=False, style="yellow")
        for s in stale:
            ctx.output.human.print(s.message(ctx.env_name), markup=False, style="yellow")
        if stale_note:
            ctx.output.human.print(stale_note, markup=False, style="yellow")
        for d in deploys:
            what = d.get("action") or f"deploy {d.get('image_tag')}"
            verdict = "ok" if d.get("ok") else ("rolled back" if d.get("rolled_back") else "FAILED")
            ctx.output.human.print(f"  {d.get('at')}  {d.get('who')}  {what}  {verdict}", markup=False)

    return finish(ctx, doc, ok, text, exit_code=0)


def live_names(live: dict[str, Any], cfgs: dict[str, Any]) -> set[str]:
    return {name for name, cfg in cfgs.items() if cfg.ecs_service in live}


def _stale(ctx: Context, services: list[tuple[str, str]]) -> tuple[list[Any], str | None]:
    """Services whose running tasks started before a secret they reference changed (they hold the old value)."""
    from functools import cache

    from arbiter_ops.core.errors import OpsError
    from arbiter_ops.ecs.api import describe_task_definition
    from arbiter_ops.secrets.freshness import stale_tasks

    try:
        return stale_tasks(ctx, services, cache(lambda arn: describe_task_definition(ctx, arn))), None
    except OpsError as exc:  # status still shows the rest
        return [], f"cannot tell whether the running tasks hold the current secrets: {exc.line()}"
