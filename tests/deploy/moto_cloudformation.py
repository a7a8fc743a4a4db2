"""Let moto's CloudFormation create every resource type of the movie-lake stacks.

moto 5.2's CloudFormation creates the resource types it has a model for (S3 buckets, IAM roles
and managed policies, Lambda functions, SQS queues, SNS topics, log groups, EventBridge rules)
and skips the others with a warning; a ``!GetAtt`` of a skipped resource then fails the stack.
Each type below is one moto leaves out (``UNMODELLED``) or models without the properties the
stacks rely on (``INCOMPLETE``). For each, a provider does what CloudFormation does: it calls
the service's own API, through boto3, on the same moto server, with the properties
CloudFormation resolved (property names matched to the API's members, strings converted to
the API's numbers and booleans, as CloudFormation does). The resources therefore exist in moto's
Glue, Athena, CodeBuild, ... where a test reads them back through the same APIs, and the
stack's deletion deletes them through the API again.

The providers are installed only inside ``cloudformation_providers()``; templates stay as
they are: nothing is dropped or rewritten for the test.

One more gap, of moto's S3 rather than its CloudFormation: moto enforces a bucket policy on
object requests but evaluates no condition but StringEquals; any other it takes as met. The
stacks' TLS-only statements (Deny s3:* when ``aws:SecureTransport`` is false) would therefore
deny every object request, where AWS denies only requests not made over TLS (boto3 always uses
TLS on AWS). Inside the block, moto's check leaves out statements whose only condition is
that one, and keeps the rest of each policy; tests read the policies back as written.

And one of moto's CloudFormation outside resource types: a stack created by a change set (as
the deploy script creates them) gets its Outputs from the empty template it had before the
change set ran, so it reports none. Inside the block, executing a change set also rebuilds the
stack's outputs from the template it applied, as CloudFormation does.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import Shape

# Types moto 5.2.5's CloudFormation has no model for (it warns "Tried to parse ... but it's
# not supported" and creates nothing).
UNMODELLED = (
    "AWS::Athena::WorkGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::CodeBuild::Project",
    "AWS::Glue::Database",
    "AWS::Glue::Job",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::Scheduler::Schedule",
    "AWS::SecretsManager::Secret",
)
# Types moto models but not as the template declares them: its state machine reads only
# DefinitionString, so Definition and DefinitionSubstitutions are dropped and the machine gets
# an empty definition.
INCOMPLETE = ("AWS::StepFunctions::StateMachine",)

NOT_FOUND = re.compile(r"NotFound|NoSuch|does not exist", re.IGNORECASE)


class ProviderError(RuntimeError):
    """A property a provider cannot hand to the service's API."""


