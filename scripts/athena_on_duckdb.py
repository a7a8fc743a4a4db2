"""The Athena SQL of the dbt project, run offline on DuckDB and compared with the DuckDB build.

moto answers the STS, Glue and S3 calls dbt-athena makes while compiling, but runs no SQL: the
`default__` (Athena/Trino) branches of the dispatch macros would otherwise never execute before
production. This module runs them:

1. `compile_for_athena()`: `dbt compile --target athena` against an S3/Glue endpoint (a moto
   server on 127.0.0.1), giving target/manifest.json and the compiled SQL.
2. `run_athena_sql_on_duckdb()`: a scratch DuckDB database stands in for the Glue catalog. Its
   schema `trusted` holds one view per trusted table over the lake's parquet, with the columns
   and types of the `CREATE EXTERNAL TABLE` that register_trusted_tables emits (what Athena
   sees); every compiled model then runs in dependency order (manifest.json) into its own
   schema (`refined`, `refined_staging`, ...), parsed with sqlglot's athena dialect, rewritten
   (below) and written as DuckDB SQL. Every compiled data test runs the same way and must return
   no rows.
3. `compare_builds()`: each model against the DuckDB target's own build: same columns, same
   type families, same row count and the same rows (an order-independent hash of every column,
   floats rounded to FLOAT_DIGITS decimals).

What is rewritten, and why (sqlglot transpiles these Trino constructs into DuckDB SQL that means
something else, or cannot say what they mean without types):

- Glue names: `"awsdatacatalog"."<database>"."<table>"` -> `"<database>"."<table>"`: the
  catalog goes, the Glue database becomes the scratch schema of the same name.
- `date_trunc(unit, x)`: Trino returns x's type (a date stays a date); DuckDB returns a
  timestamp for a date. -> `trino_date_trunc(unit, x)`, a macro of the scratch database
  overloaded on x's type (DATE_TRUNC_MACRO).
- `format(fmt, ...)`: Trino's is Java's String.format; sqlglot keeps the name, and DuckDB's
  format() reads `{}` placeholders. -> `printf(fmt, ...)`, which reads `%d`, `%s`, `%f` with
  flags and widths as Java does; any other conversion is an error naming it.
- `/` between two integers: integer division on Trino (truncated: 7 / 2 = 3), a double on DuckDB.
  Not a rewrite: the scratch database runs with DuckDB's `integer_division` setting, under which
  `/` divides integers as Trino does and everything else as before.

A function sqlglot does not know (parsed as an anonymous function) is an error naming it, as
is anything sqlglot reports it cannot write for DuckDB: nothing is skipped silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import graphlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from scripts.trusted_ddl import TrustedTable, parse_trusted_ddl

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ATHENA_CATALOG = "awsdatacatalog"  # the data catalog of the athena target (profiles.example.yml)
LAKE_BUCKET = "movie-lake-check"
STAGING_BUCKET = "athena-query-results"
TRUSTED_DDL = "analyses/register_trusted_tables.sql"  # under the compiled project
# The compile's manifest, kept apart: later dbt commands on the same target path (run-operation,
# run) rewrite manifest.json without the compiled SQL.
COMPILE_MANIFEST = "manifest.athena_compile.json"
FLOAT_DIGITS = 6
FETCH_ROWS = 10_000

# Trino's date_trunc keeps the type of its argument; DuckDB's turns a date into a timestamp.
DATE_TRUNC_MACRO = """
create or replace macro trino_date_trunc(unit, x date) as cast(date_trunc(unit, x) as date),
    (unit, x timestamp) as date_trunc(unit, x),
    (unit, x timestamptz) as date_trunc(unit, x)
"""
# Java format conversions that printf reads alike: flags, width, precision, then d, s or f.
PRINTF_SAFE_FORMAT = re.compile(r"(?:[^%]|%%|%[-0+ ]*\d*(?:\.\d+)?[dsf])*")
# Functions sqlglot parses as anonymous (it does not know them) that are checked to mean the
# same on Athena and DuckDB. None are needed today; add one only with that check.
CHECKED_ANONYMOUS_FUNCTIONS: frozenset[str] = frozenset()


class AthenaSqlError(Exception):
    """Compiled Athena SQL that cannot be carried over to DuckDB, or that failed there."""


# -- 1. compile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AthenaCompile:
    """Where `dbt compile --target athena` put its outputs, and the environment it ran with."""

    target_path: Path
    env: dict[str, str]
    project_dir: Path = ROOT

    @property
    def compiled_root(self) -> Path:
        return self.target_path / "compiled" / "movie_lake" / "dbt_project"

    def compiled(self, relative: str) -> str:
        return (self.compiled_root / relative).read_text(encoding="utf-8")

    def manifest(self) -> dict[str, Any]:
        """The manifest of the compile itself, with every node's compiled SQL."""
        return json.loads((self.target_path / COMPILE_MANIFEST).read_text(encoding="utf-8"))

    def trusted_tables(self) -> dict[str, TrustedTable]:
        return parse_trusted_ddl(self.compiled(TRUSTED_DDL))


