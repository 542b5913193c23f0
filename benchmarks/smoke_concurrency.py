"""The four HTTP checks of `smoke-test` against an embedded sandbox whose app holds every answer.

    python benchmarks/smoke_concurrency.py [--delay-ms 500]

Prints, from one run, the wall time of the HTTP checks against the sum of their durations: run one after
the other they would take the sum; run concurrently, about the slowest one (ratio near 1 / 4). Also the
stand-in's own count of requests in flight at once.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request

HTTP_IDS = ["http-health", "http-catalog", "http-sign-in", "http-query"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-ms", type=int, default=500, help="how long the app holds each answer")
    args = parser.parse_args()
    from arbiter_ops.checks.checklist import run_smoke
    from arbiter_ops.core.config import load_config
    from arbiter_ops.core.context import Context, Options
    from arbiter_ops.core.output import Output
    from arbiter_sandbox.runtime import LocalSandbox

    config = load_config(None)
    sandbox = LocalSandbox(config, progress="instant", with_postgres=False)  # no database needed here
    endpoints = sandbox.start()
    try:
        ctx = Context(Options(env="local"), config, Output(quiet=True), command="smoke-test", _local=endpoints)
        run_smoke(ctx, only=HTTP_IDS)  # warm-up: imports, the AWS session, the secret read path
        sandbox.api.reset()
        sandbox.api.set_mode(delay_ms=args.delay_ms)
        began = time.perf_counter()
        ok, checks = run_smoke(ctx, only=HTTP_IDS)
        wall_ms = (time.perf_counter() - began) * 1000
        with urllib.request.urlopen(f"{endpoints.app_base_url}/_sandbox/stats", timeout=5) as resp:
            stats = json.loads(resp.read())
    finally:
        sandbox.stop()
    total = sum(c.duration_ms for c in checks)
    print(f"smoke-test HTTP checks, app holding each answer {args.delay_ms} ms (one run)")
    for c in checks:
        print(f"  {c.id:14s} {c.status:4s} {c.duration_ms:6d} ms")
    print(f"  sum of durations {total:8.0f} ms")
    print(f"  wall time        {wall_ms:8.0f} ms")
    print(f"  wall / sum       {wall_ms / total:8.2f}   (sequential would be ~1.00)")
    print(f"  max requests in flight at the app: {stats['max_in_flight']}")
    if not ok:
        print("  (a check failed: the figures above still show the overlap)")


if __name__ == "__main__":
    main()
