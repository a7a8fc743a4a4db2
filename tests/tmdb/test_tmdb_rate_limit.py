"""The token bucket, driven by a fake clock: exact waits, no wall-clock luck."""

from __future__ import annotations

import threading

import pytest

from ingestion.rate_limit import RateLimitCancelled, TokenBucket


class FakeClock:
    """A clock that moves only when someone sleeps; thread-safe."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_tokens_are_spaced_one_interval_apart() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, capacity=1, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.2, 0.2, 0.2, 0.2, 0.2])
    assert clock.now - 1000.0 == pytest.approx(1.0)  # 6 tokens at 5/s: the 6th at t=1.0


def test_capacity_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.1])


def test_idle_time_banks_at_most_capacity_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.sleep(60.0)  # a long quiet spell
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.1])


def test_pause_holds_every_token_until_it_ends() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=1, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.pause_for(2.0)
    assert bucket.acquire() == pytest.approx(2.0)
    assert bucket.acquire() == pytest.approx(0.1)


def test_a_waiter_that_wakes_inside_a_pause_waits_for_its_end() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock, sleep=clock.sleep)
    bucket.acquire()

    def sleep_and_get_paused(seconds: float) -> None:
        # While this caller sleeps for its slot, another worker meets a 429 with Retry-After.
        clock.sleep(seconds)
        if clock.now < 1003.0:
            bucket.pause_for(3.0)

    bucket._sleep = sleep_and_get_paused
    waited = bucket.acquire()
    # Slot at t=1001; the pause set then lasts until t=1004: it must not go before.
    assert clock.now >= 1004.0
    assert waited == pytest.approx(4.0)


def test_many_threads_share_one_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, capacity=1, clock=clock, sleep=lambda _s: None)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            bucket.acquire()
            with lock:
                starts.append(bucket._next_slot - bucket._interval)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 reservations from 8 threads: 200 distinct slots, exactly 1/20 s apart.
    slots = sorted(starts)
    assert len(set(round(s, 9) for s in slots)) == 200
    gaps = {round(b - a, 9) for a, b in zip(slots, slots[1:], strict=False)}
    assert gaps == {0.05}


def test_cancel_interrupts_a_wait() -> None:
    bucket = TokenBucket(rate=0.01, capacity=1)  # one token per 100 s
    bucket.acquire()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RateLimitCancelled):
        bucket.acquire(cancel)


def test_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, capacity=0.5)
