"""Land TMDB data in raw: one genre's complete ``/discover/movie`` snapshot, the genre list,
and the details of movies not yet in raw, as verbatim JSON lines (docs/lake-contract.md).

``/discover/movie`` stops at page 500 (10,000 results per query), so the genre is read in
``primary_release_date`` windows sorted ascending: a window whose ``total_results`` exceeds
10,000 is bisected until every window fits. Movies without a release date match no window; a
"remainder" query without date filters (most popular first) picks up what the windows missed,
as far as its own 500 pages reach. See docs/tmdb.md.

All requests go through one :class:`~ingestion.tmdb_client.TMDbClient` and one token bucket,
from a pool of worker threads; this module's main thread alone writes to the lake. Each
dataset's partition is committed on its own (data files, ``_manifest.json``, ``_SUCCESS``):
a complete partition is skipped by a rerun, an incomplete one is cleared and redone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from ingestion.cli import command
from ingestion.lake import Lake, new_run_id, open_lake
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

log = logging.getLogger(__name__)

RAW_PREFIX = "raw/tmdb/json"
PAGE_SIZE = 20
MAX_PAGE = 500
MAX_RESULTS = PAGE_SIZE * MAX_PAGE  # what one discover query can reach
DATE_FLOOR = dt.date(1800, 1, 1)  # before the first film
DEFAULT_WORKERS = DEFAULT_POOL_SIZE
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024
FALLBACK_LANGUAGE = "en-US"

NO_KEY_MESSAGE = (
    "no TMDB API key configured: set TMDB_API_KEY to the key, or TMDB_API_KEY_FILE to a file "
    "holding it (or pass --tmdb-api-key-file). Get a key at "
    "https://www.themoviedb.org/settings/api."
)


class TMDbDeadlineError(TMDbError):
    """The run would not finish before its deadline (a Lambda's remaining time)."""


def date_ceiling(run_date: dt.date) -> dt.date:
    """The last day the windows cover: announced films are dated years ahead."""
    return dt.date(run_date.year + 50, 12, 31)


def partition_prefix(dataset: str, run_date: dt.date) -> str:
    return (
        f"{RAW_PREFIX}/{dataset}/year={run_date.year:04d}/month={run_date.month:02d}/"
        f"day={run_date.day:02d}/"
    )


def _iso_now() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# -- progress -------------------------------------------------------------------------------
class ProgressBar(Protocol):
    """What is used of a tqdm bar."""

    total: Any

    def update(self, n: int = 1) -> Any: ...
    def refresh(self) -> Any: ...
    def set_description(self, desc: str | None = None, refresh: bool = True) -> Any: ...


class _Progress:
    def __init__(self, bar: ProgressBar | None) -> None:
        self.bar = bar

    def phase(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(name)

    def expect(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.total = (self.bar.total or 0) + n
            self.bar.refresh()

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)


# -- the lake side --------------------------------------------------------------------------
class PartitionWriter:
    """Writes one dataset's partition for one day by the commit protocol of the contract."""

    def __init__(
        self,
        lake: Lake,
        dataset: str,
        run_date: dt.date,
        run_id: str,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.lake = lake
        self.dataset = dataset
        self.prefix = partition_prefix(dataset, run_date)
        self.run_id = run_id
        self.max_file_bytes = max_file_bytes
        self.files: list[dict[str, Any]] = []
        self.records = 0
        self._buffer: list[bytes] = []
        self._buffered = 0

    @property
    def success_key(self) -> str:
        return self.prefix + "_SUCCESS"

    def is_complete(self) -> bool:
        return self.lake.exists(self.success_key)

    def clear_leftovers(self) -> int:
        """Delete what an interrupted run left in this (incomplete) partition."""
        keys = self.lake.list(self.prefix)
        for key in keys:
            self.lake.delete(key)
        if keys:
            log.info(
                "removed %d leftover object(s) of an unfinished run in %s", len(keys), self.prefix
            )
        return len(keys)

    def write(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        if self._buffer and self._buffered + len(data) > self.max_file_bytes:
            self._flush()
        self._buffer.append(data)
        self._buffered += len(data)
        self.records += 1

    def _flush(self) -> None:
        if not self._buffer:
            return
        key = f"{self.prefix}part-{self.run_id}-{len(self.files):05d}.jsonl"
        body = b"".join(self._buffer)
        self.lake.put_bytes(key, body)
        self.files.append({"key": key, "records": len(self._buffer), "bytes": len(body)})
        self._buffer = []
        self._buffered = 0

    def commit(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the last data file, then ``_manifest.json``, then ``_SUCCESS``."""
        self._flush()
        full = {
            "dataset": self.dataset,
            "run_id": self.run_id,
            **manifest,
            "files": self.files,
            "records": self.records,
        }
        body = json.dumps(full, ensure_ascii=False, indent=2).encode("utf-8")
        self.lake.put_bytes(self.prefix + "_manifest.json", body)
        self.lake.put_bytes(self.success_key, b"")
        return full


def _complete_partitions(lake: Lake, dataset: str) -> list[str]:
    """Prefixes (``.../day=DD/``) of the dataset's partitions that hold ``_SUCCESS``."""
    return [
        key[: -len("_SUCCESS")]
        for key in lake.list(f"{RAW_PREFIX}/{dataset}/")
        if key.endswith("/_SUCCESS")
    ]


def _manifest(lake: Lake, prefix: str) -> dict[str, Any]:
    return json.loads(lake.get_bytes(prefix + "_manifest.json"))


def _records(lake: Lake, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in manifest.get("files", []):
        for line in lake.get_bytes(entry["key"]).splitlines():
            if line.strip():
                yield json.loads(line)


def known_detail_ids(lake: Lake) -> set[int]:
    """Ids whose details are in a complete ``movie_details`` partition of any day."""
    ids: set[int] = set()
    for prefix in _complete_partitions(lake, "movie_details"):
        manifest = _manifest(lake, prefix)
        if "movie_ids" in manifest:
            ids.update(int(i) for i in manifest["movie_ids"])
        else:
            ids.update(int(r["response"]["id"]) for r in _records(lake, manifest))
    return ids


def _discover_ids_from(lake: Lake, prefix: str) -> set[int]:
    ids: set[int] = set()
    for record in _records(lake, _manifest(lake, prefix)):
        ids.update(int(movie["id"]) for movie in record["response"].get("results", []))
    return ids


# -- the worker pool ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    kind: str
    call: Callable[[], ApiResponse]
    window: Window | None = None
    page: int = 0
    movie_id: int = 0


Handler = Callable[[_Task, "ApiResponse | TMDbNotFoundError"], Iterable[_Task]]


class _Pool:
    """Runs request tasks on worker threads; results are handled here, one at a time.

    At most ``2 * workers`` tasks are in flight; the rest wait in a queue, so 60,000 detail
    requests do not become 60,000 futures. Any error but a 404 cancels the rest and is raised.
    """

    def __init__(self, client: TMDbClient, workers: int, deadline: float | None) -> None:
        self.client = client
        self.workers = workers
        self.deadline = deadline
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tmdb")

    def run(self, tasks: Iterable[_Task], handle: Handler) -> None:
        queue: deque[_Task] = deque(tasks)
        pending: dict[Future[ApiResponse], _Task] = {}
        limit = 2 * self.workers
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    task = queue.popleft()
                    pending[self.executor.submit(task.call)] = task
                timeout = None
                if self.deadline is not None:
                    timeout = max(0.0, self.deadline - time.monotonic())
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                if not done:
                    raise TMDbDeadlineError(
                        "the run reached its deadline before finishing; nothing of the "
                        "unfinished dataset was committed. Run it again (it resumes with the "
                        "datasets not yet complete), or run the backfill from the CLI."
                    )
                for future in done:
                    task = pending.pop(future)
                    try:
                        result: ApiResponse | TMDbNotFoundError = future.result()
                    except TMDbNotFoundError as exc:
                        result = exc
                    queue.extend(handle(task, result))
        except BaseException:
            self.client.cancel()
            for future in pending:
                future.cancel()
            wait(pending)
            raise

    def shutdown(self) -> None:
        self.client.cancel()
        self.executor.shutdown(wait=True, cancel_futures=True)


# -- discover -------------------------------------------------------------------------------
@dataclass
class Window:
    """An inclusive ``primary_release_date`` range; no dates at all for the remainder query."""

    gte: dt.date | None
    lte: dt.date | None
    total_results: int | None = None
    total_pages: int | None = None
    pages_fetched: int = 0
    truncated: bool = False

    @property
    def is_remainder(self) -> bool:
        return self.gte is None

    def params(self, genre_id: int, page: int) -> dict[str, Any]:
        params: dict[str, Any] = {"with_genres": str(genre_id), "include_adult": "false"}
        if self.is_remainder:
            params["sort_by"] = "popularity.desc"
        else:
            assert self.gte is not None and self.lte is not None
            params["sort_by"] = "primary_release_date.asc"
            params["primary_release_date.gte"] = self.gte.isoformat()
            params["primary_release_date.lte"] = self.lte.isoformat()
        params["page"] = page
        return params

    def split(self) -> tuple[Window, Window]:
        assert self.gte is not None and self.lte is not None
        middle = self.gte + (self.lte - self.gte) // 2
        return Window(self.gte, middle), Window(middle + dt.timedelta(days=1), self.lte)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gte": self.gte.isoformat() if self.gte else None,
            "lte": self.lte.isoformat() if self.lte else None,
            "sort_by": "popularity.desc" if self.is_remainder else "primary_release_date.asc",
            "total_results": self.total_results,
            "total_pages": self.total_pages,
            "pages_fetched": self.pages_fetched,
        }
        if self.truncated:
            out["truncated"] = True
        return out


class _Discover:
    """State of one discover snapshot while its pages come in."""

    def __init__(
        self,
        client: TMDbClient,
        writer: PartitionWriter,
        genre_id: int,
        max_pages: int | None,
        progress: _Progress,
    ) -> None:
        self.client = client
        self.writer = writer
        self.genre_id = genre_id
        self.max_pages = max_pages
        self.progress = progress
        self.pages_requested = 0
        self.capped = False
        self.splits = 0
        self.leaves: list[Window] = []
        self.window_ids: set[int] = set()
        self.remainder = Window(None, None)
        self.remainder_ids: set[int] = set()

    def task(self, window: Window, page: int) -> _Task | None:
        if self.max_pages is not None and self.pages_requested >= self.max_pages:
            self.capped = True
            return None
        self.pages_requested += 1
        params = window.params(self.genre_id, page)
        kind = "remainder" if window.is_remainder else ("probe" if page == 1 else "page")
        self.progress.expect(1)
        return _Task(kind, lambda: self.client.discover_movies(params), window, page)

    def tasks(self, window: Window, pages: Iterable[int]) -> list[_Task]:
        out = []
        for page in pages:
            task = self.task(window, page)
            if task is None:
                break
            out.append(task)
        return out

    def _keep(self, window: Window, response: ApiResponse) -> set[int]:
        self.writer.write(response.raw_record())
        window.pages_fetched += 1
        return {int(movie["id"]) for movie in response.data.get("results", [])}

    def handle(self, task: _Task, result: ApiResponse | TMDbNotFoundError) -> list[_Task]:
        self.progress.advance()
        if isinstance(result, TMDbNotFoundError):
            raise TMDbError(f"discover answered 404: {result}")
        window = task.window
        assert window is not None
        data = result.data
        total = int(data.get("total_results") or 0)
        if task.kind == "remainder":
            if task.page == 1:
                window.total_results = total
                window.total_pages = int(data.get("total_pages") or 0)
            self.remainder_ids |= self._keep(window, result)
            return []
        if task.kind == "probe":
            assert window.gte is not None and window.lte is not None
            if total > MAX_RESULTS and window.gte < window.lte:
                self.splits += 1
                left, right = window.split()
                return self.tasks(left, [1]) + self.tasks(right, [1])
            window.total_results = total
            window.total_pages = int(data.get("total_pages") or 0)
            if total > MAX_RESULTS:
                window.truncated = True
                log.warning(
                    "%d movies share the release date %s: only the first %d are reachable",
                    total,
                    window.gte,
                    MAX_RESULTS,
                )
            self.leaves.append(window)
            self.window_ids |= self._keep(window, result)
            last = min(MAX_PAGE, -(-total // PAGE_SIZE))
            return self.tasks(window, range(2, last + 1))
        self.window_ids |= self._keep(window, result)
        return []

    @property
    def ids(self) -> set[int]:
        return self.window_ids | self.remainder_ids

    def remainder_expected(self) -> int:
        """How many movies the windows cannot reach: all of the genre minus the windows'."""
        if self.remainder.total_results is None:
            return 0
        in_windows = sum(w.total_results or 0 for w in self.leaves)
        return max(0, self.remainder.total_results - in_windows)

    def remainder_found(self) -> int:
        return len(self.remainder_ids - self.window_ids)


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
        pool: _Pool,
        progress: _Progress,
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

    def _writer(self, dataset: str) -> PartitionWriter:
        return PartitionWriter(
            self.lake, dataset, self.settings.run_date, self.run_id, self.max_file_bytes
        )

    def _begin(self, dataset: str) -> PartitionWriter | None:
        writer = self._writer(dataset)
        if writer.is_complete():
            log.info("%s is complete already (has _SUCCESS): skipped", writer.prefix)
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
            }
        )
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

        def handle(_task: _Task, result: ApiResponse | TMDbNotFoundError) -> list[_Task]:
            self.progress.advance()
            if isinstance(result, TMDbNotFoundError):
                raise TMDbError(f"the genre list answered 404: {result}")
            writer.write(result.raw_record())
            return []

        self.pool.run(
            [_Task("genres", lambda lang=lang: self.client.genre_list(lang)) for lang in languages],
            handle,
        )
        self._commit(writer, started_at, t0, before, languages=languages)

    def discover(self, max_pages: int | None) -> set[int]:
        writer = self._begin("discover")
        if writer is None:
            prefix = partition_prefix("discover", self.settings.run_date)
            return _discover_ids_from(self.lake, prefix)
        self.progress.phase("discover")
        started_at, t0, before = _iso_now(), time.monotonic(), self.client.stats.snapshot()
        state = _Discover(
            self.client, writer, self.settings.tmdb_genre_id, max_pages, self.progress
        )
        first = Window(DATE_FLOOR, date_ceiling(self.settings.run_date))
        # The remainder's first page goes with the first probe: it also counts the genre.
        self.pool.run(state.tasks(first, [1]) + state.tasks(state.remainder, [1]), state.handle)

        expected = state.remainder_expected()
        next_page = 2
        last_page = min(MAX_PAGE, -(-(state.remainder.total_results or 0) // PAGE_SIZE))
        while not state.capped and state.remainder_found() < expected and next_page <= last_page:
            batch = range(next_page, min(last_page, next_page + self.pool.workers - 1) + 1)
            next_page = batch[-1] + 1
            self.pool.run(state.tasks(state.remainder, batch), state.handle)
        unreached = 0 if state.capped else max(0, expected - state.remainder_found())
        if unreached:
            log.warning(
                "%d movie(s) of genre %d match no release-date window (no date) and are beyond "
                "what the remainder query reaches; see docs/tmdb.md",
                unreached,
                self.settings.tmdb_genre_id,
            )
        if state.capped:
            log.warning("stopped at --max-pages %s: this discover snapshot is partial", max_pages)
        self.stats.remainder_unreached = unreached
        windows = [w.describe() for w in sorted(state.leaves, key=lambda w: w.gte or DATE_FLOOR)]
        remainder = state.remainder.describe()
        remainder.update(
            purpose="movies no window reaches (no release date)",
            expected_new=expected,
            found_new=state.remainder_found(),
            unreached=unreached,
        )
        windows.append(remainder)
        ids = state.ids
        self._commit(
            writer,
            started_at,
            t0,
            before,
            windows=windows,
            splits=state.splits,
            movies=len(ids),
            capped=state.capped,
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
        todo = sorted(ids - known)
        self.stats.details_known = len(ids & known)
        if max_movies is not None:
            todo = todo[:max_movies]
        log.info(
            "details: %d movie(s) to fetch, %d already in raw%s",
            len(todo),
            len(ids & known),
            " (refresh requested)" if refresh else "",
        )
        fetched: list[int] = []
        skipped: list[int] = []
        self.progress.expect(len(todo))

        def handle(task: _Task, result: ApiResponse | TMDbNotFoundError) -> list[_Task]:
            self.progress.advance()
            if isinstance(result, TMDbNotFoundError):
                skipped.append(task.movie_id)
                log.info("movie %d: 404, skipped", task.movie_id)
                return []
            writer.write(result.raw_record())
            fetched.append(task.movie_id)
            return []

        self.pool.run(
            (
                _Task("details", lambda i=movie_id: self.client.movie_details(i), movie_id=movie_id)
                for movie_id in todo
            ),
            handle,
        )
        self.stats.details_fetched = len(fetched)
        self.stats.skipped_ids = sorted(skipped)
        self._commit(
            writer,
            started_at,
            t0,
            before,
            skipped_ids=sorted(skipped),
            movie_ids=sorted(fetched),
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
) -> ExtractStats:
    """Extract the genre's discover snapshot, the genre list and new details into raw.

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
    pool = _Pool(client, workers, deadline)
    run = _Run(settings, lake, client, pool, _Progress(progress), max_file_bytes)
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
        run.genres()
        ids = run.discover(max_pages)
        run.stats.movies = len(ids)
        run.details(ids, max_movies, refresh_details)
    finally:
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
def _add_arguments(parser: argparse.ArgumentParser) -> None:
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


@command(
    "tmdb", "extract a TMDB genre (discover, genres, new movie details) into raw", _add_arguments
)
def run_tmdb(settings: Settings, args: argparse.Namespace) -> int:
    if settings.tmdb_api_key is None:
        log.error("%s", NO_KEY_MESSAGE)
        return 2
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
                progress=bar,
            )
        except TMDbError as exc:
            bar.close()
            log.error("TMDB extraction failed: %s", exc)
            return 1
    print(json.dumps(stats.as_dict(), indent=2))
    return 0
