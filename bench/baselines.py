"""The baselines each stage is measured beside, and the Spark and DuckDB references.

In-process baselines (called by ``bench.run``):

- :func:`copy_files`: a plain ``shutil.copyfile`` of the CSVs, the floor of a local landing;
- :func:`sha256_files`: a bare ``hashlib.sha256`` pass over the CSVs (1 MiB reads, a little
  faster here than 8 MiB ones), the floor
  of any landing that hashes what it lands;
- :func:`boto3_upload`: a bare boto3 ``upload_file`` of the same files, the floor of an S3
  landing (boto3's defaults: 8 MiB parts, 10 threads, no checksum or validation pass);
- :func:`sequential_tmdb`: the original project's extraction, one ``requests.get`` at a time,
  per discover page and then per movie.

Engine references, each run as its own process (``python -m bench.baselines <name> ...``) so
that its wall time and peak memory are measured exactly like the trusted job's:

- ``spark-copy``: the engine's floor, both CSVs read as all-string columns and written as
  parquet, nothing else;
- ``spark-copy-dedupe``: the same copy with exact duplicate rows removed (``dropDuplicates()``),
  the floor of any job that must deduplicate: that takes a shuffle of every row, which the
  copy does not do;
- ``spark-original``: the original project's transform (movies CSV with a header and ``|``,
  keep rows whose genre contains Horror, ``dropna()``, ``dropDuplicates(["id"])``, one
  parquet table);
- ``duckdb``: the trusted job's transform on one machine with DuckDB (titles, credits, genres
  per file, rejected rows apart), the single-machine reference.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)


# -- CSV landing ------------------------------------------------------------------------------
def copy_files(paths: Sequence[Path], dest_dir: Path) -> int:
    """Copy each file into ``dest_dir``; return the bytes copied."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in paths:
        shutil.copyfile(path, dest_dir / path.name)
        total += path.stat().st_size
    return total


def sha256_files(paths: Sequence[Path], chunk_size: int = 1024 * 1024) -> int:
    """Hash each file with ``hashlib.sha256``, reading it in ``chunk_size`` pieces; return the
    bytes hashed."""
    import hashlib

    total = 0
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb", buffering=0) as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
                total += len(chunk)
    return total


def boto3_upload(client: Any, bucket: str, paths: Sequence[Path], prefix: str) -> int:
    """Upload each file with boto3's ``upload_file`` (its default transfer settings)."""
    total = 0
    for path in paths:
        client.upload_file(str(path), bucket, f"{prefix}/{path.name}")
        total += path.stat().st_size
    return total


# -- TMDB -------------------------------------------------------------------------------------
@dataclass
class SequentialResult:
    requests: int
    seconds: float
    movies: int
    errors: int


def sequential_tmdb(
    base_url: str,
    api_key: str,
    *,
    max_requests: int,
    genre_id: int = 27,
    language: str = "pt-BR",
    timeout: float = 30.0,
) -> SequentialResult:
    """The original extraction: each discover page, then each movie of it, one at a time.

    Stops after ``max_requests`` requests, so a repetition stays short; the rate it reaches
    does not depend on how far it goes.
    """
    sent = movies = errors = 0
    started = time.perf_counter()
    page = 1
    while sent < max_requests:
        answer = requests.get(
            f"{base_url}/discover/movie",
            params={"api_key": api_key, "with_genres": genre_id, "language": language,
                    "page": page},
            timeout=timeout,
        )  # fmt: skip
        sent += 1
        if answer.status_code != 200:
            errors += 1
            break
        body = answer.json()
        for movie in body["results"]:
            if sent >= max_requests:
                break
            detail = requests.get(
                f"{base_url}/movie/{movie['id']}",
                params={"api_key": api_key, "language": language},
                timeout=timeout,
            )
            sent += 1
            if detail.status_code == 200:
                detail.json()
                movies += 1
            else:
                errors += 1
        if page >= body.get("total_pages", page):
            break
        page += 1
    return SequentialResult(sent, time.perf_counter() - started, movies, errors)


# -- Spark references -------------------------------------------------------------------------
def spark_session(app_name: str) -> Any:
    """A local SparkSession with the trusted job's settings (its own builder and runtime conf)."""
    from spark.trusted_job import configure, local_session

    spark = local_session(app_name)
    configure(spark)
    return spark


def _uri(path: Path) -> str:
    """A Hadoop URI for a local path (``Path.as_uri`` escapes the ``=`` of partition folders)."""
    return "file://" + str(path.resolve())


def spark_copy(movies: Path, series: Path, out: Path, *, dedupe: bool = False) -> None:
    """Both CSVs as all-string columns (``|``, header, no quoting) straight to parquet; with
    ``dedupe``, exact duplicate rows removed on the way."""
    spark = spark_session("bench-spark-copy-dedupe" if dedupe else "bench-spark-copy")
    try:
        for path in (movies, series):
            frame = spark.read.csv(_uri(path), header=True, sep="|", quote="")
            if dedupe:
                frame = frame.dropDuplicates()
            frame.write.mode("overwrite").parquet(_uri(out / path.stem))
    finally:
        spark.stop()


