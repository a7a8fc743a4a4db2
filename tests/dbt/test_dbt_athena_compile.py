"""The Athena target, offline: `dbt compile --target athena` against a moto server on
127.0.0.1 (dbt-athena talks to STS, Glue and S3 while compiling), then every compiled model,
test and the trusted-table DDL parsed with sqlglot's athena dialect, plus a check for the
constructs Athena rejects but sqlglot's parser lets through (DuckDB's `::` casts and
functions). moto runs no SQL, so this proves the SQL is Athena's, not what it returns.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import sqlglot
from dbt_fixture_lake import REPO_ROOT, TRUSTED_TABLES, dbt_env, run_dbt
from sqlglot.tokens import TokenType

pytestmark = pytest.mark.slow  # dbt compile against a moto server

LAKE_BUCKET = "movie-lake-test"
STAGING_BUCKET = "athena-query-results"
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


@dataclass(frozen=True)
class AthenaCompile:
    target_path: Path
    env: dict[str, str]

    @property
    def compiled_root(self) -> Path:
        return self.target_path / "compiled" / "movie_lake" / "dbt_project"

    def compiled(self, relative: str) -> str:
        return (self.compiled_root / relative).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def athena_compile(moto_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AthenaCompile:
    root = tmp_path_factory.mktemp("dbt_athena")
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (LAKE_BUCKET, STAGING_BUCKET):
        s3.create_bucket(Bucket=bucket)
    # The documented example profile, used as is: it holds the athena target.
    profiles_dir = root / "profiles"
    profiles_dir.mkdir()
    shutil.copyfile(REPO_ROOT / "profiles.example.yml", profiles_dir / "profiles.yml")
    env = dbt_env(
        f"s3://{LAKE_BUCKET}",
        DBT_PROFILES_DIR=str(profiles_dir),
        AWS_ENDPOINT_URL=moto_server_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        ATHENA_S3_STAGING_DIR=f"s3://{STAGING_BUCKET}/dbt/",
        ATHENA_S3_DATA_DIR=f"s3://{LAKE_BUCKET}/refined/",
    )
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(variable, None)
    target_path = root / "target"
    run_dbt(["compile", "--target", "athena"], env, target_path)
    return AthenaCompile(target_path=target_path, env=env)


def test_athena_compile_gives_sql_athena_accepts_for_every_model_test_and_the_ddl(
    athena_compile: AthenaCompile,
) -> None:
    files = sorted(athena_compile.compiled_root.rglob("*.sql"))
    kinds = {path.relative_to(athena_compile.compiled_root).parts[0] for path in files}
    assert kinds == {"models", "tests", "analyses"}
    models = [p for p in files if p.parts[-2] in ("imdb", "tmdb", "intermediate", "marts")]
    assert len(models) == 22
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
    manifest = json.loads((athena_compile.target_path / "manifest.json").read_text("utf-8"))
    marts = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    ]
    assert len(marts) == 10
    for node in marts:
        config = node["config"]
        assert config["materialized"] == "table"
        assert (config["table_type"], config["format"]) == ("hive", "parquet")
        assert config["write_compression"] == "snappy"
        assert config["s3_data_naming"] == "schema_table_unique"
        assert node["schema"] == "refined"
    fact = manifest["nodes"]["model.movie_lake.fct_movie_popularity"]
    assert fact["config"]["partitioned_by"] == ["snapshot_date"]
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
