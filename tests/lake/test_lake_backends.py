"""The same suite against every backend: identical keys, write-once, atomic, list/read/exists."""

from __future__ import annotations

import json
import threading
import time

import pytest

from ingestion import lake as lake_module
from ingestion.lake import (
    LOCK_NAME,
    Lake,
    LakeBusyError,
    LakeConflictError,
    LakeError,
    LocalLake,
    PutResult,
    S3Lake,
    holder_info,
)


def test_put_then_read_back_the_same_bytes(lake: Lake) -> None:
    assert lake.put_bytes("raw/a/b.json", b'{"x": 1}') is PutResult.WRITTEN
    assert lake.get_bytes("raw/a/b.json") == b'{"x": 1}'
    assert lake.exists("raw/a/b.json")
    assert not lake.exists("raw/a/missing.json")


def test_rewriting_same_bytes_is_reported_unchanged(lake: Lake) -> None:
    lake.put_bytes("raw/x.txt", b"same")
    assert lake.put_bytes("raw/x.txt", b"same") is PutResult.UNCHANGED
    assert lake.put_stream("raw/x.txt", [b"sa", b"me"]) is PutResult.UNCHANGED


def test_rewriting_different_bytes_fails_and_keeps_the_first(lake: Lake) -> None:
    lake.put_bytes("raw/x.txt", b"first")
    with pytest.raises(LakeConflictError, match="already exists with different content"):
        lake.put_bytes("raw/x.txt", b"second")
    with pytest.raises(LakeConflictError):
        lake.put_stream("raw/x.txt", [b"third"])
    assert lake.get_bytes("raw/x.txt") == b"first"


def test_large_stream_goes_multipart_and_round_trips(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_module, "CHUNK_SIZE", 5 * 1024 * 1024)  # S3's minimum part size
    data = bytes(range(256)) * (12 * 1024 * 1024 // 256 + 7)  # ~12 MiB: three parts
    chunks = [data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000)]
    assert lake.put_stream("raw/big.bin", chunks) is PutResult.WRITTEN
    assert lake.get_bytes("raw/big.bin") == data
    if isinstance(lake, S3Lake):
        head = lake.client.head_object(
            Bucket=lake.bucket, Key=lake._key("raw/big.bin"), ChecksumMode="ENABLED"
        )
        assert head["ContentLength"] == len(data)
        assert "-3" in head["ETag"]  # a three-part multipart upload


def test_failed_stream_leaves_nothing_visible(lake: Lake) -> None:
    def broken():  # noqa: ANN202
        yield b"half of a file"
        raise ValueError("the source went bad midway")

    with pytest.raises(ValueError, match="midway"):
        lake.put_stream("raw/partial.csv", broken())
    assert not lake.exists("raw/partial.csv")
    assert lake.list("raw/") == []


def test_list_by_prefix_is_sorted_and_relative(lake: Lake) -> None:
    for key in ("raw/b/2.json", "raw/a/1.json", "raw/ab/3.json", "trusted/t/4.parquet"):
        lake.put_bytes(key, b"x")
    assert lake.list("raw/a/") == ["raw/a/1.json"]
    assert lake.list("raw/a") == ["raw/a/1.json", "raw/ab/3.json"]
    assert lake.list("raw/") == ["raw/a/1.json", "raw/ab/3.json", "raw/b/2.json"]
    assert lake.list("nothing/") == []


def test_delete_removes_one_object(lake: Lake) -> None:
    lake.put_bytes("raw/p/leftover.json", b"x")
    lake.put_bytes("raw/p/keep.json", b"y")
    lake.delete("raw/p/leftover.json")
    assert lake.list("raw/p/") == ["raw/p/keep.json"]


def test_reading_a_missing_key_names_it(lake: Lake) -> None:
    with pytest.raises(LakeError, match="nope.json does not exist"):
        lake.get_bytes("raw/nope.json")


@pytest.mark.parametrize("key", ["/abs/key", "raw/../escape", "", "raw\\win"])
def test_keys_that_escape_the_lake_are_refused(lake: Lake, key: str) -> None:
    with pytest.raises(LakeError, match="invalid lake key"):
        lake.put_bytes(key, b"x")


