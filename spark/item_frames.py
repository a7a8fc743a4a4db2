"""Line frames and item frames: the shapes both sources' transforms share.

Line frames, the input of the ``*_items`` and ``parse_*`` functions of
``spark.imdb_transforms`` and ``spark.tmdb_transforms``, have the schema ``LINES_SCHEMA``:
``value`` (one raw line), ``source_key`` (the lake key of its file) and ``source_date`` (the
date of its raw partition).

Item frames, their output, hold one row per unit of input (a CSV line, a TMDB movie in a
discover page, a details response, a genre of a genre list) with ``raw_line`` (the text as
sent), ``reason`` (null when the item is valid, else why it is rejected), ``source_key``,
``source_date`` and the typed values. ``rejected_rows`` and ``valid_rows`` split them; the
rejected rows of every source share ``REJECTED_SCHEMA``, partitioned by ``PARTITION_COLUMNS``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    StringType,
    StructField,
    StructType,
)

LINES_SCHEMA = StructType(
    [
        StructField("value", StringType()),
        StructField("source_key", StringType()),
        StructField("source_date", DateType()),
    ]
)

REJECTED_SCHEMA = StructType(
    [
        StructField("raw_line", StringType()),
        StructField("reason", StringType()),
        StructField("source_key", StringType()),
        StructField("run_date", DateType()),
        StructField("year", StringType()),
        StructField("month", StringType()),
        StructField("day", StringType()),
    ]
)
PARTITION_COLUMNS = ("year", "month", "day")


def valid_rows(items: DataFrame) -> DataFrame:
    """The items that passed validation (``reason`` is null), without the ``reason`` column."""
    return items.filter(F.col("reason").isNull()).drop("reason")


def rejected_rows(items: DataFrame, run_date: dt.date) -> DataFrame:
    """The items that failed validation, as ``_rejected`` rows (``REJECTED_SCHEMA``).

    They are partitioned by the date of the raw partition they came from, so re-running a date
    replaces its rejections and nothing else.
    """
    return items.filter(F.col("reason").isNotNull()).select(
        F.col("raw_line").cast("string").alias("raw_line"),
        F.col("reason").cast("string").alias("reason"),
        F.col("source_key").cast("string").alias("source_key"),
        F.lit(run_date).cast("date").alias("run_date"),
        F.date_format("source_date", "yyyy").alias("year"),
        F.date_format("source_date", "MM").alias("month"),
        F.date_format("source_date", "dd").alias("day"),
    )
