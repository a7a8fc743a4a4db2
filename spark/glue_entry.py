"""AWS Glue entry point of the trusted job: a thin guard around ``spark.trusted_job``.

Glue runs this file as the job script (with the ``spark`` package from ``--extra-py-files``)
and passes its arguments as ``--JOB_NAME name --LAKE_URI s3://bucket --RUN_DATE YYYY-MM-DD``
among its own (``--job-bookmark-option``, ``--TempDir``, ...). On Glue the arguments are read
with ``awsglue.utils.getResolvedOptions``; anywhere else (plain pyspark, tests) with argparse,
which ignores the arguments it does not know just as Glue's parser does. ``RUN_DATE`` and
``LAKE_URI`` may also come from the environment; ``RUN_DATE`` defaults to today (UTC).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ingestion.log_format import configure_logging
from spark.trusted_job import JobArgs, parse_run_date, run_job

log = logging.getLogger("spark.glue_entry")
JOB_OPTIONS = ("JOB_NAME", "LAKE_URI", "RUN_DATE")


def glue_available() -> bool:
    try:
        import awsglue.utils  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_options(argv: Sequence[str]) -> dict[str, str | None]:
    """``JOB_NAME``, ``LAKE_URI`` and ``RUN_DATE`` from Glue-style arguments (``argv[0]`` is
    the script). Glue's ``getResolvedOptions`` requires every option it is asked for, so only
    those present are asked for; the rest fall back to the environment."""
    present = [name for name in JOB_OPTIONS if f"--{name}" in argv]
    if glue_available():
        from awsglue.utils import getResolvedOptions

        found: dict[str, Any] = getResolvedOptions(list(argv), present)
    else:
        import argparse

        parser = argparse.ArgumentParser(prog="glue_entry", add_help=False)
        for name in JOB_OPTIONS:
            parser.add_argument(f"--{name}", dest=name)
        known, _unknown = parser.parse_known_args(list(argv[1:]))
        found = {name: getattr(known, name) for name in present}
    return {name: found.get(name) or os.environ.get(name) for name in JOB_OPTIONS}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the job with Glue's arguments; raises on failure, so Glue marks the run failed."""
    configure_logging()
    argv = list(sys.argv if argv is None else argv)
    options = resolve_options(argv)
    args = JobArgs(
        lake_uri=options["LAKE_URI"] or "./lake",
        run_date=parse_run_date(options["RUN_DATE"]),
    )
    log.info(
        "Glue job %s: LAKE_URI=%s RUN_DATE=%s", options["JOB_NAME"], args.lake_uri, args.run_date
    )
    return run_job(args, on_glue=glue_available())


if __name__ == "__main__":
    main()
