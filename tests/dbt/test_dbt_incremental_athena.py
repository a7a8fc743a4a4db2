"""The incremental fact on Athena, offline: dbt-athena's own materialization run against a moto
server on 127.0.0.1, recording the SQL it sends, for 150 snapshot dates (more than the 100
partitions Athena writes per CTAS or INSERT).

moto runs no SQL. Two things stand in for Athena here, and nothing else (`AthenaStandIn`):
- the answers to the two kinds of queries whose rows dbt reads: the distinct snapshot dates of
  a table (150 dates, as the data would hold) and the latest date of the fact's partition list;
- the catalog effect of a CTAS: the table it creates is registered in moto's Glue, with the
  fact's columns (snapshot_date as partition key when the CTAS partitions), as Athena would, so
  that dbt's later Glue calls (columns, docs) find it.

What this proves: the statements dbt-athena 1.11's materialization sends for the fact
(incremental, `force_batch`), in order, each parsed with sqlglot's athena dialect: on a full
refresh, an unpartitioned temporary table, the query of its distinct snapshot dates, then one
CTAS and one INSERT that name at most 100 of the 150 dates each and every date once; on an
incremental run of 150 new dates, the model's SQL reading only those dates' trusted partitions,
and its inserts into the fact in batches of at most 100 dates. That Athena runs them is
Athena's part. Last, the data tests of a daily run compiled for Athena: they read the run's
dates, in SQL the athena dialect parses.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from dbt_fixture_lake import REPO_ROOT, DbtRun, dbt_env, run_dbt
from test_dbt_athena_compile import athena_sql_problems

pytestmark = pytest.mark.slow

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
LAKE_BUCKET = "movie-lake-batching"
STAGING_BUCKET = "athena-batching-results"
SCHEMA = "refined"
FACT = "fct_movie_popularity"
DATES = [dt.date(2024, 1, 1) + dt.timedelta(days=n) for n in range(150)]
ATHENA_PARTITION_LIMIT = 100
HIVE_TYPES = {"VARCHAR": "string", "INTEGER": "int", "BIGINT": "bigint", "DOUBLE": "double",
              "DATE": "date", "BOOLEAN": "boolean"}  # fmt: skip
TABLE = r'(?:"\w+"\.)?"(\w+)"\."(\w+)"'
CTAS = re.compile(rf"^\s*create\s+table\s+{TABLE}", re.IGNORECASE)
INSERT = re.compile(rf"^\s*insert\s+into\s+{TABLE}", re.IGNORECASE)
DISTINCT_DATES = re.compile(
    rf"^\s*select\s+distinct\s+\"?snapshot_date\"?\s+from\s+\(?{TABLE}", re.I
)
LATEST_PARTITION = re.compile(
    r'^\s*select\s+cast\(max\(snapshot_date\).*\$partitions"', re.I | re.S
)
QUERY_COMMENT = re.compile(r"^\s*(--[^\n]*\n|/\*.*?\*/)\s*", re.DOTALL)


def statement_of(query: str) -> str:
    """The statement without dbt's leading query comment."""
    while (match := QUERY_COMMENT.match(query)) is not None:
        query = query[match.end() :]
    return query


def dates_in(statement: str) -> list[dt.date]:
    """The snapshot dates a batch statement names (dbt-athena writes them DATE'YYYY-MM-DD')."""
    return [dt.date.fromisoformat(d) for d in re.findall(r"DATE'(\d{4}-\d{2}-\d{2})'", statement)]


class AthenaStandIn:
    """Answers and catalog effects for moto's Athena, as the module docstring says."""

    def __init__(self, columns: list[tuple[str, str]], latest: dt.date | None = None) -> None:
        self.columns = columns
        self.latest = latest

    @staticmethod
    def _result(values: list[str], column: str, athena_type: str) -> Any:
        from moto.athena.models import QueryResults

        info = {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": column,
                "Label": column, "Type": athena_type, "Precision": 0, "Scale": 0,
                "Nullable": "UNKNOWN", "CaseSensitive": False}  # fmt: skip
        # The first row holds the column labels, as Athena's GetQueryResults sends them.
        rows = [{"Data": [{"VarCharValue": value}]} for value in [column, *values]]
        return QueryResults(rows=rows, column_info=[info])

    def answer(self, query: str) -> Any:
        statement = statement_of(query)
        if DISTINCT_DATES.match(statement):
            return self._result([d.isoformat() for d in DATES], "snapshot_date", "date")
        if LATEST_PARTITION.match(statement) and self.latest is not None:
            return self._result([self.latest.isoformat()], "_col0", "varchar")
        return None

    def register(self, query: str) -> None:
        from moto.glue.models import glue_backends

        match = CTAS.match(statement_of(query))
        if match is None:
            return
        database, table = match.groups()
        partitioned = "partitioned_by=ARRAY['snapshot_date']" in query
        columns = [
            {"Name": name, "Type": kind}
            for name, kind in self.columns
            if not (partitioned and name == "snapshot_date")
        ]
        glue = glue_backends[ACCOUNT][REGION]
        if table in glue.databases[database].tables:
            glue.delete_table(database, table)
        glue.create_table(
            database,
            table,
            {
                "Name": table,
                "TableType": "EXTERNAL_TABLE",
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": f"s3://{LAKE_BUCKET}/{SCHEMA}/{table}/",
                },
                "PartitionKeys": [{"Name": "snapshot_date", "Type": "date"}] if partitioned else [],
                "Parameters": {"classification": "parquet"},
            },
        )


