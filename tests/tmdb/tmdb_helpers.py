"""Helpers of the TMDB tests (constants, settings, reading raw back by the contract)."""

from __future__ import annotations

import json
from pathlib import Path

from ingestion.lake import Lake
from ingestion.settings import PACKAGE_ROOT, Settings, load_settings
from ingestion.tmdb_client import RetryPolicy

API_KEY = "tk-5ecret-0f-the-test-9b7d2e41"
RUN_DATE = "2024-05-01"
SAMPLE_CSV = PACKAGE_ROOT / "data" / "sample" / "movies.csv"

# Small delays so retries take milliseconds; the read timeout is what a "hang" outlasts.
FAST_RETRY = RetryPolicy(
    max_attempts=6,
    backoff_base=0.01,
    backoff_cap=0.05,
    retry_after_cap=2.0,
    connect_timeout=1.0,
    read_timeout=0.5,
)


def make_settings(base_url: str, lake_dir: Path | str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "tmdb_base_url": base_url,
        "tmdb_api_key": API_KEY,
        "tmdb_rate_limit": 5000,
        "lake_uri": str(lake_dir),
        "run_date": RUN_DATE,
    }
    values.update(overrides)
    return load_settings({}, **values)


def lake_records(lake: Lake, dataset: str, day: str = RUN_DATE) -> list[dict]:
    """Every record of the dataset's complete partition of ``day``, as the contract says to read."""
    y, m, d = day.split("-")
    prefix = f"raw/tmdb/json/{dataset}/year={y}/month={m}/day={d}/"
    assert lake.exists(prefix + "_SUCCESS"), f"{prefix} is not complete"
    manifest = json.loads(lake.get_bytes(prefix + "_manifest.json"))
    out = []
    for entry in manifest["files"]:
        out.extend(json.loads(line) for line in lake.get_bytes(entry["key"]).splitlines())
    return out


def manifest_of(lake: Lake, dataset: str, day: str = RUN_DATE) -> dict:
    y, m, d = day.split("-")
    return json.loads(
        lake.get_bytes(f"raw/tmdb/json/{dataset}/year={y}/month={m}/day={d}/_manifest.json")
    )


def discover_ids(records: list[dict]) -> list[int]:
    return [movie["id"] for r in records for movie in r["response"]["results"]]
