"""Pure transforms raw -> trusted: each takes DataFrames and returns a DataFrame.

Nothing here reads or writes storage, counts rows or collects data: the job
(``spark.trusted_job``) reads the raw files into line frames, calls these functions, and writes
what they return. Every input and output has an explicit schema (no inference).

Line frames, the input of the ``*_items`` and ``parse_*`` functions, have the schema
``LINES_SCHEMA``: ``value`` (one raw line), ``source_key`` (the lake key of its file) and
``source_date`` (the date of its raw partition).

Item frames, their output, hold one row per unit of input (a CSV line, a TMDB movie in a
discover page, a details response, a genre of a genre list) with ``raw_line`` (the text as
sent), ``reason`` (null when the item is valid, else why it is rejected), ``source_key``,
``source_date`` and the typed values. ``rejected_rows`` and ``valid_rows`` split them.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

IMDB_NULL = r"\N"

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

# ---------------------------------------------------------------------------------------------
# IMDb CSVs
# ---------------------------------------------------------------------------------------------

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
    reason = F.when(
        F.col("_n") != expected,
        F.format_string(f"wrong field count: %d fields, expected {expected}", F.col("_n")),
    ).otherwise(F.when(value_reason != "", value_reason))

    return values.select(
        "raw_line", "source_key", "source_date", reason.alias("reason"), *typed_cols
    )


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


# The job reads each CSV with Spark's CSV reader (fast, native) in these settings: every column a
# string, "|" separator, quoting off, header skipped, lines ended by "\n" only (the reader's
# default also ends one at a lone "\r"; a CRLF line's "\r" is stripped from its last field), and
# a line with the wrong number of fields kept whole in CORRUPT. The reader turns an empty field
# into null and leaves "\\N" as text, so the two stay apart: type_csv_rows maps null back to ""
# and "\\N" to null.
CORRUPT = "_corrupt_record"
CSV_OPTIONS = {
    "sep": "|",
    "quote": "",
    "header": "true",
    "encoding": "UTF-8",
    "lineSep": "\n",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
}


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
    rebuilt = F.concat_ws("|", *[F.coalesce(F.col(c.source), F.lit("")) for c in dataset.columns])
    inner_cr = functools.reduce(
        Column.__or__, [F.col(c.source).contains("\r") for c in dataset.columns]
    )
    stage = ended.select(
        "source_key",
        "source_date",
        F.col(CORRUPT),
        F.coalesce(F.col(CORRUPT), rebuilt).alias("_line"),
        F.coalesce(inner_cr, F.lit(False)).alias("_inner_cr"),
        *texts,
    )
    typed: list[Column] = []
    failed: list[Column] = [F.col(CORRUPT).isNotNull(), F.col("_inner_cr")]
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
    return stage.select(
        "source_key",
        "source_date",
        invalid.alias("invalid"),
        F.when(invalid, F.col("_line")).alias("raw_line"),
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


# ---------------------------------------------------------------------------------------------
# TMDB JSON lines
# ---------------------------------------------------------------------------------------------

_ENVELOPE = StructType(
    [
        StructField("fetched_at", StringType()),
        StructField(
            "request",
            StructType(
                [
                    StructField("path", StringType()),
                    StructField("params", MapType(StringType(), StringType())),
                ]
            ),
        ),
        StructField("status", IntegerType()),
    ]
)


def _envelope(response: StructType) -> StructType:
    return StructType([*_ENVELOPE.fields, StructField("response", response)])


# A list field read as array<string> keeps each element's JSON text as sent, so a rejected
# element can be stored verbatim; each element is then parsed with its own schema.
DISCOVER_ENVELOPE = _envelope(StructType([StructField("results", ArrayType(StringType()))]))
GENRES_ENVELOPE = _envelope(StructType([StructField("genres", ArrayType(StringType()))]))

DISCOVER_MOVIE_SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("title", StringType()),
        StructField("original_title", StringType()),
        StructField("original_language", StringType()),
        StructField("overview", StringType()),
        StructField("popularity", DoubleType()),
        StructField("vote_average", DoubleType()),
        StructField("vote_count", LongType()),
        StructField("release_date", StringType()),
        StructField("genre_ids", ArrayType(IntegerType())),
        StructField("adult", BooleanType()),
    ]
)
DETAILS_SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("imdb_id", StringType()),
        StructField("title", StringType()),
        StructField("original_title", StringType()),
        StructField("runtime", IntegerType()),
        StructField("budget", LongType()),
        StructField("revenue", LongType()),
        StructField("release_date", StringType()),
        StructField(
            "genres",
            ArrayType(
                StructType([StructField("id", IntegerType()), StructField("name", StringType())])
            ),
        ),
    ]
)
DETAILS_ENVELOPE = _envelope(DETAILS_SCHEMA)
GENRE_SCHEMA = StructType([StructField("id", IntegerType()), StructField("name", StringType())])

SNAPSHOTS_SCHEMA = StructType(
    [
        StructField("tmdb_id", LongType()),
        StructField("title", StringType()),
        StructField("original_title", StringType()),
        StructField("original_language", StringType()),
        StructField("overview", StringType()),
        StructField("popularity", DoubleType()),
        StructField("vote_average", DoubleType()),
        StructField("vote_count", LongType()),
        StructField("release_date", DateType()),
        StructField("genre_ids", ArrayType(IntegerType())),
        StructField("adult", BooleanType()),
        StructField("language", StringType()),
        StructField("snapshot_date", DateType()),
        StructField("year", StringType()),
        StructField("month", StringType()),
        StructField("day", StringType()),
    ]
)
DETAILS_TABLE_SCHEMA = StructType(
    [
        StructField("tmdb_id", LongType()),
        StructField("imdb_id", StringType()),
        StructField("title", StringType()),
        StructField("original_title", StringType()),
        StructField("runtime_minutes", IntegerType()),
        StructField("budget", LongType()),
        StructField("revenue", LongType()),
        StructField("release_date", DateType()),
        StructField("genre_ids", ArrayType(IntegerType())),
        StructField("language", StringType()),
        StructField("fetched_at", TimestampType()),
    ]
)
GENRES_TABLE_SCHEMA = StructType(
    [
        StructField("genre_id", IntegerType()),
        StructField("name", StringType()),
        StructField("language", StringType()),
    ]
)


def _date_or_null(text: Column) -> Column:
    """A ``YYYY-MM-DD`` string as a date; ``""`` and null give null (so does a bad date)."""
    return F.when(text.rlike(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), text.cast("date"))


def _bad_date(text: Column, field: str) -> Column:
    return F.when(
        text.isNotNull() & (text != "") & _date_or_null(text).isNull(),
        F.concat(F.lit(f"{field} is not a YYYY-MM-DD date: '"), text, F.lit("'")),
    )


def _parse_envelopes(lines: DataFrame, envelope: StructType) -> DataFrame:
    """Parse each TMDB line's wrapper: adds ``_e`` (the struct), ``fetched_at`` (timestamp),
    ``language`` (the request's) and ``_line_reason`` (why the whole line is rejected)."""
    parsed = lines.select(
        "value", "source_key", "source_date", F.from_json("value", envelope).alias("_e")
    )
    status = F.col("_e.status")
    fetched_at = F.to_timestamp(F.col("_e.fetched_at"))
    line_reason = (
        F.when(status.isNull(), F.lit("not an API response record (invalid JSON or no status)"))
        .when(
            status != 200,
            F.concat(
                F.lit("API status "),
                status.cast("string"),
                F.lit(" for "),
                F.coalesce(F.col("_e.request.path"), F.lit("an unknown path")),
            ),
        )
        .when(fetched_at.isNull(), F.lit("fetched_at is missing or not a timestamp"))
    )
    return parsed.select(
        "*",
        fetched_at.alias("fetched_at"),
        F.col("_e.request.params").getItem("language").alias("language"),
        line_reason.alias("_line_reason"),
    )


def _explode_list(envelopes: DataFrame, items: Column, missing: str) -> DataFrame:
    """One row per element of a response's list (``_item``, its JSON text); a rejected line
    gives one row with a null ``_item``; an empty list gives none."""
    line_reason = F.coalesce(F.col("_line_reason"), F.when(items.isNull(), F.lit(missing)))
    placeholder = F.array(F.lit(None).cast("string"))
    # Each element's row keeps the whole line only when the line is rejected, and the list is
    # dropped once exploded: a page's text is not copied onto every one of its elements.
    lists = envelopes.select(
        F.when(line_reason.isNotNull(), F.col("value")).alias("value"),
        F.sha2("value", 256).alias("_line_sha256"),
        "source_key",
        "source_date",
        "fetched_at",
        "language",
        line_reason.alias("_line_reason"),
        F.when(line_reason.isNull(), items).otherwise(placeholder).alias("_items"),
    )
    return lists.select(
        *[c for c in lists.columns if c != "_items"], F.explode("_items").alias("_item")
    )


def _item_columns() -> list[Column]:
    """``raw_line``: the element as sent, or the whole line when the line itself is rejected."""
    return [
        F.when(F.col("_line_reason").isNull(), F.col("_item"))
        .otherwise(F.col("value"))
        .alias("raw_line"),
        "source_key",
        "source_date",
        "fetched_at",
        "language",
    ]


def discover_items(lines: DataFrame) -> DataFrame:
    """One item per movie of the discover pages (plus one per rejected line), typed.

    ``overview`` and ``release_date`` ``""`` become null; a movie without a numeric id, with a
    field of the wrong type or with a malformed release date is rejected.
    """
    envelopes = _parse_envelopes(lines, DISCOVER_ENVELOPE)
    items = _explode_list(envelopes, F.col("_e.response.results"), "response has no results list")
    movie = items.select("*", F.from_json("_item", DISCOVER_MOVIE_SCHEMA).alias("_m"))
    m = F.col("_m")
    reason = F.coalesce(
        F.col("_line_reason"),
        F.when(
            m["id"].isNull(),
            F.lit("movie without a numeric id, or with a field of the wrong type"),
        ),
        _bad_date(m["release_date"], "release_date"),
    )
    return movie.select(
        *_item_columns(),
        reason.alias("reason"),
        m["id"].alias("tmdb_id"),
        m["title"].alias("title"),
        m["original_title"].alias("original_title"),
        m["original_language"].alias("original_language"),
        F.when(m["overview"] != "", m["overview"]).alias("overview"),
        m["popularity"].alias("popularity"),
        m["vote_average"].alias("vote_average"),
        m["vote_count"].alias("vote_count"),
        _date_or_null(m["release_date"]).alias("release_date"),
        m["genre_ids"].alias("genre_ids"),
        m["adult"].alias("adult"),
    )


def tmdb_snapshots(valid: DataFrame) -> DataFrame:
    """One row per movie per snapshot date (``SNAPSHOTS_SCHEMA``), partition columns included.

    The same id can appear on two pages of one day; the record fetched last wins, and among
    records fetched at the same instant, the one whose JSON text sorts first.
    """
    order = Window.partitionBy("source_date", "tmdb_id").orderBy(
        F.col("fetched_at").desc(), F.col("raw_line")
    )
    latest = valid.withColumn("_rank", F.row_number().over(order)).filter(F.col("_rank") == 1)
    return latest.select(
        *[c.name for c in SNAPSHOTS_SCHEMA.fields[:12]],
        F.col("source_date").alias("snapshot_date"),
        F.date_format("source_date", "yyyy").alias("year"),
        F.date_format("source_date", "MM").alias("month"),
        F.date_format("source_date", "dd").alias("day"),
    )


def details_items(lines: DataFrame) -> DataFrame:
    """One item per ``/movie/{id}`` response line, typed; ``imdb_id`` ``""`` becomes null."""
    envelopes = _parse_envelopes(lines, DETAILS_ENVELOPE)
    r = F.col("_e.response")
    line_reason = F.coalesce(
        F.col("_line_reason"),
        F.when(r.isNull() | r["id"].isNull(), F.lit("details without a numeric id")),
        _bad_date(r["release_date"], "release_date"),
    )
    return envelopes.select(
        F.col("value").alias("raw_line"),
        "source_key",
        "source_date",
        "fetched_at",
        "language",
        line_reason.alias("reason"),
        r["id"].alias("tmdb_id"),
        F.when(r["imdb_id"] != "", r["imdb_id"]).alias("imdb_id"),
        r["title"].alias("title"),
        r["original_title"].alias("original_title"),
        r["runtime"].alias("runtime_minutes"),
        r["budget"].alias("budget"),
        r["revenue"].alias("revenue"),
        _date_or_null(r["release_date"]).alias("release_date"),
        F.transform(r["genres"], lambda g: g["id"]).alias("genre_ids"),
    )


def tmdb_details(valid: DataFrame) -> DataFrame:
    """One row per TMDB movie: its latest details (``DETAILS_TABLE_SCHEMA``).

    Latest = fetched last; ties go to the later raw partition, then to the JSON text that sorts
    first.
    """
    order = Window.partitionBy("tmdb_id").orderBy(
        F.col("fetched_at").desc(), F.col("source_date").desc(), F.col("raw_line")
    )
    latest = valid.withColumn("_rank", F.row_number().over(order)).filter(F.col("_rank") == 1)
    return latest.select(*[f.name for f in DETAILS_TABLE_SCHEMA.fields])


def genre_items(lines: DataFrame) -> DataFrame:
    """One item per genre of each ``/genre/movie/list`` response (plus one per rejected line).

    ``response_sha256`` identifies each response, to break ties between lists fetched at the
    same instant.
    """
    envelopes = _parse_envelopes(lines, GENRES_ENVELOPE)
    items = _explode_list(envelopes, F.col("_e.response.genres"), "response has no genres list")
    genre = items.select("*", F.from_json("_item", GENRE_SCHEMA).alias("_g"))
    reason = F.coalesce(
        F.col("_line_reason"),
        F.when(F.col("_g.id").isNull(), F.lit("genre without a numeric id")),
    )
    return genre.select(
        *_item_columns(),
        F.col("_line_sha256").alias("response_sha256"),
        reason.alias("reason"),
        F.col("_g.id").alias("genre_id"),
        F.col("_g.name").alias("name"),
    )


def tmdb_genres(valid: DataFrame) -> DataFrame:
    """One row per genre id x language (``GENRES_TABLE_SCHEMA``) from the latest genre list of
    each language: the list of the latest raw partition, fetched last (ties: the response whose
    SHA-256 sorts last). A genre id listed twice in that list keeps the name that sorts first."""
    version = F.struct("source_date", "fetched_at", "response_sha256")
    newest = F.max(version).over(Window.partitionBy("language"))
    latest = valid.withColumn("_newest", newest).filter(version == F.col("_newest"))
    return (
        latest.groupBy("genre_id", "language")
        .agg(F.min("name").alias("name"))
        .select("genre_id", "name", "language")
    )
