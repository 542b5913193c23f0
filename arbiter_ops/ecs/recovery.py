"""The way back after a deploy went wrong: its changed services return to the revisions they had before.

A failed rollout or smoke test, or an update that AWS refused after some services were already rolling, ends here;
a service someone else deployed over ours is left to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arbiter_ops.core.errors import Refused, RollbackFailed

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context
    from arbiter_ops.core.steps import Pipeline
    from arbiter_ops.ecs.plan import Outcome, Plan

ROLLBACK_MIN_TIMEOUT = 300.0


def said(exc: Exception) -> str:
    """What a failed AWS request said: our typed error's message, or AWS's refusal in its own words."""
    from arbiter_ops.core.aws import is_client_error, refusal

    return refusal(exc) if is_client_error(exc) else getattr(exc, "message", None) or str(exc)


def after_failed_wait(ctx: Context, plan: Plan, pipe: Pipeline, outcome: Outcome, timeout: float, why: str) -> None:
    """A service someone else deployed over ours is left alone (their deployment owns it now); the rest go back."""
    from arbiter_ops.ecs.verdict import SUPERSEDED

    theirs = {name for name, p in outcome.verdicts.items() if p.verdict == SUPERSEDED}
    if theirs and all(c.name in theirs for c in plan.changes):
        outcome.error = Refused(
            f"deploy superseded: {why}",
            hint="find out who deployed (`arbiter-ops status`, CloudTrail UpdateService) before deploying again",
            code="superseded",
        )
        return None
    return rollback(ctx, plan, pipe, outcome, timeout, why, leave=theirs)


def rollback(
    ctx: Context,
    plan: Plan,
    pipe: Pipeline,
    outcome: Outcome,
    timeout: float,
    why: str,
    leave: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Put the changed services (but those in ``leave``) back, waiting for them; the outcome says how it went."""
    from arbiter_ops.ecs.services import roll_back

    ctx.output.warn(f"{why}; rolling back to the previous revisions")
    with pipe.step("rollback") as step:
        # The way back gets at least ROLLBACK_MIN_TIMEOUT: a tight --timeout for the rollout must not cut
        # short the rollback that repairs it.
        changes = [c for c in plan.changes if c.name not in leave]
        ok, detail, final = roll_back(ctx, changes, max(timeout, ROLLBACK_MIN_TIMEOUT))
        outcome.final.update(final)
        step.detail = detail
        if outcome.migrated:
            step.detail += "; the database schema was NOT rolled back (migrations ran in this deploy)"
        if not ok:
            step.status = "failed"
            outcome.error = RollbackFailed(
                f"deploy failed ({why}) and its rollback failed: {detail}",
                hint="a human must look now: `arbiter-ops status`, then `arbiter-ops rollback SERVICE`",
            )
            return
    outcome.rolled_back = True
    outcome.error = Refused(f"deploy failed and was rolled back: {why}", code="rolled-back")
