"""Sandbox start-to-ready and reset times.

    python benchmarks/sandbox.py [--starts 3] [--resets 10]

Prints medians from one run (start includes PostgreSQL and the seed; reset includes the reseed).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--resets", type=int, default=10)
    args = parser.parse_args()
    from arbiter_ops.core.config import load_config
    from arbiter_sandbox.runtime import LocalSandbox

    config = load_config(None)
    starts, resets, aws_resets = [], [], []
    for i in range(args.starts):
        began = time.perf_counter()
        sandbox = LocalSandbox(config, progress="instant")
        sandbox.start()
        starts.append(time.perf_counter() - began)
        if i == 0:
            for _ in range(args.resets):
                began = time.perf_counter()
                sandbox.reset()
                resets.append(time.perf_counter() - began)
                aws_resets.append(sandbox.aws.reset())
                sandbox.reset()
        sandbox.stop()
    print(f"sandbox start to ready (seeded, PostgreSQL up): median {statistics.median(starts):.2f} s "
          f"over {len(starts)} starts (first {starts[0]:.2f} s, includes moto's one-off warm-up)")
    print(f"reset + reseed: median {statistics.median(resets) * 1000:.0f} ms over {len(resets)}")
    print(f"AWS emulator reset alone: median {statistics.median(aws_resets) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
