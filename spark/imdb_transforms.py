"""IMDb CSV transforms raw -> trusted: each takes DataFrames and returns a DataFrame.

The two CSV datasets (``MOVIES``, ``SERIES``) and their columns; the CSV reader's settings and
schema (``CSV_OPTIONS``, ``csv_read_schema``); typing the reader's rows (``type_csv_rows``,
one strict-cast rule); the trusted tables built from them (``imdb_titles``, ``imdb_credits``,
``imdb_title_genres``); and the rejected rows with their reasons (``imdb_rejected``, through
``parse_csv_lines`` on the raw lines). Nothing here reads or writes storage, counts rows or
collects data: the job (``spark.trusted_job``) does. Every input and output has an explicit
schema (no inference); line and item frames are described in ``spark.item_frames``.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from spark.item_frames import rejected_rows

IMDB_NULL = r"\N"
NUL = "\x00"
NUL_REASON = "a NUL byte (\\0) in the line"

# numeric kind -> (the SQL type of its strict cast, words for a reason)
_KINDS: dict[str, tuple[str, str]] = {
    "int": ("INT", "an integer"),
    "bigint": ("BIGINT", "an integer"),
    "double": ("DOUBLE", "a decimal number"),
}


@dataclass(frozen=True)
class CsvColumn:
    source: str  # the header name in the raw CSV
    name: str  # the trusted column name
    kind: str  # "string", "int", "bigint", "double" or "list" (comma-separated strings)


@dataclass(frozen=True)
class CsvDataset:
    """One IMDb CSV: its raw columns in file order and the trusted tables it feeds."""

    name: str  # "movies" or "series": the raw dataset folder and file name
    titles_table: str
    credits_table: str
    genres_table: str
    columns: tuple[CsvColumn, ...]
    title_columns: tuple[str, ...]  # trusted columns of the titles table, title_id first

    @property
    def header(self) -> str:
        return "|".join(c.source for c in self.columns)

    @property
    def raw_dataset(self) -> str:
        return f"raw/local/csv/{self.name}"


def _movie_columns(with_end_year: bool) -> tuple[CsvColumn, ...]:
    cols = [
        CsvColumn("id", "title_id", "string"),
        CsvColumn("tituloPincipal", "primary_title", "string"),
        CsvColumn("tituloOriginal", "original_title", "string"),
        CsvColumn("anoLancamento", "release_year", "int"),
    ]
    if with_end_year:
        cols.append(CsvColumn("anoTermino", "end_year", "int"))
    cols += [
        CsvColumn("tempoMinutos", "runtime_minutes", "int"),
        CsvColumn("genero", "genres", "list"),
        CsvColumn("notaMedia", "average_rating", "double"),
        CsvColumn("numeroVotos", "num_votes", "bigint"),
        CsvColumn("generoArtista", "artist_category", "string"),
        CsvColumn("personagem", "characters", "string"),
        CsvColumn("nomeArtista", "artist_name", "string"),
        CsvColumn("anoNascimento", "birth_year", "int"),
        CsvColumn("anoFalecimento", "death_year", "int"),
        CsvColumn("profissao", "professions", "list"),
        CsvColumn("titulosMaisConhecidos", "known_for_title_ids", "list"),
    ]
    return tuple(cols)


_TITLE_COLUMNS = (
    "title_id",
    "primary_title",
    "original_title",
    "release_year",
    "runtime_minutes",
    "genres",
    "average_rating",
    "num_votes",
)
MOVIES = CsvDataset(
    name="movies",
    titles_table="imdb_movies",
    credits_table="imdb_movie_credits",
    genres_table="imdb_movie_genres",
    columns=_movie_columns(with_end_year=False),
    title_columns=_TITLE_COLUMNS,
)
SERIES = CsvDataset(
    name="series",
    titles_table="imdb_series",
    credits_table="imdb_series_credits",
    genres_table="imdb_series_genres",
    columns=_movie_columns(with_end_year=True),
    title_columns=(*_TITLE_COLUMNS[:4], "end_year", *_TITLE_COLUMNS[4:]),
)
CREDIT_COLUMNS = (
    "title_id",
    "artist_name",
    "artist_category",
    "characters",
    "birth_year",
    "death_year",
    "professions",
    "known_for_title_ids",
)
_SPARK_TYPES = {
    "string": StringType(),
    "int": IntegerType(),
    "bigint": LongType(),
    "double": DoubleType(),
    "list": ArrayType(StringType()),
}


def _schema_of(dataset: CsvDataset, names: tuple[str, ...]) -> StructType:
    kinds = {c.name: c.kind for c in dataset.columns}
    return StructType([StructField(n, _SPARK_TYPES[kinds[n]]) for n in names])


def titles_schema(dataset: CsvDataset) -> StructType:
    return _schema_of(dataset, dataset.title_columns)


def credits_schema(dataset: CsvDataset) -> StructType:
    return _schema_of(dataset, CREDIT_COLUMNS)


GENRES_SCHEMA = StructType(
    [StructField("title_id", StringType()), StructField("genre", StringType())]
)


def _cast(name: str, column: CsvColumn) -> tuple[Column, Column]:
    """A numeric field's value (``\\N`` already null) by Spark's strict cast (``try_cast``), and
    whether it failed: a value the type cannot hold (``19x9``, ``abc``, ``95.5`` for an integer,
    an empty string). The one rule both the job's flag and the rejection reasons apply."""
    typed = F.expr(f"try_cast(`{name}` AS {_KINDS[column.kind][0]})")
    return typed, F.col(name).isNotNull() & typed.isNull()


