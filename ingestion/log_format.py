"""The one log line format of every stage (CLI, trusted job, Glue entry, dbt wrapper, demo):
``2024-03-01 10:15:00,123 INFO spark.trusted_job: message``. Spark's own (Java) lines follow
the same pattern through ``spark/log4j2.properties``."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr in ``LOG_FORMAT`` (a no-op when the process has configured logging)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
