"""The Lambda handler against moto (S3, Secrets Manager) and the fake TMDB server."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from tmdb_helpers import API_KEY, RUN_DATE

from fake_tmdb import FakeTMDb
from ingestion.lambda_handler import handle, lambda_handler
from ingestion.settings import SettingsError
from ingestion.tmdb_pool import TMDbDeadlineError

pytestmark = pytest.mark.slow  # S3 and Secrets Manager on a moto server

DAY = "year={}/month={}/day={}/".format(*RUN_DATE.split("-"))
MAIN_TEMPLATE = Path(__file__).resolve().parents[2] / "cloudformation" / "movie-lake.yaml"


class FakeContext:
    """What the handler reads of AWS Lambda's context object."""

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture()
def aws(moto_server_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh bucket and secret on the shared moto server; the Lambda's environment."""
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    secret = f"movie-lake/test/tmdb-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server_url)
    secrets = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_server_url)
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("LAKE_URI", f"s3://{bucket}")
    monkeypatch.setenv("S3_ENDPOINT_URL", moto_server_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_server_url)
    monkeypatch.setenv("TMDB_API_KEY_SECRET", secret)
    monkeypatch.setenv("RUN_DATE", RUN_DATE)
    monkeypatch.setenv("TMDB_RATE_LIMIT", "5000")
    return {"bucket": bucket, "secret": secret, "s3": s3, "secrets": secrets}


def all_objects(s3: Any, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_lambda_handler_lands_raw_in_s3_with_the_key_from_secrets_manager(
    aws: dict[str, Any], fake_tmdb: FakeTMDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws["secrets"].create_secret(Name=aws["secret"], SecretString=API_KEY)
    monkeypatch.setenv("TMDB_BASE_URL", fake_tmdb.base_url)

    result = lambda_handler({}, FakeContext())

    objects = all_objects(aws["s3"], aws["bucket"])
    for dataset in ("genres", "discover", "movie_details"):
        prefix = f"raw/tmdb/json/{dataset}/{DAY}"
        assert prefix + "_SUCCESS" in objects
        manifest = json.loads(objects[prefix + "_manifest.json"])
        assert manifest["records"] == sum(f["records"] for f in manifest["files"])
    horror = fake_tmdb.catalogue.ids_with_genre(27)
    assert result["details_fetched"] == len(horror) == result["movies"]
    assert all(API_KEY.encode() not in body for body in objects.values())
    assert API_KEY not in json.dumps(result)


def test_json_secret_and_a_second_invocation_the_same_day_fetch_nothing(
    aws: dict[str, Any], fake_tmdb: FakeTMDb, moto_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws["secrets"].create_secret(Name=aws["secret"], SecretString=json.dumps({"api_key": API_KEY}))
    monkeypatch.setenv("TMDB_BASE_URL", fake_tmdb.base_url)
    clients = {"secrets_client": aws["secrets"], "s3_client": aws["s3"]}

    first = handle({"max_movies": 10}, FakeContext(), **clients)
    assert first["details_fetched"] == 10
    before = all_objects(aws["s3"], aws["bucket"])
    fake_tmdb.clear_log()
    second = handle({}, FakeContext(), **clients)
    assert fake_tmdb.log == []
    assert all_objects(aws["s3"], aws["bucket"]) == before
    assert {d["status"] for d in second["datasets"].values()} == {"already_complete"}


def test_a_run_that_would_outlive_the_lambda_stops_uncommitted(
    aws: dict[str, Any], fake_tmdb: FakeTMDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws["secrets"].create_secret(Name=aws["secret"], SecretString=API_KEY)
    monkeypatch.setenv("TMDB_BASE_URL", fake_tmdb.base_url)
    fake_tmdb.latency_ms = 150  # ~300 detail requests at 24 in flight: about 2 s
    with pytest.raises(TMDbDeadlineError, match="deadline"):
        lambda_handler({}, FakeContext(remaining_ms=31_000))  # 1 s left after the margin
    keys = all_objects(aws["s3"], aws["bucket"])
    assert f"raw/tmdb/json/movie_details/{DAY}_SUCCESS" not in keys


def test_missing_secret_name_or_a_local_lake_is_a_clear_error(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TMDB_API_KEY_SECRET")
    with pytest.raises(SettingsError, match="TMDB_API_KEY_SECRET"):
        lambda_handler({}, FakeContext())
    monkeypatch.setenv("TMDB_API_KEY_SECRET", aws["secret"])
    with pytest.raises(SettingsError, match="does not exist"):
        lambda_handler({}, FakeContext())
    monkeypatch.setenv("LAKE_URI", "./lake")
    with pytest.raises(SettingsError, match="not an S3 URI"):
        lambda_handler({}, FakeContext())


@pytest.mark.slow  # a moto server
def test_an_existing_secret_without_a_value_says_how_to_set_it(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack creates the secret empty: that is not "does not exist"."""
    aws["secrets"].create_secret(Name=aws["secret"], Description="created empty, as the stack does")
    with pytest.raises(SettingsError) as empty:
        lambda_handler({}, FakeContext())
    message = str(empty.value)
    assert "has no value yet" in message and "does not exist" not in message
    assert f"put-secret-value --secret-id {aws['secret']}" in message

    monkeypatch.setenv("TMDB_API_KEY_SECRET", aws["secret"] + "-missing")
    with pytest.raises(SettingsError, match="does not exist"):
        lambda_handler({}, FakeContext())


@pytest.mark.slow  # a moto server
def test_the_handler_returns_every_key_the_state_machine_selects(
    aws: dict[str, Any], fake_tmdb: FakeTMDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ExtractTmdb's ResultSelector reads $.Payload.<key>: a key the handler does not return is a
    States.Runtime error, which no Catch sees (the execution fails without NotifyFailure)."""
    from cfnlint.decode import decode

    template, problems = decode(str(MAIN_TEMPLATE))
    assert not problems and template is not None
    machine = template["Resources"]["PipelineStateMachine"]["Properties"]["Definition"]
    selector = machine["States"]["ExtractTmdb"]["ResultSelector"]
    paths = [re.fullmatch(r"\$\.Payload\.(\w+)", path) for path in selector.values()]
    assert all(paths), selector
    keys = {match.group(1) for match in paths if match}
    assert len(keys) == len(selector) >= 5

    aws["secrets"].create_secret(Name=aws["secret"], SecretString=API_KEY)
    monkeypatch.setenv("TMDB_BASE_URL", fake_tmdb.base_url)
    result = json.loads(json.dumps(lambda_handler({"max_movies": 3}, FakeContext())))
    assert keys <= set(result), keys - set(result)
    assert all(result[key] is not None for key in keys)
