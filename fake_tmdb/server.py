"""A fake TMDB API v3 over HTTP on 127.0.0.1, for tests, the demo and the benchmark.

It serves ``/3/genre/movie/list``, ``/3/discover/movie`` and ``/3/movie/{id}`` from a
:class:`~fake_tmdb.catalogue.Catalogue`, checks ``api_key`` (401 with TMDB's body), and can
misbehave on demand, set at construction or changed while it runs:

- ``latency_ms``: every answer waits this long (each connection has its own thread, so 40
  requests in flight wait in parallel);
- ``rate_limit`` (requests per second, a bucket holding one second's worth): beyond it, 429
  with TMDB's body, with a ``Retry-After`` header when ``retry_after`` is set;
- :meth:`FakeTMDb.inject`: the next ``count`` matching requests (or all of them, until
  :meth:`FakeTMDb.clear_faults`) answer ``429`` (``retry_after`` optional), ``500`` or ``502``
  with an HTML page, ``truncated`` JSON (a 200 whose body is cut short), ``hang`` (the socket
  is held open silently for ``seconds``, longer than a client's timeout, then closed), or
  ``401``.

Every request is logged (path, parameters without the key, status) in :attr:`FakeTMDb.log`.

Use in tests::

    with FakeTMDb(catalogue, api_key="k") as server:
        server.base_url   # http://127.0.0.1:<port>/3

and in the demo, straight from an IMDb CSV::

    with serve_fake_tmdb(imdb_csv="data/sample/movies.csv", api_key="demo-key") as base_url:
        ...  # run the extraction with TMDB_BASE_URL=base_url, TMDB_API_KEY=demo-key
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fake_tmdb.catalogue import ERRORS, Catalogue, build_catalogue, dumps

log = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "502", "truncated", "hang", "401")
_MOVIE_PATH = re.compile(r"^/3/movie/(\d+)$")

_HTML_500 = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1><p>Something went wrong.</p></body></html>"
)
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: until cleared
    path_prefix: str = ""  # e.g. "/3/movie/" or "/3/discover/movie"; "" matches everything
    retry_after: str | None = None  # 429 only
    seconds: float = 5.0  # hang only


@dataclass(frozen=True)
class LoggedRequest:
    path: str
    params: dict[str, str]  # without api_key
    status: int  # 0 when the connection was held and dropped (hang)
    at: float


class _ServerBucket:
    """The server's own limit: ``rate`` per second, a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class FakeTMDb:
    """The fake server. Start it with ``with`` (or :meth:`start`/:meth:`stop`)."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        api_key: str,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        retry_after: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.catalogue = catalogue
        self.api_key = api_key
        self.latency_ms = latency_ms
        self.retry_after = retry_after
        self._bucket = _ServerBucket(rate_limit) if rate_limit else None
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/3"

    def start(self) -> FakeTMDb:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases held ("hang") connections at once
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTMDb:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- behaviour, changeable while running -------------------------------------------------
    def set_rate_limit(self, rate: float | None, retry_after: str | None = None) -> None:
        with self._lock:
            self._bucket = _ServerBucket(rate) if rate else None
            self.retry_after = retry_after

    def inject(
        self,
        kind: str,
        count: int | None = 1,
        *,
        path_prefix: str = "",
        retry_after: str | None = None,
        seconds: float = 5.0,
    ) -> None:
        """Make the next ``count`` requests under ``path_prefix`` fail with ``kind``.

        ``count=None`` keeps failing until :meth:`clear_faults`.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}: use one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(Fault(kind, count, path_prefix, retry_after, seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def log(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- used by the handler -----------------------------------------------------------------
    def _record(self, path: str, params: dict[str, str], status: int) -> None:
        with self._lock:
            self._log.append(LoggedRequest(path, params, status, time.monotonic()))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def _over_limit(self) -> bool:
        with self._lock:
            bucket = self._bucket
        return bucket is not None and not bucket.take()

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/3/genre/movie/list":
            return 200, self.catalogue.genres(params.get("language"))
        if path == "/3/discover/movie":
            return self.catalogue.discover(params)
        match = _MOVIE_PATH.match(path)
        if match:
            return self.catalogue.details(int(match.group(1)), params.get("language"))
        return ERRORS["not_found"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # many clients connect at once; a short backlog stalls them
    allow_reuse_address = True
    fake: FakeTMDb


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    # Headers and body leave in one segment: without these, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the request line holds the key: never print it; FakeTMDb.log has the requests

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, dumps(body), "application/json;charset=utf-8", headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.server.fake
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        key = params.pop("api_key", None)
        path = parts.path.rstrip("/")
        if fake.latency_ms:
            time.sleep(fake.latency_ms / 1000)

        fault = fake._take_fault(path)
        if fault is not None and fault.kind == "hang":
            fake._record(path, params, 0)
            fake._stopping.wait(fault.seconds)  # hold the socket, send nothing
            self.close_connection = True
            return
        if fault is not None and fault.kind in ("500", "502"):
            fake._record(path, params, int(fault.kind))
            page = _HTML_500 if fault.kind == "500" else _HTML_502
            self._send(int(fault.kind), page, "text/html")
            return
        if (fault is not None and fault.kind == "401") or key != fake.api_key:
            status, body = ERRORS["invalid_key"]
            fake._record(path, params, status)
            self._send_json(status, body)
            return
        if (fault is not None and fault.kind == "429") or fake._over_limit():
            status, body = ERRORS["rate_limited"]
            retry_after = fault.retry_after if fault is not None else fake.retry_after
            fake._record(path, params, status)
            self._send_json(status, body, {"Retry-After": retry_after} if retry_after else None)
            return

        status, body = fake.answer(path, params)
        fake._record(path, params, status)
        if fault is not None and fault.kind == "truncated" and status == 200:
            data = dumps(body)
            self._send(200, data[: max(1, len(data) // 2)], "application/json;charset=utf-8")
            return
        self._send_json(status, body)


@contextlib.contextmanager
def serve_fake_tmdb(
    *,
    api_key: str,
    imdb_csv: str | Path | None = None,
    movies: int = 400,
    seed: int = 27,
    latency_ms: float = 0.0,
    rate_limit: float | None = None,
    port: int = 0,
    day: int = 1,
) -> Iterator[str]:
    """Run a fake TMDB on 127.0.0.1 for the ``with`` block; yield its base URL (``.../3``).

    ``imdb_csv`` links the CSV's horror titles to TMDB movies (by ``imdb_id``); ``movies``
    is the number of horror movies in all. Point ``TMDB_BASE_URL`` at the yielded URL and
    use ``api_key`` as ``TMDB_API_KEY``. ``day`` serves that day of the catalogue (from day 2
    on, other popularity and vote counts: ``fake_tmdb.catalogue.on_day``).
    """
    catalogue = build_catalogue(movies=movies, seed=seed, imdb_csv=imdb_csv, day=day)
    with FakeTMDb(
        catalogue, api_key=api_key, latency_ms=latency_ms, rate_limit=rate_limit, port=port
    ) as server:
        yield server.base_url
