"""A deploy of 30 services against a sandbox seeded with them, under seeded throttling: the exact call budget
(4 per service, DescribeServices in batches of 10, nothing else per service), no DescribeServices of more than
10 services (the sandbox refuses those as AWS does), and RegisterTaskDefinition kept within ECS's quota (the
sandbox's own token bucket never had to refuse one); the per-service requests go out up to 10 at once."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import extra_services_toml, run_subprocess

N = 30
EXTRA = extra_services_toml(N - 2, cpu=256, memory=512)  # plus the built-in backend and frontend


@pytest.fixture(scope="module")
def thirty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    from arbiter_ops.core.config import load_config
    from arbiter_sandbox.runtime import LocalSandbox

    root = tmp_path_factory.mktemp("thirty")
    config = root / "arbiter-ops.toml"
    config.write_text(EXTRA)
    sandbox = LocalSandbox(load_config(str(config)), progress="instant", with_postgres=False)
    sandbox.start()
    yield sandbox, config
    sandbox.stop()


def test_thirty_services_deploy_within_the_exact_budget_under_throttling(
    thirty: tuple[Any, Path], tmp_path: Path
) -> None:
    from arbiter_sandbox.runtime import STATE_ENV, write_state

    sandbox, config = thirty
    state = tmp_path / "state.json"
    os.environ[STATE_ENV] = str(state)  # write_state writes where the variable says
    try:
        write_state(sandbox.endpoints)
    finally:
        del os.environ[STATE_ENV]
    rule = sandbox.aws.faults.add({"kind": "throttle", "operation": "*", "probability": 0.05, "seed": 7})
    # Each of these a round trip of 100 ms, as from a CI runner to AWS: the per-service requests go out at once.
    per_service = ("DescribeImages", "DescribeTaskDefinition", "UpdateService")
    delays = {op: sandbox.aws.faults.add({"kind": "latency", "operation": op, "latency_ms": 100}) for op in per_service}
    polled = sandbox.aws.faults.add({"kind": "latency", "operation": "DescribeServices", "latency_ms": 100})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARBITER_OPS_"))}
    env.update({STATE_ENV: str(state), "ARBITER_OPS_POLL_INTERVAL": "0.01"})
    r = run_subprocess(
        "--config",
        str(config),
        "--output",
        "json",
        "deploy",
        "--image-tag",
        "v2",
        "--no-smoke",
        "--no-migrate",
        env=env,
        cwd=tmp_path,
    )
    assert r.code == 0, r.err[-3000:]
    doc = r.json()
    assert len(doc["task_definitions"]) == N and all(a.endswith(":2") for a in doc["task_definitions"].values())
    calls = doc["api_calls"]["by_operation"]
    wait = next(s for s in doc["steps"] if s["name"] == "wait")
    polls = int(wait["detail"].rsplit("(", 1)[1].split()[0])
    batches = math.ceil(N / 10)
    for op in ("ecs:DescribeTaskDefinition", "ecr:DescribeImages", "ecs:RegisterTaskDefinition", "ecs:UpdateService"):
        assert calls[op] == N, (op, calls)
    assert calls["ecs:DescribeServices"] == batches * (1 + polls)  # the register step's read, then each poll
    assert calls["secretsmanager:GetSecretValue"] == 1
    others = {k: n for k, n in calls.items() if k.split(":")[0] in ("dynamodb", "sts")}
    assert sum(others.values()) <= 5, others
    assert doc["api_calls"]["total"] == 4 * N + batches * (1 + polls) + 1 + sum(others.values())
    assert rule.fired > 0 and doc["api_calls"]["attempts"] > doc["api_calls"]["total"]  # throttled, retried
    assert sandbox.aws.ecs.state()["throttled"].get("RegisterTaskDefinition", 0) == 0  # paced within the quota
    for op, delay in delays.items():  # every call's answered attempt was held, and several of them at once
        assert delay.fired == N and 2 <= delay.most_at_once <= 10, (op, delay.fired, delay.most_at_once)
    # and a poll's batches of 10 go out together
    assert polled.fired == calls["ecs:DescribeServices"] and 2 <= polled.most_at_once <= batches, polled.public()
