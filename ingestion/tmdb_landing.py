"""The TMDB landing stage: one genre's complete ``/discover/movie`` snapshot, the genre list,
and the details of movies not yet in raw, as verbatim JSON lines (docs/lake-contract.md).

``extract`` runs the three datasets in turn: the genre list here, the discover snapshot by
``ingestion.tmdb_discover``, the details by ``ingestion.tmdb_details``. All requests go through
one :class:`~ingestion.tmdb_client.TMDbClient` and one token bucket, from the worker threads of
``ingestion.tmdb_pool``; this module's main thread alone writes to the lake. Each dataset's
partition is committed on its own by ``ingestion.tmdb_raw`` (data files, ``_manifest.json``,
``_SUCCESS``): a complete partition is skipped by a rerun, an incomplete one is cleared and
redone. Before it starts, a run takes the lock of every dataset partition of the day it will
write (``Lake.lock``) and keeps each until that dataset is committed: a second run of the same
day finds them held and stops with :class:`~ingestion.lake.LakeBusyError` (or waits, ``wait``
seconds), never writing beside the first. ``add_arguments`` and ``run`` are the ``tmdb``
command of the CLI.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from ingestion.exit_codes import ExitCode
from ingestion.lake import (
    Lake,
    LakeLock,
    describe_holder,
    new_run_id,
    open_lake,
    remove_stale_lock,
)
from ingestion.rate_limit import TokenBucket
from ingestion.settings import Settings
from ingestion.tmdb_client import (
    DEFAULT_POOL_SIZE,
    ApiResponse,
    RetryPolicy,
    TMDbAuthError,
    TMDbClient,
    TMDbError,
    TMDbNotFoundError,
)
from ingestion.tmdb_details import DetailsFetch, ids_to_fetch
from ingestion.tmdb_discover import DiscoverSnapshot
from ingestion.tmdb_pool import Progress, ProgressBar, RequestPool, Task
from ingestion.tmdb_raw import (
    DEFAULT_MAX_FILE_BYTES,
    PartitionWriter,
    discover_ids,
    known_detail_ids,
    partition_prefix,
)

log = logging.getLogger(__name__)

DEFAULT_WORKERS = DEFAULT_POOL_SIZE
FALLBACK_LANGUAGE = "en-US"
DATASETS = ("genres", "discover", "movie_details")  # in the order a run writes them

NO_KEY_MESSAGE = (
    "no TMDB API key configured: set TMDB_API_KEY to the key, or TMDB_API_KEY_FILE to a file "
    "holding it (or pass --tmdb-api-key-file). Get a key at "
    "https://www.themoviedb.org/settings/api."
)


def _iso_now() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# -- results --------------------------------------------------------------------------------
@dataclass
class DatasetResult:
    status: str  # "written" or "already_complete"
    records: int = 0
    files: int = 0
    requests: int = 0
    retries: int = 0


@dataclass
class ExtractStats:
    run_id: str
    run_date: str
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    duration_seconds: float = 0.0
    movies: int = 0
    details_fetched: int = 0
    details_known: int = 0
    skipped_ids: list[int] = field(default_factory=list)
    remainder_unreached: int = 0
    datasets: dict[str, DatasetResult] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_seconds if self.duration_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_date": self.run_date,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "duration_seconds": round(self.duration_seconds, 3),
            "requests_per_second": round(self.requests_per_second, 2),
            "movies": self.movies,
            "details_fetched": self.details_fetched,
            "details_known": self.details_known,
            "skipped_ids": self.skipped_ids,
            "remainder_unreached": self.remainder_unreached,
            "datasets": {name: vars(result) for name, result in self.datasets.items()},
        }


# -- the extraction -------------------------------------------------------------------------
class _Run:
    def __init__(
        self,
        settings: Settings,
        lake: Lake,
        client: TMDbClient,
        pool: RequestPool,
        progress: Progress,
        max_file_bytes: int,
    ) -> None:
        self.settings = settings
        self.lake = lake
        self.client = client
        self.pool = pool
        self.progress = progress
        self.max_file_bytes = max_file_bytes
        self.run_id = new_run_id(dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
        self.stats = ExtractStats(self.run_id, settings.run_date.isoformat())
        self.locks: dict[str, LakeLock] = {}

    def _writer(self, dataset: str) -> PartitionWriter:
        return PartitionWriter(
            self.lake, dataset, self.settings.run_date, self.run_id, self.max_file_bytes
        )

    def lock(self, wait: float) -> None:
        """Lock the partition of every dataset not yet complete, in a fixed order, so of two
        runs of one day the first to start takes them all and the other stops (or waits)."""
        for dataset in DATASETS:
            prefix = partition_prefix(dataset, self.settings.run_date)
            if self.lake.exists(prefix + "_SUCCESS"):
                continue
            lock = self.lake.lock(prefix, self.run_id, wait)
            self.locks[dataset] = lock
            if lock.took_over:
                log.info("took over the lock of %s from %s, which is no longer running",
                         prefix, describe_holder(lock.took_over))  # fmt: skip

    def release(self, dataset: str | None = None) -> None:
        """Release the lock of ``dataset`` (every lock still held when None)."""
        for name in [dataset] if dataset else list(self.locks):
            lock = self.locks.pop(name, None)
            if lock is not None:
                lock.release()

    def _begin(self, dataset: str) -> PartitionWriter | None:
        writer = self._writer(dataset)
        if writer.is_complete():
            log.info("%s is complete already (has _SUCCESS): skipped", writer.prefix)
            self.release(dataset)  # completed by a run this one waited for
            stale = remove_stale_lock(self.lake, writer.prefix, self.run_id)
            if stale:
                log.info("removed the lock of %s left by %s, which is no longer running",
                         writer.prefix, describe_holder(stale))  # fmt: skip
            self.stats.datasets[dataset] = DatasetResult("already_complete")
            return None
        writer.clear_leftovers()
        return writer

    def _commit(
        self,
        writer: PartitionWriter,
        started_at: str,
        t0: float,
        before: dict[str, int],
        **extra: Any,
    ) -> None:
        after = self.client.stats.snapshot()
        lock = self.locks.get(writer.dataset)
        manifest = writer.commit(
            {
                "started_at": started_at,
                "finished_at": _iso_now(),
                "duration_seconds": round(time.monotonic() - t0, 3),
                "run_date": self.settings.run_date.isoformat(),
                "genre_id": self.settings.tmdb_genre_id,
                "language": self.settings.tmdb_language,
                "requests": after["requests"] - before["requests"],
                "retries": after["retries"] - before["retries"],
                "skipped_ids": extra.pop("skipped_ids", []),
                "windows": extra.pop("windows", []),
                **extra,
            },
            check=lock.check if lock is not None else lambda: None,
        )
        self.release(writer.dataset)
        self.stats.datasets[writer.dataset] = DatasetResult(
            "written",
            records=manifest["records"],
            files=len(manifest["files"]),
            requests=manifest["requests"],
            retries=manifest["retries"],
        )
        log.info(
            "committed %s: %d records in %d file(s), %d requests, %d retries",
            writer.prefix,
            manifest["records"],
            len(manifest["files"]),
            manifest["requests"],
            manifest["retries"],
        )

    def genres(self) -> None:
        writer = self._begin("genres")
        if writer is None:
            return
        self.progress.phase("genres")
        started_at, t0, before = _iso_now(), time.monotonic(), self.client.stats.snapshot()
        languages = [self.settings.tmdb_language]
        if FALLBACK_LANGUAGE not in languages:
            languages.append(FALLBACK_LANGUAGE)
        self.progress.expect(len(languages))

        def handle(_task: Task, result: ApiResponse | TMDbNotFoundError) -> list[Task]:
            self.progress.advance()
            if isinstance(result, TMDbNotFoundError):
                raise TMDbError(f"the genre list answered 404: {result}")
            writer.write(result.raw_record())
            return []

        self.pool.run(
            [Task("genres", lambda lang=lang: self.client.genre_list(lang)) for lang in languages],
            handle,
        )
        self._commit(writer, started_at, t0, before, languages=languages)

    def discover(self, max_pages: int | None) -> set[int]:
        writer = self._begin("discover")
        if writer is None:
            return discover_ids(self.lake, partition_prefix("discover", self.settings.run_date))
        self.progress.phase("discover")
        started_at, t0, before = _iso_now(), time.monotonic(), self.client.stats.snapshot()
        snapshot = DiscoverSnapshot(
            self.client, writer, self.settings.tmdb_genre_id, max_pages, self.progress
        )
        snapshot.fetch(self.pool, self.settings.run_date)
        self.stats.remainder_unreached = snapshot.unreached
        ids = snapshot.ids
        self._commit(
            writer,
            started_at,
            t0,
            before,
            windows=snapshot.windows(),
            splits=snapshot.splits,
            movies=len(ids),
            capped=snapshot.capped,
            max_pages=max_pages,
        )
        return ids

    def details(self, ids: set[int], max_movies: int | None, refresh: bool) -> None:
        writer = self._begin("movie_details")
        if writer is None:
            return
        self.progress.phase("details")
        started_at, t0, before = _iso_now(), time.monotonic(), self.client.stats.snapshot()
        known = set() if refresh else known_detail_ids(self.lake)
        todo = ids_to_fetch(ids, known, max_movies)
        self.stats.details_known = len(ids & known)
        log.info(
            "details: %d movie(s) to fetch, %d already in raw%s",
            len(todo),
            len(ids & known),
            " (refresh requested)" if refresh else "",
        )
        fetch = DetailsFetch(self.client, writer, self.progress)
        self.pool.run(fetch.tasks(todo), fetch.handle)
        self.stats.details_fetched = len(fetch.fetched)
        self.stats.skipped_ids = sorted(fetch.skipped)
        self._commit(
            writer,
            started_at,
            t0,
            before,
            skipped_ids=sorted(fetch.skipped),
            movie_ids=sorted(fetch.fetched),
            refresh_details=refresh,
            max_movies=max_movies,
        )


def extract(
    settings: Settings,
    lake: Lake,
    *,
    session: requests.Session | None = None,
    workers: int = DEFAULT_WORKERS,
    max_pages: int | None = None,
    max_movies: int | None = None,
    refresh_details: bool = False,
    retry: RetryPolicy | None = None,
    burst: float = 1.0,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    deadline: float | None = None,
    progress: ProgressBar | None = None,
    wait: float = 0.0,
) -> ExtractStats:
    """Extract the genre's discover snapshot, the genre list and new details into raw.

    Another run of the same day holding a dataset's partition is waited for up to ``wait``
    seconds, then :class:`~ingestion.lake.LakeBusyError` is raised before any request.

    ``session`` (a ``requests.Session``) is used as is (size its pool for ``workers``);
    without one a suitable session is made and closed. ``deadline`` is a ``time.monotonic()``
    value after which the run stops without committing the dataset it is on. Returns the
    counts of the run (``requests``, ``duration_seconds``, ...).
    """
    if settings.tmdb_api_key is None:
        raise TMDbAuthError(NO_KEY_MESSAGE)
    t0 = time.monotonic()
    bucket = TokenBucket(settings.tmdb_rate_limit, capacity=burst)
    client = TMDbClient(
        api_key=settings.tmdb_api_key,
        base_url=settings.tmdb_base_url,
        language=settings.tmdb_language,
        bucket=bucket,
        session=session,
        retry=retry,
        pool_size=workers,
    )
    pool = RequestPool(client, workers, deadline)
    run = _Run(settings, lake, client, pool, Progress(progress), max_file_bytes)
    log.info(
        "TMDB extraction %s: genre %d, language %s, %s, %.0f requests/s, %d workers, into %s",
        run.run_id,
        settings.tmdb_genre_id,
        settings.tmdb_language,
        settings.run_date,
        settings.tmdb_rate_limit,
        workers,
        lake.location,
    )
    try:
        run.lock(wait)
        run.genres()
        ids = run.discover(max_pages)
        run.stats.movies = len(ids)
        run.details(ids, max_movies, refresh_details)
    finally:
        run.release()
        pool.shutdown()
        if session is None:
            client.close()
        counts = client.stats.snapshot()
        run.stats.requests = counts["requests"]
        run.stats.retries = counts["retries"]
        run.stats.rate_limited = counts["rate_limited"]
        run.stats.duration_seconds = time.monotonic() - t0
    return run.stats


# -- the command ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pages", type=int, default=None, help="fetch at most N discover pages (small runs)"
    )
    parser.add_argument(
        "--max-movies", type=int, default=None, help="fetch details of at most N movies"
    )
    parser.add_argument(
        "--refresh-details",
        action="store_true",
        help="fetch details again even for movies whose details are already in raw",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="concurrent requests (one rate limit)"
    )
    defaults = RetryPolicy()
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=defaults.max_attempts,
        help="attempts per request on 429, 5xx, timeouts and broken bodies",
    )
    parser.add_argument(
        "--backoff-base",
        type=float,
        default=defaults.backoff_base,
        help="seconds; retry n waits about base * 2**n (with jitter, capped)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=defaults.read_timeout,
        help="seconds to wait for a response before retrying",
    )
    parser.add_argument(
        "--max-file-bytes",
        type=int,
        default=DEFAULT_MAX_FILE_BYTES,
        help="start a new data file when one reaches this size (bytes)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long to wait for another run of the same day to finish before giving up "
        f"with exit code {int(ExitCode.LOCKED)} (default 0: give up at once)",
    )


HELP = "extract a TMDB genre (discover, genres, new movie details) into raw"


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The ``tmdb`` command: ``extract`` with a progress bar; prints the run's counts."""
    if settings.tmdb_api_key is None:
        log.error("%s", NO_KEY_MESSAGE)
        return ExitCode.SETTINGS
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    lake = open_lake(settings)
    # The bar shows on a terminal only (disable=None); log lines print above it.
    with (
        logging_redirect_tqdm(),
        tqdm(total=0, unit="req", desc="tmdb", dynamic_ncols=True, disable=None) as bar,
    ):
        try:
            stats = extract(
                settings,
                lake,
                workers=args.workers,
                max_pages=args.max_pages,
                max_movies=args.max_movies,
                refresh_details=args.refresh_details,
                retry=dataclasses.replace(
                    RetryPolicy(),
                    max_attempts=args.max_attempts,
                    backoff_base=args.backoff_base,
                    read_timeout=args.read_timeout,
                ),
                max_file_bytes=args.max_file_bytes,
                progress=bar,
                wait=args.wait,
            )
        except TMDbError as exc:
            bar.close()
            log.error("TMDB extraction failed: %s", exc)
            return ExitCode.STAGE_FAILED
    print(json.dumps(stats.as_dict(), indent=2))
    return ExitCode.OK
