"""template.yaml's credentials section: rotation wiring, least-privilege IAM, and event patterns that route the
sample events in events/check_credentials/ (and nothing outside ecr-pullthroughcache/)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.template.cfn import REPO_ROOT

ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
PREFIX_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/*"
FUNCTIONS = {"RotateCredentialsFunction": "rotate_credentials", "CheckCredentialsFunction": "check_credentials"}


def resolve(node: Any) -> Any:
    """Fn::Sub of the pseudo parameters, as CloudFormation would in this account and region."""
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return (
            node["Fn::Sub"]
            .replace("${AWS::Partition}", PARTITION)
            .replace("${AWS::Region}", REGION)
            .replace("${AWS::AccountId}", ACCOUNT)
        )
    if isinstance(node, dict):
        return {key: resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item) for item in node]
    return node


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge matching for what these patterns use: value lists, `prefix` filters and nested objects."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            key in event and matches(sub, event[key]) for key, sub in pattern.items()
        )
    assert isinstance(pattern, list)
    values = event if isinstance(event, list) else [event]
    for option in pattern:
        for value in values:
            if isinstance(option, dict) and "prefix" in option:
                if isinstance(value, str) and value.startswith(option["prefix"]):
                    return True
            elif option == value:
                return True
    return False


def statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    policies = template["Resources"][logical_id]["Properties"]["Policies"]
    return [resolve(s) for policy in policies for s in policy.get("Statement", [])]


def routes(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    events = template["Resources"]["CheckCredentialsFunction"]["Properties"]["Events"]
    return {name: resolve(event) for name, event in events.items()}


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO_ROOT / "events" / "check_credentials" / f"{name}.json").read_text())
    return data


def routed_by(template: dict[str, Any], event: dict[str, Any]) -> list[str]:
    return [
        name
        for name, route in routes(template).items()
        if route["Type"] == "EventBridgeRule" and matches(route["Properties"]["Pattern"], event)
    ]


def test_secrets_manager_may_invoke_the_rotation_function_for_the_prefix_only(template: dict[str, Any]) -> None:
    permission = resolve(template["Resources"]["RotateCredentialsPermission"]["Properties"])
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["FunctionName"] == {"Fn::GetAtt": ["RotateCredentialsFunction", "Arn"]}
    assert permission["SourceArn"] == PREFIX_ARN
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


@pytest.mark.parametrize("logical_id", list(FUNCTIONS))
def test_secrets_access_is_scoped_to_the_prefix(template: dict[str, Any], logical_id: str) -> None:
    # Given every statement naming a Secrets Manager action
    found = [
        s for s in statements(template, logical_id) if any(a.startswith("secretsmanager:") for a in _list(s["Action"]))
    ]
    # Then each is limited to ecr-pullthroughcache/* (the Docker Hub admin read to pullthrough/*), never "*"
    assert found
    for statement in found:
        resources = _list(statement["Resource"])
        if _list(statement["Action"]) == ["secretsmanager:GetSecretValue"] and statement["Sid"].startswith(
            "ReadDockerHub"
        ):
            assert resources == [PREFIX_ARN.replace("ecr-pullthroughcache/", "pullthrough/")]
        else:
            assert resources == [PREFIX_ARN]


def test_rotation_function_has_the_rotation_actions(template: dict[str, Any]) -> None:
    actions = {a for s in statements(template, "RotateCredentialsFunction") for a in _list(s["Action"])}
    # AWSSecretsManagerRotationPolicy's actions, and the rule re-validation of finishSecret
    assert {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "ecr:DescribePullThroughCacheRules",
        "ecr:ValidatePullThroughCacheRule",
        "sns:Publish",
    } <= actions
    assert not any(a.endswith("*") and a.startswith("secretsmanager") for a in actions)


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("put_secret_value", "SecretChanged"),
        ("update_secret", "SecretChanged"),
        ("rotation_succeeded", "RotationOutcome"),
        ("rotation_failed", "RotationOutcome"),
    ],
)
def test_each_sample_event_is_routed_to_check_credentials(template: dict[str, Any], name: str, route: str) -> None:
    assert routed_by(template, sample(name)) == [route]


def test_changes_to_other_secrets_are_not_routed(template: dict[str, Any]) -> None:
    put = sample("put_secret_value")
    put["detail"]["requestParameters"]["secretId"] = "team/database-password"
    failed = sample("rotation_failed")
    failed["detail"]["additionalEventData"]["SecretId"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf"
    assert routed_by(template, put) == []
    assert routed_by(template, failed) == []


def test_daily_schedule_sends_the_scheduled_event_shape(template: dict[str, Any]) -> None:
    daily = routes(template)["Daily"]
    assert daily["Type"] == "Schedule"
    assert re.fullmatch(r"(rate|cron)\(.+\)", daily["Properties"]["Schedule"])
    assert sample("scheduled")["detail-type"] == "Scheduled Event"


@pytest.mark.parametrize(("logical_id", "directory"), list(FUNCTIONS.items()))
def test_each_function_builds_with_its_makefile_and_has_a_log_group(
    template: dict[str, Any], logical_id: str, directory: str
) -> None:
    function = template["Resources"][logical_id]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert function["Properties"]["CodeUri"] == f"functions/{directory}"
    makefile = (Path(REPO_ROOT) / "functions" / directory / "Makefile").read_text()
    assert f"build-{logical_id}:" in makefile
    group = template["Resources"][logical_id.replace("Function", "LogGroup")]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"}


def test_rotation_samples_have_the_shape_secrets_manager_sends() -> None:
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        event = json.loads((REPO_ROOT / "events" / "rotate_credentials" / f"{step}.json").read_text())
        assert set(event) == {"Step", "SecretId", "ClientRequestToken", "RotationToken"}
        assert event["Step"] == step
        assert event["SecretId"].startswith(PREFIX_ARN[:-1])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
