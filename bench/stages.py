"""Each stage's measurement, beside its baselines. Every function returns a report Stage."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import baselines
from bench.config import ROOT, Config
from bench.measure import Sample, Samples, cpu_seconds, repeat, run_measured
from bench.report import Figure, Stage, Target

log = logging.getLogger(__name__)

MB = 1_000_000
MIB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """A ``moto_server`` in a process of its own on 127.0.0.1, as S3 is to a landing: the
    server's work does not share the landing's process (or its GIL)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU seconds the server has used so far."""
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    """A :class:`MotoServer` for the ``with`` block."""
    server = MotoServer()
    try:
        yield server
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
CSV_LOCAL_TARGET = 0.80  # of the bare SHA-256 pass
CSV_S3_TARGET = 0.90  # of boto3's upload_file


def _cpu_timed(fn: Any, server: MotoServer | None = None) -> tuple[float, float, float]:
    """Wall and CPU seconds (every thread of this process) of one call, and the CPU seconds
    ``server`` used meanwhile (0 without one)."""
    served = server.cpu_seconds() if server else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, (server.cpu_seconds() - served) if server else 0.0


def csv_landing(cfg: Config) -> Stage:
    """Landing into the local lake beside the SHA-256 pass and a plain copy, then into S3
    (a moto_server) beside ``upload_file``; each repetition runs them all in turn (round-robin),
    so a slow spell of a shared machine falls on all alike."""
    from ingestion.csv_landing import land_csv
    from ingestion.lake import LocalLake, S3Lake

    files = {"movies": cfg.movies_csv, "series": cfg.series_csv}
    paths = list(files.values())
    total = sum(p.stat().st_size for p in paths)
    scratch = cfg.work_dir / "csv"
    names = ("land_local", "sha256", "copy", "land_s3", "upload_file")
    samples = {name: Samples() for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    server_cpu: dict[str, list[float]] = {"land_s3": [], "upload_file": []}

    def fresh() -> None:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        os.sync()  # no step pays for the disk writes another left behind (copyfile's)

    def record(name: str, timing: tuple[float, float, float]) -> None:
        samples[name].add(Sample(timing[0]))
        cpu[name].append(round(timing[1], 3))
        if name in server_cpu:
            server_cpu[name].append(round(timing[2], 3))

    def land_all(lake: Any) -> None:
        for dataset, path in files.items():
            land_csv(lake, dataset, path, cfg.run_date)

    for _rep in range(cfg.short_reps):
        fresh()
        record("land_local", _cpu_timed(lambda: land_all(LocalLake(scratch / "lake"))))
        record("sha256", _cpu_timed(lambda: baselines.sha256_files(paths)))
        fresh()
        record("copy", _cpu_timed(lambda: baselines.copy_files(paths, scratch / "copy")))
    shutil.rmtree(scratch, ignore_errors=True)

    with moto_server() as server:
        client = _s3_client(server.endpoint)
        bucket = "bench-lake"
        client.create_bucket(Bucket=bucket)
        for rep in range(cfg.short_reps):
            lake = S3Lake(client, bucket, f"landing-{rep}")
            record("land_s3", _cpu_timed(lambda lake=lake: land_all(lake), server))
            _empty_prefix(client, bucket, "")  # moto keeps objects in memory
            prefix = f"bare-{rep}"
            record(
                "upload_file",
                _cpu_timed(
                    lambda p=prefix: baselines.boto3_upload(client, bucket, paths, p), server
                ),
            )
            _empty_prefix(client, bucket, "")

    def mb_s(name: str) -> float:
        return total / MB / samples[name].seconds

    stage = Stage(
        "csv_landing",
        "1. CSV landing (movies.csv + series.csv)",
        note=f"{total / MB:,.0f} MB per repetition (both files); MB = 10^6 bytes. Landing reads "
        "each file once in 1 MiB chunks; each chunk is hashed (SHA-256) and its whole lines "
        "UTF-8-checked on one thread, its field counts checked (NumPy) on another and it is "
        "written on a third (local: a fdatasync every 32 MiB on a thread, fsync at the end; "
        "S3: 8 MiB multipart parts uploaded by 8 threads), all at the same time; then the "
        "manifest and _SUCCESS. Baselines: a bare hashlib.sha256 pass over the same files "
        "(1 MiB reads: the floor of any landing that hashes what it lands, and the target's "
        "yardstick), shutil.copyfile (no hash, no check, no fsync) and boto3's upload_file "
        "(8 MiB parts, 10 threads, no check). The page cache is synced, untimed, before each "
        "local repetition. moto_server runs in a process of its own, as S3 is remote. The "
        "checks list the CPU seconds each took (every thread of the process; the server's "
        "apart): on 2 cores, a landing whose CPU time is more than twice the hash pass's "
        "cannot reach its speed, however well it overlaps.",
        checks={
            **{f"CPU s, {name}": round(statistics.median(v), 3) for name, v in cpu.items()},
            **{
                f"CPU s of moto_server, {name}": round(statistics.median(v), 3)
                for name, v in server_cpu.items()
            },
        },  # fmt: skip
    )
    stage.figures += [
        Figure("csv_local_mb_s", "into the local lake", "MB/s", mb_s("land_local"), "higher",
               _mb_s(total, samples["land_local"]))
        .beside("bare hashlib.sha256 pass", mb_s("sha256"), _mb_s(total, samples["sha256"]))
        .beside("shutil.copyfile", mb_s("copy"), _mb_s(total, samples["copy"])),
        Figure("csv_s3_mb_s", "into S3 (moto_server on 127.0.0.1)", "MB/s", mb_s("land_s3"),
               "higher", _mb_s(total, samples["land_s3"]))
        .beside("boto3 upload_file", mb_s("upload_file"), _mb_s(total, samples["upload_file"])),
    ]  # fmt: skip
    return stage


def csv_targets(stage: Stage) -> list[Target]:
    local = next(f for f in stage.figures if f.id == "csv_local_mb_s")
    s3 = next(f for f in stage.figures if f.id == "csv_s3_mb_s")
    return [
        Target("csv_local_vs_sha256", "CSV landing into the local lake ÷ bare SHA-256 pass",
               f"≥ {CSV_LOCAL_TARGET:.0%}", 100 * local.baselines[0].ratio, "%",
               100 * CSV_LOCAL_TARGET, "higher"),
        Target("csv_s3_vs_upload_file", "CSV landing into S3 ÷ boto3 upload_file",
               f"≥ {CSV_S3_TARGET:.0%}", 100 * s3.baselines[0].ratio, "%",
               100 * CSV_S3_TARGET, "higher"),
    ]  # fmt: skip


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
    memory = next(f for f in stage.figures if f.id == "trusted_peak_mib")
    return [
        Target("trusted_vs_copy", "trusted job ÷ bare Spark copy (wall time)", "≤ 1.5×",
               wall.baselines[0].ratio, "×", 1.5, "lower"),
        Target("trusted_vs_dedupe", "trusted job ÷ bare copy + dropDuplicates() (wall time)",
               "≤ 1.25×", wall.baselines[1].ratio, "×", 1.25, "lower"),
        Target("trusted_peak_vs_dedupe",
               "trusted job peak memory ÷ bare copy + dropDuplicates() peak memory", "≤ 1×",
               memory.baselines[1].ratio, "×", 1.0, "lower"),
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
