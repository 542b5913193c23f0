"""A deploy's own overhead, from one interleaved run against the sandbox (instant rollouts):

    python benchmarks/deploy.py [--runs 7] [--ecs PATH]

1. our deploy of both services (lock, render, check-secrets, images, register, update, wait until stable, unlock,
   audit) against ecs-deploy, runs interleaved so that a noisy machine hurts all alike, medians and ratios:
   a. as issue 18 asks: `ecs deploy arbiter-ai backend --tag T --timeout -1` (ONE service, no wait);
   b. like for like: what a user of ecs-deploy runs to deploy both services and know they rolled out, i.e.
      `ecs deploy arbiter-ai backend --tag T --sleep-time 0` then the same for the frontend (each waits until its
      deployment is done, polling back to back: ours polls every 0.05 s here);
   and the median CPU time (user + system) of each, which a noisy machine disturbs less than wall time; then the
   floor under (a): what any deploy of ours does before its first call (imports, the ECS client), plus what
   ecs-deploy's own calls cost it (a deploy of ours makes each of them too), against the whole of ecs-deploy's run;
2. our deploy of 30 services (a sandbox seeded with them): wall time, calls by operation, calls per service; and
   a redeploy with every request a 50 ms round trip (the per-service requests go out at once);
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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds, CPU seconds (user + system of the child) and the finished process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def find_ecs(given: str | None) -> str | None:
    bindir = Path(sys.executable).parent
    for candidate in (given, os.environ.get("ECS_DEPLOY"), str(bindir / "ecs"), shutil.which("ecs")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def with_bytecode(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


# What any deploy does before its first AWS call, whatever it then does: import the CLI (typer, whose parameters are
# pydantic TypeAdapters), the config (pydantic models), botocore and jinja2, and create the ECS client. The same
# for ecs-deploy: click, boto3, its CLI, and its ECS client.
_ECS_CLIENT = "create_client('ecs', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')"
OUR_FLOOR = (
    "import arbiter_ops.cli, arbiter_ops.core.config, typer._adapters, botocore.session, botocore.config, jinja2\n"
    f"botocore.session.Session().{_ECS_CLIENT}"
)
THEIR_FLOOR = f"import click, boto3, ecs_deploy.cli\nboto3.session.Session()._session.{_ECS_CLIENT}"
FLOOR_OURS, FLOOR_THEIRS = "before any call: ours", "before any call: ecs-deploy"
NO_WAIT = "ecs-deploy, backend, no wait"


def two_services(runs: int, ecs: str | None) -> None:
    with running_sandbox("instant") as (sandbox, env):
        env = with_bytecode(env)
        ecs_deploy = [ecs or "ecs", "deploy", "arbiter-ai"]
        cases: dict[str, Callable[[str], list[list[str]]]] = {"ours": lambda tag: [[sys.executable, *DEPLOY, tag]]}
        if ecs:
            cases[NO_WAIT] = lambda tag: [[*ecs_deploy, "backend", "--tag", tag, "--timeout", "-1"]]
            cases["ecs-deploy, both, waiting"] = lambda tag: [
                [*ecs_deploy, service, "--tag", tag, "--sleep-time", "0"] for service in ("backend", "frontend")
            ]
            cases[FLOOR_OURS] = lambda _tag: [[sys.executable, "-c", OUR_FLOOR]]
            cases[FLOOR_THEIRS] = lambda _tag: [[str(Path(ecs).parent / "python"), "-c", THEIR_FLOOR]]
        wall: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        calls: dict[str, int] = {}
        for i in range(runs + 1):  # run 0 warms up (byte-code, page cache) and is not counted
            tag = ("v2", "v1")[i % 2]  # every run registers and rolls out new revisions
            for name, argvs_of in cases.items():
                # Runs back to back register faster than ECS's RegisterTaskDefinition quota refills (the sandbox
                # refuses past it, as AWS does; ecs-deploy does not pace): each run starts with a full bucket.
                sandbox.aws.ecs.buckets.clear()
                counter = count_calls(sandbox)
                seconds = cpu_seconds = 0.0
                for argv in argvs_of(tag):
                    s, c, proc = timed(argv, env)
                    if proc.returncode != 0:
                        sys.exit(f"{name} failed: {proc.stdout[-1000:]} {proc.stderr[-2000:]}")
                    seconds, cpu_seconds = seconds + s, cpu_seconds + c
                fired = _fired(sandbox, counter.id)
                if i:
                    wall[name].append(seconds)
                    cpu[name].append(cpu_seconds)
                    calls[name] = fired
        median = {name: statistics.median(w) * 1000 for name, w in wall.items()}
        median_cpu = {name: statistics.median(c) * 1000 for name, c in cpu.items()}
        for name in cases:
            print(f"{name:30s} median {median[name]:5.0f} ms wall, {median_cpu[name]:5.0f} ms CPU, "
                  f"{calls[name]:2d} AWS requests")
        if not ecs:
            print("ecs-deploy not found (--ecs PATH, $ECS_DEPLOY or `pip install ecs-deploy`): no ratio")
            return
        for name in ("ecs-deploy, backend, no wait", "ecs-deploy, both, waiting"):
            print(f"ratio ours / {name} ({runs} interleaved runs): {median['ours'] / median[name]:.2f} wall, "
                  f"{median_cpu['ours'] / median_cpu[name]:.2f} CPU")
        # What ecs-deploy spends after its client: its requests and their handling. A deploy of ours makes each of
        # them too (DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition, UpdateService), and more.
        theirs_after = max(median_cpu[NO_WAIT] - median_cpu[FLOOR_THEIRS], 0.0)
        bound = (median_cpu[FLOOR_OURS] + theirs_after) / median_cpu[NO_WAIT]
        print(f"floor under the first ratio: (ours before any call {median_cpu[FLOOR_OURS]:.0f} ms + ecs-deploy's "
              f"after its client {theirs_after:.0f} ms) / ecs-deploy's run {median_cpu[NO_WAIT]:.0f} ms = "
              f"{bound:.2f} CPU")


def thirty_services() -> None:
    from arbiter_ops.core.config import load_config

    root = Path(tempfile.mkdtemp(prefix="arbiter-bench-30-"))
    config = root / "arbiter-ops.toml"
    config.write_text(THIRTY)
    with running_sandbox("instant", load_config(str(config))) as (sandbox, env):
        seconds, _cpu, proc = timed([sys.executable, "-m", "arbiter_ops", "--config", str(config), *DEPLOY[2:], "v2"],
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
        # Again with every request a 50 ms round trip, as from a CI runner to AWS (a latency rule on every call),
        # redeploying the same tag with --force-new-deployment: nothing to register, every service updated.
        delay = sandbox.aws.faults.add({"kind": "latency", "operation": "*", "latency_ms": 50})
        seconds, _cpu, proc = timed([sys.executable, "-m", "arbiter_ops", "--config", str(config), *DEPLOY[2:], "v2",
                                     "--force-new-deployment"], with_bytecode(env))  # fmt: skip
        if proc.returncode != 0:
            sys.exit(f"the 30-service redeploy failed: {proc.stderr[-2000:]}")
        calls = json.loads(proc.stdout)["api_calls"]
        print(f"  redeployed with 50 ms per request: {seconds:.1f} s for {calls['total']} calls "
              f"({calls['total'] * 0.05:.1f} s of round trips one after another; up to {delay.most_at_once} at once)")


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
            seconds, _cpu, _ = timed(argv, env)
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
