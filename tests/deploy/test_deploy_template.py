"""The CloudFormation templates: cfn-lint clean, and the security and wiring properties the
deployment promises (private encrypted TLS-only buckets, least-privilege roles, a daily
Lambda -> Glue -> dbt run that alerts on failure), read from the templates themselves."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MAIN_TEMPLATE = REPO / "cloudformation" / "movie-lake.yaml"
ARTIFACTS_TEMPLATE = REPO / "cloudformation" / "movie-lake-artifacts.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

# Actions IAM cannot scope to a resource: "*" is the only resource they accept. Each use must
# also carry a Condition (PutMetricData: the cloudwatch:namespace).
UNSCOPABLE_ACTIONS = {"cloudwatch:PutMetricData"}
S3_WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"}
IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")


# ---------------------------------------------------------------- helpers


def render(value: Any) -> str:
    """A resource value as one string: !Sub text, !Ref X -> ${X}, !GetAtt X.Arn -> ${X.Arn}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
        if fn == "Ref":
            return "${" + arg + "}"
        if fn == "Fn::GetAtt":
            return "${" + (arg if isinstance(arg, str) else ".".join(arg)) + "}"
    raise AssertionError(f"cannot render {value!r}")


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: res.get("Properties", {})
        for name, res in template["Resources"].items()
        if res["Type"] == kind
    }


