"""CSV landing on every backend (the ``lake`` fixture): layout, idempotence, refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ingestion.csv_landing import CsvValidationError, land_csv
from ingestion.csv_schema import MOVIES_HEADER, SERIES_HEADER
from ingestion.lake import (
    LOCK_NAME,
    Lake,
    LakeBusyError,
    LakeConflictError,
    S3Lake,
    holder_info,
)

DAY = dt.date(2024, 3, 1)
PREFIX = "raw/local/csv/movies/year=2024/month=03/day=01/"
ROW = "tt0000001|Night|Night|1990|90|Horror|7.1|100|actor|Self|Ana Silva|1950|\\N|actor|tt0000002"


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _movies(tmp_path: Path, rows: list[str], name: str = "movies.csv", eol: str = "\r\n") -> Path:
    return _write(tmp_path / name, eol.join(["|".join(MOVIES_HEADER), *rows]) + eol)


def test_lands_file_manifest_and_success_under_the_raw_layout(lake: Lake, tmp_path: Path) -> None:
    bad = ROW.rsplit("|", 1)[0]  # one field short: landed as sent, counted
    src = _movies(tmp_path, [ROW, bad, ROW.replace("tt0000001", "tt0000003")])
    result = land_csv(lake, "movies", src, DAY)
    assert result.status == "written"
    assert lake.list(PREFIX) == [
        PREFIX + "_SUCCESS",
        PREFIX + "_manifest.json",
        PREFIX + "movies.csv",
    ]
    assert lake.get_bytes(PREFIX + "movies.csv") == src.read_bytes()  # as sent, CRLF and all
    manifest = json.loads(lake.get_bytes(PREFIX + "_manifest.json"))
    assert manifest["rows"] == 3 and manifest["bad_field_count_rows"] == 1
    assert manifest["bad_field_count_lines"] == [3]
    assert manifest["source_file"] == "movies.csv" and len(manifest["sha256"]) == 64
    assert manifest["bytes"] == src.stat().st_size and manifest["run_id"]
    assert manifest["files"] == [
        {"key": PREFIX + "movies.csv", "records": 3, "sha256": manifest["sha256"],
         "bytes": manifest["bytes"]}
    ]  # fmt: skip


def test_landing_the_same_file_twice_is_unchanged(lake: Lake, tmp_path: Path) -> None:
    src = _movies(tmp_path, [ROW])
    land_csv(lake, "movies", src, DAY)
    before = {k: lake.get_bytes(k) for k in lake.list(PREFIX)}
    again = land_csv(lake, "movies", src, DAY)
    assert again.status == "unchanged" and again.rows == 1
    assert {k: lake.get_bytes(k) for k in lake.list(PREFIX)} == before


def test_a_different_file_for_the_same_day_fails_and_keeps_the_first(
    lake: Lake, tmp_path: Path
) -> None:
    first = _movies(tmp_path, [ROW], "first.csv")
    land_csv(lake, "movies", first, DAY)
    second = _movies(tmp_path, [ROW, ROW.replace("1990", "1991")], "second.csv")
    with pytest.raises(LakeConflictError, match="already landed for 2024-03-01 from first.csv"):
        land_csv(lake, "movies", second, DAY)
    assert lake.get_bytes(PREFIX + "movies.csv") == first.read_bytes()
    # another day is a new partition and lands fine
    assert land_csv(lake, "movies", second, dt.date(2024, 3, 2)).status == "written"


def test_an_interrupted_landing_is_redone(lake: Lake, tmp_path: Path) -> None:
    lake.put_bytes(PREFIX + "movies.csv", b"half a file from a crashed run")
    src = _movies(tmp_path, [ROW])
    assert land_csv(lake, "movies", src, DAY).status == "written"
    assert lake.get_bytes(PREFIX + "movies.csv") == src.read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "|".join(MOVIES_HEADER[:-1]) + "\n" + ROW + "\n",
            "missing column.s. titulosMaisConhecidos",
        ),
        ("|".join(SERIES_HEADER) + "\n" + ROW + "\n", "unexpected column.s. anoTermino"),
        (",".join(MOVIES_HEADER) + "\n" + ROW.replace("|", ",") + "\n", "uses ',' as separator"),
        ("|".join(MOVIES_HEADER) + "\r\n", "has a header but no data rows"),
        ("", "is empty"),
        (b"\xef\xbb\xbf" + "|".join(MOVIES_HEADER).encode() + b"\n", "byte-order mark"),
        ("|".join(MOVIES_HEADER) + "\n" + ROW + "\n" + "tt9|Caf\xe9", "not valid UTF-8"),
    ],
    ids=["missing-column", "extra-column", "separator", "no-rows", "empty", "bom", "latin1"],
)
def test_bad_files_are_refused_and_nothing_lands(
    lake: Lake, tmp_path: Path, content: str | bytes, message: str
) -> None:
    if isinstance(content, str) and "\xe9" in content:
        content = content.encode("latin-1")  # a Latin-1 é: invalid UTF-8 after the header
    src = _write(tmp_path / "movies.csv", content)
    with pytest.raises(CsvValidationError, match=message):
        land_csv(lake, "movies", src, DAY)
    assert lake.list("raw/") == []


def test_a_missing_file_names_the_setting(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match="does not exist: set MOVIES_CSV"):
        land_csv(lake, "movies", tmp_path / "nope.csv", DAY)


# -- large files: the overlapped pass, multipart uploads -------------------------------------
def _big_movies(tmp_path: Path, mib: int, bad_at_mib: float | None = None) -> Path:
    """A movies file of about ``mib`` MiB of valid rows; with ``bad_at_mib``, one Latin-1 byte
    (invalid UTF-8) in a row that far into the file."""
    row = (ROW + "\r\n").encode()
    rows = mib * 1024 * 1024 // len(row) + 1
    head = ("|".join(MOVIES_HEADER) + "\r\n").encode()
    if bad_at_mib is None:
        return _write(tmp_path / "movies.csv", head + row * rows)
    before = int(bad_at_mib * 1024 * 1024) // len(row)
    bad = row.replace(b"Night|Night", b"Nuit|Caf\xe9")
    return _write(tmp_path / "movies.csv", head + row * before + bad + row * (rows - before))


def _s3_calls(lake: Lake) -> list[tuple[str, str]]:
    """(operation, upload id) of every S3 call the lake's client completes from now on."""
    calls: list[tuple[str, str]] = []

    def record(http_response, parsed, model, **_kwargs) -> None:  # noqa: ANN001
        upload = parsed.get("UploadId") or ""
        calls.append((model.name, upload))

    lake.client.meta.events.register("after-call.s3", record)  # type: ignore[attr-defined]
    return calls


