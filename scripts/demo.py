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

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fake_tmdb.server import serve_fake_tmdb  # noqa: E402
from ingestion.csv_landing import land_all  # noqa: E402
from ingestion.exit_codes import ExitCode  # noqa: E402
from ingestion.lake import Lake, open_lake  # noqa: E402
from ingestion.log_format import LOG_FORMAT  # noqa: E402
from ingestion.settings import Settings, SettingsError, load_settings  # noqa: E402
from scripts.refined_summary import rows_per_snapshot_date, summarize  # noqa: E402

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


class StageFailed(RuntimeError):
    """A stage exited non-zero: its log file holds the whole output."""


@dataclasses.dataclass
class Console:
    """What the demo prints: one line per stage (its time and what it made), a ticking clock
    while a stage runs on a terminal, and each stage's whole output in a log file."""

    log_dir: Path
    tty: bool = dataclasses.field(default_factory=lambda: sys.stdout.isatty())

    def log_file(self, name: str) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"{name}.log"

    def run(self, label: str, name: str, args: list[str], env: dict[str, str]) -> float:
        """Run a stage's command with its output in ``<log_dir>/<name>.log``; returns the time
        it took. On failure prints the end of the log and its path, then raises."""
        path = self.log_file(name)
        started = time.monotonic()
        with path.open("a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(args)}\n")
            out.flush()
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            while True:
                try:
                    code = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if self.tty:
                        print(f"\r  .. {label:<18} {time.monotonic() - started:5.0f} s", end="")
                        sys.stdout.flush()
        if self.tty:
            print("\r" + " " * 40 + "\r", end="")
        elapsed = time.monotonic() - started
        if code != 0:
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
            print(f"  x {label:<18} {elapsed:5.1f} s  failed (exit code {code})")
            print("\n".join(f"    {line}" for line in tail))
            print(f"  the whole output: {path}")
            raise StageFailed(label)
        return elapsed

    def done(self, label: str, elapsed: float, what: str) -> None:
        print(f"  ok {label:<18} {elapsed:5.1f} s  {what}", flush=True)


def _tmdb_made(lake: Lake, day: dt.date) -> str:
    """Records per TMDB dataset landed for ``day``, from the partitions' manifests."""
    parts = []
    for dataset in ("discover", "movie_details", "genres"):
        key = f"raw/tmdb/json/{dataset}/year={day:%Y}/month={day:%m}/day={day:%d}/_manifest.json"
        if not lake.exists(key):
            continue  # no partition that day (e.g. no new movie details)
        manifest = json.loads(lake.get_bytes(key))
        records = sum(int(f.get("records") or 0) for f in manifest.get("files", []))
        parts.append(f"{dataset} {records:,}")
    return "responses: " + ", ".join(parts) + " -> raw/tmdb/json"


def _trusted_made(tables: dict[str, object], imdb_skipped: dict[str, str]) -> str:
    counts = [c for c in tables.values() if isinstance(c, dict)]
    rows = sum(int(c.get("rows_out") or 0) for c in counts)
    rejected = sum(int(c.get("rejected") or 0) for c in counts)
    skipped = f", {len(imdb_skipped)} IMDb tables skipped (unchanged input)" if imdb_skipped else ""
    return f"{len(counts)} tables, {rows:,} rows, {rejected:,} rejected{skipped} -> trusted/"


def _dbt_made(target: Path, added: int) -> str:
    try:
        results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no run_results.json"
    statuses: dict[str, int] = {}
    for result in results.get("results", []):
        kind = result.get("unique_id", "").split(".")[0]
        if kind in ("model", "test", "unit_test"):
            key = f"{kind.replace('_', ' ')}s {result.get('status')}"
            statuses[key] = statuses.get(key, 0) + 1
    made = ", ".join(f"{n} {k}" for k, n in sorted(statuses.items()))
    return f"{made}; fct_movie_popularity +{added:,} rows"