def statements(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Every policy statement of a role, managed policy or policy."""
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    if "PolicyDocument" in properties:
        documents.append(properties["PolicyDocument"])
    return [s for doc in documents for s in as_list(doc["Statement"])]


def allow_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in IAM_TYPES:
        for name, props in resources(template, kind).items():
            out[name] = [s for s in statements(props) if s["Effect"] == "Allow"]
    return out


def s3_grants(template: dict[str, Any], principal: str) -> dict[str, set[str]]:
    """For one role or policy: S3 action -> the resources it is allowed on."""
    grants: dict[str, set[str]] = {}
    for statement in allow_statements(template)[principal]:
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                grants.setdefault(action, set()).update(
                    render(r) for r in as_list(statement["Resource"])
                )
    return grants


def security_problems(template: dict[str, Any]) -> list[str]:
    """Everything that breaks the security rules; empty when the template keeps them all."""
    problems: list[str] = []
    buckets = resources(template, "AWS::S3::Bucket")
    policies = resources(template, "AWS::S3::BucketPolicy")
    for name, props in buckets.items():
        block = props.get("PublicAccessBlockConfiguration", {})
        for flag in (
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ):
            if block.get(flag) is not True:
                problems.append(f"{name}: {flag} is not true")
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        algorithms = {r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}
        if not algorithms or not algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}:
            problems.append(f"{name}: no default encryption")
        tls_only = False
        for policy in policies.values():
            if render(policy["Bucket"]) != "${" + name + "}":
                continue
            for st in as_list(policy["PolicyDocument"]["Statement"]):
                covered = {render(r) for r in as_list(st["Resource"])}
                tls_only |= (
                    st["Effect"] == "Deny"
                    and st.get("Principal") in ("*", {"AWS": "*"})
                    and "s3:*" in as_list(st["Action"])
                    and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
                    in ("false", False)
                    and {"${" + name + ".Arn}", "${" + name + ".Arn}/*"} <= covered
                )
        if not tls_only:
            problems.append(f"{name}: no bucket policy denying non-TLS requests")

    for principal, allows in allow_statements(template).items():
        for st in allows:
            actions = as_list(st["Action"])
            where = f"{principal}/{st.get('Sid', '?')}"
            for action in actions:
                if action == "*" or action.endswith(":*") or "*" in action:
                    problems.append(f"{where}: wildcard action {action!r}")
            for resource in as_list(st["Resource"]):
                text = render(resource)
                if text == "*" and not (set(actions) <= UNSCOPABLE_ACTIONS and "Condition" in st):
                    problems.append(f"{where}: resource '*' for {actions}")
                # Objects of a stack bucket are granted by prefix, never bucket-wide.
                if re.fullmatch(r"\$\{(LakeBucket|AthenaResultsBucket)\.Arn\}/\*", text):
                    problems.append(f"{where}: {text} is a whole bucket, not a prefix")
            if "s3:ListBucket" in actions and any(
                "LakeBucket" in render(r) for r in as_list(st["Resource"])
            ):
                prefixes = [
                    v
                    for op in st.get("Condition", {}).values()
                    for key, v in op.items()
                    if key == "s3:prefix"
                ]
                if not prefixes:
                    problems.append(f"{where}: s3:ListBucket on the lake without an s3:prefix")
    return problems


# ---------------------------------------------------------------- cfn-lint


def test_templates_pass_cfn_lint() -> None:
    """The cfn-lint command line, with the specs it ships (never updated from the network)."""
    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(MAIN_TEMPLATE), str(ARTIFACTS_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_rejects_a_broken_template(tmp_path: Path) -> None:
    """The lint test above can fail: an unknown runtime in the same template is reported."""
    from cfnlint.api import ManualArgs, lint

    broken = MAIN_TEMPLATE.read_text().replace("Runtime: python3.11", "Runtime: python2.0")
    assert "python2.0" in broken
    matches = lint(broken, config=ManualArgs(regions=["us-east-1"]))
    assert any("python2.0" in match.message for match in matches), matches


# ---------------------------------------------------------------- security


@pytest.mark.parametrize("which", ["main_template", "artifacts_template"])
def test_templates_keep_the_security_rules(which: str, request: pytest.FixtureRequest) -> None:
    template = request.getfixturevalue(which)
    assert resources(template, "AWS::S3::Bucket"), "no bucket checked"
    assert security_problems(template) == []


def test_security_check_catches_each_kind_of_violation(main_template: dict[str, Any]) -> None:
    broken = copy.deepcopy(main_template)
    res = broken["Resources"]
    res["LakeBucket"]["Properties"]["PublicAccessBlockConfiguration"]["IgnorePublicAcls"] = False
    del res["AthenaResultsBucket"]["Properties"]["BucketEncryption"]
    res["LakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Effect"] = "Allow"
    role = res["TmdbExtractRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    role.append({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    role.append(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "${LakeBucket.Arn}/*"},
        }
    )
    role.append(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": {"Fn::GetAtt": ["LakeBucket", "Arn"]},
        }
    )
    problems = "\n".join(security_problems(broken))
    for expected in (
        "LakeBucket: IgnorePublicAcls is not true",
        "AthenaResultsBucket: no default encryption",
        "LakeBucket: no bucket policy denying non-TLS",
        "wildcard action 's3:*'",
        "resource '*'",
        "is a whole bucket, not a prefix",
        "s3:ListBucket on the lake without an s3:prefix",
    ):
        assert expected in problems


def test_lake_is_versioned_and_athena_results_expire(main_template: dict[str, Any]) -> None:
    buckets = resources(main_template, "AWS::S3::Bucket")
    assert buckets["LakeBucket"]["VersioningConfiguration"]["Status"] == "Enabled"
    assert main_template["Resources"]["LakeBucket"]["DeletionPolicy"] == "Retain"
    rules = buckets["AthenaResultsBucket"]["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and "ExpirationInDays" in r for r in rules)


def test_each_role_writes_only_its_own_layer(main_template: dict[str, Any]) -> None:
    def writes(principal: str) -> set[str]:
        grants = s3_grants(main_template, principal)
        return {r for action in S3_WRITE_ACTIONS for r in grants.get(action, set())}

    def reads(principal: str) -> set[str]:
        return s3_grants(main_template, principal).get("s3:GetObject", set())

    lake = "${LakeBucket.Arn}"
    assert writes("TmdbExtractRole") == {f"{lake}/raw/tmdb/*"}
    assert reads("TmdbExtractRole") == {f"{lake}/raw/tmdb/*"}
    assert writes("TrustedJobRole") == {f"{lake}/trusted/*"}
    assert {f"{lake}/raw/*", f"{lake}/trusted/*"} <= reads("TrustedJobRole")
    assert writes("DbtRole") == {f"{lake}/refined/*", "${AthenaResultsBucket.Arn}/results/*"}
    assert f"{lake}/trusted/*" in reads("DbtRole")
    assert not any("/raw/" in r for r in reads("DbtRole"))
    assert writes("CsvLoaderPolicy") == {f"{lake}/raw/local/csv/*"}
    for principal in ("PipelineRole", "SchedulerRole"):
        assert s3_grants(main_template, principal) == {}


def test_secret_is_readable_by_the_lambda_alone(main_template: dict[str, Any]) -> None:
    readers = {
        principal
        for principal, allows in allow_statements(main_template).items()
        for st in allows
        if "secretsmanager:GetSecretValue" in as_list(st["Action"])
    }
    assert readers == {"TmdbExtractRole"}
    lam = resources(main_template, "AWS::Lambda::Function")["TmdbExtractFunction"]
    env = lam["Environment"]["Variables"]
    assert env["TMDB_API_KEY_SECRET"] == {"Ref": "TmdbApiKeySecret"}
    assert "TMDB_API_KEY" not in env


# ---------------------------------------------------------------- wiring


def test_lambda_runtime_limits_and_dead_letters(main_template: dict[str, Any]) -> None:
    lam = resources(main_template, "AWS::Lambda::Function")["TmdbExtractFunction"]
    major, minor = (int(x) for x in lam["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 11)
    assert lam["Handler"] == "ingestion.lambda_handler.lambda_handler"
    assert {"Timeout", "MemorySize", "DeadLetterConfig"} <= set(lam)
    assert render(lam["Code"]["S3Key"]) == "${LambdaCodeKey}"
    assert render(lam["Environment"]["Variables"]["LAKE_URI"]) == "s3://${LakeBucket}"


def test_glue_job_is_glue_5_with_code_from_the_artifact_bucket(
    main_template: dict[str, Any],
) -> None:
    job = resources(main_template, "AWS::Glue::Job")["TrustedJob"]
    assert job["GlueVersion"].startswith("5.")
    assert job["Command"]["Name"] == "glueetl"
    assert render(job["Command"]["ScriptLocation"]) == "s3://${ArtifactBucketName}/${GlueScriptKey}"
    args = job["DefaultArguments"]
    assert render(args["--extra-py-files"]) == "s3://${ArtifactBucketName}/${GlueCodeKey}"
    assert render(args["--LAKE_URI"]) == "s3://${LakeBucket}"


def test_daily_schedule_runs_extract_then_glue_then_dbt_and_alerts(
    main_template: dict[str, Any],
) -> None:
    schedule = resources(main_template, "AWS::Scheduler::Schedule")["DailySchedule"]
    assert schedule["Target"]["Arn"] == {"Ref": "PipelineStateMachine"}
    assert "DeadLetterConfig" in schedule["Target"]

    machine = resources(main_template, "AWS::StepFunctions::StateMachine")["PipelineStateMachine"]
    states = machine["Definition"]["States"]
    chain, name = [], machine["Definition"]["StartAt"]
    while name and states[name]["Type"] != "Succeed":
        state = states[name]
        if state["Type"] == "Task":
            chain.append(state["Resource"])
            assert state["Catch"][0]["Next"] == "NotifyFailure", name
        name = state.get("Next") or state.get("Default")
    assert chain == [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::glue:startJobRun.sync",
        "arn:aws:states:::codebuild:startBuild.sync",
    ]
    assert states["NotifyFailure"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states[states["NotifyFailure"]["Next"]]["Type"] == "Fail"
    subs = machine["DefinitionSubstitutions"]
    assert subs["AlertTopicArn"] == {"Ref": "AlertTopic"}


def test_athena_work_group_enforces_results_and_a_scan_cutoff(
    main_template: dict[str, Any],
) -> None:
    config = resources(main_template, "AWS::Athena::WorkGroup")["AthenaWorkGroup"][
        "WorkGroupConfiguration"
    ]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert render(config["ResultConfiguration"]["OutputLocation"]).startswith(
        "s3://${AthenaResultsBucket}/"
    )


def test_glue_databases_and_dbt_settings_match_the_dbt_project(
    main_template: dict[str, Any],
) -> None:
    """The databases the stack creates are the schemas dbt uses, and the CodeBuild project
    sets every environment variable the athena profile reads."""
    params = main_template["Parameters"]
    dbt_project = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    profile_text = (REPO / "profiles.example.yml").read_text()
    athena = yaml.safe_load(profile_text)["movie_lake"]["outputs"]["athena"]
    assert params["TrustedDatabaseName"]["Default"] == dbt_project["vars"]["trusted_schema"]
    schema_default = re.search(r"env_var\('ATHENA_SCHEMA', '(\w+)'\)", athena["schema"])
    assert schema_default and params["RefinedDatabaseName"]["Default"] == schema_default.group(1)

    databases = {
        render(p["DatabaseInput"]["Name"])
        for p in resources(main_template, "AWS::Glue::Database").values()
    }
    folder_schemas = {
        cfg["+schema"]
        for cfg in dbt_project["models"]["movie_lake"].values()
        if isinstance(cfg, dict) and "+schema" in cfg
    }
    expected = {"${TrustedDatabaseName}", "${RefinedDatabaseName}"} | {
        "${RefinedDatabaseName}_" + s for s in folder_schemas
    }
    assert databases == expected

    profile_vars = set(re.findall(r"env_var\('(\w+)'", yaml.safe_dump(athena)))
    project = resources(main_template, "AWS::CodeBuild::Project")["DbtProject"]
    codebuild_vars = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert profile_vars <= codebuild_vars, profile_vars - codebuild_vars


# ---------------------------------------------------------------- review fixes


def dbt_athena_omits_table_locations(work_group_configuration: dict[str, Any]) -> bool:
    """dbt-athena's own rule (AthenaAdapter.is_work_group_output_location_enforced), applied
    to a work group as the template configures it: when it holds, dbt-athena leaves
    external_location out of CREATE TABLE AS and Athena puts a hive table under the work
    group's results location (dbt-labs/dbt-athena#160, #223, #539)."""
    from types import SimpleNamespace

    from dbt.adapters.athena.impl import AthenaAdapter

    credentials = SimpleNamespace(work_group="the-work-group", skip_workgroup_check=False)
    connection = SimpleNamespace(credentials=credentials)
    adapter = SimpleNamespace(
        connections=SimpleNamespace(get_thread_connection=lambda: connection),
        _get_work_group=lambda name: {"WorkGroup": {"Configuration": work_group_configuration}},
    )
    return bool(AthenaAdapter.is_work_group_output_location_enforced(adapter))  # type: ignore[arg-type]


def test_refined_tables_land_under_the_lake_refined_prefix_not_in_the_results_bucket(
    main_template: dict[str, Any],
) -> None:
    project = resources(main_template, "AWS::CodeBuild::Project")["DbtProject"]
    env = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    groups = resources(main_template, "AWS::Athena::WorkGroup")
    dbt_group = groups[env["ATHENA_WORK_GROUP"]["Ref"]]["WorkGroupConfiguration"]
    assert not dbt_athena_omits_table_locations(dbt_group)
    assert render(env["ATHENA_S3_DATA_DIR"]) == "s3://${LakeBucket}/refined/"
    assert render(env["ATHENA_S3_STAGING_DIR"]).startswith("s3://${AthenaResultsBucket}/")
    # The rule is the one that bit: dbt in the analysts' (enforcing) work group would write
    # its tables into the results bucket, whose objects expire.
    analysts = groups["AthenaWorkGroup"]["WorkGroupConfiguration"]
    assert dbt_athena_omits_table_locations(analysts)
    assert render(analysts["ResultConfiguration"]["OutputLocation"]).startswith(
        "s3://${AthenaResultsBucket}/"
    )
    # dbt may run queries in its own work group only.
    athena_grants = [
        render(r)
        for st in allow_statements(main_template)["DbtRole"]
        if any(a.startswith("athena:StartQueryExecution") for a in as_list(st["Action"]))
        for r in as_list(st["Resource"])
    ]
    assert athena_grants and all(g.endswith("workgroup/${DbtWorkGroup}") for g in athena_grants)


@pytest.mark.parametrize("which", ["main_template", "artifacts_template"])
def test_no_bucket_can_make_its_stack_deletion_fail(
    which: str, request: pytest.FixtureRequest
) -> None:
    """CloudFormation cannot delete a bucket that holds objects: every bucket is retained."""
    template = request.getfixturevalue(which)
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::S3::Bucket":
            assert resource.get("DeletionPolicy") == "Retain", name
            assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_glue_job_logs_go_to_log_groups_of_the_stack_that_expire(
    main_template: dict[str, Any],
) -> None:
    job = resources(main_template, "AWS::Glue::Job")["TrustedJob"]
    prefix = render(job["DefaultArguments"]["--custom-logGroup-prefix"])
    log_groups = resources(main_template, "AWS::Logs::LogGroup").values()
    groups = {render(p["LogGroupName"]): p for p in log_groups}
    for suffix in ("/error", "/output"):  # where Glue 5 writes under a custom prefix
        assert prefix + suffix in groups
        assert int(groups[prefix + suffix]["RetentionInDays"]) > 0
    assert all(int(p.get("RetentionInDays", 0)) > 0 for p in groups.values())
    log_grants = {
        render(r)
        for st in allow_statements(main_template)["TrustedJobRole"]
        if any(a.startswith("logs:") for a in as_list(st["Action"]))
        for r in as_list(st["Resource"])
    }
    assert log_grants == {
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + prefix + "/*"
    }


JSONPATH_FIELDS = {"Parameters", "ResultSelector", "ResultPath", "InputPath", "OutputPath"}


def failure_message(main_template: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """NotifyFailure's SNS message for a caught error, its JSONata evaluated as Step Functions
    would (jsonata-python; Step Functions implements JSONata 2.0)."""
    import jsonata

    machine = resources(main_template, "AWS::StepFunctions::StateMachine")["PipelineStateMachine"]
    message = machine["Definition"]["States"]["NotifyFailure"]["Arguments"]["Message"]
    states = {
        "input": {"run_date": "2024-03-01", "tmdb": {"movies": 3}, "error": error},
        "context": {"Execution": {"Id": "arn:aws:states:eu-west-1:1:execution:daily:run-1"}},
    }
    out = {}
    for key, value in message.items():
        expression = re.fullmatch(r"\{%(.*)%\}", value, re.DOTALL)
        assert expression, f"{key}: {value!r} is not a JSONata expression"
        out[key] = jsonata.Jsonata(expression.group(1)).evaluate(None, {"states": states})
    return out


def test_failure_alert_carries_a_trimmed_cause_within_the_sns_limit(
    main_template: dict[str, Any],
) -> None:
    machine = resources(main_template, "AWS::StepFunctions::StateMachine")["PipelineStateMachine"]
    notify = machine["Definition"]["States"]["NotifyFailure"]
    assert notify["QueryLanguage"] == "JSONata" and not JSONPATH_FIELDS & set(notify)
    for name, state in machine["Definition"]["States"].items():
        if state.get("QueryLanguage") != "JSONata":
            assert "Arguments" not in state and "Output" not in state, name

    huge = "Traceback: " + "x" * 400_000  # a cause far beyond SNS's 256 KiB
    message = failure_message(main_template, {"Error": "Lambda.Unknown", "Cause": huge})
    assert len(json.dumps(message).encode()) < 8_000
    assert message["cause"] == huge[:2000] and message["cause_truncated"] is True
    assert message["error"] == "Lambda.Unknown" and message["run_date"] == "2024-03-01"
    assert message["execution"].endswith(":run-1")

    short = failure_message(main_template, {"Error": "States.TaskFailed", "Cause": "boom"})
    assert short["cause"] == "boom" and short["cause_truncated"] is False
    bare = failure_message(main_template, {"Error": "States.Timeout"})
    assert bare["cause"] == "" and bare["cause_truncated"] is False


def test_failures_no_catch_reports_alert_through_eventbridge(main_template: dict[str, Any]) -> None:
    rule = resources(main_template, "AWS::Events::Rule")["PipelineStoppedRule"]
    branches = rule["EventPattern"]["detail"]["$or"]
    statuses = {s for branch in branches for s in branch["status"]}
    assert statuses == {"FAILED", "TIMED_OUT", "ABORTED"}
    machine = resources(main_template, "AWS::StepFunctions::StateMachine")["PipelineStateMachine"]
    reported = machine["Definition"]["States"]["Failed"]["Error"]
    failed = next(b for b in branches if b["status"] == ["FAILED"])
    assert failed["error"] == [{"anything-but": [reported]}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlertTopic"} and "InputTransformer" in target
