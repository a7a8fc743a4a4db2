"""Fixtures of the trusted-job tests: one local SparkSession for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from spark_raw_builder import RawLakeBuilder


@pytest.fixture(scope="session")
def spark_session() -> Iterator[SparkSession]:
    """A real local Spark: 2 cores, 2 shuffle partitions, no UI, bound to 127.0.0.1."""
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("movie-lake-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def raw_lake(tmp_path: Path) -> RawLakeBuilder:
    """An empty local lake folder with helpers that write raw partitions as the stages do."""
    return RawLakeBuilder(tmp_path / "lake")
