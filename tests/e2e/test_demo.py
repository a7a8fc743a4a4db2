"""``make demo``'s script, end to end, into a fresh lake folder (what a new user sees): two
daily runs, 2024-02-29 (the CSVs land once, on day 1) and 2024-03-01 (RUN_DATE)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the whole pipeline: Spark and dbt in subprocesses

ROOT = Path(__file__).resolve().parents[2]
DAY1, DAY2 = dt.date(2024, 2, 29), dt.date(2024, 3, 1)
IMDB_TABLES = ("imdb_movies", "imdb_series", "imdb_movie_credits", "imdb_series_credits",
               "imdb_movie_genres", "imdb_series_genres")  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    lake = tmp_path_factory.mktemp("demo") / "lake"
    env = {**os.environ, "LAKE_URI": str(lake), "RUN_DATE": "2024-03-01"}
    env.pop("TMDB_API_KEY", None)
    # Its own process group, so that a demo stopped for taking too long (a hang, not a speed
    # check: two days of Spark and dbt on a busy machine take minutes) stops with everything
    # it started.
    proc = subprocess.Popen(
        [sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"make demo ran over 20 minutes:\n{stdout[-3000:]}{stderr[-3000:]}")
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return lake, stdout


def test_demo_lands_the_sample_under_the_raw_layout_and_prints_where(
    demo: tuple[Path, str],
) -> None:
    lake, out = demo
    for dataset in ("movies", "series"):
        partition = lake / f"raw/local/csv/{dataset}/year=2024/month=02/day=29"
        assert (partition / f"{dataset}.csv").read_bytes() == (
            ROOT / "data" / "sample" / f"{dataset}.csv"
        ).read_bytes()
        assert (partition / "_SUCCESS").exists() and (partition / "_manifest.json").exists()
        assert str(partition / f"{dataset}.csv") in out
    assert f"Lake:      {lake}" in out


def test_demo_prints_one_line_per_stage_and_keeps_every_stage_log_under_the_lake(
    demo: tuple[Path, str],
) -> None:
    lake, out = demo
    assert len(out.splitlines()) <= 60, out
    assert "\x1b[" not in out and "CSVHeaderChecker" not in out and "SparkContext" not in out
    (run_logs,) = (lake / "_logs").glob("demo_*")
    assert f"logs:    {run_logs}" in out
    logs = {path.name: path.read_text(encoding="utf-8") for path in run_logs.glob("*.log")}
    stages = ["csv_landing", "dbt_docs"] + [
        f"day{n}_{stage}" for n in (1, 2) for stage in ("tmdb", "trusted", "dbt")
    ]
    assert set(logs) >= {f"{stage}.log" for stage in stages}
    assert "Completed successfully" in logs["day1_dbt.log"]  # dbt's whole output is in its log
    assert "CSVHeaderChecker" not in logs["day1_trusted.log"]  # the CRLF header reads cleanly
    for stage in ("csv_landing.log", "day1_tmdb.log", "day1_trusted.log"):
        # One log line format for the Python stages: "<date> <time>,<ms> LEVEL logger: message".
        assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO [\w.]+: ", logs[stage], re.M)
    for stage in ("CSV landing", "TMDB extraction", "trusted job", "dbt build"):
        assert f"  ok {stage}" in out, stage


def test_demo_builds_trusted_and_a_tested_refined_layer(demo: tuple[Path, str]) -> None:
    lake, out = demo
    for table in ("imdb_movies", "imdb_movie_credits", "tmdb_movie_snapshots", "tmdb_genres"):
        assert list((lake / "trusted" / table).rglob("*.parquet")), table
    assert list((lake / "trusted" / "_runs").glob("*.json"))
    assert "tests: " in out and " fail" not in out.split("Refined layer")[1]
    assert (ROOT / "target" / "index.html").is_file()


def test_every_tmdb_horror_movie_with_a_csv_imdb_id_is_matched_despite_other_titles(
    demo: tuple[Path, str],
) -> None:
    import duckdb

    lake, _ = demo
    trusted = lake / "trusted"
    con = duckdb.connect(str(lake / "refined" / "movie_lake.duckdb"), read_only=True)
    expected = con.sql(
        f"""
        select distinct d.tmdb_id, d.imdb_id
        from read_parquet('{trusted}/tmdb_movie_details/**/*.parquet') d
        join read_parquet('{trusted}/imdb_movies/**/*.parquet') m on m.title_id = d.imdb_id
        join read_parquet('{trusted}/tmdb_movie_snapshots/**/*.parquet',
                          hive_partitioning = true) s on s.tmdb_id = d.tmdb_id
        where list_contains(s.genre_ids, 27)
        """
    ).fetchall()
    assert len(expected) > 50  # the fake catalogue links most of the sample's horror titles
    matched = set(
        con.sql(
            "select tmdb_id, imdb_id from refined.dim_movie "
            "where tmdb_id is not null and imdb_id is not null"
        ).fetchall()
    )
    assert set(expected) <= matched
    differing = con.sql(
        "select count(*) from refined.dim_movie where tmdb_id is not null "
        "and imdb_id is not null and tmdb_title <> imdb_primary_title"
    ).fetchall()[0][0]
    assert differing > 0  # matched by imdb_id although the pt-BR titles differ


def test_demo_runs_two_days_and_the_second_adds_only_its_own_fact_rows(
    demo: tuple[Path, str],
) -> None:
    import duckdb

    lake, out = demo
    for day in (DAY1, DAY2):
        partition = f"year={day:%Y}/month={day:%m}/day={day:%d}"
        assert (lake / "raw/tmdb/json/discover" / partition / "_SUCCESS").exists(), day
        assert list((lake / "trusted/tmdb_movie_snapshots" / partition).glob("*.parquet")), day
    con = duckdb.connect(str(lake / "refined" / "movie_lake.duckdb"), read_only=True)
    per_date = dict(
        con.sql(
            "select snapshot_date, count(*) from refined.fct_movie_popularity group by 1"
        ).fetchall()
    )
    assert set(per_date) == {DAY1, DAY2} and min(per_date.values()) > 50
    # The fake server's second day: the same movies, other popularity.
    moved = con.execute(
        "select count(*) from refined.fct_movie_popularity d1 "
        "join refined.fct_movie_popularity d2 using (movie_key) "
        f"where d1.snapshot_date = date '{DAY1}' and d2.snapshot_date = date '{DAY2}' "
        "and d1.popularity <> d2.popularity"
    ).fetchone()
    assert moved is not None and moved[0] > 0.5 * per_date[DAY1]
    # Day 2's dbt run built its own date only, and the summary says what each day added.
    day2_dbt_log = next((lake / "_logs").glob("demo_*/day2_dbt.log")).read_text(encoding="utf-8")
    assert (
        f"fct_movie_popularity: latest snapshot date built {DAY1}; building {DAY2}" in day2_dbt_log
    )
    daily = out.split("Daily runs:")[1]
    assert (
        f"day 1 ({DAY1}): dbt added {per_date[DAY1]:,} rows to fct_movie_popularity "
        f"({per_date[DAY1]:,} for snapshot date {DAY1})"
    ) in daily
    assert (
        f"day 2 ({DAY2}): dbt added {per_date[DAY2]:,} rows to fct_movie_popularity "
        f"({per_date[DAY2]:,} for snapshot date {DAY2})"
    ) in daily


def test_demo_says_what_the_trusted_job_did_with_the_unchanged_imdb_tables_on_day_two(
    demo: tuple[Path, str],
) -> None:
    lake, out = demo
    reports = sorted((lake / "trusted" / "_runs").glob(f"{DAY2}_*.json"))
    assert reports, "the trusted job writes a run report per run"
    tables = json.loads(reports[-1].read_text(encoding="utf-8"))["tables"]
    skipped = {
        t for t in IMDB_TABLES if isinstance(tables.get(t), dict) and tables[t].get("skipped")
    }
    daily = out.split("Daily runs:")[1]
    # Whatever the job did, the summary reports it as the run report says.
    if skipped:
        assert f"{len(skipped)} of {len(IMDB_TABLES)} IMDb tables skipped" in daily
        assert all(table in daily for table in skipped)
    else:
        assert "IMDb tables rebuilt from the same raw CSVs" in daily


def test_the_tmdb_key_is_in_no_output_log_or_lake_file_of_any_stage(
    demo: tuple[Path, str],
) -> None:
    from scripts.demo import DEMO_KEY

    lake, out = demo
    assert DEMO_KEY not in out
    files = [p for p in lake.rglob("*") if p.is_file()]
    logs = [p for p in files if p.parts[len(lake.parts)] == "_logs"]
    # Every stage's whole output is there: landing, both days' TMDB, trusted job and dbt.
    assert {p.stem for p in logs} >= {"csv_landing", "day1_tmdb", "day2_trusted", "day2_dbt"}
    for path in files:
        assert DEMO_KEY.encode() not in path.read_bytes(), path


def _demo(lake: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKE_URI": str(lake), "RUN_DATE": "2024-03-01", **settings}
    return subprocess.run(
        [sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, text=True,
        capture_output=True, timeout=600,
    )  # fmt: skip


def test_an_invalid_setting_stops_the_demo_with_its_message_and_exit_code_3(
    tmp_path: Path,
) -> None:
    done = _demo(tmp_path / "lake", TMDB_RATE_LIMIT="fast")
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout == "make demo: TMDB_RATE_LIMIT 'fast' is not a number\n"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "lake").exists()


def test_a_failing_stage_prints_its_error_and_the_path_of_its_whole_log(tmp_path: Path) -> None:
    # A line limit the trusted job refuses: landing and TMDB pass, then the trusted job exits
    # with its usage error, which the demo shows with the log it went to.
    lake = tmp_path / "lake"
    done = _demo(lake, CSV_MAX_LINE_BYTES="12")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "  ok CSV landing" in out and "  ok TMDB extraction" in out
    assert re.search(r"  x trusted job +[0-9.]+ s  failed \(exit code 2\)", out), out
    assert "CSV_MAX_LINE_BYTES" in out  # the stage's own error, from the end of its log
    [log] = lake.glob("_logs/demo_*/day1_trusted.log")
    assert f"  the whole output: {log}" in out
    assert "CSV_MAX_LINE_BYTES" in log.read_text(encoding="utf-8")
    assert "Demo finished" not in out and len(out.splitlines()) <= 60
