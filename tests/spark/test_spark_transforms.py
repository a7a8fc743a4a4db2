"""The pure transforms on small, explicit frames (no files): parsing, rules, dedupe."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from spark_raw_builder import (
    details,
    discover_movie,
    discover_page,
    genre_list,
    movie_row,
    series_row,
)

from spark.imdb_transforms import (
    CSV_OPTIONS,
    GENRES_SCHEMA,
    MOVIES,
    SERIES,
    CsvDataset,
    credits_schema,
    csv_read_schema,
    imdb_credits,
    imdb_rejected,
    imdb_title_genres,
    imdb_titles,
    imdb_valid,
    parse_csv_lines,
    type_csv_rows,
)
from spark.item_frames import LINES_SCHEMA, REJECTED_SCHEMA, rejected_rows, valid_rows
from spark.tmdb_transforms import (
    DETAILS_TABLE_SCHEMA,
    GENRES_TABLE_SCHEMA,
    SNAPSHOTS_SCHEMA,
    details_items,
    discover_items,
    genre_items,
    tmdb_details,
    tmdb_genres,
    tmdb_snapshots,
)

pytestmark = pytest.mark.slow  # a real SparkSession

DAY = dt.date(2024, 1, 2)
KEY = "raw/local/csv/movies/year=2024/month=01/day=02/movies.csv"


def lines(spark: SparkSession, values: list[str], date: dt.date = DAY, key: str = KEY) -> DataFrame:
    return spark.createDataFrame([(v, key, date) for v in values], LINES_SCHEMA)


def typed_rows(spark: SparkSession, rows: list[str], dataset: CsvDataset = MOVIES) -> DataFrame:
    """Rows through the job's CSV reader settings (from memory: no header, no line endings)."""
    options = {**CSV_OPTIONS, "header": "false"}
    read = spark.read.schema(csv_read_schema(dataset)).options(**options)
    frame = read.csv(spark.sparkContext.parallelize(rows, 1))
    return type_csv_rows(
        frame.select("*", F.lit(KEY).alias("source_key"), F.lit(DAY).alias("source_date")), dataset
    )


def by_line(df: DataFrame) -> dict[str, dict]:
    return {r["raw_line"]: r.asDict() for r in df.collect()}


def test_parse_rejects_bad_rows_with_their_reason(spark_session: SparkSession) -> None:
    good = movie_row("tt0000001")
    too_few = "tt0000002|Only|three"
    too_many = movie_row("tt0000003") + "|extra"
    bad_year = movie_row("tt0000004", anoLancamento="19x9")
    bad_rating = movie_row("tt0000005", notaMedia="abc")
    empty_votes = movie_row("tt0000006", numeroVotos="")
    fractional_minutes = movie_row("tt0000007", tempoMinutos="95.5")
    no_id = movie_row("\\N")
    parsed = by_line(
        parse_csv_lines(
            lines(
                spark_session,
                [
                    MOVIES.header,
                    good,
                    too_few,
                    too_many,
                    bad_year,
                    bad_rating,
                    empty_votes,
                    fractional_minutes,
                    no_id,
                ],
            ),
            MOVIES,
        )
    )
    assert MOVIES.header not in parsed  # the header is skipped, not rejected
    assert parsed[good]["reason"] is None
    assert parsed[too_few]["reason"] == "wrong field count: 3 fields, expected 15"
    assert parsed[too_many]["reason"] == "wrong field count: 16 fields, expected 15"
    assert parsed[bad_year]["reason"] == "anoLancamento is not an integer: '19x9'"
    assert parsed[bad_rating]["reason"] == "notaMedia is not a decimal number: 'abc'"
    assert parsed[empty_votes]["reason"] == "numeroVotos is not an integer: ''"
    assert parsed[fractional_minutes]["reason"] == "tempoMinutos is not an integer: '95.5'"
    assert parsed[no_id]["reason"] == "id is missing"


def test_parse_turns_imdb_nulls_into_nulls_before_casting(spark_session: SparkSession) -> None:
    row = movie_row(
        "tt0000001",
        anoLancamento="\\N",
        notaMedia="\\N",
        genero="\\N",
        profissao="",
        tituloOriginal="\\N",
        anoFalecimento="2001",
    )
    parsed = parse_csv_lines(lines(spark_session, [row]), MOVIES).collect()[0]
    assert parsed["reason"] is None
    assert parsed["release_year"] is None
    assert parsed["average_rating"] is None
    assert parsed["genres"] is None
    assert parsed["original_title"] is None
    assert parsed["professions"] == []  # empty profissao is an empty list
    assert parsed["death_year"] == 2001
    assert parsed["known_for_title_ids"] == ["tt0000001", "tt0000002"]
    assert parsed["num_votes"] == 120 and parsed["average_rating"] is None


