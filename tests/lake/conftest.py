"""One lake fixture, three backends: a local folder, moto in-process, and a moto server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from ingestion.lake import Lake, LocalLake, S3Lake


def _bucket(client, name: str) -> None:  # noqa: ANN001
    client.create_bucket(Bucket=name)


# The moto server is a real HTTP server: those variants are slow (make test-fast skips them).
@pytest.fixture(params=["local", "moto", pytest.param("moto_server", marks=pytest.mark.slow)])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    if request.param == "local":
        yield LocalLake(tmp_path / "lake")
        return
    config = Config(retries={"mode": "standard"})
    if request.param == "moto":
        from moto import mock_aws

        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1", config=config)
            _bucket(client, "lake-inprocess")
            yield S3Lake(client, "lake-inprocess", "env/dev")
        return
    url = request.getfixturevalue("moto_server_url")
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=url, config=config)
    bucket = f"lake-{request.node.name.split('[')[0][-30:].replace('_', '-')}".lower()
    _bucket(client, bucket)
    yield S3Lake(client, bucket)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)
