"""``dbt build`` (through ``scripts/dbt_locked.py``, as ``make refined`` runs it) killed with
SIGKILL between two models and inside a model, on a scratch lake: the DuckDB file still opens
with every table whole (the previous build's or the new one's, never a half-built or a
temporary one), and the rerun ends with exactly the tables of an uninterrupted build. And a
second build of the same day while one runs exits 4 at once.

The trusted layer is the dbt tests' fixture lake (A), then the same with different ratings (B);
the refined tables of A are the "previous tables" every killed build starts from. All builds
share one lake path and target folder, so dbt's partial parsing serves every build after the
first.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fault_helpers_spark import (
    KILLED,
    Run,
    build_trusted_lake,
    dbt_fixture,
    env_for,
    leftovers,
    refined_relations,
    refined_tables,
)

pytestmark = pytest.mark.slow

DAY = dbt_fixture.SNAPSHOT_DATES[1]
DB_NAME = "movie_lake.duckdb"


def dbt_locked(target: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "scripts.dbt_locked", *args, "build", "--target", "local",
        "--target-path", str(target), "--log-path", str(target),
    ]  # fmt: skip


def change_ratings(lake: Path) -> None:
    """Trusted state B: every rated movie half a point higher, with ten more votes."""
    rows = []
    for row in dbt_fixture.IMDB_MOVIES:
        *title, rating, votes = row
        if rating is not None:
            rating, votes = rating + 0.5, votes + 10
        rows.append((*title, rating, votes))
    dbt_fixture._write(
        lake / "trusted" / "imdb_movies",
        dbt_fixture._records(dbt_fixture.TITLE_SCHEMA, rows),
        dbt_fixture.TITLE_SCHEMA,
    )


def restore(source: Path, lake: Path) -> None:
    refined = lake / "refined"
    for stale in refined.glob(f"{DB_NAME}*"):  # the file and any write-ahead log
        stale.unlink()
    shutil.copyfile(source, refined / DB_NAME)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Uninterrupted builds on A then B; while B's build (X) holds the day, Y starts."""
    work = tmp_path_factory.mktemp("dbt_faults")
    lake, target = work / "lake", work / "target"
    build_trusted_lake(lake)
    env = env_for(lake, DAY)
    first = Run.start(dbt_locked(target), env, work / "a.log")
    assert first.wait() == 0, first.tail()
    db = lake / "refined" / DB_NAME
    shutil.copyfile(db, work / "refined_a.duckdb")
    change_ratings(lake)
    x = Run.start(dbt_locked(target), env, work / "x.log")
    lock_file = lake / "refined" / "_locks" / f"{DAY}.json"
    deadline = time.monotonic() + 300
    while not lock_file.exists() and x.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    y = Run.start(dbt_locked(target), env, work / "y.log")
    codes = {"y": y.wait(), "x": x.wait()}
    assert codes["x"] == 0, x.tail()
    shutil.copyfile(db, work / "refined_b.duckdb")
    return {
        "work": work,
        "lake": lake,
        "target": target,
        "env": env,
        "a": refined_tables(work / "refined_a.duckdb"),
        "b": refined_tables(work / "refined_b.duckdb"),
        "relations": refined_relations(work / "refined_a.duckdb"),
        "x": x,
        "y": y,
        "codes": codes,
    }


def test_the_two_trusted_states_give_different_refined_tables(builds: dict[str, Any]) -> None:
    a, b = builds["a"], builds["b"]
    assert set(a) == set(b)
    for table in ("refined.dim_movie", "refined.rpt_movies_wide"):
        assert a[table] and a[table] != b[table], table  # so a mix would show


def test_a_second_build_of_the_day_exits_4_while_one_runs(builds: dict[str, Any]) -> None:
    y = builds["y"]
    assert builds["codes"]["y"] == 4, y.tail()
    assert f"another run holds this day: refined/{DAY} is locked by run dbt_" in y.log
    assert "Traceback" not in y.log
    assert y.seconds < builds["x"].seconds  # refused at once, while the first one ran


@pytest.mark.parametrize(
    ("fault", "rebuilt", "previous"),
    [
        # dim_movie finished; the models downstream of it not started
        ("dbt.after.dim_movie", "refined.dim_movie", "refined.agg_movies__by_release_year"),
        # rpt_movies_wide's new table built, about to replace the old one (its transaction open)
        ("dbt.rename.rpt_movies_wide", "refined.dim_movie", "refined.rpt_movies_wide"),
    ],
)
def test_a_build_killed_midway_leaves_whole_tables_and_its_rerun_equals_a_full_build(
    builds: dict[str, Any], fault: str, rebuilt: str, previous: str
) -> None:
    lake, target, work = builds["lake"], builds["target"], builds["work"]
    a, b = builds["a"], builds["b"]
    db = lake / "refined" / DB_NAME
    restore(work / "refined_a.duckdb", lake)  # the previous build's tables, trusted now at B

    killed = Run.start(
        dbt_locked(target), env_for(lake, DAY, fault), work / f"{fault}.log"
    )  # fmt: skip
    assert killed.wait() == KILLED, killed.tail()
    assert f"fault injected at {fault}" in killed.log

    seen = refined_tables(db)  # opens: the file is not damaged
    assert set(seen) == set(a)
    for table, rows in seen.items():
        assert rows in (a[table], b[table]), f"{table}: neither the previous nor the new rows"
    assert seen[rebuilt] == b[rebuilt]
    assert seen[previous] == a[previous]  # the previous table, intact
    relations = refined_relations(db)
    assert not [r for r in relations if "__dbt_tmp" in r or "__dbt_backup" in r], relations
    assert relations == builds["relations"]
    assert (lake / "refined" / "_locks" / f"{DAY}.json").exists()  # the dead run's lease

    rerun = Run.start(dbt_locked(target), builds["env"], work / f"{fault}.rerun.log")
    assert rerun.wait() == 0, rerun.tail()
    assert "took over the lease" in rerun.log and "is gone" in rerun.log
    assert refined_tables(db) == b  # exactly the tables of an uninterrupted build
    assert refined_relations(db) == builds["relations"]
    assert [x for x in leftovers(lake) if x.startswith("refined/")] == []
