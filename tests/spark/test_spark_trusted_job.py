"""The whole trusted job on small raw lakes written in the contract's layout: real local Spark,
real parquet, read back and checked."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from spark_raw_builder import (
    RawLakeBuilder,
    details,
    discover_movie,
    discover_page,
    genre_list,
    movie_row,
    series_row,
)

from spark.lake_io import LakeFS, RawFile, TrustedJobError
from spark.trusted_job import JobArgs, main, read_lines, run_job

pytestmark = pytest.mark.slow  # a real SparkSession

D0, D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
IMDB_TABLES = [
    "imdb_movies",
    "imdb_movie_credits",
    "imdb_movie_genres",
    "imdb_series",
    "imdb_series_credits",
    "imdb_series_genres",
]
TMDB_TABLES = ["tmdb_movie_snapshots", "tmdb_movie_details", "tmdb_genres"]
ALL_TABLES = IMDB_TABLES + TMDB_TABLES
COUNT_KEYS = ("rows_in", "rows_out", "rejected", "deduplicated")


def row_counts(entry: dict[str, Any]) -> dict[str, int]:
    """The row counts of a report's table entry (IMDb entries also say what they were built
    from and whether they were skipped: tests/spark/test_trusted_skip.py)."""
    return {key: entry[key] for key in COUNT_KEYS}


# The movies landing of D1 (CRLF): one entry per data line, with what must become of it.
MOVIE_ROWS = [
    movie_row("tt0000001", "Ana Lima"),
    movie_row("tt0000001", "Bia Reis"),
    movie_row("tt0000001", "Ana Lima"),  # exact duplicate of the first line
    movie_row("tt0000002", "Caio Dias", anoNascimento="\\N"),
    movie_row("tt0000002", "Duda Melo", anoNascimento="\\N", profissao=""),
    movie_row("tt0000003", "Eva Cruz", anoLancamento="19x9"),  # the title's only row: rejected
    movie_row("tt0000004", "Gil Rosa", tituloPincipal='Say "Hi"'),
    movie_row("tt0000004", "Ivo Lins", notaMedia="abc"),  # rejected, the title survives
    "tt0000005|Too|few",
    movie_row("tt0000006", "Lia Paz") + "|one too many",
    movie_row("tt0000007", "Mia Sol", anoLancamento="\\N", tempoMinutos="\\N", genero="\\N"),
    movie_row("tt0000008", "Nei Dias", personagem="Her\rself"),  # a lone CR inside: rejected
]
REJECTED_MOVIE_LINES = {
    MOVIE_ROWS[5]: "anoLancamento is not an integer: '19x9'",
    MOVIE_ROWS[7]: "notaMedia is not a decimal number: 'abc'",
    MOVIE_ROWS[8]: "wrong field count: 3 fields, expected 15",
    MOVIE_ROWS[9]: "wrong field count: 16 fields, expected 15",
    MOVIE_ROWS[11]: "a carriage return (\\r) inside the line, not at its end",
}
SERIES_ROWS = [
    series_row("tt5000001", "Nina Luz"),
    series_row("tt5000001", "Otto Vaz", anoTermino="\\N"),
    series_row("tt5000002", "Pia Gomes", anoTermino="20x3"),
]


def land_scenario(lake: RawLakeBuilder) -> None:
    """Two CSV landings around D1 that must be ignored, the D1 landing, and TMDB D1 and D2."""
    lake.csv("movies", D0, [movie_row("tt0000099", "Old Landing")])
    lake.csv("movies", D1, MOVIE_ROWS, newline="\r\n")
    lake.leftover("raw/local/csv/movies/year=2024/month=01/day=02/movies.csv.tmp")
    lake.csv("movies", D2, [movie_row("tt0000777", "Unfinished")], complete=False)
    lake.csv("series", D1, SERIES_ROWS)
    d1_movies = [discover_movie(1), discover_movie(2, overview="", release_date="")]
    lake.tmdb(
        "discover",
        D1,
        [discover_page(d1_movies), discover_page([discover_movie(1)], page=2), "{broken"],
        files=2,
    )
    lake.tmdb("movie_details", D1, [details(1, "tt0000001"), details(2, "")])
    lake.tmdb("genres", D1, [genre_list([(27, "Terror"), (53, "Suspense")])])
    lake.tmdb_day(D2, [discover_movie(1, popularity=99.0), discover_movie(3)])


def read_table(spark: SparkSession, root: Path, table: str) -> list[tuple]:
    """A table's rows as sorted, hashable tuples (lists become tuples)."""
    rows = spark.read.parquet(str(root / "trusted" / table)).collect()
    as_tuples = [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows]
    return sorted(as_tuples, key=repr)


