"""core.fanout.each: results in the items' order, every call finished before the first failure (in that order) is
raised, at most `workers` at once."""

from __future__ import annotations

import threading
import time

import pytest

from arbiter_ops.core.fanout import each


def test_results_keep_the_items_order_whatever_finishes_first() -> None:
    assert each([3, 1, 2], lambda n: time.sleep(n / 100) or n * 10) == [30, 10, 20]


def test_every_call_finishes_and_the_first_failure_in_order_is_raised() -> None:
    finished: list[int] = []

    def call(n: int) -> int:
        time.sleep((5 - n) / 100)  # the later items fail first
        finished.append(n)
        if n in (2, 4):
            raise ValueError(f"item {n}")
        return n

    with pytest.raises(ValueError, match="item 2"):
        each([0, 1, 2, 3, 4], call)
    assert sorted(finished) == [0, 1, 2, 3, 4]  # nothing runs on behind the caller


def test_no_more_than_workers_at_once() -> None:
    lock, now, most = threading.Lock(), [0], [0]

    def call(_: int) -> None:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.02)
        with lock:
            now[0] -= 1

    each(list(range(12)), call, workers=4)
    assert 2 <= most[0] <= 4
    most[0] = 0
    each(list(range(12)), call, workers=1)  # one at a time, in this thread
    assert most[0] == 1