def to_api(value: Any, shape: Shape, where: str) -> Any:
    """A resolved CloudFormation value as the API's shape wants it: member names matched
    without regard to case (CloudFormation's BuildSpec is CodeBuild's buildspec), strings
    turned into the numbers and booleans the API declares. An unknown member is an error."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise ProviderError(f"{where}: expected an object, got {value!r}")
        members = {name.lower(): name for name in shape.members}
        out = {}
        for key, item in value.items():
            name = members.get(key.lower())
            if name is None:
                raise ProviderError(f"{where}.{key}: {shape.name} has no such member")
            out[name] = to_api(item, shape.members[name], f"{where}.{key}")
        return out
    if kind == "list":
        return [to_api(item, shape.member, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        return {str(k): to_api(v, shape.value, f"{where}.{k}") for k, v in value.items()}
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("double", "float"):
        return float(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value)
    return value


def call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    shape = client.meta.service_model.operation_model(operation).input_shape
    response: dict[str, Any] = getattr(client, xform_name(operation))(
        **to_api(params, shape, operation)
    )
    return response


def _tolerate_missing(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except ClientError as exc:
        if not NOT_FOUND.search(str(exc)):
            raise


@dataclass
class Provider:
    """One resource type: how CloudFormation creates and deletes it through the API."""

    resource_type: str
    service: str
    name_property: str | None
    # (client, resolved properties) -> (Ref value, {GetAtt attribute: value})
    create: Callable[[Any, dict[str, Any]], tuple[str, dict[str, str]]]
    # (client, Ref value, resolved properties)
    delete: Callable[[Any, str, dict[str, Any]], None]
    attributes: tuple[str, ...] = field(default=())


def _without(props: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in names}


def _bucket_policy(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    call(c, "PutBucketPolicy", {"Bucket": p["Bucket"], "Policy": json.dumps(p["PolicyDocument"])})
    return p["Bucket"], {}


def _topic_policy(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    for topic in p["Topics"]:
        call(
            c,
            "SetTopicAttributes",
            {
                "TopicArn": topic,
                "AttributeName": "Policy",
                "AttributeValue": json.dumps(p["PolicyDocument"]),
            },
        )
    return ",".join(p["Topics"]), {}


def _subscription(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    arn = call(c, "Subscribe", {**p, "ReturnSubscriptionArn": True})["SubscriptionArn"]
    return arn, {}


def _secret(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    arn = call(c, "CreateSecret", p)["ARN"]
    return arn, {"Id": arn}


def _alarm(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    call(c, "PutMetricAlarm", p)
    arn = c.describe_alarms(AlarmNames=[p["AlarmName"]])["MetricAlarms"][0]["AlarmArn"]
    return p["AlarmName"], {"Arn": arn}


def _event_invoke_config(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    call(c, "PutFunctionEventInvokeConfig", p)
    return f"{p['FunctionName']}:{p.get('Qualifier', '$LATEST')}", {}


def _glue_job(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return call(c, "CreateJob", p)["Name"], {}


def _glue_database(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    call(c, "CreateDatabase", _without(p, "DatabaseName"))
    return p["DatabaseInput"]["Name"], {}


def _work_group(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    params = _without(p, "State", "RecursiveDeleteOption", "WorkGroupConfiguration")
    if "WorkGroupConfiguration" in p:
        params["Configuration"] = p["WorkGroupConfiguration"]
    call(c, "CreateWorkGroup", params)
    if p.get("State") == "DISABLED":
        c.update_work_group(WorkGroup=p["Name"], State="DISABLED")
    return p["Name"], {}


def _codebuild_project(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    project = call(c, "CreateProject", p)["project"]
    return project["name"], {"Arn": project["arn"]}


def _schedule(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return p["Name"], {"Arn": call(c, "CreateSchedule", p)["ScheduleArn"]}


def _state_machine(c: Any, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """CloudFormation serializes Definition and replaces each ${key} of DefinitionSubstitutions."""
    definition = p.get("DefinitionString") or json.dumps(p["Definition"])
    for key, value in p.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    params = _without(p, "Definition", "DefinitionString", "DefinitionSubstitutions")
    params["Definition"] = definition
    params["Name"] = params.pop("StateMachineName")
    arn = call(c, "CreateStateMachine", params)["stateMachineArn"]
    return arn, {"Arn": arn, "Name": p["StateMachineName"]}


PROVIDERS = [
    Provider(
        "AWS::S3::BucketPolicy",
        "s3",
        None,
        _bucket_policy,
        lambda c, ref, p: _tolerate_missing(lambda: c.delete_bucket_policy(Bucket=ref)),
    ),
    Provider(
        "AWS::SNS::TopicPolicy",
        "sns",
        None,
        _topic_policy,
        lambda c, ref, p: None,  # the topic's own deletion removes its policy
    ),
    Provider(
        "AWS::SNS::Subscription",
        "sns",
        None,
        _subscription,
        lambda c, ref, p: _tolerate_missing(lambda: c.unsubscribe(SubscriptionArn=ref)),
    ),
    Provider(
        "AWS::SecretsManager::Secret",
        "secretsmanager",
        "Name",
        _secret,
        lambda c, ref, p: _tolerate_missing(
            lambda: c.delete_secret(SecretId=ref, ForceDeleteWithoutRecovery=True)
        ),
        ("Id",),
    ),
    Provider(
        "AWS::CloudWatch::Alarm",
        "cloudwatch",
        "AlarmName",
        _alarm,
        lambda c, ref, p: c.delete_alarms(AlarmNames=[ref]),
        ("Arn",),
    ),
    Provider(
        "AWS::Lambda::EventInvokeConfig",
        "lambda",
        None,
        _event_invoke_config,
        lambda c, ref, p: _tolerate_missing(
            lambda: c.delete_function_event_invoke_config(
                FunctionName=p["FunctionName"], Qualifier=p.get("Qualifier", "$LATEST")
            )
        ),
    ),
    Provider(
        "AWS::Glue::Job",
        "glue",
        "Name",
        _glue_job,
        lambda c, ref, p: _tolerate_missing(lambda: c.delete_job(JobName=ref)),
    ),
    Provider(
        "AWS::Glue::Database",
        "glue",
        None,
        _glue_database,
        lambda c, ref, p: _tolerate_missing(lambda: c.delete_database(Name=ref)),
    ),
    Provider(
        "AWS::Athena::WorkGroup",
        "athena",
        "Name",
        _work_group,
        lambda c, ref, p: _tolerate_missing(
            lambda: c.delete_work_group(
                WorkGroup=ref,
                RecursiveDeleteOption=str(p.get("RecursiveDeleteOption", "false")).lower()
                == "true",
            )
        ),
    ),
    Provider(
        "AWS::CodeBuild::Project",
        "codebuild",
        "Name",
        _codebuild_project,
        lambda c, ref, p: _tolerate_missing(lambda: c.delete_project(name=ref)),
        ("Arn",),
    ),
    Provider(
        "AWS::Scheduler::Schedule",
        "scheduler",
        "Name",
        _schedule,
        lambda c, ref, p: _tolerate_missing(lambda: c.delete_schedule(Name=ref)),
        ("Arn",),
    ),
    Provider(
        "AWS::StepFunctions::StateMachine",
        "stepfunctions",
        "StateMachineName",
        _state_machine,
        lambda c, ref, p: _tolerate_missing(lambda: c.delete_state_machine(stateMachineArn=ref)),
        ("Arn", "Name"),
    ),
]
assert {p.resource_type for p in PROVIDERS} == set(UNMODELLED) | set(INCOMPLETE)


class _Resource:
    """What moto's stack keeps of one provided resource."""

    def __init__(
        self, provider: Provider, client: Any, ref: str, attributes: dict[str, str], props: Any
    ) -> None:
        self.provider, self.client, self.props = provider, client, props
        self.physical_resource_id = ref
        self.attributes = attributes

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[name]

    def delete(self, account_id: str, region_name: str) -> None:
        self.provider.delete(self.client, self.physical_resource_id, self.props)


