"""The per-day lease lock (spark/lake_lock.py) on a local lake and on S3 (a real moto server
over HTTP): one holder at a time, a clear refusal with exit code 4, waiting, release, and a
killed or stalled holder's lease taken over by exactly one run, naming the old holder."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from ingestion.exit_codes import ExitCode
from spark.lake_lock import (
    LOCKED_EXIT_CODE,
    LakeLock,
    Lease,
    LeaseStore,
    LockHeldError,
    LockLostError,
    S3LeaseStore,
    store_for,
)

DAY = dt.date(2024, 1, 2)
REPO = Path(__file__).resolve().parents[2]

StoreFactory = Callable[[], LeaseStore]


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.slow),
        # the conditions as raw headers, as with the older botocore of AWS Glue 5
        pytest.param("s3-headers", marks=pytest.mark.slow),
    ]
)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of stores for one lock (each run opens its own, as separate processes do)."""
    if request.param == "local":
        yield lambda: store_for(str(tmp_path / "lake"), "trusted", DAY)
        return
    url = request.getfixturevalue("moto_server_url")
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    bucket = f"lock-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def open_store() -> LeaseStore:
        store = store_for(f"s3://{bucket}/lake", "trusted", DAY, client=client)
        assert isinstance(store, S3LeaseStore)
        store._native = request.param == "s3"
        return store

    yield open_store


def lock(store: LeaseStore, run_id: str, ttl: float = 60.0) -> LakeLock:
    return LakeLock(store, f"trusted/{DAY}", run_id, ttl_seconds=ttl)


def test_the_locked_exit_code_is_4_everywhere() -> None:
    assert LOCKED_EXIT_CODE == ExitCode.LOCKED == 4


def test_a_second_run_of_the_day_is_refused_naming_the_holder(new_store: StoreFactory) -> None:
    first = lock(new_store(), "run-a")
    first.acquire()
    try:
        with pytest.raises(LockHeldError) as refused:
            lock(new_store(), "run-b").acquire()
        message = str(refused.value)
        assert message.startswith("another run holds this day: trusted/2024-01-02 is locked")
        assert "run run-a" in message and "--lock-wait" in message
        assert refused.value.holder is not None and refused.value.holder.run_id == "run-a"
    finally:
        first.release()
    second = lock(new_store(), "run-b")
    second.acquire()  # free once released
    second.release()
    assert new_store().read() is None


def test_a_waiting_run_takes_the_lock_once_the_holder_releases(new_store: StoreFactory) -> None:
    first = lock(new_store(), "run-a")
    first.acquire()
    threading.Timer(1.0, first.release).start()
    second = lock(new_store(), "run-b")
    started = time.monotonic()
    second.acquire(wait_seconds=30)
    try:
        assert time.monotonic() - started >= 0.9
        held = new_store().read()
        assert held is not None and Lease.from_bytes(held[0]).run_id == "run-b"  # type: ignore[union-attr]
    finally:
        second.release()


def test_an_expired_lease_is_taken_over_and_its_stalled_holder_stops(
    new_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stalled = lock(new_store(), "run-stalled", ttl=0.5)
    assert stalled.try_acquire() is None  # taken, and never renewed (it stalls)
    time.sleep(0.7)
    caplog.set_level(logging.WARNING)
    taker = lock(new_store(), "run-next")
    assert taker.try_acquire() is None
    assert taker.took_over is not None and taker.took_over.run_id == "run-stalled"
    assert "took over the lease" in caplog.text and "from run run-stalled" in caplog.text
    assert "expired at" in caplog.text
    stalled.renew()  # the stalled run wakes up: its renewal finds the lease taken
    with pytest.raises(LockLostError):
        stalled.check()
    stalled.release()  # releases nothing that is not its own
    held = new_store().read()
    assert held is not None and Lease.from_bytes(held[0]).run_id == "run-next"  # type: ignore[union-attr]
    taker.release()


def test_of_runs_racing_for_a_stale_lease_exactly_one_wins(new_store: StoreFactory) -> None:
    dead = lock(new_store(), "run-dead", ttl=0.2)
    assert dead.try_acquire() is None
    time.sleep(0.4)
    contenders = [lock(new_store(), f"run-{n}") for n in range(6)]
    barrier = threading.Barrier(len(contenders))
    outcomes: dict[str, str] = {}

    def contend(contender: LakeLock) -> None:
        barrier.wait()
        holder = contender.try_acquire()
        outcomes[contender.run_id] = "won" if holder is None else holder.run_id

    threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [run for run, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    assert all(outcome in ("won", winners[0]) for outcome in outcomes.values()), outcomes


def test_the_lease_of_a_killed_process_on_this_host_is_taken_over_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    script = (
        "import datetime as dt, sys, time\n"
        "from spark.lake_lock import lake_lock\n"
        f"with lake_lock({str(lake)!r}, 'trusted', dt.date(2024, 1, 2), run_id='run-killed'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError):
            lock(store_for(str(lake), "trusted", DAY), "run-early").acquire()
    finally:
        child.kill()
        child.wait()
    caplog.set_level(logging.WARNING)
    taker = lock(store_for(str(lake), "trusted", DAY), "run-after")
    taker.acquire()  # the lease has 300 s to go, but its process is gone
    taker.release()
    assert taker.took_over is not None and taker.took_over.run_id == "run-killed"
    assert f"its process {child.pid}" in caplog.text and "is gone" in caplog.text


def test_a_renewing_holder_keeps_its_lease_past_the_ttl(new_store: StoreFactory) -> None:
    holder = lock(new_store(), "run-long", ttl=0.6)
    holder.acquire()  # renews every 0.2 s in the background
    try:
        time.sleep(1.2)
        other = lock(new_store(), "run-other")
        assert other.try_acquire() is not None  # still held: refused
        holder.check()
    finally:
        holder.release()
