"""The dashboard's queries (dashboard/queries.py) on a tiny DuckDB file: no server, no browser."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from tiny_refined import write_tiny_refined

from dashboard import queries
from dashboard.queries import RefinedLayerUnavailable


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_refined(tmp_path_factory.mktemp("tiny") / "refined" / "movie_lake.duckdb")


@pytest.fixture
def con(tiny_file: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with queries.connect(tiny_file) as connection:
        yield connection


def test_the_file_is_the_lakes_local_target_unless_dashboard_duckdb_is_set() -> None:
    assert queries.refined_duckdb_path({}) == Path("lake/refined/movie_lake.duckdb")
    assert queries.refined_duckdb_path({"LAKE_URI": "/data/lake"}) == Path(
        "/data/lake/refined/movie_lake.duckdb"
    )
    assert queries.refined_duckdb_path(
        {"LAKE_URI": "/data/lake", "DASHBOARD_DUCKDB": "/x/refined.duckdb"}
    ) == Path("/x/refined.duckdb")


def test_an_s3_lake_without_a_duckdb_file_is_refused_with_what_to_do() -> None:
    with pytest.raises(RefinedLayerUnavailable, match="DASHBOARD_DUCKDB") as error:
        queries.refined_duckdb_path({"LAKE_URI": "s3://bucket/lake"})
    assert "s3://bucket/lake" in str(error.value)


def test_a_missing_file_says_how_to_build_it(tmp_path: Path) -> None:
    missing = tmp_path / "refined" / "movie_lake.duckdb"
    with pytest.raises(RefinedLayerUnavailable) as error, queries.connect(missing):
        pass
    assert str(missing) in str(error.value) and "make demo" in str(error.value)
    assert not missing.exists()  # opening read-only never creates the file


def test_a_file_without_the_marts_names_the_missing_tables(tmp_path: Path) -> None:
    path = tmp_path / "partial.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema refined; create table refined.dim_genre (x int)")
    with (
        pytest.raises(RefinedLayerUnavailable, match="rpt_movies_wide") as error,
        queries.connect(path),
    ):
        pass
    assert "dim_genre" not in str(error.value).split("lacks")[1]


def test_the_connection_is_read_only_and_released_after_use(tiny_file: Path) -> None:
    with queries.connect(tiny_file) as connection, pytest.raises(duckdb.Error, match="read-only"):
        connection.execute("create table refined.scratch (x int)")
    # Released: another process (dbt, say) can now open the file for writing.
    writer = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(tiny_file)!r}).close()"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert writer.returncode == 0, writer.stderr


def test_a_file_held_by_a_writer_says_to_reload_later(tiny_file: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, duckdb
                connection = duckdb.connect({str(tiny_file)!r})
                print("open", flush=True)
                sys.stdin.read()
            """),
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with (
            pytest.raises(RefinedLayerUnavailable, match="reload the page"),
            queries.connect(tiny_file),
        ):
            pass
    finally:
        holder.communicate(timeout=60)


def test_a_file_named_like_the_schema_reads_the_same(tmp_path: Path) -> None:
    with queries.connect(write_tiny_refined(tmp_path / "refined.duckdb")) as connection:
        assert queries.overview(connection)["movies"] == 4


