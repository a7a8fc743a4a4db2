"""Hostile CSV input through the whole trusted job: a line over the configured length limit and
a row holding a NUL byte are rejected with reasons of their own; the rest of the file is
intact and the counts reconcile."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pyspark.sql import SparkSession
from spark_raw_builder import RawLakeBuilder, movie_row, series_row

from spark.imdb_transforms import NUL_REASON
from spark.lake_io import TrustedJobError
from spark.long_lines import PREVIEW_BYTES, find_long_lines
from spark.trusted_job import COUNT_KEYS, MAX_LINE_ENV, JobArgs, run_job

pytestmark = pytest.mark.slow

D1 = dt.date(2024, 1, 2)
LIMIT = 2048  # bytes, line ending included
LONG = movie_row("tt0000003", "Long Line", personagem="x" * 5000)  # ~5 KB: over the limit
NUL_AT_FIELD_START = movie_row("tt0000004", "Nul Start", tituloPincipal="\x00Title|\x00")
NUL_INSIDE = movie_row("tt0000005", "Nul Inside", personagem="Her\x00self")
ROWS = [
    movie_row("tt0000001", "Ana Lima"),
    LONG,
    movie_row("tt0000002", "Bia Reis"),
    NUL_AT_FIELD_START,
    NUL_INSIDE,
    movie_row("tt0000006", "Caio Dias", personagem="y" * (LIMIT - 200)),  # long, but fits
    movie_row("tt0000001", "Duda Melo"),
]


@pytest.fixture(scope="module")
def hostile_run(
    spark_session: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    lake = RawLakeBuilder(tmp_path_factory.mktemp("hostile") / "lake")
    lake.csv("movies", D1, ROWS)
    lake.csv("series", D1, [series_row("tt5000001")])
    lake.tmdb_day(D1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MAX_LINE_ENV, str(LIMIT))
        report = run_job(JobArgs(lake.uri, D1), spark=spark_session)
    trusted = lake.root / "trusted"
    rejected = spark_session.read.parquet(str(trusted / "_rejected" / "imdb_movies")).collect()
    credits = spark_session.read.parquet(str(trusted / "imdb_movie_credits")).collect()
    titles = spark_session.read.parquet(str(trusted / "imdb_movies")).collect()
    return {"report": report, "rejected": rejected, "credits": credits, "titles": titles}


def test_a_line_over_the_limit_is_rejected_with_its_reason_and_truncated(
    hostile_run: dict[str, Any],
) -> None:
    [row] = [r for r in hostile_run["rejected"] if r["raw_line"].startswith("tt0000003|")]
    size = len(LONG.encode()) + 1  # with its "\n"
    assert row["reason"] == (
        f"line 3 is {size:,} bytes long, over the {LIMIT:,}-byte limit "
        f"(raw_line keeps its first {PREVIEW_BYTES:,} bytes)"
    )
    assert row["raw_line"] == LONG[:PREVIEW_BYTES]
    assert len(row["raw_line"].encode()) == PREVIEW_BYTES == 1000  # the length the docs state
    assert row["source_key"].endswith("/movies.csv")


def test_a_nul_byte_is_a_rejection_reason_of_its_own(hostile_run: dict[str, Any]) -> None:
    found = {r["raw_line"]: r["reason"] for r in hostile_run["rejected"]}
    # kept as sent, NUL bytes included, even where a NUL starts a field
    assert found[NUL_AT_FIELD_START] == NUL_REASON
    assert found[NUL_INSIDE] == NUL_REASON
    assert len(found) == 3


def test_the_rest_of_the_file_is_intact_and_the_counts_reconcile(
    hostile_run: dict[str, Any],
) -> None:
    artists = sorted(r["artist_name"] for r in hostile_run["credits"])
    assert artists == ["Ana Lima", "Bia Reis", "Caio Dias", "Duda Melo"]
    assert sorted(r["title_id"] for r in hostile_run["titles"]) == [
        "tt0000001",
        "tt0000002",
        "tt0000006",
    ]
    report = hostile_run["report"]
    assert report["status"] == "succeeded" and report["errors"] == []
    counts = {k: report["tables"]["imdb_movie_credits"][k] for k in COUNT_KEYS}
    assert counts == {
        "rows_in": len(ROWS),
        "rows_out": 4,
        "rejected": 3,
        "deduplicated": 0,
    }
    titles = {k: report["tables"]["imdb_movies"][k] for k in COUNT_KEYS}
    assert titles == {"rows_in": len(ROWS), "rows_out": 3, "rejected": 3, "deduplicated": 1}


def test_find_long_lines_streams_the_file(spark_session: SparkSession, tmp_path: Any) -> None:
    path = tmp_path / "lines.csv"
    lines = [b"header", b"a" * 3000, b"short", "é".encode() * 1500, b"b" * 2047, b"c" * 4000]
    path.write_bytes(b"\n".join(lines[:-1]) + b"\r\n" + lines[-1])  # CRLF, no final newline
    found = find_long_lines(spark_session, path.as_uri(), 2048, preview_bytes=1001)
    # b"b" * 2047 plus "\r\n" is 2049 bytes: over the limit too
    assert [(f.number, f.size) for f in found] == [(2, 3001), (4, 3001), (5, 2049), (6, 4000)]
    assert found[1].preview == "é" * 500  # cut back to a whole character
    assert found[0].preview == "a" * 1001
    assert found[2].preview == "b" * 1001
    assert [f.number for f in find_long_lines(spark_session, path.as_uri(), 2049)] == [2, 4, 6]


def test_a_limit_below_the_minimum_is_a_clear_error(
    spark_session: SparkSession, raw_lake: RawLakeBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw_lake.csv("movies", D1, [movie_row("tt0000001")])
    raw_lake.csv("series", D1, [series_row("tt5000001")])
    raw_lake.tmdb_day(D1)
    monkeypatch.setenv(MAX_LINE_ENV, "100")
    with pytest.raises(TrustedJobError, match="at least 1024"):
        run_job(JobArgs(raw_lake.uri, D1), spark=spark_session)


def test_a_bad_limit_on_the_command_line_is_a_usage_error() -> None:
    from spark.trusted_job import main

    assert main(["--run-date", "2024-01-02", "--csv-max-line-bytes", "1 MiB"]) == 2
