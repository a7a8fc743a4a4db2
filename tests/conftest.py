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
