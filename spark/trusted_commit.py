"""How the trusted job replaces a table so that no reader ever sees half of one.

Spark writes each table into a staging folder of its run,
``trusted/_staging/<RUN_DATE>/<run id>/<table>/``, which no reader looks at. Only once Spark has
committed it (its ``_SUCCESS`` written) is it put in place of the live folder:

- a whole table (``imdb_movies``, ``tmdb_genres``, ...) as one folder;
- a partitioned table (``tmdb_movie_snapshots``, ``_rejected/<table>``) one partition folder at
  a time, only the partitions the run wrote (Spark's dynamic partition overwrite, made safe).

How a folder is put in place depends on the filesystem (``mode``):

``exchange`` (a local lake on Linux): ``renameat2(RENAME_EXCHANGE)`` swaps the staged and the
    live folder in one atomic step; the old one, now at the staged path, is deleted after. A
    reader sees the whole old table or the whole new one, at every instant.
``rename`` (a local lake elsewhere): the live folder is moved aside, then the staged one moved in
    (two atomic renames). For the instant between them the table is absent, never partial; a
    journal entry written first lets the next run put the old folder back if a run dies there.
``object_store`` (``s3://`` on Glue, ``s3a://``): S3 has no rename, only copy and delete, object
    by object. A journal entry is written first; then the live marker and objects are deleted
    and the staged objects moved in one by one. A reader during those seconds can see a
    partial table; if the run dies there, the next run finishes the move from the journal
    (roll forward), so the table ends complete. ``docs/lake-contract.md`` says what this means.

Before it writes, a run (holding the day's lock, ``spark/lake_lock.py``) cleans what killed runs
of the same day left: their staging folders (with Spark's ``_temporary`` folders in them),
after replaying their journals, and any ``_temporary`` or ``.spark-staging-*`` folder inside a
live table. Each one is logged and listed in the run report.

``_built_from.json`` (the IMDb tables' provenance) is written into the live folder after its
table is in place: a table without it is rebuilt by the next run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame

from spark.faults import fault_point, kill_when
from spark.lake_io import LakeFS, TrustedJobError, _renameat2, exchange_paths

log = logging.getLogger(__name__)

MARKER = "_built_from.json"
STAGING = "trusted/_staging"
MODES = ("exchange", "rename", "object_store")


@dataclass(frozen=True)
class Leftover:
    """Something an interrupted run left, cleaned by a later run."""

    key: str
    kind: str  # "staging folder" or "spark _temporary"
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "kind": self.kind, "detail": self.detail}


def default_mode(lake: LakeFS) -> str:
    if lake.local_path(lake.root) is None:
        return "object_store"
    return "exchange" if _renameat2() is not None else "rename"


class TableCommitter:
    """Stages, then puts in place, every table one run writes (see the module's docstring)."""

    def __init__(
        self,
        lake: LakeFS,
        day: str,
        run_id: str,
        *,
        check: Callable[[], None] = lambda: None,
        mode: str | None = None,
        fault: Callable[[str], None] = fault_point,
    ) -> None:
        self.lake = lake
        self.day_root = f"{STAGING}/{day}"
        self.run_id = run_id
        self.staging = f"{self.day_root}/{run_id}"
        self.mode = mode or default_mode(lake)
        if self.mode not in MODES:
            raise ValueError(f"unknown commit mode {self.mode!r}: one of {MODES}")
        self._check = check  # raises when the run lost its lock
        self._fault = fault
        self._journal_seq = 0

    # -- writing ------------------------------------------------------------------------------

    def write(self, df: DataFrame, uri: str, partition_by: Sequence[str] = ()) -> None:
        """Write ``df`` as the table at ``uri`` (whole, or only its partitions in ``df``)."""
        live = self.lake.key_of(uri)
        if not live.startswith("trusted/"):
            raise TrustedJobError(f"{uri}: the trusted job writes under trusted/ only")
        name = live[len("trusted/") :]
        staged = f"{self.staging}/{name}"
        writer = df.write.mode("overwrite").format("parquet")
        if partition_by:
            # Into an empty staging folder, so static mode writes just the partitions of ``df``;
            # the partitions are swapped in one by one below (dynamic overwrite, made safe).
            # Spark's own dynamic mode would work in a hidden .spark-staging-* folder instead.
            writer = writer.option("partitionOverwriteMode", "static").partitionBy(*partition_by)
        stop_watch = kill_when(f"trusted.write.{name}", self._write_started(staged), 0.005)
        writer.save(self.lake.uri(staged))
        stop_watch()
        self._check()
        if partition_by and self.lake.exists(live):
            for part in self._partitions(staged, len(partition_by)):
                self._replace(f"{staged}/{part}", f"{live}/{part}", name)
        else:
            self._replace(staged, live, name)
        self._fault(f"trusted.swapped.{name}")

    def _write_started(self, staged: str) -> Callable[[], bool]:
        """True once Spark's write job has begun in ``staged``: its ``_temporary`` folder,
        where the tasks write, exists (it goes at the job's commit)."""
        path = self.lake.local_path(f"{staged}/_temporary")
        return (lambda: True) if path is None else path.is_dir

    def _partitions(self, staged: str, depth: int) -> list[str]:
        """The partition folders (``year=2024/month=01/day=02``) Spark wrote under ``staged``."""
        found = [""]
        for _ in range(depth):
            found = [
                f"{prefix}{name}/"
                for prefix in found
                for name, is_dir in self.lake.list_dir(f"{staged}/{prefix}".rstrip("/"))
                if is_dir and "=" in name
            ]
        return [p.rstrip("/") for p in found]

    def _journal(self, entry: dict[str, Any]) -> str:
        self._journal_seq += 1
        key = f"{self.staging}/_journal/{self._journal_seq:05d}.json"
        self.lake.write_text(key, json.dumps(entry))
        return key

    def _replace(self, staged: str, live: str, name: str) -> None:
        """Put the folder ``staged`` in place of ``live`` (see ``mode``)."""
        if self.mode == "object_store":
            journal = self._journal({"mode": "object_store", "staged": staged, "live": live})
            self._move_objects(staged, live, journal, name)
            return
        if not self.lake.exists(live):
            self.lake.rename(staged, live)  # nothing to replace: one atomic rename
            return
        if self.mode == "exchange":
            staged_path, live_path = self.lake.local_path(staged), self.lake.local_path(live)
            assert staged_path is not None and live_path is not None
            if exchange_paths(staged_path, live_path):
                self._fault(f"trusted.swap.{name}")
                self.lake.delete(staged)  # the old table, now at the staged path
                return
            log.info("this filesystem cannot exchange folders: %s replaced by two renames", live)
        backup = f"{self.staging}/_replaced/{live[len('trusted/') :]}"
        journal = self._journal({"mode": "rename", "live": live, "backup": backup})
        self.lake.rename(live, backup)
        self._fault(f"trusted.swap.{name}")
        self.lake.rename(staged, live)
        self.lake.delete(backup)
        self.lake.delete(journal)

    def _move_objects(self, staged: str, live: str, journal: str, name: str) -> None:
        """The ``object_store`` replacement, resumable from its journal: delete the live
        folder (its marker first), note it, then move the staged objects in one by one."""
        moving = journal.removesuffix(".json") + ".moving"
        if not self.lake.exists(moving):
            self.lake.delete(f"{live}/{MARKER}")
            self.lake.delete(live)
            self.lake.write_text(moving, "")
        files = self.lake.list_files(staged)  # data first; _SUCCESS and the like last
        files.sort(key=lambda rel: rel.rsplit("/", 1)[-1].startswith("_"))
        for n, rel in enumerate(files):
            target = f"{live}/{rel}"
            if self.lake.exists(target):  # copied by a run that died before deleting the source
                self.lake.delete(target)
            self.lake.rename(f"{staged}/{rel}", target)
            if n == 0:
                self._fault(f"trusted.swap.{name}")
        self.lake.delete(staged)
        self.lake.delete(moving)
        self.lake.delete(journal)

    # -- markers ------------------------------------------------------------------------------

    def read_marker(self, table: str) -> dict[str, Any] | None:
        """A table's ``_built_from.json``, or None when missing or unreadable."""
        key = f"trusted/{table}/{MARKER}"
        try:
            if not self.lake.exists(key):
                return None
            marker = json.loads(self.lake.read_text(key))
        except Exception as exc:  # a marker cut short by a kill, a bad checksum: rebuild
            log.warning("ignoring %s: unreadable (%s)", key, str(exc).splitlines()[0][:200])
            return None
        return marker if isinstance(marker, dict) else None

    def write_marker(self, table: str, marker: dict[str, Any]) -> None:
        """Write a table's ``_built_from.json``: the last file of its folder."""
        self._check()
        self.lake.write_text(f"trusted/{table}/{MARKER}", json.dumps(marker, indent=2) + "\n")

    # -- cleaning up --------------------------------------------------------------------------

    def recover(self) -> list[Leftover]:
        """Finish or undo what killed runs of this day left, then delete it; returns it."""
        leftovers: list[Leftover] = []
        for run_name, is_dir in self.lake.list_dir(self.day_root):
            if not is_dir or run_name == self.run_id:
                continue
            run_dir = f"{self.day_root}/{run_name}"
            replayed = 0
            for entry_name, _ in self.lake.list_dir(f"{run_dir}/_journal"):
                if entry_name.endswith(".json"):
                    self._replay(f"{run_dir}/_journal/{entry_name}")
                    replayed += 1
            tables, temporaries = self._describe(run_dir)
            self.lake.delete(run_dir)
            detail = f"{tables} staged folder(s), {temporaries} Spark _temporary folder(s)"
            if replayed:
                detail += f", {replayed} interrupted replacement(s) completed"
            leftovers.append(Leftover(run_dir, "staging folder", detail))
        for table in self._live_tables():  # left by writers that wrote in place
            for name, is_dir in self.lake.list_dir(table):
                if is_dir and (name == "_temporary" or name.startswith(".spark-staging-")):
                    self.lake.delete(f"{table}/{name}")
                    leftovers.append(
                        Leftover(f"{table}/{name}", "spark _temporary", "inside a live table")
                    )
        for leftover in leftovers:
            log.warning(
                "cleaned a leftover of an interrupted run: %s (%s: %s)",
                leftover.key,
                leftover.kind,
                leftover.detail,
            )
        log.info("cleaned %d leftover(s) of interrupted runs", len(leftovers))
        return leftovers

    def _describe(self, run_dir: str) -> tuple[int, int]:
        """How many staged table folders a run folder holds, and how many of them still hold
        Spark's ``_temporary`` (a write that never committed)."""
        names = [n for n, d in self.lake.list_dir(run_dir) if d and not n.startswith("_")]
        names += [f"_rejected/{n}" for n, d in self.lake.list_dir(f"{run_dir}/_rejected") if d]
        temporaries = sum(self.lake.exists(f"{run_dir}/{n}/_temporary") for n in names)
        return len(names), temporaries

    def _replay(self, journal: str) -> None:
        entry = json.loads(self.lake.read_text(journal))
        live = entry["live"]
        if entry["mode"] == "rename":
            backup = entry["backup"]
            if not self.lake.exists(live) and self.lake.exists(backup):
                self.lake.rename(backup, live)
                log.warning("%s: put back the table an interrupted run had moved aside", live)
        elif entry["mode"] == "object_store":
            staged = entry["staged"]
            moving = journal.removesuffix(".json") + ".moving"
            if self.lake.exists(staged) or not self.lake.exists(moving):
                self._move_objects(staged, live, journal, live)
                log.warning("%s: finished the replacement an interrupted run began", live)

    def _live_tables(self) -> list[str]:
        tables = [f"trusted/{n}" for n, d in self.lake.list_dir("trusted") if d and n[0] != "_"]
        rejected = self.lake.list_dir("trusted/_rejected")
        return tables + [f"trusted/_rejected/{n}" for n, d in rejected if d]

    def finish(self) -> None:
        """Delete this run's staging folder, unless a replacement is pending in its journal
        (a failure mid-replacement: the next run completes it)."""
        if any(n.endswith(".json") for n, _ in self.lake.list_dir(f"{self.staging}/_journal")):
            log.warning("%s keeps an unfinished replacement for the next run", self.staging)
            return
        self.lake.delete(self.staging)
        for folder in (self.day_root, STAGING):  # when empty (another day's run may be writing)
            self.lake.delete_empty_folder(folder)
