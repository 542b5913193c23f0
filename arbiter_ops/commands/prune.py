"""`prune [SERVICE...] --keep N [--dry-run]`: deregister the old ACTIVE task-definition revisions of the services'
families, keeping the newest N, the live one, every current deployment's and the way back (`ecs/prune.py`).

Prints each kept revision with its reasons and each deregistered one. `--dry-run` makes no mutating call; a
second run finds nothing more to deregister.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arbiter_ops.commands import option
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context

REASONS = {
    "newest": "newest {keep} (--keep)",
    "live": "the service runs it",
    "deployment": "a current deployment runs it",
    "rollback-target": "`rollback` would return to it",
    "last-good": "the latest successful deploy replaced it (known good)",
}


@dataclass(frozen=True)
class PruneOptions:
    services: list[str] = option(list, "Services whose families to prune (default: all).")
    keep: int = option(5, "How many of the newest revisions to keep, besides the protected ones (required).")
    dry_run: bool = option(False, "Show what would be deregistered; change nothing.")


def run(ctx: Context, opts: PruneOptions) -> int:
    from arbiter_ops.core.aws import arn_name
    from arbiter_ops.ecs.api import describe_services
    from arbiter_ops.ecs.prune import TokenBucket, active_revisions, decide, deregister, protected
    from arbiter_ops.state.audit import newest

    names = list(dict.fromkeys(opts.services)) or list(ctx.config.services)
    cfgs = {name: ctx.config.service(name) for name in names}  # unknown service: exit 2 before any call
    if not opts.dry_run:
        ctx.confirm_production(f"deregister old task-definition revisions of {', '.join(names)}")
    live = describe_services(ctx, list(cfgs.values()))
    entries = newest(ctx, ("deploy",), limit=50)
    by_family: dict[str, dict[str, list[str]]] = {}
    for name, cfg in cfgs.items():  # services sharing a family protect their revisions together
        shield = by_family.setdefault(cfg.family, {})
        for arn, reasons in protected(name, live.get(cfg.ecs_service), entries).items():
            shield.setdefault(arn, []).extend(reasons)
    decisions = [decide(fam, active_revisions(ctx, fam), opts.keep, shield) for fam, shield in by_family.items()]
    bucket = TokenBucket()
    done: list[str] = []
    for decision in decisions:
        for arn in decision.deregister:
            if not opts.dry_run:
                deregister(ctx, arn, bucket)
                done.append(arn)
                ctx.output.detail(f"deregistered {arn_name(arn)}")
    doc: dict[str, Any] = {
        "dry_run": opts.dry_run,
        "keep": opts.keep,
        "families": [d.as_json() for d in decisions],
        "deregistered": done,
    }
    rows = [
        (arn_name(arn), "keep", "; ".join(REASONS[r].format(keep=opts.keep) for r in reasons))
        for d in decisions
        for arn, reasons in d.kept.items()
    ]
    verb = "would deregister" if opts.dry_run else "deregistered"
    rows += [(arn_name(arn), verb, "") for d in decisions for arn in d.deregister]
    total = sum(len(d.deregister) for d in decisions)
    line = f"{verb} {total} revision{'s' if total != 1 else ''}, kept {sum(len(d.kept) for d in decisions)}"
    ctx.output.summary(f"prune in {ctx.env_name}", ("revision", "action", "why kept"), rows, line)
    return finish(ctx, doc, True)
