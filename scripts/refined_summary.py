"""Summarize the refined layer after a local dbt build: rows per refined table, the fact's rows
per snapshot date, test outcomes, and where the DuckDB file and the docs are.

    python scripts/refined_summary.py [--lake ./lake] [--target-path target] [--schema refined]

It reads the DuckDB file (`<lake>/refined/movie_lake.duckdb`, read-only) and dbt's
`run_results.json`; it runs no model. `summarize()` returns the same facts for other scripts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DUCKDB_FILE = Path("refined") / "movie_lake.duckdb"
FACT = "fct_movie_popularity"
DATES_SHOWN = 5  # the fact's latest snapshot dates listed one by one


@dataclass(frozen=True)
class RefinedSummary:
    duckdb_path: Path
    rows_per_table: dict[str, int]
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    dbt_command: str | None = None
    docs_index: Path | None = None
    fact_rows_per_date: dict[dt.date, int] = field(default_factory=dict)

    @property
    def tests_failed(self) -> int:
        return sum(
            counts[status]
            for resource, counts in self.outcomes.items()
            if resource in ("test", "unit_test")
            for status in ("fail", "error")
        )

    def render(self) -> str:
        width = max((len(name) for name in self.rows_per_table), default=10)
        lines = [f"Refined layer: {len(self.rows_per_table)} tables in {self.duckdb_path}"]
        for name, rows in self.rows_per_table.items():
            lines.append(f"  {name:<{width}}  {rows:>9,} rows")
        if self.fact_rows_per_date:
            dates = sorted(self.fact_rows_per_date)
            shown = dates[-DATES_SHOWN:]
            earlier = f" (and {len(dates) - len(shown)} earlier)" if len(dates) > len(shown) else ""
            lines.append(f"{FACT} by snapshot date: {len(dates)} date(s){earlier}")
            for day in shown:
                lines.append(
                    f"  {day.isoformat():<{width}}  {self.fact_rows_per_date[day]:>9,} rows"
                )
        if self.dbt_command is None:
            lines.append("dbt: no run_results.json found (run `dbt build` first)")
        else:
            lines.append(f"Last dbt command: dbt {self.dbt_command}")
            if self.dbt_command not in ("build", "test"):
                lines.append("  (test outcomes come from `dbt build` or `dbt test`)")
        for resource in ("model", "test", "unit_test"):
            counts = self.outcomes.get(resource)
            if counts:
                detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                lines.append(f"  {resource.replace('_', ' ')}s: {detail}")
        if self.docs_index is not None:
            lines.append(f"Docs: {self.docs_index} (`make docs` serves them on 127.0.0.1)")
        else:
            lines.append("Docs: not generated yet (`make docs` generates and serves them)")
        return "\n".join(lines)


def refined_row_counts(duckdb_path: Path, schema: str = "refined") -> dict[str, int]:
    """Rows of every table (not view) of `schema` in the DuckDB file, by table name."""
    import duckdb

    if not duckdb_path.is_file():
        raise FileNotFoundError(
            f"no DuckDB file at {duckdb_path}: run `dbt build` (local target) with the same "
            "LAKE_URI first"
        )
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_type = 'BASE TABLE' order by table_name",
                [schema],
            ).fetchall()
        ]
        counts: dict[str, int] = {}
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            schema_quoted = '"' + schema.replace('"', '""') + '"'
            row = connection.execute(f"select count(*) from {schema_quoted}.{quoted}").fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def rows_per_snapshot_date(duckdb_path: Path, schema: str = "refined") -> dict[dt.date, int]:
    """The fact's rows per snapshot date (empty when the file has no fact table yet)."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        found = connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, FACT],
        ).fetchone()
        if not found or not found[0]:
            return {}
        schema_quoted = '"' + schema.replace('"', '""') + '"'
        rows = connection.execute(
            f"select snapshot_date, count(*) from {schema_quoted}.{FACT} group by 1 order by 1"
        ).fetchall()
    return {day: int(count) for day, count in rows}


def run_outcomes(run_results_path: Path) -> tuple[str | None, dict[str, Counter[str]]]:
    """The last dbt command (build, test, run, ...) and its nodes' statuses per resource type
    (model, test, unit_test, ...). (None, {}) when dbt has not written run_results.json."""
    if not run_results_path.is_file():
        return None, {}
    results = json.loads(run_results_path.read_text(encoding="utf-8"))
    outcomes: dict[str, Counter[str]] = {}
    for result in results.get("results", []):
        resource = result["unique_id"].split(".", 1)[0]
        outcomes.setdefault(resource, Counter())[str(result["status"])] += 1
    command = results.get("args", {}).get("which")
    return ("docs generate" if command == "generate" else command), outcomes


def summarize(
    lake: Path | str = "./lake", target_path: Path | str = "target", schema: str = "refined"
) -> RefinedSummary:
    lake_path = Path(lake)
    target = Path(target_path)
    duckdb_path = lake_path / DUCKDB_FILE
    index = target / "index.html"
    command, outcomes = run_outcomes(target / "run_results.json")
    return RefinedSummary(
        duckdb_path=duckdb_path,
        rows_per_table=refined_row_counts(duckdb_path, schema),
        outcomes=outcomes,
        dbt_command=command,
        docs_index=index if index.is_file() else None,
        fact_rows_per_date=rows_per_snapshot_date(duckdb_path, schema),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", default=os.environ.get("LAKE_URI", "./lake"))
    parser.add_argument("--target-path", default=os.environ.get("DBT_TARGET_PATH", "target"))
    parser.add_argument("--schema", default="refined")
    args = parser.parse_args(argv)
    if "://" in args.lake:
        print(f"refined_summary reads a local lake folder, not {args.lake}", file=sys.stderr)
        return 2
    try:
        summary = summarize(args.lake, args.target_path, args.schema)
    except FileNotFoundError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(summary.render())
    return 1 if summary.tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
