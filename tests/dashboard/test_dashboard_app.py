"""The Streamlit app run in-process (streamlit.testing), and its launcher: no server, no browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_refined import write_tiny_refined

from dashboard.__main__ import main, streamlit_command

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def _run_app(monkeypatch: pytest.MonkeyPatch, duckdb_file: Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DASHBOARD_DUCKDB", str(duckdb_file))
    return AppTest.from_file(str(APP), default_timeout=60).run()


def test_a_missing_refined_file_gets_a_message_saying_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "lake" / "refined" / "movie_lake.duckdb"
    app = _run_app(monkeypatch, missing)
    assert not app.exception
    assert [error.value for error in app.error] == [
        f"No refined DuckDB file at {missing}: run `make demo`, or `make ingest` then "
        "`dbt run`, first."
    ]


def test_the_first_page_shows_the_files_headline_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _run_app(monkeypatch, write_tiny_refined(tmp_path / "refined.duckdb"))
    assert not app.exception and not app.error
    assert {metric.label: metric.value for metric in app.metric} == {
        "Movies": "4",
        "On IMDb": "3",
        "On TMDB": "3",
        "Snapshot dates": "2",
        "Latest snapshot": "2024-03-02",
    }


def test_the_server_listens_on_loopback_headless_and_sends_no_usage_stats() -> None:
    command = streamlit_command(8599)
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert command[1:5] == ["-m", "streamlit", "run", str(APP)]
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.port"] == "8599"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"


def test_the_launcher_refuses_an_s3_lake_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("DASHBOARD_DUCKDB", raising=False)
    monkeypatch.setenv("LAKE_URI", "s3://bucket/lake")
    assert main(["--port", "8599"]) == 2
    assert "DASHBOARD_DUCKDB" in caplog.text


def test_without_chromium_or_apt_get_the_browser_tests_get_a_clear_skip_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from headless_browser import ensure_chromium

    monkeypatch.setenv("PATH", str(tmp_path))  # neither chromium nor apt-get on it
    assert ensure_chromium() == "Chromium is not installed and there is no apt-get to install it"
