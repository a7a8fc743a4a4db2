"""One run per stage, lake and day: a lease held in the lake itself.

    with lake_lock(lake_uri, "trusted", run_date, run_id=run_id) as lock:
        ...  # write; lock.check() before each step that must not happen without the lock

The lease is a small JSON object at ``<layer>/_locks/<YYYY-MM-DD>.json`` in the lake (for
example ``trusted/_locks/2024-03-01.json``): the holder's run id, host and process id, when it
was taken and when it expires. It is created only if absent, atomically:

- on a local lake, by hard-linking a fully written temporary file to the lock's name
  (``link`` fails when the name exists, so two runs can never both create it);
- on S3, by a conditional ``PutObject`` with ``If-None-Match: *`` (S3 answers 412 to all but
  the first writer). Changing or deleting a lease someone may be taking over is conditional
  too: ``If-Match`` on the ETag read, and locally the same compare-and-swap done under an
  exclusive ``flock`` of the ``_locks`` folder (the kernel drops it if its holder dies).

A holder renews its lease from a background thread every third of its time to live
(``LOCK_TTL_SECONDS``, default 300). A run that is killed stops renewing: once its lease has
expired, or at once when the lease names a process of this host that no longer exists, the next
run takes it over with a compare-and-swap on the version it read (so of two runs racing for a
stale lease exactly one wins) and logs the old holder's run id. A holder that finds its lease
taken over (it stalled past its expiry) marks itself lost, and ``check()`` raises before its
next write.

A run that finds a live lease waits up to ``wait_seconds`` for it, then raises
``LockHeldError``: "another run holds this day", exit code 4 (``LOCKED``) on every command.

Nothing here imports Spark: the trusted job and the dbt wrapper (``scripts/dbt_locked.py``) use
the same module; boto3 is imported only for an ``s3://`` lake.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

log = logging.getLogger(__name__)

LOCKED_EXIT_CODE = 4  # the same value as ingestion.exit_codes.ExitCode.LOCKED
DEFAULT_TTL_SECONDS = 300.0
POLL_SECONDS = 1.0


class LockHeldError(RuntimeError):
    """Another live run holds the lease of this stage, lake and day."""

    def __init__(self, message: str, holder: Lease | None) -> None:
        super().__init__(message)
        self.holder = holder


class LockLostError(RuntimeError):
    """This run's lease expired and another run took it over: it must not write any more."""


