"""Both stacks deployed by ``make deploy``'s code path (``python -m deploy.deploy``) on a moto
server, the resources they must create read back through the services' APIs, then deleted.

moto's CloudFormation has no model for several types the main stack uses (Glue, Athena,
CodeBuild, Scheduler, Secrets Manager, CloudWatch alarms, bucket and topic policies, SNS
subscriptions, Lambda invoke configs) and drops the Definition of a state machine:
``moto_cloudformation.cloudformation_providers`` creates those through their own APIs on the
same server, with the properties CloudFormation resolved (see its docstring for the list).
moto's bucket model applies BucketName, BucketEncryption and Tags only (not versioning,
lifecycle rules, public access blocks or ownership controls), and its Lambda model ignores
LoggingConfig and DeadLetterConfig: those properties are checked in the templates
themselves (test_deploy_template.py).

The stacks go to their own region (eu-west-1; every other moto test uses us-east-1) under
their own environment name, so nothing they create meets another test's resources.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto_cloudformation import INCOMPLETE, UNMODELLED, cloudformation_providers

from deploy import deploy as deploy_script
from ingestion.lambda_handler import read_api_key
from ingestion.settings import SettingsError

pytestmark = pytest.mark.slow

REGION = "eu-west-1"
ENV = "stacks"
ALERT_EMAIL = "alerts@example.org"


class Stacks:
    """The deployed stacks and clients bound to the moto server, for the tests to read."""

    def __init__(self, endpoint: str, manifest: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.manifest = manifest
        self.artifacts_stack, self.main_stack = deploy_script.stack_names(ENV)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def outputs(self) -> dict[str, str]:
        return deploy_script.stack_outputs(self.client("cloudformation"), self.main_stack)

    def resources(self, stack: str) -> dict[str, dict[str, Any]]:
        listed = self.client("cloudformation").describe_stack_resources(StackName=stack)
        return {r["LogicalResourceId"]: r for r in listed["StackResources"]}

    def physical(self, stack: str, logical_id: str) -> str:
        return str(self.resources(stack)[logical_id]["PhysicalResourceId"])

    def artifact_bucket(self) -> str:
        return self.physical(self.artifacts_stack, "ArtifactBucket")

    def uploaded_sha256(self, s3_uri: str) -> str:
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def stacks(packaged: dict[str, Any], moto_server_url: str) -> Iterator[Stacks]:
    """``python -m deploy.deploy`` run twice against moto: the second run changes nothing."""
    manifest_path = packaged["out"] / "manifest.json"
    argv = ["--env", ENV, "--region", REGION, "--manifest", str(manifest_path)]
    argv += ["--alert-email", ALERT_EMAIL]
    deployed = Stacks(moto_server_url, json.loads(manifest_path.read_text())["artifacts"])
    with pytest.MonkeyPatch.context() as mp, cloudformation_providers(moto_server_url):
        # boto3 sends every client of the deploy script to this endpoint (botocore >= 1.31).
        mp.setenv("AWS_ENDPOINT_URL", moto_server_url)
        assert deploy_script.main(argv) == 0
        first = deployed.client("cloudformation").describe_stacks()["Stacks"]
        assert deploy_script.main(argv) == 0
        again = deployed.client("cloudformation").describe_stacks()["Stacks"]
        assert [s["StackStatus"] for s in again] == [s["StackStatus"] for s in first]
        yield deployed
        cfn = deployed.client("cloudformation")
        for name in (deployed.main_stack, deployed.artifacts_stack):  # if a test stopped early
            cfn.delete_stack(StackName=name)


def test_both_stacks_are_created_with_every_resource_of_their_templates(
    stacks: Stacks, main_template: dict[str, Any], artifacts_template: dict[str, Any]
) -> None:
    cfn = stacks.client("cloudformation")
    for name, template in (
        (stacks.artifacts_stack, artifacts_template),
        (stacks.main_stack, main_template),
    ):
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == (
            "CREATE_COMPLETE"
        )
        created = stacks.resources(name)
        # AlertEmailSubscription's condition holds: the deploy passed --alert-email.
        assert set(created) == set(template["Resources"]), set(template["Resources"]) ^ set(created)
        assert all(r["PhysicalResourceId"] for r in created.values())
    # Every type the test had to provide is one the main stack really uses.
    used = {r["Type"] for r in main_template["Resources"].values()}
    used |= {r["Type"] for r in artifacts_template["Resources"].values()}
    assert set(UNMODELLED) | set(INCOMPLETE) <= used


def test_every_bucket_exists_encrypted_with_its_tls_only_policy(stacks: Stacks) -> None:
    s3 = stacks.client("s3")
    buckets = [stacks.artifact_bucket()] + [
        stacks.physical(stacks.main_stack, b) for b in ("LakeBucket", "AthenaResultsBucket")
    ]
    assert buckets[1] == stacks.outputs()["LakeBucketName"]
    for bucket in buckets:
        assert bucket.endswith(f"-123456789012-{REGION}")
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        (statement,) = policy["Statement"]
        assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        arn = f"arn:aws:s3:::{bucket}"
        assert sorted(statement["Resource"]) == [arn, f"{arn}/*"]


def test_glue_job_runs_the_uploaded_script_and_logs_to_groups_that_expire(stacks: Stacks) -> None:
    glue, logs, iam = stacks.client("glue"), stacks.client("logs"), stacks.client("iam")
    job = glue.get_job(JobName=stacks.outputs()["TrustedJobName"])["Job"]
    bucket = stacks.artifact_bucket()
    script = job["Command"]["ScriptLocation"]
    assert script == f"s3://{bucket}/{stacks.manifest['glue_script']['key']}"
    assert stacks.uploaded_sha256(script) == stacks.manifest["glue_script"]["sha256"]
    args = job["DefaultArguments"]
    code_sha = stacks.uploaded_sha256(args["--extra-py-files"])
    assert code_sha == stacks.manifest["glue_code"]["sha256"]
    assert args["--LAKE_URI"] == stacks.outputs()["LakeUri"]
    assert job["GlueVersion"] == "5.0" and job["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    role_name = job["Role"].rsplit("/", 1)[-1]
    assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == job["Role"]

    prefix = args["--custom-logGroup-prefix"]
    groups = {
        g["logGroupName"]: g
        for g in logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
    }
    assert set(groups) == {f"{prefix}/error", f"{prefix}/output"}
    assert all(g.get("retentionInDays", 0) > 0 for g in groups.values())


def test_lambda_code_is_the_uploaded_zip_and_its_secret_exists_empty(stacks: Stacks) -> None:
    lam, secrets = stacks.client("lambda"), stacks.client("secretsmanager")
    function = lam.get_function(FunctionName=stacks.outputs()["TmdbFunctionName"])
    config = function["Configuration"]
    zip_sha = bytes.fromhex(stacks.manifest["lambda"]["sha256"])
    assert config["CodeSha256"] == base64.b64encode(zip_sha).decode()  # computed from the S3 object
    assert config["Handler"] == "ingestion.lambda_handler.lambda_handler"
    env = config["Environment"]["Variables"]
    assert env["LAKE_URI"] == stacks.outputs()["LakeUri"]
    secret_arn = env["TMDB_API_KEY_SECRET"]
    assert secret_arn == stacks.outputs()["TmdbApiKeySecretArn"]

    # The stack creates the secret without a value: the handler says so, and how to set it.
    with pytest.raises(SettingsError, match="has no value yet.*put-secret-value"):
        read_api_key(secret_arn, secrets)
    secrets.put_secret_value(SecretId=secret_arn, SecretString="a-key")
    assert read_api_key(secret_arn, secrets).reveal() == "a-key"


def test_state_machine_definition_references_resources_that_exist(stacks: Stacks) -> None:
    sfn = stacks.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=stacks.outputs()["StateMachineArn"])
    definition = json.loads(machine["definition"])
    assert "${" not in machine["definition"], "a DefinitionSubstitution was left unreplaced"
    states = definition["States"]

    function_arn = states["ExtractTmdb"]["Parameters"]["FunctionName"]
    name = stacks.client("lambda").get_function(FunctionName=function_arn)
    assert name["Configuration"]["FunctionArn"] == function_arn
    job_name = states["BuildTrusted"]["Parameters"]["JobName"]
    assert stacks.client("glue").get_job(JobName=job_name)["Job"]["Name"] == job_name
    project = states["BuildRefined"]["Parameters"]["ProjectName"]
    found = stacks.client("codebuild").batch_get_projects(names=[project])["projects"]
    assert [p["name"] for p in found] == [project]
    topic = states["NotifyFailure"]["Arguments"]["TopicArn"]
    assert stacks.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == (
        topic
    )
    role = machine["roleArn"].rsplit("/", 1)[-1]
    assert stacks.client("iam").get_role(RoleName=role)["Role"]["Arn"] == machine["roleArn"]

    # The schedule starts this machine; the alert topic has the e-mail subscription.
    schedule = stacks.client("scheduler").get_schedule(Name=f"movie-lake-{ENV}-daily")
    assert schedule["Target"]["Arn"] == machine["stateMachineArn"]
    subscribed = stacks.client("sns").list_subscriptions_by_topic(TopicArn=topic)
    assert [s["Endpoint"] for s in subscribed["Subscriptions"]] == [ALERT_EMAIL]


def test_dbt_builds_in_a_work_group_that_leaves_table_locations_to_it(stacks: Stacks) -> None:
    """dbt-athena omits external_location when the work group enforces an output location
    (dbt-labs/dbt-athena#160, #223): the deployed dbt work group must not enforce."""
    athena, codebuild = stacks.client("athena"), stacks.client("codebuild")
    outputs = stacks.outputs()
    (project,) = codebuild.batch_get_projects(names=[outputs["DbtProjectName"]])["projects"]
    env = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    assert env["ATHENA_WORK_GROUP"] == outputs["DbtWorkGroupName"]
    dbt_group = athena.get_work_group(WorkGroup=env["ATHENA_WORK_GROUP"])["WorkGroup"]
    assert dbt_group["Configuration"]["EnforceWorkGroupConfiguration"] is False
    assert env["ATHENA_S3_DATA_DIR"] == f"{outputs['LakeUri']}/refined/"
    analysts = athena.get_work_group(WorkGroup=outputs["AthenaWorkGroupName"])["WorkGroup"]
    assert analysts["Configuration"]["EnforceWorkGroupConfiguration"] is True


def test_alert_rule_matches_the_ends_no_catch_reported(stacks: Stacks) -> None:
    """moto's own EventBridge pattern matcher, on the rule as deployed."""
    from moto.events.models import EventPattern

    events = stacks.client("events")
    rule_name = stacks.physical(stacks.main_stack, "PipelineStoppedRule")
    rule = events.describe_rule(Name=rule_name)
    pattern = EventPattern.load(rule["EventPattern"])
    machine = stacks.outputs()["StateMachineArn"]

    def ended(status: str, error: str | None = None, arn: str = machine) -> bool:
        detail = {"stateMachineArn": arn, "status": status, "executionArn": f"{arn}:run"}
        if error is not None:
            detail["error"] = error
        event = {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": detail,
        }
        return bool(pattern.matches_event(event))

    assert ended("TIMED_OUT", "States.Timeout") and ended("ABORTED")
    assert ended("FAILED", "States.Runtime")  # e.g. a ResultSelector key the Lambda lacks
    assert not ended("FAILED", "PipelineFailed")  # NotifyFailure has already sent the alert
    assert not ended("SUCCEEDED") and not ended("RUNNING")
    assert not ended("FAILED", "States.Runtime", arn=machine + "-other")

    (target,) = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    assert target["Arn"] == stacks.outputs()["AlertTopicArn"]
    paths = target["InputTransformer"]["InputPathsMap"]
    assert "cause" not in json.dumps(paths)  # the cause can be large: the history keeps it


def test_zz_deleting_both_stacks_removes_all_but_the_retained_buckets(stacks: Stacks) -> None:
    """Runs last (the module's tests run in file order). Nothing of the stacks is left but the
    three buckets, which are retained: the lake and the artifacts hold what matters, and the
    Athena results bucket is never empty (moto would delete it were it not retained: it is)."""
    cfn = stacks.client("cloudformation")
    outputs = stacks.outputs()
    buckets = [stacks.artifact_bucket()] + [
        stacks.physical(stacks.main_stack, b) for b in ("LakeBucket", "AthenaResultsBucket")
    ]
    assert stacks.client("s3").list_objects_v2(Bucket=buckets[2])["KeyCount"] == 0

    for name in (stacks.main_stack, stacks.artifacts_stack):
        cfn.delete_stack(StackName=name)
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    statuses = {
        s["StackName"]: s["StackStatus"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] in (stacks.main_stack, stacks.artifacts_stack)
    }
    assert statuses == dict.fromkeys((stacks.main_stack, stacks.artifacts_stack), "DELETE_COMPLETE")

    glue, athena = stacks.client("glue"), stacks.client("athena")
    assert outputs["TrustedJobName"] not in glue.list_jobs()["JobNames"]
    assert glue.get_databases()["DatabaseList"] == []
    groups = {g["Name"] for g in athena.list_work_groups()["WorkGroups"]}
    assert not groups & {outputs["AthenaWorkGroupName"], outputs["DbtWorkGroupName"]}
    assert stacks.client("codebuild").list_projects()["projects"] == []
    assert stacks.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert stacks.client("lambda").list_functions()["Functions"] == []
    assert stacks.client("secretsmanager").list_secrets()["SecretList"] == []
    assert stacks.client("scheduler").list_schedules()["Schedules"] == []
    assert stacks.client("logs").describe_log_groups()["logGroups"] == []
    existing = {b["Name"] for b in stacks.client("s3").list_buckets()["Buckets"]}
    assert set(buckets) <= existing


def test_only_the_types_moto_lacks_are_provided() -> None:
    """If moto gains a model for a provided type, its provider should go."""
    from moto.cloudformation.parsing import get_model_list

    modelled = {model.cloudformation_type() for model in get_model_list()}
    assert not set(UNMODELLED) & modelled
    assert set(INCOMPLETE) <= modelled