def _typed(name: str, column: CsvColumn) -> tuple[Column, Column | None]:
    """The typed value of one raw field (``\\N`` already null) and, if it can fail, the failure."""
    value = F.col(name)
    if column.kind == "string":
        return value, None
    if column.kind == "list":
        return _split_list(value), None
    typed, failed = _cast(name, column)
    words = _KINDS[column.kind][1]
    reason = F.when(
        failed, F.concat(F.lit(f"{column.source} is not {words}: '"), value, F.lit("'"))
    )
    return typed, reason


def parse_csv_lines(
    lines: DataFrame, dataset: CsvDataset, *, skip_header: bool = True
) -> DataFrame:
    """Split raw CSV lines on ``|`` into typed columns, with a rejection reason per line.

    A trailing carriage return is dropped (CRLF and LF files parse alike) and the header line is
    skipped. ``\\N`` becomes null in any column before any cast. A line is rejected when it has
    the wrong number of fields, no title id, a carriage return anywhere but at its end, or a
    value that is not of its column's type (an empty string in a numeric column is such a
    value). List columns split on commas; an empty string there is an empty list. Text columns
    are kept as sent.
    """
    expected = len(dataset.columns)
    stripped = lines.select(
        F.regexp_replace("value", "\r$", "").alias("raw_line"), "source_key", "source_date"
    )
    if skip_header:
        stripped = stripped.filter(F.col("raw_line") != F.lit(dataset.header))
    split = stripped.withColumn("_fields", F.split("raw_line", r"\|", -1))

    nulled = [
        F.when(F.col("_fields").getItem(i) != IMDB_NULL, F.col("_fields").getItem(i)).alias(
            f"_v{i}"
        )
        for i in range(expected)
    ]
    values = split.select(
        "raw_line",
        "source_key",
        "source_date",
        F.size("_fields").alias("_n"),
        *nulled,
    )

    typed_cols: list[Column] = []
    failures: list[Column] = []
    for i, column in enumerate(dataset.columns):
        typed, failed = _typed(f"_v{i}", column)
        typed_cols.append(typed.alias(column.name))
        if failed is not None:
            failures.append(failed)
    title_id = F.col("_v0")
    failures.insert(0, F.when(title_id.isNull() | (title_id == ""), F.lit("id is missing")))
    failures.insert(
        1,
        F.when(
            F.col("raw_line").contains("\r"),
            F.lit("a carriage return (\\r) inside the line, not at its end"),
        ),
    )
    value_reason = F.concat_ws("; ", *failures)
    # A NUL byte is a reason of its own, before any other: such a line is not text, and how it
    # splits into fields says nothing.
    reason = (
        F.when(F.col("raw_line").contains(NUL), F.lit(NUL_REASON))
        .when(
            F.col("_n") != expected,
            F.format_string(f"wrong field count: %d fields, expected {expected}", F.col("_n")),
        )
        .otherwise(F.when(value_reason != "", value_reason))
    )

    return values.select(
        "raw_line", "source_key", "source_date", reason.alias("reason"), *typed_cols
    )


# The job reads each CSV with Spark's CSV reader (fast, native) in these settings: every column a
# string, "|" separator, quoting off, header skipped, lines ended by "\n" only (the reader's
# default also ends one at a lone "\r"; a CRLF line's "\r" is stripped from its last field), and
# a line with the wrong number of fields kept whole in CORRUPT. The reader turns an empty field
# into null and leaves "\\N" as text, so the two stay apart: type_csv_rows maps null back to ""
# and "\\N" to null. Quoting is off by making the quote character "\n", which a line never
# holds: the reader's own way ("quote": "") makes NUL the quote character, so a field starting
# with a NUL byte would swallow separators and lose its NULs.
CORRUPT = "_corrupt_record"
CSV_OPTIONS = {
    "sep": "|",
    "quote": "\n",
    # The header line is read as a row and dropped by ``without_header``: Spark's own header
    # check compares the names with the `\r` of a CRLF header still on the last one (lines end at
    # `\n` only) and warns of a mismatch that is none.
    "header": "false",
    "encoding": "UTF-8",
    "lineSep": "\n",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
}