def test_local_and_s3_uris_share_the_key(tmp_path) -> None:  # noqa: ANN001
    key = "raw/local/csv/movies/year=2024/month=03/day=01/movies.csv"
    assert LocalLake(tmp_path).uri(key) == f"{tmp_path}/{key}"
    assert S3Lake(object(), "bucket", "pre/fix/").uri(key) == f"s3://bucket/pre/fix/{key}"


# -- partition locks ---------------------------------------------------------------------------
DAY_PREFIX = "raw/x/year=2024/month=03/day=01/"


def test_a_partition_lock_is_exclusive_and_leaves_nothing_when_released(lake: Lake) -> None:
    with lake.lock(DAY_PREFIX, "20240301T000000Z-first") as held:
        held.check()
        assert lake.list(DAY_PREFIX) == [DAY_PREFIX + LOCK_NAME]
        with pytest.raises(LakeBusyError, match="first .pid .* is writing .*waited 0 s"):
            lake.lock(DAY_PREFIX, "20240301T000000Z-second")
    assert lake.list(DAY_PREFIX) == []
    with lake.lock(DAY_PREFIX, "20240301T000000Z-second", wait=1.0) as second:
        assert second.took_over is None  # released properly: nothing to take over


def test_a_waiting_run_gets_the_lock_when_the_holder_releases_it(lake: Lake) -> None:
    first = lake.lock(DAY_PREFIX, "20240301T000000Z-first")
    timer = threading.Timer(0.5, first.release)
    timer.start()
    try:
        with lake.lock(DAY_PREFIX, "20240301T000000Z-second", wait=30) as second:
            assert second.info["run_id"].endswith("second")
    finally:
        timer.join()


def _moto_server_only(lake: Lake, request: pytest.FixtureRequest) -> S3Lake:
    """Leases are S3's (a local lock is an flock the kernel releases); their timing tests run
    on the HTTP server alone, whose Date header is the clock they are judged by."""
    if not isinstance(lake, S3Lake) or "moto_server" not in request.node.callspec.id:
        pytest.skip("lease timing: S3 over HTTP only (moto_server)")
    return lake


def test_a_lease_of_another_machine_is_kept_until_it_expires(
    lake: Lake, request: pytest.FixtureRequest
) -> None:
    s3 = _moto_server_only(lake, request)
    elsewhere = {**holder_info("20240301T000000Z-elsewhere"), "boot_id": "another-machine"}
    s3.put_bytes(DAY_PREFIX + LOCK_NAME, json.dumps({**elsewhere, "lease_seconds": 1}).encode())
    with pytest.raises(LakeBusyError, match="elsewhere"):
        s3.lock(DAY_PREFIX, "20240301T000000Z-here")  # fresh: its holder may be alive
    time.sleep(2.2)  # Last-Modified counts whole seconds
    with s3.lock(DAY_PREFIX, "20240301T000000Z-here") as held:
        assert held.took_over and held.took_over["run_id"].endswith("elsewhere")


def test_a_held_lease_is_renewed_so_no_one_takes_it_over(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    s3 = _moto_server_only(lake, request)
    monkeypatch.setattr(lake_module, "LEASE_SECONDS", 1.0)  # renewed every 0.25 s
    with s3.lock(DAY_PREFIX, "20240301T000000Z-long") as held:
        time.sleep(2.2)  # past its lease time twice over
        held.check()
        with pytest.raises(LakeBusyError, match="long"):
            s3.lock(DAY_PREFIX, "20240301T000000Z-other")
    assert s3.list(DAY_PREFIX) == []


def test_a_lease_taken_over_is_reported_lost(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    s3 = _moto_server_only(lake, request)
    monkeypatch.setattr(lake_module, "LEASE_SECONDS", 0.4)
    held = s3.lock(DAY_PREFIX, "20240301T000000Z-slow")
    s3.client.put_object(Bucket=s3.bucket, Key=s3._key(DAY_PREFIX + LOCK_NAME), Body=b"{}")
    deadline = time.monotonic() + 5
    while not held.lost and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    with pytest.raises(LakeBusyError, match="lost its lock"):
        held.check()
    held.release()
