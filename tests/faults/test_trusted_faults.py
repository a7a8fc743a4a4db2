"""The trusted job killed midway (SIGKILL at a named step) and run again, as a subprocess on a
scratch lake: nothing partial is ever visible, and the rerun ends where an uninterrupted run
ends. And two runs of one day at once: one waits or exits 4, their writes never interleave.

Every run starts from the same lake (``before``): the sample CSVs and a small TMDB day in raw
for ``D1``, and an older trusted layer (the dbt test fixture's tables, written by another
writer, with no ``_built_from.json``: a previous version of the job), so each table a run
replaces has other rows before. A reader's view of a table is its rows as DuckDB reads every
parquet file under its folder, as the refined layer does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fault_helpers_spark import (
    KILLED,
    REPO,
    RawLakeBuilder,
    Run,
    build_trusted_lake,
    details,
    discover_movie,
    discover_page,
    env_for,
    files_with_times,
    genre_list,
    leftovers,
    trusted_command,
    trusted_rows,
)

pytestmark = pytest.mark.slow

D1 = dt.date(2024, 3, 1)
MAIN_TABLES = (
    "imdb_movies", "imdb_movie_credits", "imdb_movie_genres", "imdb_series",
    "imdb_series_credits", "imdb_series_genres", "tmdb_movie_snapshots", "tmdb_movie_details",
    "tmdb_genres",
)  # fmt: skip
D1_PARTITION = f"year={D1:%Y}/month={D1:%m}/day={D1:%d}"


def land_raw(lake: Path) -> None:
    raw = RawLakeBuilder(lake)
    for dataset in ("movies", "series"):
        lines = (REPO / "data" / "sample" / f"{dataset}.csv").read_text("utf-8").splitlines()
        raw.csv(dataset, D1, lines[1:])
    movies = [discover_movie(n, popularity=float(n)) for n in range(1, 41)]
    pages = [discover_page(movies[:20]), discover_page(movies[20:], page=2), "{not json"]
    raw.tmdb("discover", D1, pages, files=2)
    raw.tmdb("movie_details", D1, [details(m["id"], f"tt{m['id']:07d}") for m in movies])
    raw.tmdb("genres", D1, [genre_list([(27, "Terror"), (53, "Thriller")])])


def run_id_of(run: Run) -> str:
    match = re.search(r"trusted run (\S+) for", run.log)
    assert match, run.tail()
    return match.group(1)


def report_of(lake: Path, run_id: str) -> dict[str, Any]:
    return json.loads((lake / "trusted" / "_runs" / f"{run_id}.json").read_text())


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("before") / "lake"
    land_raw(lake)
    build_trusted_lake(lake)
    return lake


@pytest.fixture(scope="module")
def reference(before: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Uninterrupted runs on a copy of ``before``: X, and, once X holds the day, Y (no wait)
    and Z (``--lock-wait``). Their result is what every killed-and-rerun lake must equal."""
    work = tmp_path_factory.mktemp("reference")
    lake = work / "lake"
    shutil.copytree(before, lake)
    env = env_for(lake, D1)
    x = Run.start(trusted_command(lake, D1), env, work / "x.log")
    lock_file = lake / "trusted" / "_locks" / f"{D1}.json"
    deadline = time.monotonic() + 300
    while not lock_file.exists() and x.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock_file.exists(), x.tail()
    y = Run.start(trusted_command(lake, D1), env, work / "y.log")
    z = Run.start(trusted_command(lake, D1, "--lock-wait", "600"), env, work / "z.log")
    codes = {"y": y.wait(), "x": x.wait(), "z": z.wait()}
    return {
        "lake": lake,
        "runs": {"x": x, "y": y, "z": z},
        "codes": codes,
        "rows": trusted_rows(lake),
        "before_rows": trusted_rows(before),
    }


def test_a_run_started_while_another_holds_the_day_exits_4_naming_it(
    reference: dict[str, Any],
) -> None:
    x, y = reference["runs"]["x"], reference["runs"]["y"]
    assert reference["codes"]["y"] == 4, y.tail()
    assert "another run holds this day: trusted/2024-03-01 is locked by run " in y.log
    assert f"run {run_id_of(x)} (pid {x.process.pid}" in y.log
    assert "Traceback" not in y.log
    reports = sorted(p.stem for p in (reference["lake"] / "trusted" / "_runs").glob("*.json"))
    assert reports == sorted([run_id_of(x), run_id_of(reference["runs"]["z"])])  # none of Y's


