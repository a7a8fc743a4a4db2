"""The lake: one small interface, two backends (a local folder and S3) with identical keys.

Keys are relative, slash-separated paths such as ``raw/local/csv/movies/year=2024/...``.
Raw writes are write-once: writing a key again with the same bytes is reported
``UNCHANGED``; with different bytes it raises :class:`LakeConflictError` and the first object
stays as it was. Objects become visible whole or not at all: a local write goes to a temporary
file that is linked into place; an S3 write is a single conditional PUT or a multipart upload
completed only when every part has been sent (and aborted otherwise).

Large objects are written through an :class:`ObjectWriter`, which takes the bytes in order and
writes them behind the caller's back: on a thread (local) or as multipart parts uploaded
concurrently by a small thread pool (S3), so that a caller reading and checking a file
overlaps its work with the writes. A writer needs the object's SHA-256 to commit, which the
caller computes in the same pass.

A run that writes a partition holds the partition's lock (:meth:`Lake.lock`), so two runs of
the same stage for the same day never interleave: the lock is ``<partition>/_lock``, held by an
``flock`` locally and by a lease object on S3 (conditional writes, renewed while held, taken
over when its holder is dead or its lease expired). Readers ignore it, like every ``_`` file.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import enum
import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ingestion import faults
from ingestion.settings import LakeLocation, Settings

log = logging.getLogger(__name__)

CHUNK_SIZE = 8 * 1024 * 1024  # S3 parts must be >= 5 MiB but the last
MULTIPART_THRESHOLD = CHUNK_SIZE
UPLOAD_THREADS = 8  # concurrent part uploads of one S3 object
LOCAL_WRITES_IN_FLIGHT = 8  # writes queued for the local writer thread
LOCAL_FLUSH_BYTES = 32 * 1024 * 1024  # written bytes after which the disk is set to work
LOCK_NAME = "_lock"
LEASE_SECONDS = 120.0  # an S3 lease not renewed for this long is taken over
LOCK_POLL_SECONDS = 0.2


class PutResult(enum.Enum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"


class LakeError(RuntimeError):
    """The lake could not do what was asked; the message names the key and what to do."""


class LakeConflictError(LakeError):
    """A write-once key already holds different bytes."""


class LakeBusyError(LakeError):
    """Another run holds the partition's lock (the CLI exits with its own code)."""


def _conflict(uri: str) -> LakeConflictError:
    return LakeConflictError(
        f"{uri} already exists with different content; raw is write-once and was left as it "
        "was. Land the new data under another RUN_DATE, or remove the old object on purpose."
    )


# -- who holds a lock ---------------------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" when unknown), which tells a
    live process from a later one that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2 :].split()[19]


