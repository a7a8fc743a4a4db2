"""Session fixtures of the dashboard's browser tests: a dbt-built refined file and Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The fixture trusted lake of the dbt tests (tests/dbt/dbt_fixture_lake.py): the same small,
# known data, so the browser test can name the movies, years and genres it must see.
DBT_TESTS = Path(__file__).resolve().parents[1] / "dbt"
if str(DBT_TESTS) not in sys.path:
    sys.path.append(str(DBT_TESTS))


@pytest.fixture(scope="session")
def dashboard_refined_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The refined DuckDB file `dbt run` builds (real dbt, real DuckDB) over the fixture lake."""
    from dbt_fixture_lake import build_trusted_lake, dbt_env, run_dbt

    root = tmp_path_factory.mktemp("dashboard_lake")
    lake = root / "lake"
    build_trusted_lake(lake)
    run_dbt(["run"], dbt_env(lake), root / "target")
    return lake / "refined" / "movie_lake.duckdb"


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium and chromedriver, installed with apt-get once when missing."""
    from headless_browser import ensure_chromium

    found = ensure_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    return found
