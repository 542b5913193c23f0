"""How fast `deploy` reaches its verdict for each failure class, and what that costs, against the sandbox.

    python benchmarks/verdict.py

For each class injected into the backend's next deployment (image missing, secret key missing, crash loop
exit 1, OOM exit 137, health check failing, superseded by another deployment) and for a successful rollout,
prints: the verdict and its cause, the polls (DescribeServices during the wait), the failed tasks of our
deployment counted until the verdict, and the AWS API calls by operation; last, the calls a failure class costs
beyond a successful deploy's (for a success that difference must be 0). The sandbox moves one step per poll
("per-call"), so the polls are those a real rollout of the same shape would need.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox import running_sandbox

PULL = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/arbiter-ai/backend:v2: not found"
)


def classes(sandbox: Any) -> list[tuple[str, dict[str, Any] | None]]:
    secrets = _secret_without(sandbox, "STRIPE_PRICE_ID")
    return [
        ("success", None),
        ("image missing", {"kind": "start", "reason": PULL}),
        ("secret key missing", {"kind": "edit-secret", "secret_change": secrets}),
        ("crash loop (exit 1)", {"kind": "crash", "exit_code": 1, "log_lines": ["boot", "KeyError: 'X'"]}),
        ("out of memory (exit 137)", {"kind": "crash", "exit_code": 137}),
        ("health check failing", {"kind": "unhealthy"}),
        ("superseded", {"kind": "supersede"}),
    ]


def _secret_without(sandbox: Any, key: str) -> dict[str, str]:
    from moto.secretsmanager.models import secretsmanager_backends

    value = secretsmanager_backends["123456789012"]["us-east-1"].get_secret_value("arbiter-ai/local", None, None)
    payload = json.loads(value["SecretString"])
    payload.pop(key, None)
    return {"secret_id": "arbiter-ai/local", "secret_string": json.dumps(payload)}


def wait_calls(doc: dict[str, Any]) -> dict[str, int]:
    ops: dict[str, int] = {}
    for key, n in doc["api_calls"]["by_operation"].items():
        ops[key.split(":", 1)[1]] = ops.get(key.split(":", 1)[1], 0) + n
    return ops


READS = ("ListTasks", "DescribeTasks", "GetLogEvents")


def main() -> None:
    rows = []
    with running_sandbox("per-call") as (sandbox, env):
        for name, fate in classes(sandbox):
            sandbox.reset()
            if fate is not None:
                sandbox.aws.ecs.fail_next_deployment("backend", **fate)
            argv = [sys.executable, "-m", "arbiter_ops", "--output", "json", "deploy", "backend",
                    "--image-tag", "v2", "--no-migrate", "--no-smoke"]
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            doc = json.loads(proc.stdout)
            wait = next(s for s in doc["steps"] if s["name"] == "wait")
            polls = int(wait["detail"].rsplit("(", 1)[1].split()[0])
            rows.append((name, proc.returncode, doc["services"]["backend"], wait_calls(doc), polls))
    print(f"{'class':<26} {'exit':>4} {'verdict':<18} {'polls':>5} {'failed':>6} {'calls':>5} {'reads':>5}  cause")
    for name, code, verdict, ops, polls in rows:
        reads = sum(ops.get(op, 0) for op in READS)
        print(
            f"{name:<26} {code:>4} {verdict['verdict']:<18} {polls:>5} {verdict['failed_tasks']:>6} "
            f"{sum(ops.values()):>5} {reads:>5}  {verdict['cause'] or ''}"
        )
    print(f"reads = {' + '.join(READS)}: the calls the verdict costs (a successful rollout must make 0);")
    print("calls include the rollback's own after a failure. Polls are the wait's DescribeServices calls.")


if __name__ == "__main__":
    main()