def holder_info(run_id: str) -> dict[str, Any]:
    """What a lock records about its holder, for the messages of the runs that find it held."""
    return {
        "run_id": run_id,
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "pid": os.getpid(),
        "pid_start": _process_start(os.getpid()),
        "acquired_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def holder_dead(info: dict[str, Any]) -> bool:
    """True when ``info`` names a process of this machine (same boot) that no longer runs."""
    if not info.get("boot_id") or info.get("boot_id") != _boot_id():
        return False  # another machine (or unknown): only the lease's age can tell
    pid = int(info.get("pid") or 0)
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    start = _process_start(pid)
    return bool(start and info.get("pid_start") and start != info["pid_start"])


def describe_holder(info: dict[str, Any]) -> str:
    if not info:
        return "another run"
    return (
        f"run {info.get('run_id', '?')} (pid {info.get('pid', '?')} on "
        f"{info.get('host', '?')}, since {info.get('acquired_at', '?')})"
    )


def _busy(uri: str, info: dict[str, Any], waited: float) -> LakeBusyError:
    return LakeBusyError(
        f"another run holds this day: {describe_holder(info)} is writing {uri}. This run "
        f"waited {waited:.0f} s and stopped without writing anything. When that run ends, "
        "run again: a complete partition is reported as it is, an unfinished one is redone "
        "(--wait SECONDS waits longer)."
    )


class LakeLock(ABC):
    """A held partition lock; release it with ``release()`` or as a context manager."""

    def __init__(self, uri: str, info: dict[str, Any], took_over: dict[str, Any] | None) -> None:
        self.uri = uri
        self.info = info
        self.took_over = took_over  # the holder a dead run left behind, if any

    def check(self) -> None:  # noqa: B027 - only a lease can be lost; a local flock cannot
        """Raise :class:`LakeBusyError` if the lock was lost (S3: the lease was taken over)."""

    @abstractmethod
    def release(self) -> None: ...

    def __enter__(self) -> LakeLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


# -- writers ------------------------------------------------------------------------------------
class ObjectWriter(ABC):
    """One object being written: nothing is visible until :meth:`commit`."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Queue the next bytes; may block while too many writes are in flight."""

    @abstractmethod
    def commit(self, sha256_hex: str) -> PutResult:
        """Wait for the writes and make the object visible, unless the key exists: then
        ``UNCHANGED`` when it holds the same bytes (``sha256_hex``), else a conflict."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written so far; nothing becomes visible. Idempotent."""

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        if exc_type is not None:
            self.abort()


class BackgroundJobs:
    """Runs jobs on a small pool, at most ``limit`` of them queued or running; the first
    error of a job is raised to the caller at its next ``submit`` or at ``finish``."""

    def __init__(self, threads: int, limit: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(limit)
        self._futures: list[Future[None]] = []
        self._error: BaseException | None = None

    def _done(self, future: Future[None]) -> None:
        self._slots.release()
        if not future.cancelled() and future.exception() is not None and self._error is None:
            self._error = future.exception()

    def submit(self, job: Callable[[], None]) -> None:
        self.raise_error()
        self._slots.acquire()
        future = self._pool.submit(job)
        self._futures.append(future)
        future.add_done_callback(self._done)

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Wait for every job; raise the first error."""
        for future in self._futures:
            with contextlib.suppress(BaseException):
                future.result()
        self._pool.shutdown(wait=True)
        self.raise_error()

    def cancel(self) -> None:
        """Drop the jobs not started, wait for the running ones; errors are ignored."""
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


class Lake(ABC):
    """What every stage needs of the lake."""

    location: LakeLocation

    @abstractmethod
    def uri(self, key: str) -> str:
        """The full URI of ``key`` (for messages and for engines that read the lake)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> PutResult:
        """Write a small object once, atomically."""

    @abstractmethod
    def open_writer(self, key: str) -> ObjectWriter:
        """Start writing ``key``; see :class:`ObjectWriter`."""

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> PutResult:
        """Write a large object once from ``chunks``; nothing is visible if ``chunks`` raises."""
        digest = hashlib.sha256()
        with self.open_writer(key) as writer:
            for chunk in chunks:
                digest.update(chunk)
                writer.write(chunk)
            return writer.commit(digest.hexdigest())

    @abstractmethod
    def read_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes, streamed."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder-like prefix, "/"-terminated or not), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object. Used only for leftovers of a run that never wrote ``_SUCCESS``."""

    @abstractmethod
    def clear_unfinished_writes(self, prefix: str) -> list[str]:
        """Remove the writes a killed run left unfinished under ``prefix`` (local temporary
        files, S3 incomplete multipart uploads); returns what was removed. Call it only while
        holding the partition's lock: a live run's writes look the same."""

    @abstractmethod
    def lock(self, prefix: str, run_id: str, wait: float = 0.0) -> LakeLock:
        """Take the lock of the partition at ``prefix`` (``.../day=DD/``), waiting up to
        ``wait`` seconds for another run to release it; :class:`LakeBusyError` after that."""

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.read_chunks(key):
            digest.update(chunk)
        return digest.hexdigest()


def clear_leftovers(lake: Lake, prefix: str) -> list[str]:
    """Delete what an interrupted run left in the incomplete partition at ``prefix``: its
    unfinished writes and its objects (all but the lock, which the caller holds)."""
    removed = lake.clear_unfinished_writes(prefix)
    for key in lake.list(prefix):
        if key != prefix + LOCK_NAME:
            lake.delete(key)
            removed.append(lake.uri(key))
    return removed


def remove_stale_lock(lake: Lake, prefix: str, run_id: str) -> dict[str, Any] | None:
    """Remove the lock a killed run left in the complete partition at ``prefix`` (it died after
    ``_SUCCESS``, before releasing it); returns its holder, or None when there was none (or
    its holder is alive and about to release it)."""
    if not lake.exists(prefix + LOCK_NAME):
        return None
    try:
        with lake.lock(prefix, run_id) as lock:
            return lock.took_over
    except LakeBusyError:
        return None


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key:
        raise LakeError(f"invalid lake key {key!r}: use a relative path like raw/x/y.json")
    return key


def _attempts(wait: float) -> Iterator[bool]:
    """Yields once per attempt (True the first time), every poll interval, until ``wait``
    seconds are used up; the caller returns from the loop when an attempt succeeds."""
    deadline = time.monotonic() + wait
    first = True
    while True:
        yield first
        first = False
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(LOCK_POLL_SECONDS, left))


# -- local folder -------------------------------------------------------------------------------
def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


class _LocalWriter(ObjectWriter):
    """A temporary file beside the key, written by one background thread, linked into place.

    Every ``LOCAL_FLUSH_BYTES`` written, a ``fdatasync`` starts on a thread of its own (when
    the last one is done), so the disk writes while the file is still being read and checked
    and the ``fsync`` of the commit has little left to do."""

    def __init__(self, lake: LocalLake, key: str) -> None:
        self.lake = lake
        self.key = key
        self.path = lake._path(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self.fd: int | None = fd
        self.tmp = Path(tmp)
        self.jobs = BackgroundJobs(1, LOCAL_WRITES_IN_FLIGHT, "lake-write")
        self.flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-flush")
        self.flushing: Future[None] | None = None
        self.unflushed = 0

    def _write(self, data: bytes) -> None:  # on the writer thread only
        assert self.fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        faults.reached("lake.part_written")
        self.unflushed += len(data)
        if self.unflushed >= LOCAL_FLUSH_BYTES and (self.flushing is None or self.flushing.done()):
            if self.flushing is not None:
                self.flushing.result()  # a failed flush fails the write
            self.unflushed = 0
            self.flushing = self.flusher.submit(os.fdatasync, self.fd)

    def write(self, data: bytes) -> None:
        self.jobs.submit(lambda: self._write(data))

    def commit(self, sha256_hex: str) -> PutResult:
        try:
            self.jobs.finish()
            self.flusher.shutdown(wait=True)
            if self.flushing is not None:
                self.flushing.result()
            assert self.fd is not None
            os.fsync(self.fd)
            try:
                os.link(self.tmp, self.path)  # atomic exclusive create: fails if the key exists
            except FileExistsError:
                if self.lake.sha256(self.key) == sha256_hex:
                    return PutResult.UNCHANGED
                raise _conflict(self.lake.uri(self.key)) from None
            return PutResult.WRITTEN
        finally:
            self.abort()

    def abort(self) -> None:
        self.jobs.cancel()
        self.flusher.shutdown(wait=True)  # no flush may outlive the descriptor
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.tmp.unlink(missing_ok=True)


class _LocalLock(LakeLock):
    def __init__(self, path: Path, fd: int, info: dict[str, Any], took_over: Any) -> None:
        super().__init__(str(path), info, took_over)
        self.path = path
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still locked: a waiting run then finds a fresh file
        os.close(self.fd)  # releases the flock
        self.fd = None


class LocalLake(Lake):
    """A folder on disk."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.location = LakeLocation("file", str(self.root))

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def put_bytes(self, key: str, data: bytes) -> PutResult:
        return self.put_stream(key, [data])

    def open_writer(self, key: str) -> ObjectWriter:
        return _LocalWriter(self, key)

    def read_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise LakeError(f"{path} does not exist") from None
        with handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        search = self.root / folder
        if not search.is_dir():
            return []
        keys = (
            path.relative_to(self.root).as_posix()
            for path in search.rglob("*")
            if path.is_file() and not _is_temp_name(path.name)
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def clear_unfinished_writes(self, prefix: str) -> list[str]:
        folder = self.root / _check_key(prefix)
        if not folder.is_dir():
            return []
        removed = []
        for path in sorted(folder.rglob(".*.tmp")):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(str(path))
        return removed

    def lock(self, prefix: str, run_id: str, wait: float = 0.0) -> LakeLock:
        import fcntl

        path = self._path(prefix + LOCK_NAME)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = holder_info(run_id)
        other: dict[str, Any] = {}
        for first in _attempts(wait):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = _read_json(os.pread(fd, 65536, 0))
                os.close(fd)
                if first and wait > 0:
                    log.info("%s is locked by %s: waiting up to %.0f s", prefix,
                             describe_holder(other), wait)  # fmt: skip
                continue
            try:
                same_file = os.fstat(fd).st_ino == path.stat().st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # released and removed between our open and our flock
                os.close(fd)
                continue
            previous = _read_json(os.pread(fd, 65536, 0)) or None  # a dead holder's record
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            return _LocalLock(path, fd, info, previous)
        raise _busy(self.uri(prefix), other, wait)


def _read_json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# -- S3 -----------------------------------------------------------------------------------------
_PRECONDITION = ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class _S3Writer(ObjectWriter):
    """A single conditional PUT for an object of one part (with its SHA-256, which S3
    verifies); otherwise a multipart upload whose parts go up concurrently (``UPLOAD_THREADS``),
    each with a CRC32 that S3 verifies (as boto3's own transfers do; the object's SHA-256 is
    the caller's to record), completed only if the key is still free."""

    def __init__(self, lake: S3Lake, key: str) -> None:
        self.lake = lake
        self.key = key
        self.full_key = lake._key(key)
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.upload_id: str | None = None
        self.parts: dict[int, dict[str, Any]] = {}
        self.next_part = 1
        self.jobs: BackgroundJobs | None = None

    def _upload(self, number: int, data: bytes) -> None:
        checksum = _b64(zlib.crc32(data).to_bytes(4, "big"))  # zlib releases the GIL
        response = self.lake.client.upload_part(
            Bucket=self.lake.bucket,
            Key=self.full_key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
            ChecksumCRC32=checksum,
        )
        self.parts[number] = {"PartNumber": number, "ETag": response["ETag"],
                              "ChecksumCRC32": checksum}  # fmt: skip
        faults.reached("lake.part_written")

    def _send(self, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.lake.client.create_multipart_upload(
                Bucket=self.lake.bucket, Key=self.full_key, ChecksumAlgorithm="CRC32"
            )["UploadId"]
            self.jobs = BackgroundJobs(UPLOAD_THREADS, UPLOAD_THREADS, "lake-upload")
        assert self.jobs is not None
        number, self.next_part = self.next_part, self.next_part + 1
        self.jobs.submit(lambda: self._upload(number, data))

    def _take(self, size: int) -> bytes:
        """The first ``size`` pending bytes, as one object (no copy when they are one piece)."""
        taken, total = 0, 0
        while total < size:
            total += len(self.pending[taken])
            taken += 1
        pieces, self.pending = self.pending[:taken], self.pending[taken:]
        if total > size:  # split the last piece
            over = total - size
            last = pieces[-1]
            pieces[-1] = last[: len(last) - over]
            self.pending.insert(0, last[len(last) - over :])
        self.pending_bytes -= size
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        # A part goes once more bytes follow it: an object of one part is a single PUT.
        while self.pending_bytes > CHUNK_SIZE:
            self._send(self._take(CHUNK_SIZE))

    def commit(self, sha256_hex: str) -> PutResult:
        lake = self.lake
        try:
            if self.upload_id is None:
                data = b"".join(self.pending)
                return lake._put_once(self.key, data, sha256_hex)
            if self.pending_bytes:
                self._send(self._take(self.pending_bytes))
            assert self.jobs is not None
            self.jobs.finish()
            lake.client.complete_multipart_upload(
                Bucket=lake.bucket,
                Key=self.full_key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": [self.parts[n] for n in sorted(self.parts)]},
                IfNoneMatch="*",
            )
            self.upload_id = None
        except lake.client.exceptions.ClientError as exc:
            self.abort()
            if lake._error_code(exc) in _PRECONDITION:
                return lake._settle_conflict(self.key, sha256_hex)
            raise LakeError(f"writing {lake.uri(self.key)} failed: {exc}") from exc
        except BaseException:
            self.abort()
            raise
        return PutResult.WRITTEN

    def abort(self) -> None:
        self.pending = []
        if self.jobs is not None:
            self.jobs.cancel()
        if self.upload_id is not None:
            self.lake._abort(self.full_key, self.upload_id)
            self.upload_id = None


class _S3Lease(LakeLock):
    """A lease object renewed by a background thread (a conditional write on its ETag)."""

    def __init__(self, lake: S3Lake, key: str, etag: str, info: dict[str, Any],
                 took_over: dict[str, Any] | None) -> None:  # fmt: skip
        super().__init__(lake.uri(key), info, took_over)
        self.lake = lake
        self.key = key
        self.etag = etag
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lake-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        last_renewed = time.monotonic()
        while not self._stop.wait(LEASE_SECONDS / 4):
            try:
                self.etag = self.lake._put_lease(self.key, self.info, if_match=self.etag)
                last_renewed = time.monotonic()
            except self.lake.client.exceptions.ClientError as exc:
                if self.lake._error_code(exc) in (*_PRECONDITION, "NoSuchKey", "404"):
                    self.lost = True
                    log.error("the lock %s was taken over by another run", self.uri)
                    return
                log.warning("renewing the lock %s failed (%s); retrying", self.uri, exc)
            except Exception as exc:  # noqa: BLE001 - a network error: retried on the next tick
                log.warning("renewing the lock %s failed (%s); retrying", self.uri, exc)
            if time.monotonic() - last_renewed > LEASE_SECONDS:
                self.lost = True
                log.error("the lock %s could not be renewed for %.0f s", self.uri, LEASE_SECONDS)
                return

    def check(self) -> None:
        if self.lost:
            raise LakeBusyError(
                f"this run lost its lock {self.uri} (not renewed in time, and another run took "
                "it over): it stopped before making anything visible. Run it again."
            )

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        client = self.lake.client
        try:
            client.delete_object(Bucket=self.lake.bucket, Key=self.lake._key(self.key),
                                 IfMatch=self.etag)  # fmt: skip
        except client.exceptions.ClientError as exc:
            log.warning("releasing the lock %s failed: %s", self.uri, exc)


class S3Lake(Lake):
    """An S3 bucket (or any S3-compatible server), through a boto3 client passed in."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = LakeLocation("s3", bucket, self.prefix)

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _error_code(self, exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _settle_conflict(self, key: str, sha256_hex: str) -> PutResult:
        if self.sha256(key) == sha256_hex:
            return PutResult.UNCHANGED
        raise _conflict(self.uri(key))

    def _put_once(self, key: str, data: bytes, sha256_hex: str) -> PutResult:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                IfNoneMatch="*",
                ChecksumSHA256=_b64(bytes.fromhex(sha256_hex)),
            )
        except self.client.exceptions.ClientError as exc:
            if self._error_code(exc) in _PRECONDITION:
                return self._settle_conflict(key, sha256_hex)
            raise LakeError(f"writing {self.uri(key)} failed: {exc}") from exc
        return PutResult.WRITTEN

    def put_bytes(self, key: str, data: bytes) -> PutResult:
        if len(data) > MULTIPART_THRESHOLD:
            return self.put_stream(key, [data])
        return self._put_once(key, data, hashlib.sha256(data).hexdigest())

    def open_writer(self, key: str) -> ObjectWriter:
        return _S3Writer(self, key)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> PutResult:
        if self.exists(key):  # cheap early answer; the conditional complete is the guard
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
            return self._settle_conflict(key, digest.hexdigest())
        return super().put_stream(key, chunks)

    def _abort(self, full_key: str, upload_id: str) -> None:
        # Best effort: a rerun aborts what is left (clear_unfinished_writes), and a lifecycle
        # rule on the bucket removes any upload left incomplete.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)

    def read_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except self.client.exceptions.ClientError as exc:
            if self._error_code(exc) in ("NoSuchKey", "404"):
                raise LakeError(f"{self.uri(key)} does not exist") from None
            raise LakeError(f"reading {self.uri(key)} failed: {exc}") from exc
        yield from body.iter_chunks(chunk_size)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if self._error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise LakeError(f"checking {self.uri(key)} failed: {exc}") from exc
        return True

    def list(self, prefix: str) -> list[str]:
        full_prefix = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def clear_unfinished_writes(self, prefix: str) -> list[str]:
        full_prefix = self._key(prefix)
        removed = []
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for upload in page.get("Uploads", []):
                    if not upload["Key"].startswith(full_prefix):
                        continue
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed.append(f"s3://{self.bucket}/{upload['Key']} (incomplete upload)")
        except self.client.exceptions.ClientError as exc:
            if self._error_code(exc) != "AccessDenied":
                raise LakeError(f"listing the incomplete uploads under {self.uri(prefix)} "
                                f"failed: {exc}") from exc  # fmt: skip
            log.warning(
                "cannot list incomplete uploads under %s (AccessDenied): any left by an "
                "interrupted run stay until the bucket's lifecycle rule aborts them",
                self.uri(prefix),
            )
        return removed

    # The lease: a small JSON object written with If-None-Match (taken) or If-Match (renewed,
    # taken over); its age is judged on the server's clock (Last-Modified against Date).
    def _put_lease(self, key: str, info: dict[str, Any], *, if_match: str | None = None) -> str:
        body = json.dumps({**info, "lease_seconds": LEASE_SECONDS}).encode()
        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        response = self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=body, **condition
        )
        return str(response["ETag"])

    def _read_lease(self, key: str) -> tuple[dict[str, Any], str, float] | None:
        """The lease's holder, ETag and age in seconds; None when there is none."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if self._error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise LakeError(f"reading the lock {self.uri(key)} failed: {exc}") from exc
        info = _read_json(response["Body"].read())
        now = dt.datetime.now(dt.UTC)
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                now = email.utils.parsedate_to_datetime(date)
        age = (now - response["LastModified"]).total_seconds()
        return info, str(response["ETag"]), age

    def lock(self, prefix: str, run_id: str, wait: float = 0.0) -> LakeLock:
        key = prefix + LOCK_NAME
        info = holder_info(run_id)
        other: dict[str, Any] = {}
        for first in _attempts(wait):
            try:
                return _S3Lease(self, key, self._put_lease(key, info), info, None)
            except self.client.exceptions.ClientError as exc:
                if self._error_code(exc) not in _PRECONDITION:
                    raise LakeError(f"taking the lock {self.uri(key)} failed: {exc}") from exc
            found = self._read_lease(key)
            if found is None:
                continue  # released meanwhile: try again at once
            other, etag, age = found
            lease = float(other.get("lease_seconds") or LEASE_SECONDS)
            if holder_dead(other) or age > lease:
                try:
                    etag = self._put_lease(key, info, if_match=etag)
                except self.client.exceptions.ClientError as exc:
                    if self._error_code(exc) in (*_PRECONDITION, "NoSuchKey", "404"):
                        continue  # another run took it first
                    raise LakeError(f"taking the lock {self.uri(key)} failed: {exc}") from exc
                return _S3Lease(self, key, etag, info, other or {"run_id": "?"})
            if first and wait > 0:
                log.info("%s is locked by %s: waiting up to %.0f s", self.uri(prefix),
                         describe_holder(other), wait)  # fmt: skip
        raise _busy(self.uri(prefix), other, wait)


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the settings: region, optional endpoint, standard retries, a
    connection for each concurrent part upload."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=UPLOAD_THREADS + 2,
        ),
    )


def open_lake(settings: Settings, client: Any | None = None) -> Lake:
    """The lake named by ``settings.lake_uri``; ``client`` overrides the S3 client (tests)."""
    location = settings.lake
    if location.is_s3:
        return S3Lake(client or s3_client(settings), location.root, location.prefix)
    return LocalLake(location.root)


def new_run_id(now: str) -> str:
    """A run id that sorts by time and never collides: ``20240301T101500Z-1a2b3c4d``."""
    return f"{now}-{uuid.uuid4().hex[:8]}"
