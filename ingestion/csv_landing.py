"""Land the IMDb-derived CSV files in raw, exactly as sent.

``raw/local/csv/<dataset>/year=YYYY/month=MM/day=DD/<dataset>.csv`` then ``_manifest.json``
then ``_SUCCESS`` (docs/lake-contract.md). The header is checked before anything is written;
the rest of the file is read once, and that one pass hashes it, checks it is UTF-8, counts its
rows (and those with a wrong field count) and uploads it. A file that turns out invalid
midway is never made visible. Rows with a wrong field count are landed as sent and reported:
raw keeps what the source sent, and the trusted job quarantines them.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ingestion.csv_schema import HEADERS, SEPARATOR
from ingestion.exit_codes import ExitCode
from ingestion.lake import CHUNK_SIZE, Lake, LakeConflictError, PutResult, new_run_id, open_lake
from ingestion.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BAD_LINES_LISTED = 20


class CsvValidationError(ValueError):
    """The source file cannot be landed; the message says which file, what is wrong, what to do."""


@dataclass
class LandingResult:
    dataset: str
    status: str  # "written" or "unchanged"
    key: str
    uri: str
    rows: int
    bad_field_count_rows: int
    bytes: int
    sha256: str
    bad_field_count_lines: list[int] = field(default_factory=list)


def partition_prefix(dataset: str, run_date: dt.date) -> str:
    return f"raw/local/csv/{dataset}/year={run_date:%Y}/month={run_date:%m}/day={run_date:%d}/"


def check_header(path: Path, dataset: str) -> int:
    """Check the file exists, starts with UTF-8 text and has exactly the real header.

    Returns the header's length in bytes (line ending included).
    """
    expected = HEADERS[dataset]
    if not path.is_file():
        raise CsvValidationError(
            f"{dataset} file {path} does not exist: set {dataset.upper()}_CSV or --{dataset}-csv "
            "to the file to land"
        )
    with path.open("rb") as handle:
        head = handle.read(MAX_HEADER_BYTES)
    if not head:
        raise CsvValidationError(f"{path} is empty: expected a header line and data rows")
    if head.startswith(codecs.BOM_UTF8):
        raise CsvValidationError(
            f"{path} starts with a UTF-8 byte-order mark: save it as UTF-8 without BOM"
        )
    end = head.find(b"\n")
    if end < 0 and len(head) == MAX_HEADER_BYTES:
        raise CsvValidationError(f"{path} has no line break in its first {MAX_HEADER_BYTES} bytes")
    raw_header = head if end < 0 else head[: end + 1]
    try:
        header = raw_header.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CsvValidationError(
            f"{path} is not UTF-8 (header line, byte {exc.start}): re-export it as UTF-8"
        ) from None
    columns = header.split(SEPARATOR)
    if columns == expected:
        return len(raw_header)
    if len(columns) == 1:
        found = next((sep for sep in (",", ";", "\t") if sep in header), None)
        if found is not None:
            raise CsvValidationError(
                f"{path} uses {found!r} as separator; the {dataset} file must be "
                f"separated by {SEPARATOR!r} (header: {header[:120]!r})"
            )
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    details = []
    if missing:
        details.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        details.append(f"unexpected column(s) {', '.join(extra)}")
    if not details:
        details.append(f"columns out of order: expected {SEPARATOR.join(expected)}")
    raise CsvValidationError(
        f"{path} does not have the {dataset} header: {'; '.join(details)}. "
        f"Expected exactly: {SEPARATOR.join(expected)}"
    )


class _Scan:
    """The single pass over a file: yields its bytes while hashing, decoding and counting."""

    def __init__(self, path: Path, dataset: str, header_bytes: int, progress: bool) -> None:
        self.path = path
        self.dataset = dataset
        self.header_bytes = header_bytes
        self.progress = progress
        self.expected_separators = len(HEADERS[dataset]) - 1
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.rows = 0
        self.bad_rows = 0
        self.bad_lines: list[int] = []
        self.lines_seen = 0

    def chunks(self) -> Iterator[bytes]:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        size = self.path.stat().st_size
        bar = _progress_bar(size, f"landing {self.path.name}", self.progress)
        carry = b""
        try:
            with self.path.open("rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        raise CsvValidationError(
                            f"{self.path} is not valid UTF-8 near byte {self.bytes + exc.start}: "
                            "re-export it as UTF-8; nothing was landed"
                        ) from None
                    self.sha256.update(chunk)
                    self.bytes += len(chunk)
                    lines = (carry + chunk).split(b"\n")
                    carry = lines.pop()
                    self._count(lines)
                    bar.update(len(chunk))
                    yield chunk
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise CsvValidationError(
                    f"{self.path} is not valid UTF-8 (it ends inside a character): "
                    "re-export it as UTF-8"
                ) from None
            if carry:
                self._count([carry])
            if self.rows == 0:
                raise CsvValidationError(
                    f"{self.path} has a header but no data rows: nothing to land"
                )
        finally:
            bar.close()

    def _count(self, lines: list[bytes]) -> None:
        """Count the rows of a run of whole lines, and those with a wrong field count.

        A trailing ``\r`` holds no separator, so CRLF and LF lines count alike; the per-line
        separator counts run in C (``map``), which keeps this pass near the disk's speed.
        """
        first = self.lines_seen + 1  # the line number of lines[0]
        self.lines_seen += len(lines)
        if first == 1:
            lines, first = lines[1:], 2  # the header, checked before the pass
        self.rows += len(lines)
        counts = list(map(bytes.count, lines, itertools.repeat(b"|", len(lines))))
        expected = self.expected_separators
        if not counts or min(counts) == max(counts) == expected:
            return  # the usual case, decided in C without a Python-level loop
        bad = [first + i for i, n in enumerate(counts) if n != expected]
        self.bad_rows += len(bad)
        self.bad_lines.extend(bad[: MAX_BAD_LINES_LISTED - len(self.bad_lines)])


def _progress_bar(total: int, desc: str, enabled: bool):  # noqa: ANN202 - tqdm or a no-op
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def land_csv(
    lake: Lake,
    dataset: str,
    path: Path,
    run_date: dt.date,
    *,
    progress: bool = False,
    now: dt.datetime | None = None,
) -> LandingResult:
    """Land one source file for ``run_date``; idempotent for the same bytes."""
    if dataset not in HEADERS:
        raise CsvValidationError(f"unknown dataset {dataset!r}: use one of {', '.join(HEADERS)}")
    path = Path(path)
    header_bytes = check_header(path, dataset)
    prefix = partition_prefix(dataset, run_date)
    key = f"{prefix}{dataset}.csv"

    if lake.exists(prefix + "_SUCCESS"):
        manifest = json.loads(lake.get_bytes(prefix + "_manifest.json"))
        sha = _file_sha256(path)
        if sha != manifest["sha256"]:
            raise LakeConflictError(
                f"{lake.uri(key)} was already landed for {run_date} from "
                f"{manifest['source_file']} (sha256 {manifest['sha256'][:12]}...); {path} differs "
                f"(sha256 {sha[:12]}...). Raw is write-once: land the new file under another "
                "RUN_DATE. The landed file was left as it was."
            )
        log.info("%s for %s is already landed, unchanged: %s", dataset, run_date, lake.uri(key))
        return LandingResult(
            dataset, PutResult.UNCHANGED.value, key, lake.uri(key), manifest["rows"],
            manifest["bad_field_count_rows"], manifest["bytes"], sha,
            manifest.get("bad_field_count_lines", []),
        )  # fmt: skip

    for leftover in lake.list(prefix):  # an interrupted earlier run: never visible, redo it
        log.info("removing %s, left by an interrupted landing", lake.uri(leftover))
        lake.delete(leftover)

    scan = _Scan(path, dataset, header_bytes, progress)
    status = lake.put_stream(key, scan.chunks())
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    result = LandingResult(
        dataset, status.value, key, lake.uri(key), scan.rows, scan.bad_rows, scan.bytes,
        scan.sha256.hexdigest(), scan.bad_lines,
    )  # fmt: skip
    manifest = {
        "dataset": dataset,
        "run_id": new_run_id(stamp),
        "landed_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "run_date": run_date.isoformat(),
        "source_file": path.name,
        "sha256": result.sha256,
        "bytes": result.bytes,
        "rows": result.rows,
        "bad_field_count_rows": result.bad_field_count_rows,
        "bad_field_count_lines": result.bad_field_count_lines,
        "files": [
            {"key": key, "records": result.rows, "sha256": result.sha256, "bytes": result.bytes}
        ],
    }
    lake.put_bytes(prefix + "_manifest.json", json.dumps(manifest, indent=2).encode())
    lake.put_bytes(prefix + "_SUCCESS", b"")
    if scan.bad_rows:
        log.warning(
            "%s: %d row(s) have a wrong field count (lines %s%s); landed as sent, the trusted "
            "job quarantines them",
            path, scan.bad_rows, ", ".join(map(str, scan.bad_lines)),
            "..." if scan.bad_rows > len(scan.bad_lines) else "",
        )  # fmt: skip
    log.info("landed %s: %d rows, %d bytes -> %s", path, scan.rows, scan.bytes, result.uri)
    return result


def land_all(
    settings: Settings, lake: Lake, datasets: list[str], *, progress: bool = False
) -> list[LandingResult]:
    """Check every file's header first, so a bad second file stops before the first lands."""
    paths = {"movies": settings.movies_csv, "series": settings.series_csv}
    for dataset in datasets:
        check_header(paths[dataset], dataset)
    return [
        land_csv(lake, dataset, paths[dataset], settings.run_date, progress=progress)
        for dataset in datasets
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", choices=["movies", "series", "all"], default="all", help="what to land"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


HELP = "land movies.csv and series.csv in raw for RUN_DATE"


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The ``csv`` command: ``land_all``; prints one JSON line per landed file."""
    datasets = ["movies", "series"] if args.dataset == "all" else [args.dataset]
    try:
        results = land_all(settings, open_lake(settings), datasets, progress=not args.no_progress)
    except CsvValidationError as exc:
        log.error("%s", exc)
        return ExitCode.STAGE_FAILED
    for result in results:
        print(json.dumps(asdict(result)))
    return ExitCode.OK
