"""The lake: one small interface, two backends (a local folder and S3) with identical keys.

Keys are relative, slash-separated paths such as ``raw/local/csv/movies/year=2024/...``.
Raw writes are write-once: writing a key again with the same bytes is reported
``UNCHANGED``; with different bytes it raises :class:`LakeConflictError` and the first object
stays as it was. Objects become visible whole or not at all: a local write goes to a temporary
file that is linked into place; an S3 write is a single conditional PUT or a multipart upload
completed only when every part has been sent (and aborted otherwise).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ingestion.settings import LakeLocation, Settings

CHUNK_SIZE = 8 * 1024 * 1024  # S3 parts must be >= 5 MiB but the last
MULTIPART_THRESHOLD = CHUNK_SIZE


class PutResult(enum.Enum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"


class LakeError(RuntimeError):
    """The lake could not do what was asked; the message names the key and what to do."""


class LakeConflictError(LakeError):
    """A write-once key already holds different bytes."""


def _conflict(uri: str) -> LakeConflictError:
    return LakeConflictError(
        f"{uri} already exists with different content; raw is write-once and was left as it "
        "was. Land the new data under another RUN_DATE, or remove the old object on purpose."
    )


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
    def put_stream(self, key: str, chunks: Iterable[bytes]) -> PutResult:
        """Write a large object once from ``chunks``; nothing is visible if ``chunks`` raises."""

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

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.read_chunks(key):
            digest.update(chunk)
        return digest.hexdigest()


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key:
        raise LakeError(f"invalid lake key {key!r}: use a relative path like raw/x/y.json")
    return key


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

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> PutResult:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            try:
                os.link(tmp_name, path)  # atomic exclusive create: fails if the key exists
            except FileExistsError:
                if self.sha256(key) == digest.hexdigest():
                    return PutResult.UNCHANGED
                raise _conflict(self.uri(key)) from None
            return PutResult.WRITTEN
        finally:
            Path(tmp_name).unlink(missing_ok=True)

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
            if path.is_file() and not (path.name.startswith(".") and path.name.endswith(".tmp"))
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


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

    def put_bytes(self, key: str, data: bytes) -> PutResult:
        if len(data) > MULTIPART_THRESHOLD:
            return self.put_stream(key, [data])
        digest = hashlib.sha256(data)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                IfNoneMatch="*",
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            )
        except self.client.exceptions.ClientError as exc:
            if self._error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return self._settle_conflict(key, digest.hexdigest())
            raise LakeError(f"writing {self.uri(key)} failed: {exc}") from exc
        return PutResult.WRITTEN

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> PutResult:
        full_key = self._key(key)
        if self.exists(key):  # cheap early answer; the conditional complete below is the guard
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
            return self._settle_conflict(key, digest.hexdigest())

        digest = hashlib.sha256()
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=full_key, ChecksumAlgorithm="SHA256"
        )["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            buffer = bytearray()

            def send(data: bytes) -> None:
                number = len(parts) + 1
                checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
                parts.append(
                    {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
                )

            for chunk in chunks:
                digest.update(chunk)
                buffer += chunk
                while len(buffer) >= CHUNK_SIZE:
                    send(bytes(buffer[:CHUNK_SIZE]))
                    del buffer[:CHUNK_SIZE]
            if buffer or not parts:
                send(bytes(buffer))
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except self.client.exceptions.ClientError as exc:
            self._abort(full_key, upload_id)
            if self._error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return self._settle_conflict(key, digest.hexdigest())
            raise LakeError(f"writing {self.uri(key)} failed: {exc}") from exc
        except BaseException:
            self._abort(full_key, upload_id)
            raise
        return PutResult.WRITTEN

    def _abort(self, full_key: str, upload_id: str) -> None:
        # Best effort: a lifecycle rule on the bucket removes any upload left incomplete.
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


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the settings: region, optional endpoint, standard retries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
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
