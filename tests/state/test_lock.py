"""The deploy lock (DynamoDB compare-and-set) and audit records, against the sandbox over HTTP."""

from __future__ import annotations

import threading

import pytest
from conftest import context, sandbox_client

from arbiter_ops.core.context import Context
from arbiter_ops.core.errors import LockHeld
from arbiter_ops.core.output import Output
from arbiter_ops.state.audit import latest, record
from arbiter_ops.state.lock import acquire_lock, force_unlock


def _ctx() -> Context:
    return context("local", Output("text", quiet=True))


def test_only_one_of_many_concurrent_acquirers_wins(sandbox) -> None:
    results: list[str] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        ctx = _ctx()
        barrier.wait()
        try:
            acquire_lock(ctx, "deploy")
            results.append("won")
        except LockHeld as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("won") == 1
    losers = [r for r in results if r != "won"]
    assert len(losers) == 5 and all("local is locked by" in r and "(deploy, since" in r for r in losers)


def test_release_renew_and_expiry(sandbox) -> None:
    ctx = _ctx()
    lock = acquire_lock(ctx, "deploy")
    lock.renew()
    lock.release()
    lock.release()  # idempotent
    second = acquire_lock(ctx, "deploy", ttl=-10)  # already expired: anyone may take it over
    third = acquire_lock(ctx, "deploy")
    assert third.token != second.token
    second.release()  # the old holder's release must not free the new holder's lock
    with pytest.raises(LockHeld):
        acquire_lock(ctx, "deploy")
    removed = force_unlock(ctx)
    assert removed is not None and removed["token"]["S"] == third.token
    acquire_lock(ctx, "deploy").release()


def test_audit_records_latest_first(sandbox) -> None:
    ctx = _ctx()
    assert latest(ctx, "migrate") == []
    record(ctx, "migrate", {"exit_code": 1, "n": 1})
    record(ctx, "migrate", {"exit_code": 0, "n": 2})
    (newest,) = latest(ctx, "migrate")
    assert newest["n"] == 2 and newest["who"]


def test_missing_table_points_at_bootstrap(sandbox) -> None:
    sandbox_client(sandbox, "dynamodb").delete_table(TableName="arbiter-ops-state")
    with pytest.raises(Exception) as info:
        acquire_lock(_ctx(), "deploy")
    assert "bootstrap" in str(getattr(info.value, "hint", "")) and "does not exist" in str(info.value)
