"""The worker pool of the TMDB stage: request tasks run on threads, their results are handled
one at a time on the calling thread (the only one that writes to the lake), and a progress
bar counts them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ingestion.tmdb_client import ApiResponse, TMDbClient, TMDbError, TMDbNotFoundError

if TYPE_CHECKING:
    from ingestion.tmdb_discover import Window


class TMDbDeadlineError(TMDbError):
    """The run would not finish before its deadline (a Lambda's remaining time)."""


class ProgressBar(Protocol):
    """What is used of a tqdm bar."""

    total: Any

    def update(self, n: int = 1) -> Any: ...
    def refresh(self) -> Any: ...
    def set_description(self, desc: str | None = None, refresh: bool = True) -> Any: ...


class Progress:
    """Phases and request counts on an optional bar (``None``: no bar)."""

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


@dataclass(frozen=True)
class Task:
    """One request to make (``call``) and what its handler needs to know about it."""

    kind: str
    call: Callable[[], ApiResponse]
    window: Window | None = None
    page: int = 0
    movie_id: int = 0


Handler = Callable[[Task, "ApiResponse | TMDbNotFoundError"], Iterable[Task]]


class RequestPool:
    """Runs request tasks on worker threads; results are handled here, one at a time.

    At most ``2 * workers`` tasks are in flight; the rest wait in a queue, so 60,000 detail
    requests do not become 60,000 futures. Any error but a 404 cancels the rest and is raised.
    """

    def __init__(self, client: TMDbClient, workers: int, deadline: float | None) -> None:
        self.client = client
        self.workers = workers
        self.deadline = deadline
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tmdb")

    def run(self, tasks: Iterable[Task], handle: Handler) -> None:
        queue: deque[Task] = deque(tasks)
        pending: dict[Future[ApiResponse], Task] = {}
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
