"""`stripe-webhook --rotate` under a stream of events: no event is lost, and an interrupted rotation resumes.

Real HTTP all the way, nothing of ours patched: the Stripe stand-in signs each event and delivers it to every
enabled endpoint; the app stand-in (like the real backend) verifies with the one STRIPE_WEBHOOK_SECRET its running
tasks started with and answers 400 otherwise; the rotation restarts the backend in the sandbox's ECS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stripe_support import endpoints, mark, read_secret, requests_since

from arbiter_ops.billing.fingerprint import FINGERPRINT_KEY, fingerprint


class EventStream:
    """Events emitted one after another from a thread; each one's deliveries (endpoint -> HTTP status)."""

    def __init__(self, sandbox: Any) -> None:
        self.url = sandbox.endpoints.stripe_api_base + "/_sandbox/events"
        self.results: list[dict[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                resp = client.post(self.url, json={"type": "customer.subscription.updated"})
                resp.raise_for_status()
                self.results.append({d["endpoint"]: d["status"] for d in resp.json()["deliveries"]})
                time.sleep(0.02)

    def __enter__(self) -> EventStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def rejected(self) -> list[dict[str, int]]:
        """Events that no delivery got accepted (every endpoint's answer was not 200)."""
        return [r for r in self.results if 200 not in r.values()]

    def overlapped(self) -> int:
        """Events delivered to two endpoints (the rotation's overlap)."""
        return sum(1 for r in self.results if len(r) == 2)

    def wait_for(self, n: int) -> None:
        deadline = time.monotonic() + 30
        start = len(self.results)
        while len(self.results) < start + n:
            assert time.monotonic() < deadline, "the event stream stalled"
            time.sleep(0.02)


@pytest.fixture
def stream(sandbox: Any) -> Iterator[EventStream]:
    with EventStream(sandbox) as s:
        s.wait_for(3)
        yield s


def assert_one_endpoint_holding_the_stored_secret(sandbox: Any) -> dict[str, Any]:
    (ep,) = endpoints(sandbox)
    stored = read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"]
    assert ep["metadata"]["managed_by"] == "arbiter-ops" and "rotation_replaces" not in ep["metadata"]
    assert stored == ep["secret"] and ep["metadata"][FINGERPRINT_KEY] == fingerprint(stored)
    return ep


def test_a_rotation_under_a_stream_of_events_loses_none(sandbox, cli, stream) -> None:
    old = sandbox.seeded.webhook_endpoint_id
    r = cli("stripe-webhook", "--rotate", "--output", "json")
    stream.wait_for(3)  # events after the rotation, to the new endpoint only
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [s["status"] for s in doc["rotation"]["steps"]] == ["done"] * 5
    assert doc["rotation"]["old_endpoint"] == old and doc["endpoint"]["id"] == doc["rotation"]["new_endpoint"]
    ep = assert_one_endpoint_holding_the_stored_secret(sandbox)
    assert ep["id"] != old and ep["metadata"]["rotation_id"] == doc["rotation"]["id"]
    assert stream.rejected() == [] and stream.overlapped() > 0, stream.results
    assert stream.results[-1] == {ep["id"]: 200}  # the app now verifies with the new secret
    for step in ("create", "store-secret", "restart", "check", "delete-old"):
        assert step in r.err  # each step is said as it happens
    assert ep["secret"] not in r.out + r.err


def spawn_rotation() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "arbiter_ops", "stripe-webhook", "--rotate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ARBITER_OPS_POLL_INTERVAL": "0.2"},
    )


