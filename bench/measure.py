"""Timing and memory: medians of repetitions, and the peak RSS of a process tree.

Memory is sampled from ``/proc`` (Linux): every ``interval`` seconds the resident set sizes
(``VmRSS``) of a process and all its descendants are summed, so a Spark job counts its Python
driver and its JVM together. The peak is the largest such sum; a sampler can miss a spike
shorter than its interval, so peaks are a slight underestimate, alike for every run measured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PROC = Path("/proc")


@dataclass
class Sample:
    """One repetition: wall seconds and, for a subprocess, the peak RSS of its tree in bytes."""

    seconds: float
    peak_rss_bytes: int | None = None


@dataclass
class Samples:
    """The repetitions of one measurement."""

    runs: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.runs.append(sample)

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.runs)

    @property
    def peak_rss_bytes(self) -> int | None:
        peaks = [s.peak_rss_bytes for s in self.runs if s.peak_rss_bytes is not None]
        return int(statistics.median(peaks)) if peaks else None

    @property
    def all_seconds(self) -> list[float]:
        return [round(s.seconds, 4) for s in self.runs]


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after it
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree_pids(root: int) -> list[int]:
    """``root`` and every process descended from it, as /proc shows them now."""
    children = _children_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_bytes(pid: int) -> int:
    """The resident set size of one process (0 when it is gone or a zombie)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) one process has used so far (0 when it is gone)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeMemorySampler:
    """Samples the summed RSS of a process tree in a thread until stopped; keeps the peak."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            total = sum(rss_bytes(pid) for pid in tree_pids(self.root))
            self.peak = max(self.peak, total)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class CommandFailed(RuntimeError):
    """A measured command exited non-zero; the message holds its command line and output tail."""


def run_measured(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_file: Path,
    timeout: float = 3600,
) -> Sample:
    """Run a command to completion; return its wall time and the peak RSS of its tree.

    Its output goes to ``log_file``; when it fails, the error names the command and quotes the
    end of that log.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        with TreeMemorySampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise CommandFailed(
                    f"{' '.join(args)} ran longer than {timeout:.0f} s and was stopped; "
                    f"its output is in {log_file}"
                ) from None
        seconds = time.perf_counter() - started
    if code != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise CommandFailed(
            f"{' '.join(args)} exited with {code} (cwd {cwd}); full output in {log_file}. "
            f"Last lines:\n{tail}"
        )
    return Sample(seconds, sampler.peak)


def repeat(
    times: int,
    body: Callable[[int], Sample | float],
    *,
    setup: Callable[[int], None] | None = None,
    teardown: Callable[[int], None] | None = None,
) -> Samples:
    """Run ``body`` ``times`` times (setup and teardown outside the measurement)."""
    samples = Samples()
    for rep in range(times):
        if setup is not None:
            setup(rep)
        result = body(rep)
        samples.add(result if isinstance(result, Sample) else Sample(float(result)))
        if teardown is not None:
            teardown(rep)
    return samples


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def machine() -> dict[str, object]:
    """Cores, memory and CPU model of this machine."""
    info: dict[str, object] = {"cores": os.cpu_count()}
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info
