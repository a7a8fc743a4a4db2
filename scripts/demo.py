"""``make demo``: the whole pipeline on the bundled sample, into ./lake, for two days, then what
it made.

Each stage reads only what the one before wrote, through the lake. The demo runs the daily
pipeline twice: day 1 is the day before RUN_DATE (default today), day 2 is RUN_DATE.
1. land the sample CSVs in raw, once, on day 1 (IMDb's files do not change);
then each day, with RUN_DATE set to that day:
2. extract TMDB's horror catalogue from the fake TMDB server (started here on 127.0.0.1 with a
   demo key, stopped after), which serves that day: on day 2 the same movies with other
   popularity and votes; the same command a real run uses;
3. run the trusted PySpark job;
4. build and test the dbt models on DuckDB: on day 2 the fact gets day 2's rows only.
Then it generates the docs and prints a summary: the rows each day added to the fact, and what
the trusted job did with the IMDb tables on day 2, as its run report says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fake_tmdb.server import serve_fake_tmdb  # noqa: E402
from ingestion.csv_landing import land_all  # noqa: E402
from ingestion.lake import Lake, open_lake  # noqa: E402
from ingestion.settings import load_settings  # noqa: E402
from scripts.refined_summary import rows_per_snapshot_date, summarize  # noqa: E402

log = logging.getLogger("demo")
DEMO_KEY = "demo-key-for-the-local-fake-tmdb"  # accepted only by the fake server
BIN = Path(sys.executable).parent
IMDB_TABLES = ("imdb_movies", "imdb_series", "imdb_movie_credits", "imdb_series_credits",
               "imdb_movie_genres", "imdb_series_genres")  # fmt: skip


@dataclasses.dataclass
class DayRun:
    """What one day of the demo did."""

    number: int
    day: dt.date
    fact_rows_added: int = 0
    fact_rows_of_day: int = 0
    trusted_tables: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)

    def imdb_skipped(self) -> dict[str, str]:
        """The IMDb tables the trusted run report says it skipped, with its reason."""
        return {
            table: reason
            for table in IMDB_TABLES
            if (reason := skip_reason(self.trusted_tables.get(table, {})))
        }


def skip_reason(counts: object) -> str:
    """Why the trusted job skipped a table, from the table's entry in its run report ("" when
    it did not): a `skipped` entry (e.g. "unchanged input"), or a `status` of "skipped"."""
    if not isinstance(counts, dict):
        return ""
    reason = counts.get("skipped")
    if reason:
        return reason if isinstance(reason, str) else "skipped"
    if counts.get("status") == "skipped":
        return str(counts.get("reason") or "skipped")
    return ""


def trusted_report(lake: Lake, day: dt.date) -> dict[str, object]:
    """The latest trusted run report for ``day`` (reports are named <run date>_<time>_<id>)."""
    reports = sorted(k for k in lake.list("trusted/_runs/") if f"/{day.isoformat()}_" in k)
    return json.loads(lake.get_bytes(reports[-1])) if reports else {}


def render_days(days: list[DayRun]) -> str:
    lines = ["Daily runs:"]
    for run in days:
        line = (
            f"  day {run.number} ({run.day}): dbt added {run.fact_rows_added:,} rows to "
            f"fct_movie_popularity ({run.fact_rows_of_day:,} for snapshot date {run.day})"
        )
        lines.append(line)
        if run.number > 1:
            skipped = run.imdb_skipped()
            if skipped:
                reasons = sorted(set(skipped.values()))
                lines.append(
                    f"    trusted job: {len(skipped)} of {len(IMDB_TABLES)} IMDb tables skipped "
                    f"({', '.join(reasons)}): {', '.join(sorted(skipped))}"
                )
            else:
                lines.append(
                    "    trusted job: IMDb tables rebuilt from the same raw CSVs (its run report "
                    "names no skipped table)"
                )
    return "\n".join(lines)


def _run(args: list[str], env: dict[str, str]) -> None:
    log.info("$ %s", " ".join(args))
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def _stage(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.setdefault("LAKE_URI", str(ROOT / "lake"))
    env.setdefault("DBT_PROFILES_DIR", str(ROOT))
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for var in ("TMDB_API_KEY", "TMDB_API_KEY_FILE", "TMDB_BASE_URL"):
        env.pop(var, None)  # the demo talks to its own fake server only
    settings = load_settings(env)
    if settings.lake.is_s3:
        log.error("make demo runs on a local lake folder; unset LAKE_URI or point it at a folder")
        return 2
    env["LAKE_URI"] = str(settings.lake)
    lake = open_lake(settings)
    days = [DayRun(1, settings.run_date - dt.timedelta(days=1)), DayRun(2, settings.run_date)]
    duckdb_path = Path(settings.lake.root) / "refined" / "movie_lake.duckdb"

    _stage(f"1. CSV landing (raw/local/csv), once, on day 1 ({days[0].day})")
    first_day = dataclasses.replace(settings, run_date=days[0].day)
    for result in land_all(first_day, lake, ["movies", "series"], progress=True):
        print(f"  {result.dataset}: {result.status}, {result.rows} rows -> {result.uri}")

    fact_rows = 0
    for run in days:
        day_env = {**env, "RUN_DATE": run.day.isoformat()}
        title = f"Day {run.number} ({run.day})"
        _stage(f"{title}: 2. TMDB extraction from the fake TMDB server (raw/tmdb/json)")
        with serve_fake_tmdb(
            api_key=DEMO_KEY, imdb_csv=settings.movies_csv, day=run.number
        ) as base_url:
            tmdb_env = {**day_env, "TMDB_BASE_URL": base_url, "TMDB_API_KEY": DEMO_KEY}
            tmdb_env["TMDB_RATE_LIMIT"] = env.get("TMDB_RATE_LIMIT", "200")
            _run([str(BIN / "python"), "-m", "ingestion", "tmdb"], tmdb_env)

        _stage(f"{title}: 3. Trusted job (PySpark, local mode)")
        _run([str(BIN / "python"), "-m", "spark.trusted_job"], day_env)
        tables = trusted_report(lake, run.day).get("tables", {})
        run.trusted_tables = tables if isinstance(tables, dict) else {}
        for table, counts in run.trusted_tables.items():
            print(f"  {table}: {counts}")

        _stage(f"{title}: 4. Refined model (dbt build on DuckDB, RUN_DATE={run.day})")
        _run([str(BIN / "dbt"), "build", "--target", "local"], day_env)
        per_date = rows_per_snapshot_date(duckdb_path)
        run.fact_rows_added = sum(per_date.values()) - fact_rows
        run.fact_rows_of_day = per_date.get(run.day, 0)
        fact_rows = sum(per_date.values())

    summary = summarize(settings.lake.root, ROOT / "target")
    _run([str(BIN / "dbt"), "docs", "generate", "--target", "local"], env)
    summary = dataclasses.replace(summary, docs_index=ROOT / "target" / "index.html")

    _stage(f"Demo finished in {time.monotonic() - started:.0f} s")
    print(f"Lake:      {settings.lake}")
    print(f"  raw:     {lake.uri('raw/')}")
    print(f"  trusted: {lake.uri('trusted/')}")
    print(summary.render())
    print(render_days(days))
    return 1 if summary.tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
