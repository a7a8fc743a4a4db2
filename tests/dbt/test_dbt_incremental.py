"""The incremental refined layer on DuckDB: daily runs of real dbt over a fixture trusted lake
whose TMDB snapshots arrive one date at a time, checked against the fixture's own numbers and
against `dbt run --full-refresh` of the same lake.

The runs, in order (module fixture `daily`), each with RUN_DATE set as the pipeline sets it:
1. day 1: the first build;
2. day 2;
3. day 2 again, after its snapshot changed (popularity, votes that change which of two TMDB ids
   sharing an IMDb title stands for it): a re-run of the latest date;
4. day 3, whose snapshot lacks a movie the earlier ones listed;
5. a copy of the lake, rebuilt with --full-refresh (compared with the incremental tables);
6. day 2 once more, after its snapshot lost two movies: a re-run of an older date, which
   rebuilds the TMDB movie state from the history.
Day 2 and its re-run run the two incremental models; days 3 and 6 build them and everything
downstream with their data tests, which read the run's snapshot dates (the whole first build
and its tests are conftest.py's session build).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_fixture_lake import (
    SNAPSHOT_MEASURES,
    TMDB_IMDB_IDS,
    TMDB_MOVIES,
    DbtRun,
    build_trusted_lake,
    dbt_env,
    write_snapshot,
)

pytestmark = pytest.mark.slow

Measures = dict[int, tuple[float, float, int]]

DAY1, DAY2, DAY3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
INCREMENTAL = "int_tmdb__movie_latest_snapshots+ fct_movie_popularity+"
ONLY_INCREMENTAL = "int_tmdb__movie_latest_snapshots fct_movie_popularity"
GENRE = 27

DAY1_MEASURES: Measures = dict(SNAPSHOT_MEASURES[0])
DAY2_MEASURES: Measures = dict(SNAPSHOT_MEASURES[1])
# Day 2 fetched again: other popularity, and 1006 now has more votes than 1016 (both link to
# tt0000106), so 1006 stands for that movie on day 2.
DAY2_RERUN_MEASURES: Measures = {
    **DAY2_MEASURES,
    1001: (99.0, 7.2, 120),
    1002: (1.0, 6.1, 83),
    1006: (4.0, 6.2, 900),
}
# Day 3 no longer lists 1008: its latest snapshot stays day 2's.
DAY3_MEASURES: Measures = {
    **{tmdb_id: (p + 1.0, v, n + 1) for tmdb_id, (p, v, n) in DAY2_RERUN_MEASURES.items()},
}
del DAY3_MEASURES[1008]
# Day 2 fetched once more, after day 3 was built: without 1003 (listed on days 1 to 3) and 1004
# (listed on days 2 and 3 only, so its first snapshot date becomes day 3).
DAY2_LATE_MEASURES: Measures = {
    tmdb_id: m for tmdb_id, m in DAY2_RERUN_MEASURES.items() if tmdb_id not in (1003, 1004)
}

FACT_COLUMNS = "tmdb_id, snapshot_date, popularity, popularity_rank, tmdb_vote_count"
STATE = "refined_intermediate.int_tmdb__movie_latest_snapshots"
STATE_COLUMNS = (
    "tmdb_id, first_snapshot_date, latest_snapshot_date, snapshot_count, popularity, vote_count"
)


def expected_fact(snapshots: Mapping[dt.date, Measures]) -> set[tuple[Any, ...]]:
    """The fact's rows from the fixture's numbers: one row per genre movie per date; of TMDB
    ids sharing an IMDb id, the one with the most votes that day (then the smallest id);
    ranked by popularity that day (ties share a rank)."""
    rows: set[tuple[Any, ...]] = set()
    for day, measures in snapshots.items():
        shared: dict[str, list[int]] = defaultdict(list)
        movies: list[int] = []
        for tmdb_id in measures:
            if GENRE not in TMDB_MOVIES[tmdb_id][5]:
                continue
            imdb_id = TMDB_IMDB_IDS.get(tmdb_id)
            if imdb_id is None:
                movies.append(tmdb_id)
            else:
                shared[imdb_id].append(tmdb_id)
        for claims in shared.values():
            movies.append(max(claims, key=lambda t: (measures[t][2], -t)))
        for tmdb_id in movies:
            popularity, _, votes = measures[tmdb_id]
            rank = 1 + sum(1 for other in movies if measures[other][0] > popularity)
            rows.add((tmdb_id, day, popularity, rank, votes))
    return rows


def expected_state(snapshots: Mapping[dt.date, Measures]) -> set[tuple[Any, ...]]:
    """One row per genre movie: first and latest date listing it, how many, latest values."""
    listed: dict[int, list[dt.date]] = defaultdict(list)
    for day in sorted(snapshots):
        for tmdb_id in snapshots[day]:
            if GENRE in TMDB_MOVIES[tmdb_id][5]:
                listed[tmdb_id].append(day)
    rows = set()
    for tmdb_id, days in listed.items():
        popularity, _, votes = snapshots[days[-1]][tmdb_id]
        rows.add((tmdb_id, days[0], days[-1], len(days), popularity, votes))
    return rows


@dataclass
class Daily:
    """What the daily runs left: the lake, and the tables read after each step."""

    run: DbtRun
    full_refresh: DbtRun | None = None
    day3_file: Path | None = None  # the refined DuckDB file as day 3's run left it
    fact: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)
    fact_rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    state: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)


def _read(duckdb_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _record(daily: Daily, step: str) -> None:
    path = daily.run.duckdb_path
    daily.fact[step] = set(_read(path, f"select {FACT_COLUMNS} from refined.fct_movie_popularity"))
    daily.fact_rows[step] = _read(path, "select * from refined.fct_movie_popularity order by all")
    daily.state[step] = set(_read(path, f"select {STATE_COLUMNS} from {STATE}"))


def _daily(
    daily: Daily, step: str, day: dt.date, command: str = "run", select: str | None = INCREMENTAL
) -> None:
    """A daily dbt command for RUN_DATE=day, as the pipeline runs it: `run` or `build` (models
    and their data tests) of `select` (by default the incremental models and everything
    downstream; None: the whole project)."""
    env = {**daily.run.env, "RUN_DATE": day.isoformat()}
    args = [command, *(("--select", select) if select else ())]
    result = DbtRun(daily.run.lake, daily.run.target_path, env).dbt(*args)
    daily.logs[step] = result.stdout
    _record(daily, step)


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daily]:
    root = tmp_path_factory.mktemp("dbt_incremental")
    lake = root / "lake"
    build_trusted_lake(lake)
    shutil.rmtree(lake / "trusted" / "tmdb_movie_snapshots")
    daily = Daily(DbtRun(lake=lake, target_path=root / "target", env=dbt_env(lake)))

    write_snapshot(lake, DAY1, DAY1_MEASURES)
    _daily(daily, "day1", DAY1, select=None)
    # Day 2 and its re-run: the two incremental models only (the marts downstream are tables
    # rebuilt whole on every run; day 3 rebuilds them).
    write_snapshot(lake, DAY2, DAY2_MEASURES)
    _daily(daily, "day2", DAY2, select=ONLY_INCREMENTAL)
    write_snapshot(lake, DAY2, DAY2_RERUN_MEASURES)
    _daily(daily, "day2_rerun", DAY2, select=ONLY_INCREMENTAL)
    write_snapshot(lake, DAY3, DAY3_MEASURES)
    _daily(daily, "day3", DAY3, "build")
    daily.day3_file = root / "day3.duckdb"
    shutil.copyfile(daily.run.duckdb_path, daily.day3_file)

    # The same trusted lake and refined file, every incremental model rebuilt from scratch.
    copy = root / "full_refresh" / "lake"
    shutil.copytree(lake, copy)
    daily.full_refresh = DbtRun(copy, root / "full_refresh" / "target", dbt_env(copy))
    daily.full_refresh.dbt("run", "--full-refresh", "--select", INCREMENTAL)

    write_snapshot(lake, DAY2, DAY2_LATE_MEASURES)
    _daily(daily, "day2_late", DAY2, "build")
    yield daily


def _on(rows: list[tuple[Any, ...]], day: dt.date) -> list[tuple[Any, ...]]:
    return [row for row in rows if day in row]


def test_each_daily_run_adds_its_date_and_keeps_the_others(daily: Daily) -> None:
    assert daily.fact["day1"] == expected_fact({DAY1: DAY1_MEASURES})
    assert daily.fact["day2"] == expected_fact({DAY1: DAY1_MEASURES, DAY2: DAY2_MEASURES})
    # Day 1's rows, every column of them, as day 1's run wrote them.
    assert _on(daily.fact_rows["day2"], DAY1) == _on(daily.fact_rows["day1"], DAY1)
    assert (
        "fct_movie_popularity: latest snapshot date built 2024-03-01; building 2024-03-02"
        in (daily.logs["day2"])
    )


def test_rerunning_the_latest_date_replaces_that_dates_rows_only(daily: Daily) -> None:
    before, after = daily.fact_rows["day2"], daily.fact_rows["day2_rerun"]
    assert daily.fact["day2_rerun"] == expected_fact(
        {DAY1: DAY1_MEASURES, DAY2: DAY2_RERUN_MEASURES}
    )
    assert _on(after, DAY1) == _on(before, DAY1)
    assert _on(after, DAY2) != _on(before, DAY2)
    # No duplicates: one row per movie and date, as many rows as the new snapshot gives.
    day2 = [(row[0], row[-1]) for row in _on(after, DAY2)]
    assert len(day2) == len(set(day2)) == len(expected_fact({DAY2: DAY2_RERUN_MEASURES}))
    # 1006 outvotes 1016 in the new day 2 snapshot: it stands for tt0000106 that day only.
    tt106 = {(row[2], row[-1]) for row in after if row[3] == "tt0000106"}
    assert tt106 == {(1016, DAY1), (1006, DAY2)}


def test_the_movie_state_follows_each_run_without_reading_history(daily: Daily) -> None:
    assert daily.state["day1"] == expected_state({DAY1: DAY1_MEASURES})
    assert daily.state["day2_rerun"] == expected_state(
        {DAY1: DAY1_MEASURES, DAY2: DAY2_RERUN_MEASURES}
    )
    history = {DAY1: DAY1_MEASURES, DAY2: DAY2_RERUN_MEASURES, DAY3: DAY3_MEASURES}
    assert daily.state["day3"] == expected_state(history)
    # 1008 is not in day 3's snapshot: its latest values stay day 2's.
    (row,) = [row for row in daily.state["day3"] if row[0] == 1008]
    assert row[1:4] == (DAY1, DAY2, 2)
    # Re-running the latest date and adding a new one applied on top of the table.
    for step in ("day2_rerun", "day3"):
        assert "rebuilding every movie from the snapshot history" not in daily.logs[step]


def test_full_refresh_after_the_daily_runs_gives_the_same_rows(daily: Daily) -> None:
    assert daily.full_refresh is not None and daily.day3_file is not None
    rebuilt = daily.full_refresh.duckdb_path
    with duckdb.connect(str(daily.day3_file), read_only=True) as connection:
        connection.execute(f"attach '{rebuilt}' as rebuilt (read_only)")
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'day3' and table_type = 'BASE TABLE' "
            "and table_schema in ('refined', 'refined_intermediate') order by all"
        ).fetchall()
        assert ("refined", "fct_movie_popularity") in tables and len(tables) == 11
        for schema, table in tables:
            ours, theirs = f"day3.{schema}.{table}", f"rebuilt.{schema}.{table}"
            counts = connection.execute(
                f"select (select count(*) from {ours}), (select count(*) from {theirs}), "
                f"(select count(*) from (select * from {ours} except all select * from {theirs})),"
                f"(select count(*) from (select * from {theirs} except all select * from {ours}))"
            ).fetchone()
            assert counts is not None and counts[0] == counts[1] > 0, (table, counts)
            assert counts[2:] == (0, 0), f"{table}: rows differ {counts}"
    history = {DAY1: DAY1_MEASURES, DAY2: DAY2_RERUN_MEASURES, DAY3: DAY3_MEASURES}
    assert daily.fact["day3"] == expected_fact(history)


def test_rerunning_an_older_date_replaces_it_and_rebuilds_the_movie_state(daily: Daily) -> None:
    before, after = daily.fact_rows["day3"], daily.fact_rows["day2_late"]
    for untouched in (DAY1, DAY3):
        assert _on(after, untouched) == _on(before, untouched)
    history = {DAY1: DAY1_MEASURES, DAY2: DAY2_LATE_MEASURES, DAY3: DAY3_MEASURES}
    assert daily.fact["day2_late"] == expected_fact(history)
    assert daily.state["day2_late"] == expected_state(history)
    (row,) = [row for row in daily.state["day2_late"] if row[0] == 1004]
    assert row[1:4] == (DAY3, DAY3, 1)
    assert "rebuilding every movie from the snapshot history" in daily.logs["day2_late"]
    assert (
        "fct_movie_popularity: latest snapshot date built 2024-03-03; building 2024-03-02"
        in (daily.logs["day2_late"])
    )


def test_a_run_date_that_is_not_a_date_stops_the_run_and_says_how_to_pass_one(
    daily: Daily,
) -> None:
    env = {**daily.run.env, "RUN_DATE": "2024-3-4"}
    result = DbtRun(daily.run.lake, daily.run.target_path, env).dbt(
        "run", "--select", "fct_movie_popularity", check=False
    )
    assert result.returncode != 0
    assert "The run's snapshot date '2024-3-4'" in result.stdout
    assert "--vars '{snapshot_date: 2024-03-01}'" in result.stdout
    # Nothing was written: the fact still holds what the last run left.
    assert (
        set(
            _read(daily.run.duckdb_path, f"select {FACT_COLUMNS} from refined.fct_movie_popularity")
        )
        == (daily.fact["day2_late"])
    )
