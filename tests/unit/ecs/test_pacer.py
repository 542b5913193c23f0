"""The client-side token bucket that keeps RegisterTaskDefinition within ECS's quota (a fake clock: no sleeping)."""

from __future__ import annotations

from arbiter_ops.core.polling import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_goes_at_once_then_one_per_second_and_the_wait_is_said_once() -> None:
    clock = FakeClock()
    pacer = Pacer(20, 1.0, clock=clock, sleep=clock.sleep)
    said: list[float] = []
    for _ in range(30):
        pacer.take(said.append)
    assert len(clock.slept) == 10 and abs(sum(clock.slept) - 10.0) < 1e-9
    assert said == [1.0]


def test_idle_time_refills_the_bucket_up_to_its_size() -> None:
    clock = FakeClock()
    pacer = Pacer(3, 1.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        pacer.take()
    clock.now += 100  # long idle: back to 3, not 100
    for _ in range(3):
        pacer.take()
    assert clock.slept == []
    pacer.take()
    assert clock.slept == [1.0]
