"""template.yaml: its structure, the choices the foundation fixes (runtime, architecture, layers, encryption),
and that SAM's and CloudFormation's linters accept it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.template.cfn import referenced_names, resources_of_type

SECTION_ORDER = [
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Metadata",
    "Parameters",
    "Conditions",
    "Globals",
    "Resources",
    "Outputs",
]

# Parameters declared by the foundation whose consumers arrive with later issues. CloudFormation's own check for
# unused parameters (cfn-lint W2001) is skipped on SAM templates, so this list is the check: remove a name when
# its consumer lands. The test fails when a listed parameter is already used, so the list cannot go stale.
# Parameters declared before the resource that uses them lands, each with the issue that brings it. Empty now.
AWAITING_CONSUMER: dict[str, str] = {}

LAYERS = {"PullthroughLayer": "layers/pullthrough", "ConfigLayer": "config"}


def names_referenced_from_the_body(template: dict[str, Any]) -> set[str]:
    """Names referred to from Conditions, Globals, Resources and Outputs (Metadata only describes)."""
    sections = ("Conditions", "Globals", "Resources", "Outputs")
    return {name for section in sections for name in referenced_names(template.get(section, {}))}


def test_sections_follow_the_workshop_order(template: dict[str, Any]) -> None:
    # Given the parsed template
    # When its top-level sections are listed in file order
    sections = list(template)

    # Then they are exactly the workshop's sections, in the workshop's order
    assert sections == SECTION_ORDER
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_globals_run_every_function_on_python313_arm64_with_the_two_layers(template: dict[str, Any]) -> None:
    # Given the Globals every function inherits
    function = template["Globals"]["Function"]

    # Then functions run python3.13 on Graviton with X-Ray tracing and both layers mounted
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    assert function["Layers"] == [{"Ref": "PullthroughLayer"}, {"Ref": "ConfigLayer"}]
    assert isinstance(function["Timeout"], int)
    assert isinstance(function["MemorySize"], int)

    # And Powertools and the library find their settings in the environment
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "pullthrough"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Pullthrough"
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Fn::If": ["IsProd", "INFO", "DEBUG"]}
    assert variables["PULLTHROUGH_CONFIG"] == "/opt/pullthrough.yaml"
    assert variables["STAGE"] == {"Ref": "Stage"}


@pytest.mark.parametrize(("logical_id", "content_uri"), LAYERS.items())
def test_layers_build_with_their_makefile_for_arm64(
    template: dict[str, Any], repo_root: Path, logical_id: str, content_uri: str
) -> None:
    # Given a layer of the template
    layer = template["Resources"][logical_id]

    # Then SAM builds it with the makefile method for arm64, so no local Python 3.13 or container is needed
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    properties = layer["Properties"]
    assert properties["ContentUri"] == content_uri
    assert properties["CompatibleRuntimes"] == ["python3.13"]
    assert properties["CompatibleArchitectures"] == ["arm64"]

    # And the Makefile beside its content has the target SAM derives from the logical id
    makefile = (repo_root / content_uri / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^build-{logical_id}:", makefile, re.MULTILINE), f"{content_uri}/Makefile: no build-{logical_id}"


def test_report_topic_is_encrypted_with_the_stacks_rotating_key(template: dict[str, Any]) -> None:
    # Given the report topic and the key of the template
    resources = template["Resources"]
    (topic_id,) = resources_of_type(template, "AWS::SNS::Topic")
    (key_id,) = resources_of_type(template, "AWS::KMS::Key")
    key = resources[key_id]["Properties"]

    # Then the topic is encrypted with that customer managed key, which rotates and has an alias
    assert resources[topic_id]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["EnableKeyRotation"] is True
    aliases = resources_of_type(template, "AWS::KMS::Alias").values()
    assert [alias["Properties"]["TargetKeyId"] for alias in aliases] == [{"Ref": key_id}]

    # And the key policy delegates to the account's IAM and lets only this account's CloudWatch alarms publish
    statements = {statement["Sid"]: statement for statement in key["KeyPolicy"]["Statement"]}
    assert statements["AccountAdministersThroughIam"]["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    }
    alarms = statements["CloudWatchAlarmsPublishReports"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert set(statements) == {"AccountAdministersThroughIam", "CloudWatchAlarmsPublishReports"}


def test_email_subscription_exists_only_when_an_address_is_given(template: dict[str, Any]) -> None:
    # Given the e-mail subscriptions of the template
    subscriptions = resources_of_type(template, "AWS::SNS::Subscription")

    # Then there is one, to the report topic, under a condition that is false for an empty address
    ((_, subscription),) = subscriptions.items()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}
    assert subscription["Properties"]["TopicArn"] == {"Ref": "ReportTopic"}
    condition = subscription["Condition"]
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]}
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("Stage", "dev"),
        ("NotificationEmail", ""),
        ("ReconcileSchedule", "rate(1 day)"),
        ("WarmMaxConcurrency", 2),
        ("LogRetentionDays", 30),
    ],
)
def test_parameters_have_the_documented_defaults(template: dict[str, Any], name: str, default: object) -> None:
    # Given a parameter of the template, Then its default is the documented one
    assert template["Parameters"][name]["Default"] == default


def test_stage_is_dev_or_prod_and_nothing_the_config_says_is_a_parameter(template: dict[str, Any]) -> None:
    # Given the template's parameters, Then their types and bounds refuse what AWS would refuse later
    parameters = template["Parameters"]
    assert parameters["Stage"]["AllowedValues"] == ["dev", "prod"]
    # And what config/pullthrough.yaml says (the rules' prefixes, the warm schedule) comes from ConfigFacts, never
    # typed twice as a parameter
    assert {"CachePrefixes", "WarmSchedule"} & set(parameters) == set()
    # SQS accepts a maximum concurrency from 2 to 1000; CloudFormation should refuse anything else before deploying.
    assert (parameters["WarmMaxConcurrency"]["MinValue"], parameters["WarmMaxConcurrency"]["MaxValue"]) == (2, 1000)


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("ReconcileSchedule", "rate(1 day)", True),
        ("ReconcileSchedule", "rate(12 hours)", True),
        ("ReconcileSchedule", "cron(0 3 * * ? *)", True),
        ("ReconcileSchedule", "rate(0 days)", False),
        ("ReconcileSchedule", "daily", False),
        ("NotificationEmail", "", True),
        ("NotificationEmail", "ops@example.com", True),
        ("NotificationEmail", "ops@example", False),
        ("NotificationEmail", "not an address", False),
    ],
)
def test_allowed_patterns_refuse_bad_values_before_deploy(
    template: dict[str, Any], name: str, value: str, accepted: bool
) -> None:
    # Given a parameter's AllowedPattern (CloudFormation matches it against the whole value)
    pattern = template["Parameters"][name]["AllowedPattern"]

    # When a value is checked, Then it is accepted or refused as a user would expect
    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_every_parameter_is_used_or_awaits_a_named_consumer(template: dict[str, Any]) -> None:
    # Given every name the template's conditions, globals, resources and outputs refer to
    used = names_referenced_from_the_body(template)
    parameters = set(template["Parameters"])

    # Then each parameter is used, unless it is listed as awaiting the issue that consumes it
    assert parameters - used - set(AWAITING_CONSUMER) == set(), "parameters nobody uses"
    assert set(AWAITING_CONSUMER) <= parameters, "AWAITING_CONSUMER lists a parameter the template no longer has"
    # And a listed parameter that found its consumer must leave the list
    assert set(AWAITING_CONSUMER) & used == set(), "now used: remove from AWAITING_CONSUMER"


def test_every_reference_names_something_the_template_defines(template: dict[str, Any]) -> None:
    # Given every name referred to from the template's body
    referenced = names_referenced_from_the_body(template)

    # Then each is a parameter, a resource or a pseudo parameter; or the role SAM generates for a function without a
    # Role of its own, <Function>Role, which SAM documents as referenceable (SAM Developer Guide, "Generated AWS
    # CloudFormation resources for AWS SAM": "AWS::Serverless::Function ... AWS::IAM::Role LogicalId: <function>Role")
    generated = {
        f"{logical_id}Role"
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function" and "Role" not in resource.get("Properties", {})
    }
    defined = set(template["Parameters"]) | set(template["Resources"]) | generated
    assert {name for name in referenced if not name.startswith("AWS::")} - defined == set()


def test_outputs_expose_the_topic_the_key_and_both_layers(template: dict[str, Any]) -> None:
    # Given the stack's outputs, Then subscribers and other stacks find the topic, its key and the layers there
    outputs = template["Outputs"]
    assert outputs["ReportTopicArn"]["Value"] == {"Ref": "ReportTopic"}
    assert outputs["ReportKeyArn"]["Value"] == {"Fn::GetAtt": ["ReportKey", "Arn"]}
    assert outputs["PullthroughLayerArn"]["Value"] == {"Ref": "PullthroughLayer"}
    assert outputs["ConfigLayerArn"]["Value"] == {"Ref": "ConfigLayer"}
    assert all(output.get("Description") for output in outputs.values())


def test_every_cfn_lint_ignore_carries_its_reason(template: dict[str, Any], template_path: Path) -> None:
    # Given the checks the template tells cfn-lint to ignore, and the template's lines
    ignored = template["Metadata"].get("cfn-lint", {}).get("config", {}).get("ignore_checks", [])
    lines = template_path.read_text(encoding="utf-8").splitlines()

    # Then each ignore entry follows a comment that explains it
    for check in ignored:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {check}")
        assert lines[index - 1].strip().startswith("#"), f"cfn-lint ignore {check} has no reason above it"


def test_sam_validate_lint_accepts_the_template(
    repo_root: Path, sam_env: dict[str, str], venv_tool: Callable[[str], Path]
) -> None:
    # When SAM validates and lints the template as `make template` does
    result = subprocess.run(
        [venv_tool("sam"), "validate", "--lint", "--template", "template.yaml", "--region", "us-east-1"],
        cwd=repo_root,
        env=sam_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it succeeds
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_accepts_the_template(repo_root: Path, venv_tool: Callable[[str], Path]) -> None:
    # When cfn-lint checks the template as `make template` does
    result = subprocess.run(
        [venv_tool("cfn-lint"), "template.yaml"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it reports nothing: no error, no warning
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
