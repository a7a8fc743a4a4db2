"""``python -m dashboard``: serve the dashboard on 127.0.0.1, headless, sending no usage stats.

    python -m dashboard [--port 8501] [--duckdb PATH]

`make dashboard` runs this. The DuckDB file is `--duckdb`, else `DASHBOARD_DUCKDB`, else
`<LAKE_URI>/refined/movie_lake.duckdb`; a missing file is reported here and on every page.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dashboard.queries import HOW_TO_BUILD, RefinedLayerUnavailable, refined_duckdb_path

APP = Path(__file__).resolve().parent / "app.py"
log = logging.getLogger("dashboard")


def streamlit_command(port: int) -> list[str]:
    """The `streamlit run` command line: local only, headless, no telemetry, no file watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DASHBOARD_PORT", "8501")))
    parser.add_argument("--duckdb", help="the refined DuckDB file (default: DASHBOARD_DUCKDB)")
    args = parser.parse_args(argv)
    if args.duckdb:
        os.environ["DASHBOARD_DUCKDB"] = args.duckdb
    try:
        path = refined_duckdb_path()
    except RefinedLayerUnavailable as error:
        log.error("%s", error)
        return 2
    if path.is_file():
        log.info("serving %s (read-only) on http://127.0.0.1:%d", path, args.port)
    else:
        log.warning("no refined DuckDB file at %s yet: %s (the pages say so too)", path,
                    HOW_TO_BUILD)  # fmt: skip
    command = streamlit_command(args.port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606  the server replaces this process: Ctrl-C stops it
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
