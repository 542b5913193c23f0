"""`local up | status | down`: a persistent local sandbox in the background."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arbiter_ops import local as seam  # the one door to the sandbox
from arbiter_ops.core.errors import ExternalError, Refused
from arbiter_ops.runner import finish

if TYPE_CHECKING:
    from arbiter_ops.core.context import Context, LocalWorld

START_TIMEOUT = 60.0


def _text(ctx: Context, verb: str, endpoints: LocalWorld) -> None:
    out = ctx.output
    out.human.print(f"local sandbox {verb} (pid {endpoints.pid})", markup=False)
    out.human.print(f"  AWS endpoint  {endpoints.aws_endpoint_url}", markup=False)
    out.human.print(f"  Stripe API    {endpoints.stripe_api_base}", markup=False)
    out.human.print(f"  Arbiter app   {endpoints.app_base_url}", markup=False)
    out.human.print(f"  state file    {seam.state_file()}", markup=False)
    for problem in endpoints.problems:
        out.warn(problem)


@dataclass(frozen=True)
class LocalOptions:
    """No options of its own (`local up`, `local status`, `local down`)."""


def up(ctx: Context, opts: LocalOptions) -> int:
    """Start the sandbox process unless one is running (idempotent), and wait until it answers."""
    running = seam.running()
    if running is not None:
        return finish(ctx, running.as_dict(), True, lambda: _text(ctx, "already running", running))
    path = seam.state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a stale file of a dead sandbox
    log = open(path.with_name("local.log"), "ab")  # noqa: SIM115 - handed to the child process
    env = {**os.environ, seam.state_env(): str(path.resolve())}
    if ctx.options.config_path:
        env["ARBITER_OPS_CONFIG"] = str(os.path.abspath(ctx.options.config_path))
    proc = subprocess.Popen(
        seam.serve_argv(),
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # survives this command and the terminal's Ctrl-C
    )
    ctx.output.info(f"starting the local sandbox (pid {proc.pid}) ...")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        started = seam.running()
        if started is not None:
            return finish(ctx, started.as_dict(), True, lambda s=started: _text(ctx, "running", s))
        if proc.poll() is not None:
            raise ExternalError(
                f"the local sandbox exited at start (code {proc.returncode})",
                hint=f"see {path.with_name('local.log')}",
            )
        time.sleep(0.1)
    seam.stop_process(proc.pid)
    raise ExternalError(f"the local sandbox did not answer within {START_TIMEOUT:.0f} s", hint="see local.log")


def status(ctx: Context, opts: LocalOptions) -> int:
    endpoints = seam.running()
    if endpoints is None:
        raise Refused("no local sandbox is running", hint="start one with `arbiter-ops local up`", code="not-running")
    return finish(ctx, endpoints.as_dict(), True, lambda: _text(ctx, "running", endpoints))


def down(ctx: Context, opts: LocalOptions) -> int:
    """Stop the sandbox process (it stops PostgreSQL and the stand-ins itself) and remove the state file."""

    path = seam.state_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return finish(ctx, {"stopped": False}, True, lambda: ctx.output.info("no local sandbox was running"))
    pid = int(data.get("pid", 0))
    gone = seam.stop_process(pid) if pid else True
    pg_dir = data.get("pg_data_dir")
    if pg_dir:
        _stop_orphan_postgres(pg_dir)
    path.unlink(missing_ok=True)
    if not gone:
        raise ExternalError(f"the local sandbox (pid {pid}) did not stop", hint=f"kill -9 {pid}")
    return finish(ctx, {"stopped": True, "pid": pid}, True, lambda: ctx.output.info(f"local sandbox {pid} stopped"))


def _stop_orphan_postgres(pg_dir: str) -> None:
    """If the sandbox died without cleaning up, its PostgreSQL would outlive it: stop that too."""

    pidfile = os.path.join(pg_dir, "postmaster.pid")
    try:
        with open(pidfile, encoding="utf-8") as fh:
            pg_pid = int(fh.readline().strip())
    except (OSError, ValueError):
        return
    seam.stop_process(pg_pid, timeout=10)
