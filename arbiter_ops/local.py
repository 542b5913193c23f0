"""The one door between the product and the embedded sandbox (the sibling package ``arbiter_sandbox``).

`--env local` uses a persistent sandbox when one is running (its state file says where), else starts an
embedded one for the command's duration; either way the context receives its endpoints and nothing else.
`local up` / `local down` start and stop the persistent one through the functions here. No other product module
imports the sandbox (tests/test_architecture.py holds it to that).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from arbiter_ops.core.errors import ExternalError

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context, LocalWorld

SERVE_MODULE = "arbiter_sandbox.serve"  # the `local up` process


def ensure_local(ctx: Context) -> LocalWorld:
    """The running persistent sandbox, or an embedded one started for this command. Parts that did not start
    are said first, with what will fail because of them."""
    from arbiter_sandbox.runtime import read_state, state_path

    running = read_state()
    if running is not None:
        ctx.output.info(f"using the local sandbox of pid {running.pid} ({state_path()})")
        _say_problems(ctx, running.problems)
        return running
    ctx.output.info("starting an embedded local sandbox for this command (`arbiter-ops local up` keeps one running)")
    started = time.monotonic()
    try:
        from arbiter_sandbox.runtime import LocalSandbox

        endpoints = LocalSandbox(ctx.config).start()
    except ImportError as exc:
        raise ExternalError(
            f"the local sandbox needs the [local] extra ({exc.name} is missing)",
            hint="pip install 'arbiter-ops[local]'",
        ) from None
    _say_problems(ctx, endpoints.problems)
    ctx.output.detail(f"local sandbox ready in {time.monotonic() - started:.1f} s")
    return endpoints


def _say_problems(ctx: Context, problems: list[str]) -> None:
    for problem in problems:
        ctx.output.warn(problem)


def running() -> LocalWorld | None:
    """The persistent sandbox if one is running and answering."""
    from arbiter_sandbox.runtime import read_state

    return read_state()


def state_file() -> Path:
    from arbiter_sandbox.runtime import state_path

    return state_path()


def state_env() -> str:
    """The variable that points `--env local` at a sandbox's state file."""
    from arbiter_sandbox.runtime import STATE_ENV

    return STATE_ENV


def serve_argv() -> list[str]:
    return [sys.executable, "-m", SERVE_MODULE]


def stop_process(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM, wait, then SIGKILL. True if the process is gone."""
    from arbiter_sandbox.runtime import stop_pid

    return stop_pid(pid, timeout)
