"""Fixtures shared by every test area. Slow ones (servers) are session-scoped."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from scripts.athena_on_duckdb import AthenaCompile

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # scripts/ is imported from the checkout
    sys.path.insert(0, str(REPO_ROOT))

# Never talk to real AWS or send dbt usage stats, whatever the caller's environment holds.
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server's access log
# Every JVM the tests start (the session's below, and those of the demo, the bench smoke run
# and any job run as a subprocess, which inherit this environment) lives for seconds: the C1
# compiler alone and the serial collector spend about a third less CPU on such short runs than
# the JVM's defaults (two compilers, parallel GC threads). The code that runs is the same.
os.environ.setdefault(
    "PYSPARK_SUBMIT_ARGS",
    '--driver-java-options "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" pyspark-shell',
)

# What needs Spark, dbt, a moto server or runs end to end is marked slow: `make test-fast`
# skips it. A test that uses one of these fixtures is slow whatever its module says.
SLOW_FIXTURES = ("spark_session", "dbt_run", "moto_server_url", "packaged")

# `make test` runs pytest-xdist (-n 2). Each worker builds its own session fixtures (a
# SparkSession, the dbt fixture build) once, whatever it runs, so a module is the unit of work
# (its module fixtures, such as the demo run or the bench run, are built once); only
# tests/deploy, whose session fixture packages the artifacts, stays whole on one worker.
# Workers take the longest modules first (their measured order), so that neither ends with a
# long module started last.
SHARED_SESSION_DIRS = ("tests/deploy/",)
LONGEST_FIRST = (
    "tests/bench/test_bench_smoke.py",
    "tests/faults/test_trusted_faults.py",
    "tests/dbt/test_dbt_incremental.py",
    "tests/e2e/test_demo.py",
    "tests/faults/test_dbt_faults.py",
    "tests/dbt/test_athena_sql_on_duckdb.py",
    "tests/spark/test_spark_trusted_job.py",
    "tests/spark/test_trusted_skip.py",
    "tests/dbt/test_dbt_incremental_athena.py",
    "tests/spark/",
    "tests/faults/",
    "tests/dashboard/test_dashboard_browser.py",
    "tests/dbt/",
    "tests/deploy/",
)


def xdist_unit(nodeid: str) -> str:
    path = nodeid.split("::")[0]
    return next((d for d in SHARED_SESSION_DIRS if path.startswith(d)), path)


def _longest_first(item: pytest.Item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, d in enumerate(LONGEST_FIRST) if path.startswith(d)), len(LONGEST_FIRST))


@pytest.hookimpl(tryfirst=True)  # before -m 'not slow' deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures.intersection(SLOW_FIXTURES) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):  # an xdist worker: the order units are handed out in
        items.sort(key=_longest_first)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under -n N (--dist load, the default), hand out the units of xdist_unit() in order."""
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist loadfile, loadscope, ... is left as asked
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    config.option.loadscopereorder = False  # keep the workers' longest-first order
    return SharedFixtureScheduling(config, log)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """A real moto server over HTTP on 127.0.0.1, for the whole session; stopped at the end."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def athena_compile(moto_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AthenaCompile:
    """`dbt compile --target athena` of the project against the moto server, once a session
    (dbt-athena talks to STS, Glue and S3 while compiling; moto runs no SQL)."""
    from scripts.athena_on_duckdb import compile_for_athena

    return compile_for_athena(tmp_path_factory.mktemp("dbt_athena") / "target", moto_server_url)
