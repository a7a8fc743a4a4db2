"""One genre's complete ``/discover/movie`` snapshot, in release-date windows.

``/discover/movie`` stops at page 500 (10,000 results per query), so the genre is read in
``primary_release_date`` windows sorted ascending: a window whose ``total_results`` exceeds
10,000 is bisected until every window fits. Movies without a release date match no window; a
"remainder" query without date filters (most popular first) picks up what the windows missed,
as far as its own 500 pages reach. See docs/tmdb.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingestion.tmdb_client import ApiResponse, TMDbClient, TMDbError, TMDbNotFoundError
from ingestion.tmdb_pool import Progress, RequestPool, Task
from ingestion.tmdb_raw import PartitionWriter

log = logging.getLogger(__name__)

PAGE_SIZE = 20
MAX_PAGE = 500
MAX_RESULTS = PAGE_SIZE * MAX_PAGE  # what one discover query can reach
DATE_FLOOR = dt.date(1800, 1, 1)  # before the first film


def date_ceiling(run_date: dt.date) -> dt.date:
    """The last day the windows cover: announced films are dated years ahead."""
    return dt.date(run_date.year + 50, 12, 31)


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


class DiscoverSnapshot:
    """State of one discover snapshot while its pages come in."""

    def __init__(
        self,
        client: TMDbClient,
        writer: PartitionWriter,
        genre_id: int,
        max_pages: int | None,
        progress: Progress,
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
        self.expected = 0  # movies only the remainder query can reach
        self.unreached = 0  # of those, how many it could not reach

    def task(self, window: Window, page: int) -> Task | None:
        if self.max_pages is not None and self.pages_requested >= self.max_pages:
            self.capped = True
            return None
        self.pages_requested += 1
        params = window.params(self.genre_id, page)
        kind = "remainder" if window.is_remainder else ("probe" if page == 1 else "page")
        self.progress.expect(1)
        return Task(kind, lambda: self.client.discover_movies(params), window, page)

    def tasks(self, window: Window, pages: Iterable[int]) -> list[Task]:
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

    def handle(self, task: Task, result: ApiResponse | TMDbNotFoundError) -> list[Task]:
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

    def fetch(self, pool: RequestPool, run_date: dt.date) -> None:
        """Read the whole genre: the windows, bisected as needed, then as many remainder pages
        as it takes to find the movies no window reaches (or all its pages)."""
        first = Window(DATE_FLOOR, date_ceiling(run_date))
        # The remainder's first page goes with the first probe: it also counts the genre.
        pool.run(self.tasks(first, [1]) + self.tasks(self.remainder, [1]), self.handle)

        self.expected = expected = self.remainder_expected()
        next_page = 2
        last_page = min(MAX_PAGE, -(-(self.remainder.total_results or 0) // PAGE_SIZE))
        while not self.capped and self.remainder_found() < expected and next_page <= last_page:
            batch = range(next_page, min(last_page, next_page + pool.workers - 1) + 1)
            next_page = batch[-1] + 1
            pool.run(self.tasks(self.remainder, batch), self.handle)
        self.unreached = unreached = 0 if self.capped else max(0, expected - self.remainder_found())
        if unreached:
            log.warning(
                "%d movie(s) of genre %d match no release-date window (no date) and are beyond "
                "what the remainder query reaches; see docs/tmdb.md",
                unreached,
                self.genre_id,
            )
        if self.capped:
            log.warning(
                "stopped at --max-pages %s: this discover snapshot is partial", self.max_pages
            )

    def windows(self) -> list[dict[str, Any]]:
        """The manifest's ``windows``: the leaf windows by date, then the remainder query."""
        windows = [w.describe() for w in sorted(self.leaves, key=lambda w: w.gte or DATE_FLOOR)]
        remainder = self.remainder.describe()
        remainder.update(
            purpose="movies no window reaches (no release date)",
            expected_new=self.expected,
            found_new=self.remainder_found(),
            unreached=self.unreached,
        )
        windows.append(remainder)
        return windows
