"""deploy/deploy.py against a local moto server: the artifacts stack through a change set,
content-addressed uploads, and the parameters handed to the main template. (moto cannot
create the main stack's Glue, Athena, CodeBuild or Scheduler resources, so that last step is
checked against the template's parameters instead.)"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
import pytest

from deploy.deploy import (
    KEY_PARAMETERS,
    DeployError,
    deploy_stack,
    load_manifest,
    main_parameters,
    upload_artifacts,
)

pytestmark = pytest.mark.slow  # builds the artifacts (pip), deploys to a moto server

ARTIFACTS_TEMPLATE = (
    Path(__file__).resolve().parents[2] / "cloudformation" / "movie-lake-artifacts.yaml"
)


@pytest.mark.filterwarnings("ignore:Tried to parse AWS..S3..BucketPolicy")
def test_artifacts_stack_is_created_and_each_artifact_uploaded_once(
    packaged: dict[str, Any], moto_server_url: str
) -> None:
    session = boto3.Session(region_name="us-east-1")
    cfn = session.client("cloudformation", endpoint_url=moto_server_url)
    s3 = session.client("s3", endpoint_url=moto_server_url)

    status = deploy_stack(
        cfn,
        "movie-lake-ci-artifacts",
        {"EnvironmentName": "ci"},
        template_body=ARTIFACTS_TEMPLATE.read_text(encoding="utf-8"),
    )
    assert status == "created"
    assert cfn.describe_stacks(StackName="movie-lake-ci-artifacts")["Stacks"][0]["StackStatus"] == (
        "CREATE_COMPLETE"
    )
    bucket = cfn.describe_stack_resource(
        StackName="movie-lake-ci-artifacts", LogicalResourceId="ArtifactBucket"
    )["StackResourceDetail"]["PhysicalResourceId"]
    assert bucket.startswith("movie-lake-ci-artifacts-")

    artifacts = load_manifest(packaged["out"] / "manifest.json")
    uploaded = upload_artifacts(s3, bucket, artifacts)
    assert sorted(uploaded) == sorted(a["key"] for a in artifacts.values())
    assert upload_artifacts(s3, bucket, artifacts) == []  # same content: nothing to send
    for artifact in artifacts.values():
        body = s3.get_object(Bucket=bucket, Key=artifact["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"]


def test_main_stack_gets_every_parameter_it_has_no_default_for(
    packaged: dict[str, Any], main_template: dict[str, Any]
) -> None:
    artifacts = load_manifest(packaged["out"] / "manifest.json")
    params = main_parameters("ci", "artifact-bucket", artifacts, {"GlueNumberOfWorkers": "4"})
    declared = set(main_template["Parameters"])
    required = {k for k, v in main_template["Parameters"].items() if "Default" not in v}
    assert required <= set(params) <= declared
    assert params["GlueNumberOfWorkers"] == "4"
    for name, parameter in KEY_PARAMETERS.items():
        assert params[parameter] == artifacts[name]["key"]


def test_deploy_without_a_package_says_to_run_make_package(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="run `make package` first"):
        load_manifest(tmp_path / "manifest.json")
