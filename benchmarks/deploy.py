"""Our deploy of both services against the sandbox (instant rollout) vs ecs-deploy's `ecs deploy`.

    python benchmarks/deploy.py [--runs 5]

Prints wall-time medians from one run, their ratio, and AWS API calls per run (counted by the sandbox).
Note what is compared: ours renders, checks secrets and images, registers and updates BOTH services and
waits until ECS reports them stable; `ecs deploy arbiter-ai backend --tag T --timeout -1` retags ONE
service and does not wait.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox import count_calls, running_sandbox


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - began, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    ecs = str(bindir / "ecs") if (bindir / "ecs").exists() else shutil.which("ecs")
    with running_sandbox("instant") as (sandbox, env):
        ours, our_calls = [], []
        for i in range(args.runs):
            counter = count_calls(sandbox)
            tag = ("v2", "v1")[i % 2]  # every run registers and rolls out new revisions
            argv = [sys.executable, "-m", "arbiter_ops", "--output", "json", "deploy", "--image-tag", tag,
                    "--no-migrate", "--no-smoke"]
            seconds, proc = timed(argv, env)
            if proc.returncode != 0:
                sys.exit(f"our deploy failed: {proc.stderr[-2000:]}")
            ours.append(seconds)
            our_calls.append((json.loads(proc.stdout)["api_calls"]["total"], _fired(sandbox, counter.id)))
        print(f"arbiter-ops deploy (2 services, waits until stable): median {statistics.median(ours):.2f} s; "
              f"API calls per run (logical, seen by the sandbox): {our_calls[-1][0]}, {our_calls[-1][1]}")
        if not ecs:
            print("ecs-deploy not installed (`pip install ecs-deploy`): no comparison")
            return
        theirs, their_calls = [], []
        for i in range(args.runs):
            counter = count_calls(sandbox)
            argv = [ecs, "deploy", "arbiter-ai", "backend", "--tag", f"bench{i}", "--timeout", "-1"]
            seconds, proc = timed(argv, env)
            if proc.returncode != 0:
                sys.exit(f"ecs deploy failed: {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
            theirs.append(seconds)
            their_calls.append(_fired(sandbox, counter.id))
        print(f"ecs deploy arbiter-ai backend --timeout -1 (1 service, no wait): median "
              f"{statistics.median(theirs):.2f} s; API calls per run: {their_calls[-1]}")
        print(f"ratio ours / ecs-deploy (wall time): {statistics.median(ours) / statistics.median(theirs):.2f}")


def _fired(sandbox: object, rule_id: int) -> int:
    rules = sandbox.aws.faults.rules()  # type: ignore[attr-defined]
    fired = next(r["fired"] for r in rules if r["id"] == rule_id)
    sandbox.aws.faults.clear()  # type: ignore[attr-defined]
    return int(fired)


if __name__ == "__main__":
    main()
