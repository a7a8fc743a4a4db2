"""CSV landing on every backend (the ``lake`` fixture): layout, idempotence, refusals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ingestion.csv_landing import CsvValidationError, land_csv
from ingestion.csv_schema import MOVIES_HEADER, SERIES_HEADER
from ingestion.lake import Lake, LakeConflictError

DAY = dt.date(2024, 3, 1)
PREFIX = "raw/local/csv/movies/year=2024/month=03/day=01/"
ROW = "tt0000001|Night|Night|1990|90|Horror|7.1|100|actor|Self|Ana Silva|1950|\\N|actor|tt0000002"


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _movies(tmp_path: Path, rows: list[str], name: str = "movies.csv", eol: str = "\r\n") -> Path:
    return _write(tmp_path / name, eol.join(["|".join(MOVIES_HEADER), *rows]) + eol)


def test_lands_file_manifest_and_success_under_the_raw_layout(lake: Lake, tmp_path: Path) -> None:
    bad = ROW.rsplit("|", 1)[0]  # one field short: landed as sent, counted
    src = _movies(tmp_path, [ROW, bad, ROW.replace("tt0000001", "tt0000003")])
    result = land_csv(lake, "movies", src, DAY)
    assert result.status == "written"
    assert lake.list(PREFIX) == [
        PREFIX + "_SUCCESS",
        PREFIX + "_manifest.json",
        PREFIX + "movies.csv",
    ]
    assert lake.get_bytes(PREFIX + "movies.csv") == src.read_bytes()  # as sent, CRLF and all
    manifest = json.loads(lake.get_bytes(PREFIX + "_manifest.json"))
    assert manifest["rows"] == 3 and manifest["bad_field_count_rows"] == 1
    assert manifest["bad_field_count_lines"] == [3]
    assert manifest["source_file"] == "movies.csv" and len(manifest["sha256"]) == 64
    assert manifest["bytes"] == src.stat().st_size and manifest["run_id"]
    assert manifest["files"] == [
        {"key": PREFIX + "movies.csv", "records": 3, "sha256": manifest["sha256"],
         "bytes": manifest["bytes"]}
    ]  # fmt: skip


def test_landing_the_same_file_twice_is_unchanged(lake: Lake, tmp_path: Path) -> None:
    src = _movies(tmp_path, [ROW])
    land_csv(lake, "movies", src, DAY)
    before = {k: lake.get_bytes(k) for k in lake.list(PREFIX)}
    again = land_csv(lake, "movies", src, DAY)
    assert again.status == "unchanged" and again.rows == 1
    assert {k: lake.get_bytes(k) for k in lake.list(PREFIX)} == before


def test_a_different_file_for_the_same_day_fails_and_keeps_the_first(
    lake: Lake, tmp_path: Path
) -> None:
    first = _movies(tmp_path, [ROW], "first.csv")
    land_csv(lake, "movies", first, DAY)
    second = _movies(tmp_path, [ROW, ROW.replace("1990", "1991")], "second.csv")
    with pytest.raises(LakeConflictError, match="already landed for 2024-03-01 from first.csv"):
        land_csv(lake, "movies", second, DAY)
    assert lake.get_bytes(PREFIX + "movies.csv") == first.read_bytes()
    # another day is a new partition and lands fine
    assert land_csv(lake, "movies", second, dt.date(2024, 3, 2)).status == "written"


def test_an_interrupted_landing_is_redone(lake: Lake, tmp_path: Path) -> None:
    lake.put_bytes(PREFIX + "movies.csv", b"half a file from a crashed run")
    src = _movies(tmp_path, [ROW])
    assert land_csv(lake, "movies", src, DAY).status == "written"
    assert lake.get_bytes(PREFIX + "movies.csv") == src.read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "|".join(MOVIES_HEADER[:-1]) + "\n" + ROW + "\n",
            "missing column.s. titulosMaisConhecidos",
        ),
        ("|".join(SERIES_HEADER) + "\n" + ROW + "\n", "unexpected column.s. anoTermino"),
        (",".join(MOVIES_HEADER) + "\n" + ROW.replace("|", ",") + "\n", "uses ',' as separator"),
        ("|".join(MOVIES_HEADER) + "\r\n", "has a header but no data rows"),
        ("", "is empty"),
        (b"\xef\xbb\xbf" + "|".join(MOVIES_HEADER).encode() + b"\n", "byte-order mark"),
        ("|".join(MOVIES_HEADER) + "\n" + ROW + "\n" + "tt9|Caf\xe9", "not valid UTF-8"),
    ],
    ids=["missing-column", "extra-column", "separator", "no-rows", "empty", "bom", "latin1"],
)
def test_bad_files_are_refused_and_nothing_lands(
    lake: Lake, tmp_path: Path, content: str | bytes, message: str
) -> None:
    if isinstance(content, str) and "\xe9" in content:
        content = content.encode("latin-1")  # a Latin-1 é: invalid UTF-8 after the header
    src = _write(tmp_path / "movies.csv", content)
    with pytest.raises(CsvValidationError, match=message):
        land_csv(lake, "movies", src, DAY)
    assert lake.list("raw/") == []


def test_a_missing_file_names_the_setting(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(CsvValidationError, match="does not exist: set MOVIES_CSV"):
        land_csv(lake, "movies", tmp_path / "nope.csv", DAY)
