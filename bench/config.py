"""What one benchmark run measures: sizes, repetitions, where inputs and outputs go."""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DATE = dt.date(2024, 1, 1)  # the raw partition every bench lake uses


@dataclass(frozen=True)
class Config:
    mode: str  # "full" or "smoke"
    data_dir: Path  # cached inputs (generated CSVs, the prepared lake)
    work_dir: Path  # scratch: lakes written by repetitions, logs
    out_dir: Path  # latest.json, latest.md
    movie_rows: int
    series_rows: int
    tmdb_movies: int  # horror movies in the fake catalogue
    short_reps: int  # repetitions of the quick measurements (CSV landing, TMDB)
    long_reps: int  # repetitions of the process-level ones (Spark, DuckDB, dbt, demo)
    tmdb_latency_ms: float = 100.0
    tmdb_rate_limit: float = 40.0  # the server's limit, as TMDB publishes it
    tmdb_requests: int = 400  # requests per repetition of the extraction
    tmdb_sequential_requests: int = 60  # per repetition of the one-at-a-time baseline
    run_date: dt.date = RUN_DATE
    history_days: tuple[int, ...] = (30, 365)  # the days D of the history stage (bench/history.py)

    @property
    def python(self) -> str:
        return sys.executable

    @property
    def tag(self) -> str:
        return f"imdb-{self.movie_rows}-{self.series_rows}"

    @property
    def csv_dir(self) -> Path:
        return self.data_dir / self.tag

    @property
    def movies_csv(self) -> Path:
        return self.csv_dir / "movies.csv"

    @property
    def series_csv(self) -> Path:
        return self.csv_dir / "series.csv"

    @property
    def lake_dir(self) -> Path:
        """The prepared lake: raw CSV and TMDB landed once; trusted written by the job."""
        return self.csv_dir / f"lake-tmdb{self.tmdb_movies}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every measured command: offline, quiet, local Spark."""
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(ROOT),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            SPARK_LOCAL_IP="127.0.0.1",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env


def full_config(data_dir: Path, out_dir: Path, reps: int | None = None) -> Config:
    return Config(
        mode="full",
        data_dir=data_dir,
        work_dir=data_dir / "work",
        out_dir=out_dir,
        movie_rows=1_100_000,
        series_rows=440_000,
        tmdb_movies=20_000,
        short_reps=reps or 5,
        long_reps=reps or 3,
    )


def smoke_config(work: Path, out_dir: Path | None = None) -> Config:
    """Tiny sizes and single repetitions: proves every stage still runs, not how fast."""
    return Config(
        mode="smoke",
        data_dir=work / "data",
        work_dir=work / "work",
        out_dir=out_dir or work / "results",
        movie_rows=3000,
        series_rows=1200,
        tmdb_movies=120,
        short_reps=1,
        long_reps=1,
        tmdb_latency_ms=20.0,
        tmdb_requests=60,
        tmdb_sequential_requests=15,
        history_days=(4, 6),
    )
