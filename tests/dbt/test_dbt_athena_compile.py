"""The Athena target, offline: `dbt compile --target athena` against a moto server on
127.0.0.1 (dbt-athena talks to STS, Glue and S3 while compiling), then every compiled model,
test and the trusted-table DDL parsed with sqlglot's athena dialect, plus a check for the
constructs Athena rejects but sqlglot's parser lets through (DuckDB's `::` casts and
functions). moto runs no SQL, so this proves the SQL is Athena's, not what it returns.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from dbt_fixture_lake import TRUSTED_TABLES, run_dbt
from sqlglot.tokens import TokenType

from scripts.athena_on_duckdb import LAKE_BUCKET, AthenaCompile

pytestmark = pytest.mark.slow  # dbt compile against a moto server

# Functions DuckDB has and Athena (Trino) lacks: the macros' duckdb__ versions use them, so a
# model that called one directly would compile on DuckDB and fail on Athena.
DUCKDB_ONLY_FUNCTIONS = {
    "list_contains", "list_sort", "list_distinct", "list_transform", "list_extract",
    "list_aggregate", "array_to_string", "string_agg", "make_date", "generate_series", "range",
    "isodow", "monthname", "dayname", "regexp_full_match", "regexp_matches", "strftime",
    "strptime", "read_parquet", "read_csv", "epoch", "datediff", "date_diff_days",
}  # fmt: skip


def athena_sql_problems(sql: str) -> list[str]:
    """What Athena would reject in `sql` (empty when none): a parse error in sqlglot's athena
    dialect (QUALIFY is one), or a construct that parser accepts but Athena does not."""
    problems: list[str] = []
    try:
        sqlglot.parse(sql, read="athena")
    except sqlglot.errors.ParseError as error:
        problems.append(f"athena parse error: {str(error).splitlines()[0]}")
    tokens = sqlglot.Dialect.get_or_raise("athena").tokenize(sql)
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        if token.token_type == TokenType.QUALIFY or token.text.upper() == "QUALIFY":
            problems.append(f"QUALIFY at line {token.line}")
        elif token.token_type == TokenType.DCOLON:
            problems.append(f"'::' cast at line {token.line}")
        elif (
            token.text.lower() in DUCKDB_ONLY_FUNCTIONS
            and following is not None
            and following.token_type == TokenType.L_PAREN
        ):
            problems.append(f"DuckDB-only function {token.text}() at line {token.line}")
    return problems


def test_athena_compile_gives_sql_athena_accepts_for_every_model_test_and_the_ddl(
    athena_compile: AthenaCompile,
) -> None:
    files = sorted(athena_compile.compiled_root.rglob("*.sql"))
    kinds = {path.relative_to(athena_compile.compiled_root).parts[0] for path in files}
    assert kinds == {"models", "tests", "analyses"}
    models = [p for p in files if p.parts[-2] in ("imdb", "tmdb", "intermediate", "marts")]
    assert len(models) == 23
    problems = {
        str(path.relative_to(athena_compile.compiled_root)): found
        for path in files
        if (found := athena_sql_problems(path.read_text(encoding="utf-8")))
    }
    assert problems == {}
    # The Athena build reads the Glue tables of the trusted database, not parquet paths.
    staging = athena_compile.compiled("models/staging/imdb/stg_imdb__movies.sql")
    assert '"awsdatacatalog"."trusted"."imdb_movies"' in staging
    assert "read_parquet" not in staging


def test_athena_sql_check_rejects_qualify_and_duckdb_only_syntax(
    athena_compile: AthenaCompile,
) -> None:
    sql = athena_compile.compiled("models/marts/fct_movie_popularity.sql")
    assert athena_sql_problems(sql) == []
    with_qualify = f"{sql}\nqualify row_number() over (partition by tmdb_id) = 1"
    assert any("parse error" in p for p in athena_sql_problems(with_qualify))
    assert any("QUALIFY" in p for p in athena_sql_problems(with_qualify))
    assert athena_sql_problems(sql.replace("movies.tmdb_id,", "movies.tmdb_id::bigint,", 1))
    duckdb_call = "select list_contains(genre_ids, 27) from t"
    assert athena_sql_problems(duckdb_call) == ["DuckDB-only function list_contains() at line 1"]


def test_trusted_ddl_registers_each_table_over_the_lake_without_replacing_anything(
    athena_compile: AthenaCompile,
) -> None:
    ddl = athena_compile.compiled("analyses/register_trusted_tables.sql")
    statements = [s for s in sqlglot.parse(ddl, read="athena") if s is not None]
    assert len(statements) == 1 + len(TRUSTED_TABLES)
    assert re.search(r"CREATE DATABASE IF NOT EXISTS `trusted`", ddl)
    for table in TRUSTED_TABLES:
        assert ddl.count(f"CREATE EXTERNAL TABLE IF NOT EXISTS `trusted`.`{table}` (") == 1
        assert f"LOCATION 's3://{LAKE_BUCKET}/trusted/{table}/'" in ddl
    assert not re.search(r"\b(DROP|REPLACE|INSERT|DELETE|ALTER)\b", ddl, re.IGNORECASE)
    snapshots = next(line for line in ddl.splitlines() if "`tmdb_movie_snapshots`" in line)
    assert "PARTITIONED BY (`year` string, `month` string, `day` string)" in snapshots
    for part, digits in (("year", 4), ("month", 2), ("day", 2)):
        assert f"'projection.{part}.digits'='{digits}'" in snapshots
    assert (
        f"'storage.location.template'='s3://{LAKE_BUCKET}/trusted/tmdb_movie_snapshots/"
        "year=${year}/month=${month}/day=${day}/'"
    ) in snapshots


def test_register_trusted_tables_dry_run_logs_the_ddl_it_would_run(
    athena_compile: AthenaCompile,
) -> None:
    result = run_dbt(
        [
            "run-operation",
            "register_trusted_tables",
            "--args",
            "{dry_run: true}",
            "--target",
            "athena",
        ],
        athena_compile.env,
        athena_compile.target_path,
    )
    logged = [
        line.split("  ", 1)[-1].strip() for line in result.stdout.splitlines() if "CREATE " in line
    ]
    assert len(logged) == 1 + len(TRUSTED_TABLES)
    assert all(not athena_sql_problems(statement) for statement in logged)
    assert f"Would register {len(TRUSTED_TABLES)} trusted tables" in result.stdout


def test_marts_are_parquet_tables_at_unique_locations_and_the_fact_is_partitioned(
    athena_compile: AthenaCompile,
) -> None:
    manifest = athena_compile.manifest()
    marts = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    ]
    assert len(marts) == 10
    for node in marts:
        config = node["config"]
        expected = "incremental" if node["name"] == "fct_movie_popularity" else "table"
        assert config["materialized"] == expected
        assert (config["table_type"], config["format"]) == ("hive", "parquet")
        assert config["write_compression"] == "snappy"
        assert config["s3_data_naming"] == "schema_table_unique"
        assert node["schema"] == "refined"
    fact = manifest["nodes"]["model.movie_lake.fct_movie_popularity"]
    assert fact["config"]["partitioned_by"] == ["snapshot_date"]
    # Incremental by snapshot date: each run overwrites its dates' partitions, in batches of at
    # most 100 partitions (tests/dbt/test_dbt_incremental_athena.py runs it against moto).
    assert fact["config"]["incremental_strategy"] == "insert_overwrite"
    assert fact["config"]["force_batch"] is True
    # The TMDB movie state: one row per movie, merged by tmdb_id, which Hive tables cannot do.
    state = manifest["nodes"]["model.movie_lake.int_tmdb__movie_latest_snapshots"]["config"]
    assert (state["materialized"], state["incremental_strategy"]) == ("incremental", "merge")
    assert (state["table_type"], state["unique_key"]) == ("iceberg", "tmdb_id")
    # Athena's CTAS wants the partition column last (of the `final` CTE the model selects).
    query = sqlglot.parse_one(
        athena_compile.compiled("models/marts/fct_movie_popularity.sql"), read="athena"
    )
    final = next(cte for cte in query.find_all(sqlglot.exp.CTE) if cte.alias == "final")
    assert final.this.selects[-1].alias_or_name == "snapshot_date"


def test_run_refuses_a_data_dir_under_the_trusted_prefix(athena_compile: AthenaCompile) -> None:
    # dbt-athena deletes the data under a table's location when it rebuilds the table: the
    # on-run-start check must stop the run before any model touches S3.
    env = {**athena_compile.env, "ATHENA_S3_DATA_DIR": f"s3://{LAKE_BUCKET}/trusted/"}
    result = run_dbt(
        ["run", "--target", "athena", "--select", "stg_tmdb__genres"],
        env,
        athena_compile.target_path.with_name("target_guard"),
        check=False,
    )
    assert result.returncode != 0
    assert (
        f"s3_data_dir 's3://{LAKE_BUCKET}/trusted/' lies under a trusted/ prefix" in result.stdout
    )
    assert "START sql view model" not in result.stdout