@dataclass
class AthenaRun:
    """The statements one dbt run sent to (moto's) Athena, in order, and its output."""

    statements: list[str]
    stdout: str

    def writes(self, table: str) -> list[str]:
        """The CTAS and INSERT statements that write `table`."""
        return [
            s
            for s in self.statements
            if (m := CTAS.match(s) or INSERT.match(s)) is not None and m.group(2) == table
        ]


@pytest.fixture(scope="module")
def fact_columns(dbt_run: DbtRun) -> list[tuple[str, str]]:
    """The fact's columns and their Hive types, from the DuckDB build of the same project."""
    with duckdb.connect(str(dbt_run.duckdb_path), read_only=True) as connection:
        rows = connection.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'refined' and table_name = ? order by ordinal_position",
            [FACT],
        ).fetchall()
    return [(name, HIVE_TYPES[kind]) for name, kind in rows]


@pytest.fixture(scope="module")
def athena_env(
    moto_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Path]]:
    root = tmp_path_factory.mktemp("dbt_athena_batching")
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = session.client("s3", endpoint_url=moto_server_url, region_name=REGION)
    for bucket in (LAKE_BUCKET, STAGING_BUCKET):
        s3.create_bucket(Bucket=bucket)
    glue = session.client("glue", endpoint_url=moto_server_url, region_name=REGION)
    existing = {db["Name"] for db in glue.get_databases()["DatabaseList"]}
    for database in {SCHEMA, "trusted"} - existing:
        glue.create_database(DatabaseInput={"Name": database})
    profiles = root / "profiles"
    profiles.mkdir()
    shutil.copyfile(REPO_ROOT / "profiles.example.yml", profiles / "profiles.yml")
    env = dbt_env(
        f"s3://{LAKE_BUCKET}",
        DBT_PROFILES_DIR=str(profiles),
        AWS_ENDPOINT_URL=moto_server_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        ATHENA_S3_STAGING_DIR=f"s3://{STAGING_BUCKET}/dbt/",
        ATHENA_S3_DATA_DIR=f"s3://{LAKE_BUCKET}/refined/",
    )
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(variable, None)
    yield env, root


def run_fact_on_moto(
    env: dict[str, str],
    target: Path,
    monkeypatch: pytest.MonkeyPatch,
    stand_in: AthenaStandIn,
    *args: str,
) -> AthenaRun:
    """`dbt run --select fct_movie_popularity --target athena`, moto's Athena helped by
    `stand_in`; returns the statements Athena received, in order. (The runs share one target
    folder, so the second one reuses the first one's parse.)"""
    from moto.athena.models import AthenaBackend, athena_backends

    backend = athena_backends[ACCOUNT][REGION]
    already = set(backend.executions)
    original = AthenaBackend.start_query_execution

    def start_query_execution(self: AthenaBackend, query: str, *rest: Any, **kw: Any) -> str:
        execution_id = original(self, query, *rest, **kw)
        answer = stand_in.answer(query)
        if answer is not None:
            self.query_results[execution_id] = answer
        stand_in.register(query)
        return execution_id

    monkeypatch.setattr(AthenaBackend, "start_query_execution", start_query_execution)
    result = run_dbt(["run", "--target", "athena", "--select", FACT, *args], env, target)
    statements = [statement_of(e.query) for i, e in backend.executions.items() if i not in already]
    return AthenaRun(statements=statements, stdout=result.stdout)