def main() -> int:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.setdefault("LAKE_URI", str(ROOT / "lake"))
    env.setdefault("DBT_PROFILES_DIR", str(ROOT))
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for var in ("TMDB_API_KEY", "TMDB_API_KEY_FILE", "TMDB_BASE_URL"):
        env.pop(var, None)  # the demo talks to its own fake server only
    try:
        settings = load_settings(env)
    except SettingsError as e:
        print(f"make demo: {e}")
        return ExitCode.SETTINGS
    if settings.lake.is_s3:
        print("make demo runs on a local lake folder; unset LAKE_URI or point it at a folder")
        return 2
    env["LAKE_URI"] = str(settings.lake)
    lake = open_lake(settings)
    days = [DayRun(1, settings.run_date - dt.timedelta(days=1)), DayRun(2, settings.run_date)]
    duckdb_path = Path(settings.lake.root) / "refined" / "movie_lake.duckdb"
    console = Console(
        Path(settings.lake.root) / "_logs" / f"demo_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    )
    # Every Python stage logs in one format (ingestion/log_format.py), into the stage's file.
    print(
        f"movie-lake demo: the sample data into {settings.lake}, two daily runs "
        f"({days[0].day}, {days[1].day}); each stage's whole output in {console.log_dir}/"
    )
    env["DBT_USE_COLORS"] = "false"  # plain text in the log files
    try:
        fact_rows = _demo_days(console, settings, lake, env, days, duckdb_path)
        # Read before `dbt docs generate` rewrites run_results.json: the build's outcomes.
        summary = summarize(settings.lake.root, ROOT / "target")
        elapsed = console.run(
            "dbt docs generate",
            "dbt_docs",
            [str(BIN / "dbt"), "docs", "generate", "--target", "local"],
            env,
        )
        console.done("dbt docs generate", elapsed, f"{ROOT / 'target' / 'index.html'}")
    except StageFailed:
        return 1
    summary = dataclasses.replace(summary, docs_index=ROOT / "target" / "index.html")

    print(f"\nDemo finished in {time.monotonic() - started:.0f} s ({fact_rows:,} fact rows)")
    print(f"Lake:      {settings.lake}")
    print(f"  raw:     {lake.uri('raw/')}")
    print(f"  trusted: {lake.uri('trusted/')}")
    print(f"  logs:    {console.log_dir}")
    print(summary.render())
    print(render_days(days))
    print("Next: make dashboard (the refined layer in a browser), make docs (the dbt catalogue)")
    return 1 if summary.tests_failed else 0


def _demo_days(
    console: Console,
    settings: Settings,
    lake: Lake,
    env: dict[str, str],
    days: list[DayRun],
    duckdb_path: Path,
) -> int:
    """Land the CSVs once, then run each day's TMDB extraction, trusted job and dbt build;
    returns the fact's rows at the end."""
    first_day = dataclasses.replace(settings, run_date=days[0].day)
    with _logging_to(console.log_file("csv_landing")):
        began = time.monotonic()
        results = land_all(first_day, lake, ["movies", "series"], progress=False)
    console.done(
        "CSV landing",
        time.monotonic() - began,
        ", ".join(f"{r.dataset} {r.status} {r.rows:,} rows" for r in results),
    )
    for result in results:
        print(f"     {result.uri}")
    fact_rows = 0
    for run in days:
        print(f"day {run.number} ({run.day})")
        day_env = {**env, "RUN_DATE": run.day.isoformat()}
        with serve_fake_tmdb(
            api_key=DEMO_KEY, imdb_csv=settings.movies_csv, day=run.number
        ) as base_url:
            tmdb_env = {**day_env, "TMDB_BASE_URL": base_url, "TMDB_API_KEY": DEMO_KEY}
            # The fake server has no rate limit of its own: the demo does not wait on TMDB's.
            tmdb_env["TMDB_RATE_LIMIT"] = env.get("TMDB_RATE_LIMIT", "200")
            elapsed = console.run(
                "TMDB extraction",
                f"day{run.number}_tmdb",
                [str(BIN / "python"), "-m", "ingestion", "tmdb"],
                tmdb_env,
            )
        console.done("TMDB extraction", elapsed, _tmdb_made(lake, run.day))

        elapsed = console.run(
            "trusted job",
            f"day{run.number}_trusted",
            [str(BIN / "python"), "-m", "spark.trusted_job"],
            day_env,
        )
        tables = trusted_report(lake, run.day).get("tables", {})
        run.trusted_tables = tables if isinstance(tables, dict) else {}
        console.done("trusted job", elapsed, _trusted_made(run.trusted_tables, run.imdb_skipped()))

        elapsed = console.run(
            "dbt build",
            f"day{run.number}_dbt",
            [str(BIN / "python"), "-m", "scripts.dbt_locked", "build", "--target", "local"],
            day_env,
        )
        per_date = rows_per_snapshot_date(duckdb_path)
        run.fact_rows_added = sum(per_date.values()) - fact_rows
        run.fact_rows_of_day = per_date.get(run.day, 0)
        fact_rows = sum(per_date.values())
        console.done("dbt build", elapsed, _dbt_made(ROOT / "target", run.fact_rows_added))
    return fact_rows


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """Route this process's log records (an in-process stage) to ``path`` for a while."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


if __name__ == "__main__":
    sys.exit(main())