@dataclass(frozen=True)
class Lease:
    """What the lock object holds."""

    lock: str  # "<layer>/<day>", e.g. "trusted/2024-03-01"
    run_id: str
    host: str
    pid: int
    acquired_at: str
    expires_at: str
    ttl_seconds: float

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Lease | None:
        """The lease, or None for an unreadable object (a writer died mid-write: stale)."""
        try:
            fields = json.loads(data.decode("utf-8"))
            return cls(**{name: fields[name] for name in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def expiry(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, lease until {self.expires_at})"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _process_gone(lease: Lease) -> bool:
    """True when the lease names a process of this host that has exited (or is a zombie)."""
    if lease.host != socket.gethostname() or lease.pid <= 0:
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child not yet reaped by its parent still answers kill(pid, 0)
        stat = Path(f"/proc/{lease.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


# ---------------------------------------------------------------------------------------------
# Stores: where the lease object lives
# ---------------------------------------------------------------------------------------------


class LeaseStore(Protocol):
    where: str

    def create(self, data: bytes) -> str | None:
        """Create the object if absent; its version token, or None when it exists."""

    def read(self) -> tuple[bytes, str] | None:
        """The object and its version token, or None when absent."""

    def replace(self, data: bytes, token: str) -> str | None:
        """Replace the object if still at ``token``; the new token, or None if it changed."""

    def delete(self, token: str) -> bool:
        """Delete the object if still at ``token``; False if it changed (or is gone)."""


class LocalLeaseStore:
    """A lease file on a local filesystem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    @staticmethod
    def _token(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def _temp(self, data: bytes) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        with open(temp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return temp

    def create(self, data: bytes) -> str | None:
        temp = self._temp(data)
        try:
            os.link(temp, self.path)
        except FileExistsError:
            return None
        finally:
            temp.unlink(missing_ok=True)
        return self._token(data)

    def read(self) -> tuple[bytes, str] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return data, self._token(data)

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """An exclusive ``flock`` of the locks folder itself (no extra file), for the
        read-compare-write steps; the kernel drops it when its holder dies."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def replace(self, data: bytes, token: str) -> str | None:
        temp = self._temp(data)
        try:
            with self._guarded():
                current = self.read()
                if current is None or current[1] != token:
                    return None
                os.replace(temp, self.path)
                return self._token(data)
        finally:
            temp.unlink(missing_ok=True)

    def delete(self, token: str) -> bool:
        with self._guarded():
            current = self.read()
            if current is None or current[1] != token:
                return False
            self.path.unlink()
            return True


class S3LeaseStore:
    """A lease object in S3: conditional writes (``If-None-Match``, ``If-Match``).

    The conditions go as boto3 parameters where the installed botocore knows them, else as the
    same HTTP headers added to the request (older botocore, e.g. the one AWS Glue 5 ships):
    S3 honours the header either way."""

    _HEADERS = {"IfNoneMatch": "If-None-Match", "IfMatch": "If-Match"}

    def __init__(self, client: Any, bucket: str, key: str, *, native: bool | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.where = f"s3://{bucket}/{key}"
        self._native = native  # None: use parameters where botocore has them
        self._pending = threading.local()  # the header of this thread's call in flight
        for operation in ("PutObject", "DeleteObject"):
            client.meta.events.register(f"before-sign.s3.{operation}", self._add_header)

    def _add_header(self, request: Any, **_: Any) -> None:
        header = getattr(self._pending, "header", None)
        if header is not None:
            request.headers[header[0]] = header[1]

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    @classmethod
    def _lost_race(cls, exc: Exception) -> bool:
        # 412 when the condition fails; 409 when a concurrent conditional write to the same key
        # is in flight (S3 asks the loser to retry: it re-reads and sees the winner).
        return cls._code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict")

    def _call(self, operation: str, param: str, value: str, **kwargs: Any) -> Any:
        """``client.<operation>(**kwargs)`` under the condition ``param=value``."""
        method = getattr(self.client, "put_object" if operation == "PutObject" else "delete_object")
        members = self.client.meta.service_model.operation_model(operation).input_shape.members
        native = param in members if self._native is None else self._native
        if native:
            return method(**kwargs, **{param: value})
        self._pending.header = (self._HEADERS[param], value)  # botocore signs in this thread
        try:
            return method(**kwargs)
        finally:
            self._pending.header = None

    def create(self, data: bytes) -> str | None:
        try:
            reply = self._call(
                "PutObject", "IfNoneMatch", "*", Bucket=self.bucket, Key=self.key, Body=data
            )
        except Exception as exc:
            if self._lost_race(exc):
                return None
            raise
        return str(reply["ETag"])

    def read(self) -> tuple[bytes, str] | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return reply["Body"].read(), str(reply["ETag"])

    def replace(self, data: bytes, token: str) -> str | None:
        try:
            reply = self._call(
                "PutObject", "IfMatch", token, Bucket=self.bucket, Key=self.key, Body=data
            )
        except Exception as exc:
            if self._lost_race(exc) or self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return str(reply["ETag"])

    def delete(self, token: str) -> bool:
        try:
            self._call("DeleteObject", "IfMatch", token, Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if self._lost_race(exc) or self._code(exc) in ("NoSuchKey", "404"):
                return False
            raise
        return True


def s3_client() -> Any:
    """A boto3 S3 client from the environment: ``AWS_REGION``, optional ``S3_ENDPOINT_URL``."""
    import boto3

    return boto3.client(
        "s3",
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
    )


def lease_key(layer: str, day: dt.date) -> str:
    return f"{layer}/_locks/{day.isoformat()}.json"


def store_for(lake_uri: str, layer: str, day: dt.date, client: Any | None = None) -> LeaseStore:
    """The lease store of ``layer`` and ``day`` in the lake at ``lake_uri`` (a folder, a
    ``file://`` URI, or ``s3://``/``s3a://bucket[/prefix]``)."""
    key = lease_key(layer, day)
    parsed = urlparse(lake_uri.strip())
    if parsed.scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise ValueError(f"LAKE_URI {lake_uri!r} names no bucket: use s3://bucket[/prefix]")
        prefix = parsed.path.strip("/")
        full_key = f"{prefix}/{key}" if prefix else key
        return S3LeaseStore(client or s3_client(), parsed.netloc, full_key)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"LAKE_URI {lake_uri!r}: no lock store for scheme {parsed.scheme!r}")
    root = Path(parsed.path if parsed.scheme == "file" else lake_uri).expanduser().resolve()
    return LocalLeaseStore(root / key)


# ---------------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------------


class LakeLock:
    """The lease of one stage (``layer``), lake and day, for one run."""

    def __init__(
        self,
        store: LeaseStore,
        lock_name: str,
        run_id: str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.lock_name = lock_name
        self.run_id = run_id
        self.ttl = ttl_seconds
        self._clock = clock
        self._token: str | None = None
        self._lease: Lease | None = None
        self._lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.took_over: Lease | None = None  # the stale lease this run replaced, if any

    def _new_lease(self) -> Lease:
        now = self._clock()
        acquired = self._lease.acquired_at if self._lease else _iso(now)
        return Lease(
            lock=self.lock_name,
            run_id=self.run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=acquired,
            expires_at=_iso(now + dt.timedelta(seconds=self.ttl)),
            ttl_seconds=self.ttl,
        )

    def _stale(self, lease: Lease | None) -> str | None:
        """Why ``lease`` may be taken over, or None while its holder is alive."""
        if lease is None:
            return "its lease object is unreadable"
        if _process_gone(lease):
            return f"its process {lease.pid} on {lease.host} is gone"
        if lease.expiry <= self._clock():
            return f"its lease expired at {lease.expires_at}"
        return None

    def try_acquire(self) -> Lease | None:
        """Take the lease if free or stale; returns None on success, else the live holder."""
        while True:
            lease = self._new_lease()
            token = self.store.create(lease.to_bytes())
            if token is not None:
                self._token, self._lease = token, lease
                return None
            current = self.store.read()
            if current is None:
                continue  # released between our create and read: try again
            data, token = current
            holder = Lease.from_bytes(data)
            why = self._stale(holder)
            if why is None:
                return holder
            replaced = self.store.replace(lease.to_bytes(), token)
            if replaced is None:
                continue  # another run changed it first: look again
            self._token, self._lease, self.took_over = replaced, lease, holder
            old = holder.run_id if holder else "unknown"
            log.warning(
                "took over the lease %s from run %s: %s (that run was killed or stalled; its "
                "leftovers are cleaned next)",
                self.store.where,
                old,
                why,
            )
            return None

    def acquire(self, wait_seconds: float = 0.0) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for a live holder; then renew it in
        the background. Raises ``LockHeldError`` when it stays held."""
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        announced = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise LockHeldError(
                    f"another run holds this day: {self.lock_name} is locked by "
                    f"{holder.describe()} ({self.store.where}). Wait for it to finish, or run "
                    "again with a lock wait (--lock-wait SECONDS); a killed run's lease is taken "
                    f"over once it expires (at most {holder.ttl_seconds:.0f} s).",
                    holder,
                )
            if not announced:
                log.info("waiting for %s, held by %s", self.lock_name, holder.describe())
                announced = True
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.05)))
        log.info("lock %s taken by run %s (%s)", self.lock_name, self.run_id, self.store.where)
        self._renewer = threading.Thread(
            target=self._renew_loop, name=f"lease-{self.lock_name}", daemon=True
        )
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.renew()

    def renew(self) -> None:
        """Push the expiry forward; marks the lease lost if another run took it over."""
        if self._token is None or self._lost:
            return
        lease = self._new_lease()
        try:
            token = self.store.replace(lease.to_bytes(), self._token)
        except Exception as exc:  # a network error: keep the lease, try at the next tick
            log.warning("could not renew the lease %s: %s", self.store.where, exc)
            return
        if token is None:
            self._lost = True
            log.error("lost the lease %s: another run took it over", self.store.where)
        else:
            self._token, self._lease = token, lease

    def check(self) -> None:
        """Raise ``LockLostError`` when this run no longer holds its lease."""
        if self._lost or self._token is None:
            raise LockLostError(
                f"run {self.run_id} lost its lease {self.store.where} (it stalled past the "
                "expiry and another run took over): stopping before any further write"
            )

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._token is not None and not self._lost:
            try:
                if not self.store.delete(self._token):
                    log.warning("lease %s changed before release: left as is", self.store.where)
            except Exception as exc:  # the lease expires by itself
                log.warning("could not release the lease %s: %s", self.store.where, exc)
        self._token = None


@contextlib.contextmanager
def lake_lock(
    lake_uri: str,
    layer: str,
    day: dt.date,
    *,
    run_id: str,
    wait_seconds: float = 0.0,
    ttl_seconds: float | None = None,
    client: Any | None = None,
) -> Iterator[LakeLock]:
    """Hold the lease of ``layer`` (``trusted``, ``refined``) and ``day`` in the lake for the
    duration of the block. ``ttl_seconds`` defaults to ``LOCK_TTL_SECONDS`` or 300."""
    if ttl_seconds is None:
        ttl_seconds = float(os.environ.get("LOCK_TTL_SECONDS") or DEFAULT_TTL_SECONDS)
    lock = LakeLock(
        store_for(lake_uri, layer, day, client),
        f"{layer}/{day.isoformat()}",
        run_id,
        ttl_seconds=ttl_seconds,
    )
    lock.acquire(wait_seconds)
    try:
        yield lock
    finally:
        lock.release()


def add_lock_wait_option(parser: argparse.ArgumentParser) -> None:
    """``--lock-wait SECONDS`` (default ``LOCK_WAIT_SECONDS``), read with parse_wait()."""
    parser.add_argument(
        "--lock-wait",
        default=os.environ.get("LOCK_WAIT_SECONDS"),
        metavar="SECONDS",
        help="when another run holds this lake and day, wait up to SECONDS for it "
        "(LOCK_WAIT_SECONDS; default 0: exit at once with code 4)",
    )


def parse_wait(value: str | None) -> float:
    """``LOCK_WAIT_SECONDS``/``--lock-wait``: seconds to wait for a held lock (default 0)."""
    if value is None or not str(value).strip():
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"lock wait {value!r} is not a number of seconds, e.g. 600") from None
    if seconds < 0:
        raise ValueError(f"lock wait {value!r} is negative: give 0 or more seconds")
    return seconds
