"""The installed ``movie-lake`` command tells a bad setting from a bad command line by its
exit code (README.md, "Exit codes")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ingestion.exit_codes import ExitCode

SCRIPT = Path(sys.executable).parent / "movie-lake"  # installed by make venv (pyproject)


def _movie_lake(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: run make venv (pip install -e .)"
    env = {**os.environ, "LAKE_URI": str(tmp_path / "lake")}
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )  # fmt: skip


def test_a_bad_setting_exits_with_the_settings_code(tmp_path: Path) -> None:
    result = _movie_lake("settings", "--run-date", "2024-13-40", tmp_path=tmp_path)
    assert result.returncode == ExitCode.SETTINGS == 3, result.stderr
    assert "RUN_DATE '2024-13-40' is not a date" in result.stderr


def test_a_bad_command_line_exits_with_the_usage_code(tmp_path: Path) -> None:
    result = _movie_lake("csv", "--dataset", "films", tmp_path=tmp_path)
    assert result.returncode == ExitCode.USAGE == 2, result.stderr
    assert "invalid choice: 'films'" in result.stderr
    assert result.stderr.startswith("usage: movie-lake csv")
