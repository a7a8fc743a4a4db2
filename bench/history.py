"""Stage 6, daily runs over a growing history: does a day's run cost the same after a year?

The production pipeline runs once a day, and each day adds one TMDB snapshot of the whole
catalogue (about 40,000 horror movies at full size). This stage lands the full-size CSVs once,
then runs the daily pipeline (the trusted job, then `dbt build`, each with RUN_DATE set to the
day, as the state machine runs them) on day 1, day 2, and on day D after D-1 days of history,
for each D of ``history_days`` (30 and 365 at full size), then `dbt build --full-refresh` on the
last day D. Its own lake (``work/history-lake``) starts from the prepared lake's raw data of
day 1 (both CSVs and the whole catalogue extracted).

Days 1, 2 and each day D are real: the day's TMDB snapshot is extracted from the fake server
serving that day of the catalogue (the same movies, other popularity and votes), then the
trusted job and dbt run as a day's pipeline does. The days between are simulated, so that a
year fits in minutes:
- raw: each day's genre list and details partitions, by the real extractor against the fake
  server, with discover cut to one page (the trusted job reads every genre and details
  partition up to its day; it reads the discover snapshot of its own day only);
- trusted: each day's snapshot partition, written with pyarrow from day 2's partition (the
  trusted job's own output), its popularity and votes moved and its date set, as the trusted
  job would write it;
- refined: one incremental `dbt run` for RUN_DATE = D-1 builds every simulated date at once.
What is measured is the run of day D on that history, beside the same run on day 1 and day 2.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from bench.config import ROOT, Config
from bench.measure import Sample, run_measured
from bench.report import Figure, Stage, Target

log = logging.getLogger(__name__)

API_KEY = "bench-key"  # the fake server's key; not a secret
TARGET_RATIO = 1.3  # day D may cost at most this times day 1, for each stage
SNAPSHOTS = "trusted/tmdb_movie_snapshots"
MIB = 1024 * 1024
IMDB_TABLES = ("imdb_movies", "imdb_series", "imdb_movie_credits", "imdb_series_credits",
               "imdb_movie_genres", "imdb_series_genres")  # fmt: skip


def _partition(day: dt.date) -> str:
    return f"year={day:%Y}/month={day:%m}/day={day:%d}"


class History:
    """The history lake, and the measured runs of its days."""

    def __init__(self, cfg: Config, catalogue: Any) -> None:
        self.cfg = cfg
        self.catalogue = catalogue
        self.lake = cfg.work_dir / "history-lake"
        self.logs = cfg.work_dir / "logs" / "history"
        self.first_day = cfg.run_date
        self.trusted: dict[int, Sample] = {}
        self.dbt: dict[int, Sample] = {}
        self.full_refresh: Sample | None = None
        self.checks: dict[str, int | float | str] = {}

    def day(self, number: int) -> dt.date:
        return self.first_day + dt.timedelta(days=number - 1)

    # -- the lake ---------------------------------------------------------------------------
    def start(self) -> None:
        """A fresh lake holding the prepared lake's raw data of day 1 (hard links: no copy)."""
        shutil.rmtree(self.lake, ignore_errors=True)
        self.lake.mkdir(parents=True)
        shutil.copytree(self.cfg.lake_dir / "raw", self.lake / "raw", copy_function=os.link)

    def _settings(self, number: int, base_url: str) -> Any:
        from ingestion.settings import load_settings

        return load_settings(
            {},
            lake_uri=str(self.lake),
            run_date=self.day(number).isoformat(),
            tmdb_base_url=base_url,
            tmdb_api_key=API_KEY,
            tmdb_rate_limit=100_000.0,
        )

    def extract(self, numbers: list[int], max_pages: int | None = None) -> None:
        """The TMDB extractor for each day of ``numbers``, against the fake server serving that
        day of the catalogue (the whole discover snapshot, or ``max_pages`` pages of it)."""
        from fake_tmdb.catalogue import Catalogue, on_day
        from fake_tmdb.server import FakeTMDb
        from ingestion.lake import LocalLake
        from ingestion.tmdb_landing import extract

        lake = LocalLake(self.lake)
        for number in numbers:
            day_catalogue = self.catalogue  # a cut snapshot: nobody reads its popularity
            if max_pages is None:
                day_catalogue = Catalogue(
                    on_day(m, seed=27, day=number) for m in self.catalogue.movies
                )
            with FakeTMDb(day_catalogue, api_key=API_KEY) as server:
                extract(self._settings(number, server.base_url), lake, max_pages=max_pages)

    def simulate_snapshots(self, numbers: list[int]) -> None:
        """Trusted snapshot partitions of ``numbers``, from day 2's as the trusted job wrote it:
        the same schema (column types, nullability, Spark's metadata), layout and file naming,
        one file per partition as the job writes at this size."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        source = sorted((self.lake / SNAPSHOTS / _partition(self.day(2))).glob("*.parquet"))
        day2 = pa.concat_tables([pq.read_table(path) for path in source]).combine_chunks()
        schema = pq.read_schema(source[0])
        ids = pc.cast(day2["tmdb_id"], pa.int64())

        def column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
            index = schema.get_field_index(name)
            return table.set_column(index, schema.field(index), values)

        for number in numbers:
            # A factor from 0.5 to 1.5, fixed per movie and day; a few more votes each day.
            spread = pc.divide(pc.cast(pc.bit_wise_and(pc.add(pc.multiply(ids, 7919),
                               number * 104_729), 1023), pa.float64()), 1023.0)  # fmt: skip
            popularity = pc.multiply(day2["popularity"], pc.add(spread, 0.5))
            votes = pc.add(day2["vote_count"], pa.scalar(number, day2["vote_count"].type))
            day = pa.array([self.day(number)] * len(day2), day2["snapshot_date"].type)
            table = column(column(column(day2, "popularity", popularity), "vote_count", votes),
                           "snapshot_date", day).cast(schema)  # fmt: skip
            target = self.lake / SNAPSHOTS / _partition(self.day(number))
            target.mkdir(parents=True, exist_ok=True)
            written = target / f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"
            pq.write_table(table, written, compression="snappy")
            if not pq.read_schema(written).equals(schema, check_metadata=True):
                raise RuntimeError(f"{written}: not the schema of the job's {source[0]}")
        self.checks["simulated snapshot partitions: schema as the job writes it"] = "yes"

    # -- the measured runs ------------------------------------------------------------------
    def _env(self, number: int, **extra: str) -> dict[str, str]:
        return self.cfg.env(
            LAKE_URI=str(self.lake),
            RUN_DATE=self.day(number).isoformat(),
            DBT_TARGET_PATH=str(self.cfg.work_dir / "history-dbt-target"),
            DBT_LOG_PATH=str(self.cfg.work_dir / "history-dbt-logs"),
            **extra,
        )

    def _run(self, name: str, args: list[str], number: int) -> Sample:
        sample = run_measured(
            args, env=self._env(number), cwd=ROOT, log_file=self.logs / f"{name}.log"
        )
        log.info("history %s: %.1f s, peak %.0f MiB", name, sample.seconds,
                 (sample.peak_rss_bytes or 0) / MIB)  # fmt: skip
        timings = self.cfg.work_dir / "history-dbt-target" / "run_results.json"
        if "dbt" in name and timings.is_file():  # each node's time, beside the run's log
            shutil.copyfile(timings, self.logs / f"{name}.run_results.json")
            timings.unlink()
        return sample

    def _dbt(self, command: str, *args: str) -> list[str]:
        dbt = str(Path(self.cfg.python).with_name("dbt"))
        return [dbt, command, "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
                "--quiet", *args]  # fmt: skip

    def daily_run(self, number: int) -> None:
        """Day ``number``'s trusted job, then its `dbt build`, each measured."""
        self.trusted[number] = self._run(
            f"day{number}-trusted-job", [self.cfg.python, "-m", "spark.trusted_job"], number
        )
        self.dbt[number] = self._run(f"day{number}-dbt-build", self._dbt("build"), number)
        self.checks.update(self._day_checks(number))

    def catch_up(self, numbers: list[int]) -> None:
        """Refined up to the last day of ``numbers``: one incremental `dbt run` over the
        simulated dates, which must leave in the fact as many rows for each of them as for
        day 2 (the same movies)."""
        last = numbers[-1]
        self._run(f"catch-up-to-day{last}-dbt-run", self._dbt("run"), last)
        rows = self._fact_rows()
        expected = rows.get(self.day(2), 0)
        wrong = [n for n in numbers if rows.get(self.day(n), 0) != expected or not expected]
        if wrong:
            raise RuntimeError(
                f"the fact holds other row counts for simulated days {wrong[:5]} than for day 2 "
                f"({expected}): {[rows.get(self.day(n), 0) for n in wrong[:5]]}"
            )
        self.checks[f"days {numbers[0]}-{last} simulated: fact rows per date (as day 2)"] = expected

    def refresh(self, number: int) -> None:
        self.full_refresh = self._run(
            f"day{number}-dbt-build-full-refresh", self._dbt("build", "--full-refresh"), number
        )
        rows = self._fact_rows()
        self.checks[f"day {number} full refresh: fact rows"] = sum(rows.values())

    def _fact_rows(self) -> dict[dt.date, int]:
        import duckdb

        path = self.lake / "refined" / "movie_lake.duckdb"
        with duckdb.connect(str(path), read_only=True) as connection:
            rows = connection.execute(
                "select snapshot_date, count(*) from refined.fct_movie_popularity group by 1"
            ).fetchall()
        return {day: int(count) for day, count in rows}

    def _day_checks(self, number: int) -> dict[str, int | float | str]:
        rows = self._fact_rows()
        day = self.day(number)
        checks: dict[str, int | float | str] = {
            f"day {number}: snapshot dates in the fact": len(rows),
            f"day {number}: fact rows of the day": rows.get(day, 0),
        }
        reports = sorted((self.lake / "trusted" / "_runs").glob(f"{day.isoformat()}_*.json"))
        if reports:
            tables = json.loads(reports[-1].read_text(encoding="utf-8")).get("tables", {})
            skipped = [t for t in IMDB_TABLES if isinstance(tables.get(t), dict)
                       and tables[t].get("skipped")]  # fmt: skip
            checks[f"day {number}: IMDb tables the trusted job skipped"] = len(skipped)
        return checks


