"""A seeded, deterministic movie catalogue that answers like TMDB's API v3.

The same seed and inputs always give the same catalogue. ``day`` serves a later day of it: the
same movies, whose popularity and vote counts moved (seeded by the seed, the day and the id), as
TMDB's do from one daily snapshot to the next. Horror titles of an IMDb-style CSV
(``data/sample/movies.csv``) mostly get a TMDB movie carrying their ``imdb_id`` and release
year, with pt-BR titles that differ from the IMDb ones (as real translations do); TMDB-only
movies fill the catalogue up to the requested size, some without an ``imdb_id``, some with no
release date, some with an empty pt-BR overview; non-horror movies are mixed in.

Answers follow TMDB: ``/discover/movie`` pages of 20 that stop at page 500 (HTTP 400, status
code 22) while ``total_results`` and ``total_pages`` still count everything; movies with no
release date are left out by any ``primary_release_date`` filter and sort last either way.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import math
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PAGE_SIZE = 20
MAX_PAGE = 500
HORROR = 27

GENRES_EN: dict[int, str] = {
    28: "Action",
    12: "Adventure",
    16: "Animation",
    35: "Comedy",
    80: "Crime",
    99: "Documentary",
    18: "Drama",
    10751: "Family",
    14: "Fantasy",
    36: "History",
    27: "Horror",
    10402: "Music",
    9648: "Mystery",
    10749: "Romance",
    878: "Science Fiction",
    10770: "TV Movie",
    53: "Thriller",
    10752: "War",
    37: "Western",
}
GENRES_PT: dict[int, str] = {
    28: "Ação",
    12: "Aventura",
    16: "Animação",
    35: "Comédia",
    80: "Crime",
    99: "Documentário",
    18: "Drama",
    10751: "Família",
    14: "Fantasia",
    36: "História",
    27: "Terror",
    10402: "Música",
    9648: "Mistério",
    10749: "Romance",
    878: "Ficção científica",
    10770: "Cinema TV",
    53: "Thriller",
    10752: "Guerra",
    37: "Faroeste",
}

ERRORS: dict[str, tuple[int, dict[str, object]]] = {
    "invalid_key": (
        401,
        {
            "success": False,
            "status_code": 7,
            "status_message": "Invalid API key: You must be granted a valid key.",
        },
    ),
    "not_found": (
        404,
        {
            "success": False,
            "status_code": 34,
            "status_message": "The resource you requested could not be found.",
        },
    ),
    "invalid_page": (
        400,
        {
            "success": False,
            "status_code": 22,
            "status_message": "Invalid page: Pages start at 1 and max at 500. "
            "They are expected to be an integer.",
        },
    ),
    "invalid_date": (
        422,
        {
            "success": False,
            "status_code": 47,
            "status_message": "The input is not valid.",
        },
    ),
    "rate_limited": (
        429,
        {
            "success": False,
            "status_code": 25,
            "status_message": "Your request count (#) is over the allowed limit of (40).",
        },
    ),
}

_EN_WORDS = [
    "Night",
    "Dark",
    "Blood",
    "House",
    "Shadow",
    "Silent",
    "Curse",
    "Hollow",
    "Witch",
    "Grave",
    "Moon",
    "Fear",
    "Dead",
    "Cellar",
    "Whisper",
    "Forest",
    "Mirror",
    "Ghost",
    "Hunger",
    "Return",
    "Midnight",
    "Crimson",
    "Bone",
    "Lake",
    "Asylum",
    "Ritual",
]
_PT_NOUNS = [
    "A Casa",
    "A Noite",
    "O Espelho",
    "A Floresta",
    "O Porão",
    "A Maldição",
    "O Ritual",
    "A Sombra",
    "O Túmulo",
    "A Bruxa",
    "O Silêncio",
    "A Fome",
    "O Retorno",
    "O Asilo",
    "A Lua",
    "O Lago",
    "A Vigília",
    "O Chamado",
]
_PT_TAILS = [
    "Sombria",
    "Maldita",
    "do Medo",
    "das Almas",
    "Sangrenta",
    "Proibida",
    "do Além",
    "Escura",
    "Perdida",
    "da Meia-Noite",
    "Esquecida",
    "Amaldiçoada",
    "sem Fim",
    "dos Mortos",
    "Vermelha",
    "Oculta",
]
_LANGUAGES = ("en", "en", "en", "en", "es", "ja", "ko", "fr", "it", "pt", "de", "th")


@dataclass(frozen=True, slots=True)
class FakeMovie:
    id: int
    imdb_id: str | None  # "tt...", "" or None: TMDB has all three
    title_en: str
    title_pt: str
    original_title: str
    original_language: str
    overview_en: str
    overview_pt: str  # may be "" (no translation)
    release_date: str  # "YYYY-MM-DD" or "" (unknown)
    genre_ids: tuple[int, ...]
    popularity: float
    vote_average: float
    vote_count: int
    runtime: int | None
    budget: int
    revenue: int


@dataclass(frozen=True)
class ImdbTitle:
    id: str
    primary_title: str
    original_title: str
    year: int | None
    runtime: int | None


def read_imdb_horror(csv_path: str | Path) -> list[ImdbTitle]:
    """Distinct titles whose ``genero`` holds ``Horror``, in file order (``|``-separated CSV)."""
    seen: dict[str, ImdbTitle] = {}
    with Path(csv_path).open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split("|")
        col = {name: i for i, name in enumerate(header)}
        for name in ("id", "tituloPincipal", "tituloOriginal", "anoLancamento", "genero"):
            if name not in col:
                raise ValueError(f"{csv_path}: header has no column {name!r}: {header}")
        for line in handle:
            fields = line.rstrip("\r\n").split("|")
            if len(fields) < len(header):
                continue
            title_id = fields[col["id"]]
            if title_id in seen or "Horror" not in fields[col["genero"]].split(","):
                continue
            year = fields[col["anoLancamento"]]
            minutes = fields[col.get("tempoMinutos", -1)] if "tempoMinutos" in col else ""
            seen[title_id] = ImdbTitle(
                id=title_id,
                primary_title=fields[col["tituloPincipal"]],
                original_title=fields[col["tituloOriginal"]],
                year=int(year) if year.isdigit() else None,
                runtime=int(minutes) if minutes.isdigit() else None,
            )
    return list(seen.values())


def _language(value: str | None) -> str:
    return "pt" if (value or "").lower().startswith("pt") else "en"


class _GenreIndex:
    """The movies of one ``with_genres`` value, pre-sorted the ways discover sorts them."""

    def __init__(self, movies: Iterable[FakeMovie]) -> None:
        movies = list(movies)
        self.dated = sorted((m for m in movies if m.release_date), key=_date_key)
        self.dates = [m.release_date for m in self.dated]
        self.undated = sorted((m for m in movies if not m.release_date), key=lambda m: m.id)
        self.by_popularity = sorted(movies, key=lambda m: (-m.popularity, m.id))


def _date_key(movie: FakeMovie) -> tuple[str, int]:
    return (movie.release_date, movie.id)


class Catalogue:
    """The movies, and TMDB-shaped answers about them. Read-only once built; thread-safe."""

    def __init__(self, movies: Iterable[FakeMovie]) -> None:
        self.movies: list[FakeMovie] = list(movies)
        self.by_id: dict[int, FakeMovie] = {m.id: m for m in self.movies}
        if len(self.by_id) != len(self.movies):
            raise ValueError("catalogue movie ids must be unique")
        self._indexes: dict[str, _GenreIndex] = {}
        self._lock = threading.Lock()

    # -- facts tests compare against ------------------------------------------------------
    def ids_with_genre(self, genre_id: int = HORROR) -> set[int]:
        return {m.id for m in self.movies if genre_id in m.genre_ids}

    def undated_ids(self, genre_id: int = HORROR) -> set[int]:
        return {m.id for m in self.movies if genre_id in m.genre_ids and not m.release_date}

    # -- answers ---------------------------------------------------------------------------
    def genres(self, language: str | None) -> dict[str, object]:
        names = GENRES_PT if _language(language) == "pt" else GENRES_EN
        return {
            "genres": [
                {"id": gid, "name": name}
                for gid, name in sorted(names.items(), key=lambda kv: GENRES_EN[kv[0]])
            ]
        }

    def _index(self, with_genres: str) -> _GenreIndex:
        with self._lock:
            index = self._indexes.get(with_genres)
            if index is None:
                if not with_genres:
                    chosen: Iterable[FakeMovie] = self.movies
                elif "|" in with_genres:
                    wanted = {int(g) for g in with_genres.split("|") if g}
                    chosen = [m for m in self.movies if wanted.intersection(m.genre_ids)]
                else:
                    wanted = {int(g) for g in with_genres.split(",") if g}
                    chosen = [m for m in self.movies if wanted.issubset(m.genre_ids)]
                index = self._indexes[with_genres] = _GenreIndex(chosen)
            return index

    def discover(self, params: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """``/discover/movie``: (HTTP status, body)."""
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            page = 0
        if not 1 <= page <= MAX_PAGE:
            return ERRORS["invalid_page"]
        try:
            index = self._index(params.get("with_genres", "").replace(" ", ""))
        except ValueError:
            return ERRORS["invalid_date"]
        gte = params.get("primary_release_date.gte")
        lte = params.get("primary_release_date.lte")
        for value in (gte, lte):
            if value is not None:
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    return ERRORS["invalid_date"]
        sort_by = params.get("sort_by", "popularity.desc")
        if gte is None and lte is None:
            if sort_by.startswith("primary_release_date"):
                dated = index.dated if sort_by.endswith(".asc") else index.dated[::-1]
                selected: list[FakeMovie] = dated + index.undated
            elif sort_by == "popularity.asc":
                selected = index.by_popularity[::-1]
            else:
                selected = index.by_popularity
        else:
            lo = 0 if gte is None else bisect.bisect_left(index.dates, gte)
            hi = len(index.dates) if lte is None else bisect.bisect_right(index.dates, lte)
            selected = index.dated[lo:hi]
            if sort_by == "primary_release_date.desc":
                selected = selected[::-1]
            elif sort_by.startswith("popularity"):
                selected = sorted(
                    selected,
                    key=lambda m: (-m.popularity, m.id),
                    reverse=sort_by.endswith(".asc"),
                )
        total = len(selected)
        start = (page - 1) * PAGE_SIZE
        language = _language(params.get("language"))
        return 200, {
            "page": page,
            "results": [self._result(m, language) for m in selected[start : start + PAGE_SIZE]],
            "total_pages": max(1, math.ceil(total / PAGE_SIZE)),
            "total_results": total,
        }

    def details(self, movie_id: int, language: str | None) -> tuple[int, dict[str, object]]:
        """``/movie/{id}``: (HTTP status, body)."""
        movie = self.by_id.get(movie_id)
        if movie is None:
            return ERRORS["not_found"]
        lang = _language(language)
        names = GENRES_PT if lang == "pt" else GENRES_EN
        return 200, {
            "adult": False,
            "backdrop_path": f"/b{movie.id}.jpg",
            "belongs_to_collection": None,
            "budget": movie.budget,
            "genres": [{"id": g, "name": names[g]} for g in movie.genre_ids],
            "homepage": "",
            "id": movie.id,
            "imdb_id": movie.imdb_id,
            "original_language": movie.original_language,
            "original_title": movie.original_title,
            "overview": movie.overview_pt if lang == "pt" else movie.overview_en,
            "popularity": movie.popularity,
            "poster_path": f"/p{movie.id}.jpg",
            "release_date": movie.release_date,
            "revenue": movie.revenue,
            "runtime": movie.runtime,
            "status": "Released" if movie.release_date else "Planned",
            "tagline": "",
            "title": movie.title_pt if lang == "pt" else movie.title_en,
            "video": False,
            "vote_average": movie.vote_average,
            "vote_count": movie.vote_count,
        }

    @staticmethod
    def _result(movie: FakeMovie, language: str) -> dict[str, object]:
        return {
            "adult": False,
            "backdrop_path": f"/b{movie.id}.jpg",
            "genre_ids": list(movie.genre_ids),
            "id": movie.id,
            "original_language": movie.original_language,
            "original_title": movie.original_title,
            "overview": movie.overview_pt if language == "pt" else movie.overview_en,
            "popularity": movie.popularity,
            "poster_path": f"/p{movie.id}.jpg",
            "release_date": movie.release_date,
            "title": movie.title_pt if language == "pt" else movie.title_en,
            "video": False,
            "vote_average": movie.vote_average,
            "vote_count": movie.vote_count,
        }


def _random_date(rng: random.Random, year: int) -> str:
    day = rng.randrange(365)
    return (dt.date(year, 1, 1) + dt.timedelta(days=day)).isoformat()


def _random_year(rng: random.Random) -> int:
    # Few early films, most in recent decades, a handful announced for the next years.
    if rng.random() < 0.02:
        return rng.randint(2026, 2028)
    return max(1896, min(2025, int(2026 - rng.expovariate(1 / 16))))


def _pt_title(rng: random.Random, avoid: set[str]) -> str:
    for _ in range(5):
        title = f"{rng.choice(_PT_NOUNS)} {rng.choice(_PT_TAILS)}"
        if title not in avoid:
            return title
    return f"{rng.choice(_PT_NOUNS)} {rng.choice(_PT_TAILS)} (título nacional)"


def _en_title(rng: random.Random) -> str:
    return " ".join(rng.sample(_EN_WORDS, rng.choice((1, 2, 3)))).title()


def build_catalogue(
    *,
    movies: int = 400,
    seed: int = 27,
    imdb_titles: list[ImdbTitle] | None = None,
    imdb_csv: str | Path | None = None,
    linked_share: float = 0.85,
    other_genre_share: float = 0.25,
    undated_share: float = 0.01,
    no_imdb_share: float = 0.12,
    empty_overview_share: float = 0.2,
    day: int = 1,
) -> Catalogue:
    """A catalogue with at least ``movies`` horror movies (genre 27) plus non-horror ones.

    ``day`` (1, the default, is the first) picks the day the catalogue is seen on: every day
    has the same movies, ids, titles and details; from day 2 on, each movie's popularity and
    vote count differ, by a change seeded by ``seed``, ``day`` and the movie id (``on_day``).

    ``imdb_csv`` (or already-read ``imdb_titles``) links most of its horror titles
    (``linked_share``) to TMDB movies with the same ``imdb_id`` and release year; the rest of
    the horror movies are TMDB-only. ``other_genre_share`` adds that many non-horror movies
    relative to the horror count. 20,000 movies build in well under a second.
    """
    rng = random.Random(seed)
    if imdb_titles is None and imdb_csv is not None:
        imdb_titles = read_imdb_horror(imdb_csv)
    imdb_titles = imdb_titles or []
    linked = [t for t in imdb_titles if rng.random() < linked_share]
    horror_count = max(movies, len(linked))
    other_count = int(horror_count * other_genre_share)
    total = horror_count + other_count
    ids = rng.sample(range(2, 1_400_000), total)
    out: list[FakeMovie] = []
    serial = 0

    def make(
        *,
        movie_id: int,
        horror: bool,
        imdb_id: str | None,
        title_en: str,
        original_title: str,
        year: int | None,
        runtime: int | None,
        avoid: set[str],
        undated: bool,
    ) -> FakeMovie:
        if horror:
            extra = rng.sample((53, 9648, 14, 878, 35, 18), rng.choice((0, 0, 1, 2)))
            genre_ids = (HORROR, *extra)
        else:
            genre_ids = tuple(rng.sample((28, 12, 35, 18, 80, 10749, 53, 99, 16), 2))
        release = "" if undated or year is None else _random_date(rng, year)
        popularity = round(rng.lognormvariate(1.2, 1.1), 3)
        votes = int(rng.expovariate(1 / 150)) if release else 0
        budget = rng.choice((0, 0, 0, rng.randrange(50_000, 40_000_000, 1000)))
        revenue = 0 if not budget else int(budget * rng.uniform(0.2, 6))
        overview_en = f"{title_en}: a story of {rng.choice(_EN_WORDS).lower()} and dread."
        overview_pt = (
            ""
            if rng.random() < empty_overview_share
            else f"Uma história de {rng.choice(_PT_TAILS).lower()} e medo."
        )
        return FakeMovie(
            id=movie_id,
            imdb_id=imdb_id,
            title_en=title_en,
            title_pt=_pt_title(rng, avoid),
            original_title=original_title,
            original_language=rng.choice(_LANGUAGES),
            overview_en=overview_en,
            overview_pt=overview_pt,
            release_date=release,
            genre_ids=genre_ids,
            popularity=popularity,
            vote_average=round(rng.uniform(2, 8.5), 1) if votes else 0.0,
            vote_count=votes,
            runtime=runtime if runtime is not None else rng.randint(0, 140),
            budget=budget,
            revenue=revenue,
        )

    for title in linked:
        out.append(
            make(
                movie_id=ids[serial],
                horror=True,
                imdb_id=title.id,
                title_en=title.primary_title,
                original_title=title.original_title,
                year=title.year,
                runtime=title.runtime,
                avoid={title.primary_title, title.original_title},
                undated=False,
            )
        )
        serial += 1
    for n in range(total - len(linked)):
        horror = serial < horror_count
        roll = rng.random()
        if roll < no_imdb_share / 2:
            imdb_id: str | None = None
        elif roll < no_imdb_share:
            imdb_id = ""
        else:
            imdb_id = f"tt{10_000_000 + n:08d}"  # 8 digits: never one of the CSV's tt\d{7}
        title_en = _en_title(rng)
        out.append(
            make(
                movie_id=ids[serial],
                horror=horror,
                imdb_id=imdb_id,
                title_en=title_en,
                original_title=title_en,
                year=_random_year(rng),
                runtime=None,
                avoid={title_en},
                undated=rng.random() < undated_share,
            )
        )
        serial += 1
    if day != 1:
        out = [on_day(movie, seed=seed, day=day) for movie in out]
    return Catalogue(out)


def on_day(movie: FakeMovie, *, seed: int, day: int) -> FakeMovie:
    """``movie`` as TMDB shows it on ``day`` (1 is as built): popularity scaled by 0.5x to 2x,
    a few more votes for a movie that has votes. Deterministic for (seed, day, id)."""
    if day < 1:
        raise ValueError(f"day must be 1 or more, got {day}")
    if day == 1:
        return movie
    rng = random.Random(f"{seed}:{day}:{movie.id}")
    votes = movie.vote_count + (rng.randint(0, 9) if movie.vote_count else 0)
    return dataclasses.replace(
        movie, popularity=round(movie.popularity * 2 ** rng.uniform(-1, 1), 3), vote_count=votes
    )


def dumps(body: object) -> bytes:
    """JSON the way TMDB sends it: one compact line, UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
