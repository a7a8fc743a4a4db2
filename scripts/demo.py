"""``make demo``: the whole pipeline on the bundled sample, into ./lake, then what it made.

Each stage reads only what the one before wrote, through the lake:
1. land the sample CSVs in raw;
2. extract TMDB's horror catalogue from the fake TMDB server (started here on 127.0.0.1 with a
   demo key, stopped at the end), with the same command a real run uses;
3. run the trusted PySpark job;
4. build and test the dbt models on DuckDB, generate the docs, and print a summary.
"""

from __future__ import annotations

import dataclasses
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
from ingestion.lake import open_lake  # noqa: E402
from ingestion.settings import load_settings  # noqa: E402
from scripts.refined_summary import summarize  # noqa: E402

log = logging.getLogger("demo")
DEMO_KEY = "demo-key-for-the-local-fake-tmdb"  # accepted only by the fake server
BIN = Path(sys.executable).parent


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
    env["RUN_DATE"] = settings.run_date.isoformat()
    lake = open_lake(settings)

    _stage("1. CSV landing (raw/local/csv)")
    for result in land_all(settings, lake, ["movies", "series"], progress=True):
        print(f"  {result.dataset}: {result.status}, {result.rows} rows -> {result.uri}")

    _stage("2. TMDB extraction from the fake TMDB server (raw/tmdb/json)")
    with serve_fake_tmdb(api_key=DEMO_KEY, imdb_csv=settings.movies_csv) as base_url:
        tmdb_env = {**env, "TMDB_BASE_URL": base_url, "TMDB_API_KEY": DEMO_KEY}
        tmdb_env["TMDB_RATE_LIMIT"] = env.get("TMDB_RATE_LIMIT", "200")
        _run([str(BIN / "python"), "-m", "ingestion", "tmdb"], tmdb_env)

    _stage("3. Trusted job (PySpark, local mode)")
    _run([str(BIN / "python"), "-m", "spark.trusted_job"], env)
    reports = sorted(lake.list("trusted/_runs/"))
    if reports:
        report = json.loads(lake.get_bytes(reports[-1]))
        for table, counts in report.get("tables", {}).items():
            print(f"  {table}: {counts}")

    _stage("4. Refined model (dbt on DuckDB)")
    _run([str(BIN / "dbt"), "build", "--target", "local"], env)
    summary = summarize(settings.lake.root, ROOT / "target")
    _run([str(BIN / "dbt"), "docs", "generate", "--target", "local"], env)
    summary = dataclasses.replace(summary, docs_index=ROOT / "target" / "index.html")

    _stage(f"Demo finished in {time.monotonic() - started:.0f} s")
    print(f"Lake:      {settings.lake}")
    print(f"  raw:     {lake.uri('raw/')}")
    print(f"  trusted: {lake.uri('trusted/')}")
    print(summary.render())
    return 1 if summary.tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
