"""The lake as the Spark job sees it: paths, raw partitions, manifests, the run report.

Everything goes through Hadoop's ``FileSystem`` in the driver's JVM, so one code path serves a
local folder (``file://``), S3 on AWS Glue (``s3://``) and S3 through hadoop-aws (``s3a://``).
Nothing here reads data rows: only listings, the small ``_manifest.json`` files and the run
report.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
HADOOP_AWS_HINT = (
    "add hadoop-aws to the classpath, matching the Hadoop of your Spark "
    "(pyspark 3.5: --packages org.apache.hadoop:hadoop-aws:3.3.4, or spark.jars pointing at "
    "hadoop-aws-3.3.4.jar and aws-java-sdk-bundle-1.12.262.jar), run the job on AWS Glue, "
    "or use a local folder lake (LAKE_URI=./lake)"
)
_PARTITION_RE = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/?$")
# Filesystem calls on the lake's partitions run this many at a time: on S3 each is a request,
# and a year of daily partitions, one call after another, would make a run's planning grow
# with the history.
LISTING_THREADS = 16


def each_at_once(items: Iterable[Any], call: Callable[[Any], Any]) -> list[Any]:
    """``[call(item) for item in items]``, in order, up to ``LISTING_THREADS`` calls at once
    (py4j gives each Python thread its own connection to the JVM)."""
    items = list(items)
    if len(items) < 2:
        return [call(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(LISTING_THREADS, len(items)), thread_name_prefix="lake-list"
    ) as pool:
        return list(pool.map(call, items))


class TrustedJobError(RuntimeError):
    """The job cannot go on; the message says what is wrong, with which input, and what to do."""


@dataclass(frozen=True)
class RawPartition:
    """One ``year=/month=/day=`` folder of a raw dataset."""

    dataset: str  # e.g. "raw/local/csv/movies"
    date: dt.date
    uri: str  # the folder, as a Hadoop URI
    complete: bool  # holds _SUCCESS

    @property
    def key(self) -> str:
        return f"{self.dataset}/{partition_suffix(self.date)}"


@dataclass(frozen=True)
class RawFile:
    """A data file that a complete partition's manifest lists."""

    key: str  # the lake key, as the manifest gives it
    uri: str  # where Spark reads it
    date: dt.date  # the date of its partition
    records: int | None  # as the manifest counts them (None when not given)
    size: int  # bytes on storage, for sizing outputs


def partition_suffix(date: dt.date) -> str:
    return f"year={date:%Y}/month={date:%m}/day={date:%d}"


def resolve_lake_root(spark: SparkSession, lake_uri: str, *, on_glue: bool) -> str:
    """Turn ``LAKE_URI`` into the root URI Spark and Hadoop use.

    A folder becomes an absolute ``file://`` URI. ``s3://`` stays as it is on Glue (its S3
    filesystem serves it); elsewhere it becomes ``s3a://`` when hadoop-aws is on the classpath,
    and the job stops with instructions when it is not.
    """
    uri = lake_uri.strip()
    if not uri:
        raise TrustedJobError(
            "LAKE_URI is empty: set it to a folder (./lake) or s3://bucket/prefix"
        )
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else uri
        return Path(path).expanduser().resolve().as_uri()
    if parsed.scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise TrustedJobError(f"LAKE_URI {uri!r} names no bucket: use s3://bucket[/prefix]")
        rest = f"{parsed.netloc}{parsed.path}".rstrip("/")
        if on_glue:
            return f"s3://{rest}"
        if not jvm_has_class(spark, S3A_CLASS):
            raise TrustedJobError(
                f"LAKE_URI {uri!r} is on S3, but this Spark cannot read S3 outside AWS Glue: "
                f"class {S3A_CLASS} is not on the classpath. To fix: {HADOOP_AWS_HINT}."
            )
        _configure_s3a(spark)
        return f"s3a://{rest}"
    raise TrustedJobError(
        f"LAKE_URI {uri!r} has an unsupported scheme {parsed.scheme!r}: use a folder or s3://"
    )


def jvm_has_class(spark: SparkSession, name: str) -> bool:
    """True when the driver JVM can load class ``name``."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    try:
        jvm.java.lang.Class.forName(name, False, loader)
    except Exception:  # py4j raises Py4JJavaError(ClassNotFoundException)
        return False
    return True


def _configure_s3a(spark: SparkSession) -> None:
    """Point s3a at ``S3_ENDPOINT_URL`` (MinIO, moto) when it is set; AWS defaults otherwise."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
    endpoint = os.environ.get("S3_ENDPOINT_URL")
    if endpoint:
        conf.set("fs.s3a.endpoint", endpoint)
        conf.set("fs.s3a.path.style.access", "true")
        conf.set("fs.s3a.connection.ssl.enabled", str(endpoint.startswith("https")).lower())
    region = os.environ.get("AWS_REGION")
    if region:
        conf.set("fs.s3a.endpoint.region", region)


