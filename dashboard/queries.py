"""The dashboard's queries over the refined layer's DuckDB file, read-only.

Every function takes an open DuckDB connection and returns a pandas DataFrame (or a dict for
one movie), so a test runs them on a small DuckDB file without Streamlit or a browser. Only
the marts dbt builds in the `refined` schema are read: rpt_movies_wide, fct_movie_popularity,
agg_movies__by_release_year, bridge_movie_genre and dim_genre.

`connect()` opens the file read-only for one page run and closes it after, so a `dbt run`
can rewrite the file while the dashboard is up (DuckDB lets one process write a file only
when no other holds it open).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

SCHEMA = "refined"
DUCKDB_FILE = Path("refined") / "movie_lake.duckdb"
HOW_TO_BUILD = "run `make demo`, or `make ingest` then `dbt run`, first"
SOURCES = {"imdb": "IMDb", "tmdb": "TMDB"}


class RefinedLayerUnavailable(RuntimeError):
    """The refined DuckDB file cannot be read; the message says why and what to do."""


def refined_duckdb_path(environ: Mapping[str, str] | None = None) -> Path:
    """`DASHBOARD_DUCKDB` when set, else the local target's file in the lake (`LAKE_URI`)."""
    env = os.environ if environ is None else environ
    explicit = env.get("DASHBOARD_DUCKDB", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    lake = env.get("LAKE_URI", "").strip() or "./lake"
    if "://" in lake and not lake.startswith("file://"):
        raise RefinedLayerUnavailable(
            f"LAKE_URI is {lake}: the dashboard reads the local DuckDB file of the refined "
            "layer, not Athena. Set DASHBOARD_DUCKDB to a DuckDB file, or unset LAKE_URI."
        )
    return Path(lake.removeprefix("file://")).expanduser() / DUCKDB_FILE


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the refined file, closed on exit."""
    if not path.is_file():
        raise RefinedLayerUnavailable(f"No refined DuckDB file at {path}: {HOW_TO_BUILD}.")
    try:
        connection = duckdb.connect(
            str(path),
            read_only=True,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
    except duckdb.IOException as error:  # a writer (dbt) holds the file
        raise RefinedLayerUnavailable(
            f"{path} cannot be opened read-only ({error}). dbt may be rebuilding it: "
            "reload the page in a moment."
        ) from error
    try:
        missing = sorted(set(REQUIRED_TABLES) - set(_tables(connection)))
        if missing:
            raise RefinedLayerUnavailable(
                f"{path} lacks the refined tables {', '.join(missing)}: {HOW_TO_BUILD}."
            )
        # The queries name tables bare: resolve them in this file's `refined` schema (a file
        # named refined.duckdb would make `refined.x` ambiguous between catalog and schema).
        connection.execute(f"use {_quote(_catalog(connection))}.{_quote(SCHEMA)}")
        yield connection
    finally:
        connection.close()


REQUIRED_TABLES = (
    "rpt_movies_wide",
    "fct_movie_popularity",
    "agg_movies__by_release_year",
    "bridge_movie_genre",
    "dim_genre",
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _catalog(connection: duckdb.DuckDBPyConnection) -> str:
    row = connection.execute("select current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = ? and table_schema = ?",
        [_catalog(connection), SCHEMA],
    ).fetchall()
    return [name for (name,) in rows]


def _df(connection: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None):
    return connection.execute(sql, params or []).df()


def overview(connection: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Headline figures: movies, how many each source knows, snapshot dates and the latest."""
    row = connection.execute(
        """
        select
            (select count(*) from rpt_movies_wide),
            (select count(*) from rpt_movies_wide where is_known_to_imdb),
            (select count(*) from rpt_movies_wide where is_known_to_tmdb),
            (select count(distinct snapshot_date) from fct_movie_popularity),
            (select max(snapshot_date) from fct_movie_popularity)
        """
    ).fetchone()
    assert row is not None
    movies, on_imdb, on_tmdb, dates, latest = row
    return {
        "movies": movies,
        "on_imdb": on_imdb,
        "on_tmdb": on_tmdb,
        "snapshot_dates": dates,
        "latest_snapshot_date": latest,
    }


def top_movies_by_popularity(connection: duckdb.DuckDBPyConnection, limit: int = 10):
    """The most popular movies on the latest snapshot date, most popular first."""
    return _df(
        connection,
        """
        select
            fact.movie_key,
            movies.title,
            movies.release_year,
            fact.popularity,
            fact.popularity_rank,
            fact.tmdb_vote_average,
            fact.tmdb_vote_count,
            fact.snapshot_date
        from fct_movie_popularity as fact
        inner join rpt_movies_wide as movies on fact.movie_key = movies.movie_key
        where fact.snapshot_date = (select max(snapshot_date) from fct_movie_popularity)
            and fact.popularity is not null
        order by fact.popularity desc, movies.title, fact.movie_key
        limit ?
        """,
        [limit],
    )


def popularity_history(connection: duckdb.DuckDBPyConnection, movie_keys: list[str]):
    """Popularity of the given movies on every snapshot date, oldest date first."""
    if not movie_keys:
        return pd.DataFrame(columns=["movie_key", "title", "snapshot_date", "popularity"])
    return _df(
        connection,
        """
        select fact.movie_key, movies.title, fact.snapshot_date, fact.popularity,
            fact.popularity_rank, fact.tmdb_vote_count
        from fct_movie_popularity as fact
        inner join rpt_movies_wide as movies on fact.movie_key = movies.movie_key
        where list_contains(?, fact.movie_key)
        order by fact.snapshot_date, fact.popularity desc, movies.title
        """,
        [movie_keys],
    )


def popularity_by_date(connection: duckdb.DuckDBPyConnection):
    """Per snapshot date: movies tracked, their total, average and top popularity."""
    return _df(
        connection,
        """
        select
            snapshot_date,
            count(*) as movies,
            sum(popularity) as total_popularity,
            avg(popularity) as average_popularity,
            max(popularity) as top_popularity
        from fct_movie_popularity
        group by snapshot_date
        order by snapshot_date
        """,
    )


def yearly(connection: duckdb.DuckDBPyConnection):
    """The yearly aggregate, one row per release year, the earliest year first."""
    return _df(
        connection,
        """
        select
            release_year,
            titles,
            titles_on_tmdb,
            rated_titles,
            average_rating,
            total_votes,
            most_popular_title,
            most_popular_popularity,
            most_voted_title,
            most_voted_votes,
            release_year_rank
        from agg_movies__by_release_year
        order by release_year
        """,
    )


def top_genres(
    connection: duckdb.DuckDBPyConnection,
    source: str,
    include_selected: bool = False,
    limit: int = 15,
):
    """The genres most movies of the refined layer have, in one source's own terms (`imdb`
    or `tmdb`), with the share of movies that have it. The genre the lake is about (Horror,
    TMDB's 27) is left out unless `include_selected`."""
    if source not in SOURCES:
        raise ValueError(f"unknown genre source {source!r}: expected one of {sorted(SOURCES)}")
    return _df(
        connection,
        """
        with counted as (
            select
                coalesce(genres.genre_name, 'genre ' || genres.genre_code) as genre,
                genres.is_selected_genre,
                count(distinct bridge.movie_key) as movies
            from bridge_movie_genre as bridge
            inner join dim_genre as genres on bridge.genre_key = genres.genre_key
            where genres.genre_source = ? and (? or not genres.is_selected_genre)
            group by 1, 2
        )
        select
            genre,
            is_selected_genre,
            movies,
            movies / (
                select count(*) from rpt_movies_wide
                where case when ? = 'imdb' then is_known_to_imdb else is_known_to_tmdb end
            ) as share_of_movies
        from counted
        order by movies desc, genre
        limit ?
        """,
        [source, include_selected, source, limit],
    )


def search_movies(connection: duckdb.DuckDBPyConnection, text: str, limit: int = 50):
    """Movies whose title (IMDb's, TMDB's pt-BR or either original) or IMDb/TMDB id holds
    `text`, case- and accent-insensitively; exact ids first, then the most popular."""
    needle = text.strip()
    if not needle:
        return pd.DataFrame(columns=["movie_key", "title", "release_year", "imdb_id", "tmdb_id"])
    return _df(
        connection,
        """
        select movie_key, title, release_year, imdb_id, tmdb_id, latest_popularity
        from rpt_movies_wide
        where imdb_id = lower($1)
            or cast(tmdb_id as varchar) = $1
            or contains(
                strip_accents(lower(concat_ws(' | ', title, imdb_primary_title,
                    imdb_original_title, tmdb_title))),
                strip_accents(lower($1))
            )
        order by
            coalesce(imdb_id = lower($1) or cast(tmdb_id as varchar) = $1, false) desc,
            latest_popularity desc nulls last,
            imdb_num_votes desc nulls last,
            title,
            movie_key
        limit $2
        """,
        [needle, limit],
    )


def movie_facts(connection: duckdb.DuckDBPyConnection, movie_key: str) -> dict[str, Any] | None:
    """One movie's row of rpt_movies_wide as a dict (None when no movie has that key)."""
    frame = _df(
        connection,
        "select * from rpt_movies_wide where movie_key = ?",
        [movie_key],
    )
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    return {key: (None if _is_missing(value) else value) for key, value in row.items()}


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays
        return False
