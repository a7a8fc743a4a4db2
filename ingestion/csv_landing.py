"""Land the IMDb-derived CSV files in raw, exactly as sent.

``raw/local/csv/<dataset>/year=YYYY/month=MM/day=DD/<dataset>.csv`` then ``_manifest.json``
then ``_SUCCESS`` (docs/lake-contract.md). The source is checked before anything is written
(a regular, readable file whose header is exactly the real one); then the file is read once,
in 1 MiB chunks (read ahead on a thread; small enough to stay in the CPU's cache while the
three steps below use it), and each chunk goes three ways at once, each on a thread of its own
whose work runs in C with the GIL released:

- to the hashing thread: its SHA-256 (hashlib) and the UTF-8 check of its whole lines (Arrow's
  validator; the line that straddles two chunks goes through Python's incremental decoder);
- to the lake's writer, which writes it (local: with a ``fdatasync`` every 32 MiB on a thread
  of its own, so the disk works during the pass, not after it) or gathers 8 MiB multipart parts
  that a small thread pool uploads (S3);
- to the checking thread: the field count of every line, with NumPy (``_Checks._whole_lines``:
  a running count of separators read at every line break).

A file that turns out invalid midway is never made visible: the writer is aborted, in-flight
uploads included. Rows with a wrong field count are landed as sent and reported: raw keeps
what the source sent, and the trusted job quarantines them.

The partition is locked while it is written (``Lake.lock``): a second landing of the same day
waits for the first (up to ``--wait`` seconds), then finds it complete and reports
``unchanged`` (or refuses a different file). The leftovers of a run that was killed (temporary
files, incomplete multipart uploads, objects without ``_SUCCESS``) are removed by the next run,
which logs how many it removed.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import hashlib
import json
import logging
import stat
import struct
from collections import deque
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ingestion import faults
from ingestion.csv_schema import HEADERS, SEPARATOR
from ingestion.exit_codes import ExitCode
from ingestion.lake import (
    LOCK_NAME,
    BackgroundJobs,
    Lake,
    LakeConflictError,
    PutResult,
    clear_leftovers,
    describe_holder,
    new_run_id,
    open_lake,
    remove_stale_lock,
)
from ingestion.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BAD_LINES_LISTED = 20
DEFAULT_WAIT_SECONDS = 600.0  # how long a landing waits for another run of the same day
READ_SIZE = 1024 * 1024  # the pass's chunk
JOBS_IN_FLIGHT = 6  # chunks queued for the hashing thread and for the checking thread
READ_AHEAD = 4  # chunks read before they are needed

_SEP = SEPARATOR.encode()
_SEP_BYTE, _NL_BYTE = ord(SEPARATOR), ord("\n")


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


_KINDS = {
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def check_source(path: Path, dataset: str) -> None:
    """Check ``path`` is a regular file this process can read; the error says what it is."""
    setting, flag = f"{dataset.upper()}_CSV", f"--{dataset}-csv"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CsvValidationError(
            f"{dataset} file {path} does not exist: set {setting} or {flag} to the file to land"
        ) from None
    except OSError as exc:
        raise CsvValidationError(
            f"{dataset} file {path} cannot be reached ({exc.strerror}): check the folders on "
            f"its path, then set {setting} or {flag} to the file to land"
        ) from None
    if stat.S_ISDIR(mode):
        inside = path / f"{dataset}.csv"
        hint = f" (this folder holds {inside}: point {setting} at it)" if inside.is_file() else ""
        raise CsvValidationError(
            f"{dataset} file {path} is a directory, not a file: set {setting} or {flag} to the "
            f"CSV file itself{hint}"
        )
    for test, kind in _KINDS.items():
        if test(mode):
            raise CsvValidationError(
                f"{dataset} file {path} is {kind}, not a regular file: landing reads the file "
                "more than once (its header first, then the whole file, and again to compare "
                f"it with an earlier landing). Save the data to a file and set {setting} to it"
            )
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        raise CsvValidationError(
            f"{dataset} file {path} cannot be read: permission denied for this user. Make it "
            "readable (chmod a+r), or run the landing as a user who may read it"
        ) from None
    except OSError as exc:
        raise CsvValidationError(f"{dataset} file {path} cannot be read: {exc.strerror}") from None


def check_header(path: Path, dataset: str) -> int:
    """Check the file is a readable regular file that starts with UTF-8 text and has exactly
    the real header. Returns the header's length in bytes (line ending included)."""
    expected = HEADERS[dataset]
    check_source(path, dataset)
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


