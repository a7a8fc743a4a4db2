"""TMDB's raw layout and its commit protocol (docs/lake-contract.md).

Where a dataset's day partition lives, the writer that commits one (JSON-lines data files,
then ``_manifest.json``, then ``_SUCCESS``), and what complete partitions already hold: the
ids whose details are in raw, the ids of a committed discover snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from ingestion import faults
from ingestion.lake import Lake, clear_leftovers

log = logging.getLogger(__name__)

RAW_PREFIX = "raw/tmdb/json"
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024


def partition_prefix(dataset: str, run_date: dt.date) -> str:
    return (
        f"{RAW_PREFIX}/{dataset}/year={run_date.year:04d}/month={run_date.month:02d}/"
        f"day={run_date.day:02d}/"
    )


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
        """Delete what an interrupted run left in this (incomplete) partition: its objects and
        its unfinished writes. Call it holding the partition's lock."""
        removed = clear_leftovers(self.lake, self.prefix)
        if removed:
            log.info("removed %d leftover(s) of an unfinished run in %s: %s", len(removed),
                     self.prefix, ", ".join(removed))  # fmt: skip
        return len(removed)

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
        faults.reached("tmdb.file_written")

    def commit(
        self, manifest: dict[str, Any], check: Callable[[], None] = lambda: None
    ) -> dict[str, Any]:
        """Write the last data file, then ``_manifest.json``, then ``_SUCCESS``; ``check`` runs
        before each of the last two (it raises if the partition's lock was lost)."""
        self._flush()
        full = {
            "dataset": self.dataset,
            "run_id": self.run_id,
            **manifest,
            "files": self.files,
            "records": self.records,
        }
        body = json.dumps(full, ensure_ascii=False, indent=2).encode("utf-8")
        check()
        self.lake.put_bytes(self.prefix + "_manifest.json", body)
        faults.reached("tmdb.manifest_written")
        check()
        self.lake.put_bytes(self.success_key, b"")
        faults.reached("tmdb.committed")
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


def discover_ids(lake: Lake, prefix: str) -> set[int]:
    """The movie ids of the complete discover partition at ``prefix``."""
    ids: set[int] = set()
    for record in _records(lake, _manifest(lake, prefix)):
        ids.update(int(movie["id"]) for movie in record["response"].get("results", []))
    return ids
