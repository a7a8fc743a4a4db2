# ruff: noqa: E501  (the fixture tables read best one row per line)
"""A small trusted lake, shaped exactly like docs/lake-contract.md, and how to run dbt on it.

The fixture lake is written with pyarrow the way the Spark job writes trusted/: parquet with
snappy compression, `part-*.parquet` files beside a `_SUCCESS` marker, INT96 timestamps,
and Hive partitions year=/month=/day= (partition columns kept out of the files) for the TMDB
snapshots. It holds the cases the refined layer must get right: IMDb horror titles with and
without a TMDB match, a TMDB movie whose pt-BR title differs from its IMDb title, TMDB movies
without an IMDb id or without details, two TMDB ids sharing one IMDb id, non-horror titles,
series, and credits with several artists per title.

conftest.py builds it once per session and runs `dbt build` over it (real dbt, real DuckDB)
into a temporary lake and target folder; the tests read its DuckDB file and artifacts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_RESULTS = "run_results.build.json"

# Two snapshot dates ending today, so that source freshness passes as it would on a daily run.
# The trusted tables of docs/lake-contract.md: dbt's sources, never its models.
TRUSTED_TABLES = (
    "imdb_movies",
    "imdb_series",
    "imdb_movie_credits",
    "imdb_series_credits",
    "imdb_movie_genres",
    "imdb_series_genres",
    "tmdb_movie_snapshots",
    "tmdb_movie_details",
    "tmdb_genres",
)
SNAPSHOT_DATES = (dt.date.today() - dt.timedelta(days=1), dt.date.today())

TITLE_SCHEMA = pa.schema(
    [
        ("title_id", pa.string()),
        ("primary_title", pa.string()),
        ("original_title", pa.string()),
        ("release_year", pa.int32()),
        ("runtime_minutes", pa.int32()),
        ("genres", pa.list_(pa.string())),
        ("average_rating", pa.float64()),
        ("num_votes", pa.int64()),
    ]
)
SERIES_SCHEMA = TITLE_SCHEMA.insert(4, pa.field("end_year", pa.int32()))
CREDIT_SCHEMA = pa.schema(
    [
        ("title_id", pa.string()),
        ("artist_name", pa.string()),
        ("artist_category", pa.string()),
        ("characters", pa.string()),
        ("birth_year", pa.int32()),
        ("death_year", pa.int32()),
        ("professions", pa.list_(pa.string())),
        ("known_for_title_ids", pa.list_(pa.string())),
    ]
)
GENRE_SCHEMA = pa.schema([("title_id", pa.string()), ("genre", pa.string())])
SNAPSHOT_SCHEMA = pa.schema(
    [
        ("tmdb_id", pa.int64()),
        ("title", pa.string()),
        ("original_title", pa.string()),
        ("original_language", pa.string()),
        ("overview", pa.string()),
        ("popularity", pa.float64()),
        ("vote_average", pa.float64()),
        ("vote_count", pa.int64()),
        ("release_date", pa.date32()),
        ("genre_ids", pa.list_(pa.int32())),
        ("adult", pa.bool_()),
        ("language", pa.string()),
        ("snapshot_date", pa.date32()),
    ]
)
DETAILS_SCHEMA = pa.schema(
    [
        ("tmdb_id", pa.int64()),
        ("imdb_id", pa.string()),
        ("title", pa.string()),
        ("original_title", pa.string()),
        ("runtime_minutes", pa.int32()),
        ("budget", pa.int64()),
        ("revenue", pa.int64()),
        ("release_date", pa.date32()),
        ("genre_ids", pa.list_(pa.int32())),
        ("language", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
    ]
)
TMDB_GENRE_SCHEMA = pa.schema(
    [("genre_id", pa.int32()), ("name", pa.string()), ("language", pa.string())]
)

# fmt: off
# title_id, primary_title, original_title, release_year, runtime, genres, rating, votes
IMDB_MOVIES: list[tuple[Any, ...]] = [
    ("tt0000101", "The Haunting Hour", "The Haunting Hour", 1999, 95, ["Horror", "Thriller"], 7.1, 1200),
    ("tt0000102", "Night Crawlers", "Night Crawlers", 1999, 88, ["Horror"], 6.0, 800),
    ("tt0000103", "Grave Silence", "Grave Silence", 2005, 101, ["Horror", "Mystery"], 5.5, 300),
    ("tt0000104", "Sunny Days", "Sunny Days", 2005, 90, ["Comedy"], 8.0, 5000),
    ("tt0000105", "Deep Woods", "Deep Woods", 2010, 110, ["Drama"], 6.5, 700),
    ("tt0000106", "Twin Shadows", "Twin Shadows", 2010, 99, ["Horror"], 6.8, 900),
    ("tt0000107", "Tie Breaker A", "Tie Breaker A", 2012, 91, ["Horror"], 5.0, 400),
    ("tt0000108", "Tie Breaker B", "Tie Breaker B", 2012, 92, ["Horror"], 5.0, 400),
    ("tt0000109", "Undated Dread", "Undated Dread", None, None, ["Horror"], None, None),
]
IMDB_SERIES: list[tuple[Any, ...]] = [
    ("tt0000201", "Dark Corridors", "Dark Corridors", 2015, 2018, 45, ["Horror", "Drama"], 7.9, 2500),
    ("tt0000202", "Laugh Track", "Laugh Track", 2016, None, 22, ["Comedy"], 6.1, 150),
    ("tt0000203", "Hollow Pines", "Hollow Pines", 2021, None, 50, ["Horror"], 7.2, 640),
]
# title_id, artist, category, characters, born, died, professions, known for
MOVIE_CREDITS: list[tuple[Any, ...]] = [
    ("tt0000101", "Alice Moreau", "actress", "Ghost", 1970, None, ["actress"], ["tt0000101"]),
    ("tt0000101", "Bruno Lima", "actor", "Detective", 1965, 2020, ["actor", "director"], ["tt0000102"]),
    ("tt0000101", "Bruno Lima", "actor", "Narrator", 1965, 2020, ["actor", "director"], ["tt0000102"]),
    ("tt0000101", "Carla Diaz", "actress", "Mother", 1980, None, ["actress"], ["tt0000101"]),
    ("tt0000102", "Bruno Lima", "actor", "Sheriff", 1965, 2020, ["actor", "director"], ["tt0000102"]),
    ("tt0000102", "Dan Park", "actor", "Victim", 1990, None, ["actor"], ["tt0000102"]),
    ("tt0000103", "Eva Stone", "actress", "Widow", 1955, None, ["actress", "writer"], ["tt0000103"]),
    ("tt0000103", None, "actor", "Extra", None, None, [], []),
    ("tt0000104", "Frank Sun", "actor", "Surfer", 1985, None, ["actor"], ["tt0000104"]),
    ("tt0000106", "Gina Twin", "actress", "Twin", 1992, None, ["actress"], ["tt0000106"]),
]
SERIES_CREDITS: list[tuple[Any, ...]] = [
    ("tt0000201", "Hugo Vale", "actor", "Janitor", 1975, None, ["actor"], ["tt0000201"]),
    ("tt0000201", "Iris Vale", "actress", "Nurse", 1978, None, ["actress"], ["tt0000201"]),
]
# The day's snapshot rows: tmdb_id -> (title, original, lang, overview, release, genre ids).
# 1001's pt-BR title differs from its IMDb title; 1006 and 1016 share one IMDb id; 1003 links to
# no IMDb id; 1004 has no details yet and shows up on the second day only; 1009 links to an
# IMDb id this IMDb snapshot lacks; 2001 is not of the genre.
TMDB_MOVIES: dict[int, tuple[Any, ...]] = {
    1001: ("A Hora Assombrada", "The Haunting Hour", "en", "Um relógio maldito.", dt.date(1999, 10, 29), [27, 53]),
    1002: ("Night Crawlers", "Night Crawlers", "en", None, dt.date(1999, 3, 5), [27]),
    1003: ("Filme Sem IMDb", "Film Sans IMDb", "fr", "Sem vínculo.", dt.date(2021, 10, 31), [27, 18]),
    1004: ("Só No Segundo Dia", "Second Day Only", "es", None, None, [27]),
    1005: ("Floresta Profunda", "Deep Woods", "en", "Na floresta.", dt.date(2010, 6, 1), [27, 18]),
    1006: ("Sombras Gêmeas", "Twin Shadows", "en", None, dt.date(2010, 2, 2), [27]),
    1016: ("Sombras Gêmeas (2010)", "Twin Shadows", "en", None, dt.date(2010, 2, 2), [27]),
    1007: ("Desempate A", "Tie Breaker A", "en", None, dt.date(2012, 7, 7), [27]),
    1008: ("Desempate B", "Tie Breaker B", "en", None, dt.date(2012, 7, 7), [27]),
    1009: ("Sem Título No IMDb", "Unknown To This IMDb", "ja", None, dt.date(2019, 8, 8), [27]),
    2001: ("Dias de Sol", "Sunny Days", "en", None, dt.date(2005, 1, 1), [35]),
}
# tmdb_id -> (popularity, vote_average, vote_count) per snapshot date
SNAPSHOT_MEASURES: list[dict[int, tuple[float, float, int]]] = [
    {
        1001: (30.0, 7.0, 100), 1002: (12.0, 6.1, 80), 1003: (8.0, 5.0, 10), 1005: (20.0, 6.4, 60),
        1006: (3.0, 6.0, 50), 1016: (9.0, 6.9, 500), 1007: (5.0, 5.1, 40), 1008: (5.0, 5.1, 40),
        1009: (2.0, 4.0, 5), 2001: (50.0, 7.5, 900),
    },
    {
        1001: (35.5, 7.1, 110), 1002: (11.0, 6.1, 82), 1003: (9.5, 5.2, 12), 1004: (1.5, 0.0, 0),
        1005: (21.0, 6.4, 61), 1006: (3.5, 6.0, 51), 1016: (9.5, 6.9, 505), 1007: (6.0, 5.1, 41),
        1008: (6.0, 5.1, 41), 1009: (2.5, 4.0, 6), 2001: (55.0, 7.5, 910),
    },
]
# tmdb_id -> imdb_id in the details (1004 has no details yet; 1003 links to no IMDb title)
TMDB_IMDB_IDS: dict[int, str | None] = {
    1001: "tt0000101", 1002: "tt0000102", 1003: None, 1005: "tt0000105", 1006: "tt0000106",
    1016: "tt0000106", 1007: "tt0000107", 1008: "tt0000108", 1009: "tt9999999",
    2001: "tt0000104",
}
TMDB_GENRES: list[tuple[int, str, str]] = [
    (27, "Terror", "pt-BR"), (53, "Thriller", "pt-BR"), (18, "Drama", "pt-BR"),
    (35, "Comédia", "pt-BR"), (27, "Horror", "en-US"), (35, "Comedy", "en-US"),
]
# fmt: on


def _write(
    table_dir: Path, rows: Sequence[Mapping[str, Any]], schema: pa.Schema, *, success: bool = True
) -> None:
    """Write rows as one snappy parquet part file (and a _SUCCESS marker), as Spark does."""
    table_dir.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows), schema=schema)
    pq.write_table(
        table,
        table_dir / "part-00000-fixture.snappy.parquet",
        compression="snappy",
        use_deprecated_int96_timestamps=True,
    )
    if success:
        (table_dir / "_SUCCESS").touch()


def _records(schema: pa.Schema, rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(schema.names, row, strict=True)) for row in rows]


def _genre_rows(titles: Sequence[tuple[Any, ...]], genres_at: int) -> list[dict[str, Any]]:
    return [{"title_id": t[0], "genre": genre} for t in titles for genre in t[genres_at]]


def build_trusted_lake(lake: Path) -> None:
    """Write the fixture's trusted/ tables under `lake`."""
    trusted = lake / "trusted"
    _write(trusted / "imdb_movies", _records(TITLE_SCHEMA, IMDB_MOVIES), TITLE_SCHEMA)
    _write(trusted / "imdb_series", _records(SERIES_SCHEMA, IMDB_SERIES), SERIES_SCHEMA)
    _write(trusted / "imdb_movie_credits", _records(CREDIT_SCHEMA, MOVIE_CREDITS), CREDIT_SCHEMA)
    _write(trusted / "imdb_series_credits", _records(CREDIT_SCHEMA, SERIES_CREDITS), CREDIT_SCHEMA)
    _write(trusted / "imdb_movie_genres", _genre_rows(IMDB_MOVIES, 5), GENRE_SCHEMA)
    _write(trusted / "imdb_series_genres", _genre_rows(IMDB_SERIES, 6), GENRE_SCHEMA)

    for snapshot_date, measures in zip(SNAPSHOT_DATES, SNAPSHOT_MEASURES, strict=True):
        write_snapshot(lake, snapshot_date, measures)

    fetched_at = dt.datetime.combine(SNAPSHOT_DATES[0], dt.time(10, 15), tzinfo=dt.UTC)
    details = []
    for tmdb_id, imdb_id in TMDB_IMDB_IDS.items():
        title, original, _, _, release, genre_ids = TMDB_MOVIES[tmdb_id]
        details.append(
            {
                "tmdb_id": tmdb_id, "imdb_id": imdb_id, "title": title, "original_title": original,
                "runtime_minutes": 90, "budget": 1_000_000, "revenue": 0, "release_date": release,
                "genre_ids": genre_ids, "language": "pt-BR", "fetched_at": fetched_at,
            }
        )  # fmt: skip
    _write(trusted / "tmdb_movie_details", details, DETAILS_SCHEMA)
    _write(
        trusted / "tmdb_genres",
        [{"genre_id": g, "name": n, "language": lang} for g, n, lang in TMDB_GENRES],
        TMDB_GENRE_SCHEMA,
    )