def snapshot(spark: SparkSession, root: Path) -> dict[str, list[tuple]]:
    tables = {t: read_table(spark, root, t) for t in ALL_TABLES}
    tables["_rejected/imdb_movies"] = read_table(spark, root, "_rejected/imdb_movies")
    return tables


@pytest.fixture(scope="module")
def scenario(
    spark_session: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Run D1, D1 again, then D2 on one lake; keep each run's report and tables."""
    lake = RawLakeBuilder(tmp_path_factory.mktemp("scenario") / "lake")
    land_scenario(lake)
    results: dict[str, Any] = {"root": lake.root}
    for name, date in (("first", D1), ("again", D1), ("next_day", D2)):
        report = run_job(JobArgs(lake.uri, date), spark=spark_session)
        results[name] = {"report": report, "tables": snapshot(spark_session, lake.root)}
    return results


def test_bad_csv_rows_land_in_rejected_with_their_reason(scenario: dict[str, Any]) -> None:
    rejected = scenario["first"]["tables"]["_rejected/imdb_movies"]
    found = {row[0]: row[1] for row in rejected}
    assert found == REJECTED_MOVIE_LINES
    source_keys = {row[2] for row in rejected}
    assert source_keys == {"raw/local/csv/movies/year=2024/month=01/day=02/movies.csv"}


def test_counts_reconcile_exactly_with_the_tables(scenario: dict[str, Any]) -> None:
    report, tables = scenario["first"]["report"], scenario["first"]["tables"]
    credits = row_counts(report["tables"]["imdb_movie_credits"])
    assert credits == {
        "rows_in": len(MOVIE_ROWS),
        "rows_out": len(tables["imdb_movie_credits"]),
        "rejected": len(tables["_rejected/imdb_movies"]),
        "deduplicated": 1,
    }
    assert credits["rows_in"] == credits["rows_out"] + credits["rejected"] + credits["deduplicated"]
    for table, counts in report["tables"].items():
        assert counts["rows_out"] == len(tables[table]), table
        total = counts["rows_out"] + counts["rejected"] + counts["deduplicated"]
        assert counts["rows_in"] == total, table
    assert report["tables"]["tmdb_movie_snapshots"] == {
        "rows_in": 4,
        "rows_out": 2,
        "rejected": 1,
        "deduplicated": 1,
    }
    assert report["status"] == "succeeded" and report["errors"] == []


def test_every_raw_title_is_in_its_titles_table_exactly_once(scenario: dict[str, Any]) -> None:
    tables = scenario["first"]["tables"]
    title_ids = [row[0] for row in tables["imdb_movies"]]
    rejected = set(REJECTED_MOVIE_LINES)
    raw_ids = {line.split("|")[0] for line in MOVIE_ROWS}
    valid_ids = {line.split("|")[0] for line in MOVIE_ROWS if line not in rejected}
    assert sorted(title_ids) == sorted(valid_ids)  # each once
    # the titles that had no valid row are all in _rejected
    rejected_ids = {row[0].split("|")[0] for row in tables["_rejected/imdb_movies"]}
    assert raw_ids - valid_ids <= rejected_ids
    assert {"tt0000002", "tt0000007"} <= set(title_ids)  # no birth years / all nulls: kept
    titles = {row[0]: row for row in tables["imdb_movies"]}
    assert titles["tt0000007"][1:] == (
        "Title tt0000007",
        "Original tt0000007",
        None,
        None,
        None,
        6.5,
        120,
    )
    assert titles["tt0000004"][1] == 'Say "Hi"'
    series_ids = sorted(row[0] for row in tables["imdb_series"])
    assert series_ids == ["tt5000001"]


def test_every_raw_row_is_in_credits_or_rejected(scenario: dict[str, Any]) -> None:
    tables = scenario["first"]["tables"]
    credit_keys = {(row[0], row[1]) for row in tables["imdb_movie_credits"]}
    rejected_lines = {row[0] for row in tables["_rejected/imdb_movies"]}
    for line in MOVIE_ROWS:
        fields = line.split("|")
        assert line in rejected_lines or (fields[0], fields[10]) in credit_keys, line
    assert ("tt0000099", "Old Landing") not in credit_keys  # an older landing is not read
    assert ("tt0000777", "Unfinished") not in credit_keys  # nor an incomplete one


def test_crlf_input_leaves_no_carriage_return_anywhere(scenario: dict[str, Any]) -> None:
    def values(row: tuple) -> list[str]:
        out = []
        for v in row:
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, tuple):
                out.extend(x for x in v if isinstance(x, str))
        return out

    lone_cr = MOVIE_ROWS[11]  # rejected, and its raw line is kept as sent, CR included
    for table, rows in scenario["first"]["tables"].items():
        assert rows or table == "imdb_series_genres" or table.startswith("_"), table
        for row in rows:
            if table.startswith("_rejected") and row[0] == lone_cr:
                continue
            assert not any("\r" in v for v in values(row)), (table, row)
    credits = {row[1]: row for row in scenario["first"]["tables"]["imdb_movie_credits"]}
    assert credits["Mia Sol"][-1] == ("tt0000001", "tt0000002")  # the last field, clean
    assert credits["Duda Melo"][-2] == ()  # empty profissao: an empty list


