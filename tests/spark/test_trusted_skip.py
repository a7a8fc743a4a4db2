"""The IMDb tables are rebuilt only when their input changed: a new landing, a new job version,
or ``--full-refresh``. Otherwise a run leaves their files untouched and says so. Real local
Spark on a small raw lake; every run of the scenario is one ``run_job`` on one lake."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from spark_raw_builder import RawLakeBuilder, movie_row, series_row

import spark.trusted_job as trusted_job
from spark.trusted_job import JobArgs, run_job

pytestmark = pytest.mark.slow

D1, D2 = dt.date(2024, 5, 1), dt.date(2024, 5, 2)
MOVIE_TABLES = ("imdb_movies", "imdb_movie_credits", "imdb_movie_genres")
SERIES_TABLES = ("imdb_series", "imdb_series_credits", "imdb_series_genres")
TMDB_TABLES = ("tmdb_movie_snapshots", "tmdb_movie_details", "tmdb_genres")
COUNT_KEYS = ("rows_in", "rows_out", "rejected", "deduplicated")

Files = dict[str, int]  # relative path -> modification time (ns)


def files_of(root: Path, table: str) -> Files:
    """Every file of a table's folder (checksum files included) with its modification time."""
    folder = root / "trusted" / table
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


def all_files(root: Path) -> dict[str, Files]:
    return {t: files_of(root, t) for t in MOVIE_TABLES + SERIES_TABLES + TMDB_TABLES}


