"""`unlock --force`: clear the environment's deploy lock left by a crashed run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbiter_ops.commands import option
from arbiter_ops.core.errors import UsageError
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context


@dataclass(frozen=True)
class UnlockOptions:
    force: bool = option(False, "Required: clear the lock whoever holds it.")


def run(ctx: Context, opts: UnlockOptions) -> int:
    from arbiter_ops.state.lock import describe_holder, force_unlock

    force = opts.force
    if not force:
        raise UsageError("unlock clears a lock whoever holds it", hint="pass --force if the holder really crashed")
    removed = force_unlock(ctx)
    holder = describe_holder(removed) if removed else None
    message = f"cleared the {ctx.env_name} lock held by {holder}" if holder else f"{ctx.env_name} was not locked"
    return finish(ctx, {"cleared": holder}, True, lambda: ctx.output.human.print(message, markup=False))
