"""The persistent local sandbox process started by `arbiter-ops local up`.

    python -m arbiter_sandbox.serve

Starts every part, writes the state file (URLs, pid, PostgreSQL data dir), and runs until SIGTERM or
SIGINT, then stops everything it started (PostgreSQL included) and removes the state file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from arbiter_ops.core.config import load_config
from arbiter_sandbox.runtime import LocalSandbox, state_path, write_state


def main() -> int:
    config = load_config(os.environ.get("ARBITER_OPS_CONFIG"))
    sandbox = LocalSandbox(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        endpoints = sandbox.start()
        write_state(endpoints, {"pg_data_dir": sandbox.pg_dir, "progress": sandbox.progress})
        print(f"local sandbox ready: {endpoints.as_dict()}", flush=True)
        stop.wait()
    finally:
        sandbox.stop()
        with contextlib.suppress(OSError):
            state_path().unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