class _Checks:
    """UTF-8 and field counts of the file, fed chunk by chunk in order (one thread at a time).

    Lines are ``\\n``-terminated (a ``\\r`` before it holds no separator, so CRLF and LF count
    alike); line 1 is the header, checked before the pass. The whole lines of a chunk are
    checked in bulk; the line that straddles two chunks is checked on its own.
    """

    def __init__(self, path: Path, dataset: str) -> None:
        import numpy
        import pyarrow

        self._np = numpy
        self._pa = pyarrow
        self.path = path
        self.separators = len(HEADERS[dataset]) - 1
        self._flags: Any = None  # a reused buffer: one flag per byte of a chunk
        # masks of a word's first n bytes (words are read little-endian on any machine)
        self._first_bytes = numpy.array([(1 << 8 * n) - 1 for n in range(8)], numpy.uint64)
        self.decoder = codecs.getincrementaldecoder("utf-8")()  # for straddling lines
        self.lines = 0  # complete lines seen, the header included
        self.open_line_bytes = 0  # bytes of the line not yet ended by "\n"
        self.open_line_separators = 0
        self.rows = 0
        self.bad_rows = 0
        self.bad_lines: list[int] = []

    def _not_utf8(self, offset: int) -> CsvValidationError:
        return CsvValidationError(
            f"{self.path} is not valid UTF-8 near byte {offset}: re-export it as UTF-8; "
            "nothing was landed"
        )

    def _decode(self, data: bytes, offset: int) -> None:
        try:
            self.decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(offset + exc.start) from None

    def _validate(self, chunk: bytes, start: int, end: int, offset: int) -> None:
        """UTF-8 of ``chunk[start:end]`` (whole lines) without a copy, the GIL released; safe
        on another thread."""
        pa = self._pa
        offsets = pa.py_buffer(struct.pack("<ii", start, end))
        text = pa.Array.from_buffers(pa.utf8(), 1, [None, offsets, pa.py_buffer(chunk)])
        try:
            text.validate(full=True)
        except pa.ArrowInvalid:
            try:
                chunk[start:end].decode("utf-8")  # where, for the message
            except UnicodeDecodeError as exc:
                raise self._not_utf8(offset + start + exc.start) from None

    def _end_line(self, separators: int) -> None:
        self.lines += 1
        if self.lines > 1:  # line 1 is the header
            self.rows += 1
            if separators != self.separators:
                self._bad(self.lines)

    def _bad(self, line: int) -> None:
        self.bad_rows += 1
        if len(self.bad_lines) < MAX_BAD_LINES_LISTED:
            self.bad_lines.append(line)

    def _whole_lines(self, chunk: bytes, start: int, end: int) -> None:
        """Field counts of the complete lines in ``chunk[start:end]`` (``end`` is just past a
        line break), vectorised with the GIL released: the separators are flagged byte by
        byte, the flags counted 8 bytes at a time and summed into a running count, which is
        read at each line break; a line's count is the difference of two readings."""
        np = self._np
        size = end - start
        data = np.frombuffer(chunk, np.uint8, size, start)
        padded = -(-size // 8) * 8
        if self._flags is None or len(self._flags) < padded:
            self._flags = np.empty(max(padded, READ_SIZE), np.bool_)
        flags = self._flags[:padded]
        np.equal(data, _NL_BYTE, out=flags[:size])
        breaks = np.flatnonzero(flags[:size])  # where each line ends
        np.equal(data, _SEP_BYTE, out=flags[:size])
        flags[size:] = False
        words = flags.view("<u8")
        in_word = np.bitwise_count(words)
        before_word = np.cumsum(in_word, dtype=np.int64)
        before_word -= in_word  # separators before each word
        word = breaks >> 3
        partial = np.bitwise_count(words[word] & self._first_bytes[breaks & 7])
        before_break = before_word[word] + partial
        per_line = np.diff(before_break, prepend=0)
        bad = np.flatnonzero(per_line != self.separators)
        if len(bad):
            room = max(0, MAX_BAD_LINES_LISTED - len(self.bad_lines))
            self.bad_lines += [self.lines + 1 + int(i) for i in bad[:room]]
            self.bad_rows += len(bad)
        self.lines += len(breaks)
        self.rows += len(breaks)

    @staticmethod
    def bounds(chunk: bytes) -> tuple[int, int]:
        """Where the chunk's first and last line breaks are (-1 when it has none)."""
        return chunk.find(b"\n"), chunk.rfind(b"\n")

    def validate(self, chunk: bytes, bounds: tuple[int, int], offset: int) -> None:
        """UTF-8 of the chunk's whole lines (``feed`` checks the rest); GIL-free, meant for
        another thread, in chunk order."""
        first, last = bounds
        if last > first:
            self._validate(chunk, first + 1, last + 1, offset)

    def feed(self, chunk: bytes, offset: int, bounds: tuple[int, int]) -> None:
        """Check the next chunk but the UTF-8 of its whole lines (``validate``); meant for one
        thread, in chunk order."""
        first, last = bounds
        if first < 0:  # a line longer than a chunk
            self._decode(chunk, offset)
            self.open_line_bytes += len(chunk)
            self.open_line_separators += chunk.count(_SEP)
            return
        self._decode(chunk[: first + 1], offset)  # the straddling line, up to its "\n"
        self._end_line(self.open_line_separators + chunk.count(_SEP, 0, first))
        if last > first:
            self._whole_lines(chunk, first + 1, last + 1)
        self.open_line_separators = chunk.count(_SEP, last + 1)
        self.open_line_bytes = len(chunk) - last - 1
        if self.open_line_bytes:
            self._decode(chunk[last + 1 :], offset + last + 1)

    def finish(self) -> None:
        if self.open_line_bytes:  # a last line without a line break
            self._end_line(self.open_line_separators)
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvValidationError(
                f"{self.path} is not valid UTF-8 (it ends inside a character): "
                "re-export it as UTF-8; nothing was landed"
            ) from None
        if self.rows == 0:
            raise CsvValidationError(f"{self.path} has a header but no data rows: nothing to land")


def _read_full(handle: IO[bytes], size: int) -> bytes:
    chunk = handle.read(size)
    if not chunk or len(chunk) == size:
        return chunk
    parts, got = [chunk], len(chunk)
    while got < size and (more := handle.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _progress_bar(total: int, desc: str, enabled: bool):  # noqa: ANN202 - tqdm or a no-op
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled
    )


@dataclass
class _Pass:
    status: PutResult
    sha256: str
    bytes: int
    checks: _Checks


def _chunks(handle: IO[bytes]) -> Generator[bytes, None, None]:
    """The file's chunks in order, read ``READ_AHEAD`` chunks ahead on a thread (close it
    before the file: it waits for the reads under way)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-read") as reader:
        ahead = deque(reader.submit(_read_full, handle, READ_SIZE) for _ in range(READ_AHEAD))
        while chunk := ahead.popleft().result():
            ahead.append(reader.submit(_read_full, handle, READ_SIZE))
            yield chunk
        for future in ahead:
            future.cancel()


def _land_pass(lake: Lake, key: str, path: Path, dataset: str, progress: bool) -> _Pass:
    """Read ``path`` once: hash, write and check every chunk, overlapped (module docstring)."""
    checks = _Checks(path, dataset)
    digest = hashlib.sha256()
    hashing = BackgroundJobs(1, JOBS_IN_FLIGHT, "csv-hash")
    checking = BackgroundJobs(1, JOBS_IN_FLIGHT, "csv-check")  # one thread: chunks in order
    size = 0
    bar = _progress_bar(path.stat().st_size, f"landing {path.name}", progress)
    try:
        with lake.open_writer(key) as writer:  # aborted if anything below raises
            try:
                with path.open("rb", buffering=0) as handle, closing(_chunks(handle)) as chunks:
                    for chunk in chunks:
                        bounds = checks.bounds(chunk)

                        def hash_and_validate(
                            c: bytes = chunk, b: tuple = bounds, o: int = size
                        ) -> None:
                            digest.update(c)
                            checks.validate(c, b, o)

                        hashing.submit(hash_and_validate)
                        checking.submit(lambda c=chunk, o=size, b=bounds: checks.feed(c, o, b))
                        writer.write(chunk)
                        size += len(chunk)
                        bar.update(len(chunk))
                checking.finish()
                checks.finish()
                hashing.finish()
            except BaseException:
                checking.cancel()
                hashing.cancel()
                raise
            status = writer.commit(digest.hexdigest())
    finally:
        bar.close()
    return _Pass(status, digest.hexdigest(), size, checks)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _already_landed(
    lake: Lake, dataset: str, path: Path, run_date: dt.date, prefix: str, run_id: str
) -> LandingResult:
    """The result for a complete partition: ``unchanged`` for the same bytes, else refused."""
    key = f"{prefix}{dataset}.csv"
    manifest = json.loads(lake.get_bytes(prefix + "_manifest.json"))
    sha = _file_sha256(path)
    if sha != manifest["sha256"]:
        raise LakeConflictError(
            f"{lake.uri(key)} was already landed for {run_date} from "
            f"{manifest['source_file']} (sha256 {manifest['sha256'][:12]}...); {path} differs "
            f"(sha256 {sha[:12]}...). Raw is write-once: land the new file under another "
            "RUN_DATE. The landed file was left as it was."
        )
    stale = remove_stale_lock(lake, prefix, run_id)
    if stale:
        log.info("removed the lock %s left by %s, which is no longer running",
                 lake.uri(prefix + LOCK_NAME), describe_holder(stale))  # fmt: skip
    log.info("%s for %s is already landed, unchanged: %s", dataset, run_date, lake.uri(key))
    return LandingResult(
        dataset, PutResult.UNCHANGED.value, key, lake.uri(key), manifest["rows"],
        manifest["bad_field_count_rows"], manifest["bytes"], sha,
        manifest.get("bad_field_count_lines", []),
    )  # fmt: skip


def land_csv(
    lake: Lake,
    dataset: str,
    path: Path,
    run_date: dt.date,
    *,
    progress: bool = False,
    now: dt.datetime | None = None,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> LandingResult:
    """Land one source file for ``run_date``; idempotent for the same bytes.

    Another landing of the same partition in progress is waited for, up to ``wait`` seconds
    (then :class:`~ingestion.lake.LakeBusyError`).
    """
    if dataset not in HEADERS:
        raise CsvValidationError(f"unknown dataset {dataset!r}: use one of {', '.join(HEADERS)}")
    path = Path(path)
    check_header(path, dataset)
    prefix = partition_prefix(dataset, run_date)
    key = f"{prefix}{dataset}.csv"
    now = now or dt.datetime.now(dt.UTC)
    run_id = new_run_id(now.strftime("%Y%m%dT%H%M%SZ"))

    if lake.exists(prefix + "_SUCCESS"):
        return _already_landed(lake, dataset, path, run_date, prefix, run_id)
    with lake.lock(prefix, run_id, wait) as lock:
        if lock.took_over:
            log.info("took over the lock of %s from %s, which is no longer running",
                     lake.uri(prefix), describe_holder(lock.took_over))  # fmt: skip
        if lake.exists(prefix + "_SUCCESS"):  # landed by the run this one waited for
            return _already_landed(lake, dataset, path, run_date, prefix, run_id)
        removed = clear_leftovers(lake, prefix)
        if removed:
            log.info("removed %d leftover(s) of an interrupted landing: %s", len(removed),
                     ", ".join(removed))  # fmt: skip
        faults.reached("csv.locked")

        landed = _land_pass(lake, key, path, dataset, progress)
        faults.reached("csv.data_landed")
        checks = landed.checks
        result = LandingResult(
            dataset, landed.status.value, key, lake.uri(key), checks.rows, checks.bad_rows,
            landed.bytes, landed.sha256, checks.bad_lines,
        )  # fmt: skip
        manifest: dict[str, Any] = {
            "dataset": dataset,
            "run_id": run_id,
            "landed_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "run_date": run_date.isoformat(),
            "source_file": path.name,
            "sha256": result.sha256,
            "bytes": result.bytes,
            "rows": result.rows,
            "bad_field_count_rows": result.bad_field_count_rows,
            "bad_field_count_lines": result.bad_field_count_lines,
            "files": [
                {"key": key, "records": result.rows, "sha256": result.sha256,
                 "bytes": result.bytes}
            ],
        }  # fmt: skip
        lock.check()
        lake.put_bytes(prefix + "_manifest.json", json.dumps(manifest, indent=2).encode())
        faults.reached("csv.manifest_written")
        lock.check()
        lake.put_bytes(prefix + "_SUCCESS", b"")
        faults.reached("csv.success_written")
    if checks.bad_rows:
        log.warning(
            "%s: %d row(s) have a wrong field count (lines %s%s); landed as sent, the trusted "
            "job quarantines them",
            path, checks.bad_rows, ", ".join(map(str, checks.bad_lines)),
            "..." if checks.bad_rows > len(checks.bad_lines) else "",
        )  # fmt: skip
    log.info("landed %s: %d rows, %d bytes -> %s", path, checks.rows, landed.bytes, result.uri)
    return result


def land_all(
    settings: Settings,
    lake: Lake,
    datasets: list[str],
    *,
    progress: bool = False,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> list[LandingResult]:
    """Check every file's header first, so a bad second file stops before the first lands."""
    paths = {"movies": settings.movies_csv, "series": settings.series_csv}
    for dataset in datasets:
        check_header(paths[dataset], dataset)
    return [
        land_csv(lake, dataset, paths[dataset], settings.run_date, progress=progress, wait=wait)
        for dataset in datasets
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", choices=["movies", "series", "all"], default="all", help="what to land"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for another landing of the same day to finish before giving "
        f"up with exit code {int(ExitCode.LOCKED)} (default {DEFAULT_WAIT_SECONDS:.0f})",
    )


HELP = "land movies.csv and series.csv in raw for RUN_DATE"


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The ``csv`` command: ``land_all``; prints one JSON line per landed file."""
    datasets = ["movies", "series"] if args.dataset == "all" else [args.dataset]
    try:
        results = land_all(
            settings, open_lake(settings), datasets, progress=not args.no_progress, wait=args.wait
        )
    except CsvValidationError as exc:
        log.error("%s", exc)
        return ExitCode.STAGE_FAILED
    for result in results:
        print(json.dumps(asdict(result)))
    return ExitCode.OK
