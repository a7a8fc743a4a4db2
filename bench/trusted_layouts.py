"""Three layouts of the trusted job's IMDb part, side by side on the full-size movies CSV.

``python -m bench.trusted_layouts --data bench/data/imdb-1100000-440000`` runs, each as its own
process (wall time and peak RSS of its process tree, ``bench.measure.run_measured``),
round-robin for ``--rounds`` rounds (3 by default; each round starts with the next variant, so
none always runs first):

- ``current``: the job's own IMDb path, ``spark.trusted_job.TrustedJob.imdb`` (one CSV read,
  one shuffle by title id kept with ``persist``; credits, rejected rows, titles, then genres
  from the titles written), through the job's committer (staged, then put in place);
- ``onegroupby``: one ``groupBy(title_id)`` of the valid typed rows that takes, per title, the
  winning title fields (``min_by`` over a struct, the job's own order: most votes, a null count
  below zero, then the smallest title fields) and the distinct rows
  (``array_distinct(collect_list(struct(...)))``), kept with ``persist``; titles are written
  from it, credits by exploding its rows, genres from the titles written, as the job does; the
  rejected rows take a second, narrow read of the CSV (filter, no shuffle). The same typing,
  the same counts (``observe``), the same committer;
- ``sorted``: the job's shuffle by title id, then one sort of each partition (title id, the
  job's winner order, then every other column) under one window pass that flags each title's
  first row (its winner: ``row_number() = 1``) and each row equal to the one before it (an
  exact duplicate: under a total order of every column, equal rows are adjacent); that one
  flagged frame is kept with ``persist`` and gives credits (rows not flagged duplicate),
  titles (first rows) and the rejected rows; genres from the titles written. The same typing,
  the same counts, the same committer;
- ``copy-dedupe``: the deduplicating copy of ``bench.baselines`` (the CSV as string columns,
  ``dropDuplicates()``, parquet), movies only.

Then, in this process, the four outputs of ``onegroupby`` and of ``sorted`` (titles, credits,
genres, rejected rows) are compared with those of ``current`` from the last round: row counts,
both ``exceptAll`` directions (a multiset difference: order-independent, duplicates counted), and
the two runs' counts (``rows_in``, ``rows_out``, ``rejected``, ``deduplicated`` per table).
Load averages are read before and after each run. The results go to ``--out`` (``latest.json``
and ``latest.md``). ``--data`` is a folder holding the prepared lake (``lake-*/raw/local/csv/
movies/...`` with its manifest, as ``make bench`` leaves it) or at least ``movies.csv``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

from bench.measure import CommandFailed, run_measured

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("current", "onegroupby", "sorted", "copy-dedupe")
LAYOUTS = ("onegroupby", "sorted")  # each checked against current
TABLES = ("imdb_movies", "imdb_movie_credits", "imdb_movie_genres", "_rejected/imdb_movies")


# -- the input ----------------------------------------------------------------------------------
def find_input(data: Path) -> dict[str, Any]:
    """The movies CSV to read: the landed one of a prepared lake (its manifest gives its key,
    date and row count), else ``data/movies.csv`` with its data lines counted here."""
    for manifest in sorted(
        data.glob("lake-*/raw/local/csv/movies/year=*/month=*/day=*/_manifest.json")
    ):
        body = json.loads(manifest.read_text())
        entry = body["files"][0]
        return {
            "csv": str(manifest.parent / Path(entry["key"]).name),
            "key": entry["key"],
            "date": body["run_date"],
            "records": int(entry["records"]),
        }  # fmt: skip
    csv = data / "movies.csv"
    if not csv.is_file():
        raise SystemExit(
            f"{data}: neither a prepared lake (lake-*/raw/local/csv/movies/...) nor movies.csv; "
            "make one with: python -m ingestion.sample_data --rows 1100000 --series-rows 440000 "
            f"--out {data}"
        )
    with csv.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 22), b""))
    return {
        "csv": str(csv),
        "key": "raw/local/csv/movies/year=2024/month=01/day=01/movies.csv",
        "date": "2024-01-01",
        "records": lines - 1,  # the header line
    }


# -- one variant, in a process of its own -------------------------------------------------------
def _job(spark: Any, out: Path, run_date: dt.date) -> tuple[Any, Any]:
    from spark.lake_io import LakeFS
    from spark.trusted_commit import TableCommitter
    from spark.trusted_job import TrustedJob

    out.mkdir(parents=True, exist_ok=True)
    lake = LakeFS(spark, "file://" + str(out.resolve()))
    committer = TableCommitter(lake, run_date.isoformat(), f"bench-{uuid.uuid4().hex[:8]}")
    return TrustedJob(spark, lake, run_date), committer


def _write_tables(
    job: Any,
    dataset: Any,
    files: list[Any],
    observed: tuple[Any, Any],
    *,
    credits: Any,
    rejected: Any,
    titles: Any,
) -> None:
    """What both layouts do with their three frames, as ``TrustedJob._imdb_tables`` does:
    write credits, rejected rows and titles (in that order, each counted by ``observe``), then
    the job's own counts, manifest check and genres (``observed``: the rows in and the valid
    rows, observed upstream of credits)."""
    from pyspark.sql import functions as F

    from spark.imdb_transforms import genre_entries
    from spark.item_frames import PARTITION_COLUMNS
    from spark.trusted_job import _observed, _rows, _write

    lake = job.lake
    o_in, o_valid = observed
    credits, o_credits = _observed(credits, "credits")
    _write(credits, lake.uri(f"trusted/{dataset.credits_table}"))
    rejected, o_rej = _observed(rejected, "rejected")
    _write(rejected, lake.uri(f"trusted/_rejected/{dataset.titles_table}"), PARTITION_COLUMNS)
    titles_uri = lake.uri(f"trusted/{dataset.titles_table}")
    titles, o_titles = _observed(titles, "titles", F.sum(genre_entries()).alias("genre_entries"))
    _write(titles, titles_uri)
    job._imdb_counts_and_genres(
        dataset, files, rows_in=_rows(o_in), valid=o_valid, credits=o_credits,
        rejected=o_rej, titles=o_titles, titles_uri=titles_uri,
    )  # fmt: skip


def one_groupby(job: Any, dataset: Any, files: list[Any]) -> None:
    """The one-aggregation layout: the same outputs and counts as ``TrustedJob.imdb``, but for
    its search of lines over the length limit (``spark.long_lines``), left out: the generated
    files hold none, and the job runs it only when the rows read fall short of the manifest."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from spark.imdb_transforms import (
        CREDIT_COLUMNS,
        _output,
        _winner_key,
        imdb_rejected,
        imdb_valid,
        type_csv_rows,
    )
    from spark.trusted_job import _observed, read_csv

    spark = job.spark
    fields = [c for c in dataset.title_columns if c != "title_id"]
    others = [c.name for c in dataset.columns if c != dataset.columns[0]]
    typed = type_csv_rows(read_csv(spark, dataset, files, job.max_line_bytes), dataset)
    counted, o_in = _observed(typed, "in")
    valid, o_valid = _observed(imdb_valid(counted), "valid")
    order = F.struct(_winner_key(F.col("num_votes")).alias("_key"), *[F.col(c) for c in fields])
    per_title = (
        valid.groupBy("title_id")
        .agg(
            F.min_by(F.struct(*[F.col(c) for c in fields]), order).alias("_w"),
            F.array_distinct(F.collect_list(F.struct(*[F.col(c) for c in others]))).alias("_r"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        exploded = per_title.select("title_id", F.explode("_r").alias("_r")).select(
            "title_id", "_r.*"
        )
        _write_tables(
            job,
            dataset,
            files,
            (o_in, o_valid),
            credits=exploded.select(*[_output(c) for c in CREDIT_COLUMNS]),
            rejected=imdb_rejected(
                type_csv_rows(read_csv(spark, dataset, files, job.max_line_bytes), dataset),
                dataset,
                job.run_date,
            ),
            titles=per_title.select(
                "title_id", *[F.col(f"_w.{c}").alias(c) for c in fields]
            ).select(*[_output(c) for c in dataset.title_columns]),
        )
    finally:
        per_title.unpersist()


def sorted_window(job: Any, dataset: Any, files: list[Any]) -> None:
    """The sort-based layout (module docstring): the same outputs and counts as
    ``TrustedJob.imdb`` (its search of over-long lines left out, as in ``one_groupby``)."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from spark.imdb_transforms import (
        CREDIT_COLUMNS,
        _output,
        _winner_key,
        cluster_by_title,
        imdb_rejected,
        imdb_valid,
        type_csv_rows,
    )
    from spark.trusted_job import _observed, read_csv

    spark = job.spark
    columns = [c.name for c in dataset.columns]
    fields = [c for c in dataset.title_columns if c != "title_id"]
    rest = [c for c in columns if c not in dataset.title_columns]
    typed = type_csv_rows(read_csv(spark, dataset, files, job.max_line_bytes), dataset)
    # Invalid rows get a window partition of their own (their flags are not used).
    window = Window.partitionBy("title_id", "invalid").orderBy(
        _winner_key(F.col("num_votes")), *[F.col(c).asc_nulls_first() for c in (*fields, *rest)]
    )
    first = F.row_number().over(window) == 1
    same = F.lit(True)
    for c in columns[1:]:
        same = same & F.col(c).eqNullSafe(F.lag(c).over(window))
    flagged = (
        cluster_by_title(typed)
        .select("*", first.alias("_first"), (~first & same).alias("_dup"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        counted, o_in = _observed(flagged, "in")
        valid, o_valid = _observed(imdb_valid(counted), "valid")
        _write_tables(
            job,
            dataset,
            files,
            (o_in, o_valid),
            credits=valid.filter(~F.col("_dup")).select(*[_output(c) for c in CREDIT_COLUMNS]),
            rejected=imdb_rejected(flagged.drop("_first", "_dup"), dataset, job.run_date),
            titles=imdb_valid(flagged)
            .filter(F.col("_first"))
            .select(*[_output(c) for c in dataset.title_columns]),
        )
    finally:
        flagged.unpersist()


def run_variant(variant: str, csv: Path, key: str, date: str, records: int, out: Path) -> None:
    """Run one variant into ``out`` (a lake folder; its counts in ``out/counts.json``)."""
    from bench.baselines import _uri, spark_session
    from spark.imdb_transforms import MOVIES
    from spark.lake_io import RawFile
    from spark.trusted_job import committing

    spark = spark_session(f"bench-layout-{variant}")
    try:
        if variant == "copy-dedupe":  # bench.baselines.spark_copy(dedupe=True), movies only
            frame = spark.read.csv(_uri(csv), header=True, sep="|", quote="")
            frame.dropDuplicates().write.mode("overwrite").parquet(_uri(out / csv.stem))
            return
        run_date = dt.date.fromisoformat(date)
        job, committer = _job(spark, out, run_date)
        files = [RawFile(key, _uri(csv), run_date, records, csv.stat().st_size)]
        with committing(committer):
            if variant == "current":
                job.imdb(MOVIES, files)
            elif variant == "sorted":
                sorted_window(job, MOVIES, files)
            else:
                one_groupby(job, MOVIES, files)
        committer.finish()
        if job.errors:
            raise RuntimeError("; ".join(job.errors))
        counts = {t: vars(c) for t, c in job.tables.items()}
        unbalanced = [t for t, c in job.tables.items() if not c.balanced]
        if unbalanced:
            raise RuntimeError(f"counts do not reconcile for {unbalanced}: {counts}")
        (out / "counts.json").write_text(json.dumps(counts, indent=2, sort_keys=True))
    finally:
        spark.stop()


# -- the equivalence check ----------------------------------------------------------------------
def compare(a: Path, b: Path) -> dict[str, Any]:
    """Each table of ``b`` against ``a``: row counts and rows only in one of them (multisets)."""
    from bench.baselines import _uri, spark_session

    spark = spark_session("bench-layout-compare")
    try:
        result: dict[str, Any] = {}
        for table in TABLES:
            left = spark.read.parquet(_uri(a / "trusted" / table))
            right = spark.read.parquet(_uri(b / "trusted" / table))
            right = right.select(*left.columns)
            result[table] = {
                "rows_current": left.count(),
                "rows_layout": right.count(),
                "only_in_current": left.exceptAll(right).count(),
                "only_in_layout": right.exceptAll(left).count(),
                "same_schema": left.schema == spark.read.parquet(
                    _uri(b / "trusted" / table)
                ).select(*left.columns).schema,
            }  # fmt: skip
        counts_a = json.loads((a / "counts.json").read_text())
        counts_b = json.loads((b / "counts.json").read_text())
        result["counts_equal"] = counts_a == counts_b
        result["counts_current"] = counts_a
        result["counts_layout"] = counts_b
        result["equal"] = result["counts_equal"] and all(
            result[t]["rows_current"] == result[t]["rows_layout"]
            and result[t]["only_in_current"] == 0
            and result[t]["only_in_layout"] == 0
            and result[t]["same_schema"]
            for t in TABLES
        )
        return result
    finally:
        spark.stop()


# -- the driver -----------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), SPARK_LOCAL_IP="127.0.0.1", PYTHONUNBUFFERED="1")
    return env


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(data: Path, work: Path, rounds: int) -> dict[str, Any]:
    source = find_input(data)
    log.info("input: %s", source)
    runs: list[dict[str, Any]] = []
    for rnd in range(1, rounds + 1):
        shift = (rnd - 1) % len(VARIANTS)  # each round starts with the next variant
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            out = work / variant
            shutil.rmtree(out, ignore_errors=True)
            args = [
                sys.executable, "-m", "bench.trusted_layouts", "run", variant,
                "--csv", source["csv"], "--key", source["key"], "--date", source["date"],
                "--records", str(source["records"]), "--out", str(out),
            ]  # fmt: skip
            load_before = _load()
            sample = run_measured(
                args, env=_env(), cwd=ROOT, log_file=work / "logs" / f"{variant}-{rnd}.log"
            )
            run = {
                "round": rnd,
                "variant": variant,
                "seconds": round(sample.seconds, 2),
                "peak_mib": round((sample.peak_rss_bytes or 0) / 2**20),
                "load_before": load_before,
                "load_after": _load(),
            }
            log.info("%s", run)
            runs.append(run)
    summary = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "median_seconds": round(statistics.median(r["seconds"] for r in mine), 2),
            "median_peak_mib": round(statistics.median(r["peak_mib"] for r in mine)),
        }
    return {"input": source, "runs": runs, "summary": summary}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Trusted job, IMDb movies: the kept layout beside one groupBy and a sorted window",
        "",
        f"Input: `{results['input']['csv']}` ({results['input']['records']:,} data rows); "
        f"{results['started']} to {results['finished']} UTC; machine {results['machine']}.",
        "",
        "| round | variant | wall s | peak MiB | load before | load after |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['round']} | {r['variant']} | {r['seconds']:.1f} | {r['peak_mib']:,} | "
            f"{' / '.join(map(str, r['load_before']))} | {' / '.join(map(str, r['load_after']))} |"
        )
    floor = results["summary"]["copy-dedupe"]["median_seconds"]
    lines += [
        "",
        "| variant | median wall s | ÷ copy-dedupe | median peak MiB |",
        "| --- | --- | --- | --- |",
    ]
    for variant, s in results["summary"].items():
        lines.append(
            f"| {variant} | {s['median_seconds']:.1f} | {s['median_seconds'] / floor:.2f}× | "
            f"{s['median_peak_mib']:,} |"
        )
    for layout, eq in results.get("equivalence", {}).items():
        lines += ["", f"Equivalence of {layout}'s outputs with current's: **{eq['equal']}**", ""]
        lines += [
            f"| table | rows (current) | rows ({layout}) | only in current | only in {layout} |",
            "| --- | --- | --- | --- | --- |",
        ]
        for t in TABLES:
            e = eq[t]
            lines.append(
                f"| {t} | {e['rows_current']:,} | {e['rows_layout']:,} | "
                f"{e['only_in_current']} | {e['only_in_layout']} |"
            )
        lines.append(
            f"\nCounts (rows_in, rows_out, rejected, deduplicated) equal: {eq['counts_equal']}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trusted_layouts", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("run", help="run one variant (the driver runs this as a subprocess)")
    one.add_argument("variant", choices=VARIANTS)
    one.add_argument("--csv", type=Path, required=True)
    one.add_argument("--key", required=True)
    one.add_argument("--date", required=True)
    one.add_argument("--records", type=int, required=True)
    one.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, help="the folder of the full-size CSVs")
    parser.add_argument("--work", type=Path, help="outputs and logs (default <data>/work/layouts)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trusted_layouts")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.command == "run":
        run_variant(args.variant, args.csv, args.key, args.date, args.records, args.out)
        return 0
    if args.data is None:
        parser.error("--data is required")
    from bench.measure import machine

    work = args.work or args.data / "work" / "layouts"
    started = dt.datetime.now(dt.UTC)
    try:
        results = measure(args.data, work, args.rounds)
    except CommandFailed as exc:
        log.error("%s", exc)
        return 1
    results["machine"] = machine()
    results["equivalence"] = {
        layout: compare(work / "current", work / layout) for layout in LAYOUTS
    }
    results["started"] = f"{started:%Y-%m-%d %H:%M}"
    results["finished"] = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2))
    (args.out / "latest.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if all(eq["equal"] for eq in results["equivalence"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