def test_parse_keeps_quotes_and_strips_only_the_line_ending(spark_session: SparkSession) -> None:
    row = movie_row("tt0000001", tituloPincipal='The "Thing", part 2', personagem="HerselfSelf")
    parsed = parse_csv_lines(lines(spark_session, [row + "\r"]), MOVIES).collect()[0]
    assert parsed["raw_line"] == row
    assert parsed["primary_title"] == 'The "Thing", part 2'
    assert parsed["known_for_title_ids"][-1] == "tt0000002"  # no \r left on the last field


def test_parse_series_reads_end_year(spark_session: SparkSession) -> None:
    rows = [series_row("tt5000001", anoTermino="\\N"), series_row("tt5000002")]
    parsed = {
        r["title_id"]: r for r in parse_csv_lines(lines(spark_session, rows), SERIES).collect()
    }
    assert parsed["tt5000001"]["end_year"] is None
    assert parsed["tt5000002"]["end_year"] == 2003
    assert all(r["reason"] is None for r in parsed.values())


def test_titles_rule_most_votes_then_first_line_wins(spark_session: SparkSession) -> None:
    rows = [
        movie_row("tt0000001", "A", tituloPincipal="Few votes", numeroVotos="10"),
        movie_row("tt0000001", "B", tituloPincipal="Most votes", numeroVotos="99", genero="War"),
        movie_row("tt0000001", "C", tituloPincipal="Null votes", numeroVotos="\\N"),
        movie_row("tt0000002", "Zed", tituloPincipal="Tie Z", numeroVotos="5"),
        movie_row("tt0000002", "Amy", tituloPincipal="Tie A", numeroVotos="5"),
        movie_row("tt0000003", "Only", numeroVotos="\\N", anoNascimento="\\N"),
    ]
    valid = imdb_valid(typed_rows(spark_session, rows))
    titles = {r["title_id"]: r for r in imdb_titles(valid, MOVIES).collect()}
    assert sorted(titles) == ["tt0000001", "tt0000002", "tt0000003"]
    assert titles["tt0000001"]["primary_title"] == "Most votes"
    assert titles["tt0000001"]["genres"] == ["War"]  # the winner's fields, all together
    # a tie on votes: the smallest title fields, primary title first ("Tie A" < "Tie Z")
    assert titles["tt0000002"]["primary_title"] == "Tie A"
    assert titles["tt0000003"]["num_votes"] is None


def test_credits_drop_exact_duplicate_rows_only(spark_session: SparkSession) -> None:
    a = movie_row("tt0000001", "Ana")
    b = movie_row("tt0000001", "Bia")
    a_other_role = movie_row("tt0000001", "Ana", personagem="Villain")
    credits = imdb_credits(
        imdb_valid(typed_rows(spark_session, [a, b, a, a_other_role, a])), MOVIES
    )
    assert credits.schema == credits_schema(MOVIES)
    rows = sorted((r["artist_name"], r["characters"]) for r in credits.collect())
    assert rows == [("Ana", "Herself"), ("Ana", "Villain"), ("Bia", "Herself")]


def test_typed_rows_flag_what_the_reasons_explain(spark_session: SparkSession) -> None:
    good = movie_row("tt0000001", profissao="", anoFalecimento="\\N", tituloOriginal="")
    rows = [
        good,
        "tt0000002|Too|few",
        movie_row("tt0000003", anoLancamento="19x9"),
        movie_row("tt0000004", notaMedia="abc", tempoMinutos="95.5"),
        movie_row("tt0000005", numeroVotos=""),
        movie_row("\\N"),
        movie_row("tt0000006", personagem="Her\rself"),
    ]
    typed = typed_rows(spark_session, rows)
    [valid] = imdb_valid(typed).collect()
    assert valid["professions"] == "" and valid["death_year"] is None
    assert valid["original_title"] == ""  # an empty text field stays an empty string
    rejected = {r["raw_line"]: r["reason"] for r in imdb_rejected(typed, MOVIES, DAY).collect()}
    assert rejected == {
        rows[1]: "wrong field count: 3 fields, expected 15",
        rows[2]: "anoLancamento is not an integer: '19x9'",
        rows[3]: "tempoMinutos is not an integer: '95.5'; notaMedia is not a decimal number: 'abc'",
        rows[4]: "numeroVotos is not an integer: ''",
        rows[5]: "id is missing",
        rows[6]: "a carriage return (\\r) inside the line, not at its end",
    }


def test_title_genres_one_row_per_title_and_genre(spark_session: SparkSession) -> None:
    rows = [
        movie_row("tt0000001", genero="Horror,Drama,Horror"),
        movie_row("tt0000002", genero="\\N"),
    ]
    valid = imdb_valid(typed_rows(spark_session, rows))
    genres = imdb_title_genres(imdb_titles(valid, MOVIES))
    assert genres.schema == GENRES_SCHEMA
    assert sorted(tuple(r) for r in genres.collect()) == [
        ("tt0000001", "Drama"),
        ("tt0000001", "Horror"),
    ]