@pytest.mark.parametrize("when", ["stored", "restarting"])
def test_killed_after_the_secret_is_stored_a_rerun_finishes_with_one_endpoint(sandbox, cli, stream, when) -> None:
    """SIGTERM right after the secret is stored, or during the backend's restart (its deployment recorded on the
    new endpoint): the re-run picks up where it stood, and waits for that deployment rather than start another."""
    seeded_secret, before = sandbox.seeded.webhook_secret, mark(sandbox)
    sandbox.aws.ecs.set_progress("timed", step_seconds=2.0)  # the restart takes a while: time to kill it
    proc = spawn_rotation()
    deadline = time.monotonic() + 60

    def reached() -> bool:
        if when == "stored":  # plain boto3, as anyone would look
            return read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"] != seeded_secret
        return any("rotation_restart" in e["metadata"] for e in endpoints(sandbox))

    while not reached():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "--rotate` again to resume" in err and "rotation rot_" in err
    assert len(endpoints(sandbox)) == 2  # both kept: the old one still serves the tasks that run
    stream.wait_for(3)

    sandbox.aws.ecs.set_progress("per-call")
    r = cli("stripe-webhook", "--rotate", "--output", "json")
    stream.wait_for(3)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    steps = {s["name"]: s["status"] for s in doc["rotation"]["steps"]}
    assert doc["rotation"]["resumed"] is True
    assert steps["create"] == steps["store-secret"] == "already" and steps["delete-old"] == "done"
    ep = assert_one_endpoint_holding_the_stored_secret(sandbox)
    creates = [q for q in requests_since(sandbox, before, "POST") if q["path"] == "/v1/webhook_endpoints"]
    assert len(creates) == 1  # never a second new endpoint, let alone a third
    assert stream.rejected() == [] and stream.overlapped() > 0, stream.results
    assert stream.results[-1] == {ep["id"]: 200}
    assert ep["secret"] not in out + err + r.out + r.err
    if when == "restarting":
        assert "waiting for it" in r.err and "started deployment" not in r.err
        svc = sandbox.aws.ecs.state()["services"]
        (backend,) = [x for x in svc if x["service"] == "backend"]
        assert backend["deployments"][0]["id"] == ep["metadata"]["rotation_restart"]


def test_killed_before_the_secret_is_stored_a_rerun_replaces_the_orphan(sandbox, cli, stream) -> None:
    """Stripe shows a secret only on create: an endpoint whose secret was lost is deleted, then another made."""
    old, before = sandbox.seeded.webhook_endpoint_id, mark(sandbox)
    sandbox.aws.faults.add({"kind": "latency", "operation": "secretsmanager:PutSecretValue", "latency_ms": 3000})
    proc = spawn_rotation()
    deadline = time.monotonic() + 60
    while not any(e["metadata"].get(FINGERPRINT_KEY) and e["id"] != old for e in endpoints(sandbox)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    sandbox.aws.faults.clear()
    assert read_secret(sandbox)["STRIPE_WEBHOOK_SECRET"] == sandbox.seeded.webhook_secret  # never stored
    (orphan,) = [e["id"] for e in endpoints(sandbox) if e["id"] != old]

    r = cli("stripe-webhook", "--rotate", "--output", "json")
    assert r.code == 0, r.err
    ep = assert_one_endpoint_holding_the_stored_secret(sandbox)
    assert ep["id"] not in (old, orphan) and f"deleted {orphan}" in r.err
    assert json.loads(r.out)["rotation"]["resumed"] is True
    deletes = [q["path"].rsplit("/", 1)[-1] for q in requests_since(sandbox, before, "DELETE")]
    assert deletes == [orphan, old]  # the orphan went before another endpoint was created
    stream.wait_for(3)
    assert stream.rejected() == [], stream.results


def test_dry_run_of_an_unfinished_rotation_says_what_is_left_and_changes_nothing(sandbox, cli) -> None:
    sandbox.stripe.faults.add({"kind": "error", "operation": "DELETE /v1/webhook_endpoints/*", "count": 3})
    assert cli("stripe-webhook", "--rotate").code == 3
    before = mark(sandbox)
    r = cli("stripe-webhook", "--rotate", "--dry-run", "--output", "json")
    assert r.code == 0, r.err
    steps = {s["name"]: s["status"] for s in json.loads(r.out)["rotation"]["steps"]}
    assert steps == {
        "create": "already",
        "store-secret": "already",
        "restart": "would",
        "check": "would",
        "delete-old": "would",
    }
    assert {q["method"] for q in requests_since(sandbox, before)} == {"GET"} and len(endpoints(sandbox)) == 2


def test_a_restart_that_fails_keeps_both_endpoints_and_loses_no_event(sandbox, cli, stream) -> None:
    """The new tasks crash: ECS's circuit breaker keeps the old ones, which still verify with the old secret."""
    sandbox.aws.ecs.fail_next_deployment("backend", kind="crash", exit_code=3)
    r = cli("stripe-webhook", "--rotate", "--output", "json")
    doc = json.loads(r.out)
    assert r.code == 1 and doc["error"]["code"] == "restart-failed", r.err
    assert "stopped at restart" in doc["error"]["message"] and "--rotate` again" in doc["error"]["message"]
    assert len(endpoints(sandbox)) == 2
    stream.wait_for(3)
    assert stream.rejected() == [], stream.results
    r2 = cli("stripe-webhook", "--rotate")  # the backend is fine again: the re-run finishes
    assert r2.code == 0, r2.err
    assert_one_endpoint_holding_the_stored_secret(sandbox)
    stream.wait_for(3)
    assert stream.rejected() == [], stream.results
