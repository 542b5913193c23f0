"""`local up | status | down`: a persistent local sandbox in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from arbiter_ops.core.context import Context
from arbiter_ops.core.errors import ExternalError, Refused
from arbiter_ops.runner import finish
from arbiter_sandbox.runtime import LocalEndpoints, read_state, state_path, stop_pid

START_TIMEOUT = 60.0


def _text(ctx: Context, verb: str, endpoints: LocalEndpoints) -> None:
    out = ctx.output
    out.human.print(f"local sandbox {verb} (pid {endpoints.pid})", markup=False)
    out.human.print(f"  AWS endpoint  {endpoints.aws_endpoint_url}", markup=False)
    out.human.print(f"  Stripe API    {endpoints.stripe_api_base}", markup=False)
    out.human.print(f"  Arbiter app   {endpoints.app_base_url}", markup=False)
    out.human.print(f"  state file    {state_path()}", markup=False)


def up(ctx: Context) -> int:
    """Start the sandbox process unless one is running (idempotent), and wait until it answers."""
    running = read_state()
    if running is not None:
        return finish(ctx, running.as_dict(), True, lambda: _text(ctx, "already running", running))
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a stale file of a dead sandbox
    log = open(path.with_name("local.log"), "ab")  # noqa: SIM115 - handed to the child process
    env = {**os.environ, "ARBITER_OPS_LOCAL_STATE": str(path.resolve())}
    if ctx.options.config_path:
        env["ARBITER_OPS_CONFIG"] = str(os.path.abspath(ctx.options.config_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "arbiter_sandbox.serve"],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # survives this command and the terminal's Ctrl-C
    )
    ctx.output.info(f"starting the local sandbox (pid {proc.pid}) ...")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        started = read_state()
        if started is not None:
            return finish(ctx, started.as_dict(), True, lambda s=started: _text(ctx, "running", s))
        if proc.poll() is not None:
            raise ExternalError(
                f"the local sandbox exited at start (code {proc.returncode})",
                hint=f"see {path.with_name('local.log')}",
            )
        time.sleep(0.1)
    stop_pid(proc.pid)
    raise ExternalError(f"the local sandbox did not answer within {START_TIMEOUT:.0f} s", hint="see local.log")


def status(ctx: Context) -> int:
    endpoints = read_state()
    if endpoints is None:
        raise Refused("no local sandbox is running", hint="start one with `arbiter-ops local up`", code="not-running")
    return finish(ctx, endpoints.as_dict(), True, lambda: _text(ctx, "running", endpoints))


def down(ctx: Context) -> int:
    """Stop the sandbox process (it stops PostgreSQL and the stand-ins itself) and remove the state file."""
    path = state_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return finish(ctx, {"stopped": False}, True, lambda: ctx.output.info("no local sandbox was running"))
    pid = int(data.get("pid", 0))
    gone = stop_pid(pid) if pid else True
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
    stop_pid(pg_pid, timeout=10)
