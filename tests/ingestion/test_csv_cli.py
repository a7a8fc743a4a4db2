"""``python -m ingestion csv`` end to end on the committed sample, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestion", "csv", "--no-progress", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_lands_the_sample_and_says_where(tmp_path: Path) -> None:
    env = {"LAKE_URI": str(tmp_path / "lake"), "RUN_DATE": "2024-03-01"}
    first = _run(env=env)
    assert first.returncode == 0, first.stderr
    results = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["status"] for r in results] == ["written", "written"]
    for r in results:
        assert Path(r["uri"]).is_file() and "year=2024/month=03/day=01" in r["uri"]
    second = _run(env=env)
    assert [json.loads(x)["status"] for x in second.stdout.splitlines()] == ["unchanged"] * 2


def test_cli_refuses_a_bad_header_before_landing_anything(tmp_path: Path) -> None:
    bad = tmp_path / "series.csv"
    bad.write_text("id;tituloPincipal\n")
    env = {"LAKE_URI": str(tmp_path / "lake"), "SERIES_CSV": str(bad)}
    result = _run(env=env)
    assert result.returncode == 1  # a stage failure (README: exit codes)
    assert "uses ';' as separator" in result.stderr
    assert not (tmp_path / "lake").exists()  # movies was not landed either
