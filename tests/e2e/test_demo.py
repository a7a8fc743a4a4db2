"""``make demo``'s script, end to end, into a fresh lake folder (what a new user sees)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
