"""``python -m ingestion csv`` end to end on the committed sample, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(
    *args: str, env: dict[str, str], prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ingestion", "csv", "--no-progress", *args],
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


def test_cli_names_a_directory_given_as_the_csv(tmp_path: Path) -> None:
    env = {"LAKE_URI": str(tmp_path / "lake"), "MOVIES_CSV": str(tmp_path)}
    result = _run("--dataset", "movies", env=env)
    assert result.returncode == 1
    assert f"movies file {tmp_path} is a directory, not a file: set MOVIES_CSV" in result.stderr
    assert "does not exist" not in result.stderr


def test_cli_names_a_file_it_may_not_read(tmp_path: Path) -> None:
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop DAC overrides")
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
    unreadable = tmp_path / "movies.csv"
    unreadable.write_bytes((ROOT / "data" / "sample" / "movies.csv").read_bytes())
    unreadable.chmod(0o000)
    env = {"LAKE_URI": str(tmp_path / "lake"), "MOVIES_CSV": str(unreadable)}
    result = _run("--dataset", "movies", env=env, prefix=prefix)
    assert result.returncode == 1, result.stderr
    assert f"movies file {unreadable} cannot be read: permission denied" in result.stderr
    assert not (tmp_path / "lake").exists()