def test_a_large_file_lands_whole_with_counts_and_hash(lake: Lake, tmp_path: Path) -> None:
    src = _big_movies(tmp_path, 12)  # two 8 MiB parts on S3
    result = land_csv(lake, "movies", src, DAY)
    data = src.read_bytes()
    assert result.status == "written" and result.bytes == len(data)
    assert result.rows == data.count(b"\n") - 1 and result.bad_field_count_rows == 0
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert lake.sha256(PREFIX + "movies.csv") == result.sha256
    assert lake.list(PREFIX) == [PREFIX + "_SUCCESS", PREFIX + "_manifest.json",
                                 PREFIX + "movies.csv"]  # fmt: skip


def test_bad_rows_on_chunk_boundaries_are_counted_by_line(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small chunks put line ends, bad rows and multi-byte characters on chunk boundaries."""
    import ingestion.csv_landing as landing

    monkeypatch.setattr(landing, "READ_SIZE", 97)
    rows = [ROW.replace("Night", "Noite é" * (i % 5)) for i in range(400)]
    rows[10] = rows[10] + "|extra"  # line 12
    rows[200] = rows[200].rsplit("|", 2)[0]  # line 202
    rows[201] = ""  # an empty line is a row with one field: line 203
    src = _movies(tmp_path, rows, eol="\n")
    result = land_csv(lake, "movies", src, DAY)
    assert result.rows == 400 and result.bad_field_count_lines == [12, 202, 203]
    assert lake.get_bytes(PREFIX + "movies.csv") == src.read_bytes()


@pytest.mark.parametrize("read_size", [509, 4099])
def test_field_counts_equal_a_line_by_line_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_size: int
) -> None:
    """Random rows (separators missing, extra, 256 too many; lines longer than a chunk) are
    counted exactly as ``line.count("|")`` would, at any chunk size."""
    import random

    import ingestion.csv_landing as landing
    from ingestion.lake import LocalLake

    monkeypatch.setattr(landing, "MAX_BAD_LINES_LISTED", 10_000)
    monkeypatch.setattr(landing, "READ_SIZE", read_size)
    pick = random.Random(read_size)
    fields = len(MOVIES_HEADER)
    rows = []
    for _ in range(3000):
        count = pick.choice([fields] * 6 + [fields - 1, fields + 1, 1, fields + 256])
        rows.append("|".join(pick.choice(["", "x", "é" * pick.randint(1, 40)])
                             for _ in range(count)))  # fmt: skip
    src = _movies(tmp_path, rows, eol=pick.choice(["\n", "\r\n"]))
    expected = [n for n, row in enumerate(rows, start=2) if row.count("|") != fields - 1]
    result = land_csv(LocalLake(tmp_path / "lake"), "movies", src, DAY)
    assert result.rows == 3000 and result.bad_field_count_rows == len(expected)
    assert result.bad_field_count_lines == expected


def test_a_last_line_without_line_break_is_a_row(lake: Lake, tmp_path: Path) -> None:
    src = _write(tmp_path / "movies.csv", "|".join(MOVIES_HEADER) + "\n" + ROW + "\n" + ROW)
    assert land_csv(lake, "movies", src, DAY).rows == 2


def test_a_file_that_goes_bad_past_the_first_part_lands_nothing_and_aborts_its_uploads(
    lake: Lake, tmp_path: Path
) -> None:
    src = _big_movies(tmp_path, 24, bad_at_mib=20)  # 8 MiB parts: the third goes bad
    calls = _s3_calls(lake) if isinstance(lake, S3Lake) else []
    with pytest.raises(CsvValidationError, match=r"not valid UTF-8 near byte 2097\d{4}"):
        land_csv(lake, "movies", src, DAY)
    assert lake.list("raw/") == []  # not the data, not a manifest, not the lock
    if isinstance(lake, S3Lake):
        started = {u for op, u in calls if op == "CreateMultipartUpload"}
        assert len(started) == 1  # a multipart upload was under way ...
        assert sum(op == "UploadPart" for op, _ in calls) >= 1  # ... with parts sent,
        assert ("AbortMultipartUpload", "") in calls  # and it was aborted:
        full = lake._key("raw/")
        uploads = lake.client.list_multipart_uploads(Bucket=lake.bucket, Prefix=full)
        assert uploads.get("Uploads", []) == []  # nothing left to complete or to bill
    else:
        assert [p.name for p in (lake.root / "raw").rglob("*") if p.is_file()] == []


# -- two runs of one day ----------------------------------------------------------------------
def test_two_identical_landings_started_together_are_written_and_unchanged(
    lake: Lake, tmp_path: Path
) -> None:
    src = _big_movies(tmp_path, 12)  # two parts: the first run is still writing
    start = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def land() -> None:
        start.wait()
        try:
            results.append(land_csv(lake, "movies", src, DAY).status)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=land) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == ["unchanged", "written"]
    assert lake.list(PREFIX) == [PREFIX + "_SUCCESS", PREFIX + "_manifest.json",
                                 PREFIX + "movies.csv"]  # fmt: skip
    assert lake.get_bytes(PREFIX + "movies.csv") == src.read_bytes()


def test_a_landing_gives_up_when_another_run_keeps_the_day(lake: Lake, tmp_path: Path) -> None:
    src = _movies(tmp_path, [ROW])
    with lake.lock(PREFIX, "20240301T000000Z-otherrun"):
        with pytest.raises(LakeBusyError, match="another run holds this day: run 20240301T"):
            land_csv(lake, "movies", src, DAY, wait=0.3)
        assert lake.list(PREFIX) == [PREFIX + LOCK_NAME]  # only the other run's lock
    assert land_csv(lake, "movies", src, DAY).status == "written"
    assert LOCK_NAME not in " ".join(lake.list(PREFIX))


def test_a_lock_left_by_a_dead_run_is_taken_over(
    lake: Lake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    info = {**holder_info("20240301T000000Z-deadbeef"), "pid": int(dead.stdout)}
    lake.put_bytes(PREFIX + LOCK_NAME, json.dumps(info).encode())
    lake.put_bytes(PREFIX + "movies.csv", b"half a file from the dead run")
    src = _movies(tmp_path, [ROW])
    with caplog.at_level(logging.INFO):
        assert land_csv(lake, "movies", src, DAY, wait=0).status == "written"
    assert "took over the lock" in caplog.text and "deadbeef" in caplog.text
    assert "removed 1 leftover(s) of an interrupted landing" in caplog.text
    assert lake.list(PREFIX) == [PREFIX + "_SUCCESS", PREFIX + "_manifest.json",
                                 PREFIX + "movies.csv"]  # fmt: skip


# -- sources that are not regular, readable files ---------------------------------------------
def test_a_directory_gets_its_own_message(lake: Lake, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _movies(folder, [ROW])
    with pytest.raises(CsvValidationError, match="is a directory, not a file: set MOVIES_CSV"):
        land_csv(lake, "movies", folder, DAY)
    with pytest.raises(CsvValidationError, match=r"this folder holds .*movies.csv"):
        land_csv(lake, "movies", folder, DAY)


def test_a_fifo_gets_its_own_message_and_is_never_opened(lake: Lake, tmp_path: Path) -> None:
    fifo = tmp_path / "movies.csv"
    os.mkfifo(fifo)  # opening it for reading would block forever: it must not be opened
    with pytest.raises(CsvValidationError, match=r"is a named pipe \(FIFO\), not a regular file"):
        land_csv(lake, "movies", fifo, DAY)
    assert lake.list("raw/") == []