def test_rerunning_a_date_gives_the_same_trusted_rows(scenario: dict[str, Any]) -> None:
    first, again = scenario["first"]["tables"], scenario["again"]["tables"]
    for table in first:
        assert again[table] == first[table], table
    assert scenario["first"]["report"]["run_id"] != scenario["again"]["report"]["run_id"]
    runs = list((scenario["root"] / "trusted" / "_runs").glob("*.json"))
    assert len(runs) == 3


def test_a_second_date_leaves_the_first_dates_partitions_intact(scenario: dict[str, Any]) -> None:
    first = scenario["first"]["tables"]["tmdb_movie_snapshots"]
    after = scenario["next_day"]["tables"]["tmdb_movie_snapshots"]
    d1_after = [row for row in after if row[12] == D1]
    d2_after = [row for row in after if row[12] == D2]
    assert d1_after == first
    assert sorted(row[0] for row in d2_after) == [1, 3]
    assert {row[0]: row[5] for row in d2_after}[1] == 99.0
    # details accumulate across complete partitions: the movie first seen on D2 joins
    details_ids = sorted(row[0] for row in scenario["next_day"]["tables"]["tmdb_movie_details"])
    assert details_ids == [1, 2, 3]
    imdb_ids = {row[0]: row[1] for row in scenario["first"]["tables"]["tmdb_movie_details"]}
    assert imdb_ids == {1: "tt0000001", 2: None}
    # the IMDb tables come from the same (latest complete) landing on both dates
    for table in IMDB_TABLES:
        assert scenario["next_day"]["tables"][table] == scenario["first"]["tables"][table]


def test_empty_and_header_only_partitions_give_empty_tables(
    spark_session: SparkSession, raw_lake: RawLakeBuilder
) -> None:
    raw_lake.csv("movies", D1, [])  # header only
    raw_lake.csv("series", D1, [], header=False)  # zero bytes
    raw_lake.tmdb("discover", D1, [discover_page([])])
    raw_lake.tmdb("movie_details", D1, [])
    raw_lake.tmdb("genres", D1, [genre_list([])])
    report = run_job(JobArgs(raw_lake.uri, D1), spark=spark_session)
    for table in ALL_TABLES:
        assert row_counts(report["tables"][table]) == {
            "rows_in": 0,
            "rows_out": 0,
            "rejected": 0,
            "deduplicated": 0,
        }, table
    for table in IMDB_TABLES + ["tmdb_movie_details", "tmdb_genres"]:
        frame = spark_session.read.parquet(str(raw_lake.root / "trusted" / table))
        assert frame.count() == 0 and frame.columns, table


