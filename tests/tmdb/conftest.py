"""Fixtures of the TMDB tests: the fake TMDB server on 127.0.0.1, a lake in a temp folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# fake_tmdb is a top-level package beside ingestion/; `make test` puts the repo root on
# PYTHONPATH, this lets a bare `pytest tests/tmdb` find it too.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tmdb_helpers import API_KEY, SAMPLE_CSV  # noqa: E402

from fake_tmdb import Catalogue, FakeTMDb, build_catalogue  # noqa: E402
from ingestion.lake import LocalLake  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the caller's TMDB settings nor tmdbv3api's os.environ state leak into a test."""
    for var in (
        "TMDB_API_KEY",
        "TMDB_API_KEY_FILE",
        "TMDB_BASE_URL",
        "TMDB_LANGUAGE",
        "TMDB_GENRE_ID",
        "TMDB_RATE_LIMIT",
        "TMDB_CACHE_ENABLED",
        "LAKE_URI",
        "RUN_DATE",
        "S3_ENDPOINT_URL",
        "TMDB_API_KEY_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def small_catalogue() -> Catalogue:
    return build_catalogue(movies=300, seed=7, imdb_csv=SAMPLE_CSV if SAMPLE_CSV.exists() else None)


@pytest.fixture()
def fake_tmdb(small_catalogue: Catalogue) -> Iterator[FakeTMDb]:
    with FakeTMDb(small_catalogue, api_key=API_KEY) as server:
        yield server


@pytest.fixture()
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")
