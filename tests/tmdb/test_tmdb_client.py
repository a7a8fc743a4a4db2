"""The TMDB client against the fake server: retries, errors, timeouts, and no key anywhere."""

from __future__ import annotations

import json
import logging
import os
import socket
import time

import pytest
from tmdb_helpers import API_KEY, FAST_RETRY
from tmdbv3api import TMDb

from fake_tmdb import FakeTMDb
from ingestion.rate_limit import TokenBucket
from ingestion.tmdb_client import (
    TMDbAuthError,
    TMDbClient,
    TMDbNotFoundError,
    TMDbRequestError,
)


def client_for(base_url: str, key: str = API_KEY, language: str = "pt-BR") -> TMDbClient:
    return TMDbClient(
        api_key=key,
        base_url=base_url,
        language=language,
        bucket=TokenBucket(1000),
        retry=FAST_RETRY,
        pool_size=4,
    )


def test_configuration_is_held_by_tmdbv3api_without_touching_os_environ(
    fake_tmdb: FakeTMDb,
) -> None:
    client = client_for(fake_tmdb.base_url)
    client.genre_list()
    assert isinstance(client._config, TMDb)
    assert client._config._base == fake_tmdb.base_url
    assert client._config.cache is False and client._config.obj_cached is False
    assert client._config.language == "pt-BR"
    # tmdbv3api would keep the key, the language and paging totals process-wide.
    for var in ("TMDB_API_KEY", "TMDB_LANGUAGE", "page", "total_results", "total_pages"):
        assert var not in os.environ
    with pytest.raises(NotImplementedError):
        client._config._request_obj("/genre/movie/list")


def test_response_is_kept_verbatim_with_its_request_and_without_the_key(
    fake_tmdb: FakeTMDb,
) -> None:
    client = client_for(fake_tmdb.base_url)
    response = client.discover_movies({"with_genres": "27", "page": 2})
    record = json.loads(response.raw_record())
    assert record["status"] == 200
    assert record["request"] == {
        "path": "/discover/movie",
        "params": {"language": "pt-BR", "with_genres": "27", "page": 2},
    }
    assert record["response"] == response.data and response.data["page"] == 2
    # The exact text the server sent is embedded, not a re-serialization.
    assert response.raw_record().endswith(',"response":' + response.text + "}")
    assert record["fetched_at"].endswith("Z") and len(record["fetched_at"]) == 24
    assert API_KEY not in response.raw_record()


def test_genre_names_follow_the_language(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    pt = {g["id"]: g["name"] for g in client.genre_list("pt-BR").data["genres"]}
    en = {g["id"]: g["name"] for g in client.genre_list("en-US").data["genres"]}
    assert (pt[27], en[27]) == ("Terror", "Horror")


def test_429_with_retry_after_is_waited_out_and_retried(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    fake_tmdb.inject("429", 1, retry_after="1")
    started = time.monotonic()
    response = client.genre_list()
    assert response.status == 200
    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    assert client.stats.snapshot()["rate_limited"] == 1
    assert [r.status for r in fake_tmdb.log] == [429, 200]


def test_429_without_retry_after_backs_off_and_retries(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    fake_tmdb.inject("429", 3)
    assert client.genre_list().status == 200
    assert client.stats.snapshot()["retries"] == 3
    assert [r.status for r in fake_tmdb.log] == [429, 429, 429, 200]


def test_5xx_with_html_bodies_is_retried(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    fake_tmdb.inject("500", 2)
    fake_tmdb.inject("502", 1)
    response = client.movie_details(next(iter(fake_tmdb.catalogue.by_id)))
    assert response.status == 200
    assert [r.status for r in fake_tmdb.log] == [500, 500, 502, 200]
    assert client.stats.snapshot()["server_errors"] == 3


def test_truncated_json_is_retried(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    fake_tmdb.inject("truncated", 2)
    response = client.discover_movies({"with_genres": "27", "page": 1})
    assert len(response.data["results"]) == 20
    assert len(fake_tmdb.log) == 3


def test_a_hung_connection_times_out_and_is_retried(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    fake_tmdb.inject("hang", 1, seconds=5)
    started = time.monotonic()
    assert client.genre_list().status == 200
    assert time.monotonic() - started < 3  # the read timeout (0.5 s), not the 5 s hang
    assert [r.status for r in fake_tmdb.log] == [0, 200]


def test_404_raises_not_found_without_retrying(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    with pytest.raises(TMDbNotFoundError, match="could not be found"):
        client.movie_details(1)  # ids start at 2 in the fake catalogue
    assert len(fake_tmdb.log) == 1


def test_other_4xx_is_not_retried(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    with pytest.raises(TMDbRequestError, match="Invalid page") as info:
        client.discover_movies({"with_genres": "27", "page": 501})
    assert info.value.status == 400
    assert len(fake_tmdb.log) == 1


def test_401_is_a_clear_fatal_error_without_the_key(fake_tmdb: FakeTMDb) -> None:
    wrong = "wrong-key-4f1c9a"
    client = client_for(fake_tmdb.base_url, key=wrong)
    with pytest.raises(TMDbAuthError) as info:
        client.genre_list()
    message = str(info.value)
    assert "Invalid API key" in message and "TMDB_API_KEY" in message
    assert wrong not in message
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert len(fake_tmdb.log) == 1


def test_persistent_5xx_gives_up_with_a_clear_error(fake_tmdb: FakeTMDb) -> None:
    client = client_for(fake_tmdb.base_url)
    fake_tmdb.inject("502", None)
    with pytest.raises(TMDbRequestError, match="gave up after 6 attempts") as info:
        client.genre_list()
    assert "502" in str(info.value)
    assert len(fake_tmdb.log) == FAST_RETRY.max_attempts


def test_key_is_redacted_from_transport_errors_and_urllib3_logs(
    fake_tmdb: FakeTMDb, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_for(fake_tmdb.base_url).genre_list()  # urllib3 logs the request line at DEBUG
    assert "api_key=***" in caplog.text

    with socket.socket() as sock:  # a port nobody listens on: "connection refused"
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/3"
    with pytest.raises(TMDbRequestError) as info:
        client_for(dead).genre_list()
    assert "ConnectionError" in str(info.value)
    assert "api_key=***" in str(info.value)  # urllib3's text names the URL; the key is gone
    for text in (str(info.value), repr(info.value), caplog.text):
        assert API_KEY not in text
    assert info.value.__cause__ is None and info.value.__context__ is None
