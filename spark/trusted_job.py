"""The trusted job: complete raw partitions in, trusted parquet tables out, and a run report.

    python -m spark.trusted_job [--lake-uri LAKE_URI] [--run-date YYYY-MM-DD]
                                [--full-refresh] [--lock-wait SECONDS]

Reads, for ``RUN_DATE``: the latest complete landing (on or before it) of each IMDb CSV, the
TMDB discover snapshot of that date, and every complete TMDB details and genres partition up to
it; only partitions with ``_SUCCESS``, and only the files their ``_manifest.json`` lists.
Writes the tables of ``docs/lake-contract.md`` under ``trusted/``, rejected rows under
``trusted/_rejected/<table>/`` and ``trusted/_runs/<run id>.json``. The same code runs in local
mode and as an AWS Glue job (``spark/glue_entry.py``). ``spark/README.md`` has the rules.

One run per lake and day at a time (``spark/lake_lock.py``; exit code 4 when another run holds
the day). Each table is written to a staging folder and then put in place whole
(``spark/trusted_commit.py``), so a killed run leaves no partial table; the next run cleans its
leftovers. The IMDb tables record the landing they were built from (``_built_from.json``) and are
left untouched when the latest landing is that one (``skipped: unchanged input``), unless the
job version changed or ``--full-refresh`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from ingestion.log_format import configure_logging
from spark.faults import register_child
from spark.imdb_transforms import (
    CSV_OPTIONS,
    MOVIES,
    SERIES,
    CsvDataset,
    cluster_by_title,
    csv_read_schema,
    genre_entries,
    imdb_credits,
    imdb_rejected,
    imdb_title_genres,
    imdb_titles,
    imdb_valid,
    titles_schema,
    type_csv_rows,
    without_header,
)
from spark.item_frames import LINES_SCHEMA, PARTITION_COLUMNS, rejected_rows, valid_rows
from spark.lake_io import (
    LakeFS,
    RawFile,
    RawPartition,
    TrustedJobError,
    each_at_once,
    resolve_lake_root,
)
from spark.lake_lock import (
    LOCKED_EXIT_CODE,
    LakeLock,
    LockHeldError,
    LockLostError,
    add_lock_wait_option,
    lake_lock,
    parse_wait,
)
from spark.long_lines import find_long_lines, long_line_items
from spark.tmdb_transforms import (
    details_items,
    discover_items,
    genre_items,
    tmdb_details,
    tmdb_genres,
    tmdb_snapshots,
)
from spark.trusted_commit import Leftover, TableCommitter

log = logging.getLogger("spark.trusted_job")
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.properties")

# The typed CSV rows after the shuffle by title id, kept for the three actions that read them.
IMDB_STORAGE = StorageLevel.MEMORY_AND_DISK

# The version of what the job makes of an IMDb landing. A table built by another version is
# rebuilt even when its landing is unchanged: bump it with any change to the IMDb tables' rows
# or columns (a rule, a type, a new column). 2: NUL bytes and over-long lines rejected.
JOB_VERSION = "2"
SKIPPED = "unchanged input"
COUNT_KEYS = ("rows_in", "rows_out", "rejected", "deduplicated")

# The longest CSV line the job reads (bytes, line ending included); a longer one is rejected
# with only its first bytes kept (``spark/long_lines.py``), so no task ever holds it whole.
MAX_LINE_ENV = "CSV_MAX_LINE_BYTES"
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
MIN_MAX_LINE_BYTES = 1024  # the header must fit
# Hadoop's line reader skips a line of this many bytes or more (line ending included).
HADOOP_MAX_LINE = "mapreduce.input.linerecordreader.line.maxlength"

DISCOVER = "raw/tmdb/json/discover"
DETAILS = "raw/tmdb/json/movie_details"
GENRES = "raw/tmdb/json/genres"


def parse_max_line_bytes(value: str | None) -> int:
    """The CSV line limit from ``CSV_MAX_LINE_BYTES`` (or its flag): a whole number of bytes,
    at least ``MIN_MAX_LINE_BYTES``; 1 MiB when not given."""
    if value is None or not value.strip():
        return DEFAULT_MAX_LINE_BYTES
    try:
        bytes_ = int(value.strip())
    except ValueError:
        bytes_ = 0
    if bytes_ < MIN_MAX_LINE_BYTES:
        raise TrustedJobError(
            f"{MAX_LINE_ENV} is {value!r}: give a whole number of bytes, at least "
            f"{MIN_MAX_LINE_BYTES} (the default is {DEFAULT_MAX_LINE_BYTES}, 1 MiB)"
        )
    return bytes_


def _max_line_from_env() -> int:
    return parse_max_line_bytes(os.environ.get(MAX_LINE_ENV))


@dataclass(frozen=True)
class JobArgs:
    lake_uri: str
    run_date: dt.date
    full_refresh: bool = False  # rebuild the IMDb tables even when their landing is unchanged
    lock_wait: float = 0.0  # seconds to wait for another run of the day to finish
    # the longest CSV line read (bytes, line ending included); longer ones are rejected
    csv_max_line_bytes: int = field(default_factory=_max_line_from_env)


def parse_run_date(value: str | None) -> dt.date:
    if not value:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise TrustedJobError(
            f"RUN_DATE {value!r} is not a date: use YYYY-MM-DD, for example 2024-03-01"
        ) from None


def parse_args(argv: Sequence[str] | None = None) -> JobArgs:
    """``--lake-uri``/``--run-date`` flags, defaulting to ``LAKE_URI``/``RUN_DATE``."""
    parser = argparse.ArgumentParser(
        prog="python -m spark.trusted_job", description="raw -> trusted (PySpark)"
    )
    parser.add_argument("--lake-uri", default=os.environ.get("LAKE_URI") or "./lake")
    parser.add_argument(
        "--run-date", default=os.environ.get("RUN_DATE"), help="YYYY-MM-DD (default: today, UTC)"
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the IMDb tables even when the landing they were built from is the latest",
    )
    add_lock_wait_option(parser)
    parser.add_argument(
        "--csv-max-line-bytes",
        default=os.environ.get(MAX_LINE_ENV),
        metavar="BYTES",
        help="a CSV line longer than BYTES (line ending included) is rejected, only its first "
        f"bytes kept ({MAX_LINE_ENV}; default {DEFAULT_MAX_LINE_BYTES}, 1 MiB)",
    )
    ns = parser.parse_args(argv)
    try:
        lock_wait = parse_wait(ns.lock_wait)
    except ValueError as exc:
        raise TrustedJobError(str(exc)) from None
    return JobArgs(
        lake_uri=ns.lake_uri,
        run_date=parse_run_date(ns.run_date),
        full_refresh=ns.full_refresh,
        lock_wait=lock_wait,
        csv_max_line_bytes=parse_max_line_bytes(ns.csv_max_line_bytes),
    )


# ---------------------------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------------------------


def local_session(app_name: str = "movie-lake-trusted") -> SparkSession:
    """A local-mode session with defaults for one machine (every one overridable by env)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    cores = os.cpu_count() or 2
    builder = (
        SparkSession.builder.appName(app_name)
        .master(os.environ.get("SPARK_MASTER", f"local[{cores}]"))
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(4 * cores))
        .config("spark.sql.session.timeZone", "UTC")
    )
    if LOG4J2_CONFIG.is_file():  # Spark's lines in the project's log format, warnings up
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()}"
        )
    if os.environ.get("SPARK_JARS_PACKAGES"):
        builder = builder.config("spark.jars.packages", os.environ["SPARK_JARS_PACKAGES"])
    if os.environ.get("SPARK_JARS"):
        builder = builder.config("spark.jars", os.environ["SPARK_JARS"])
    return builder.getOrCreate()