def write_snapshot(
    lake: Path, snapshot_date: dt.date, measures: Mapping[int, tuple[float, float, int]]
) -> None:
    """Write (or replace) the trusted snapshot partition of one date: one row per TMDB id of
    `measures` (popularity, vote average, vote count), its other values from TMDB_MOVIES."""
    rows = []
    for tmdb_id, (popularity, vote_average, vote_count) in measures.items():
        title, original, language, overview, release, genre_ids = TMDB_MOVIES[tmdb_id]
        rows.append(
            {
                "tmdb_id": tmdb_id, "title": title, "original_title": original,
                "original_language": language, "overview": overview,
                "popularity": popularity, "vote_average": vote_average,
                "vote_count": vote_count, "release_date": release, "genre_ids": genre_ids,
                "adult": False, "language": "pt-BR", "snapshot_date": snapshot_date,
            }
        )  # fmt: skip
    table = lake / "trusted" / "tmdb_movie_snapshots"
    partition = f"year={snapshot_date:%Y}/month={snapshot_date:%m}/day={snapshot_date:%d}"
    _write(table / partition, rows, SNAPSHOT_SCHEMA, success=False)
    (table / "_SUCCESS").touch()


@dataclass(frozen=True)
class DbtRun:
    """Where one dbt session put its outputs."""

    lake: Path
    target_path: Path
    env: dict[str, str]

    @property
    def duckdb_path(self) -> Path:
        return self.lake / "refined" / "movie_lake.duckdb"

    def artifact(self, name: str) -> dict[str, Any]:
        return json.loads((self.target_path / name).read_text(encoding="utf-8"))

    def dbt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one dbt command from the repository root, as a user would."""
        return run_dbt(list(args), self.env, self.target_path, check=check)


def dbt_env(lake: Path | str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LAKE_URI": str(lake), "DBT_PROFILES_DIR": str(REPO_ROOT)}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    # RUN_DATE would narrow the snapshot dates dbt builds and tests: a test passes it itself.
    for variable in ("DBT_TARGET", "RUN_DATE"):
        env.pop(variable, None)
    env.update(extra)
    return env


def run_dbt(
    args: list[str], env: Mapping[str, str], target_path: Path, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """One dbt command on the repository's project (scripts/athena_on_duckdb.py's runner): with
    `check`, a failure raises with the end of dbt's output."""
    from scripts.athena_on_duckdb import run_dbt as run_project_dbt

    return run_project_dbt(args, env, target_path, project_dir=REPO_ROOT, check=check)
