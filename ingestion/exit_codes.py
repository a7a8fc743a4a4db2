"""The exit codes of the command line (``movie-lake``, ``python -m ingestion``); README.md
lists them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    STAGE_FAILED = 1  # a stage started and failed: bad input data, the API, the lake
    USAGE = 2  # the command line itself is wrong (argparse's own code)
    SETTINGS = 3  # a setting is invalid or missing: RUN_DATE, LAKE_URI, the TMDB key, ...
    LOCKED = 4  # another run holds this lake and day (a landing's partition, the trusted job, dbt)