def test_overview_counts_movies_per_source_and_snapshot_dates(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert queries.overview(con) == {
        "movies": 4,
        "on_imdb": 3,
        "on_tmdb": 3,
        "snapshot_dates": 2,
        "latest_snapshot_date": dt.date(2024, 3, 2),
    }


def test_top_movies_come_from_the_latest_snapshot_most_popular_first(
    con: duckdb.DuckDBPyConnection,
) -> None:
    top = queries.top_movies_by_popularity(con, 2)
    assert list(zip(top["movie_key"], top["popularity"], strict=True)) == [
        ("k3", 50.0),
        ("k1", 30.0),
    ]
    assert set(top["snapshot_date"].dt.date) == {dt.date(2024, 3, 2)}
    assert len(queries.top_movies_by_popularity(con, 10)) == 3  # k4 is not on TMDB


def test_popularity_history_holds_every_snapshot_of_the_movies_asked_for(
    con: duckdb.DuckDBPyConnection,
) -> None:
    history = queries.popularity_history(con, ["k1", "k2"])
    rows = list(
        zip(
            history["movie_key"],
            history["snapshot_date"].dt.date,
            history["popularity"],
            strict=True,
        )
    )
    assert rows == [
        ("k1", dt.date(2024, 3, 1), 20.0),
        ("k2", dt.date(2024, 3, 1), 12.0),
        ("k1", dt.date(2024, 3, 2), 30.0),
        ("k2", dt.date(2024, 3, 2), 10.0),
    ]
    assert queries.popularity_history(con, []).empty


def test_popularity_by_date_sums_each_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    by_date = queries.popularity_by_date(con)
    assert list(by_date["movies"]) == [3, 3]
    assert list(by_date["total_popularity"]) == [72.0, 90.0]
    assert list(by_date["top_popularity"]) == [40.0, 50.0]


def test_yearly_gives_the_aggregate_earliest_year_first(con: duckdb.DuckDBPyConnection) -> None:
    years = queries.yearly(con)
    assert list(years["release_year"]) == [1950, 2001, 2003]
    row_2001 = years[years["release_year"] == 2001].iloc[0]
    assert (row_2001["most_popular_title"], row_2001["most_voted_title"]) == (
        "Night Visitor",
        "Café Macabre",
    )


def test_top_genres_count_movies_per_genre_of_one_source_without_the_genre_itself(
    con: duckdb.DuckDBPyConnection,
) -> None:
    imdb = queries.top_genres(con, "imdb")
    assert list(zip(imdb["genre"], imdb["movies"], strict=True)) == [("Thriller", 1)]
    assert imdb["share_of_movies"].iloc[0] == pytest.approx(1 / 3)  # of the 3 IMDb movies
    tmdb = queries.top_genres(con, "tmdb")
    # An id the genre list lacks is shown by its code, never dropped.
    assert list(zip(tmdb["genre"], tmdb["movies"], strict=True)) == [
        ("Thriller", 2),
        ("genre 99", 1),
    ]
    with_itself = queries.top_genres(con, "tmdb", True, 2)
    assert list(with_itself["genre"]) == ["Terror", "Thriller"]
    assert list(with_itself["is_selected_genre"]) == [True, False]


def test_top_genres_refuse_an_unknown_source(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="unknown genre source 'netflix'"):
        queries.top_genres(con, "netflix")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("visitante", ["k1"]),  # TMDB's pt-BR title
        ("CAFE", ["k2"]),  # case and accents ignored
        ("macabro", ["k2"]),
        ("tt0000004", ["k4"]),  # an IMDb id
        ("  13 ", ["k3"]),  # a TMDB id, spaces trimmed
        ("12", ["k2", "k3"]),  # TMDB id 12 first, then the title "Sala 12"
        ("a", ["k3", "k1", "k2", "k4"]),  # the most popular first, no popularity last
        ("nothing like it", []),
        ("", []),
        ("%", []),  # matched as text, not as a LIKE wildcard
        ("_", []),
    ],
)
def test_search_matches_titles_of_both_sources_and_ids(
    con: duckdb.DuckDBPyConnection, text: str, expected: list[str]
) -> None:
    assert list(queries.search_movies(con, text)["movie_key"]) == expected


def test_search_returns_at_most_the_limit(con: duckdb.DuckDBPyConnection) -> None:
    assert list(queries.search_movies(con, "a", 2)["movie_key"]) == ["k3", "k1"]


def test_movie_facts_give_both_sources_and_none_for_what_a_source_lacks(
    con: duckdb.DuckDBPyConnection,
) -> None:
    tmdb_only = queries.movie_facts(con, "k3")
    assert tmdb_only is not None
    assert (tmdb_only["tmdb_title"], tmdb_only["latest_popularity"]) == ("Sala 12", 50.0)
    assert tmdb_only["imdb_id"] is None and tmdb_only["imdb_average_rating"] is None
    assert tmdb_only["imdb_num_votes"] is None
    assert queries.movie_facts(con, "no-such-key") is None