def manifest_sha256(root: Path, dataset: str, date: dt.date) -> str:
    folder = root / f"raw/local/csv/{dataset}/year={date:%Y}/month={date:%m}/day={date:%d}"
    return hashlib.sha256((folder / "_manifest.json").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def runs(spark_session: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One lake, five runs: first, again (same landing), full refresh, a new movies landing,
    and a new job version. Keeps each run's report, the tables' files and the log."""
    lake = RawLakeBuilder(tmp_path_factory.mktemp("skip") / "lake")
    lake.csv("movies", D1, [movie_row("tt0000001"), movie_row("tt0000002", "Bia Reis")])
    lake.csv("series", D1, [series_row("tt5000001")])
    lake.tmdb_day(D1)
    lake.tmdb_day(D2)
    results: dict[str, Any] = {"root": lake.root}

    def run(name: str, date: dt.date, **kwargs: Any) -> None:
        handler, logger = _ListHandler(), logging.getLogger("spark")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            report = run_job(JobArgs(lake.uri, date, **kwargs), spark=spark_session)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        results[name] = {"report": report, "files": all_files(lake.root), "log": handler.text}

    run("first", D1)
    run("again", D1)
    run("full_refresh", D1, full_refresh=True)
    lake.csv("movies", D2, [movie_row("tt0000001"), movie_row("tt0000003", "Caio Dias")])
    run("new_landing", D2)
    version = trusted_job.JOB_VERSION
    trusted_job.JOB_VERSION = version + "-next"
    try:
        run("new_version", D2)
    finally:
        trusted_job.JOB_VERSION = version
    return results


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_a_second_run_on_the_same_landing_leaves_the_imdb_files_untouched(
    runs: dict[str, Any],
) -> None:
    first, again = runs["first"], runs["again"]
    for table in MOVIE_TABLES + SERIES_TABLES:
        assert first["files"][table], table
        assert again["files"][table] == first["files"][table], table  # names and mtimes
    # The TMDB tables are rebuilt by every run (their files are new).
    for table in ("tmdb_movie_details", "tmdb_genres"):
        assert set(again["files"][table]).isdisjoint(
            n for n in first["files"][table] if n.startswith("part-")
        ), table


def test_a_skipped_table_is_reported_with_the_counts_of_the_run_that_built_it(
    runs: dict[str, Any],
) -> None:
    first, again = runs["first"]["report"], runs["again"]["report"]
    root = runs["root"]
    for table in MOVIE_TABLES + SERIES_TABLES:
        built, skipped = first["tables"][table], again["tables"][table]
        dataset = "movies" if table in MOVIE_TABLES else "series"
        expected_from = {
            "dataset": dataset,
            "date": D1.isoformat(),
            "manifest_sha256": manifest_sha256(root, dataset, D1),
        }
        assert built["skipped"] is None and built["built_from"] == expected_from
        assert built["built_by"] == first["run_id"]
        assert skipped["skipped"] == "unchanged input", table
        assert skipped["built_from"] == expected_from
        assert skipped["built_by"] == first["run_id"]
        assert {k: skipped[k] for k in COUNT_KEYS} == {k: built[k] for k in COUNT_KEYS}
        total = skipped["rows_out"] + skipped["rejected"] + skipped["deduplicated"]
        assert skipped["rows_in"] == total, table
    assert again["status"] == "succeeded" and again["errors"] == []
    assert "skipped: unchanged input" in runs["again"]["log"]
    assert "skipped" not in (first["tables"]["tmdb_genres"])


def test_the_marker_is_the_last_file_written_and_names_the_landing(runs: dict[str, Any]) -> None:
    root, last = runs["root"], runs["new_version"]["report"]  # the run that built them last
    for table in MOVIE_TABLES:
        files = files_of(root, table)
        marker_time = files.pop("_built_from.json")
        assert marker_time >= max(files.values()), table
        marker = json.loads((root / "trusted" / table / "_built_from.json").read_text())
        assert marker["built_from"]["manifest_sha256"] == manifest_sha256(root, "movies", D2)
        assert marker["job_version"] == trusted_job.JOB_VERSION + "-next"
        assert marker["counts"] == {k: last["tables"][table][k] for k in COUNT_KEYS}
        assert marker["run_id"] == last["run_id"]


def test_full_refresh_rebuilds_unchanged_tables(runs: dict[str, Any]) -> None:
    before, after = runs["again"]["files"], runs["full_refresh"]["files"]
    report = runs["full_refresh"]["report"]
    for table in MOVIE_TABLES + SERIES_TABLES:
        assert set(after[table]).isdisjoint(n for n in before[table] if n.startswith("part-"))
        assert report["tables"][table]["skipped"] is None
        assert report["tables"][table]["built_by"] == report["run_id"]
    assert report["full_refresh"] is True
    assert "(--full-refresh)" in runs["full_refresh"]["log"]


def test_a_new_job_version_rebuilds_them(runs: dict[str, Any]) -> None:
    before, after = runs["new_landing"]["files"], runs["new_version"]["files"]
    for table in MOVIE_TABLES + SERIES_TABLES:
        assert after[table] != before[table], table
        assert runs["new_version"]["report"]["tables"][table]["skipped"] is None
    version = trusted_job.JOB_VERSION
    assert (
        f"was built by job version '{version}', this is '{version}-next'"
        in (runs["new_version"]["log"])
    )


def test_a_new_landing_rebuilds_its_tables_only(
    runs: dict[str, Any], spark_session: SparkSession
) -> None:
    before, after = runs["full_refresh"]["files"], runs["new_landing"]["files"]
    report = runs["new_landing"]["report"]
    root = runs["root"]
    for table in MOVIE_TABLES:  # a new movies landing: the movie tables are rebuilt ...
        assert after[table] != before[table], table
        assert report["tables"][table]["skipped"] is None
        assert report["tables"][table]["built_from"] == {
            "dataset": "movies",
            "date": D2.isoformat(),
            "manifest_sha256": manifest_sha256(root, "movies", D2),
        }
    titles = spark_session.read.parquet(str(root / "trusted" / "imdb_movies")).collect()
    assert sorted(r.title_id for r in titles) == ["tt0000001", "tt0000003"]
    for table in SERIES_TABLES:  # ... and the series, whose landing is the same, are not
        assert after[table] == before[table], table
        assert report["tables"][table]["skipped"] == "unchanged input"


def test_the_snapshots_are_written_one_day_partition_at_a_time(runs: dict[str, Any]) -> None:
    before, after = runs["full_refresh"]["files"], runs["new_landing"]["files"]
    d1 = f"year={D1:%Y}/month={D1:%m}/day={D1:%d}/"
    d2 = f"year={D2:%Y}/month={D2:%m}/day={D2:%d}/"
    snapshots_before = before["tmdb_movie_snapshots"]
    snapshots_after = after["tmdb_movie_snapshots"]
    d1_before = {n: t for n, t in snapshots_before.items() if n.startswith(d1)}
    assert d1_before and {n: t for n, t in snapshots_after.items() if n.startswith(d1)} == d1_before
    assert any(n.startswith(d2) and n.endswith(".parquet") for n in snapshots_after)
    assert not (runs["root"] / "trusted" / "_staging").exists()