def run_dbt(
    args: Sequence[str],
    env: Mapping[str, str],
    target_path: Path,
    *,
    project_dir: Path = ROOT,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """One dbt command on the project in `project_dir`, its outputs under `target_path`."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    command = [dbt, *args, "--target-path", str(target_path), "--log-path", str(target_path)]
    result = subprocess.run(
        command, cwd=project_dir, env=dict(env), capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AthenaSqlError(
            f"dbt {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-6000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return result


def compile_for_athena(
    target_path: Path,
    s3_endpoint_url: str,
    *,
    project_dir: Path = ROOT,
    lake_bucket: str = LAKE_BUCKET,
    staging_bucket: str = STAGING_BUCKET,
) -> AthenaCompile:
    """`dbt compile --target athena` with every AWS call sent to `s3_endpoint_url` (a moto
    server: it creates the two buckets there), using the documented profiles.example.yml."""
    import boto3

    # moto's placeholder credentials: the endpoint is a local fake, never AWS.
    fake_keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint_url, region_name="us-east-1", **fake_keys)
    for bucket in (lake_bucket, staging_bucket):
        # A second compile against the same server finds its buckets there.
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
    # The documented example profile, used as is: it holds the athena target.
    profiles_dir = target_path.parent / f"{target_path.name}_profiles"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_dir / "profiles.example.yml", profiles_dir / "profiles.yml")
    env = {
        **os.environ,
        "LAKE_URI": f"s3://{lake_bucket}",
        "DBT_PROFILES_DIR": str(profiles_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "AWS_ENDPOINT_URL": s3_endpoint_url,
        "AWS_ACCESS_KEY_ID": fake_keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": fake_keys["aws_secret_access_key"],
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ATHENA_S3_STAGING_DIR": f"s3://{staging_bucket}/dbt/",
        "ATHENA_S3_DATA_DIR": f"s3://{lake_bucket}/refined/",
    }
    # Nothing from the caller's environment may point the compile elsewhere: a profile, a
    # session token, a service-specific endpoint, or a switch that ignores AWS_ENDPOINT_URL.
    for variable in list(env):
        if variable.startswith("AWS_ENDPOINT_URL_") or variable in (
            "DBT_TARGET", "ATHENA_SCHEMA", "AWS_PROFILE", "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        ):  # fmt: skip
            env.pop(variable)
    run_dbt(["compile", "--target", "athena"], env, target_path, project_dir=project_dir)
    shutil.copyfile(target_path / "manifest.json", target_path / COMPILE_MANIFEST)
    return AthenaCompile(target_path=target_path, env=env, project_dir=project_dir)


# -- 2. transpile ----------------------------------------------------------------------------


def _map_glue_names(tree: exp.Expr, node: str) -> None:
    for table in tree.find_all(exp.Table):
        catalog = table.catalog
        if not catalog:
            continue  # a CTE, an unnest alias
        if catalog != ATHENA_CATALOG:
            raise AthenaSqlError(f"{node}: table {table.sql('athena')} is not in {ATHENA_CATALOG}")
        table.set("catalog", None)


def _rewrite(tree: exp.Expr, node: str) -> exp.Expr:
    """The rewrites of the module docstring, applied to one parsed statement."""
    _map_glue_names(tree, node)

    def rewrite(e: exp.Expr) -> exp.Expr:
        if isinstance(e, exp.Anonymous) and e.name.lower() not in CHECKED_ANONYMOUS_FUNCTIONS:
            raise AthenaSqlError(
                f"{node}: sqlglot does not know the function {e.name}() "
                f"({e.sql('athena')}), so its DuckDB meaning is unchecked"
            )
        if isinstance(e, exp.DateTrunc | exp.TimestampTrunc):
            unit = e.args.get("unit")
            if not isinstance(unit, exp.Literal | exp.Var):
                raise AthenaSqlError(
                    f"{node}: {e.sql('athena')} truncates to a unit that is not a literal"
                )
            return exp.Anonymous(
                this="trino_date_trunc",
                expressions=[exp.Literal.string(unit.name.lower()), e.this],
            )
        if isinstance(e, exp.Format):
            pattern = e.this
            if not (pattern.is_string and PRINTF_SAFE_FORMAT.fullmatch(pattern.name)):
                raise AthenaSqlError(
                    f"{node}: format({pattern.sql('athena')}, ...) uses a conversion printf "
                    "does not read as Java does (only %d, %s and %f, with flags and widths)"
                )
            return exp.Anonymous(this="printf", expressions=[pattern, *e.expressions])
        return e

    return tree.transform(rewrite)


def transpile(sql: str, node: str) -> str:
    """One compiled Athena statement as DuckDB SQL for the scratch database; AthenaSqlError
    naming `node` and the construct when sqlglot cannot parse it or write it for DuckDB."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        near = f" (near {first.get('highlight')!r})" if first.get("highlight") else ""
        reason = first.get("description") or str(error)
        raise AthenaSqlError(
            f"{node}: sqlglot cannot parse it as Athena SQL: {reason}{where}{near}"
        ) from None
    if len(statements) != 1:
        raise AthenaSqlError(f"{node}: {len(statements)} statements, expected one query")
    tree = _rewrite(statements[0], node)
    try:
        return tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as error:
        raise AthenaSqlError(f"{node}: sqlglot cannot write it for DuckDB: {error}") from None


# -- 3. execute ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    unique_id: str
    schema: str
    name: str
    materialized: str

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def quoted(self) -> str:
        return f'"{self.schema}"."{self.name}"'


@dataclass
class AthenaRun:
    """What ran on the scratch database: the models built, and the data tests' failing rows."""

    database: Path
    models: list[Relation] = field(default_factory=list)
    tests_run: int = 0
    test_failures: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def _nodes_in_order(manifest: Mapping[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The nodes of one type, each after the nodes it depends on (ties by name)."""
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == resource_type and node["config"].get("enabled", True)
    }
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for uid, node in nodes.items():
        sorter.add(uid, *(d for d in node["depends_on"]["nodes"] if d in nodes))
    sorter.prepare()
    ordered: list[dict[str, Any]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(nodes[uid] for uid in ready)
        sorter.done(*ready)
    return ordered


def _parquet_glob(trusted_root: Path, table: str) -> str | None:
    files = [
        p
        for p in (trusted_root / table).rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(trusted_root).parts)
    ]
    if not files:
        return None
    return str(trusted_root / table / "**" / "*.parquet").replace("'", "''")  # a SQL literal


def create_trusted_views(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, TrustedTable], trusted_root: Path
) -> None:
    """Schema `trusted`: each table as Athena declares it (the DDL's columns and types, then
    its partition keys as strings) over the parquet under `trusted_root`, read by column name
    as Athena reads parquet (a file without a column gives nulls)."""
    con.execute('create schema if not exists "trusted"')
    for name, table in tables.items():
        columns = [
            f'cast("{column}" as {kind.sql(dialect="duckdb")}) as "{column}"'
            for column, kind in table.columns
        ] + [f'cast("{key}" as varchar) as "{key}"' for key, _ in table.partition_keys]
        glob = _parquet_glob(trusted_root, name)
        if glob is None:  # no file yet: an empty table of the declared columns
            source = "(select 1) as nothing where false"
            columns = [
                f'cast(null as {kind.sql(dialect="duckdb")}) as "{column}"'
                for column, kind in (*table.columns, *table.partition_keys)
            ]
        elif table.partition_keys:
            hive_types = ", ".join(f"'{key}': 'varchar'" for key, _ in table.partition_keys)
            source = (
                f"read_parquet('{glob}', union_by_name = true, hive_partitioning = true, "
                f"hive_types = {{{hive_types}}})"
            )
        else:
            source = f"read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"
        con.execute(
            f'create or replace view "trusted"."{name}" as '
            f"select {', '.join(columns)} from {source}"
        )


def open_scratch_database(path: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB database that runs transpiled Athena SQL: Trino's integer division, the
    trino_date_trunc macro, no extension downloads."""
    con = duckdb.connect(
        str(path),
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    con.execute("set integer_division = true")
    con.execute(DATE_TRUNC_MACRO)
    return con


def _excerpt(sql: str, limit: int = 1500) -> str:
    return sql if len(sql) <= limit else sql[:limit] + " ..."


def run_athena_sql_on_duckdb(
    athena: AthenaCompile, trusted_root: Path, database: Path
) -> AthenaRun:
    """Every compiled model, then every compiled data test, transpiled and run on a scratch
    DuckDB database at `database` over the parquet under `trusted_root`."""
    manifest = athena.manifest()
    run = AthenaRun(database=database)
    database.unlink(missing_ok=True)
    con = open_scratch_database(database)
    try:
        create_trusted_views(con, athena.trusted_tables(), trusted_root)
        for node in _nodes_in_order(manifest, "model"):
            materialized = node["config"]["materialized"]
            if materialized == "ephemeral":
                continue  # inlined as a CTE in the models that use it
            relation = Relation(node["unique_id"], node["schema"], node["alias"], materialized)
            sql = transpile(node["compiled_code"], node["unique_id"])
            kind = "view" if materialized == "view" else "table"
            con.execute(f'create schema if not exists "{relation.schema}"')
            try:
                con.execute(f"create or replace {kind} {relation.quoted} as {sql}")
            except duckdb.Error as error:
                raise AthenaSqlError(
                    f"{relation.unique_id}: the transpiled SQL failed on DuckDB: {error}\n"
                    f"{_excerpt(sql)}"
                ) from None
            run.models.append(relation)
        for node in _nodes_in_order(manifest, "test"):
            config = node["config"]
            if (config.get("fail_calc"), config.get("error_if")) != ("count(*)", "!= 0"):
                raise AthenaSqlError(
                    f"{node['unique_id']}: fail_calc {config.get('fail_calc')!r} / error_if "
                    f"{config.get('error_if')!r} are not handled here (count(*) != 0 only)"
                )
            sql = transpile(node["compiled_code"], node["unique_id"])
            try:
                rows = con.execute(f"select * from ({sql}) as dbt_test limit 5").fetchall()
            except duckdb.Error as error:
                raise AthenaSqlError(
                    f"{node['unique_id']}: the transpiled test failed on DuckDB: {error}\n"
                    f"{_excerpt(sql)}"
                ) from None
            run.tests_run += 1
            if rows:
                run.test_failures[node["unique_id"]] = rows
    finally:
        con.close()
    return run


# -- 4. compare ------------------------------------------------------------------------------


def _normalize(value: Any) -> Any:
    """A value as both engines would agree on it: a number as its decimal text whatever its
    type or width (3, 3.0 and Decimal('3.00') alike; floats and decimals rounded to
    FLOAT_DIGITS decimals), dates and times with their type, nested values element by element."""
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | decimal.Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        with decimal.localcontext() as context:
            context.prec = 80  # wide enough for any DuckDB number, HUGEINT included
            number = decimal.Decimal(repr(value) if isinstance(value, float) else value)
            rounded = round(number, FLOAT_DIGITS).normalize()
        return "0" if rounded.is_zero() else format(rounded, "f")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return (type(value).__name__, value.isoformat())
    if isinstance(value, list | tuple):
        return tuple(_normalize(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _normalize(v)) for k, v in value.items()))
    return (type(value).__name__, str(value))


def _digest(value: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(value).encode()).digest()[:16], "big")


def type_family(duckdb_type: str) -> str:
    """What a column's DuckDB type is, whatever its width: integer, floating, string, ..."""
    name = duckdb_type.upper().strip()
    nested = re.fullmatch(r"(.+)\[\d*\]", name)
    if nested:  # a list (or fixed-size array) of an element type
        return f"list of {type_family(nested.group(1))}"
    if name.startswith(("STRUCT", "MAP", "UNION")):
        return name.split("(")[0].lower()
    families = (
        ("integer", ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                     "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")),
        ("floating", ("FLOAT", "DOUBLE", "REAL")),
        ("decimal", ("DECIMAL",)),
        ("string", ("VARCHAR",)),
        ("boolean", ("BOOLEAN",)),
        ("date", ("DATE",)),
        ("timestamp with time zone", ("TIMESTAMP WITH TIME ZONE",)),
        ("timestamp", ("TIMESTAMP",)),
    )  # fmt: skip
    for family, names in families:
        if any(name == n or name.startswith(n + "(") or name.startswith(n + "_") for n in names):
            return family
    return name.lower()


@dataclass
class TableFingerprint:
    """A table's columns, their type families, and the multiset of its normalized rows."""

    columns: list[str]
    families: list[str]
    rows: Counter[int]
    examples: dict[int, tuple[Any, ...]]
    column_digests: list[int]

    @property
    def row_count(self) -> int:
        return sum(self.rows.values())

    @property
    def digest(self) -> int:
        """Order-independent: the sum of the row digests (duplicates count)."""
        return sum(d * n for d, n in self.rows.items()) % (1 << 128)


def fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> TableFingerprint:
    cursor = con.execute(f"select * from {relation}")
    description = cursor.description or []
    columns = [d[0] for d in description]
    families = [type_family(str(d[1])) for d in description]
    rows: Counter[int] = Counter()
    examples: dict[int, tuple[Any, ...]] = {}
    column_digests = [0] * len(columns)
    while batch := cursor.fetchmany(FETCH_ROWS):
        for raw in batch:
            row = tuple(_normalize(v) for v in raw)
            digest = _digest(row)
            rows[digest] += 1
            examples.setdefault(digest, row)
            for i, value in enumerate(row):
                column_digests[i] = (column_digests[i] + _digest(value)) % (1 << 128)
    return TableFingerprint(columns, families, rows, examples, column_digests)


@dataclass(frozen=True)
class Mismatch:
    relation: str
    problems: list[str]

    def render(self) -> str:
        return f"{self.relation}:\n" + "\n".join(f"    {p}" for p in self.problems)


def compare_fingerprints(athena: TableFingerprint, duck: TableFingerprint) -> list[str]:
    """What differs between the Athena-SQL table and the DuckDB build's ([] when nothing)."""
    if athena.columns != duck.columns:
        return [f"columns differ: Athena SQL {athena.columns}, DuckDB build {duck.columns}"]
    problems = [
        f"column {name}: {a} from the Athena SQL, {d} in the DuckDB build"
        for name, a, d in zip(athena.columns, athena.families, duck.families, strict=True)
        if a != d
    ]
    if athena.row_count != duck.row_count:
        problems.append(f"{athena.row_count} rows from the Athena SQL, {duck.row_count} in DuckDB")
    if athena.digest != duck.digest or athena.rows != duck.rows:
        differing = [
            name
            for name, a, d in zip(
                athena.columns, athena.column_digests, duck.column_digests, strict=True
            )
            if a != d
        ]
        problems.append(f"the rows differ, in the columns {differing or '(combinations only)'}")
        sides = (
            ("Athena SQL only", athena.rows - duck.rows, athena),
            ("DuckDB only", duck.rows - athena.rows, duck),
        )
        for label, side, fp in sides:
            for digest in list(side)[:3]:
                shown = dict(zip(fp.columns, fp.examples[digest], strict=True))
                if differing:  # the first column (the key, in this project) and the differing
                    keep = {fp.columns[0], *differing}
                    shown = {k: v for k, v in shown.items() if k in keep}
                problems.append(f"{label}: {shown}")
    return problems


def compare_builds(
    athena_database: Path,
    duckdb_build: Path,
    relations: Sequence[Relation],
) -> list[Mismatch]:
    """Each relation built from the Athena SQL against the same relation of the DuckDB
    target's build (`duckdb_build`, opened read-only)."""
    mismatches = []
    athena_con = duckdb.connect(str(athena_database), read_only=True)
    duck_con = duckdb.connect(str(duckdb_build), read_only=True)
    try:
        existing = {
            (schema, name)
            for schema, name in duck_con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        for relation in relations:
            if (relation.schema, relation.name) not in existing:
                mismatches.append(Mismatch(relation.label, ["missing from the DuckDB build"]))
                continue
            problems = compare_fingerprints(
                fingerprint(athena_con, relation.quoted), fingerprint(duck_con, relation.quoted)
            )
            if problems:
                mismatches.append(Mismatch(relation.label, problems))
    finally:
        athena_con.close()
        duck_con.close()
    return mismatches


# -- the whole check -------------------------------------------------------------------------


@dataclass
class AthenaCheck:
    run: AthenaRun
    mismatches: list[Mismatch]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.run.test_failures

    def failing_models(self) -> list[str]:
        return [m.relation for m in self.mismatches]

    def render(self) -> str:
        lines = [
            f"Athena SQL on DuckDB: {len(self.run.models)} models built, "
            f"{self.run.tests_run} data tests run ({self.run.database})"
        ]
        compared = len(self.run.models)
        lines.append(
            f"  compared with the DuckDB build: {compared - len(self.mismatches)} of {compared} "
            "models identical"
        )
        lines.extend("  " + m.render() for m in self.mismatches)
        lines.append(
            f"  data tests on the Athena SQL: {len(self.run.test_failures)} of "
            f"{self.run.tests_run} returned rows"
        )
        for test, rows in self.run.test_failures.items():
            lines.append(f"  {test} returned rows, e.g. {rows[:3]}")
        return "\n".join(lines)


def check_athena_sql(
    athena: AthenaCompile, trusted_root: Path, duckdb_build: Path, scratch_database: Path
) -> AthenaCheck:
    """Run the compiled Athena project on DuckDB over `trusted_root` and compare every model
    with the DuckDB target's build in `duckdb_build`."""
    run = run_athena_sql_on_duckdb(athena, trusted_root, scratch_database)
    return AthenaCheck(run, compare_builds(scratch_database, duckdb_build, run.models))
