"""Named fault points: where the fault-injection tests kill a run, on purpose, midway.

A stage calls ``fault_point("trusted.write.imdb_movie_credits")`` at each step worth killing
at. When the environment variable ``MOVIE_LAKE_FAULT_AT`` names that step, the process is
killed there with ``SIGKILL``: no ``finally`` block, no ``atexit`` and no JVM shutdown hook
runs, exactly as when a machine or container dies. Anything else (the variable unset, another
step) costs one string comparison. The variable is read once per process.

The trusted job also registers the Spark JVM it launched (``register_child``), so that the kill
takes the whole job down at once, as a crash would, rather than leaving the JVM to notice later
that its driver is gone. Tests run the real command as a subprocess with the variable set
(``tests/faults/``); nothing but a test sets it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

FAULT_ENV = "MOVIE_LAKE_FAULT_AT"


@functools.cache
def _target() -> str | None:
    return os.environ.get(FAULT_ENV) or None


_children: list[int] = []


def register_child(pid: int) -> None:
    """A child process (the Spark JVM) to kill together with this one at a fault point."""
    _children.append(pid)


def armed(step: str) -> bool:
    """True when this process is to be killed at ``step``."""
    return _target() == step


def kill_now(step: str) -> None:
    """Kill the registered children and this process with SIGKILL (never returns)."""
    print(f"fault injected at {step}: SIGKILL", file=sys.stderr, flush=True)  # noqa: T201
    for pid in _children:
        with contextlib.suppress(OSError):  # already gone
            os.kill(pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def fault_point(step: str) -> None:
    """Die here when ``MOVIE_LAKE_FAULT_AT`` names ``step``."""
    if armed(step):
        kill_now(step)


def kill_when(step: str, ready: Callable[[], bool], interval: float = 0.02) -> Callable[[], None]:
    """When ``step`` is armed, watch ``ready()`` from a thread and die as soon as it holds (to
    kill in the middle of a blocking call, e.g. while Spark's tasks write files). Returns a
    function that stops the watch; it also dies then if the call ended before ``ready()`` ever
    held, so an armed step always kills."""
    if not armed(step):
        return lambda: None
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                if ready():
                    kill_now(step)
            except Exception:  # noqa: S110 - a listing racing the writer; look again
                pass
            done.wait(interval)

    threading.Thread(target=watch, name=f"fault-{step}", daemon=True).start()

    def stop() -> None:
        done.set()
        kill_now(step)

    return stop
