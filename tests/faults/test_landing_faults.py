"""CSV landing killed midway, on a local lake and on S3 (moto_server): nothing partial is ever
visible, and a rerun ends byte for byte as an uninterrupted run, cleaning (and logging) what the
killed run left. Two landings of one day at once end clean: ``written`` and ``unchanged``, or
the second gives up with exit code 4 and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_helpers import (
    KILLED,
    ScratchLake,
    finish,
    leftovers,
    run,
    run_killed_after,
    start,
    visible_files,
)

from ingestion.exit_codes import ExitCode
from ingestion.settings import SAMPLE_DIR

pytestmark = pytest.mark.slow

DAY = "2024-03-01"
MOVIES = "raw/local/csv/movies/year=2024/month=03/day=01/"
SERIES = "raw/local/csv/series/year=2024/month=03/day=01/"
RUN_FIELDS = ("run_id", "landed_at")  # what differs between two runs by design


SAMPLE = {"MOVIES_CSV": str(SAMPLE_DIR / "movies.csv"),
          "SERIES_CSV": str(SAMPLE_DIR / "series.csv"), "RUN_DATE": DAY}  # fmt: skip


@pytest.fixture(scope="module")
def big_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A movies file of about 20 MiB (three 8 MiB chunks or parts, so a kill can fall between
    them) made of the sample's rows, and the sample's series file."""
    folder = tmp_path_factory.mktemp("sources")
    header, rows = (SAMPLE_DIR / "movies.csv").read_bytes().split(b"\n", 1)
    movies = folder / "movies.csv"
    movies.write_bytes(header + b"\n" + rows * 45)
    return {**SAMPLE, "MOVIES_CSV": str(movies)}


def _csv(scratch: ScratchLake, sources: dict[str, str], fault_at: str | None = None):  # noqa: ANN202
    return run(["csv", "--no-progress"], {**sources, **scratch.env}, fault_at)


def _manifests(files: dict[str, bytes], lake_view: ScratchLake) -> dict[str, dict]:
    out = {}
    for prefix in (MOVIES, SERIES):
        if lake_view.lake.exists(prefix + "_SUCCESS"):
            manifest = json.loads(lake_view.lake.get_bytes(prefix + "_manifest.json"))
            out[prefix] = {k: v for k, v in manifest.items() if k not in RUN_FIELDS}
    return out


Reference = tuple[dict[str, bytes], dict[str, dict]]


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[dict], Reference]]:
    """What an uninterrupted landing of ``sources`` leaves: the visible files and manifests."""
    from ingestion.lake import LocalLake

    made: dict[str, Reference] = {}

    def reference(sources: dict[str, str]) -> Reference:
        if sources["MOVIES_CSV"] not in made:
            root = tmp_path_factory.mktemp("reference") / "lake"
            scratch = ScratchLake({"LAKE_URI": str(root)}, LocalLake(root))
            done = _csv(scratch, sources)
            assert done.returncode == 0, done.describe()
            files = visible_files(scratch.lake)
            assert set(files) == {MOVIES + "movies.csv", SERIES + "series.csv"}
            assert files[MOVIES + "movies.csv"] == Path(sources["MOVIES_CSV"]).read_bytes()
            made[sources["MOVIES_CSV"]] = files, _manifests(files, scratch)
        return made[sources["MOVIES_CSV"]]

    yield reference


@pytest.fixture
def sources(request: pytest.FixtureRequest, size: str) -> dict[str, str]:
    """The sample, or (``size`` "big") the 20 MiB movies file."""
    return request.getfixturevalue("big_sources") if size == "big" else SAMPLE


@pytest.fixture
def reference(references: Callable[[dict], Reference], sources: dict[str, str]) -> Reference:
    return references(sources)


# (backend, fault point, partitions complete when killed, what the rerun says it cleaned,
#  size: "big" for the 20 MiB movies file, so that the kill falls between chunks or parts)
CASES = [
    ("local", "csv.locked", [], "took over the lock", "sample"),
    ("local", "lake.part_written:2", [], "removed 1 leftover(s)", "big"),  # a temporary file
    ("local", "csv.data_landed", [], "removed 1 leftover(s)", "sample"),  # no manifest
    ("local", "csv.manifest_written", [], "removed 2 leftover(s)", "sample"),  # no _SUCCESS
    ("local", "csv.success_written", [MOVIES], "removed the lock", "sample"),  # lock held
    ("local", "csv.manifest_written:2", [MOVIES], "removed 2 leftover(s)", "sample"),  # series
    ("s3", "csv.locked", [], "took over the lock", "sample"),
    ("s3", "lake.part_written:1", [], "(incomplete upload)", "big"),  # parts up, not completed
    ("s3", "csv.data_landed", [], "removed 1 leftover(s)", "sample"),
    ("s3", "csv.manifest_written", [], "removed 2 leftover(s)", "sample"),
    ("s3", "csv.success_written", [MOVIES], "removed the lock", "sample"),
]


