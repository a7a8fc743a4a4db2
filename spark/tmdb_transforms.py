"""TMDB JSON-lines transforms raw -> trusted: each takes DataFrames and returns a DataFrame.

Each raw line is an envelope (``fetched_at``, ``request``, ``status``, ``response``) around an
API response. ``discover_items``, ``details_items`` and ``genre_items`` parse the envelopes
and the items inside them into item frames (``spark.item_frames``), each with its rejection
reason; ``tmdb_snapshots``, ``tmdb_details`` and ``tmdb_genres`` build the trusted tables from
the valid items. Nothing here reads or writes storage, counts rows or collects data: the job
(``spark.trusted_job``) does. Every input and output has an explicit schema (no inference).
"""

from __future__ import annotations

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