def measure(cfg: Config, catalogue: Any) -> Stage:
    days = sorted(set(cfg.history_days))
    history = History(cfg, catalogue)
    started = time.perf_counter()
    history.start()
    history.daily_run(1)
    history.extract([2])
    history.daily_run(2)
    last = 2
    for target in days:
        simulated = list(range(last + 1, target))
        if simulated:
            log.info("history: simulating days %d to %d", simulated[0], simulated[-1])
            history.extract(simulated, max_pages=1)
            history.simulate_snapshots(simulated)
            history.catch_up(simulated)
        history.extract([target])
        history.daily_run(target)
        last = target
    history.refresh(last)
    history.checks["stage seconds (all of it, simulation included)"] = round(
        time.perf_counter() - started
    )

    stage = Stage(
        "history",
        "6. Daily runs over a growing history (trusted job + dbt build)",
        note="The daily pipeline on day 1, day 2 and day D after D-1 days of TMDB snapshots of "
        "the whole catalogue (the full-size CSVs landed once, on day 1): the trusted job, then "
        "`dbt build` (every model and test), each with RUN_DATE = the day, one run each (a "
        "day's run changes the lake, so it is not repeated). Days between are simulated "
        "(bench/history.py): raw genre and details partitions by the real extractor, trusted "
        "snapshot partitions written from day 2's, refined caught up by one incremental dbt "
        "run. Baselines: the same stage on day 1 (the target: day D at most "
        f"{TARGET_RATIO}x) and on day 2 (the first incremental day). Last, `dbt build "
        "--full-refresh` on the last day, beside that day's daily build.",
    )
    for name, runs in (("trusted", history.trusted), ("dbt", history.dbt)):
        label = "trusted job" if name == "trusted" else "dbt build"
        for number in days:
            figure = Figure(
                f"history_{name}_day{number}_seconds",
                f"{label}, day {number}",
                "s",
                runs[number].seconds,
                "lower",
                [runs[number].seconds],
            )
            figure.beside(f"{label}, day 1", runs[1].seconds, [runs[1].seconds])
            figure.beside(f"{label}, day 2", runs[2].seconds, [runs[2].seconds])
            stage.figures.append(figure)
    if history.full_refresh is not None:
        refresh = Figure(
            f"history_dbt_full_refresh_day{last}_seconds",
            f"dbt build --full-refresh, day {last}",
            "s",
            history.full_refresh.seconds,
            "lower",
            [history.full_refresh.seconds],
        )
        refresh.beside(f"dbt build, day {last}", history.dbt[last].seconds)
        refresh.beside("dbt build, day 1", history.dbt[1].seconds)
        stage.figures.append(refresh)
    stage.checks.update(history.checks)
    return stage


def targets(stage: Stage) -> list[Target]:
    """Day D ÷ day 1 for each stage (the goal), and day D ÷ day 2: the trusted job of day 1
    builds the IMDb tables, which later days skip (their landing is unchanged), so day 2,
    the first incremental day, is the run that shows whether a day's cost grows."""
    found = []
    for figure in stage.figures:
        if not figure.id.startswith(("history_trusted_day", "history_dbt_day")):
            continue
        stage_name = "trusted job" if "trusted" in figure.id else "dbt build"
        day = figure.label.rsplit(" ", 1)[-1]
        for base, since in zip(figure.baselines, ("day 1", "day 2"), strict=False):
            found.append(
                Target(
                    figure.id.replace("_seconds", f"_vs_{since.replace(' ', '')}"),
                    f"{stage_name}: day {day} ÷ {since} (wall time)",
                    f"≤ {TARGET_RATIO}×",
                    base.ratio,
                    "×",
                    TARGET_RATIO,
                    "lower",
                )
            )
    return found
