"""`history [SERVICE] [--limit N]`: the audit records, newest first (deploys, rollbacks, migrations, runs,
webhook changes where recorded): who, when, the command, the tag, revisions before -> after, verdict, duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


@dataclass(frozen=True)
class HistoryOptions:
    service: str | None = option(None, "Only the records of this service.")
    limit: int = option(20, "How many records, newest first.")


def run(ctx: Context, opts: HistoryOptions) -> int:
    from arbiter_ops.state.audit import newest
    from arbiter_ops.state.history import duration_text, revisions_text, row, when_text

    if opts.service is not None:
        ctx.config.service(opts.service)  # unknown service: exit 2 before any call
    families = {name: cfg.family for name, cfg in ctx.config.services.items()}

    def about(entry: dict[str, Any]) -> bool:
        return opts.service is None or opts.service in row(entry, families)["services"]

    rows = [row(e, families) for e in newest(ctx, limit=opts.limit, keep=about)]
    doc = {"service": opts.service, "records": rows}
    title = f"history of {opts.service or 'every service'} in {ctx.env_name}"
    table = [
        (
            when_text(r["at"]),
            r["who"],
            r["command"],
            r["image_tag"] or "",
            revisions_text(r["revisions"]),
            r["verdict"] + _per_service(r),
            duration_text(r["duration_ms"]),
        )
        for r in rows
    ]
    line = None if rows else "no audit records yet (deploy, rollback, migrate and run write them)"
    ctx.output.summary(title, ("when (UTC)", "who", "command", "tag", "revisions", "verdict", "duration"), table, line)
    return finish(ctx, doc, True)


def _per_service(r: dict[str, Any]) -> str:
    """` (backend failed-to-start)`: a service whose own verdict differs from the record's."""
    odd = {s: v for s, v in r["verdicts"].items() if v not in (None, "unchanged", "ok", "succeeded")}
    return f" ({', '.join(f'{s} {v}' for s, v in odd.items())})" if odd and r["verdict"] != "ok" else ""
