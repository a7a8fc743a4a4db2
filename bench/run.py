"""``make bench``: generate full-size inputs once, then measure every stage beside its baseline.

    python -m bench.run                 # full size; results in bench/results/latest.{md,json}
    python -m bench.run --smoke --out /tmp/b   # tiny sizes, one repetition: does it all run?

Inputs are cached under ``bench/data/`` (generated CSVs and a prepared lake) and reused by the
next run. A stage whose code is not in the repository is reported "not available", with the
reason, and the run goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import importlib.util
import logging
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import history, stages, tmdb
from bench.config import ROOT, Config, full_config, smoke_config
from bench.measure import machine
from bench.report import Results, Stage

log = logging.getLogger("bench")

SMOKE_SKIPS_DEMO = (
    "not run in smoke mode: make demo takes one to two minutes and tests/e2e/test_demo.py "
    "already runs it in make test"
)
CODE_PATHS = ("ingestion", "spark", "fake_tmdb", "dbt_project", "dbt_project.yml", "scripts",
              "bench", "Makefile")  # fmt: skip
STAGE_IDS = ("csv_landing", "tmdb", "trusted_job", "dbt_build", "demo", "history")
SMOKE_SKIPS_HISTORY = (
    "not run in smoke mode unless asked for (--only history): it runs the trusted job and dbt "
    "for several days (minutes); tests/dbt/test_dbt_incremental.py checks the daily runs' results"
)
VERSIONED = ["pyspark", "duckdb", "dbt-core", "dbt-duckdb", "boto3", "moto", "requests"]


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        first = (out.stderr or out.stdout).splitlines()[0]
        found["java"] = first.split('"')[1] if '"' in first else first
    except (OSError, IndexError, subprocess.SubprocessError):
        found["java"] = "not found"
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def source_state() -> dict[str, object]:
    """The commit measured, and the code paths with uncommitted changes (measured as they were)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return out.stdout.rstrip("\n") if out.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", *CODE_PATHS).splitlines()]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "uncommitted": sorted(p for p in changed if not p.startswith("bench/results")),
    }


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def dbt_project_present() -> bool:
    models = ROOT / "dbt_project" / "models"
    return (ROOT / "dbt_project.yml").is_file() and any(models.rglob("*.sql"))


# -- inputs -----------------------------------------------------------------------------------
def generate_csvs(cfg: Config) -> None:
    """Write the IMDb-shaped CSVs at the configured sizes once (the generator is deterministic)."""
    done = cfg.csv_dir / "_generated"
    if done.exists() and cfg.movies_csv.exists() and cfg.series_csv.exists():
        log.info("reusing %s", cfg.csv_dir)
        return
    log.info("generating %d movie rows and %d series rows into %s (once)",
             cfg.movie_rows, cfg.series_rows, cfg.csv_dir)  # fmt: skip
    cfg.csv_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [cfg.python, "-m", "ingestion.sample_data", "--rows", str(cfg.movie_rows),
         "--series-rows", str(cfg.series_rows), "--out", str(cfg.csv_dir)],
        cwd=ROOT, env=cfg.env(), check=True,
    )  # fmt: skip
    done.write_text(dt.datetime.now(dt.UTC).isoformat())


def land_raw_csvs(cfg: Config) -> None:
    """Land both CSVs in the prepared lake (a no-op when they already are)."""
    from ingestion.csv_landing import land_csv
    from ingestion.lake import LocalLake

    lake = LocalLake(cfg.lake_dir)
    for dataset, path in (("movies", cfg.movies_csv), ("series", cfg.series_csv)):
        land_csv(lake, dataset, path, cfg.run_date)


