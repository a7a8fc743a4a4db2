"""Writes small raw partitions in the layout of docs/lake-contract.md, for the Spark tests.

Files are written as a landing writer does: data files, then ``_manifest.json``, then
``_SUCCESS`` (left out with ``complete=False``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

MOVIES_HEADER = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|tempoMinutos|genero|notaMedia|numeroVotos|"
    "generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|profissao|"
    "titulosMaisConhecidos"
)
SERIES_HEADER = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|anoTermino|tempoMinutos|genero|notaMedia|"
    "numeroVotos|generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|profissao|"
    "titulosMaisConhecidos"
)
HEADERS = {"movies": MOVIES_HEADER, "series": SERIES_HEADER}
FETCHED_AT = "2024-01-02T10:00:00.000Z"


def partition(date: dt.date) -> str:
    return f"year={date:%Y}/month={date:%m}/day={date:%d}"


def movie_row(title_id: str, artist: str = "Ana Lima", **overrides: str) -> str:
    """A valid movies.csv line; keyword arguments replace fields by their header name."""
    fields = {
        "id": title_id,
        "tituloPincipal": f"Title {title_id}",
        "tituloOriginal": f"Original {title_id}",
        "anoLancamento": "1999",
        "tempoMinutos": "95",
        "genero": "Horror,Drama",
        "notaMedia": "6.5",
        "numeroVotos": "120",
        "generoArtista": "actress",
        "personagem": "Herself",
        "nomeArtista": artist,
        "anoNascimento": "1970",
        "anoFalecimento": "\\N",
        "profissao": "actress,producer",
        "titulosMaisConhecidos": "tt0000001,tt0000002",
    }
    fields.update(overrides)
    return "|".join(fields[name] for name in MOVIES_HEADER.split("|"))


def series_row(title_id: str, artist: str = "Rui Souza", **overrides: str) -> str:
    fields = dict(
        zip(MOVIES_HEADER.split("|"), movie_row(title_id, artist).split("|"), strict=True)
    )
    fields["anoTermino"] = "2003"
    fields.update(overrides)
    return "|".join(fields[name] for name in SERIES_HEADER.split("|"))


def discover_movie(tmdb_id: int, **overrides: Any) -> dict[str, Any]:
    movie = {
        "id": tmdb_id,
        "title": f"Filme {tmdb_id}",
        "original_title": f"Movie {tmdb_id}",
        "original_language": "en",
        "overview": "Uma história.",
        "popularity": 12.5,
        "vote_average": 6.1,
        "vote_count": 300,
        "release_date": "2001-05-04",
        "genre_ids": [27, 53],
        "adult": False,
    }
    movie.update(overrides)
    return movie


def record(
    path: str,
    response: Any,
    *,
    status: int = 200,
    fetched_at: str = FETCHED_AT,
    language: str = "pt-BR",
    **params: Any,
) -> str:
    """One raw TMDB line: an API response wrapped with its request."""
    return json.dumps(
        {
            "fetched_at": fetched_at,
            "request": {"path": path, "params": {"language": language, **params}},
            "status": status,
            "response": response,
        },
        ensure_ascii=False,
    )


def discover_page(movies: list[dict[str, Any]], page: int = 1, **kw: Any) -> str:
    body = {"page": page, "results": movies, "total_pages": 1, "total_results": len(movies)}
    return record("/discover/movie", body, page=page, with_genres="27", **kw)


def details(tmdb_id: int, imdb_id: str | None = "tt0000001", **kw: Any) -> str:
    fetched_at = kw.pop("fetched_at", FETCHED_AT)
    body = {
        "id": tmdb_id,
        "imdb_id": imdb_id,
        "title": kw.pop("title", f"Filme {tmdb_id}"),
        "original_title": f"Movie {tmdb_id}",
        "runtime": 101,
        "budget": 1000000,
        "revenue": 5000000,
        "release_date": "2001-05-04",
        "genres": [{"id": 27, "name": "Terror"}],
        "overview": "",
        "popularity": 3.2,
    }
    body.update(kw)
    return record(f"/movie/{tmdb_id}", body, fetched_at=fetched_at)


def genre_list(genres: list[tuple[int, str]], language: str = "pt-BR", **kw: Any) -> str:
    body = {"genres": [{"id": i, "name": n} for i, n in genres]}
    return record("/genre/movie/list", body, language=language, **kw)


class RawLakeBuilder:
    """A local lake folder and the means to land raw partitions in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return str(self.root)

    def _finish(
        self,
        folder: Path,
        dataset: str,
        files: list[tuple[str, int]],
        complete: bool,
        extra_manifest: dict[str, Any] | None = None,
    ) -> None:
        manifest = {
            "dataset": dataset,
            "run_id": "test",
            "files": [{"key": key, "records": records} for key, records in files],
            **(extra_manifest or {}),
        }
        (folder / "_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        if complete:
            (folder / "_SUCCESS").write_bytes(b"")

    def csv(
        self,
        dataset: str,
        date: dt.date,
        rows: list[str],
        *,
        newline: str = "\n",
        header: bool = True,
        complete: bool = True,
        records: int | None = None,
    ) -> str:
        """Land ``rows`` (data lines) as ``<dataset>.csv``; returns its lake key."""
        key = f"raw/local/csv/{dataset}/{partition(date)}/{dataset}.csv"
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ([HEADERS[dataset]] if header else []) + rows
        text = "".join(line + newline for line in lines)
        path.write_bytes(text.encode("utf-8"))
        count = len(rows) if records is None else records
        self._finish(path.parent, dataset, [(key, count)], complete, {"rows": count})
        return key

    def tmdb(
        self,
        dataset: str,
        date: dt.date,
        lines: list[str],
        *,
        complete: bool = True,
        files: int = 1,
    ) -> list[str]:
        """Land ``lines`` in ``files`` jsonl part files; returns their lake keys."""
        folder = self.root / f"raw/tmdb/json/{dataset}/{partition(date)}"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for n in range(files):
            chunk = lines[n::files]
            key = f"raw/tmdb/json/{dataset}/{partition(date)}/part-test-{n:05d}.jsonl"
            (self.root / key).write_text("".join(line + "\n" for line in chunk), encoding="utf-8")
            written.append((key, len(chunk)))
        self._finish(folder, dataset, written, complete)
        return [key for key, _ in written]

    def tmdb_day(self, date: dt.date, movies: list[dict[str, Any]] | None = None) -> None:
        """A complete, small TMDB day: one discover page, details of its movies, genres."""
        movies = movies if movies is not None else [discover_movie(1), discover_movie(2)]
        self.tmdb("discover", date, [discover_page(movies)])
        self.tmdb("movie_details", date, [details(m["id"], f"tt{m['id']:07d}") for m in movies])
        self.tmdb("genres", date, [genre_list([(27, "Terror"), (53, "Thriller")])])

    def leftover(self, key: str, text: str = "junk|not|listed\n") -> None:
        """A file no manifest lists (a leftover of an interrupted run)."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
