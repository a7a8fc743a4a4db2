"""The TMDB extraction killed midway (against the fake TMDB server, into a local lake): nothing
partial is visible, and a rerun ends with the records of an uninterrupted run, none twice, and
no leftovers. Two runs of one day at once: the second stops with exit code 4 and writes
nothing. The API key never reaches a command line, a log line or a file of the lake."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import KILLED, ScratchLake, finish, leftovers, run, start, visible_files

from fake_tmdb import Catalogue, FakeTMDb, build_catalogue
from ingestion.exit_codes import ExitCode
from ingestion.lake import LocalLake
from ingestion.settings import SAMPLE_DIR

pytestmark = pytest.mark.slow

KEY = "tk-fault-suite-9f1c2e7d-never-shown"
DAY = "2024-05-01"
COMMAND = ["tmdb", "--max-pages", "4", "--max-movies", "40", "--max-file-bytes", "30000",
           "--workers", "4"]  # fmt: skip
DATASETS = ("genres", "discover", "movie_details")


def _prefix(dataset: str) -> str:
    return f"raw/tmdb/json/{dataset}/year=2024/month=05/day=01/"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return build_catalogue(movies=120, seed=11, imdb_csv=SAMPLE_DIR / "movies.csv")


@pytest.fixture(scope="module")
def server(catalogue: Catalogue) -> Iterator[FakeTMDb]:
    with FakeTMDb(catalogue, api_key=KEY) as fake:
        yield fake


def _env(server: FakeTMDb, scratch: ScratchLake, **extra: str) -> dict[str, str]:
    return {"TMDB_BASE_URL": server.base_url, "TMDB_API_KEY": KEY, "TMDB_RATE_LIMIT": "2000",
            "RUN_DATE": DAY, **scratch.env, **extra}  # fmt: skip


def _local(tmp_path: Path, name: str) -> ScratchLake:
    root = tmp_path / name
    return ScratchLake({"LAKE_URI": str(root)}, LocalLake(root))


def _records(files: dict[str, bytes]) -> dict[str, list[str]]:
    """Each dataset's records without their fetch time, sorted: what a run's result is."""
    out: dict[str, list[str]] = {d: [] for d in DATASETS}
    for key, data in files.items():
        dataset = key.split("/")[3]
        for line in data.splitlines():
            record = json.loads(line)
            record.pop("fetched_at")
            out[dataset].append(json.dumps(record, sort_keys=True))
    return {d: sorted(r) for d, r in out.items()}


@pytest.fixture(scope="module")
def reference(server: FakeTMDb, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    scratch = _local(tmp_path_factory.mktemp("tmdb-reference"), "lake")
    done = run(COMMAND, _env(server, scratch))
    assert done.returncode == 0, done.describe()
    records = _records(visible_files(scratch.lake))
    assert all(records.values()) and len(records["movie_details"]) == 40
    return records


LEFT = "leftover(s) of an unfinished run in raw/tmdb/json/"

# (fault point, datasets complete when killed, what the rerun says it cleaned)
CASES = [
    ("tmdb.file_written:1", [], f"removed 1 {LEFT}genres"),  # genres' file, no manifest
    ("tmdb.committed:1", ["genres"], "removed the lock of raw/tmdb/json/genres"),
    ("tmdb.file_written:2", ["genres"], f"removed 1 {LEFT}discover"),  # mid-snapshot
    ("tmdb.manifest_written:3", ["genres", "discover"], f"{LEFT}movie_details"),
    ("tmdb.committed:3", list(DATASETS), "removed the lock of raw/tmdb/json/movie_details"),
]


@pytest.mark.parametrize(("fault_at", "complete", "cleaned"), CASES, ids=[c[0] for c in CASES])
def test_an_extraction_killed_midway_shows_nothing_partial_and_a_rerun_ends_as_if_never_killed(
    server: FakeTMDb,
    reference: dict[str, list[str]],
    tmp_path: Path,
    fault_at: str,
    complete: list[str],
    cleaned: str,
) -> None:
    scratch = _local(tmp_path, "lake")
    killed = run(COMMAND, _env(server, scratch), fault_at)
    assert killed.returncode == KILLED, killed.describe()

    seen = _records(visible_files(scratch.lake))  # whole partitions, or none
    assert [d for d in DATASETS if seen[d]] == complete
    assert all(seen[d] == reference[d] for d in complete)
    assert leftovers(scratch.lake), "a killed run leaves something for the rerun to clean"

    again = run(COMMAND, _env(server, scratch))
    assert again.returncode == 0, again.describe()
    assert cleaned in again.stderr, again.describe()
    stats = json.loads(again.stdout)
    for dataset in DATASETS:
        expected = "already_complete" if dataset in complete else "written"
        assert stats["datasets"][dataset]["status"] == expected, dataset

    assert _records(visible_files(scratch.lake)) == reference  # no record twice, none missing
    assert leftovers(scratch.lake) == []


def test_a_second_extraction_of_the_day_stops_busy_while_the_first_runs(
    server: FakeTMDb, reference: dict[str, list[str]], tmp_path: Path
) -> None:
    scratch = _local(tmp_path, "lake")
    server.latency_ms = 250.0  # the first run takes a few seconds
    try:
        first = start(COMMAND, _env(server, scratch))
        deadline = time.monotonic() + 60
        while not scratch.lake.exists(_prefix("movie_details") + "_lock"):
            assert first.poll() is None and time.monotonic() < deadline, "no lock taken"
            time.sleep(0.05)
        second = run(COMMAND, _env(server, scratch))  # busy only while the first holds the day
        done = finish(first)
    finally:
        server.latency_ms = 0.0
    assert done.returncode == 0, done.describe()
    assert second.returncode == ExitCode.LOCKED == 4, second.describe()
    assert "another run holds this day" in second.stderr
    assert "stopped without writing anything" in second.stderr
    assert _records(visible_files(scratch.lake)) == reference
    assert leftovers(scratch.lake) == []
    after = run(COMMAND, _env(server, scratch))  # once it is done, a rerun finds it complete
    assert after.returncode == 0, after.describe()
    assert {d["status"] for d in json.loads(after.stdout)["datasets"].values()} == {
        "already_complete"
    }


def _watch_command_lines(proc) -> tuple[list[bytes], object]:  # noqa: ANN001
    """Read the process's command line from /proc until it ends."""
    seen = []
    while proc.poll() is None:
        try:
            seen.append(Path(f"/proc/{proc.pid}/cmdline").read_bytes())
        except OSError:
            break
        time.sleep(0.02)
    return seen, finish(proc)


