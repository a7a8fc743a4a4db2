"""deploy/deploy.py's parts against a local moto server: the artifacts stack through a change
set, content-addressed uploads, the parameters handed to the main template, and its --help.
The whole deployment of both stacks on moto is test_deploy_stacks_on_moto.py."""

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


def test_help_gives_the_equivalent_aws_cloudformation_deploy_of_each_stack(
    main_template: dict[str, Any], artifacts_template: dict[str, Any]
) -> None:
    """--help prints the docstring as written: one `aws cloudformation deploy` per stack, the
    main one with every parameter the template has no default for."""
    import contextlib
    import io
    import re
    import shlex

    from deploy.deploy import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    text = out.getvalue().replace("\\\n", " ")
    commands = [
        shlex.split(line)
        for line in text.splitlines()
        if "aws cloudformation deploy --stack-name" in line
    ]
    by_template = {c[c.index("--template-file") + 1]: c for c in commands}
    assert set(by_template) == {
        "cloudformation/movie-lake-artifacts.yaml",
        "cloudformation/movie-lake.yaml",
    }
    for name, template in (
        ("cloudformation/movie-lake-artifacts.yaml", artifacts_template),
        ("cloudformation/movie-lake.yaml", main_template),
    ):
        command = by_template[name]
        overrides = command[command.index("--parameter-overrides") + 1 :]
        overrides = overrides[: next((i for i, o in enumerate(overrides) if o[:2] == "--"), None)]
        given = {item.split("=", 1)[0] for item in overrides}
        required = {k for k, v in template["Parameters"].items() if "Default" not in v}
        assert required <= given, (name, required - given)
        assert given <= set(template["Parameters"]) | {"EnvironmentName"}
    main_command = by_template["cloudformation/movie-lake.yaml"]
    assert "CAPABILITY_NAMED_IAM" in main_command
    # Each artifact key comes from the manifest entry the script itself uses.
    for name, parameter in KEY_PARAMETERS.items():
        assert re.search(rf'{parameter}="\$\(key {name}\)"', text), parameter
        assert re.search(rf'aws s3 cp build/aws/\S+ "s3://\$BUCKET/\$\(key {name}\)"', text)
