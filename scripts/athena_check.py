"""``make athena-check``: the production SQL path of the refined layer, checked offline.

    python scripts/athena_check.py [--lake ./lake] [--work-dir DIR]

On a local lake whose trusted/ layer is built (`make demo`, or `make ingest`):

1. compiles the dbt project for Athena against a moto server started here on 127.0.0.1 and
   stopped at the end (dbt-athena's STS, Glue and S3 calls go there; nothing leaves the machine);
2. checks the DDL that registers the trusted tables on Athena against every parquet file under
   trusted/: columns, order, types, partitions (scripts/trusted_ddl.py);
3. builds the models on DuckDB (`dbt run --target local`) into the work folder, leaving the
   lake's own refined/ untouched;
4. runs every compiled Athena model and data test on DuckDB, transpiled by sqlglot, over the same
   parquet, and compares each model with the DuckDB build (scripts/athena_on_duckdb.py).

Exit status: 0 when everything agrees, 1 when something differs (each difference is printed,
naming the model or table and the column), 2 when there is no trusted layer to check.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.athena_on_duckdb import (  # noqa: E402
    AthenaCheck,
    check_athena_sql,
    compile_for_athena,
    run_dbt,
)
from scripts.trusted_ddl import check_trusted_ddl  # noqa: E402

log = logging.getLogger("athena_check")


class UsageError(Exception):
    """The check cannot run: what is missing and how to get it."""


@dataclass
class AthenaCheckReport:
    ddl_problems: list[str]
    athena: AthenaCheck

    @property
    def ok(self) -> bool:
        return not self.ddl_problems and self.athena.ok

    def render(self) -> str:
        lines = [f"Trusted DDL against the parquet: {len(self.ddl_problems)} problems"]
        lines.extend(f"  {problem}" for problem in self.ddl_problems)
        lines.append(self.athena.render())
        lines.append("athena-check: OK" if self.ok else "athena-check: FAILED")
        return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local_profiles(work_dir: Path) -> Path:
    """profiles.yml with the committed local target, its DuckDB file moved into work_dir."""
    profiles = yaml.safe_load((ROOT / "profiles.yml").read_text(encoding="utf-8"))
    local = profiles["movie_lake"]["outputs"]["local"]
    local["path"] = str(work_dir / "duckdb_build" / "movie_lake.duckdb")
    profiles_dir = work_dir / "duckdb_profiles"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profiles), encoding="utf-8")
    return Path(local["path"])


def run_checks(lake: Path, work_dir: Path) -> AthenaCheckReport:
    """Both checks on the local lake folder `lake`; work files under `work_dir`."""
    from moto.server import ThreadedMotoServer

    trusted = lake / "trusted"
    if not trusted.is_dir() or not any(trusted.rglob("*.parquet")):
        raise UsageError(
            f"no trusted parquet under {trusted}: build the trusted layer first "
            "(`make demo` on the bundled sample, or `make ingest`), or point --lake / LAKE_URI "
            "at a lake folder that has one"
        )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's access log
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        log.info("compiling the dbt project for Athena (AWS calls go to a local moto server)")
        athena = compile_for_athena(work_dir / "athena_target", f"http://127.0.0.1:{port}")
    finally:
        server.stop()

    log.info("checking the trusted DDL against the parquet under %s", trusted)
    ddl_problems = check_trusted_ddl(athena.trusted_tables(), trusted)

    log.info("building the models on DuckDB (dbt run --target local) into %s", work_dir)
    duckdb_build = _local_profiles(work_dir)
    env = {
        **os.environ,
        "LAKE_URI": str(lake),
        "DBT_PROFILES_DIR": str(work_dir / "duckdb_profiles"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("DBT_TARGET", None)
    run_dbt(["run", "--target", "local"], env, work_dir / "duckdb_target")

    log.info("running the Athena SQL on DuckDB and comparing every model")
    check = check_athena_sql(athena, trusted, duckdb_build, work_dir / "athena_sql.duckdb")
    return AthenaCheckReport(ddl_problems, check)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lake",
        default=os.environ.get("LAKE_URI", "./lake"),
        help="the local lake folder (default: LAKE_URI, else ./lake)",
    )
    parser.add_argument(
        "--work-dir",
        help="keep the compiled SQL, the DuckDB build and the Athena-SQL database here "
        "(default: a temporary folder, removed at the end)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if "://" in args.lake:
        log.error(
            "make athena-check reads a local lake folder, not %s: point LAKE_URI (or --lake) "
            "at a folder, e.g. the ./lake of `make demo`",
            args.lake,
        )
        return 2
    lake = Path(args.lake).resolve()
    started = time.monotonic()
    try:
        if args.work_dir:
            work_dir = Path(args.work_dir).resolve()
            work_dir.mkdir(parents=True, exist_ok=True)
            report = run_checks(lake, work_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="athena-check-") as tmp:
                report = run_checks(lake, Path(tmp))
    except UsageError as error:
        log.error("%s", error)
        return 2
    print(report.render())
    print(f"Checked {lake} in {time.monotonic() - started:.0f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
