"""A test-only fault hook: crash the process at a named step, as a power cut or an OOM kill would.

``MOVIE_LAKE_FAULT_AT=<step>`` (or ``<step>:<n>``) makes the process SIGKILL itself the first
(or the n-th) time it reaches ``<step>``. The fault-injection tests (``tests/faults/``) use it
to stop a real landing at a deterministic point, then check that nothing partial is visible
and that a rerun ends as an uninterrupted run would. The variable is read once, at import;
unset (always, outside those tests) a step costs one comparison.

The steps:

| step | reached |
| --- | --- |
| ``lake.part_written`` | after each part of a large object is written (local) or uploaded (S3) |
| ``csv.locked`` | CSV landing: the partition is locked and an earlier run's leftovers removed |
| ``csv.data_landed`` | CSV landing: the data file is in place, before ``_manifest.json`` |
| ``csv.manifest_written`` | CSV landing: ``_manifest.json`` written, before ``_SUCCESS`` |
| ``csv.success_written`` | CSV landing: ``_SUCCESS`` written, before the lock is released |
| ``tmdb.file_written`` | TMDB: after each data file of a dataset is written |
| ``tmdb.manifest_written`` | TMDB: a dataset's ``_manifest.json`` written, before ``_SUCCESS`` |
| ``tmdb.committed`` | TMDB: a dataset's ``_SUCCESS`` written, before its lock is released |
"""

from __future__ import annotations

import os
import signal
import threading

ENV_VAR = "MOVIE_LAKE_FAULT_AT"


def _parse(spec: str) -> tuple[str, int] | None:
    spec = spec.strip()
    if not spec:
        return None
    step, _, nth = spec.partition(":")
    return step, int(nth) if nth else 1


_TARGET = _parse(os.environ.get(ENV_VAR, ""))
_LOCK = threading.Lock()
_seen = 0  # how many times the target step was reached (test runs only)


def reached(step: str) -> None:
    """Mark ``step`` as reached; SIGKILL this process if it is the configured fault point."""
    if _TARGET is None or step != _TARGET[0]:
        return
    global _seen
    with _LOCK:
        _seen += 1
        if _seen == _TARGET[1]:
            os.kill(os.getpid(), signal.SIGKILL)
