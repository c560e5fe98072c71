"""template.yaml's rules section: reconcile_rules' build, log group, triggers and least-privilege role.

The EventBridge patterns are matched against the sample events in events/reconcile_rules/ with moto's own pattern
matcher, so the samples the tests invoke the handler with are exactly the events the rules let through.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests.template.cfn import CONFIG_FACTS, REPO_ROOT, config_facts

FUNCTION = "ReconcileRulesFunction"
SAMPLES = REPO_ROOT / "events" / "reconcile_rules"
ROUTES = {
    "deploy_create_complete": "Deployed",
    "deploy_update_complete": "Deployed",
    "scheduled": None,  # an EventBridge schedule sends it: no pattern to match
    "delete_rule": "Drift",
    "update_rule": "Drift",
    "delete_template": "Drift",
    "update_template": "Drift",
    "dry_run": None,  # a manual invocation
}
# What the function calls (tests/integration/test_reconcile_rules.py checks each call against this role), and what
# AWS checks on its behalf: a template needs the right to create the repositories it describes (tagged, with their
# lifecycle policy), ECR creates its service-linked roles and assumes a passed role with the caller's permissions,
# SNS encrypts with the publisher's permissions on the topic's key (tests/integration/test_iam_grants.py proves each).
CALLED = {
    "ecr:DescribePullThroughCacheRules",
    "ecr:CreatePullThroughCacheRule",
    "ecr:UpdatePullThroughCacheRule",
    "ecr:DeletePullThroughCacheRule",
    "ecr:ValidatePullThroughCacheRule",
    "ecr:DescribeRepositoryCreationTemplates",
    "ecr:CreateRepositoryCreationTemplate",
    "ecr:UpdateRepositoryCreationTemplate",
    "ecr:DeleteRepositoryCreationTemplate",
    "ecr:GetRegistryPolicy",
    "ecr:PutRegistryPolicy",
    "ecr:DeleteRegistryPolicy",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "events:PutEvents",
    "sns:Publish",
}
ON_ITS_BEHALF = {
    "ecr:CreateRepository",
    "ecr:PutLifecyclePolicy",
    "ecr:TagResource",
    "iam:CreateServiceLinkedRole",
    "iam:PassRole",
    "kms:GenerateDataKey*",
    "kms:Decrypt",
}


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    return data


def function(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][FUNCTION]["Properties"]
    return properties


def statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for policy in function(template)["Policies"] for s in policy["Statement"]}


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)


def pattern_for(template: dict[str, Any], route: str, stack_id: str) -> EventPattern:
    """The route's pattern with !Ref AWS::StackId as CloudFormation resolves it for the sample's stack."""

    def resolve(node: Any) -> Any:
        if node == {"Ref": "AWS::StackId"}:
            return stack_id
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    raw = resolve(copy.deepcopy(function(template)["Events"][route]["Properties"]["Pattern"]))
    return EventPattern.load(json.dumps(raw))


STACK_ID = sample("deploy_create_complete")["detail"]["stack-id"]


def routed_by(template: dict[str, Any], event: dict[str, Any]) -> list[str]:
    names = [name for name, route in function(template)["Events"].items() if route["Type"] == "EventBridgeRule"]
    return [name for name in names if pattern_for(template, name, STACK_ID).matches_event(event)]


def test_the_function_builds_from_its_directory_with_its_makefile(template: dict[str, Any]) -> None:
    # Given the function's resource
    resource = template["Resources"][FUNCTION]
    properties = resource["Properties"]

    # Then SAM builds it with the makefile method from functions/reconcile_rules, whose Makefile has the target
    assert resource["Metadata"]["BuildMethod"] == "makefile"
    assert (properties["CodeUri"], properties["Handler"]) == ("functions/reconcile_rules", "app.lambda_handler")
    makefile = (REPO_ROOT / "functions" / "reconcile_rules" / "Makefile").read_text()
    assert re.search(rf"^build-{FUNCTION}:", makefile, re.MULTILINE)
    # And it finds the ledger table through LEDGER_TABLE (topic and stack name come from Globals)
    assert properties["Environment"]["Variables"]["LEDGER_TABLE"] == {"Ref": "LedgerTable"}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["REPORT_TOPIC_ARN"] == {"Ref": "ReportTopic"}
    assert variables["STACK_NAME"] == {"Ref": "AWS::StackName"}


def test_the_function_logs_to_its_own_group_with_the_stacks_retention(template: dict[str, Any]) -> None:
    # Given the function's log group, Then it is the group Lambda writes to, kept LogRetentionDays
    group = template["Resources"]["ReconcileRulesLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{FUNCTION}}}"}
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_schedule_is_the_reconcile_schedule_parameter(template: dict[str, Any]) -> None:
    # Given the function's scheduled trigger, Then it runs on ReconcileSchedule (daily by default)
    scheduled = function(template)["Events"]["Scheduled"]
    assert scheduled["Type"] == "Schedule"
    assert scheduled["Properties"]["Schedule"] == {"Ref": "ReconcileSchedule"}
    assert template["Parameters"]["ReconcileSchedule"]["Default"] == "rate(1 day)"


@pytest.mark.parametrize(("name", "route"), [(n, r) for n, r in ROUTES.items() if r])
def test_each_sample_event_is_let_through_by_its_rule_only(template: dict[str, Any], name: str, route: str) -> None:
    # Given a sample event of a trigger, When the function's EventBridge rules see it
    # Then exactly the rule meant for it lets it through
    assert routed_by(template, sample(name)) == [route]


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("another stack's deploy", {"stack-id": STACK_ID.replace("pullthrough-dev/", "other/")}),
        ("a failed update", {"status-details": {"status": "UPDATE_ROLLBACK_COMPLETE", "status-reason": ""}}),
        ("the stack's deletion", {"status-details": {"status": "DELETE_COMPLETE", "status-reason": ""}}),
    ],
)
def test_no_other_cloudformation_event_starts_a_reconcile(
    template: dict[str, Any], what: str, change: dict[str, Any]
) -> None:
    # Given a CloudFormation status change that is not this stack's finished create or update
    event = sample("deploy_create_complete")
    event["detail"] |= change

    # Then no rule lets it through
    assert routed_by(template, event) == [], what


@pytest.mark.parametrize("operation", ["CreatePullThroughCacheRule", "CreateRepository", "PutImage"])
def test_other_ecr_calls_do_not_start_a_reconcile(template: dict[str, Any], operation: str) -> None:
    # Given a CloudTrail event of another ECR call (the function's own creations included)
    event = sample("delete_rule")
    event["detail"]["eventName"] = operation

    # Then no rule lets it through
    assert routed_by(template, event) == []


def test_the_role_grants_exactly_what_the_function_uses(template: dict[str, Any]) -> None:
    # Given the function's policy statements
    granted = {action for statement in statements(template).values() for action in actions(statement)}

    # Then they grant what the function calls and what AWS checks on its behalf, nothing else
    assert granted == CALLED | ON_ITS_BEHALF
    assert all(statement["Effect"] == "Allow" for statement in statements(template).values())


def test_only_registry_level_ecr_actions_have_no_resource_scope(template: dict[str, Any]) -> None:
    # Given the statements whose resource is "*"
    unscoped = [s for s in statements(template).values() if s["Resource"] == "*"]

    # Then there are two: the pull-through cache rule and template actions, and the registry policy's, which ECR
    # defines on no resource
    assert [s["Sid"] for s in unscoped] == ["ManagePullThroughCacheRulesAndTemplates", "ManageHubRegistryPolicy"]
    assert all(
        re.fullmatch(r"ecr:\w+(PullThroughCacheRules?|RepositoryCreationTemplates?)", a) for a in actions(unscoped[0])
    )
    assert actions(unscoped[1]) == ["ecr:GetRegistryPolicy", "ecr:PutRegistryPolicy", "ecr:DeleteRegistryPolicy"]
    # pinned to this stack's region
    assert unscoped[1]["Condition"] == {"StringEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}}


def evaluate(node: Any, facts: dict[str, str]) -> Any:
    """Fn::Split / Fn::Join / Fn::GetAtt ConfigFacts.<name> as CloudFormation evaluates them once deployed."""
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        assert resource == CONFIG_FACTS, node
        return facts[attribute]
    if isinstance(node, dict) and "Fn::Join" in node:
        delimiter, parts = node["Fn::Join"]
        values = evaluate(parts, facts)
        return delimiter.join(str(v) for part in values for v in (part if isinstance(part, list) else [part]))
    if isinstance(node, dict) and "Fn::Split" in node:
        delimiter, text = node["Fn::Split"]
        return evaluate(text, facts).split(delimiter)
    if isinstance(node, list):
        return [evaluate(item, facts) for item in node]
    return node


PINNED = {
    "StringEquals": {
        "aws:RequestedRegion": {"Ref": "AWS::Region"},
        "aws:ResourceAccount": {"Ref": "AWS::AccountId"},
    }
}


def test_secrets_are_readable_only_as_the_config_names_them(template: dict[str, Any]) -> None:
    # Given the statement that reads secrets, and what ConfigFacts answers for the shipped config
    statement = statements(template)["ReadUpstreamCredentials"]
    facts = config_facts()

    # When CloudFormation evaluates it
    resources = evaluate(statement["Resource"], facts)

    # Then it covers each secret of the config's rules, under ecr-pullthroughcache/ with Secrets Manager's six-character
    # suffix, in this region and account only
    names = ["ecr-pullthroughcache/docker-hub", "ecr-pullthroughcache/ghcr"]
    assert resources == [f"arn:*:secretsmanager:*:*:secret:{name}-??????" for name in names]
    assert statement["Condition"] == PINNED


def test_repositories_are_created_only_under_the_cache_prefixes(template: dict[str, Any]) -> None:
    # Given the statement for the repositories a template describes, and the shipped config's rule prefixes
    statement = statements(template)["CreateCacheRepositoriesFromTemplates"]
    prefixes = ["docker-hub", "ghcr", "quay", "k8s", "ecr-public"]

    # When CloudFormation evaluates its Fn::Split / Fn::Join over what ConfigFacts answers
    resources = evaluate(statement["Resource"], config_facts())

    # Then each prefix's repositories (a template's prefix applies under <prefix>/) and nothing else are covered, in
    # this region and account only
    assert sorted(resources) == sorted(f"arn:*:ecr:*:*:repository/{p}/*" for p in prefixes)
    assert statement["Condition"] == PINNED


def test_the_ledger_is_writable_only_in_the_ownership_partition(template: dict[str, Any]) -> None:
    # Given the ledger statement, Then it names the table and only the OWNED partition key
    statement = statements(template)["OwnershipRecords"]
    assert statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert statement["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["OWNED"]}}


def test_reports_and_the_warming_event_go_to_this_stacks_topic_and_the_default_bus(template: dict[str, Any]) -> None:
    # Given the publishing statements, Then they name the report topic, its key and the default bus
    found = statements(template)
    assert found["PublishReports"]["Resource"] == {"Ref": "ReportTopic"}
    assert found["EncryptReports"]["Resource"] == {"Fn::GetAtt": ["ReportKey", "Arn"]}
    assert found["StartWarming"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    }


# --- the repository creation role (templates with role: create) -----------------------------------------------------


def test_templates_with_role_create_get_the_role_the_stack_deploys(template: dict[str, Any]) -> None:
    # Given the function's environment and the role, Then reconcile_rules knows the role's ARN
    assert function(template)["Environment"]["Variables"]["TEMPLATE_ROLE_ARN"] == {
        "Fn::GetAtt": ["RepositoryCreationRole", "Arn"]
    }
    role = template["Resources"]["RepositoryCreationRole"]["Properties"]
    # And the role lives under /pullthrough/, the path iam:PassRole names
    assert role["Path"] == "/pullthrough/"
    # And only ECR may assume it, and only for this account when the request says which account it acts for
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecr.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEqualsIfExists"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_repository_creation_role_may_do_what_the_guide_lists_on_what_the_config_names(
    template: dict[str, Any],
) -> None:
    # Given the role's statements and what ConfigFacts answers for the shipped config (docker-hub has role: create)
    role = template["Resources"]["RepositoryCreationRole"]["Properties"]
    found = {s["Sid"]: s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]}
    facts = config_facts()

    # Then ECR may create and tag the repositories of those templates only, in this region and account
    create = found["CreateAndTagTemplateRepositories"]
    assert actions(create) == ["ecr:CreateRepository", "ecr:TagResource"]
    assert evaluate(create["Resource"], facts) == ["arn:*:ecr:*:*:repository/docker-hub/*"]
    assert create["Condition"] == PINNED
    # And use the KMS keys those templates name (none in the shipped config: an ARN that names no key)
    keys = found["UseTemplateKmsKeys"]
    assert actions(keys) == ["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"]
    assert evaluate(keys["Resource"], facts) == ["arn:aws:kms:*:*:key/NONE"]
    assert set(found) == {"CreateAndTagTemplateRepositories", "UseTemplateKmsKeys"}