def get_session() -> tuple[SparkSession, bool]:
    """The active session if there is one; under spark-submit or Glue (a JVM already launched)
    the configured one; else a local-mode session. Returns it and whether the job owns it (a
    local session it started, to stop at the end; Glue's and spark-submit's are left alone)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        return SparkSession.builder.getOrCreate(), False
    return local_session(), True


def configure(spark: SparkSession) -> None:
    """Runtime settings the job relies on (safe to set on any session, Glue's included)."""
    for key, value in {
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.compression.codec": "snappy",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        # Size shuffle partitions, hence output files, by bytes (~128 MB) rather than by cores.
        "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": "128m",
        # Parse every CSV field even when a query needs a few: a line's field count (and so
        # whether it is rejected) must not depend on which columns an output reads.
        "spark.sql.csv.parser.columnPruning.enabled": "false",
        # The typed CSV rows are kept for three actions: uncompressed columns build much faster
        # and fit (a few hundred MB at full size; what does not fit goes to disk).
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        # A read of many files (the TMDB details and genres: one per day of history) lists
        # them in a Spark job of one task per path by default (up to 10,000): 365 tasks for
        # a year, most of the read's time on a small machine. A few tasks per core list them
        # as fast.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            4 * spark.sparkContext.defaultParallelism
        ),
    }.items():
        spark.conf.set(key, value)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The raw partitions a run reads, per input name."""

    partitions: dict[str, list[RawPartition]]
    files: dict[str, list[RawFile]] = field(default_factory=dict)


def _describe_missing(dataset: str, seen: list[RawPartition], where: str) -> str:
    if not seen:
        return f"{dataset}: no partition {where}"
    incomplete = ", ".join(p.key for p in seen[-3:])
    return (
        f"{dataset}: {len(seen)} partition(s) {where}, none complete (no _SUCCESS): "
        f"{incomplete}{' ...' if len(seen) > 3 else ''}"
    )


def plan_inputs(lake: LakeFS, run_date: dt.date) -> Inputs:
    """Choose the complete raw partitions of a run; fail naming every input that has none."""
    chosen: dict[str, list[RawPartition]] = {}
    missing: list[str] = []
    on_or_before = f"on or before {run_date}"
    for dataset in (MOVIES, SERIES):
        seen = [p for p in lake.partitions(dataset.raw_dataset) if p.date <= run_date]
        complete = [p for p in seen if p.complete]
        if complete:
            chosen[dataset.name] = complete[-1:]
        else:
            missing.append(_describe_missing(dataset.raw_dataset, seen, on_or_before))
    seen = [p for p in lake.partitions(DISCOVER) if p.date == run_date]
    if any(p.complete for p in seen):
        chosen["discover"] = seen
    else:
        missing.append(_describe_missing(DISCOVER, seen, f"for {run_date}"))
    for name, dataset in (("movie_details", DETAILS), ("genres", GENRES)):
        seen = [p for p in lake.partitions(dataset) if p.date <= run_date]
        complete = [p for p in seen if p.complete]
        if complete:
            chosen[name] = complete
        else:
            missing.append(_describe_missing(dataset, seen, on_or_before))
    if missing:
        raise TrustedJobError(
            f"no complete raw input for RUN_DATE={run_date} under {lake.root}:\n  - "
            + "\n  - ".join(missing)
            + "\nLand the raw data first (make raw) or pick a RUN_DATE that has it: a partition "
            "is complete once its writer has written _SUCCESS."
        )
    inputs = Inputs(partitions=chosen)
    for name, partitions in chosen.items():
        listed = each_at_once(partitions, lake.manifest_files)
        inputs.files[name] = [f for files in listed for f in files]
    return inputs


def _union(frames: list[DataFrame]) -> DataFrame:
    return functools.reduce(DataFrame.unionByName, frames)


# A raw file's key: the dataset, its year=/month=/day= partition, the file name.
_PARTITIONED_KEY = re.compile(r"^(?P<dataset>.+)/year=(\d{4})/month=(\d{2})/day=(\d{2})/[^/]+$")
# The same partition in the path of a file Spark reads (``_metadata.file_path``).
_PATH_PARTITION = r"/year=(\d{4})/month=(\d{2})/day=(\d{2})/[^/]+$"


def read_lines(spark: SparkSession, files: list[RawFile]) -> DataFrame:
    """The lines of raw files (``LINES_SCHEMA``), split on ``\\n`` only, with their lake key
    and partition date.

    One read per dataset, however many partition dates it holds: the key and the date of each
    line come from its file's ``year=/month=/day=`` path. The TMDB details and genres grow by
    one partition a day, and a read (and a union) per partition would make the plan, and the
    job's time, grow with the history. A file whose key is not in that layout is read on its
    own, its key and date as given."""
    if not files:
        return spark.createDataFrame([], LINES_SCHEMA)
    datasets: dict[str, list[RawFile]] = {}
    others: dict[tuple[str, dt.date], list[RawFile]] = {}
    for f in files:
        match = _PARTITIONED_KEY.match(f.key)
        if match and dt.date(*(int(g) for g in match.groups()[1:])) == f.date:
            datasets.setdefault(match["dataset"], []).append(f)
        else:
            others.setdefault((f.key.rsplit("/", 1)[0], f.date), []).append(f)
    path = F.col("_metadata.file_path")
    year, month, day = (F.regexp_extract(path, _PATH_PARTITION, i) for i in (1, 2, 3))
    frames = [
        spark.read.option("lineSep", "\n")
        .text([f.uri for f in group])
        .select(
            "value",
            F.concat(
                F.lit(f"{dataset}/year="), year, F.lit("/month="), month, F.lit("/day="), day,
                F.lit("/"), F.col("_metadata.file_name"),
            ).alias("source_key"),
            F.make_date(year.cast("int"), month.cast("int"), day.cast("int")).alias("source_date"),
        )
        for dataset, group in datasets.items()
    ]  # fmt: skip
    frames += [
        spark.read.option("lineSep", "\n")
        .text([f.uri for f in group])
        .select(
            "value",
            F.concat(F.lit(folder + "/"), F.col("_metadata.file_name")).alias("source_key"),
            F.lit(date).alias("source_date"),
        )
        for (folder, date), group in others.items()
    ]
    return _union(frames)


def read_csv(
    spark: SparkSession,
    dataset: CsvDataset,
    files: list[RawFile],
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> DataFrame:
    """The data rows of IMDb CSV files through Spark's CSV reader (``CSV_OPTIONS``), as
    ``csv_read_schema`` plus ``source_key`` and ``source_date``. A line longer than
    ``max_line_bytes`` (line ending included) is skipped by Hadoop's line reader without being
    held whole (``spark.long_lines`` finds it for ``_rejected``)."""
    schema = csv_read_schema(dataset)
    if not files:
        empty = StructType([*schema.fields, *LINES_SCHEMA.fields[1:]])
        return spark.createDataFrame([], empty)
    return _union(
        [
            without_header(
                spark.read.schema(schema)
                .options(**CSV_OPTIONS)
                .option(HADOOP_MAX_LINE, str(max_line_bytes + 1))
                .csv(f.uri),
                dataset,
            ).select("*", F.lit(f.key).alias("source_key"), F.lit(f.date).alias("source_date"))
            for f in files
        ]
    )


# ---------------------------------------------------------------------------------------------
# Counting and writing
# ---------------------------------------------------------------------------------------------


@dataclass
class TableCounts:
    rows_in: int
    rows_out: int
    rejected: int
    deduplicated: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rejected + self.deduplicated


def _observed(df: DataFrame, tag: str, *extra: Any) -> tuple[DataFrame, Observation]:
    """``df`` counting its rows (and any ``extra`` aggregates) in whatever action runs it."""
    obs = Observation(f"{tag}-{uuid.uuid4().hex[:8]}")
    return df.observe(obs, F.count(F.lit(1)).alias("rows"), *extra), obs


def _rows(obs: Observation, name: str = "rows") -> int:
    """An observed count. Spark drops the observation of a plan it proved empty (no input
    files), which reports nothing: that is zero rows."""
    return int(obs.get.get(name) or 0)


# The committer of the run in progress: ``_run`` sets it for the run's duration (``committing``),
# so that the table-building code needs nothing but ``_write(df, uri)``.
_COMMITTER: ContextVar[TableCommitter | None] = ContextVar("trusted_committer", default=None)


@contextmanager
def committing(committer: TableCommitter) -> Iterator[TableCommitter]:
    token = _COMMITTER.set(committer)
    try:
        yield committer
    finally:
        _COMMITTER.reset(token)


def _write(df: DataFrame, uri: str, partition_by: Sequence[str] = ()) -> None:
    """Replace a table; partitioned tables only in the partitions ``df`` holds (dynamic). The
    rows go to the run's staging folder first, and the table is put in place whole once they
    are all written (``spark/trusted_commit.py``): a reader never sees a partial table."""
    committer = _COMMITTER.get()
    if committer is None:
        raise RuntimeError("_write is called by a run only (run_job sets its committer)")
    started = time.perf_counter()
    committer.write(df, uri, partition_by)
    log.info("wrote %s in %.1f s", uri, time.perf_counter() - started)


class TrustedJob:
    """One run: plans the inputs, writes every table, reconciles the counts, writes the report."""

    def __init__(
        self,
        spark: SparkSession,
        lake: LakeFS,
        run_date: dt.date,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.spark = spark
        self.lake = lake
        self.run_date = run_date
        self.max_line_bytes = max_line_bytes
        self.tables: dict[str, TableCounts] = {}
        self.errors: list[str] = []

    def _items_to_table(
        self,
        items: DataFrame,
        table: str,
        build: Callable[[DataFrame], DataFrame],
        partition_by: Sequence[str] = (),
    ) -> TableCounts:
        """Write the rejected items, then ``build(valid items)``; two actions over the
        persisted ``items``, whose counts come from observations of those same actions."""
        counted_in, o_in = _observed(items, f"{table}-in")
        rejected, o_rej = _observed(rejected_rows(counted_in, self.run_date), f"{table}-rej")
        _write(
            rejected,
            self.lake.uri(f"trusted/_rejected/{table}"),
            PARTITION_COLUMNS,
        )
        valid, o_valid = _observed(valid_rows(items), f"{table}-valid")
        out, o_out = _observed(build(valid), f"{table}-out")
        _write(out, self.lake.uri(f"trusted/{table}"), partition_by)
        rows_out, n_valid = _rows(o_out), _rows(o_valid)
        counts = TableCounts(_rows(o_in), rows_out, _rows(o_rej), n_valid - rows_out)
        self.tables[table] = counts
        return counts

    def imdb(self, dataset: CsvDataset, files: list[RawFile]) -> None:
        """One read of the CSV and one shuffle by title id, kept (``IMDB_STORAGE``) for the
        actions that write credits, rejected rows and titles; the genres come from the titles
        just written (a small table). The counts come from observations of these actions."""
        rows = read_csv(self.spark, dataset, files, self.max_line_bytes)
        typed = type_csv_rows(rows, dataset)
        by_title = cluster_by_title(typed).persist(IMDB_STORAGE)
        try:
            self._imdb_tables(dataset, files, by_title)
        finally:
            by_title.unpersist()

    def _long_lines(
        self, dataset: CsvDataset, files: list[RawFile], rows_read: int
    ) -> tuple[DataFrame | None, int]:
        """The lines the reader skipped for being over the limit, as rejected items, and how
        many. Looked for only when the job read fewer rows than the manifests count (or a
        manifest gives no count): the search streams each file once, a chunk at a time."""
        expected = [f.records for f in files]
        if all(c is not None for c in expected) and rows_read >= sum(c or 0 for c in expected):
            return None, 0
        limit = self.max_line_bytes
        found = [
            (f.key, f.date, line)
            for f in files
            for line in find_long_lines(self.spark, f.uri, limit)
        ]
        if not found:
            return None, 0
        log.warning(
            "%s: %d line(s) over the %d-byte limit (%s), rejected: %s",
            dataset.raw_dataset,
            len(found),
            limit,
            MAX_LINE_ENV,
            ", ".join(f"{key} line {line.number}" for key, _, line in found[:10]),
        )
        return long_line_items(self.spark, found, limit), len(found)

    def _imdb_tables(self, dataset: CsvDataset, files: list[RawFile], by_title: DataFrame) -> None:
        counted, o_in = _observed(by_title, f"{dataset.name}-in")
        valid, o_valid = _observed(imdb_valid(counted), f"{dataset.name}-valid")
        credits, o_credits = _observed(imdb_credits(valid, dataset), dataset.credits_table)
        _write(credits, self.lake.uri(f"trusted/{dataset.credits_table}"))
        rows_read = _rows(o_in)
        long_lines, n_long = self._long_lines(dataset, files, rows_read)
        rejected = imdb_rejected(by_title, dataset, self.run_date)
        if long_lines is not None:
            rejected = rejected.unionByName(rejected_rows(long_lines, self.run_date))
        rejected, o_rej = _observed(rejected, f"{dataset.name}-rejected")
        _write(
            rejected,
            self.lake.uri(f"trusted/_rejected/{dataset.titles_table}"),
            PARTITION_COLUMNS,
        )
        titles_uri = self.lake.uri(f"trusted/{dataset.titles_table}")
        titles, o_titles = _observed(
            imdb_titles(imdb_valid(by_title), dataset),
            dataset.titles_table,
            F.sum(genre_entries()).alias("genre_entries"),
        )
        _write(titles, titles_uri)
        self._imdb_counts_and_genres(
            dataset, files, rows_in=rows_read + n_long, valid=o_valid, credits=o_credits,
            rejected=o_rej, titles=o_titles, titles_uri=titles_uri,
        )  # fmt: skip

    def _imdb_counts_and_genres(
        self,
        dataset: CsvDataset,
        files: list[RawFile],
        *,
        rows_in: int,
        valid: Observation,
        credits: Observation,
        rejected: Observation,
        titles: Observation,
        titles_uri: str,
    ) -> None:
        """Once credits, rejected rows and titles are written: their counts (from the
        observations of those writes), the manifest check, then the genres table from the
        titles just written, with its counts."""
        n_rejected, n_valid = _rows(rejected), _rows(valid)
        n_credits, n_titles = _rows(credits), _rows(titles)
        self.tables[dataset.credits_table] = TableCounts(
            rows_in, n_credits, n_rejected, n_valid - n_credits
        )
        self.tables[dataset.titles_table] = TableCounts(
            rows_in, n_titles, n_rejected, n_valid - n_titles
        )
        self._check_manifest(dataset, files, rows_in)
        written = self.spark.read.schema(titles_schema(dataset)).parquet(titles_uri)
        genres, o_genres = _observed(imdb_title_genres(written), dataset.genres_table)
        _write(genres, self.lake.uri(f"trusted/{dataset.genres_table}"))
        entries, n_genres = _rows(titles, "genre_entries"), _rows(o_genres)
        self.tables[dataset.genres_table] = TableCounts(entries, n_genres, 0, entries - n_genres)

    def _check_manifest(self, dataset: CsvDataset, files: list[RawFile], rows_in: int) -> None:
        """The landing counted the data rows of each file: the job must read as many."""
        counted = [f.records for f in files]
        if any(c is None for c in counted):
            return
        expected = sum(c for c in counted if c is not None)
        if expected != rows_in:
            self.errors.append(
                f"{dataset.raw_dataset}: the manifest counts {expected} data rows but the job "
                f"read {rows_in} from {', '.join(f.key for f in files)}"
            )

    def tmdb(
        self,
        table: str,
        files: list[RawFile],
        to_items: Callable[[DataFrame], DataFrame],
        build: Callable[[DataFrame], DataFrame],
        partition_by: Sequence[str] = (),
    ) -> None:
        items = to_items(read_lines(self.spark, files)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            self._items_to_table(items, table, build, partition_by)
        finally:
            items.unpersist()

    def reconcile(self) -> None:
        for table, counts in self.tables.items():
            if not counts.balanced or min(asdict(counts).values()) < 0:
                self.errors.append(
                    f"{table}: rows_in {counts.rows_in} != rows_out {counts.rows_out} + rejected "
                    f"{counts.rejected} + deduplicated {counts.deduplicated}"
                )


@dataclass(frozen=True)
class Landing:
    """The raw landing an IMDb dataset is read from: what its tables are built from."""

    dataset: str  # "movies" or "series"
    date: dt.date
    key: str  # the partition, e.g. raw/local/csv/movies/year=2024/month=03/day=01
    manifest_sha256: str  # of its _manifest.json, as stored

    def built_from(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "date": self.date.isoformat(),
            "manifest_sha256": self.manifest_sha256,
        }


def landing_of(lake: LakeFS, dataset: CsvDataset, inputs: Inputs) -> Landing:
    [partition] = inputs.partitions[dataset.name]
    manifest = lake.read_bytes(f"{partition.uri}/_manifest.json")
    sha256 = hashlib.sha256(manifest).hexdigest()
    return Landing(dataset.name, partition.date, partition.key, sha256)


def imdb_tables(dataset: CsvDataset) -> tuple[str, str, str]:
    return (dataset.titles_table, dataset.credits_table, dataset.genres_table)


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _prior_build(
    committer: TableCommitter, tables: Sequence[str], landing: Landing, full_refresh: bool
) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The markers of ``tables`` when all of them say they were built from ``landing`` by this
    job version (the tables can be left as they are); else None and why they are rebuilt."""
    if full_refresh:
        return None, "--full-refresh"
    markers: dict[str, dict[str, Any]] = {}
    for table in tables:
        marker = committer.read_marker(table)
        if marker is None:
            return None, f"{table} has no readable _built_from.json"
        if marker.get("built_from") != landing.built_from():
            return None, f"{table} was built from another landing ({marker.get('built_from')})"
        if marker.get("job_version") != JOB_VERSION:
            return None, (
                f"{table} was built by job version {marker.get('job_version')!r}, "
                f"this is {JOB_VERSION!r}"
            )
        counts = marker.get("counts")
        if not isinstance(counts, dict) or not all(
            isinstance(counts.get(k), int) for k in COUNT_KEYS
        ):
            return None, f"{table}: its _built_from.json holds no counts"
        markers[table] = marker
    return markers, "unchanged"