def _model(provider: Provider, endpoint_url: str) -> type:
    class Model:
        @staticmethod
        def cloudformation_type() -> str:
            return provider.resource_type

        @staticmethod
        def cloudformation_name_type() -> str | None:
            return provider.name_property

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in provider.attributes

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> _Resource:
            props = dict(cloudformation_json.get("Properties", {}))
            if provider.name_property and provider.name_property not in props:
                props[provider.name_property] = resource_name
            client = boto3.client(
                provider.service, region_name=region_name, endpoint_url=endpoint_url
            )
            ref, attributes = provider.create(client, props)
            return _Resource(provider, client, ref, attributes, props)

        @classmethod
        def update_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> Any:
            raise ProviderError(f"updating a {provider.resource_type} is not provided")

        @classmethod
        def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
            raise ProviderError("provided resources are deleted through their own delete()")

    Model.__name__ = "Provided" + provider.resource_type.replace("::", "")
    return Model


TLS_ONLY_CONDITION = {"Bool": {"aws:SecureTransport": "false"}}


def _permission_for_tls_requests(bucket: Any, action: str, resource: str) -> Any:
    """moto's FakeBucket.get_permission, for a request made over TLS: a statement whose only
    condition is "not over TLS" does not apply to it (see the module docstring)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy)
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    kept = [s for s in statements if s.get("Condition") != TLS_ONLY_CONDITION]
    if not kept:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(
        action, resource
    )


@contextlib.contextmanager
def cloudformation_providers(endpoint_url: str) -> Iterator[list[str]]:
    """Within the block, moto's CloudFormation (in this process, so also a ThreadedMotoServer)
    creates the types of PROVIDERS through their APIs on ``endpoint_url``, and moto's S3 reads
    bucket policies as AWS does for TLS requests; yields the provided types."""
    from moto.cloudformation import parsing
    from moto.cloudformation.models import ChangeSet
    from moto.s3.models import FakeBucket

    models = {p.resource_type: _model(p, endpoint_url) for p in PROVIDERS}
    names = {p.resource_type: p.name_property for p in PROVIDERS if p.name_property}
    original_models, original_names = parsing.get_model_map, parsing.get_name_type_map
    original_permission = FakeBucket.get_permission
    original_apply = ChangeSet.apply

    def apply_with_outputs(change_set: Any) -> None:
        original_apply(change_set)
        change_set.stack.template_dict = change_set.template_dict
        change_set.stack.output_map = change_set.stack._create_output_map()

    parsing.get_model_map = lambda: {**original_models(), **models}  # type: ignore[assignment]
    parsing.get_name_type_map = lambda: {**original_names(), **names}  # type: ignore[assignment]
    FakeBucket.get_permission = _permission_for_tls_requests  # type: ignore[method-assign]
    ChangeSet.apply = apply_with_outputs  # type: ignore[method-assign]
    try:
        yield sorted(models)
    finally:
        parsing.get_model_map = original_models  # type: ignore[assignment]
        parsing.get_name_type_map = original_names  # type: ignore[assignment]
        FakeBucket.get_permission = original_permission  # type: ignore[method-assign]
        ChangeSet.apply = original_apply  # type: ignore[method-assign]
