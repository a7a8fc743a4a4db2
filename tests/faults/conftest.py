"""Fixtures of the fault-injection tests: scratch lakes, local or on the session's moto
server, that a stage run as a subprocess can reach (helpers: ``fault_helpers.py``)."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from fault_helpers import ScratchLake

from ingestion.lake import LocalLake, S3Lake


@pytest.fixture(scope="session")
def s3_client(moto_server_url: str) -> Any:
    return boto3.client(
        "s3", region_name="us-east-1", endpoint_url=moto_server_url,
        config=Config(retries={"mode": "standard"}),
    )  # fmt: skip


def _fresh_bucket(client: Any, name: str) -> str:
    client.create_bucket(Bucket=name)
    return name


def _drop_bucket(client: Any, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def scratch_lakes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``new(backend)`` makes a fresh lake, ``"local"`` (a folder) or ``"s3"`` (a bucket on the
    session's moto server); buckets are removed at the end."""
    buckets: list[str] = []
    made = itertools.count()

    def new(backend: str) -> ScratchLake:
        n = next(made)
        if backend == "local":
            root = tmp_path / f"lake-{n}"
            return ScratchLake({"LAKE_URI": str(root)}, LocalLake(root))
        url = request.getfixturevalue("moto_server_url")
        client = request.getfixturevalue("s3_client")
        bucket = _fresh_bucket(client, f"faults-{os.getpid()}-{n}-{time.time_ns() % 10**9}")
        buckets.append(bucket)
        env = {"LAKE_URI": f"s3://{bucket}", "S3_ENDPOINT_URL": url}
        return ScratchLake(env, S3Lake(client, bucket))

    yield new
    if buckets:
        client = request.getfixturevalue("s3_client")
        for bucket in buckets:
            _drop_bucket(client, bucket)
