from __future__ import annotations

from pathlib import Path

from ingestion.csv_schema import MOVIES_HEADER, SERIES_HEADER
from ingestion.sample_data import main

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _generate(out: Path, *extra: str) -> None:
    assert main(["--rows", "2000", "--series-rows", "600", "--out", str(out), *extra]) == 0


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    _generate(tmp_path / "a")
    _generate(tmp_path / "b")
    for name in ("movies.csv", "series.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    _generate(tmp_path / "c", "--seed", "7")
    assert (tmp_path / "c" / "movies.csv").read_bytes() != (
        tmp_path / "a" / "movies.csv"
    ).read_bytes()


def test_output_has_the_real_quirks(tmp_path: Path) -> None:
    _generate(tmp_path, "--malformed", "0")
    movies = (tmp_path / "movies.csv").read_bytes()
    series = (tmp_path / "series.csv").read_bytes()
    assert movies.split(b"\r\n", 1)[0].decode() == "|".join(MOVIES_HEADER)
    assert series.split(b"\n", 1)[0].decode() == "|".join(SERIES_HEADER)
    assert movies.count(b"\r\n") == 2001  # CRLF on every line of movies
    assert b"\r" not in series  # LF only in series
    rows = [line.split("|") for line in movies.decode().split("\r\n")[1:-1]]
    assert all(len(r) == len(MOVIES_HEADER) for r in rows)
    assert any(r[3] == "\\N" for r in rows)  # \N even in anoLancamento
    assert any(r[13] == "" for r in rows)  # an empty profissao
    assert any('"' in r[1] for r in rows)  # quotes are ordinary characters
    assert any("," in r[5] for r in rows) and any("Horror" in r[5] for r in rows)
    per_title: dict[str, set[str]] = {}
    for r in rows:
        per_title.setdefault(r[0], set()).add(r[10])
    assert sum(len(a) > 1 for a in per_title.values()) > 100  # multi-artist titles
    lines = movies.split(b"\r\n")[1:-1]
    assert len(set(lines)) < len(lines)  # exact duplicate rows exist


def test_malformed_rows_on_request(tmp_path: Path) -> None:
    _generate(tmp_path, "--malformed", "4")
    lines = (tmp_path / "movies.csv").read_bytes().decode().split("\r\n")[1:-1]
    counts = [len(line.split("|")) for line in lines]
    assert counts.count(14) == 1 and counts.count(16) == 1
    assert any(line.split("|")[3] == "19x5" for line in lines)
    assert any(line.split("|")[6] == "abc" for line in lines)


def test_committed_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0  # the defaults make data/sample
    for name in ("movies.csv", "series.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes()
