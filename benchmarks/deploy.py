"""A deploy's own overhead, from one interleaved run against the sandbox (instant rollouts):

    python benchmarks/deploy.py [--runs 7] [--ecs PATH]

1. our deploy of both services (lock, render, check-secrets, images, register, update, wait until stable, unlock,
   audit) against ecs-deploy's `ecs deploy arbiter-ai backend --tag T --timeout -1` (ONE service, no wait):
   medians and their ratio, runs interleaved so that a noisy machine hurts both alike;
2. our deploy of 30 services (a sandbox seeded with them): wall time, calls by operation, calls per service;
3. `arbiter-ops --help` against `python -c "import typer"` and `ecs --help`.

ecs-deploy is found with --ecs, $ECS_DEPLOY, next to this Python, or on PATH (install it in a venv of its own:
`python -m venv /tmp/ecsd && /tmp/ecsd/bin/pip install ecs-deploy`). Byte-code is written for both tools (a first
run compiles, as an installed tool's would have been at install time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox import count_calls, running_sandbox

DEPLOY = ["-m", "arbiter_ops", "--output", "json", "deploy", "--no-migrate", "--no-smoke", "--image-tag"]
THIRTY = "\n".join(
    f'[services.svc{i}]\nfamily = "arbiter-svc{i}"\ncontainer = "backend"\necs_service = "svc{i}"\n'
    f'ecr_repository = "arbiter-ai/svc{i}"\ntemplate = "backend-task-definition.json.j2"\ncpu = 256\nmemory = 512\n'
    f'port = 8000\nhealth_check_path = "/health"\ndesired_count = 1\ncontext = "./svc{i}"\n'
    for i in range(28)
)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - began, proc


def find_ecs(given: str | None) -> str | None:
    bindir = Path(sys.executable).parent
    for candidate in (given, os.environ.get("ECS_DEPLOY"), str(bindir / "ecs"), shutil.which("ecs")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def with_bytecode(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def two_services(runs: int, ecs: str | None) -> None:
    with running_sandbox("instant") as (sandbox, env):
        env = with_bytecode(env)
        ours: list[float] = []
        theirs: list[float] = []
        calls: dict[str, int] = {}
        for i in range(runs + 1):  # run 0 warms up (byte-code, page cache) and is not counted
            tag = ("v2", "v1")[i % 2]  # every run registers and rolls out new revisions
            # Runs back to back register faster than ECS's RegisterTaskDefinition quota refills (the sandbox
            # refuses past it, as AWS does; ecs-deploy does not pace): each run starts with a full bucket.
            sandbox.aws.ecs.buckets.clear()
            seconds, proc = timed([sys.executable, *DEPLOY, tag], env)
            if proc.returncode != 0:
                sys.exit(f"our deploy failed: {proc.stderr[-2000:]}")
            if i:
                ours.append(seconds)
                calls["ours"] = json.loads(proc.stdout)["api_calls"]["total"]
            if ecs:
                sandbox.aws.ecs.buckets.clear()
                counter = count_calls(sandbox)
                seconds, proc = timed([ecs, "deploy", "arbiter-ai", "backend", "--tag", tag, "--timeout", "-1"], env)
                if proc.returncode != 0:
                    sys.exit(f"ecs deploy failed: {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
                if i:
                    theirs.append(seconds)
                    calls["theirs"] = _fired(sandbox, counter.id)
                else:
                    sandbox.aws.faults.clear()
        print(f"arbiter-ops deploy, 2 services, waits until stable: median {statistics.median(ours) * 1000:.0f} ms, "
              f"{calls['ours']} API calls")
        if not ecs:
            print("ecs-deploy not found (--ecs PATH, $ECS_DEPLOY or `pip install ecs-deploy`): no ratio")
            return
        print(f"ecs deploy arbiter-ai backend --timeout -1, 1 service, no wait: median "
              f"{statistics.median(theirs) * 1000:.0f} ms, {calls['theirs']} API calls")
        print(f"ratio ours / ecs-deploy (median wall time, {runs} interleaved runs): "
              f"{statistics.median(ours) / statistics.median(theirs):.2f}")


def thirty_services() -> None:
    from arbiter_ops.core.config import load_config

    root = Path(tempfile.mkdtemp(prefix="arbiter-bench-30-"))
    config = root / "arbiter-ops.toml"
    config.write_text(THIRTY)
    with running_sandbox("instant", load_config(str(config))) as (_sandbox, env):
        seconds, proc = timed([sys.executable, "-m", "arbiter_ops", "--config", str(config), *DEPLOY[2:], "v2"],
                              with_bytecode(env))
        if proc.returncode != 0:
            sys.exit(f"the 30-service deploy failed: {proc.stderr[-2000:]}")
        doc: dict[str, Any] = json.loads(proc.stdout)
        calls = doc["api_calls"]
        n = len(doc["task_definitions"])
        steps = {s["name"]: s["duration_ms"] for s in doc["steps"]}
        print(f"arbiter-ops deploy, {n} services: {seconds:.1f} s (register {steps['register'] / 1000:.1f} s: "
              f"RegisterTaskDefinition paced within ECS's 20-then-1-per-second quota); {calls['total']} calls "
              f"({calls['total'] / n:.1f} per service), {calls['attempts']} attempts")
        per_op = ", ".join(f"{k} {v}" for k, v in calls["by_operation"].items())
        print(f"  by operation: {per_op}")
        print(f"  DescribeServices per poll: {math.ceil(n / 10)} (10 services per call)")


def cold_start(ecs: str | None, runs: int) -> None:
    bindir = Path(sys.executable).parent
    ours = str(bindir / "arbiter-ops") if (bindir / "arbiter-ops").exists() else shutil.which("arbiter-ops")
    cases = {"python -c 'import typer'": [sys.executable, "-c", "import typer"]}
    if ours:
        cases["arbiter-ops --help"] = [ours, "--help"]
    if ecs:
        cases["ecs --help"] = [ecs, "--help"]
    env = with_bytecode(dict(os.environ))
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs + 1):
        for name, argv in cases.items():
            seconds, _ = timed(argv, env)
            if i:
                samples[name].append(seconds)
    medians = {name: statistics.median(s) * 1000 for name, s in samples.items()}
    base = medians["python -c 'import typer'"]
    print("cold start, medians of interleaved runs:")
    for name, ms in medians.items():
        print(f"  {name:28s} {ms:7.0f} ms   x{ms / base:4.2f} of `import typer`")


def _fired(sandbox: Any, rule_id: int) -> int:
    fired = next(r["fired"] for r in sandbox.aws.faults.rules() if r["id"] == rule_id)
    sandbox.aws.faults.clear()
    return int(fired)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ecs", help="ecs-deploy's `ecs` executable")
    args = parser.parse_args()
    ecs = find_ecs(args.ecs)
    two_services(args.runs, ecs)
    thirty_services()
    cold_start(ecs, args.runs * 2)


if __name__ == "__main__":
    main()
