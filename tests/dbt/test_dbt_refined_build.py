"""The refined layer built by real dbt on DuckDB over the fixture trusted lake (conftest.py).

One session-scoped `dbt build` runs every model, data test, singular test and unit test; the
tests here read its DuckDB file and artifacts, and expected values come from the fixture's
input tables, not from the models.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from dbt_fixture_lake import (
    BUILD_RESULTS,
    IMDB_MOVIES,
    REPO_ROOT,
    SNAPSHOT_DATES,
    SNAPSHOT_MEASURES,
    TMDB_IMDB_IDS,
    TMDB_MOVIES,
    TRUSTED_TABLES,
    DbtRun,
)

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from refined_summary import summarize  # noqa: E402

pytestmark = pytest.mark.slow  # real dbt builds on DuckDB

HORROR_IMDB_IDS = {row[0] for row in IMDB_MOVIES if "Horror" in row[5]}
IMDB_IDS = {row[0] for row in IMDB_MOVIES}
HORROR_TMDB_IDS = {tmdb_id for tmdb_id, movie in TMDB_MOVIES.items() if 27 in movie[5]}


@pytest.fixture
def refined(dbt_run: DbtRun) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the built DuckDB file, closed after each test (a dbt command
    run by a test needs the file's write lock)."""
    connection = duckdb.connect(str(dbt_run.duckdb_path), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


def test_dbt_build_passes_every_model_test_and_unit_test(dbt_run: DbtRun) -> None:
    results = dbt_run.artifact(BUILD_RESULTS)["results"]
    failed = [
        (r["unique_id"], r["status"])
        for r in results
        if r["status"] not in ("success", "pass") and not r["unique_id"].startswith("exposure.")
    ]
    assert failed == []
    manifest = dbt_run.artifact("manifest.json")
    built = {r["unique_id"] for r in results}
    models = {uid for uid in manifest["nodes"] if uid.startswith("model.")}
    tests = {uid for uid in manifest["nodes"] if uid.startswith("test.")}
    assert models <= built and tests <= built
    assert set(manifest["unit_tests"]) <= built and len(manifest["unit_tests"]) >= 2
    singular = {uid for uid in tests if "assert_" in uid}
    assert len(singular) >= 4


def test_every_tmdb_movie_linked_to_an_imdb_title_is_matched_by_id_not_title(
    refined: duckdb.DuckDBPyConnection,
) -> None:
    linked = {
        tmdb_id: imdb_id
        for tmdb_id, imdb_id in TMDB_IMDB_IDS.items()
        if tmdb_id in HORROR_TMDB_IDS and imdb_id in IMDB_IDS
    }
    assert linked, "the fixture must hold TMDB movies linked to IMDb titles"
    for tmdb_id, imdb_id in linked.items():
        rows = refined.execute(
            "select tmdb_id, is_known_to_imdb, is_known_to_tmdb, tmdb_candidate_count "
            "from refined.dim_movie where imdb_id = ?",
            [imdb_id],
        ).fetchall()
        assert len(rows) == 1, f"{imdb_id} (TMDB {tmdb_id}) must be one dim_movie row"
        matched_tmdb_id, known_imdb, known_tmdb, candidates = rows[0]
        assert known_imdb and known_tmdb
        sharing = [t for t, i in linked.items() if i == imdb_id]
        assert candidates == len(sharing)
        if len(sharing) == 1:
            assert matched_tmdb_id == tmdb_id

    # The pt-BR title differs from the IMDb title, and the match holds all the same.
    title, tmdb_title, tmdb_id = refined.execute(
        "select title, tmdb_title, tmdb_id from refined.dim_movie where imdb_id = 'tt0000101'"
    ).fetchone()
    assert (title, tmdb_title, tmdb_id) == ("The Haunting Hour", "A Hora Assombrada", 1001)


def test_tmdb_ids_sharing_an_imdb_id_keep_the_most_voted_one(
    refined: duckdb.DuckDBPyConnection,
) -> None:
    # 1006 and 1016 both link to tt0000106; 1016 has more votes in the latest snapshot.
    latest = SNAPSHOT_MEASURES[-1]
    expected = max((1006, 1016), key=lambda tmdb_id: (latest[tmdb_id][2], -tmdb_id))
    rows = refined.execute(
        "select tmdb_id from refined.dim_movie where imdb_id = 'tt0000106'"
    ).fetchall()
    assert rows == [(expected,)]
    loser = ({1006, 1016} - {expected}).pop()
    assert refined.execute(
        "select count(*) from refined.fct_movie_popularity where tmdb_id = ?", [loser]
    ).fetchone() == (0,)


def test_dim_movie_holds_the_genre_movies_of_either_source_and_nothing_else(
    refined: duckdb.DuckDBPyConnection,
) -> None:
    tmdb_linked = {TMDB_IMDB_IDS.get(t) for t in HORROR_TMDB_IDS} - {None}
    tmdb_unlinked = {t for t in HORROR_TMDB_IDS if TMDB_IMDB_IDS.get(t) is None}
    rows = refined.execute("select imdb_id, tmdb_id from refined.dim_movie").fetchall()
    assert {imdb for imdb, _ in rows if imdb} == HORROR_IMDB_IDS | tmdb_linked
    assert {tmdb for imdb, tmdb in rows if imdb is None} == tmdb_unlinked
    assert len(rows) == len(HORROR_IMDB_IDS | tmdb_linked) + len(tmdb_unlinked)
    # Non-horror on both sides: the IMDb comedy and the TMDB comedy linking to it stay out.
    assert "tt0000104" not in {imdb for imdb, _ in rows}
    assert 2001 not in {tmdb for _, tmdb in rows}


def test_fact_grain_is_one_row_per_movie_per_snapshot_date(
    refined: duckdb.DuckDBPyConnection,
) -> None:
    rows, distinct_keys, dates = refined.execute(
        "select count(*), count(distinct (movie_key, snapshot_date)), "
        "count(distinct snapshot_date) from refined.fct_movie_popularity"
    ).fetchone()
    assert dates == len(SNAPSHOT_DATES) == 2
    assert rows == distinct_keys
    # Each snapshot contributes one row per genre movie it lists, duplicates left out.
    expected = sum(len((set(day) & HORROR_TMDB_IDS) - {1006}) for day in SNAPSHOT_MEASURES)
    assert rows == expected
    popularity = refined.execute(
        "select popularity from refined.fct_movie_popularity f "
        "join refined.dim_date d on f.snapshot_date_key = d.date_key "
        "where f.tmdb_id = 1001 and d.date_day = ?",
        [SNAPSHOT_DATES[0]],
    ).fetchone()
    assert popularity == (SNAPSHOT_MEASURES[0][1001][0],)


def test_dim_date_covers_release_years_release_dates_and_snapshots(
    refined: duckdb.DuckDBPyConnection,
) -> None:
    first, last, days, distinct_keys = refined.execute(
        "select min(date_day), max(date_day), count(*), count(distinct date_key) "
        "from refined.dim_date"
    ).fetchone()
    years = [row[3] for row in IMDB_MOVIES if row[3] is not None]
    assert first == dt.date(min(years), 1, 1)
    assert last == dt.date(max(SNAPSHOT_DATES).year, 12, 31)
    assert days == distinct_keys == (last - first).days + 1


def test_yearly_aggregate_breaks_ties_by_title(refined: duckdb.DuckDBPyConnection) -> None:
    # Tie Breaker A and B (2012) tie on popularity and votes: the title decides.
    row = refined.execute(
        "select titles, most_popular_title, most_voted_title "
        "from refined.agg_movies__by_release_year where release_year = 2012"
    ).fetchone()
    assert row == (2, "Tie Breaker A", "Tie Breaker A")


def test_no_model_shares_a_name_or_database_with_the_trusted_tables(dbt_run: DbtRun) -> None:
    manifest = dbt_run.artifact("manifest.json")
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert {m["alias"] for m in models}.isdisjoint(TRUSTED_TABLES)
    assert all(m["schema"] != "trusted" for m in models)
    sources = manifest["sources"].values()
    assert {s["name"] for s in sources} == set(TRUSTED_TABLES)


def test_every_model_and_column_is_described(dbt_run: DbtRun) -> None:
    dbt_run.dbt("docs", "generate")
    manifest = dbt_run.artifact("manifest.json")
    catalog = dbt_run.artifact("catalog.json")
    undocumented = []
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "model":
            continue
        if not node["description"].strip():
            undocumented.append(uid)
        for column in catalog["nodes"][uid]["columns"]:
            described = node["columns"].get(column.lower(), {}).get("description", "")
            if not described.strip():
                undocumented.append(f"{uid}.{column}")
    assert undocumented == []
    assert (dbt_run.target_path / "index.html").is_file()
    assert (dbt_run.target_path / "dbt_project" / "assets" / "star_schema.svg").is_file()
    assert (
        "dbt_project/assets/star_schema.svg"
        in manifest["docs"]["doc.movie_lake.__overview__"]["block_contents"]
    )


def test_source_freshness_passes_on_daily_snapshots(dbt_run: DbtRun) -> None:
    dbt_run.dbt("source", "freshness")
    results = dbt_run.artifact("sources.json")["results"]
    assert [(r["unique_id"], r["status"]) for r in results] == [
        ("source.movie_lake.tmdb.tmdb_movie_snapshots", "pass")
    ]


def test_committed_profile_is_the_local_target_of_the_example() -> None:
    committed = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text(encoding="utf-8"))
    example = yaml.safe_load((REPO_ROOT / "profiles.example.yml").read_text(encoding="utf-8"))
    local = committed["movie_lake"]["outputs"]
    assert committed["movie_lake"]["target"] == "local" and set(local) == {"local"}
    assert local["local"] == example["movie_lake"]["outputs"]["local"]
    assert example["movie_lake"]["outputs"]["athena"]["database"] == "awsdatacatalog"


def test_refined_summary_counts_rows_of_every_refined_table(
    dbt_run: DbtRun, refined: duckdb.DuckDBPyConnection
) -> None:
    summary = summarize(dbt_run.lake, dbt_run.target_path)
    tables = [
        name
        for (name,) in refined.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'refined' and table_type = 'BASE TABLE'"
        ).fetchall()
    ]
    assert sorted(summary.rows_per_table) == sorted(tables)
    assert "fct_movie_popularity" in tables and len(tables) == 10
    for name, rows in summary.rows_per_table.items():
        assert refined.execute(f"select count(*) from refined.{name}").fetchone() == (rows,)
    text = summary.render()
    assert str(Path(dbt_run.lake) / "refined" / "movie_lake.duckdb") in text
    assert f"{summary.rows_per_table['dim_movie']:>9,} rows" in text