def test_no_complete_partition_stops_naming_what_is_missing(
    spark_session: SparkSession, raw_lake: RawLakeBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    raw_lake.csv("movies", D1, [movie_row("tt0000001")], complete=False)
    raw_lake.csv("series", D1, [series_row("tt5000001")])
    raw_lake.tmdb("discover", D1, [discover_page([discover_movie(1)])], complete=False)
    raw_lake.tmdb("genres", D1, [genre_list([(27, "Terror")])])
    with pytest.raises(TrustedJobError) as failure:
        run_job(JobArgs(raw_lake.uri, D1), spark=spark_session)
    message = str(failure.value)
    assert "raw/local/csv/movies: 1 partition(s) on or before 2024-01-02, none complete" in message
    assert "raw/tmdb/json/discover: 1 partition(s) for 2024-01-02, none complete" in message
    assert "no _SUCCESS" in message
    assert "raw/tmdb/json/movie_details: no partition on or before 2024-01-02" in message
    assert "raw/local/csv/series" not in message and "genres" not in message
    # nothing written: at most the (empty) folder of the day's lock, released
    trusted = raw_lake.root / "trusted"
    assert [str(p.relative_to(trusted)) for p in trusted.rglob("*")] in ([], ["_locks"])

    caplog.set_level(logging.ERROR)
    assert main(["--lake-uri", raw_lake.uri, "--run-date", "2024-01-02"]) == 1
    assert "none complete (no _SUCCESS)" in caplog.text


def test_counts_that_do_not_reconcile_fail_the_run(
    spark_session: SparkSession, raw_lake: RawLakeBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    # The landing counted 3 data rows; the file holds 2: raw != trusted + rejected + deduped.
    raw_lake.csv("movies", D1, [movie_row("tt0000001"), movie_row("tt0000002")], records=3)
    raw_lake.csv("series", D1, [series_row("tt5000001")])
    raw_lake.tmdb_day(D1)
    caplog.set_level(logging.ERROR)
    assert main(["--lake-uri", raw_lake.uri, "--run-date", "2024-01-02"]) == 1
    assert "do not reconcile" in caplog.text
    assert "the manifest counts 3 data rows but the job read 2" in caplog.text
    [report_file] = (raw_lake.root / "trusted" / "_runs").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report["status"] == "failed" and len(report["errors"]) == 1


def test_s3_lake_without_hadoop_aws_says_how_to_add_it(spark_session: SparkSession) -> None:
    with pytest.raises(TrustedJobError) as failure:
        run_job(JobArgs("s3://movie-lake-test/lake", D1), spark=spark_session)
    message = str(failure.value)
    assert "org.apache.hadoop.fs.s3a.S3AFileSystem" in message
    assert "--packages org.apache.hadoop:hadoop-aws:3.3.4" in message


def test_bad_run_date_is_a_usage_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    assert main(["--run-date", "2024-02-30"]) == 2
    assert "RUN_DATE '2024-02-30' is not a date" in caplog.text


def test_a_datasets_partitions_are_checked_several_at_a_time_and_listed_in_order(
    spark_session: SparkSession, raw_lake: RawLakeBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On S3 each check is a request: one after another, a year of daily partitions would make
    # the planning grow with the history. Every check here waits until 4 are under way at
    # once: checked one at a time, the first would time out.
    days = [D0 + dt.timedelta(days=n) for n in range(20)]
    for day in days:
        raw_lake.tmdb("genres", day, [genre_list([(27, "Terror")])])
    lake = LakeFS(spark_session, f"file://{raw_lake.root}")
    together = threading.Barrier(4, timeout=5)
    exists = LakeFS.exists

    def exists_with_three_others(self: LakeFS, key_or_uri: str) -> bool:
        together.wait()
        return exists(self, key_or_uri)

    monkeypatch.setattr(LakeFS, "exists", exists_with_three_others)
    partitions = lake.partitions("raw/tmdb/json/genres")
    assert [p.date for p in partitions] == days and all(p.complete for p in partitions)


def test_a_years_partitions_are_read_in_one_scan_with_each_lines_key_and_date(
    spark_session: SparkSession, raw_lake: RawLakeBuilder
) -> None:
    # The genres and details grow by one partition a day: one scan of them all, not a scan
    # (and a union) per partition, so the job's plan does not grow with the history.
    days = [D0 + dt.timedelta(days=n) for n in range(365)]
    expected = set()
    files = []
    for n, day in enumerate(days):
        lines = [genre_list([(27, f"Terror {n}")]), genre_list([(53, f"Thriller {n}")])]
        for key in raw_lake.tmdb("genres", day, lines, files=2 if n % 100 == 0 else 1):
            path = raw_lake.root / key
            files.append(RawFile(key, f"file://{path}", day, None, path.stat().st_size))
            expected |= {(line, key, day) for line in path.read_text().splitlines()}
    lines = read_lines(spark_session, files)
    scans = lines._jdf.queryExecution().optimizedPlan().collectLeaves().size()
    assert scans == 1
    assert {(r.value, r.source_key, r.source_date) for r in lines.collect()} == expected
    assert lines.count() == len(expected) == 2 * 365
