"""The TMDB API v3 client: every detail of tmdbv3api and of TMDB's HTTP behaviour lives here.

tmdbv3api 1.10 holds the configuration (base URL, API key, language, the HTTP session), but its
own request path is not safe for a bulk extraction, so requests go through :meth:`TMDbClient.get`:

- its response cache is on by default, calls bare ``requests.request`` (bypassing any session)
  and caches error responses, so a 429 would be replayed forever: here the cache is off;
- it keeps the key, the language and even the paging totals in ``os.environ`` (process-global,
  racy across threads): here :class:`_TMDbConfig` keeps them on the instance and never writes
  ``os.environ``;
- it sets no timeout and checks no status (a 502 HTML page raises ``JSONDecodeError``, a 429 a
  bare ``TMDbException``) and wraps bodies in ``AsObj``: here every call has a timeout, 429 and
  5xx are retried with exponential backoff and jitter (honouring ``Retry-After``), other 4xx are
  not, and the body is kept as the exact text the server sent, for raw.

The key travels in the query string, as tmdbv3api sends it. It is redacted from every message
this module produces, from the texts of requests/urllib3 exceptions it re-raises (the originals
are never chained) and from urllib3's debug log of request lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tmdbv3api import TMDb

from ingestion.rate_limit import RateLimitCancelled, TokenBucket
from ingestion.settings import Secret

log = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 24


class TMDbError(RuntimeError):
    """A TMDB request failed; the message says which request, why, and what to do."""


class TMDbAuthError(TMDbError):
    """401: the API key was refused. Retrying cannot help."""


class TMDbNotFoundError(TMDbError):
    """404: the resource does not exist (a movie id TMDB no longer has)."""


class TMDbRequestError(TMDbError):
    """A request that cannot succeed: a 4xx other than 401/404/429, or retries used up."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TMDbCancelledError(TMDbError):
    """The run was cancelled (another request failed fatally, or the deadline passed)."""


_KEY_IN_URL = re.compile(r"(api_key=)[^&\s'\"<>]*", re.IGNORECASE)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without any ``api_key=...`` value and without any of ``secrets``."""
    text = _KEY_IN_URL.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class _RedactKeys(logging.Filter):
    """Rewrites urllib3's request-line debug records (they carry the URL, key included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message.lower():
            record.msg = redact(message)
            record.args = ()
        return True


_REDACTING_FILTER = _RedactKeys()