def test_two_runs_of_one_day_never_interleave_their_writes(reference: dict[str, Any]) -> None:
    lake, runs, codes = reference["lake"], reference["runs"], reference["codes"]
    x, z = runs["x"], runs["z"]
    assert codes["x"] == 0, x.tail()
    assert codes["z"] == 0, z.tail()
    x_id, z_id = run_id_of(x), run_id_of(z)
    assert f"waiting for trusted/{D1}, held by run {x_id}" in z.log
    # Every file X wrote is older than its report (its last write, under the lock); every file
    # Z wrote (it rebuilt the TMDB tables and left the IMDb ones) is newer.
    x_done = (lake / "trusted" / "_runs" / f"{x_id}.json").stat().st_mtime_ns
    for table in MAIN_TABLES[:6]:
        times = files_with_times(lake / "trusted" / table).values()
        assert max(times) <= x_done, table
    for table in ("tmdb_movie_details", "tmdb_genres"):
        times = files_with_times(lake / "trusted" / table).values()
        assert min(times) >= x_done, table
    snapshot_day = lake / "trusted" / "tmdb_movie_snapshots" / D1_PARTITION
    assert min(files_with_times(snapshot_day).values()) >= x_done
    # Same result: Z found the IMDb tables built from its landing by X, and counts alike.
    x_report, z_report = report_of(lake, x_id), report_of(lake, z_id)
    for table, counts in z_report["tables"].items():
        assert {k: v for k, v in counts.items() if k in ("rows_in", "rows_out")} == {
            k: v for k, v in x_report["tables"][table].items() if k in ("rows_in", "rows_out")
        }
        if table.startswith("imdb_"):
            assert counts["skipped"] == "unchanged input" and counts["built_by"] == x_id
            assert x_report["tables"][table]["skipped"] is None
    assert leftovers(lake) == []


# Two kill points, to keep the suite's time down (each costs a killed run and a rerun): the
# midway point of putting a table in place (``trusted.swap.<table>``) is killed in-process in
# tests/spark/test_trusted_commit.py, for each of the three ways a table is put in place.
KILL_POINTS = [
    # Spark's write job of the first table (the movie credits) begun in staging, not committed:
    # every table a reader sees is the old one.
    "trusted.write.imdb_movie_credits",
    # the IMDb tables done (new, with their markers), the partitioned snapshots mid-write: a
    # layer of new and old tables, each whole; the rerun leaves the IMDb tables as they are.
    "trusted.write.tmdb_movie_snapshots",
]


@pytest.mark.parametrize("fault", KILL_POINTS)
def test_a_killed_run_leaves_nothing_partial_and_its_rerun_equals_an_uninterrupted_run(
    fault: str, before: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(before, lake)
    old_rows, new_rows = reference["before_rows"], reference["rows"]
    old_files = {t: files_with_times(lake / "trusted" / t) for t in old_rows}

    killed = Run.start(trusted_command(lake, D1), env_for(lake, D1, fault), tmp_path / "k.log")
    assert killed.wait() == KILLED, killed.tail()
    assert f"fault injected at {fault}" in killed.log
    killed_id = run_id_of(killed)

    # What the next stage would read now: every table whole, old or new, never a mix.
    seen = trusted_rows(lake)
    assert set(seen) <= set(new_rows)
    for table, rows in seen.items():
        if rows == old_rows.get(table, []):
            folder = lake / "trusted" / table
            assert not old_files.get(table) or files_with_times(folder) == old_files[table]
        else:
            assert rows == new_rows[table], f"{table}: a mix of old and new rows after {fault}"
    staged = lake / "trusted" / "_staging" / str(D1) / killed_id
    if fault.startswith("trusted.write."):  # really killed mid-write: Spark never committed
        table = fault.removeprefix("trusted.write.")
        assert (staged / table / "_temporary").is_dir()
        assert seen.get(table, []) == old_rows.get(table, [])
    assert (lake / "trusted" / "_locks" / f"{D1}.json").exists()  # the dead run's lease

    rerun = Run.start(trusted_command(lake, D1), env_for(lake, D1), tmp_path / "rerun.log")
    assert rerun.wait() == 0, rerun.tail()
    assert f"took over the lease {lake / 'trusted' / '_locks'}" in rerun.log
    assert f"from run {killed_id}" in rerun.log
    assert f"cleaned a leftover of an interrupted run: trusted/_staging/{D1}/{killed_id}" in (
        rerun.log
    )
    assert "cleaned 1 leftover(s) of interrupted runs" in rerun.log
    report = report_of(lake, run_id_of(rerun))
    assert [x["key"] for x in report["leftovers_cleaned"]] == [f"trusted/_staging/{D1}/{killed_id}"]
    assert report["lock"]["took_over_from"] == killed_id

    after = trusted_rows(lake)
    assert after == new_rows  # the same rows as the uninterrupted runs, table by table
    for table in MAIN_TABLES:
        assert len(set(after[table])) == len(after[table]), f"duplicates in {table}"
    assert leftovers(lake) == []
    # the snapshot partitions of other days are the old files, untouched
    snapshots = lake / "trusted" / "tmdb_movie_snapshots"
    for name, mtime in old_files["tmdb_movie_snapshots"].items():
        assert files_with_times(snapshots).get(name) == mtime, name
    if fault == "trusted.write.tmdb_movie_snapshots":  # the IMDb tables were done: left as is
        for table in MAIN_TABLES[:6]:
            assert report["tables"][table]["skipped"] == "unchanged input"
            assert report["tables"][table]["built_by"] == killed_id
