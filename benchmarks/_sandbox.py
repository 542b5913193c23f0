"""Shared by the benchmarks: one in-process sandbox that CLI subprocesses reach through its state file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def running_sandbox(progress: str = "instant", config: Any = None) -> Iterator[tuple[Any, dict[str, str]]]:
    """Yield (sandbox, env for subprocesses) for ``config`` (default: the built-in one)."""
    from arbiter_ops.core.config import load_config
    from arbiter_sandbox.runtime import STATE_ENV, LocalSandbox, write_state

    sandbox = LocalSandbox(config or load_config(None), progress=progress)
    sandbox.start()
    state = os.path.join(tempfile.mkdtemp(prefix="arbiter-bench-"), "local.json")
    os.environ[STATE_ENV] = state
    write_state(sandbox.endpoints)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        STATE_ENV: state,
        "ARBITER_OPS_POLL_INTERVAL": "0.05",
        "AWS_ENDPOINT_URL": sandbox.endpoints.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    try:
        yield sandbox, env
    finally:
        sandbox.stop()


def count_calls(sandbox: Any) -> Any:
    """A rule that matches every AWS request and delays none: its `fired` counter counts the calls."""
    return sandbox.aws.faults.add({"kind": "latency", "operation": "*", "latency_ms": 0})
