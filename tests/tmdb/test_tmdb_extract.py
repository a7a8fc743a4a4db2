"""The TMDB extraction end to end against the fake server, into a lake folder."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tmdb_helpers import (
    API_KEY,
    FAST_RETRY,
    RUN_DATE,
    discover_ids,
    lake_records,
    make_settings,
    manifest_of,
)

from fake_tmdb import Catalogue, FakeTMDb, build_catalogue
from ingestion.cli import main
from ingestion.lake import LocalLake
from ingestion.tmdb_client import TMDbAuthError, TMDbRequestError
from ingestion.tmdb_discover import MAX_RESULTS
from ingestion.tmdb_landing import extract
from ingestion.tmdb_raw import partition_prefix

HORROR = 27
RUN_DAY = dt.date.fromisoformat(RUN_DATE)
ROOT = Path(__file__).resolve().parents[2]


def run(server: FakeTMDb, lake: LocalLake, **options: object):
    settings_overrides = {k: options.pop(k) for k in list(options) if k.startswith("tmdb_")}
    if "run_date" in options:
        settings_overrides["run_date"] = options.pop("run_date")
    settings = make_settings(server.base_url, lake.root, **settings_overrides)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("workers", 8)
    return extract(settings, lake, **options)


def window_records(records: list[dict]) -> list[dict]:
    return [r for r in records if "primary_release_date.gte" in r["request"]["params"]]


def remainder_records(records: list[dict]) -> list[dict]:
    return [r for r in records if "primary_release_date.gte" not in r["request"]["params"]]


def reachable_undated(catalogue: Catalogue) -> set[int]:
    """Undated horror movies within the first 10,000 of the genre by popularity."""
    horror = [m for m in catalogue.movies if HORROR in m.genre_ids]
    top = sorted(horror, key=lambda m: (-m.popularity, m.id))[:MAX_RESULTS]
    return {m.id for m in top if not m.release_date}


def assert_complete(catalogue: Catalogue, lake: LocalLake, day: str = RUN_DATE) -> None:
    """Every reachable horror id exactly once in the windows and in the details, none missing."""
    discover = lake_records(lake, "discover", day)
    in_windows = Counter(discover_ids(window_records(discover)))
    dated = catalogue.ids_with_genre(HORROR) - catalogue.undated_ids(HORROR)
    assert set(in_windows) == dated
    assert max(in_windows.values()) == 1, "an id came twice from disjoint windows"
    from_remainder = set(discover_ids(remainder_records(discover))) - set(in_windows)
    assert from_remainder == reachable_undated(catalogue)

    details = Counter(r["response"]["id"] for r in lake_records(lake, "movie_details", day))
    assert set(details) == set(in_windows) | from_remainder
    assert max(details.values()) == 1


@pytest.mark.slow  # end to end at full scale: 10,500 movies from a server in its own process
def test_extracts_more_than_10000_horror_movies_completely(tmp_path: Path) -> None:
    # The server runs as `python -m fake_tmdb` in its own process (the other core); the same
    # seed builds the same catalogue here, to check against.
    catalogue = build_catalogue(movies=10_500, seed=11)
    assert len(catalogue.ids_with_genre(HORROR)) > MAX_RESULTS
    lake = LocalLake(tmp_path / "lake")
    command = [sys.executable, "-m", "fake_tmdb", "--port", "0", "--movies", "10500",
               "--seed", "11", "--api-key", API_KEY]  # fmt: skip
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        settings = make_settings(base_url, lake.root, tmdb_rate_limit=100_000)
        stats = extract(settings, lake, retry=FAST_RETRY, workers=16)
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert_complete(catalogue, lake)
    manifest = manifest_of(lake, "discover")
    windows = [w for w in manifest["windows"] if w["gte"] is not None]
    assert manifest["splits"] >= 1 and len(windows) >= 2
    assert all(w["total_results"] <= MAX_RESULTS for w in windows)
    assert sum(w["total_results"] for w in windows) == len(
        catalogue.ids_with_genre(HORROR) - catalogue.undated_ids(HORROR)
    )
    unreached = catalogue.undated_ids(HORROR) - reachable_undated(catalogue)
    assert manifest["windows"][-1]["unreached"] == len(unreached) == stats.remainder_unreached
    # Details carry what the IMDb join needs.
    by_id = {r["response"]["id"]: r["response"] for r in lake_records(lake, "movie_details")}
    some = next(m for m in catalogue.movies if m.id in by_id and m.imdb_id)
    assert by_id[some.id]["imdb_id"] == some.imdb_id
    assert {"runtime", "budget", "revenue", "genres"} <= set(by_id[some.id])
    assert stats.details_fetched == len(by_id)


def test_raw_layout_and_manifests_follow_the_contract(fake_tmdb: FakeTMDb, lake: LocalLake) -> None:
    stats = run(fake_tmdb, lake, max_file_bytes=20_000)
    for dataset in ("genres", "discover", "movie_details"):
        prefix = partition_prefix(dataset, RUN_DAY)
        assert prefix == f"raw/tmdb/json/{dataset}/year=2024/month=05/day=01/"
        keys = lake.list(prefix)
        manifest = manifest_of(lake, dataset)
        data_keys = [f["key"] for f in manifest["files"]]
        assert sorted(keys) == sorted([*data_keys, prefix + "_manifest.json", prefix + "_SUCCESS"])
        assert all(k.startswith(f"{prefix}part-{stats.run_id}-") for k in data_keys)
        assert all(k.endswith(".jsonl") for k in data_keys)
        for entry in manifest["files"]:
            body = lake.get_bytes(entry["key"])
            assert len(body) == entry["bytes"]
            assert len(body.splitlines()) == entry["records"]
            # bounded: a file holds more than one record only while under the bound
            assert entry["bytes"] <= 20_000 or entry["records"] == 1
        assert manifest["records"] == sum(f["records"] for f in manifest["files"])
        for field in ("run_id", "started_at", "finished_at", "duration_seconds", "genre_id"):
            assert field in manifest
        assert {"language", "requests", "retries", "skipped_ids", "windows"} <= set(manifest)
        for record in lake_records(lake, dataset):
            assert set(record) == {"fetched_at", "request", "status", "response"}
            assert "api_key" not in record["request"]["params"]
    assert len(manifest_of(lake, "discover")["files"]) > 1  # the bound made several files
    genres = lake_records(lake, "genres")
    names = {r["request"]["params"]["language"]: r["response"]["genres"] for r in genres}
    assert {g["id"]: g["name"] for g in names["pt-BR"]}[27] == "Terror"
    assert {g["id"]: g["name"] for g in names["en-US"]}[27] == "Horror"


def test_run_completes_exactly_once_under_injected_faults(
    fake_tmdb: FakeTMDb, lake: LocalLake
) -> None:
    fake_tmdb.inject("429", 1, retry_after="1")
    fake_tmdb.inject("429", 6, path_prefix="/3/discover/movie")  # a burst, no Retry-After
    fake_tmdb.inject("truncated", 3, path_prefix="/3/discover/movie")
    fake_tmdb.inject("500", 3, path_prefix="/3/movie/")
    fake_tmdb.inject("502", 3, path_prefix="/3/movie/")
    fake_tmdb.inject("hang", 2, path_prefix="/3/movie/", seconds=3)
    fake_tmdb.inject("429", 5, path_prefix="/3/movie/")
    stats = run(fake_tmdb, lake)

    assert_complete(fake_tmdb.catalogue, lake)
    statuses = Counter(r.status for r in fake_tmdb.log)
    assert statuses[429] == 12 and statuses[500] == 3 and statuses[502] == 3 and statuses[0] == 2
    assert stats.retries >= 12 + 3 + 3 + 3 + 2
    manifests = [manifest_of(lake, d) for d in ("genres", "discover", "movie_details")]
    assert sum(m["retries"] for m in manifests) == stats.retries


def test_persistent_5xx_fails_the_cli_with_a_clear_error_and_no_success(
    fake_tmdb: FakeTMDb,
    lake: LocalLake,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TMDB_API_KEY", API_KEY)
    fake_tmdb.inject("500", None, path_prefix="/3/movie/")
    code = main(
        [
            "tmdb",
            "--lake-uri", str(lake.root),
            "--tmdb-base-url", fake_tmdb.base_url,
            "--run-date", RUN_DATE,
            "--tmdb-rate-limit", "5000",
            "--backoff-base", "0.01",
            "--max-attempts", "4",
        ]
    )  # fmt: skip
    assert code != 0
    assert "gave up after 4 attempts" in caplog.text and "HTTP 500" in caplog.text
    details = partition_prefix("movie_details", RUN_DAY)
    assert not lake.exists(details + "_SUCCESS")
    assert not lake.exists(details + "_manifest.json")
    # The datasets before it were complete and stay so.
    assert lake.exists(partition_prefix("discover", RUN_DAY) + "_SUCCESS")


def test_failed_run_is_redone_without_duplicates(fake_tmdb: FakeTMDb, lake: LocalLake) -> None:
    # The first 60 detail requests succeed (some files get written), then every one fails:
    # the partition is left with data files and no _SUCCESS.
    ok_first = 60
    original_answer = fake_tmdb.answer
    served = {"n": 0}

    def flaky(path: str, params: dict[str, str]):
        if path.startswith("/3/movie/"):
            served["n"] += 1
            if served["n"] > ok_first:
                fake_tmdb.inject("502", None, path_prefix="/3/movie/")
        return original_answer(path, params)

    fake_tmdb.answer = flaky  # type: ignore[method-assign]
    with pytest.raises(TMDbRequestError):
        run(fake_tmdb, lake, max_file_bytes=2_000, workers=2)
    details = partition_prefix("movie_details", RUN_DAY)
    leftovers = lake.list(details)
    assert leftovers and not lake.exists(details + "_SUCCESS")

    fake_tmdb.answer = original_answer  # type: ignore[method-assign]
    fake_tmdb.clear_faults()
    fake_tmdb.clear_log()
    run(fake_tmdb, lake, max_file_bytes=2_000)
    assert not set(leftovers) & set(lake.list(details))  # the leftovers were removed
    assert_complete(fake_tmdb.catalogue, lake)
    paths = {r.path for r in fake_tmdb.log}
    assert "/3/discover/movie" not in paths  # discover was complete: not fetched again


def test_second_run_same_day_writes_nothing_and_fetches_no_details(
    fake_tmdb: FakeTMDb, lake: LocalLake
) -> None:
    run(fake_tmdb, lake)
    before = {key: lake.get_bytes(key) for key in lake.list("raw/")}
    fake_tmdb.clear_log()
    stats = run(fake_tmdb, lake)
    assert not [r for r in fake_tmdb.log if r.path.startswith("/3/movie/")]
    assert fake_tmdb.log == []  # every partition of the day was complete: no request at all
    assert {key: lake.get_bytes(key) for key in lake.list("raw/")} == before
    assert {d.status for d in stats.datasets.values()} == {"already_complete"}
    assert_complete(fake_tmdb.catalogue, lake)


def test_next_day_fetches_details_of_new_movies_only(
    small_catalogue: Catalogue, lake: LocalLake
) -> None:
    new_horror = set(sorted(small_catalogue.ids_with_genre(HORROR))[::7])  # released today
    yesterday = Catalogue(m for m in small_catalogue.movies if m.id not in new_horror)
    with FakeTMDb(yesterday, api_key=API_KEY) as server:
        run(server, lake, run_date="2024-04-30")

    with FakeTMDb(small_catalogue, api_key=API_KEY) as server:
        stats = run(server, lake)
        fetched = {
            int(r.path.rsplit("/", 1)[1]) for r in server.log if r.path.startswith("/3/movie/")
        }
    assert fetched == new_horror
    assert stats.details_fetched == len(new_horror)
    assert manifest_of(lake, "movie_details")["movie_ids"] == sorted(new_horror)

    with FakeTMDb(small_catalogue, api_key=API_KEY) as server:
        refreshed = run(server, lake, run_date="2024-05-02", refresh_details=True)
    assert refreshed.details_fetched == len(small_catalogue.ids_with_genre(HORROR))


def test_deleted_movies_are_skipped_and_counted(
    small_catalogue: Catalogue, lake: LocalLake
) -> None:
    with FakeTMDb(small_catalogue, api_key=API_KEY) as server:
        gone = sorted(small_catalogue.ids_with_genre(HORROR))[:3]
        original_answer = server.answer

        def answer(path: str, params: dict[str, str]):
            if path in {f"/3/movie/{i}" for i in gone}:
                return 404, {"success": False, "status_code": 34, "status_message": "gone"}
            return original_answer(path, params)

        server.answer = answer  # type: ignore[method-assign]
        stats = run(server, lake)
    assert stats.skipped_ids == gone
    assert manifest_of(lake, "movie_details")["skipped_ids"] == gone
    assert not set(gone) & {r["response"]["id"] for r in lake_records(lake, "movie_details")}


def test_small_run_caps_pages_and_movies(fake_tmdb: FakeTMDb, lake: LocalLake) -> None:
    stats = run(fake_tmdb, lake, max_pages=3, max_movies=5)
    assert len(lake_records(lake, "discover")) == 3
    assert manifest_of(lake, "discover")["capped"] is True
    assert len(lake_records(lake, "movie_details")) == 5 == stats.details_fetched


def test_wrong_key_stops_the_run_at_the_first_request(fake_tmdb: FakeTMDb, lake: LocalLake) -> None:
    settings = make_settings(fake_tmdb.base_url, lake.root, tmdb_api_key="not-the-key-77")
    with pytest.raises(TMDbAuthError, match="401"):
        extract(settings, lake, retry=FAST_RETRY)
    assert len(fake_tmdb.log) <= 2  # the genre requests in flight; nothing retried
    assert not [k for k in lake.list("raw/") if k.endswith("_SUCCESS")]


def test_cli_without_a_key_stops_before_doing_anything(
    fake_tmdb: FakeTMDb, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake_dir = tmp_path / "never-created"
    code = main(["tmdb", "--lake-uri", str(lake_dir), "--tmdb-base-url", fake_tmdb.base_url])
    assert code != 0
    assert "TMDB_API_KEY" in caplog.text and "TMDB_API_KEY_FILE" in caplog.text
    assert not lake_dir.exists()
    assert fake_tmdb.log == []


def test_api_key_appears_in_no_log_output_manifest_or_raw_file(
    fake_tmdb: FakeTMDb,
    lake: LocalLake,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TMDB_API_KEY", API_KEY)
    common = ["--lake-uri", str(lake.root), "--tmdb-base-url", fake_tmdb.base_url,
              "--run-date", RUN_DATE, "--tmdb-rate-limit", "5000", "--backoff-base", "0.01",
              "--read-timeout", "0.5", "--max-attempts", "6"]  # fmt: skip
    fake_tmdb.inject("500", 2)
    fake_tmdb.inject("hang", 1, seconds=2)
    fake_tmdb.inject("429", 2)
    assert main(["-v", "tmdb", *common, "--max-movies", "30"]) == 0
    # A failing run too: its error text goes to the log.
    fake_tmdb.inject("502", None)
    assert main(["-v", "tmdb", *common, "--run-date", "2024-05-02"]) != 0

    out, err = capsys.readouterr()
    assert "api_key=***" in caplog.text  # urllib3's request lines were there, redacted
    for text in (out, err, caplog.text):
        assert API_KEY not in text
    files = [p for p in lake.root.rglob("*") if p.is_file()]
    assert any(p.name == "_manifest.json" for p in files)
    for path in files:
        assert API_KEY.encode() not in path.read_bytes(), path


def test_records_request_params_per_dataset(fake_tmdb: FakeTMDb, lake: LocalLake) -> None:
    run(fake_tmdb, lake, tmdb_language="en-US")
    discover = lake_records(lake, "discover")
    params = window_records(discover)[0]["request"]["params"]
    assert params["with_genres"] == "27" and params["language"] == "en-US"
    assert params["sort_by"] == "primary_release_date.asc" and isinstance(params["page"], int)
    details = lake_records(lake, "movie_details")[0]
    assert details["request"]["path"] == f"/movie/{details['response']['id']}"
    assert json.dumps(details["request"]["params"]) == '{"language": "en-US"}'
