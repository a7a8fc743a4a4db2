"""The DDL that registers the trusted tables on Athena (register_trusted_tables, compiled for
Athena in the session's moto compile) against the parquet the trusted job really writes: the
bundled sample landed in raw (the CSVs, and TMDB from the fake server on 127.0.0.1), the job run
on the session's Spark, each file's schema read with pyarrow (scripts/trusted_ddl.py). A type
that does not read the parquet is HIVE_BAD_DATA on Athena; here it fails the test.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from fake_tmdb.server import serve_fake_tmdb
from scripts.athena_on_duckdb import TRUSTED_DDL, AthenaCompile
from scripts.trusted_ddl import check_trusted_ddl, parse_trusted_ddl
from spark.trusted_job import JobArgs, run_job

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = dt.date(2024, 3, 1)
FAKE_KEY = "key-of-the-local-fake-tmdb"


@pytest.fixture(scope="module")
def sample_trusted(spark_session: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trusted/ of a lake built from the bundled sample, as `make demo` builds it."""
    lake = tmp_path_factory.mktemp("sample") / "lake"
    env = {**os.environ, "LAKE_URI": str(lake), "RUN_DATE": RUN_DATE.isoformat()}
    for variable in ("MOVIES_CSV", "SERIES_CSV", "TMDB_API_KEY_FILE"):
        env.pop(variable, None)  # the bundled sample, and the fake server's key below

    def ingest(command: str, extra: dict[str, str]) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "ingestion", command],
            cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ingest("csv", {})
    with serve_fake_tmdb(api_key=FAKE_KEY, imdb_csv=ROOT / "data/sample/movies.csv") as url:
        ingest("tmdb", {"TMDB_BASE_URL": url, "TMDB_API_KEY": FAKE_KEY, "TMDB_RATE_LIMIT": "200"})
    run_job(JobArgs(str(lake), RUN_DATE), spark=spark_session)
    return lake / "trusted"


def _change_type(ddl: str, table: str, column: str, old: str, new: str) -> str:
    """The DDL with one column's type changed, in one table's statement only."""
    statement = next(s for s in ddl.splitlines() if f"`trusted`.`{table}` (" in s)
    changed = statement.replace(f"`{column}` {old},", f"`{column}` {new},", 1)
    changed = re.sub(rf"`{column}` {re.escape(old)}\)", f"`{column}` {new})", changed, count=1)
    assert changed != statement, f"{table}.{column} is not declared {old}"
    return ddl.replace(statement, changed)


def test_the_trusted_ddl_reads_every_parquet_file_the_job_writes(
    athena_compile: AthenaCompile, sample_trusted: Path
) -> None:
    tables = athena_compile.trusted_tables()
    written = {p.name for p in sample_trusted.iterdir() if not p.name.startswith("_")}
    assert set(tables) == written
    assert check_trusted_ddl(tables, sample_trusted) == []
    # What was checked: real files of every table, the snapshots in their day's partition,
    # Spark's own types (INT96 timestamps, list<element: ...> arrays).
    snapshots = list((sample_trusted / "tmdb_movie_snapshots").rglob("*.parquet"))
    assert snapshots and all("year=2024/month=03/day=01/" in str(p) for p in snapshots)
    details = next((sample_trusted / "tmdb_movie_details").glob("*.parquet"))
    assert str(pq.read_schema(details).field("fetched_at").type).startswith("timestamp")
    assert [n for n, _ in tables["imdb_series"].columns][:5] == [
        "title_id", "primary_title", "original_title", "release_year", "end_year",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "column", "declared", "changed"),
    [
        ("imdb_movies", "num_votes", "bigint", "int"),
        ("imdb_series", "release_year", "int", "bigint"),
        ("imdb_movie_credits", "professions", "array<string>", "string"),
        ("tmdb_movie_snapshots", "genre_ids", "array<int>", "array<bigint>"),
        ("tmdb_movie_snapshots", "popularity", "double", "float"),
        ("tmdb_movie_snapshots", "adult", "boolean", "string"),
        ("tmdb_movie_details", "release_date", "date", "timestamp"),
        ("tmdb_genres", "genre_id", "int", "string"),
    ],
)
def test_one_changed_ddl_type_is_named_with_its_table_and_column(
    athena_compile: AthenaCompile,
    sample_trusted: Path,
    table: str,
    column: str,
    declared: str,
    changed: str,
) -> None:
    ddl = _change_type(athena_compile.compiled(TRUSTED_DDL), table, column, declared, changed)
    problems = check_trusted_ddl(parse_trusted_ddl(ddl), sample_trusted)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{table}.{column}: the DDL declares {changed}, ")
    assert f"which Athena reads as {declared}" in problems[0]
    assert "HIVE_BAD_DATA" in problems[0]


def test_columns_out_of_order_and_wrong_partition_projection_are_named(
    athena_compile: AthenaCompile, sample_trusted: Path
) -> None:
    ddl = athena_compile.compiled(TRUSTED_DDL)
    swapped = ddl.replace("`budget` bigint, `revenue` bigint", "`revenue` bigint, `budget` bigint")
    assert swapped != ddl
    problems = check_trusted_ddl(parse_trusted_ddl(swapped), sample_trusted)
    assert len(problems) == 1 and problems[0].startswith("tmdb_movie_details: the DDL declares")

    one_digit = ddl.replace("'projection.month.digits'='2'", "'projection.month.digits'='1'")
    assert check_trusted_ddl(parse_trusted_ddl(one_digit), sample_trusted) == [
        "tmdb_movie_snapshots: folder month=03 is not 1 digits, so the projection "
        "(projection.month.digits=1) never reads it"
    ]
    no_day = ddl.replace("/day=${day}/'", "/'")
    problems = check_trusted_ddl(parse_trusted_ddl(no_day), sample_trusted)
    assert len(problems) == 1 and "storage.location.template" in problems[0]
    two_keys = ddl.replace(", `day` string)", ")")
    problems = check_trusted_ddl(parse_trusted_ddl(two_keys), sample_trusted)
    assert any("the DDL partitions by ['year', 'month']" in p for p in problems)