def _install_log_redaction() -> None:
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
        logger = logging.getLogger(name)
        if _REDACTING_FILTER not in logger.filters:
            logger.addFilter(_REDACTING_FILTER)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests pass small delays; production keeps the defaults."""

    max_attempts: int = 8
    backoff_base: float = 0.5  # seconds; attempt n waits up to base * 2**n (full jitter)
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0  # never wait longer than this on a Retry-After
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class ApiResponse:
    """One successful response, with what is needed to keep it verbatim in raw."""

    path: str
    params: dict[str, Any]  # the request parameters, never the key
    status: int
    text: str  # the body exactly as sent
    data: Any  # the parsed body
    fetched_at: str  # ISO-8601 UTC with milliseconds and a Z

    def raw_record(self) -> str:
        """One JSON line: ``{"fetched_at", "request": {"path", "params"}, "status", "response"}``.

        The response is embedded as the exact text the server sent when that text is one line
        of JSON (TMDB's always is); otherwise it is re-serialized from the parsed body.
        """
        head = json.dumps(
            {
                "fetched_at": self.fetched_at,
                "request": {"path": self.path, "params": self.params},
                "status": self.status,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        body = self.text.strip()
        if "\n" in body or "\r" in body:
            body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f'{head[:-1]},"response":{body}}}'


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    not_found: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "not_found": self.not_found,
                "rate_limited": self.rate_limited,
                "server_errors": self.server_errors,
                "transport_errors": self.transport_errors,
            }


class _TMDbConfig(TMDb):
    """tmdbv3api's ``TMDb`` holding its configuration on the instance, not in ``os.environ``.

    ``TMDb.__init__`` is not called: it stores the session on the class and writes a default
    ``TMDB_LANGUAGE`` into ``os.environ`` (where our own settings would later read it). The
    attributes it sets are set here instead, and the properties that read ``os.environ``
    (key, language, cache) are overridden to read the instance.
    """

    def __init__(
        self, *, api_key: str, language: str, base_url: str, session: requests.Session
    ) -> None:
        self._base = base_url.rstrip("/")  # tmdbv3api hard-codes this per instance
        self._remaining = 40
        self._reset = None
        self.obj_cached = False  # its lru cache replays error responses
        self._key = api_key
        self._lang = language
        self.http = session

    @property
    def api_key(self) -> str:  # type: ignore[override]
        return self._key

    @property
    def language(self) -> str:  # type: ignore[override]
        return self._lang

    @property
    def cache(self) -> bool:  # type: ignore[override]
        return False

    def _request_obj(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "tmdbv3api's request path is disabled here (no timeout, caches errors, key in "
            "os.environ): use TMDbClient.get"
        )


def build_session(pool_size: int = DEFAULT_POOL_SIZE) -> requests.Session:
    """A ``requests`` session whose connection pool fits ``pool_size`` concurrent workers.

    Retries are ours (with the shared rate limit), so the adapter's own are off.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["Accept"] = "application/json"
    return session


def _utc_now_iso() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _error_message(text: str) -> str:
    """TMDB's ``status_message`` when the body is its error JSON; else a short excerpt."""
    try:
        body = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:120] or "(empty body)"
    if isinstance(body, dict) and "status_message" in body:
        return f"{body.get('status_message')} (TMDB status_code {body.get('status_code')})"
    return " ".join(text.split())[:120]


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class TMDbClient:
    """Thread-safe GETs against TMDB v3 under one shared :class:`TokenBucket`."""

    def __init__(
        self,
        *,
        api_key: Secret | str,
        base_url: str,
        language: str,
        bucket: TokenBucket,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        key = api_key.reveal() if isinstance(api_key, Secret) else api_key
        if not key:
            raise TMDbAuthError(
                "no TMDB API key: set TMDB_API_KEY or TMDB_API_KEY_FILE (a file holding the key)"
            )
        _install_log_redaction()
        self._config = _TMDbConfig(
            api_key=key,
            language=language,
            base_url=base_url,
            session=session or build_session(pool_size),
        )
        self.bucket = bucket
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self.cancel_event = threading.Event()
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self._config._base

    @property
    def language(self) -> str:
        return self._config.language

    def redact(self, text: str) -> str:
        return redact(text, (self._config.api_key,))

    def cancel(self) -> None:
        """Stop every request waiting for a slot or a backoff; in-flight ones end on timeout."""
        self.cancel_event.set()

    def close(self) -> None:
        self._config.http.close()

    # -- the endpoints the extraction uses ---------------------------------------------------
    def discover_movies(self, params: Mapping[str, Any]) -> ApiResponse:
        return self.get("/discover/movie", params)

    def movie_details(self, movie_id: int) -> ApiResponse:
        return self.get(f"/movie/{int(movie_id)}", {})

    def genre_list(self, language: str | None = None) -> ApiResponse:
        return self.get("/genre/movie/list", {"language": language or self.language})

    # -- the one request path -------------------------------------------------------------
    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self.cancel_event.wait(seconds):
            raise TMDbCancelledError("cancelled during a retry backoff")

    def _backoff(self, attempt: int) -> float:
        with self._rng_lock:
            return self.retry.backoff(attempt, self._rng)

    def get(self, path: str, params: Mapping[str, Any]) -> ApiResponse:
        """GET ``path`` (e.g. ``/discover/movie``) and return the verbatim, parsed response.

        ``language`` defaults to the client's. Raises :class:`TMDbNotFoundError` on 404,
        :class:`TMDbAuthError` on 401, :class:`TMDbRequestError` on another 4xx or when
        ``max_attempts`` attempts all failed with 429, 5xx, a timeout, a broken connection or
        a truncated body.
        """
        public = {"language": self.language, **params}
        public.pop("api_key", None)
        query = {"api_key": self._config.api_key, **public}
        url = f"{self._config._base}{path}"
        described = f"GET {path} {json.dumps(public, sort_keys=True)}"
        policy = self.retry
        last_problem = ""
        for attempt in range(policy.max_attempts):
            if self.cancel_event.is_set():
                raise TMDbCancelledError(f"{described}: cancelled")
            if attempt:
                self.stats.add(retries=1)
            try:
                self.bucket.acquire(self.cancel_event)
            except RateLimitCancelled:
                raise TMDbCancelledError(f"{described}: cancelled") from None
            self.stats.add(requests=1)
            fetched_at = _utc_now_iso()
            try:
                response = self._config.http.get(
                    url, params=query, timeout=(policy.connect_timeout, policy.read_timeout)
                )
                body = response.content  # read here: a cut-off body raises inside the try
            except requests.RequestException as exc:
                self.stats.add(transport_errors=1)
                last_problem = f"{type(exc).__name__}: {self.redact(str(exc))}"
                log.warning("%s: %s (attempt %d)", described, last_problem, attempt + 1)
                self._wait(self._backoff(attempt))
                continue
            status = response.status_code
            text = body.decode("utf-8", errors="replace")  # JSON is UTF-8 (RFC 8259)
            if status == 200:
                try:
                    text = body.decode("utf-8")
                    data = json.loads(text)
                except ValueError:
                    self.stats.add(transport_errors=1)
                    last_problem = (
                        f"HTTP 200 with a body that is not complete JSON ({len(text)} chars)"
                    )
                    log.warning("%s: %s (attempt %d)", described, last_problem, attempt + 1)
                    self._wait(self._backoff(attempt))
                    continue
                return ApiResponse(path, public, status, text, data, fetched_at)
            if status == 429:
                self.stats.add(rate_limited=1)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                if retry_after is not None:
                    wait = min(retry_after, policy.retry_after_cap) + self._backoff(0) / 10
                    self.bucket.pause_for(wait)  # every worker holds back, not only this one
                else:
                    wait = self._backoff(attempt)
                last_problem = f"HTTP 429 rate limited: {self.redact(_error_message(text))}"
                log.info("%s: 429, waiting %.2fs (attempt %d)", described, wait, attempt + 1)
                self._wait(wait)
                continue
            if status >= 500:
                self.stats.add(server_errors=1)
                last_problem = f"HTTP {status}: {self.redact(_error_message(text))}"
                log.warning("%s: %s (attempt %d)", described, last_problem, attempt + 1)
                self._wait(self._backoff(attempt))
                continue
            message = self.redact(_error_message(text))
            if status == 401:
                raise TMDbAuthError(
                    f"{described}: HTTP 401 {message}. The API key was refused: check "
                    "TMDB_API_KEY / TMDB_API_KEY_FILE (or the secret the Lambda reads) and "
                    f"that TMDB_BASE_URL ({self.base_url}) is the API you meant."
                )
            if status == 404:
                self.stats.add(not_found=1)
                raise TMDbNotFoundError(f"{described}: HTTP 404 {message}")
            raise TMDbRequestError(
                f"{described}: HTTP {status} {message}; a client error is not retried: "
                "check the request parameters",
                status,
            )
        raise TMDbRequestError(
            f"{described}: gave up after {policy.max_attempts} attempts; last problem: "
            f"{last_problem}. TMDB ({self.base_url}) may be down or overloaded: run again "
            "later (the day's partition is redone from scratch)."
        )