class LakeFS:
    """Listing and small-file access under the lake root, through Hadoop's FileSystem."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/")
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        self._jvm = jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
        self._fs = jvm.org.apache.hadoop.fs.Path(self.root + "/").getFileSystem(self._conf)

    def uri(self, key: str) -> str:
        return f"{self.root}/{key.lstrip('/')}"

    def _path(self, key_or_uri: str) -> Any:
        is_uri = ":" in key_or_uri.split("/", 1)[0]  # file:/x, s3://b/x; lake keys hold no ":"
        target = key_or_uri if is_uri else self.uri(key_or_uri)
        return self._jvm.org.apache.hadoop.fs.Path(target)

    def exists(self, key_or_uri: str) -> bool:
        return bool(self._fs.exists(self._path(key_or_uri)))

    def size(self, key_or_uri: str) -> int:
        return int(self._fs.getFileStatus(self._path(key_or_uri)).getLen())

    def read_text(self, key_or_uri: str) -> str:
        stream = self._fs.open(self._path(key_or_uri))
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def read_bytes(self, key_or_uri: str) -> bytes:
        stream = self._fs.open(self._path(key_or_uri))
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_text(self, key: str, text: str) -> str:
        path = self._path(key)
        out = self._fs.create(path, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        return str(path.toString())

    # -- folder operations of the trusted commit protocol (spark/trusted_commit.py) -----------

    def key_of(self, uri: str) -> str:
        """The lake key of a URI under the root (``file:/x/lake/trusted/t`` -> ``trusted/t``)."""
        path = str(self._path(uri).toUri().getPath())
        root = str(self._path(self.root).toUri().getPath()).rstrip("/")
        if not path.startswith(root + "/"):
            raise TrustedJobError(f"{uri} is not under the lake root {self.root}")
        return path[len(root) + 1 :].rstrip("/")

    def list_dir(self, key_or_uri: str) -> list[tuple[str, bool]]:
        """The entries of a folder as ``(name, is_dir)``, sorted; empty when it is missing."""
        path = self._path(key_or_uri)
        if not self._fs.exists(path):
            return []
        return sorted(
            (str(s.getPath().getName()), bool(s.isDirectory())) for s in self._fs.listStatus(path)
        )

    def list_files(self, key_or_uri: str) -> list[str]:
        """Every file under a folder, as paths relative to it (``year=2024/.../part-0.parquet``),
        sorted; Hadoop's checksum files (``.*.crc``) are left out."""
        base = key_or_uri.rstrip("/")
        found: list[str] = []
        for name, is_dir in self.list_dir(base):
            if is_dir:
                found += [f"{name}/{rest}" for rest in self.list_files(f"{base}/{name}")]
            elif not (name.startswith(".") and name.endswith(".crc")):
                found.append(name)
        return sorted(found)

    def delete(self, key_or_uri: str) -> bool:
        """Delete a file or a folder with everything in it; False when there was nothing."""
        return bool(self._fs.delete(self._path(key_or_uri), True))

    def delete_empty_folder(self, key_or_uri: str) -> None:
        """Delete a folder only if it is empty (a non-recursive delete refuses otherwise)."""
        with contextlib.suppress(Exception):  # not empty (or gone): left as it is
            self._fs.delete(self._path(key_or_uri), False)

    def mkdirs(self, key_or_uri: str) -> None:
        self._fs.mkdirs(self._path(key_or_uri))

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``, which must not exist (its parent is created). On a local
        filesystem this is one atomic ``rename``; on S3 a copy and a delete per object."""
        target = self._path(dst)
        if self._fs.exists(target):
            raise TrustedJobError(f"cannot move {src} to {dst}: the target exists")
        self._fs.mkdirs(target.getParent())
        if not self._fs.rename(self._path(src), target):
            raise TrustedJobError(f"could not move {src} to {dst}")

    def local_path(self, key_or_uri: str) -> Path | None:
        """The path on disk of a key of a ``file://`` lake; None on any other filesystem."""
        uri = self._path(key_or_uri).toUri()
        if str(uri.getScheme() or "file") != "file":
            return None
        return Path(str(uri.getPath()))

    def partitions(self, dataset: str) -> list[RawPartition]:
        """Every ``year=/month=/day=`` folder of a dataset, oldest first."""
        statuses = self._fs.globStatus(self._path(f"{dataset}/year=*/month=*/day=*"))

        def partition(status: Any) -> RawPartition | None:
            if not status.isDirectory():
                return None
            uri = str(status.getPath().toString())
            match = _PARTITION_RE.search(uri)
            if not match:
                return None
            try:
                date = dt.date(*(int(g) for g in match.groups()))
            except ValueError:
                log.warning("ignoring %s: not a valid partition date", uri)
                return None
            return RawPartition(dataset, date, uri, self.exists(f"{uri}/_SUCCESS"))

        found = [p for p in each_at_once(statuses or [], partition) if p is not None]
        return sorted(found, key=lambda p: p.date)

    def manifest_files(self, partition: RawPartition) -> list[RawFile]:
        """The data files a complete partition's ``_manifest.json`` lists."""
        manifest_uri = f"{partition.uri}/_manifest.json"
        if not self.exists(manifest_uri):
            raise TrustedJobError(
                f"{partition.key} has _SUCCESS but no _manifest.json: the partition is damaged; "
                "land it again under a new date or restore the manifest"
            )
        try:
            manifest = json.loads(self.read_text(manifest_uri))
            entries = manifest["files"]
            keys = [(str(e["key"]), e.get("records")) for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise TrustedJobError(
                f"{partition.key}/_manifest.json is not a valid manifest "
                f"(needs 'files': [{{'key': ..., 'records': N}}]): {exc}"
            ) from exc
        files = []
        for key, records in keys:
            uri = self.uri(key)
            if not self.exists(uri):
                raise TrustedJobError(
                    f"{partition.key}/_manifest.json lists {key}, which does not exist: "
                    "the raw partition is damaged"
                )
            files.append(RawFile(key, uri, partition.date, _as_int(records), self.size(uri)))
        return files


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Any:
    """glibc's ``renameat2`` (Linux 3.15+, glibc 2.28+), or None where there is none."""
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths (folders) in one atomic step, ``renameat2(RENAME_EXCHANGE)``:
    a reader sees the one or the other, never neither. False where the system or the
    filesystem cannot (the caller then falls back to two renames); raises on other errors."""
    function = _renameat2()
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(error, f"cannot exchange {a} and {b}: {os.strerror(error)}")


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