def _imdb_dataset(
    job: TrustedJob,
    committer: TableCommitter,
    dataset: CsvDataset,
    files: list[RawFile],
    landing: Landing,
    *,
    full_refresh: bool,
    run_id: str,
) -> dict[str, dict[str, Any]]:
    """Build one CSV's tables, or leave them when built from this very landing; returns the
    report's extra fields of each table (``skipped``, ``built_from``, ``built_by``)."""
    tables = imdb_tables(dataset)
    markers, why = _prior_build(committer, tables, landing, full_refresh)
    if markers is not None:
        for table in tables:
            job.tables[table] = TableCounts(**{k: markers[table]["counts"][k] for k in COUNT_KEYS})
        job._check_manifest(dataset, files, job.tables[dataset.titles_table].rows_in)
        built_by = markers[dataset.titles_table].get("run_id")
        log.info(
            "%s: skipped: %s (%s, manifest sha256 %s, built by run %s; counts as recorded then)",
            ", ".join(tables),
            SKIPPED,
            landing.key,
            landing.manifest_sha256[:12],
            built_by,
        )
        return {
            t: {"skipped": SKIPPED, "built_from": landing.built_from(), "built_by": built_by}
            for t in tables
        }
    keys = [f.key for f in files]
    log.info("%s: building from %s (%s): %s", dataset.name, landing.key, why, keys)
    errors_before = len(job.errors)
    job.imdb(dataset, files)
    counts = {t: job.tables[t] for t in tables}
    if len(job.errors) == errors_before and all(c.balanced for c in counts.values()):
        built_at = _iso_now()
        for table in tables:  # the last file of each table's folder
            committer.write_marker(
                table,
                {
                    "table": table,
                    "built_from": landing.built_from(),
                    "landing": landing.key,
                    "job_version": JOB_VERSION,
                    "run_id": run_id,
                    "built_at": built_at,
                    "counts": asdict(counts[table]),
                },
            )
    return {
        t: {"skipped": None, "built_from": landing.built_from(), "built_by": run_id} for t in tables
    }


