"""A seeded, deterministic generator of IMDb-shaped ``movies.csv`` and ``series.csv``.

The files have exactly the real headers and every quirk of the real ones (docs/architecture.md):
``|`` separator with no quoting (a ``"`` is an ordinary character), ``\\N`` as null in any
column (``anoLancamento`` included), an empty ``profissao`` now and then, one row per
title x credited artist with the title fields repeated, comma lists in ``genero``,
``profissao`` and ``titulosMaisConhecidos``, character names glued together in
``personagem``, a share of horror titles, a few exact duplicate rows, and CRLF line endings
for movies (LF for series) so both are exercised. ``--malformed N`` adds N broken rows (a
missing field, an extra field, a non-numeric year, a rating of ``abc``).

The same seed and sizes always give byte-identical files::

    python -m ingestion.sample_data --rows 3000 --series-rows 1200 --out data/sample
    python -m ingestion.sample_data --rows 1100000 --series-rows 440000 --out bench/data
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Iterator
from pathlib import Path

from ingestion.csv_schema import MOVIES_HEADER, SERIES_HEADER

log = logging.getLogger(__name__)

NULL = "\\N"
GENRES = [
    "Drama", "Comedy", "Action", "Thriller", "Romance", "Crime", "Adventure", "Sci-Fi",
    "Mystery", "Fantasy", "Animation", "Family", "Documentary", "Biography", "History",
    "War", "Western", "Music", "Sport",
]  # fmt: skip
HORROR = "Horror"
WORDS = [
    "night", "house", "blood", "shadow", "river", "last", "dark", "silent", "city", "love",
    "ghost", "winter", "road", "king", "secret", "lost", "dead", "summer", "eye", "storm",
    "mirror", "hollow", "island", "dream", "fire", "stranger", "garden", "witch", "cabin",
    "noite", "casa", "sangue", "sombra", "morte", "olhos", "medo", "lago", "fim", "vida",
]  # fmt: skip
FIRST = [
    "Ana", "João", "Maria", "Pedro", "Lucía", "Chloé", "Björn", "Zoë", "Kenji", "Amara",
    "Jean-Luc", "Siobhán", "Nikolai", "Fatima", "Diego", "Emma", "Liam", "Olga", "Tomás",
]  # fmt: skip
LAST = [
    "Silva", "Santos", "O'Brien", "Müller", "García", "Kowalski", "Nakamura", "Dubois",
    "Rossi", "Andersson", "Okafor", "Smith", "Ivanova", "Costa", "Haddad", "Lee",
]  # fmt: skip
CHARACTERS = ["Self", "The Killer", "Detective", "Mother", "Ghost", "Narrator", "Victim",
              "Sheriff", "Dr. Frank", "Young Girl", "The Priest", "Himself", "Herself"]  # fmt: skip
PROFESSIONS = ["actor", "actress", "producer", "writer", "director", "soundtrack",
               "miscellaneous", "composer", "editor"]  # fmt: skip


def _maybe_null(rng: random.Random, value: str, null_share: float) -> str:
    return NULL if rng.random() < null_share else value


def _title(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(1, 4))
    text = " ".join(words).title()
    roll = rng.random()
    if roll < 0.03:
        text = f'"{text}"'  # quotes are ordinary characters in these files
    elif roll < 0.06:
        text += ": Part " + str(rng.randint(2, 6))
    return text


def _title_fields(rng: random.Random, number: int, series: bool) -> list[str]:
    title_id = f"tt{number:07d}"
    primary = _title(rng)
    original = primary if rng.random() < 0.7 else _title(rng)
    start = rng.randint(1915, 2022)
    genres = rng.sample(GENRES, rng.randint(1, 3))
    if rng.random() < 0.15:
        genres[rng.randrange(len(genres))] = HORROR
    fields = [
        title_id,
        primary,
        _maybe_null(rng, original, 0.01),
        _maybe_null(rng, str(start), 0.03),
    ]
    if series:
        end = _maybe_null(rng, str(min(start + rng.randint(0, 12), 2023)), 0.4)
        fields.append(end)
    fields += [
        _maybe_null(rng, str(rng.randint(20 if series else 60, 200)), 0.08),
        _maybe_null(rng, ",".join(genres), 0.02),
        _maybe_null(rng, f"{rng.randint(10, 99) / 10:.1f}", 0.05),
        _maybe_null(rng, str(int(rng.paretovariate(1.2) * 5)), 0.05),
    ]
    return fields


def _artist_fields(rng: random.Random, max_title: int, no_birth_year: bool) -> list[str]:
    category = rng.choice(["actor", "actress"])
    glued = "".join(rng.sample(CHARACTERS, rng.randint(1, 3)))  # no separator, as in IMDb
    birth = rng.randint(1880, 2010)
    died = _maybe_null(rng, str(min(birth + rng.randint(20, 100), 2022)), 0.85)
    professions = ",".join(rng.sample(PROFESSIONS, rng.randint(1, 3)))
    known_for = ",".join(f"tt{rng.randint(1, max_title):07d}" for _ in range(rng.randint(1, 4)))
    return [
        _maybe_null(rng, category, 0.02),
        _maybe_null(rng, glued, 0.1),
        f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        NULL if no_birth_year or rng.random() < 0.3 else str(birth),
        died,
        "" if rng.random() < 0.05 else professions,
        _maybe_null(rng, known_for, 0.05),
    ]


def _malformed(rng: random.Random, row: list[str], kind: int, series: bool) -> list[str]:
    broken = list(row)
    year_at = 3
    rating_at = 7 if series else 6
    if kind == 0:
        broken.pop(rng.randrange(1, len(broken)))  # one field too few
    elif kind == 1:
        broken.insert(rng.randrange(1, len(broken)), "extra")  # one field too many
    elif kind == 2:
        broken[year_at] = "19x5"  # a year that is not a number
    else:
        broken[rating_at] = "abc"  # a rating that is not a number
    return broken


def generate_rows(
    rows: int, *, series: bool, seed: int, malformed: int = 0, duplicates: int = 3
) -> Iterator[str]:
    """The data lines (no header, no line ending) of one file, deterministically."""
    rng = random.Random(f"{seed}-{'series' if series else 'movies'}")
    first_id = 5_000_000 if series else 1
    emitted = 0
    number = first_id
    max_title = first_id + rows
    broken_every = rows // (malformed + 1) if malformed else 0
    broken_done = 0
    dup_every = rows // (duplicates + 1) if duplicates else 0
    while emitted < rows:
        title = _title_fields(rng, number, series)
        number += rng.randint(1, 3)
        no_birth = rng.random() < 0.02  # titles where no artist has a birth year
        for _ in range(min(rng.choice([1, 1, 2, 3, 3, 4, 5, 8]), rows - emitted)):
            row = title + _artist_fields(rng, max_title, no_birth)
            if (
                broken_every
                and broken_done < malformed
                and emitted == broken_every * (broken_done + 1)
            ):
                row = _malformed(rng, row, broken_done % 4, series)
                broken_done += 1
            line = "|".join(row)
            yield line
            emitted += 1
            if dup_every and emitted % dup_every == 0 and emitted < rows:
                yield line  # an exact duplicate row, as the real exports have
                emitted += 1


def write_file(
    path: Path, rows: int, *, series: bool, seed: int, malformed: int, crlf: bool
) -> Path:
    header = SERIES_HEADER if series else MOVIES_HEADER
    ending = "\r\n" if crlf else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("|".join(header) + ending)
        batch: list[str] = []
        for line in generate_rows(rows, series=series, seed=seed, malformed=malformed):
            batch.append(line)
            if len(batch) >= 10_000:
                handle.write(ending.join(batch) + ending)
                batch.clear()
        if batch:
            handle.write(ending.join(batch) + ending)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.sample_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=3000, help="movie rows (title x artist)")
    parser.add_argument("--series-rows", type=int, default=1200, help="series rows")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--malformed", type=int, default=4, help="broken rows per file")
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for name, rows, series, crlf in (
        ("movies.csv", args.rows, False, True),
        ("series.csv", args.series_rows, True, False),
    ):
        path = write_file(args.out / name, rows, series=series, seed=args.seed,
                          malformed=args.malformed, crlf=crlf)  # fmt: skip
        log.info("wrote %s (%d rows, %d bytes)", path, rows, path.stat().st_size)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
