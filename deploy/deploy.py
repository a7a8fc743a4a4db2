r"""Deploy movie-lake to AWS with boto3 (no AWS CLI needed). Needs credentials; see
docs/deploy-aws.md. Run ``python -m deploy.package`` (``make package``) first.

1. the artifacts stack (``cloudformation/movie-lake-artifacts.yaml``): a private bucket;
2. the artifacts of ``build/aws/manifest.json``, each to its content-addressed key (keys
   already in the bucket are not uploaded again);
3. the main stack (``cloudformation/movie-lake.yaml``) with the keys as parameters.

Each stack goes through a change set, so a deploy with nothing new changes nothing.

    python -m deploy.deploy --env dev [--region eu-west-1] [--alert-email ops@example.org]
                            [--parameter GlueNumberOfWorkers=4 ...]

The same three steps with the AWS CLI, for --env dev (aws cloudformation deploy also goes
through a change set):

    aws cloudformation deploy --stack-name movie-lake-dev-artifacts \
      --template-file cloudformation/movie-lake-artifacts.yaml \
      --parameter-overrides EnvironmentName=dev --tags project=movie-lake
    BUCKET=$(aws cloudformation describe-stack-resource --stack-name movie-lake-dev-artifacts \
      --logical-resource-id ArtifactBucket \
      --query StackResourceDetail.PhysicalResourceId --output text)
    key() { jq -r ".artifacts.$1.key" build/aws/manifest.json; }
    aws s3 cp build/aws/tmdb-extract.zip "s3://$BUCKET/$(key lambda)"
    aws s3 cp build/aws/glue_entry.py "s3://$BUCKET/$(key glue_script)"
    aws s3 cp build/aws/spark.zip "s3://$BUCKET/$(key glue_code)"
    aws s3 cp build/aws/dbt-project.zip "s3://$BUCKET/$(key dbt)"
    aws cloudformation deploy --stack-name movie-lake-dev \
      --template-file cloudformation/movie-lake.yaml \
      --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --tags project=movie-lake \
      --parameter-overrides EnvironmentName=dev ArtifactBucketName="$BUCKET" \
        LambdaCodeKey="$(key lambda)" GlueScriptKey="$(key glue_script)" \
        GlueCodeKey="$(key glue_code)" DbtSourceKey="$(key dbt)"

(--alert-email and --parameter become more Key=Value pairs of --parameter-overrides, e.g.
AlertEmail=ops@example.org GlueNumberOfWorkers=4.) One difference: aws cloudformation deploy
keeps the previous value of a parameter left out, where this script sends every parameter each
time (one left out returns to its default).
The main template is inlined while it stays under 51,200 bytes; past that this script uploads
it to the artifacts bucket, as --s3-bucket "$BUCKET" would make the AWS CLI do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("deploy.deploy")

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "cloudformation"
ARTIFACTS_TEMPLATE = TEMPLATES / "movie-lake-artifacts.yaml"
MAIN_TEMPLATE = TEMPLATES / "movie-lake.yaml"
DEFAULT_MANIFEST = REPO / "build" / "aws" / "manifest.json"
TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline; larger goes through S3
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
# manifest artifact -> parameter of the main template
KEY_PARAMETERS = {
    "lambda": "LambdaCodeKey",
    "glue_script": "GlueScriptKey",
    "glue_code": "GlueCodeKey",
    "dbt": "DbtSourceKey",
}
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class DeployError(RuntimeError):
    """The deployment cannot go on; the message says what failed and what to do."""


def stack_names(env: str) -> tuple[str, str]:
    return f"movie-lake-{env}-artifacts", f"movie-lake-{env}"


def load_manifest(path: Path) -> dict[str, dict[str, str]]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployError(f"{path} does not exist: run `make package` first") from None
    artifacts = manifest.get("artifacts", {})
    missing = sorted(set(KEY_PARAMETERS) - set(artifacts))
    if missing:
        raise DeployError(f"{path} lacks {', '.join(missing)}: run `make package` again")
    for name, artifact in artifacts.items():
        if not Path(artifact["path"]).is_file():
            raise DeployError(f"{artifact['path']} ({name}) is missing: run `make package` again")
    return artifacts


def _stack_status(cfn: Any, name: str) -> str | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def deploy_stack(
    cfn: Any,
    name: str,
    parameters: dict[str, str],
    *,
    template_body: str | None = None,
    template_url: str | None = None,
) -> str:
    """Create or update ``name`` through a change set; return created, updated or unchanged."""
    status = _stack_status(cfn, name)
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {name} failed its first creation (ROLLBACK_COMPLETE): read its events in the "
            f"CloudFormation console, delete it (aws cloudformation delete-stack --stack-name "
            f"{name}) and deploy again"
        )
    change_type = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
    change_set = "deploy-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    request: dict[str, Any] = {
        "StackName": name,
        "ChangeSetName": change_set,
        "ChangeSetType": change_type,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": "project", "Value": "movie-lake"}],
    }
    if template_url:
        request["TemplateURL"] = template_url
    else:
        request["TemplateBody"] = template_body
    cfn.create_change_set(**request)
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            StackName=name, ChangeSetName=change_set, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
        )
    except Exception as exc:  # botocore WaiterError: the change set failed; say why
        described = cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
        reason = str(described.get("StatusReason", ""))
        if any(text in reason for text in NO_CHANGES):
            cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
            log.info("stack %s is up to date", name)
            return "unchanged"
        raise DeployError(f"change set {change_set} of stack {name} failed: {reason}") from exc
    log.info("%s stack %s", "creating" if change_type == "CREATE" else "updating", name)
    cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
    waiter = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 10, "MaxAttempts": 360})
    except Exception as exc:
        raise DeployError(
            f"stack {name} did not reach {waiter.removeprefix('stack_').upper()}: read its "
            "events in the CloudFormation console (the first failed resource says why)"
        ) from exc
    return "created" if change_type == "CREATE" else "updated"


def stack_outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def upload_artifacts(s3: Any, bucket: str, artifacts: dict[str, dict[str, str]]) -> list[str]:
    """Upload each artifact to its key unless that key exists; return the keys uploaded."""
    uploaded: list[str] = []
    for name, artifact in sorted(artifacts.items()):
        key = artifact["key"]
        try:
            s3.head_object(Bucket=bucket, Key=key)
            log.info("s3://%s/%s is already there (%s)", bucket, key, name)
            continue
        except s3.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey"):
                raise DeployError(f"cannot check s3://{bucket}/{key}: {exc}") from exc
        log.info("uploading %s to s3://%s/%s", artifact["path"], bucket, key)
        s3.upload_file(artifact["path"], bucket, key)
        uploaded.append(key)
    return uploaded


def main_parameters(
    env: str, bucket: str, artifacts: dict[str, dict[str, str]], overrides: dict[str, str]
) -> dict[str, str]:
    parameters = {"EnvironmentName": env, "ArtifactBucketName": bucket}
    parameters.update({param: artifacts[name]["key"] for name, param in KEY_PARAMETERS.items()})
    parameters.update(overrides)
    return parameters


def deploy(
    session: Any,
    env: str,
    manifest_path: Path = DEFAULT_MANIFEST,
    overrides: dict[str, str] | None = None,
    endpoint_url: str | None = None,
) -> dict[str, str]:
    """The three steps of the module docstring; return the main stack's outputs."""
    artifacts = load_manifest(manifest_path)
    cfn = session.client("cloudformation", endpoint_url=endpoint_url)
    s3 = session.client("s3", endpoint_url=endpoint_url)
    artifacts_stack, main_stack = stack_names(env)

    deploy_stack(
        cfn,
        artifacts_stack,
        {"EnvironmentName": env},
        template_body=ARTIFACTS_TEMPLATE.read_text(encoding="utf-8"),
    )
    bucket = cfn.describe_stack_resource(
        StackName=artifacts_stack, LogicalResourceId="ArtifactBucket"
    )["StackResourceDetail"]["PhysicalResourceId"]
    upload_artifacts(s3, bucket, artifacts)

    body = MAIN_TEMPLATE.read_bytes()
    url = None
    if len(body) > TEMPLATE_BODY_LIMIT:
        key = f"templates/movie-lake-{hashlib.sha256(body).hexdigest()[:16]}.yaml"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        url = f"https://{bucket}.s3.{session.region_name}.amazonaws.com/{key}"
    deploy_stack(
        cfn,
        main_stack,
        main_parameters(env, bucket, artifacts, overrides or {}),
        template_body=None if url else body.decode("utf-8"),
        template_url=url,
    )
    return stack_outputs(cfn, main_stack)


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not Key=Value")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the commands as written
    )
    parser.add_argument("--env", default="dev", help="EnvironmentName (default dev)")
    parser.add_argument("--region", default=None, help="AWS region (default: AWS_REGION)")
    parser.add_argument("--profile", default=None, help="a named AWS profile")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--alert-email", default=None, help="subscribe this e-mail to alerts")
    parser.add_argument(
        "--parameter", type=_parameter, action="append", default=[], metavar="KEY=VALUE"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    if not session.region_name:
        log.error("no AWS region: pass --region or set AWS_REGION")
        return 1
    overrides = dict(args.parameter)
    if args.alert_email:
        overrides["AlertEmail"] = args.alert_email
    try:
        outputs = deploy(session, args.env, args.manifest, overrides)
    except DeployError as exc:
        log.error("%s", exc)
        return 1
    for key, value in sorted(outputs.items()):
        print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
