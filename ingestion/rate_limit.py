"""One token bucket shared by every thread that calls an API, so all of them together keep
to one request rate.

The bucket is kept as a schedule (the generic cell rate algorithm): each ``acquire`` reserves
the next free slot under a lock and then sleeps, outside the lock, until that slot. Slots are
``1 / rate`` seconds apart; up to ``capacity`` requests may go at once after a quiet spell, never
more. ``pause_for`` (a server answered 429 with ``Retry-After``) moves every later slot past
the pause, and a caller already asleep re-checks the pause when it wakes.

The clock and the sleep are arguments, so a test drives the bucket with a fake clock and
asserts exact waits instead of trusting wall-clock luck.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimitCancelled(RuntimeError):
    """The caller's cancel event was set while it waited for a token."""


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` of them banked; thread-safe."""

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 token, got {capacity!r}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._interval = 1.0 / self.rate
        self._tolerance = (self.capacity - 1.0) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = clock()  # the theoretical time of the next token (GCRA's "TAT")
        self._paused_until = float("-inf")

    def _reserve(self) -> tuple[float, float]:
        """Reserve one slot; return (now, the time the slot starts)."""
        with self._lock:
            now = self._clock()
            base = max(self._next_slot, now, self._paused_until)
            start = max(now, base - self._tolerance, self._paused_until)
            self._next_slot = base + self._interval
            return now, start

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Take one token, waiting as long as needed; return the seconds waited."""
        waited = 0.0
        while True:
            now, start = self._reserve()
            delay = start - now
            if delay > 0:
                if cancel is not None:
                    if cancel.wait(delay):
                        raise RateLimitCancelled("cancelled while waiting for a request slot")
                else:
                    self._sleep(delay)
                waited += delay
            with self._lock:
                paused_until = self._paused_until
            if self._clock() >= paused_until:
                return waited

    def pause_for(self, seconds: float) -> None:
        """Issue no token for ``seconds`` from now (e.g. a 429's ``Retry-After``)."""
        if seconds <= 0:
            return
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
