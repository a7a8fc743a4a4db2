"""Session fixture: the fixture trusted lake (dbt_fixture_lake.py), built once with `dbt build`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from dbt_fixture_lake import BUILD_RESULTS, DbtRun, build_trusted_lake, dbt_env


@pytest.fixture(scope="session")
def dbt_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbtRun]:
    """The fixture lake, built once with `dbt build` (every model, test and unit test)."""
    root = tmp_path_factory.mktemp("dbt_lake")
    lake = root / "lake"
    build_trusted_lake(lake)
    run = DbtRun(lake=lake, target_path=root / "target", env=dbt_env(lake))
    run.dbt("build")
    # Later commands (docs generate, source freshness) rewrite run_results.json: keep the build's.
    shutil.copyfile(run.target_path / "run_results.json", run.target_path / BUILD_RESULTS)
    yield run
