"""Adaptive polling shared by every wait (rollouts, migration tasks): fast at first, slower later.

``ARBITER_OPS_POLL_INTERVAL`` sets the first interval in seconds (tests use a small one); a value that is
not a positive number is bad input (exit 2), never a traceback.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from arbiter_ops.core.errors import UsageError

POLL_ENV = "ARBITER_OPS_POLL_INTERVAL"
WAIT_TIMEOUT = 900.0  # seconds: the default of every rollout and migration wait (--timeout)


@dataclass(frozen=True)
class PollPolicy:
    """``initial`` seconds, growing by ``factor`` up to ``maximum``."""

    initial: float = 1.0
    maximum: float = 5.0
    factor: float = 1.5

    @classmethod
    def from_env(cls, initial: float = 1.0, maximum: float = 5.0) -> PollPolicy:
        raw = os.environ.get(POLL_ENV)
        if not raw:
            return cls(initial, maximum)
        try:
            first = float(raw)
        except ValueError:
            raise UsageError(f"{POLL_ENV}={raw!r} is not a number of seconds") from None
        if not (math.isfinite(first) and first > 0):
            raise UsageError(f"{POLL_ENV} must be a positive, finite number of seconds, not {raw[:40]!r}")
        return cls(initial=first, maximum=max(first, maximum))

    def intervals(self) -> Iterator[float]:
        interval = self.initial
        while True:
            yield interval
            interval = min(interval * self.factor, self.maximum)


class Pacer:
    """A token bucket on our side of an API quota: :meth:`take` waits (and says so once) when it is empty."""

    def __init__(
        self,
        burst: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.burst, self.per_second = burst, per_second
        self.tokens = float(burst)
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.waited = 0.0
        self._lock = threading.Lock()

    def take(self, on_first_wait: Callable[[float], None] | None = None) -> None:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
            self.stamp = now
            if self.tokens < 1:
                wait = (1 - self.tokens) / self.per_second
                if self.waited == 0 and on_first_wait is not None:
                    on_first_wait(wait)
                self.waited += wait
                self.sleep(wait)
                self.tokens, self.stamp = 1.0, self.clock()
            self.tokens -= 1
