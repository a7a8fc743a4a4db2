"""Helpers of the trusted-job and dbt fault-injection tests: run the real command as a
subprocess (killed at a named step by ``MOVIE_LAKE_FAULT_AT``, spark/faults.py), and read what
a reader of the lake would see (DuckDB over the trusted parquet and over the refined file).

The test lakes reuse the writers of the other test areas: the raw partitions of
``tests/spark/spark_raw_builder.py`` and the trusted tables of ``tests/dbt/dbt_fixture_lake.py``
(imported by path: each test area keeps its helpers in its own folder).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[2]
for _area in ("spark", "dbt"):
    if str(REPO / "tests" / _area) not in sys.path:
        sys.path.insert(0, str(REPO / "tests" / _area))

# Re-exported for the fault tests (after the path above is set).
import dbt_fixture_lake as dbt_fixture  # noqa: E402
from dbt_fixture_lake import build_trusted_lake  # noqa: E402
from spark_raw_builder import (  # noqa: E402
    RawLakeBuilder,
    details,
    discover_movie,
    discover_page,
    genre_list,
)

__all__ = [
    "RawLakeBuilder",
    "build_trusted_lake",
    "dbt_fixture",
    "details",
    "discover_movie",
    "discover_page",
    "genre_list",
]

FAULT_ENV = "MOVIE_LAKE_FAULT_AT"
KILLED = -signal.SIGKILL  # a subprocess's return code when SIGKILL ended it
# What trusted/ holds besides tables: the run reports, the locks, the staging of runs.
NOT_TABLES = {"_runs", "_locks", "_staging", "_rejected"}


def env_for(
    lake: Path, run_date: dt.date, fault: str | None = None, **extra: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LAKE_URI": str(lake),
        "RUN_DATE": run_date.isoformat(),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(REPO),
        **extra,
    }
    env.pop(FAULT_ENV, None)
    env.pop("DBT_TARGET", None)
    env.pop("LOCK_WAIT_SECONDS", None)
    if fault:
        env[FAULT_ENV] = fault
    return env


@dataclass
class Run:
    """A command started in its own process group, its output going to a file."""

    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    started: float

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], log_path: Path) -> Run:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return cls(args, log_path, process, time.monotonic())

    def wait(self, timeout: float = 600) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            # whatever the process left running in its group (a JVM whose driver died) goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.seconds = time.monotonic() - self.started
        return code

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return f"$ {' '.join(self.args)}\n{self.log[-chars:]}"


def trusted_command(lake: Path, run_date: dt.date, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "spark.trusted_job",
        "--lake-uri", str(lake), "--run-date", run_date.isoformat(), *extra,
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# What a reader sees
# ---------------------------------------------------------------------------------------------


def trusted_tables(lake: Path) -> list[str]:
    """Every table folder under trusted/ (``_rejected/<table>`` included)."""
    trusted = lake / "trusted"
    tables = [p.name for p in trusted.iterdir() if p.is_dir() and p.name not in NOT_TABLES]
    rejected = trusted / "_rejected"
    if rejected.is_dir():
        tables += [f"_rejected/{p.name}" for p in rejected.iterdir() if p.is_dir()]
    return sorted(tables)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def rows_of(folder: Path) -> list[str]:
    """A parquet table's rows as DuckDB reads them (every ``*.parquet`` under the folder, as
    the refined layer's sources do), sorted; duplicates kept."""
    if not any(folder.rglob("*.parquet")):
        return []
    con = duckdb.connect()
    try:
        glob = str(folder / "**" / "*.parquet")
        rows = con.sql(f"select * from read_parquet('{glob}', hive_partitioning=true)").fetchall()
    finally:
        con.close()
    return sorted(repr(tuple(_hashable(v) for v in row)) for row in rows)


def trusted_rows(lake: Path) -> dict[str, list[str]]:
    return {table: rows_of(lake / "trusted" / table) for table in trusted_tables(lake)}


def files_with_times(folder: Path) -> dict[str, int]:
    """Every file under a folder (relative path) with its modification time in ns."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


def leftovers(lake: Path) -> list[str]:
    """Temporary things no finished run leaves: staging folders, Spark ``_temporary`` folders,
    lock files and their temporary files."""
    trusted = lake / "trusted"
    found = [str(p.relative_to(lake)) for p in trusted.rglob("_temporary")]
    if (trusted / "_staging").exists():
        found.append("trusted/_staging")
    for locks in lake.glob("*/_locks"):
        found += [str(p.relative_to(lake)) for p in locks.iterdir()]
    return sorted(found)


def refined_tables(db_file: Path) -> dict[str, list[str]]:
    """Every table of the DuckDB file (any schema) with its sorted rows; opening it read-only
    fails if the file is damaged."""
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        names = con.sql(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' order by 1, 2"
        ).fetchall()
        return {
            f"{schema}.{name}": sorted(
                repr(tuple(_hashable(v) for v in row))
                for row in con.sql(f'select * from "{schema}"."{name}"').fetchall()
            )
            for schema, name in names
        }
    finally:
        con.close()


def refined_relations(db_file: Path) -> list[str]:
    """Every table and view of the DuckDB file, ``schema.name``."""
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        return [
            f"{schema}.{name}"
            for schema, name in con.sql(
                "select table_schema, table_name from information_schema.tables order by 1, 2"
            ).fetchall()
        ]
    finally:
        con.close()
