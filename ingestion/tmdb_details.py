"""The ``/movie/{id}`` details of the movies a discover snapshot found and raw does not hold
yet: which ids to fetch, their requests, and what became of each (kept, or 404 and skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ingestion.tmdb_client import ApiResponse, TMDbClient, TMDbNotFoundError
from ingestion.tmdb_pool import Progress, Task
from ingestion.tmdb_raw import PartitionWriter

log = logging.getLogger(__name__)


def ids_to_fetch(ids: set[int], known: set[int], max_movies: int | None) -> list[int]:
    """The ids not in ``known``, smallest first, at most ``max_movies`` of them."""
    todo = sorted(ids - known)
    if max_movies is not None:
        todo = todo[:max_movies]
    return todo


class DetailsFetch:
    """The details requests of one run; each response goes to ``writer``, a 404 is skipped."""

    def __init__(self, client: TMDbClient, writer: PartitionWriter, progress: Progress) -> None:
        self.client = client
        self.writer = writer
        self.progress = progress
        self.fetched: list[int] = []
        self.skipped: list[int] = []

    def tasks(self, todo: list[int]) -> Iterator[Task]:
        self.progress.expect(len(todo))
        return (
            Task("details", lambda i=movie_id: self.client.movie_details(i), movie_id=movie_id)
            for movie_id in todo
        )

    def handle(self, task: Task, result: ApiResponse | TMDbNotFoundError) -> list[Task]:
        self.progress.advance()
        if isinstance(result, TMDbNotFoundError):
            self.skipped.append(task.movie_id)
            log.info("movie %d: 404, skipped", task.movie_id)
            return []
        self.writer.write(result.raw_record())
        self.fetched.append(task.movie_id)
        return []