def spark_original(movies: Path, out: Path) -> None:
    """The original project's trusted step, as it was written, on the same Spark."""
    from pyspark.sql import functions as F

    spark = spark_session("bench-spark-original")
    try:
        frame = spark.read.csv(_uri(movies), header=True, sep="|")
        horror = frame.filter(F.col("genero").contains("Horror")).dropna().dropDuplicates(["id"])
        horror.write.mode("overwrite").parquet(_uri(out / "horror_movies"))
    finally:
        spark.stop()


# -- DuckDB reference -------------------------------------------------------------------------
_INTS = ("anoLancamento", "anoTermino", "tempoMinutos", "anoNascimento", "anoFalecimento")
_TITLE = {
    "id": "title_id", "tituloPincipal": "primary_title", "tituloOriginal": "original_title",
    "anoLancamento": "release_year", "anoTermino": "end_year", "tempoMinutos": "runtime_minutes",
    "genero": "genres", "notaMedia": "average_rating", "numeroVotos": "num_votes",
}  # fmt: skip
_CREDIT = {
    "id": "title_id", "nomeArtista": "artist_name", "generoArtista": "artist_category",
    "personagem": "characters", "anoNascimento": "birth_year", "anoFalecimento": "death_year",
    "profissao": "professions", "titulosMaisConhecidos": "known_for_title_ids",
}  # fmt: skip


def _typed_sql(column: str) -> str:
    quoted = f'"{column}"'
    if column in _INTS:
        return f"try_cast({quoted} AS INTEGER)"
    if column == "notaMedia":
        return f"try_cast({quoted} AS DOUBLE)"
    if column == "numeroVotos":
        return f"try_cast({quoted} AS BIGINT)"
    if column in ("genero", "profissao", "titulosMaisConhecidos"):
        return f"CASE WHEN {quoted} = '' THEN []::VARCHAR[] ELSE string_split({quoted}, ',') END"
    return quoted


def duckdb_transform(csv_path: Path, out: Path, threads: int | None = None) -> None:
    """The trusted job's CSV transform in DuckDB: typed, deduplicated, split in three tables.

    Lines with a wrong field count go to DuckDB's rejects table; lines with a value that does
    not cast are rejected too; titles keep the row with the most votes (ties: the smallest
    line); credits drop exact duplicates; genres are the titles' distinct genres.
    """
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(
        "CREATE TEMP TABLE raw AS SELECT * FROM read_csv(?, delim='|', header=true, "
        "all_varchar=true, nullstr='\\N', quote='', escape='', store_rejects=true, "
        "strict_mode=true)",
        [str(csv_path)],
    )
    columns = [row[0] for row in con.execute("DESCRIBE raw").fetchall()]
    checks = " OR ".join(
        f'("{c}" IS NOT NULL AND {_typed_sql(c)} IS NULL)'
        for c in columns
        if c in _INTS or c in ("notaMedia", "numeroVotos")
    )
    line = " || '|' || ".join(f"coalesce(\"{c}\", '\\N')" for c in columns)
    con.execute(
        f"CREATE TEMP TABLE typed AS SELECT {line} AS raw_line, "
        + ", ".join(f'{_typed_sql(c)} AS "{c}"' for c in columns)
        + f' FROM raw WHERE "id" IS NOT NULL AND "id" <> \'\' AND NOT ({checks})'
    )
    con.execute("DROP TABLE raw")
    title_cols = [c for c in columns if c in _TITLE and c != "id"]
    winner = ", ".join(f'"{c}"' for c in title_cols)
    con.execute(
        f"""COPY (
              SELECT "id" AS title_id,
                     {", ".join(f'w."{c}" AS {_TITLE[c]}' for c in title_cols)}
              FROM (SELECT "id", min(struct_pack(k := -coalesce("numeroVotos", -1),
                                                 l := raw_line, {winner})) AS w
                    FROM typed GROUP BY "id")
            ) TO '{out / "titles.parquet"}' (FORMAT parquet, COMPRESSION snappy)"""
    )
    con.execute(
        f"""COPY (
              SELECT {", ".join(f'"{c}" AS {_CREDIT[c]}' for c in _CREDIT)}
              FROM (SELECT DISTINCT ON (raw_line) * FROM typed)
            ) TO '{out / "credits.parquet"}' (FORMAT parquet, COMPRESSION snappy)"""
    )
    con.execute(
        f"""COPY (
              SELECT DISTINCT "id" AS title_id, unnest("genero") AS genre
              FROM typed WHERE "genero" IS NOT NULL
            ) TO '{out / "genres.parquet"}' (FORMAT parquet, COMPRESSION snappy)"""
    )
    con.execute(
        f"COPY (SELECT * FROM reject_errors) TO '{out / 'rejected.parquet'}' (FORMAT parquet)"
    )
    con.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines", description=__doc__)
    parser.add_argument(
        "name", choices=["spark-copy", "spark-copy-dedupe", "spark-original", "duckdb"]
    )
    parser.add_argument("--movies", type=Path, required=True)
    parser.add_argument("--series", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.name in ("spark-copy", "spark-copy-dedupe"):
        spark_copy(args.movies, args.series, args.out, dedupe=args.name == "spark-copy-dedupe")
    elif args.name == "spark-original":
        spark_original(args.movies, args.out)
    else:
        for path in (args.movies, args.series):
            duckdb_transform(path, args.out / path.stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
