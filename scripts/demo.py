"""``make demo``: the whole pipeline on the bundled sample, into ./lake, then what it made.

Stages run in order, each only through the lake layout: land the sample CSVs, extract TMDB
from the fake TMDB server (started here on 127.0.0.1, stopped at the end), run the trusted
Spark job, build and test the dbt models on DuckDB. Stages not yet present are skipped.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestion.csv_landing import land_all  # noqa: E402
from ingestion.lake import open_lake  # noqa: E402
from ingestion.settings import load_settings  # noqa: E402

log = logging.getLogger("demo")


def _run(*args: str, env: dict[str, str]) -> None:
    log.info("$ %s", " ".join(args))
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.setdefault("LAKE_URI", str(ROOT / "lake"))
    settings = load_settings(env)
    if settings.lake.is_s3:
        log.error("make demo runs on a local lake folder; unset LAKE_URI or point it at a folder")
        return 2
    lake = open_lake(settings)

    print("\n== 1. CSV landing ==", flush=True)
    for result in land_all(settings, lake, ["movies", "series"], progress=True):
        print(f"  {result.dataset}: {result.status}, {result.rows} rows -> {result.uri}")

    print(f"\nDemo finished in {time.monotonic() - started:.0f} s. Lake: {settings.lake}")
    for key in lake.list("raw/"):
        print("  " + key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
