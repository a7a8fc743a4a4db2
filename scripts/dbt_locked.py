"""dbt under the lake's per-day lock: one dbt run per lake and day at a time.

    python -m scripts.dbt_locked [--lock-wait SECONDS] <dbt arguments>
    python -m scripts.dbt_locked build --target local          (what make refined runs)

Takes the lease ``refined/_locks/<RUN_DATE>.json`` in the lake (``LAKE_URI``, default
``./lake``; ``RUN_DATE`` defaults to today, UTC) with ``spark/lake_lock.py``, runs dbt in this
process with the arguments as given, and releases the lease. When another run holds the day it
waits up to ``--lock-wait``/``LOCK_WAIT_SECONDS`` (default 0), then exits with code 4 and says
which run holds it; a killed run's lease is taken over (the log names the old holder).
Otherwise the exit code is dbt's own: 0 ok, 1 a model or test failed, 2 dbt itself failed.

The fault-injection tests (``tests/faults/test_dbt_faults.py``) kill it at named steps through
``MOVIE_LAKE_FAULT_AT`` (``spark/faults.py``): ``dbt.after.<model>`` once a model has finished,
``dbt.rename.<model>`` when a table model's new table is built and is about to replace the old
one (inside the model's transaction).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from ingestion.log_format import configure_logging
from spark.faults import fault_point
from spark.lake_lock import (
    LOCKED_EXIT_CODE,
    LockHeldError,
    add_lock_wait_option,
    lake_lock,
    parse_wait,
)

log = logging.getLogger("dbt_locked")
USAGE_EXIT_CODE = 2


def _node_name(msg: Any) -> str | None:
    node_info = getattr(msg.data, "node_info", None)
    name = getattr(node_info, "node_name", None) if node_info is not None else None
    return str(name) if name else None


def fault_callback(msg: Any) -> None:
    """dbt event callback: the ``dbt.*`` fault points (one comparison per event otherwise)."""
    name = msg.info.name
    if name == "NodeFinished":
        node = _node_name(msg)
        if node:
            fault_point(f"dbt.after.{node}")
    elif name == "SQLQuery":
        sql = str(getattr(msg.data, "sql", "")).lower()
        node = _node_name(msg)
        if node and "rename to" in sql and "__dbt_tmp" in sql:
            fault_point(f"dbt.rename.{node}")


def run_date() -> dt.date:
    value = os.environ.get("RUN_DATE")
    if not value:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"RUN_DATE {value!r} is not a date: use YYYY-MM-DD") from None


def invoke_dbt(dbt_args: list[str]) -> int:
    """Run dbt in this process; its exit code (0 ok, 1 failures, 2 dbt's own error)."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner(callbacks=[fault_callback]).invoke(dbt_args)
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    parser = argparse.ArgumentParser(
        prog="python -m scripts.dbt_locked",
        description="dbt under the lake's per-day lock (refined/_locks/<RUN_DATE>.json)",
    )
    add_lock_wait_option(parser)
    parser.add_argument("dbt_args", nargs=argparse.REMAINDER, help="dbt's command and flags")
    ns = parser.parse_args(argv)
    if not ns.dbt_args:
        parser.error("give dbt's command, e.g. build --target local")
    try:
        wait = parse_wait(ns.lock_wait)
        day = run_date()
    except ValueError as exc:
        log.error("%s", exc)
        return USAGE_EXIT_CODE
    lake_uri = os.environ.get("LAKE_URI") or "./lake"
    run_id = f"dbt_{day}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:8]}"
    try:
        with lake_lock(lake_uri, "refined", day, run_id=run_id, wait_seconds=wait):
            return invoke_dbt(list(ns.dbt_args))
    except LockHeldError as exc:
        log.error("%s", exc)
        return LOCKED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
