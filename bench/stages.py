"""Each stage's measurement, beside its baselines. Every function returns a report Stage."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import baselines
from bench.config import ROOT, Config
from bench.measure import Sample, Samples, repeat, run_measured, timed
from bench.report import Figure, Stage, Target

log = logging.getLogger(__name__)

MB = 1_000_000
MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A ``moto_server`` on 127.0.0.1 for the ``with`` block; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto accepts any key
        config=BotoConfig(retries={"mode": "standard"}),
    )


def _empty_prefix(client: Any, bucket: str, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])


def _mb_s(total_bytes: int, samples: Samples) -> list[float]:
    return [round(total_bytes / MB / s.seconds, 2) for s in samples.runs]


# -- 1. CSV landing ---------------------------------------------------------------------------
def csv_landing(cfg: Config) -> Stage:
    from ingestion.csv_landing import land_csv
    from ingestion.lake import LocalLake, S3Lake

    files = {"movies": cfg.movies_csv, "series": cfg.series_csv}
    total = sum(p.stat().st_size for p in files.values())
    scratch = cfg.work_dir / "csv"

    def fresh(_rep: int) -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)

    def land_local(_rep: int) -> float:
        lake = LocalLake(scratch / "lake")
        return timed(lambda: [land_csv(lake, d, p, cfg.run_date) for d, p in files.items()])

    def copy(_rep: int) -> float:
        return timed(lambda: baselines.copy_files(list(files.values()), scratch / "copy"))

    local = repeat(cfg.short_reps, land_local, setup=fresh)
    plain = repeat(cfg.short_reps, copy, setup=fresh)
    shutil.rmtree(scratch, ignore_errors=True)

    with moto_server() as endpoint:
        client = _s3_client(endpoint)
        bucket = "bench-lake"
        client.create_bucket(Bucket=bucket)

        def land_s3(rep: int) -> float:
            lake = S3Lake(client, bucket, f"landing-{rep}")
            return timed(lambda: [land_csv(lake, d, p, cfg.run_date) for d, p in files.items()])

        def upload(rep: int) -> float:
            return timed(
                lambda: baselines.boto3_upload(client, bucket, list(files.values()), f"bare-{rep}")
            )

        def clear(_rep: int) -> None:
            _empty_prefix(client, bucket, "")  # moto keeps objects in memory

        s3 = repeat(cfg.short_reps, land_s3, teardown=clear)
        bare = repeat(cfg.short_reps, upload, teardown=clear)

    stage = Stage(
        "csv_landing",
        "1. CSV landing (movies.csv + series.csv)",
        note=f"{total / MB:,.0f} MB per repetition (both files); MB = 10^6 bytes. Landing reads "
        "each file once: UTF-8 check, SHA-256, row and field counts, upload, manifest.",
    )
    stage.figures += [
        Figure("csv_local_mb_s", "into the local lake", "MB/s", total / MB / local.seconds,
               "higher", _mb_s(total, local))
        .beside("shutil.copyfile", total / MB / plain.seconds, _mb_s(total, plain)),
        Figure("csv_s3_mb_s", "into S3 (moto_server on 127.0.0.1)", "MB/s",
               total / MB / s3.seconds, "higher", _mb_s(total, s3))
        .beside("boto3 upload_file", total / MB / bare.seconds, _mb_s(total, bare)),
    ]  # fmt: skip
    return stage


# -- 3. trusted job ---------------------------------------------------------------------------
def _raw_csv(cfg: Config, dataset: str) -> Path:
    d = cfg.run_date
    return (
        cfg.lake_dir / f"raw/local/csv/{dataset}/year={d:%Y}/month={d:%m}/day={d:%d}/{dataset}.csv"
    )


def _measure(
    cfg: Config, name: str, args: list[str], reps: int, *, first_rep: int = 0, **env: str
) -> Samples:
    logs = cfg.work_dir / "logs"

    def once(rep: int) -> Sample:
        rep += first_rep
        sample = run_measured(
            args, env=cfg.env(**env), cwd=ROOT, log_file=logs / f"{name}-{rep}.log"
        )
        log.info("%s #%d: %.1f s, peak %.0f MiB", name, rep + 1, sample.seconds,
                 (sample.peak_rss_bytes or 0) / MIB)  # fmt: skip
        return sample

    return repeat(reps, once)


def _mib(samples: Samples) -> list[float]:
    return [round((s.peak_rss_bytes or 0) / MIB, 1) for s in samples.runs]


def trusted_job(cfg: Config) -> Stage:
    py = cfg.python
    out = cfg.work_dir / "baselines"
    movies, series = _raw_csv(cfg, "movies"), _raw_csv(cfg, "series")
    env = {"LAKE_URI": str(cfg.lake_dir), "RUN_DATE": cfg.run_date.isoformat()}
    reps = cfg.long_reps
    base = [py, "-m", "bench.baselines"]
    both = ["--movies", str(movies), "--series", str(series)]
    commands = {
        "trusted-job": [py, "-m", "spark.trusted_job", "--full-refresh"],  # every rep does it all
        "spark-copy": [*base, "spark-copy", *both, "--out", str(out / "spark-copy")],
        "spark-copy-dedupe": [*base, "spark-copy-dedupe", *both, "--out",
                              str(out / "spark-copy-dedupe")],
        "spark-original": [*base, "spark-original", "--movies", str(movies), "--out",
                           str(out / "spark-original")],
        "duckdb": [*base, "duckdb", *both, "--out", str(out / "duckdb")],
    }  # fmt: skip
    # Round-robin: each repetition runs the job and every reference once, so a slow spell of a
    # shared machine falls on all of them rather than on whichever ran during it.
    samples = {name: Samples() for name in commands}
    for rep in range(reps):
        for name, args in commands.items():
            samples[name].add(_measure(cfg, name, args, 1, first_rep=rep, **env).runs[0])
    job, copy, dedupe = samples["trusted-job"], samples["spark-copy"], samples["spark-copy-dedupe"]
    original, duck = samples["spark-original"], samples["duckdb"]
    shutil.rmtree(out, ignore_errors=True)

    stage = Stage(
        "trusted_job",
        "3. Trusted job (raw → trusted, Spark local mode)",
        note="Wall time of the whole process (Python start, JVM and session start, the work, "
        "stop) and peak RSS of its process tree (Python driver + JVM), sampled every 0.1 s. "
        "The trusted job also turns the raw TMDB JSON into three tables; the baselines read "
        "only the two CSVs. Baselines: the bare Spark copy (both CSVs read as string columns "
        "and written as parquet, the engine's floor), the same copy with exact duplicate rows "
        "removed (dropDuplicates(): the floor of any job that must deduplicate, one table and "
        "nothing else), the original project's transform on the "
        "same Spark (movies only: Horror filter, dropna, dropDuplicates by id), and DuckDB "
        "doing the trusted job's CSV transform (titles, credits, genres, rejects).",
    )
    wall = Figure("trusted_seconds", "wall time", "s", job.seconds, "lower", job.all_seconds)
    wall.beside("bare Spark CSV → parquet copy", copy.seconds, copy.all_seconds)
    wall.beside("bare copy + dropDuplicates()", dedupe.seconds, dedupe.all_seconds)
    wall.beside("original transform (same Spark)", original.seconds, original.all_seconds)
    wall.beside("DuckDB, same transform", duck.seconds, duck.all_seconds)
    memory = Figure("trusted_peak_mib", "peak memory (process tree RSS)", "MiB",
                    (job.peak_rss_bytes or 0) / MIB, "lower", _mib(job))  # fmt: skip
    memory.beside("bare Spark CSV → parquet copy", (copy.peak_rss_bytes or 0) / MIB, _mib(copy))
    memory.beside("bare copy + dropDuplicates()", (dedupe.peak_rss_bytes or 0) / MIB, _mib(dedupe))
    memory.beside("original transform (same Spark)", (original.peak_rss_bytes or 0) / MIB,
                  _mib(original))  # fmt: skip
    memory.beside("DuckDB, same transform", (duck.peak_rss_bytes or 0) / MIB, _mib(duck))
    stage.figures += [wall, memory]
    return stage


def trusted_targets(stage: Stage) -> list[Target]:
    wall = next(f for f in stage.figures if f.id == "trusted_seconds")
    return [
        Target("trusted_vs_copy", "trusted job ÷ bare Spark copy (wall time)", "≤ 1.5×",
               wall.baselines[0].ratio, "×", 1.5, "lower"),
    ]  # fmt: skip


# -- 4. dbt build -----------------------------------------------------------------------------
DBT_BUDGET_SECONDS = 60.0


def dbt_build(cfg: Config, sample_lake: Path | None) -> Stage:
    """``dbt build`` on the full-size trusted data; beside it, the same build on the sample."""
    dbt = str(Path(cfg.python).with_name("dbt"))
    args = [dbt, "build", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT), "--quiet"]

    def env(lake: Path, name: str) -> dict[str, str]:
        return {
            "LAKE_URI": str(lake),
            "DBT_TARGET_PATH": str(cfg.work_dir / f"dbt-target-{name}"),
            "DBT_LOG_PATH": str(cfg.work_dir / f"dbt-logs-{name}"),
        }

    full = _measure(cfg, "dbt-build-full", args, cfg.long_reps, **env(cfg.lake_dir, "full"))
    stage = Stage(
        "dbt_build",
        "4. dbt build (DuckDB), full-size trusted data",
        note="`dbt build` (every model and test) as one process; wall time and peak RSS. "
        "Baselines: the same build on the bundled sample's trusted data (the lake `make demo` "
        "leaves), i.e. dbt's fixed cost (start, parse, connect, run the DAG), and the "
        f"{DBT_BUDGET_SECONDS:.0f} s budget.",
    )
    wall = Figure("dbt_seconds", "wall time", "s", full.seconds, "lower", full.all_seconds)
    memory = Figure("dbt_peak_mib", "peak memory (process tree RSS)", "MiB",
                    (full.peak_rss_bytes or 0) / MIB, "lower", _mib(full))  # fmt: skip
    if sample_lake is not None:
        small = _measure(cfg, "dbt-build-sample", args, cfg.long_reps, **env(sample_lake, "sample"))
        wall.beside("same build on the sample data", small.seconds, small.all_seconds)
        memory.beside("same build on the sample data", (small.peak_rss_bytes or 0) / MIB,
                      _mib(small))  # fmt: skip
    else:
        stage.note += " (No sample-data build here: `make demo` did not run.)"
    wall.beside("budget", DBT_BUDGET_SECONDS)
    stage.figures += [wall, memory]
    stage.checks.update(_dbt_outcome(cfg.work_dir / "dbt-logs-full" / "dbt.log"))
    return stage


def _dbt_outcome(log_file: Path) -> dict[str, int | float | str]:
    """The counts of the last ``dbt build`` in its log (``Done. PASS=.. WARN=.. ERROR=..``)."""
    done = ""
    with contextlib.suppress(OSError), log_file.open(errors="replace") as handle:
        for line in handle:
            if "Done. PASS=" in line:
                done = line
    counts = dict(re.findall(r"([A-Z-]+)=(\d+)", done))
    return {f"dbt {k}": int(v) for k, v in counts.items() if k in ("PASS", "WARN", "ERROR", "SKIP")}


def dbt_targets(stage: Stage) -> list[Target]:
    wall = next(f for f in stage.figures if f.id == "dbt_seconds")
    return [Target("dbt_full_seconds", "dbt build on full-size data", "< 60 s",
                   wall.value, "s", DBT_BUDGET_SECONDS, "lower")]  # fmt: skip


# -- 5. make demo -----------------------------------------------------------------------------
DEMO_BUDGET_SECONDS = 90.0


def demo(cfg: Config) -> tuple[Stage, Path]:
    """``make demo`` end to end on the sample data, the venv already installed.

    Each repetition uses a fresh lake folder (``LAKE_URI``); the last one is kept for the dbt
    stage's baseline.
    """
    lake = cfg.work_dir / "demo-lake"
    make = shutil.which("make") or "make"

    def fresh(_rep: int) -> None:
        shutil.rmtree(lake, ignore_errors=True)

    def once(rep: int) -> Sample:
        sample = run_measured(
            [make, "--no-print-directory", "demo"],
            env=cfg.env(
                LAKE_URI=str(lake),
                DBT_TARGET_PATH=str(cfg.work_dir / "demo-dbt-target"),
                DBT_LOG_PATH=str(cfg.work_dir / "demo-dbt-logs"),
            ),
            cwd=ROOT,
            log_file=cfg.work_dir / "logs" / f"make-demo-{rep}.log",
        )
        log.info("make demo #%d: %.1f s", rep + 1, sample.seconds)
        return sample

    runs = repeat(cfg.long_reps, once, setup=fresh)
    stage = Stage(
        "demo",
        "5. make demo (sample data, venv already installed)",
        note="Wall time of `make demo` from start to exit, into a fresh lake folder each time. "
        f"Baseline: the {DEMO_BUDGET_SECONDS:.0f} s budget it should fit in.",
    )
    wall = Figure("demo_seconds", "wall time", "s", runs.seconds, "lower", runs.all_seconds)
    wall.beside("budget", DEMO_BUDGET_SECONDS)
    stage.figures.append(wall)
    return stage, lake


def demo_targets(stage: Stage) -> list[Target]:
    wall = next(f for f in stage.figures if f.id == "demo_seconds")
    return [Target("demo_seconds", "make demo after install", "< 90 s", wall.value, "s",
                   DEMO_BUDGET_SECONDS, "lower")]  # fmt: skip