def run_job(
    args: JobArgs, *, spark: SparkSession | None = None, on_glue: bool = False
) -> dict[str, Any]:
    """Run the job for ``args.run_date``; returns the run report, raises ``TrustedJobError``
    (``LockHeldError`` when another run holds the lake and day).

    Uses ``spark`` (or the active/a new session); stops the session only if it created it.
    The day's lock is taken first, before any session starts, when the lake is a folder or the
    job runs on Glue; an ``s3://`` lake elsewhere needs the session to check hadoop-aws first.
    """
    started = dt.datetime.now(dt.UTC)
    run_id = f"{args.run_date}_{started:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        lock = None
        if on_glue or urlparse(args.lake_uri.strip()).scheme in ("", "file"):
            lock = stack.enter_context(_day_lock(args.lake_uri, args, run_id))
        if spark is None:
            spark, created = get_session()
            if created:
                stack.callback(spark.stop)
        return _run(spark, args, stack, lock, run_id=run_id, started=started, on_glue=on_glue)


def _day_lock(lake_uri: str, args: JobArgs, run_id: str) -> AbstractContextManager[LakeLock]:
    return lake_lock(lake_uri, "trusted", args.run_date, run_id=run_id, wait_seconds=args.lock_wait)


def _register_jvm(spark: SparkSession) -> None:
    """Let a fault point kill the JVM this process launched together with it."""
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    if proc is not None and getattr(proc, "pid", None):
        register_child(proc.pid)