# -- the run ----------------------------------------------------------------------------------
def run(cfg: Config, only: set[str] | None = None) -> Results:
    started = time.perf_counter()
    results = Results(
        mode=cfg.mode,
        started_at=_now(),
        machine=machine(),
        versions=versions(),
        source=source_state(),
        sizes={
            "movie rows": f"{cfg.movie_rows:,}",
            "series rows": f"{cfg.series_rows:,}",
            "TMDB horror movies asked for": f"at least {cfg.tmdb_movies:,}",
            "repetitions (quick / process-level)": f"{cfg.short_reps} / {cfg.long_reps}",
        },
    )
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    generate_csvs(cfg)
    results.sizes["CSV bytes"] = (
        f"{cfg.movies_csv.stat().st_size:,} + {cfg.series_csv.stat().st_size:,}"
    )
    land_raw_csvs(cfg)
    catalogue = None
    tmdb_problem = tmdb.missing_reason() if not tmdb.available() else ""
    if not tmdb_problem:
        try:
            catalogue = tmdb.catalogue(cfg)
            results.sizes["TMDB catalogue"] = (
                f"{len(catalogue.movies):,} movies, {len(catalogue.ids_with_genre()):,} horror"
            )
            tmdb.prepare_raw(cfg, catalogue)
        except Exception as exc:  # noqa: BLE001 - reported in the results
            log.error("preparing the TMDB data failed:\n%s", traceback.format_exc())
            tmdb_problem = f"preparing the fake TMDB data failed: {exc}"

    def stage(stage_id: str, title: str, problem: str, fn: Callable[[], Stage]) -> Stage:
        if only is not None and stage_id not in only:
            return Stage(stage_id, title, "skipped", "not selected (--only)")
        if problem:
            return Stage(stage_id, title, "not available", problem)
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - reported in the results, traceback logged
            log.error("%s failed:\n%s", title, traceback.format_exc())
            return Stage(stage_id, title, "failed", f"{type(exc).__name__}: {exc}"[:3000])

    csv = stage("csv_landing", "1. CSV landing", "", lambda: stages.csv_landing(cfg))
    tmdb_stage = stage("tmdb", "2. TMDB extraction", tmdb_problem,
                       lambda: tmdb.measure(cfg, catalogue))  # fmt: skip
    trusted_problem = ""
    if not _module_present("spark.trusted_job"):
        trusted_problem = "spark/trusted_job.py is not in the repository yet"
    elif tmdb_problem:
        trusted_problem = f"the trusted job needs the raw TMDB data: {tmdb_problem}"
    trusted = stage("trusted_job", "3. Trusted job (raw → trusted)", trusted_problem,
                    lambda: stages.trusted_job(cfg))  # fmt: skip

    # make demo runs before dbt: the lake it leaves is the input of dbt's baseline
    demo_lake: list[Path] = []

    def run_demo() -> Stage:
        demo_stage, lake = stages.demo(cfg)
        demo_lake.append(lake)
        return demo_stage

    demo_problem = "" if (ROOT / "scripts" / "demo.py").is_file() else "scripts/demo.py is missing"
    if cfg.mode == "smoke" and not demo_problem:
        demo = Stage("demo", "5. make demo", "skipped", SMOKE_SKIPS_DEMO)
    else:
        demo = stage("demo", "5. make demo", demo_problem, run_demo)
    sample_lake = demo_lake[0] if demo_lake and (demo_lake[0] / "trusted").is_dir() else None

    dbt_problem = ""
    if not dbt_project_present():
        dbt_problem = "the dbt project has no models yet"
    elif not (cfg.lake_dir / "trusted").is_dir():
        dbt_problem = "needs the full-size trusted data, which the trusted job has not written"
    dbt = stage("dbt_build", "4. dbt build (DuckDB)", dbt_problem,
                lambda: stages.dbt_build(cfg, sample_lake))  # fmt: skip

    # -- daily runs over a growing history (bench/history.py): its own lake, after the rest
    history_problem = trusted_problem or ("" if dbt_project_present() else "no dbt models yet")
    if cfg.mode == "smoke" and (only is None or "history" not in only):
        history_stage = Stage("history", "6. Daily runs over a growing history", "skipped",
                              SMOKE_SKIPS_HISTORY)  # fmt: skip
    else:
        history_stage = stage("history", "6. Daily runs over a growing history",
                              history_problem, lambda: history.measure(cfg, catalogue))  # fmt: skip

    results.stages += [csv, tmdb_stage, trusted, dbt, demo, history_stage]
    for done, make_targets in (
        (csv, stages.csv_targets),
        (tmdb_stage, tmdb.targets),
        (trusted, stages.trusted_targets),
        (dbt, stages.dbt_targets),
        (demo, stages.demo_targets),
        (history_stage, history.targets),
    ):
        if done.status == "measured":
            results.targets += make_targets(done)
    results.finished_at = _now()
    results.seconds = time.perf_counter() - started
    return results


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one repetition, everything under --out"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default bench/results; with --smoke required)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT / "bench" / "data",
        help="where full-size inputs are cached",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions of every measurement")
    parser.add_argument(
        "--history-days",
        default=None,
        metavar="DAYS",
        help="comma-separated days D of the history stage (default 30,365; smoke 4,6)",
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="STAGES",
        help=f"comma-separated subset of {','.join(STAGE_IDS)} (development)",
    )
    args = parser.parse_args(argv)  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.smoke:
        if args.out is None:
            parser.error("--smoke needs --out DIR (a scratch folder; results go to DIR/results)")
        cfg = smoke_config(args.out)
    else:
        cfg = full_config(args.data, args.out or ROOT / "bench" / "results", args.reps)
    if args.history_days:
        try:
            days = tuple(sorted({int(d) for d in args.history_days.split(",") if d.strip()}))
        except ValueError:
            parser.error(f"--history-days: not a list of days: {args.history_days!r}")
        if not days or days[0] < 3:
            parser.error("--history-days: each day D must be 3 or more (days 1 and 2 always run)")
        cfg = dataclasses.replace(cfg, history_days=days)
    only = None
    if args.only:
        only = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = only - set(STAGE_IDS)
        if unknown:
            parser.error(f"--only: unknown stage(s) {', '.join(sorted(unknown))}")
    results = run(cfg, only)
    json_path, md_path = results.write(cfg.out_dir)
    print(md_path.read_text())
    print(f"results: {md_path} and {json_path}")
    missed = [t.label for t in results.targets if not t.met]
    if missed:
        log.warning("targets missed: %s", "; ".join(missed))
    failed = [s.title for s in results.stages if s.status == "failed"]
    if failed:
        log.error("stages failed: %s (see the logs under %s)", ", ".join(failed), cfg.work_dir)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