def test_the_key_never_reaches_a_command_line_a_log_or_the_lake(
    server: FakeTMDb, tmp_path: Path
) -> None:
    scratch = _local(tmp_path, "lake")
    key_file = tmp_path / "tmdb.key"
    key_file.write_text(KEY + "\n")
    server.clear_log()
    by_file = _env(server, scratch, TMDB_API_KEY="", TMDB_API_KEY_FILE=str(key_file))
    by_env = _env(server, scratch, MOVIES_CSV=str(SAMPLE_DIR / "movies.csv"))
    runs = [
        _watch_command_lines(start(["-v", *COMMAND], by_file)),  # debug logs: every request
        _watch_command_lines(start(["-v", "csv", "--no-progress"], by_env)),
        _watch_command_lines(start(["settings"], by_env)),
    ]
    for command_lines, done in runs:
        assert done.returncode == 0, done.describe()  # type: ignore[attr-defined]
        assert any(b"ingestion" in line for line in command_lines)  # read while it ran
        assert not any(KEY.encode() in line for line in command_lines)
        assert KEY not in done.output  # type: ignore[attr-defined]
    assert '"tmdb_api_key": "<set>"' in runs[2][1].stdout  # type: ignore[attr-defined]
    assert any(r.status == 200 for r in server.log)  # the key was used: the server took it
    assert any(r.path.startswith("/3/movie/") for r in server.log)
    files = [p for p in scratch.lake.root.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