def _run(
    spark: SparkSession,
    args: JobArgs,
    stack: ExitStack,
    lock: LakeLock | None,
    *,
    run_id: str,
    started: dt.datetime,
    on_glue: bool,
) -> dict[str, Any]:
    configure(spark)
    _register_jvm(spark)
    lake = LakeFS(spark, resolve_lake_root(spark, args.lake_uri, on_glue=on_glue))
    if lock is None:
        lock = stack.enter_context(_day_lock(lake.root, args, run_id))
    log.info("trusted run %s for %s on %s", run_id, args.run_date, lake.root)
    inputs = plan_inputs(lake, args.run_date)
    committer = TableCommitter(lake, args.run_date.isoformat(), run_id, check=lock.check)
    try:
        leftovers = committer.recover()
        with committing(committer):
            return _build(spark, lake, args, inputs, committer, lock, leftovers, run_id, started)
    finally:
        try:
            committer.finish()
        except Exception as exc:  # never hide the run's own outcome; the next run cleans
            log.warning("could not remove the staging folder %s: %s", committer.staging, exc)


def _build(
    spark: SparkSession,
    lake: LakeFS,
    args: JobArgs,
    inputs: Inputs,
    committer: TableCommitter,
    lock: LakeLock,
    leftovers: list[Leftover],
    run_id: str,
    started: dt.datetime,
) -> dict[str, Any]:
    job = TrustedJob(spark, lake, args.run_date, args.csv_max_line_bytes)
    imdb: dict[str, dict[str, Any]] = {}
    for dataset in (MOVIES, SERIES):
        files = inputs.files[dataset.name]
        imdb |= _imdb_dataset(
            job,
            committer,
            dataset,
            files,
            landing_of(lake, dataset, inputs),
            full_refresh=args.full_refresh,
            run_id=run_id,
        )
    job.tmdb(
        "tmdb_movie_snapshots",
        inputs.files["discover"],
        discover_items,
        tmdb_snapshots,
        PARTITION_COLUMNS,
    )
    job.tmdb("tmdb_movie_details", inputs.files["movie_details"], details_items, tmdb_details)
    job.tmdb("tmdb_genres", inputs.files["genres"], genre_items, tmdb_genres)
    job.reconcile()

    report: dict[str, Any] = {
        "run_id": run_id,
        "run_date": args.run_date.isoformat(),
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": _iso_now(),
        "status": "failed" if job.errors else "succeeded",
        "lake_uri": lake.root,
        "job_version": JOB_VERSION,
        "full_refresh": args.full_refresh,
        "inputs": {
            name: {
                "partitions": [p.key for p in inputs.partitions[name]],
                "files": [f.key for f in files],
                "manifest_records": sum(f.records or 0 for f in files),
                "bytes": sum(f.size for f in files),
            }
            for name, files in inputs.files.items()
        },
        "tables": {
            name: {**asdict(counts), **imdb.get(name, {})} for name, counts in job.tables.items()
        },
        "leftovers_cleaned": [leftover.as_dict() for leftover in leftovers],
        "lock": {
            "lease": lock.store.where,
            "took_over_from": lock.took_over.run_id if lock.took_over else None,
        },
        "errors": job.errors,
    }
    lock.check()
    report_uri = lake.write_text(f"trusted/_runs/{run_id}.json", json.dumps(report, indent=2))
    log.info("run report: %s", report_uri)
    if job.errors:
        raise TrustedJobError(
            "row counts do not reconcile (raw = trusted + rejected + deduplicated), so this "
            f"run's trusted output cannot be trusted; see {report_uri}:\n  - "
            + "\n  - ".join(job.errors)
        )
    return report


def summary(report: dict[str, Any]) -> str:
    lines = [f"trusted run {report['run_id']} ({report['status']})"]
    for table, c in report["tables"].items():
        skipped = f"  (skipped: {c['skipped']})" if c.get("skipped") else ""
        lines.append(
            f"  {table:<22} in {c['rows_in']:>9}  out {c['rows_out']:>9}  "
            f"rejected {c['rejected']:>7}  deduplicated {c['deduplicated']:>7}{skipped}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, on_glue: bool = False) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 the job failed, 2 bad usage,
    4 another run holds this lake and day)."""
    configure_logging()
    try:
        args = parse_args(argv)
    except TrustedJobError as exc:
        log.error("%s", exc)
        return 2
    try:
        report = run_job(args, on_glue=on_glue)
    except LockHeldError as exc:
        log.error("%s", exc)
        return LOCKED_EXIT_CODE
    except (TrustedJobError, LockLostError) as exc:
        log.error("trusted job failed: %s", exc)
        return 1
    print(summary(report))  # noqa: T201 - the CLI's summary
    return 0


if __name__ == "__main__":
    sys.exit(main())
