"""The Glue entry point, run locally under plain pyspark with the arguments Glue passes."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession
from spark_raw_builder import RawLakeBuilder, movie_row, series_row

from spark import glue_entry
from spark.lake_io import TrustedJobError

pytestmark = pytest.mark.slow  # a real SparkSession


def test_glue_entry_runs_the_job_with_glues_arguments(
    spark_session: SparkSession, raw_lake: RawLakeBuilder
) -> None:
    day = dt.date(2024, 3, 9)
    raw_lake.csv("movies", day, [movie_row("tt0000001"), movie_row("tt0000002", "Rui")])
    raw_lake.csv("series", day, [series_row("tt5000001")])
    raw_lake.tmdb_day(day)
    argv = [
        "/tmp/glue/glue_entry.py",
        "--JOB_NAME",
        "movie-lake-test-trusted",
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--LAKE_URI",
        raw_lake.uri,
        "--TempDir",
        "s3://aws-glue-temp/x",
        "--RUN_DATE",
        "2024-03-09",
        "--enable-metrics",
        "true",
    ]
    assert not glue_entry.glue_available()  # plain pyspark: the argparse path
    report = glue_entry.main(argv)
    assert report["run_date"] == "2024-03-09" and report["status"] == "succeeded"
    titles = spark_session.read.parquet(str(raw_lake.root / "trusted" / "imdb_movies"))
    assert sorted(r.title_id for r in titles.collect()) == ["tt0000001", "tt0000002"]
    snapshots = raw_lake.root / "trusted" / "tmdb_movie_snapshots" / "year=2024/month=03/day=09"
    assert any(snapshots.glob("part-*.parquet"))


def test_glue_options_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_DATE", "2024-05-06")
    monkeypatch.setenv("LAKE_URI", "s3://bucket/lake")
    options = glue_entry.resolve_options(["script.py", "--JOB_NAME", "j", "--extra", "x"])
    assert options == {"JOB_NAME": "j", "LAKE_URI": "s3://bucket/lake", "RUN_DATE": "2024-05-06"}
    options = glue_entry.resolve_options(
        ["script.py", "--JOB_NAME", "j", "--RUN_DATE", "2024-01-01"]
    )
    assert options["RUN_DATE"] == "2024-01-01"


def test_glue_entry_raises_so_glue_marks_the_run_failed(raw_lake: RawLakeBuilder) -> None:
    argv = [
        "glue_entry.py",
        "--JOB_NAME",
        "j",
        "--LAKE_URI",
        raw_lake.uri,
        "--RUN_DATE",
        "2024-03-09",
    ]
    with pytest.raises(TrustedJobError, match="no complete raw input for RUN_DATE=2024-03-09"):
        glue_entry.main(argv)
