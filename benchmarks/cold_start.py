"""Cold start of `arbiter-ops --help` against bare Python and, when installed, ecs-deploy's `ecs --help`.

    python benchmarks/cold_start.py [--runs 15]

Prints medians from one run and their ratios (machines here are shared and noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_ms(argv: list[str], runs: int) -> float:
    subprocess.run(argv, capture_output=True, check=False)  # warm the page cache
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    ours = str(bindir / "arbiter-ops") if (bindir / "arbiter-ops").exists() else shutil.which("arbiter-ops")
    cases = {"python -c pass": [sys.executable, "-c", "pass"]}
    if ours:
        cases["arbiter-ops --help"] = [ours, "--help"]
    cases["python -m arbiter_ops --help"] = [sys.executable, "-m", "arbiter_ops", "--help"]
    ecs = str(bindir / "ecs") if (bindir / "ecs").exists() else shutil.which("ecs")
    if ecs:
        cases["ecs --help (ecs-deploy)"] = [ecs, "--help"]
    results = {name: median_ms(argv, args.runs) for name, argv in cases.items()}
    base = results["python -c pass"]
    print(f"cold start, median of {args.runs} runs")
    for name, ms in results.items():
        print(f"  {name:32s} {ms:8.1f} ms   x{ms / base:5.1f} bare python")
    if ours and ecs:
        ratio = results["arbiter-ops --help"] / results["ecs --help (ecs-deploy)"]
        print(f"  arbiter-ops / ecs-deploy: {ratio:.2f}")
    elif not ecs:
        print("  (ecs-deploy not installed: `pip install ecs-deploy` to compare)")


if __name__ == "__main__":
    main()
