"""``make demo``'s script, end to end, into a fresh lake folder (what a new user sees)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the whole pipeline: Spark and dbt in subprocesses

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    lake = tmp_path_factory.mktemp("demo") / "lake"
    env = {**os.environ, "LAKE_URI": str(lake), "RUN_DATE": "2024-03-01"}
    env.pop("TMDB_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return lake, result.stdout


def test_demo_lands_the_sample_under_the_raw_layout_and_prints_where(
    demo: tuple[Path, str],
) -> None:
    lake, out = demo
    for dataset in ("movies", "series"):
        partition = lake / f"raw/local/csv/{dataset}/year=2024/month=03/day=01"
        assert (partition / f"{dataset}.csv").read_bytes() == (
            ROOT / "data" / "sample" / f"{dataset}.csv"
        ).read_bytes()
        assert (partition / "_SUCCESS").exists() and (partition / "_manifest.json").exists()
        assert str(partition / f"{dataset}.csv") in out
    assert f"Lake:      {lake}" in out


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
