"""Stage 2, TMDB extraction, against the fake TMDB server on 127.0.0.1.

The catalogue holds the configured number of horror movies (20,000 at full size, linked to
the full-size movies CSV's horror titles). Once per run, the whole catalogue is extracted into
the prepared lake with no latency and no limit, for the trusted job and dbt. Then each
repetition extracts a fixed slice (discover pages, then details) into a fresh lake with the
server answering after ``tmdb_latency_ms`` and refusing beyond ``tmdb_rate_limit`` requests/s
(429), and counts requests/s, 429s, and records lost.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import baselines
from bench.config import Config
from bench.measure import Sample, Samples, repeat
from bench.report import Figure, Stage, Target

log = logging.getLogger(__name__)

API_KEY = "bench-key"  # the fake server's key; not a secret
TARGET_FRACTION = 0.90


def available() -> bool:
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("ingestion.tmdb_landing", "fake_tmdb.server")
    )


def missing_reason() -> str:
    return "ingestion/tmdb_landing.py or fake_tmdb/ is not in the repository yet"


def _settings(cfg: Config, lake: Path, base_url: str, rate: float) -> Any:
    from ingestion.settings import load_settings

    return load_settings(
        {},
        lake_uri=str(lake),
        run_date=cfg.run_date.isoformat(),
        tmdb_base_url=base_url,
        tmdb_api_key=API_KEY,
        tmdb_rate_limit=rate,
    )


def catalogue(cfg: Config) -> Any:
    from fake_tmdb.catalogue import build_catalogue

    started = time.perf_counter()
    catalogue = build_catalogue(movies=cfg.tmdb_movies, imdb_csv=cfg.movies_csv)
    log.info("fake TMDB catalogue: %d movies (%d horror), built in %.1f s",
             len(catalogue.movies), len(catalogue.ids_with_genre()),
             time.perf_counter() - started)  # fmt: skip
    return catalogue


def prepare_raw(cfg: Config, catalogue: Any) -> None:
    """Extract the whole catalogue into the prepared lake once (no latency, no limit)."""
    from fake_tmdb.server import FakeTMDb
    from ingestion.lake import LocalLake
    from ingestion.tmdb_landing import extract
    from ingestion.tmdb_raw import partition_prefix

    lake = LocalLake(cfg.lake_dir)
    if all(
        lake.exists(partition_prefix(d, cfg.run_date) + "_SUCCESS")
        for d in ("genres", "discover", "movie_details")
    ):
        log.info("reusing the TMDB raw data in %s", cfg.lake_dir)
        return
    log.info("extracting the whole fake catalogue into %s (once)", cfg.lake_dir)
    with FakeTMDb(catalogue, api_key=API_KEY) as server:
        stats = extract(_settings(cfg, cfg.lake_dir, server.base_url, 100_000.0), lake)
    log.info("prepared TMDB raw: %d requests in %.0f s, %d movies, %d details",
             stats.requests, stats.duration_seconds, stats.movies,
             stats.details_fetched)  # fmt: skip


def _landed_details(lake_dir: Path, cfg: Config) -> int:
    from ingestion.tmdb_raw import partition_prefix

    manifest = lake_dir / partition_prefix("movie_details", cfg.run_date) / "_manifest.json"
    return int(json.loads(manifest.read_text())["records"])


def measure(cfg: Config, catalogue: Any) -> Stage:
    """Extract a slice of ``catalogue`` per repetition, at the limit, at the default, and
    one request at a time."""
    from fake_tmdb.server import FakeTMDb
    from ingestion.lake import LocalLake
    from ingestion.tmdb_landing import extract

    limit = cfg.tmdb_rate_limit
    pages = max(2, cfg.tmdb_requests // 20)
    movies = cfg.tmdb_requests - pages
    scratch = cfg.work_dir / "tmdb"
    checks: Counter[str] = Counter()

    with FakeTMDb(
        catalogue, api_key=API_KEY, latency_ms=cfg.tmdb_latency_ms, rate_limit=limit
    ) as server:

        def extraction(client_rate: float, name: str) -> Samples:
            def fresh(_rep: int) -> None:
                shutil.rmtree(scratch, ignore_errors=True)
                time.sleep(1.0)  # let the server's bucket refill: every repetition starts alike
                server.clear_log()

            def once(rep: int) -> Sample:
                settings = _settings(cfg, scratch, server.base_url, client_rate)
                stats = extract(settings, LocalLake(scratch), max_pages=pages, max_movies=movies)
                statuses = Counter(r.status for r in server.log)
                expected = min(movies, stats.movies)
                landed = _landed_details(scratch, cfg)
                checks[f"{name}: HTTP 429 answers"] += statuses.get(429, 0)
                checks[f"{name}: records lost"] += expected - landed
                checks[f"{name}: requests"] += stats.requests
                log.info("TMDB %s #%d: %d requests in %.2f s = %.1f/s, %d x 429, %d/%d details",
                         name, rep + 1, stats.requests, stats.duration_seconds,
                         stats.requests_per_second, statuses.get(429, 0), landed,
                         expected)  # fmt: skip
                return Sample(stats.duration_seconds / stats.requests)  # seconds per request

            return repeat(cfg.short_reps, once, setup=fresh)

        at_limit = extraction(limit, "client at the limit")
        default = extraction(_default_rate(), "client at its default")

        def sequential(_rep: int) -> Sample:
            time.sleep(1.0)
            result = baselines.sequential_tmdb(
                server.base_url, API_KEY, max_requests=cfg.tmdb_sequential_requests
            )
            checks["sequential: errors"] += result.errors
            return Sample(result.seconds / result.requests)

        seq = repeat(cfg.short_reps, sequential)
    shutil.rmtree(scratch, ignore_errors=True)

    def rates(samples: Samples) -> list[float]:
        return [round(1 / s.seconds, 2) for s in samples.runs]

    # the median of per-request times, inverted, is the median rate
    rate, default_rate, seq_rate = (1 / s.seconds for s in (at_limit, default, seq))
    stage = Stage(
        "tmdb",
        "2. TMDB extraction (fake TMDB, "
        f"{cfg.tmdb_latency_ms:.0f} ms latency, {limit:.0f} requests/s limit)",
        note=f"Each repetition: the genre list, {pages} discover pages and the details of up to "
        f"{movies} movies into a fresh lake, through ingestion.tmdb_landing.extract (24 "
        "workers, one token bucket). Requests/s = requests ÷ the extraction's wall time. "
        f"'Client at the limit' sets TMDB_RATE_LIMIT={limit:.0f} (the server's limit); "
        f"'client at its default' keeps TMDB_RATE_LIMIT={_default_rate():.0f}, a safety "
        "margin below the published limit. Baseline: the original project's loop, one "
        f"requests.get at a time ({cfg.tmdb_sequential_requests} requests a repetition).",
        checks=dict(checks),
    )
    stage.figures += [
        Figure("tmdb_requests_per_s", "requests/s, client at the limit", "req/s", rate,
               "higher", rates(at_limit))
        .beside("one request at a time (original)", seq_rate, rates(seq)),
        Figure("tmdb_limit_fraction", "share of the limit reached, client at the limit", "%",
               100 * rate / limit, "higher")
        .beside("one request at a time (original)", 100 * seq_rate / limit),
        Figure("tmdb_default_requests_per_s",
               f"requests/s, client at its default ({_default_rate():.0f}/s)", "req/s",
               default_rate, "higher", rates(default))
        .beside("one request at a time (original)", seq_rate, rates(seq)),
    ]  # fmt: skip
    return stage


def _default_rate() -> float:
    from ingestion.settings import Settings

    return float(Settings.tmdb_rate_limit)


def targets(stage: Stage) -> list[Target]:
    fraction = next(f for f in stage.figures if f.id == "tmdb_limit_fraction")
    lost = sum(v for k, v in stage.checks.items() if k.endswith("records lost"))
    return [
        Target("tmdb_limit_fraction", "TMDB extraction: share of the 40/s limit reached",
               f"≥ {TARGET_FRACTION:.0%}", fraction.value, "%", 100 * TARGET_FRACTION, "higher"),
        Target("tmdb_records_lost", "TMDB extraction: records lost to a 429", "0",
               float(lost), "records", 0.0, "lower"),
    ]  # fmt: skip
