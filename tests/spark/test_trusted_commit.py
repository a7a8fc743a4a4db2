"""How the trusted job puts a table in place (spark/trusted_commit.py), in each of its modes,
on a real local lake through Hadoop's FileSystem, including runs that die midway: a crash is
raised at the named fault point, then a new run recovers.

The ``object_store`` mode (S3) runs here on the local filesystem: it uses nothing but the
FileSystem calls an S3 filesystem has too (list, copy-and-delete rename, delete)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark.lake_io import LakeFS
from spark.trusted_commit import MODES, TableCommitter

pytestmark = pytest.mark.slow

DAY = "2024-01-02"


class Crash(Exception):
    """A run dying at a fault point (in-process stand-in for SIGKILL)."""


def crash_at(step: str):  # noqa: ANN201 - a fault callback
    def fault(name: str) -> None:
        if name == step:
            raise Crash(name)

    return fault


def frame(spark: SparkSession, ids: list[int], files: int = 3) -> DataFrame:
    return spark.createDataFrame([(i,) for i in ids], "id long").repartition(files)


def by_day(spark: SparkSession, rows: list[tuple[int, str]]) -> DataFrame:
    df = spark.createDataFrame(rows, "id long, d string")
    return df.select(
        "id",
        F.substring("d", 1, 4).alias("year"),
        F.substring("d", 6, 2).alias("month"),
        F.substring("d", 9, 2).alias("day"),
    )


def ids(spark: SparkSession, folder: Path) -> list[int]:
    return sorted(r.id for r in spark.read.parquet(str(folder)).collect())


def parts(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("part-*.parquet")}


@pytest.fixture
def lake(spark_session: SparkSession, tmp_path: Path) -> LakeFS:
    return LakeFS(spark_session, (tmp_path / "lake").as_uri())


def root(lake: LakeFS) -> Path:
    path = lake.local_path(lake.root)
    assert path is not None
    return path


@pytest.mark.parametrize("mode", MODES)
def test_a_table_is_replaced_whole(spark_session: SparkSession, lake: LakeFS, mode: str) -> None:
    live = root(lake) / "trusted" / "t"
    first = TableCommitter(lake, DAY, "run-1", mode=mode)
    first.write(frame(spark_session, [1, 2, 3]), lake.uri("trusted/t"))
    first.finish()
    old = parts(live)
    second = TableCommitter(lake, DAY, "run-2", mode=mode)
    second.write(frame(spark_session, [4, 5]), lake.uri("trusted/t"))
    second.finish()
    assert ids(spark_session, live) == [4, 5]
    assert parts(live) and parts(live).isdisjoint(old)
    assert (live / "_SUCCESS").exists()
    assert not (root(lake) / "trusted" / "_staging").exists()


@pytest.mark.parametrize("mode", MODES)
def test_a_partitioned_table_is_replaced_one_partition_at_a_time(
    spark_session: SparkSession, lake: LakeFS, mode: str
) -> None:
    live = root(lake) / "trusted" / "_rejected" / "t"
    uri, columns = lake.uri("trusted/_rejected/t"), ("year", "month", "day")
    first = TableCommitter(lake, DAY, "run-1", mode=mode)
    first.write(by_day(spark_session, [(1, "2024-01-01"), (2, "2024-01-02")]), uri, columns)
    first.finish()
    day1 = live / "year=2024" / "month=01" / "day=01"
    day1_files = {p.name: p.stat().st_mtime_ns for p in day1.iterdir()}
    second = TableCommitter(lake, DAY, "run-2", mode=mode)
    second.write(by_day(spark_session, [(3, "2024-01-02"), (4, "2024-01-02")]), uri, columns)
    second.finish()
    assert {p.name: p.stat().st_mtime_ns for p in day1.iterdir()} == day1_files
    assert ids(spark_session, live) == [1, 3, 4]
    assert ids(spark_session, live / "year=2024" / "month=01" / "day=02") == [3, 4]


@pytest.mark.parametrize(
    ("mode", "visible_after_crash", "after_recovery"),
    [
        # one atomic exchange: the new table is in place, the old one waits in staging
        ("exchange", [4, 5], [4, 5]),
        # moved aside, not yet replaced: absent (never partial); recovery puts the old one back
        ("rename", None, [1, 2, 3]),
        # S3: objects deleted, one moved in: partial until a run rolls the journal forward
        ("object_store", "partial", [4, 5]),
    ],
)
def test_a_run_killed_mid_replacement_is_completed_or_undone_by_the_next(
    spark_session: SparkSession,
    lake: LakeFS,
    mode: str,
    visible_after_crash: list[int] | str | None,
    after_recovery: list[int],
) -> None:
    live = root(lake) / "trusted" / "t"
    first = TableCommitter(lake, DAY, "run-1", mode=mode)
    first.write(frame(spark_session, [1, 2, 3]), lake.uri("trusted/t"))
    first.finish()

    dying = TableCommitter(lake, DAY, "run-2", mode=mode, fault=crash_at("trusted.swap.t"))
    with pytest.raises(Crash):
        dying.write(frame(spark_session, [4, 5], files=2), lake.uri("trusted/t"))
    if visible_after_crash is None:
        assert not live.exists()
    elif visible_after_crash == "partial":
        assert len(parts(live)) == 1
    else:
        assert ids(spark_session, live) == visible_after_crash

    rerun = TableCommitter(lake, DAY, "run-3", mode=mode)
    leftovers = rerun.recover()
    assert [(x.key, x.kind) for x in leftovers] == [
        (f"trusted/_staging/{DAY}/run-2", "staging folder")
    ]
    assert ids(spark_session, live) == after_recovery
    rerun.finish()
    assert not (root(lake) / "trusted" / "_staging").exists()


def test_leftovers_of_killed_writes_are_cleaned_and_listed(
    spark_session: SparkSession, lake: LakeFS
) -> None:
    base = root(lake) / "trusted"
    committer = TableCommitter(lake, DAY, "run-1")
    committer.write(frame(spark_session, [1]), lake.uri("trusted/t"))
    committer.finish()
    # a Spark write killed in staging, and one of an older in-place writer inside a live table
    killed = base / "_staging" / DAY / "run-0" / "u" / "_temporary" / "0"
    killed.mkdir(parents=True)
    (killed / "part-00000.parquet").write_bytes(b"PAR1 cut short")
    (base / "t" / "_temporary" / "0").mkdir(parents=True)
    (base / "_rejected" / "t" / ".spark-staging-1f2e" / "year=2024").mkdir(parents=True)
    other_day = base / "_staging" / "2024-01-03" / "run-9"
    other_day.mkdir(parents=True)

    rerun = TableCommitter(lake, DAY, "run-2")
    leftovers = rerun.recover()
    rerun.finish()
    found = {(x.key, x.kind, x.detail) for x in leftovers}
    assert found == {
        (
            f"trusted/_staging/{DAY}/run-0",
            "staging folder",
            "1 staged folder(s), 1 Spark _temporary folder(s)",
        ),
        ("trusted/t/_temporary", "spark _temporary", "inside a live table"),
        ("trusted/_rejected/t/.spark-staging-1f2e", "spark _temporary", "inside a live table"),
    }
    assert not (base / "_rejected" / "t" / ".spark-staging-1f2e").exists()
    assert not (base / "_staging" / DAY).exists() and not (base / "t" / "_temporary").exists()
    assert other_day.exists()  # another day's run may be alive: its lock, its leftovers
    assert ids(spark_session, base / "t") == [1]


def test_a_marker_cut_short_reads_as_none(lake: LakeFS) -> None:
    committer = TableCommitter(lake, DAY, "run-1")
    committer.write_marker("t", {"table": "t", "counts": {"rows_in": 1}})
    assert committer.read_marker("t") == {"table": "t", "counts": {"rows_in": 1}}
    marker = root(lake) / "trusted" / "t" / "_built_from.json"
    marker.write_text('{"table": "t", "cou')
    (marker.parent / "._built_from.json.crc").unlink(missing_ok=True)
    assert committer.read_marker("t") is None
    assert committer.read_marker("missing") is None
