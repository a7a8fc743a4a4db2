"""Helpers of the fault-injection tests (``tests/faults/``): run a real stage as a subprocess
on a scratch lake, kill it midway, and look at the lake as the next stage would.

A run is killed either at a named step (``MOVIE_LAKE_FAULT_AT=<step>[:<n>]``: the process
SIGKILLs itself the n-th time it reaches the step; ``ingestion/faults.py`` lists the steps) or
from outside after a delay. What a stage's next reader may see is judged by the commit
protocol of docs/lake-contract.md: a partition is visible only with ``_SUCCESS``, and then
every file its ``_manifest.json`` lists must be there, whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingestion.faults import ENV_VAR as FAULT_ENV
from ingestion.lake import LOCK_NAME, Lake, LocalLake, S3Lake

ROOT = Path(__file__).resolve().parents[2]
KILLED = -signal.SIGKILL


@dataclass
class Run:
    """A finished subprocess: its exit code (negative: the signal that ended it) and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return f"{' '.join(self.args)} -> {self.returncode}\n{self.output[-4000:]}"


def command_env(env: dict[str, str], fault_at: str | None = None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    full.update(env, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    if fault_at:
        full[FAULT_ENV] = fault_at
    return full


def start(
    args: Sequence[str], env: dict[str, str], fault_at: str | None = None
) -> subprocess.Popen:
    """Start ``python -m ingestion <args>`` with ``env`` on top of this process's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "ingestion", *args],
        cwd=ROOT,
        env=command_env(env, fault_at),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 180) -> Run:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return Run(list(map(str, proc.args)), proc.returncode, out, err)


def run(
    args: Sequence[str], env: dict[str, str], fault_at: str | None = None, timeout: float = 180
) -> Run:
    """Run the command to its end (or to its fault point)."""
    return finish(start(args, env, fault_at), timeout)


def run_killed_after(args: Sequence[str], env: dict[str, str], delay: float) -> Run:
    """Run the command and SIGKILL it after ``delay`` seconds (if it is still running)."""
    proc = start(args, env)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return finish(proc)


# -- what the next stage sees -----------------------------------------------------------------
def complete_partitions(lake: Lake, prefix: str = "raw/") -> list[str]:
    return [k[: -len("_SUCCESS")] for k in lake.list(prefix) if k.endswith("/_SUCCESS")]


def visible_files(lake: Lake, prefix: str = "raw/") -> dict[str, bytes]:
    """Every data file a reader of the contract would read: those the manifests of complete
    partitions list. Fails when a listed file is missing or not as the manifest records it."""
    files: dict[str, bytes] = {}
    for partition in complete_partitions(lake, prefix):
        assert lake.exists(partition + "_manifest.json"), f"{partition}: _SUCCESS, no manifest"
        manifest = json.loads(lake.get_bytes(partition + "_manifest.json"))
        for entry in manifest["files"]:
            assert lake.exists(entry["key"]), f"{partition}: {entry['key']} is missing"
            data = lake.get_bytes(entry["key"])
            assert len(data) == entry["bytes"], f"{entry['key']} is not whole"
            if "records" in entry and entry["key"].endswith(".jsonl"):
                assert data.count(b"\n") == entry["records"], f"{entry['key']} records"
            files[entry["key"]] = data
    return files


def leftovers(lake: Lake, prefix: str = "raw/") -> list[str]:
    """What an interrupted run can leave that no reader should ever meet: temporary files,
    locks, incomplete multipart uploads, objects in partitions without ``_SUCCESS``."""
    found = [k for k in lake.list(prefix) if k.rsplit("/", 1)[-1] == LOCK_NAME]
    complete = complete_partitions(lake, prefix)
    found += [
        k
        for k in lake.list(prefix)
        if not any(k.startswith(p) for p in complete) and not k.endswith(LOCK_NAME)
    ]
    if isinstance(lake, LocalLake):
        folder = lake.root / prefix
        if folder.is_dir():
            found += [str(p) for p in folder.rglob(".*.tmp")]
    elif isinstance(lake, S3Lake):
        uploads = lake.client.list_multipart_uploads(Bucket=lake.bucket, Prefix=lake._key(prefix))
        found += [f"upload of {u['Key']}" for u in uploads.get("Uploads", [])]
    return sorted(found)


@dataclass
class ScratchLake:
    """A lake a subprocess can reach: its environment, and the same lake seen from here."""

    env: dict[str, str]
    lake: Lake