def without_header(rows: DataFrame, dataset: CsvDataset) -> DataFrame:
    """The reader's rows (``CSV_OPTIONS``, straight from ``spark.read``) without each file's
    header line: the row of the file's first block whose fields are the header's names (the
    last one with or without the `\r` of a CRLF line). The landing checked that the first line
    is exactly the header; a data line equal to it would be dropped too, and the job's check of
    the rows read against the landing's count fails the run, so no line is lost unseen."""
    last = dataset.columns[-1].source
    names = [F.col(c.source) == F.lit(c.source) for c in dataset.columns[:-1]]
    names.append(F.col(last).isin(last, last + "\r"))
    is_header = (F.col("_metadata.file_block_start") == 0) & functools.reduce(Column.__and__, names)
    return rows.where(~F.coalesce(is_header, F.lit(False)))


def csv_read_schema(dataset: CsvDataset) -> StructType:
    """The reader's schema: each raw column as a string (by its header name), then CORRUPT."""
    return StructType(
        [StructField(c.source, StringType()) for c in dataset.columns]
        + [StructField(CORRUPT, StringType())]
    )


def _without_cr_end(name: str) -> Column:
    """Column ``name`` without one trailing ``\\r`` (a CRLF line's; the reader cut the ``\\n``)."""
    return F.expr(
        f"CASE WHEN endswith(`{name}`, '\\r') THEN substring(`{name}`, 1, length(`{name}`) - 1) "
        f"ELSE `{name}` END"
    )


def _as_sent(source: str) -> Column:
    """A field's text as sent (the reader's null is an empty field), ``\\N`` as null."""
    text = F.coalesce(F.col(source), F.lit(""))
    return F.when(text != IMDB_NULL, text)


def type_csv_rows(rows: DataFrame, dataset: CsvDataset) -> DataFrame:
    """Typed rows from the CSV reader's rows (``csv_read_schema`` plus ``source_key`` and
    ``source_date``), one per data line.

    Output: ``source_key``, ``source_date``, ``invalid`` (the row goes to ``_rejected``),
    ``raw_line`` (only for invalid rows: the line as sent, without its line ending) and every
    trusted column, typed, except that list columns stay comma-separated text (split when the
    tables are built, so the dedupe and the aggregation handle flat rows). A row is invalid when
    it has the wrong number of fields, no title id, or a value its column's type cannot hold
    (an empty numeric field included); ``imdb_rejected`` says which. Numbers are read by
    Spark's strict cast (``try_cast``): ``19x9``, ``abc`` or ``95.5`` for an integer fail.
    """
    last = dataset.columns[-1].source
    ended = rows.select(
        *[F.col(c) for c in rows.columns if c not in (last, CORRUPT)],
        _without_cr_end(last).alias(last),
        _without_cr_end(CORRUPT).alias(CORRUPT),
    )
    texts = [_as_sent(c.source).alias(c.name) for c in dataset.columns]

    def anywhere(char: str) -> Column:
        found = functools.reduce(
            Column.__or__, [F.col(c.source).contains(char) for c in dataset.columns]
        )
        return F.coalesce(found, F.lit(False))

    stage = ended.select(
        "source_key",
        "source_date",
        F.col(CORRUPT),
        (anywhere("\r") | anywhere(NUL)).alias("_bad_char"),
        *texts,
    )
    typed: list[Column] = []
    failed: list[Column] = [F.col(CORRUPT).isNotNull(), F.col("_bad_char")]
    for c in dataset.columns:
        if c.kind in _KINDS:
            value, cast_failed = _cast(c.name, c)
            failed.append(cast_failed)
            typed.append(value.alias(c.name))
        else:
            typed.append(F.col(c.name))
    title_id = F.col("title_id")
    failed.append(title_id.isNull() | (title_id == ""))
    invalid = failed[0]
    for condition in failed[1:]:
        invalid = invalid | condition
    # The line as sent, rebuilt from its fields (a null text was "\\N"), and where it came from:
    # for the invalid rows only, so that the valid ones carry no more than their values.
    rebuilt = F.concat_ws(
        "|", *[F.coalesce(F.col(c.name), F.lit(IMDB_NULL)) for c in dataset.columns]
    )
    return stage.select(
        F.when(invalid, F.col("source_key")).alias("source_key"),
        F.when(invalid, F.col("source_date")).alias("source_date"),
        invalid.alias("invalid"),
        F.when(invalid, F.coalesce(F.col(CORRUPT), rebuilt)).alias("raw_line"),
        *typed,
    )