@pytest.mark.parametrize(
    ("backend", "fault_at", "complete", "cleaned", "size"), CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)  # fmt: skip
def test_a_landing_killed_midway_shows_nothing_partial_and_a_rerun_ends_as_if_never_killed(
    scratch_lakes,  # noqa: ANN001
    sources: dict[str, str],
    reference: Reference,
    backend: str,
    fault_at: str,
    complete: list[str],
    cleaned: str,
    size: str,
) -> None:
    scratch = scratch_lakes(backend)
    killed = _csv(scratch, sources, fault_at)
    assert killed.returncode == KILLED, killed.describe()

    # In between, the next stage sees whole partitions or none.
    seen = visible_files(scratch.lake)
    assert sorted({k.rsplit("/", 1)[0] + "/" for k in seen}) == complete
    assert all(seen[k] == reference[0][k] for k in seen)
    assert leftovers(scratch.lake), "a killed run leaves something for the rerun to clean"

    again = _csv(scratch, sources)
    assert again.returncode == 0, again.describe()
    assert cleaned in again.stderr, again.describe()
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert statuses == [("unchanged" if p in complete else "written") for p in (MOVIES, SERIES)]

    files = visible_files(scratch.lake)
    assert files == reference[0]  # the same raw bytes, so no row twice and none missing
    assert _manifests(files, scratch) == reference[1]
    assert leftovers(scratch.lake) == []


@pytest.mark.parametrize("size", ["big"])
def test_a_landing_killed_after_a_delay_is_redone_too(
    scratch_lakes,
    sources: dict[str, str],
    reference: Reference,
    size: str,  # noqa: ANN001
) -> None:
    """Killed from outside at a moment of the run nobody chose (it may even have finished)."""
    scratch = scratch_lakes("local")
    env = {**sources, **scratch.env}
    killed = run_killed_after(["csv", "--no-progress"], env, delay=1.0)
    assert killed.returncode in (KILLED, 0), killed.describe()
    visible_files(scratch.lake)  # whatever is visible is whole
    again = _csv(scratch, sources)
    assert again.returncode == 0, again.describe()
    assert visible_files(scratch.lake) == reference[0] and leftovers(scratch.lake) == []


@pytest.mark.parametrize("size", ["big"])  # the first is still writing when the second looks
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_identical_landings_at_once_are_written_and_unchanged(
    scratch_lakes,
    sources: dict[str, str],
    reference: Reference,
    backend: str,
    size: str,  # noqa: ANN001
) -> None:
    scratch = scratch_lakes(backend)
    env = {**sources, **scratch.env}
    both = [start(["csv", "--no-progress"], env) for _ in range(2)]
    first, second = (finish(p) for p in both)
    assert first.returncode == second.returncode == 0, first.describe() + second.describe()
    for i, dataset in enumerate(("movies", "series")):
        statuses = sorted(json.loads(r.stdout.splitlines()[i])["status"] for r in (first, second))
        assert statuses == ["unchanged", "written"], dataset
    assert visible_files(scratch.lake) == reference[0]
    assert leftovers(scratch.lake) == []


def test_a_landing_that_finds_the_day_held_exits_busy_and_writes_nothing(
    scratch_lakes,  # noqa: ANN001
) -> None:
    scratch = scratch_lakes("local")
    with scratch.lake.lock(MOVIES, "20240301T090000Z-holder"):  # a live run: this process
        busy = run(["csv", "--no-progress", "--wait", "0.5"], {**SAMPLE, **scratch.env})
        assert busy.returncode == ExitCode.LOCKED == 4, busy.describe()
        assert "another run holds this day: run 20240301T090000Z-holder" in busy.stderr
        assert visible_files(scratch.lake) == {}
        assert scratch.lake.list("raw/") == [MOVIES + "_lock"]  # only the holder's lock
