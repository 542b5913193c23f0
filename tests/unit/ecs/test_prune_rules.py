"""prune's rules, pure: what is kept and why, the audit's ways back, the pace of deregistration."""

from __future__ import annotations

from arbiter_ops.ecs.prune import TokenBucket, decide, last_good, protected, rollback_target

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/arbiter-backend:"


def arn(n: int) -> str:
    return f"{TD}{n}"


def test_newest_n_are_kept_and_the_rest_go_oldest_first() -> None:
    d = decide("arbiter-backend", [arn(n) for n in (3, 1, 10, 2, 9)], 2, {})
    assert d.kept == {arn(10): ["newest"], arn(9): ["newest"]}  # by revision number, not by the order listed
    assert d.deregister == [arn(1), arn(2), arn(3)]


def test_protected_revisions_are_kept_with_every_reason_once() -> None:
    d = decide("arbiter-backend", [arn(n) for n in range(1, 6)], 1, {arn(2): ["live", "live"], arn(5): ["live"]})
    assert d.kept == {arn(5): ["newest", "live"], arn(2): ["live"]}
    assert d.deregister == [arn(1), arn(3), arn(4)]


def test_a_protected_revision_that_is_not_active_is_not_invented() -> None:
    assert decide("arbiter-backend", [arn(4)], 1, {arn(2): ["rollback-target"]}).kept == {arn(4): ["newest"]}


def test_the_live_revision_every_deployment_and_the_ways_back_are_protected() -> None:
    live = {
        "taskDefinition": arn(5),
        "deployments": [{"taskDefinition": arn(6), "status": "PRIMARY"}, {"taskDefinition": arn(5)}],
    }
    entries = [  # newest first
        {"action": "rollback", "ok": True, "before": {"backend": arn(7)}, "after": {"backend": arn(5)}},
        {"ok": False, "rolled_back": True, "before": {"backend": arn(4)}, "after": {"backend": arn(4)}},
        {"ok": True, "before": {"backend": arn(3)}, "after": {"backend": arn(7)}},
    ]
    assert protected("backend", live, entries) == {
        arn(5): ["live"],
        arn(6): ["deployment"],
        arn(7): ["rollback-target"],
        arn(3): ["last-good"],
    }


def test_rollback_target_skips_records_that_changed_nothing() -> None:
    entries = [
        {"before": {"backend": arn(2)}, "after": {"backend": arn(2)}},
        {"before": {"backend": arn(1)}, "after": {"backend": arn(2)}},
    ]
    assert rollback_target("backend", arn(2), entries) == arn(1)
    assert rollback_target("frontend", arn(2), entries) is None
    assert rollback_target("backend", None, entries) is None


def test_last_good_is_the_latest_successful_deploy_not_a_rollback() -> None:
    entries = [
        {"action": "rollback", "ok": True, "before": {"backend": arn(9)}},
        {"ok": False, "before": {"backend": arn(8)}},
        {"ok": True, "before": {"frontend": arn(1)}},
        {"ok": True, "before": {"backend": arn(6)}},
    ]
    assert last_good("backend", entries) == arn(6)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def test_the_bucket_allows_a_burst_then_one_per_second() -> None:
    clock = Clock()
    bucket = TokenBucket(burst=3, rate=1.0, sleep=clock.sleep, clock=lambda: clock.now, tokens=3)
    for _ in range(6):
        bucket.take()
    assert clock.slept == [1.0, 1.0, 1.0]  # 3 at once, then one a second
    assert bucket.slow_down() == 2.0 and bucket.rate == 0.5
    bucket.take()
    assert clock.slept[-1] == 2.0