def test_a_full_refresh_of_150_snapshot_dates_writes_them_in_batches_of_at_most_100(
    athena_env: tuple[dict[str, str], Path],
    fact_columns: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, root = athena_env
    stand_in = AthenaStandIn(fact_columns)
    stand_in.register(f'create table "awsdatacatalog"."{SCHEMA}"."{FACT}" as select 1')
    run = run_fact_on_moto(env, root / "target", monkeypatch, stand_in, "--full-refresh")
    assert "Completed successfully" in run.stdout
    problems = {s[:120]: athena_sql_problems(s) for s in run.statements}
    assert {s: p for s, p in problems.items() if p} == {}

    # First every date at once into a temporary table without partitions, then its dates.
    tmp = f"{FACT}__tmp_not_partitioned"
    (staging,) = run.writes(tmp)
    assert staging.lower().startswith("create table") and "partitioned_by" not in staging
    assert re.search(r"\bwith\s+snapshots as \(", staging)  # the model's own SQL
    assert any((m := DISTINCT_DATES.match(s)) and m.group(2) == tmp for s in run.statements)
    # Then the fact, partitioned by snapshot_date, one statement per 100 dates.
    create, insert = run.writes(FACT)
    assert create.lower().startswith("create table") and insert.lower().startswith("insert into")
    assert "partitioned_by=ARRAY['snapshot_date']" in create
    assert all(f'"{SCHEMA}"."{tmp}"' in s for s in (create, insert))
    batches = [dates_in(create), dates_in(insert)]
    assert [len(b) for b in batches] == [ATHENA_PARTITION_LIMIT, len(DATES) - 100]
    assert sorted(d for b in batches for d in b) == DATES
    assert run.statements.index(staging) < run.statements.index(create)


def test_an_incremental_run_of_150_new_dates_reads_only_them_and_inserts_in_batches(
    athena_env: tuple[dict[str, str], Path],
    fact_columns: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, root = athena_env
    # The fact holds 2023-12-31: the run for the 150th day after builds the 150 dates between.
    stand_in = AthenaStandIn(fact_columns, latest=DATES[0] - dt.timedelta(days=1))
    stand_in.register(
        f'create table "awsdatacatalog"."{SCHEMA}"."{FACT}" '
        "with (partitioned_by=ARRAY['snapshot_date']) as select 1"
    )
    env = {**env, "RUN_DATE": DATES[-1].isoformat()}
    run = run_fact_on_moto(env, root / "target", monkeypatch, stand_in)
    assert "Completed successfully" in run.stdout
    assert f"building {DATES[0]}, {DATES[1]}, " in run.stdout
    # The latest date built comes from the fact's partition list, not from its data.
    assert LATEST_PARTITION.match(run.statements[0])
    problems = {s[:120]: athena_sql_problems(s) for s in run.statements[1:]}
    assert {s: p for s, p in problems.items() if p} == {}

    # The model's SQL reads the 150 dates of the trusted snapshots, by their partitions.
    tmp = f"{FACT}__dbt_tmp"
    staging = run.writes(f"{tmp}__tmp_not_partitioned")[0]
    window = re.search(r"snapshot_date in \(([^)]*)\) and year in \(([^)]*)\) and month", staging)
    assert window is not None
    assert sorted(dt.date.fromisoformat(d) for d in re.findall(r"'([\d-]+)'", window[1])) == DATES
    assert window[2] == "'2024'"
    # The fact gets the 150 dates in inserts of at most 100 dates each, every date once.
    inserts = run.writes(FACT)
    assert all(s.lower().startswith("insert into") and f'"{tmp}"' in s for s in inserts)
    assert [len(dates_in(s)) for s in inserts] == [ATHENA_PARTITION_LIMIT, len(DATES) - 100]
    assert sorted(d for s in inserts for d in dates_in(s)) == DATES


def test_the_data_tests_of_a_daily_run_read_its_dates_in_sql_athena_accepts(
    athena_env: tuple[dict[str, str], Path],
) -> None:
    env, root = athena_env
    target = root / "target"
    run_dbt(["compile", "--target", "athena"], {**env, "RUN_DATE": "2024-03-01"}, target)
    # Every data test's compiled SQL, by its name (dbt shortens long file names to a hash).
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    tests = {
        node["name"] + ("" if node.get("test_metadata") else ".sql"): Path(
            node["compiled_path"]
        ).read_text(encoding="utf-8")
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
    }
    assert len(tests) > 100
    problems = {name: found for name, sql in tests.items() if (found := athena_sql_problems(sql))}
    assert problems == {}
    windowed = {name for name, sql in tests.items() if "snapshot_date >= date '2024-03-01'" in sql}
    # The fact's and the snapshots' tests, and the singular tests that read snapshots.
    assert any(n.startswith("unique_combination_of_columns_fct_movie_popularity") for n in windowed)
    assert any(n.startswith("not_null_stg_tmdb__movie_snapshots_tmdb_id") for n in windowed)
    assert any(n.startswith("source_not_null_tmdb_tmdb_movie_snapshots") for n in windowed)
    assert {"assert_dim_movie_reconciles_with_trusted.sql",
            "assert_tmdb_movies_with_imdb_title_are_matched.sql",
            "assert_dim_date_covers_release_and_snapshot_dates.sql"} <= windowed  # fmt: skip
    reconcile = tests["assert_dim_movie_reconciles_with_trusted.sql"]
    assert "year >= '2024'" in reconcile and "int_tmdb__movie_latest_snapshots" in reconcile
    # The one test that reads every row of the fact, on purpose.
    assert "2024-03-01" not in tests["assert_fct_movie_popularity_has_no_orphan_keys.sql"]