def test_rejected_rows_carry_reason_source_and_run_date(spark_session: SparkSession) -> None:
    parsed = parse_csv_lines(lines(spark_session, ["tt1|short"]), MOVIES)
    rejected = rejected_rows(parsed, dt.date(2024, 2, 1))
    assert rejected.schema.simpleString() == REJECTED_SCHEMA.simpleString()
    [row] = rejected.collect()
    assert row["raw_line"] == "tt1|short"
    assert row["reason"].startswith("wrong field count")
    assert row["source_key"] == KEY
    assert row["run_date"] == dt.date(2024, 2, 1)
    assert (row["year"], row["month"], row["day"]) == ("2024", "01", "02")


def test_discover_items_reject_bad_lines_and_empty_strings_become_null(
    spark_session: SparkSession,
) -> None:
    page = discover_page(
        [
            discover_movie(1, release_date="", overview=""),
            discover_movie(2, release_date="2001-13-45"),
            {"title": "no id"},
        ]
    )
    error = discover_page([], status=500)
    items = by_line(discover_items(lines(spark_session, [page, "{not json", error])))
    movies = json.loads(page)["response"]["results"]
    first = items[json.dumps(movies[0], ensure_ascii=False, separators=(",", ":"))]
    assert first["reason"] is None
    assert first["release_date"] is None and first["overview"] is None
    reasons = sorted(r["reason"] for r in items.values() if r["reason"])
    assert reasons == [
        "API status 500 for /discover/movie",
        "movie without a numeric id, or with a field of the wrong type",
        "not an API response record (invalid JSON or no status)",
        "release_date is not a YYYY-MM-DD date: '2001-13-45'",
    ]
    assert "{not json" in items  # a rejected line is kept whole, as sent


def test_snapshots_dedupe_by_id_keeping_the_latest_fetch(spark_session: SparkSession) -> None:
    early = discover_page([discover_movie(7, popularity=1.0)], fetched_at="2024-01-02T10:00:00Z")
    late = discover_page(
        [discover_movie(7, popularity=9.0), discover_movie(8)],
        page=2,
        fetched_at="2024-01-02T10:05:00Z",
    )
    snapshot = tmdb_snapshots(valid_rows(discover_items(lines(spark_session, [early, late]))))
    assert snapshot.schema.simpleString() == SNAPSHOTS_SCHEMA.simpleString()
    rows = {r["tmdb_id"]: r for r in snapshot.collect()}
    assert sorted(rows) == [7, 8]
    assert rows[7]["popularity"] == 9.0
    assert rows[7]["snapshot_date"] == DAY and rows[7]["day"] == "02"
    assert rows[7]["language"] == "pt-BR"


def test_details_latest_per_id_across_partitions(spark_session: SparkSession) -> None:
    old = lines(
        spark_session,
        [details(5, "tt0000005", title="Old", fetched_at="2024-01-01T00:00:00Z")],
        dt.date(2024, 1, 1),
    )
    new = lines(
        spark_session,
        [details(5, "", title="New", fetched_at="2024-01-03T00:00:00Z"), details(6, None)],
        dt.date(2024, 1, 3),
    )
    table = tmdb_details(valid_rows(details_items(old.unionByName(new))))
    assert table.schema.simpleString() == DETAILS_TABLE_SCHEMA.simpleString()
    rows = {r["tmdb_id"]: r for r in table.collect()}
    assert rows[5]["title"] == "New"
    assert rows[5]["imdb_id"] is None  # "" -> null
    assert rows[5]["fetched_at"] == dt.datetime(2024, 1, 3)
    assert rows[6]["imdb_id"] is None and rows[6]["genre_ids"] == [27]


@pytest.mark.parametrize("older_first", [True, False])
def test_genres_come_from_the_latest_list_per_language(
    spark_session: SparkSession, older_first: bool
) -> None:
    old = lines(
        spark_session,
        [
            genre_list([(27, "Horror"), (99, "Gone")], "en-US"),
            genre_list([(27, "Terror")], "pt-BR"),
        ],
        dt.date(2024, 1, 1),
    )
    new = lines(
        spark_session,
        [genre_list([(27, "Horror"), (53, "Thriller")], "en-US")],
        dt.date(2024, 1, 2),
    )
    frames = [old, new] if older_first else [new, old]
    table = tmdb_genres(valid_rows(genre_items(frames[0].unionByName(frames[1]))))
    assert table.schema.simpleString() == GENRES_TABLE_SCHEMA.simpleString()
    assert sorted(tuple(r) for r in table.collect()) == [
        (27, "Horror", "en-US"),
        (27, "Terror", "pt-BR"),  # pt-BR's latest list is the older partition
        (53, "Thriller", "en-US"),
    ]