def cluster_by_title(typed: DataFrame) -> DataFrame:
    """The typed rows hash-partitioned by ``title_id``: one shuffle that serves both the
    credits' exact-duplicate removal (equal rows share a title id) and the titles' aggregation,
    which then need no exchange of their own."""
    return typed.repartition("title_id")


def imdb_valid(typed: DataFrame) -> DataFrame:
    """The valid typed rows, without ``invalid`` and ``raw_line``."""
    return typed.filter(~F.col("invalid")).drop("invalid", "raw_line")


def imdb_rejected(typed: DataFrame, dataset: CsvDataset, run_date: dt.date) -> DataFrame:
    """The invalid typed rows as ``_rejected`` rows, each with the reason ``parse_csv_lines``
    finds in its raw line (the detailed check runs on the rejected rows only)."""
    lines = typed.filter(F.col("invalid")).select(
        F.col("raw_line").alias("value"), "source_key", "source_date"
    )
    explained = parse_csv_lines(lines, dataset, skip_header=False)
    fallback = F.lit(f"not a valid {dataset.name}.csv row for its column types")
    return rejected_rows(
        explained.withColumn("reason", F.coalesce(F.col("reason"), fallback)), run_date
    )


def _split_list(text: Column) -> Column:
    """Comma-separated text as a list: ``""`` is an empty list, null stays null."""
    empty = F.array().cast(ArrayType(StringType()))
    return F.when(text == "", empty).otherwise(F.split(text, ",", -1))


_LIST_COLUMNS = {"genres", "professions", "known_for_title_ids"}


def _output(name: str) -> Column:
    return _split_list(F.col(name)).alias(name) if name in _LIST_COLUMNS else F.col(name)


def imdb_credits(valid: DataFrame, dataset: CsvDataset) -> DataFrame:
    """One row per title x credited artist: the valid rows, exact duplicates removed.

    Duplicates are rows equal in every column (one hash aggregation on them).
    """
    columns = [c.name for c in dataset.columns]
    return valid.dropDuplicates(columns).select(*[_output(c) for c in CREDIT_COLUMNS])


def _winner_key(num_votes: Column) -> Column:
    """Sort key, smallest first: the most votes wins; a null count ranks below zero votes."""
    return -F.coalesce(num_votes, F.lit(-1).cast("bigint"))


def imdb_titles(valid: DataFrame, dataset: CsvDataset) -> DataFrame:
    """One row per title from the valid rows of a title (title x artist grain).

    Title fields repeat on every row of a title. When a title's rows disagree, the values of
    one row win, all together: the row with the most votes (``numeroVotos``; a null counts below
    zero), and among those the row whose title fields are smallest, compared in column order
    (primary title first; a null is smaller than any value). Every title with at least one valid
    row is kept, whatever its nulls. Aggregations only, no window.
    """
    fields = [c for c in dataset.title_columns if c != "title_id"]
    order = F.struct(_winner_key(F.col("num_votes")).alias("_key"), *[F.col(c) for c in fields])
    winner = F.min_by(F.struct(*[F.col(c) for c in fields]), order).alias("_w")
    # First the distinct title-field combinations (a hash aggregation that shrinks the rows to
    # about one per title), then the winner among them per title, which sorts only those.
    # (``min_by``, unlike ``min``, keeps the optimizer from dropping the distinct step.)
    return (
        valid.select(*dataset.title_columns)
        .dropDuplicates(list(dataset.title_columns))
        .groupBy("title_id")
        .agg(winner)
        .select("title_id", *[F.col(f"_w.{c}").alias(c) for c in fields])
        .select(*[_output(c) for c in dataset.title_columns])
    )


def imdb_title_genres(titles: DataFrame) -> DataFrame:
    """One row per title x genre, from the titles table's genre lists (repeats removed)."""
    return titles.select("title_id", F.explode(F.array_distinct("genres")).alias("genre")).select(
        "title_id", "genre"
    )


def genre_entries() -> Column:
    """How many genre entries a title holds (0 for a null list): the genres table's input."""
    return F.coalesce(F.when(F.col("genres").isNotNull(), F.size("genres")), F.lit(0))
