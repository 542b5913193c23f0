"""A cancelled GitHub Actions run, cancelled as its runner cancels a step, on the example workflow's own Deploy step.

The runner runs a `run:` script as ``bash --noprofile --norc -eo pipefail FILE``; to cancel it, it signals that
process only: SIGINT, up to 7.5 s for it to end, then SIGTERM, 2.5 s, then the process tree is killed (actions/runner,
src/Runner.Sdk/ProcessInvoker.cs: CancelAndKillProcessTree, _sigintTimeout, _sigtermTimeout).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT, context

from arbiter_ops.core.output import Output
from arbiter_ops.state.lock import lock_holder

RUNNER_SHELL = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
SIGINT_TIMEOUT, SIGTERM_TIMEOUT = 7.5, 2.5


def _deploy_step() -> str:
    workflow = yaml.safe_load((ROOT / "examples" / "github" / "deploy.yml").read_text(encoding="utf-8"))
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    return str(next(step["run"] for step in steps if step.get("name") == "Deploy"))


def _start(script: str, tmp_path: Path) -> subprocess.Popen[str]:
    file = tmp_path / "step.sh"
    file.write_text(script + "\n")
    env = {
        **os.environ,
        "IMAGE_TAG": "v2",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # arbiter-ops, as pip put it
        "GITHUB_ACTIONS": "true",
        "ARBITER_OPS_POLL_INTERVAL": "0.2",
    }
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.Popen(
        [*RUNNER_SHELL, str(file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # so that the test can clean up what the runner would leave behind
    )  # fmt: skip


def _wait_for_the_lock(proc: subprocess.Popen[str], ctx: Any) -> None:
    deadline = time.monotonic() + 60
    while lock_holder(ctx) is None:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(0.5)


def cancel_like_the_runner(proc: subprocess.Popen[str]) -> tuple[list[str], str]:
    """The runner's cancel, signal by signal: the signals it had to send, and what the step printed on stderr."""
    sent = []
    for sig, timeout in ((signal.SIGINT, SIGINT_TIMEOUT), (signal.SIGTERM, SIGTERM_TIMEOUT)):
        proc.send_signal(sig)
        sent.append(sig.name)
        try:
            return sent, proc.communicate(timeout=timeout)[1]
        except subprocess.TimeoutExpired:
            continue
    os.killpg(proc.pid, signal.SIGKILL)
    return [*sent, "SIGKILL"], proc.communicate()[1]


def test_the_example_deploy_step_cancelled_by_the_runner_releases_the_lock(sandbox, tmp_path: Path) -> None:
    sandbox.aws.ecs.set_progress("timed", step_seconds=30.0)  # the rollout will not finish by itself
    ctx = context("local", Output("text", quiet=True))
    script = _deploy_step()
    assert script.startswith("exec arbiter-ops deploy ")
    proc = _start(script, tmp_path)
    _wait_for_the_lock(proc, ctx)
    sent, err = cancel_like_the_runner(proc)
    assert sent == ["SIGINT"], (sent, err[-2000:])  # it ended within the 7.5 s the runner gives SIGINT
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted by SIGINT; the lock is released and the audit record written" in err
    assert lock_holder(ctx) is None and "Traceback" not in err


def test_without_exec_the_tool_never_hears_the_runners_sigint(sandbox, tmp_path: Path) -> None:
    """Why the example says `exec`: the SIGINT reaches bash, which waits for the tool; the tool holds on."""
    sandbox.aws.ecs.set_progress("timed", step_seconds=30.0)
    ctx = context("local", Output("text", quiet=True))
    proc = _start(_deploy_step().removeprefix("exec "), tmp_path)
    try:
        _wait_for_the_lock(proc, ctx)
        proc.send_signal(signal.SIGINT)
        time.sleep(2.0)
        assert proc.poll() is None and lock_holder(ctx) is not None  # bash waits; the tool runs on, unsignalled
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # what the runner's process-tree kill would do, 10 s later
        proc.communicate()
