"""The IAM roles of a deployed sandbox stack, as CloudFormation would receive them from template.yaml.

SAM's own translator (samtranslator, what `sam validate` and `sam deploy` run) expands each function into its role:
the statements of its `Policies`, SAM policy templates, the dead-letter-queue policy SAM adds for `DeadLetterQueue`,
and the managed policies SAM attaches (AWSLambdaBasicExecutionRole always, AWSXrayWriteOnlyAccess for
`Tracing: Active`). The expansion is resolved against the sandbox stack (its parameters, physical names and ARNs),
so a statement reads exactly as IAM would read it in the account.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sandbox.aws.iam import Principal, Role, Statement

if TYPE_CHECKING:
    from sandbox.stack import Stack

# The documents of the AWS managed policies SAM attaches (AWS Managed Policy Reference: AWSLambdaBasicExecutionRole,
# AWSXrayWriteOnlyAccess v2). A role carrying any other managed policy is refused below rather than half-read.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": ["*"],
        }
    ],
}


@lru_cache(maxsize=8)
def _expanded(document: str) -> dict[str, Any]:
    """SAM's translation of a template (given as JSON text, so it can be cached): about a second the first time."""
    from boto3.session import Session
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = json.loads(document)
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(key), str):  # local paths become the S3 URIs `sam deploy` uploads to
                properties[key] = f"s3://sandbox/{properties[key]}"
    translator = Translator(None, Parser(), boto_session=Session(region_name="us-east-1"))
    expanded: dict[str, Any] = translator.translate(template, parameter_values={}, get_managed_policy_map=dict)
    return expanded


def expanded(template: dict[str, Any]) -> dict[str, Any]:
    """The template as SAM hands it to CloudFormation (a copy: callers may change it)."""
    text = json.dumps(template, sort_keys=True, default=str)
    return copy.deepcopy(_expanded(text))


def role_of(stack: Stack, function: str) -> Role:
    """The execution role of a function (its logical id), resolved against the deployed stack."""
    resources = expanded(stack.template)["Resources"]
    role_ref = resources[function]["Properties"]["Role"]
    if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
        raise ValueError(f"{function} runs as a role outside the stack ({role_ref}): the sandbox cannot read it")
    return role(stack, str(role_ref["Fn::GetAtt"][0]), resources)


def role(stack: Stack, logical_id: str, resources: dict[str, Any] | None = None) -> Role:
    """An AWS::IAM::Role of the stack with every statement of its inline and managed policies."""
    resources = resources if resources is not None else expanded(stack.template)["Resources"]
    properties = resources[logical_id]["Properties"]
    statements: list[Statement] = []
    for policy in properties.get("Policies") or []:
        document = stack.resolve(policy["PolicyDocument"])
        found = document["Statement"]
        for index, statement in enumerate(found if isinstance(found, list) else [found]):
            statements.append(Statement.parse(str(policy["PolicyName"]), index, statement))
    for arn in properties.get("ManagedPolicyArns") or []:
        resolved = str(stack.resolve(arn))
        if resolved not in MANAGED_POLICIES:
            raise ValueError(
                f"{logical_id}: managed policy {resolved} is unknown to the sandbox (sandbox/aws/iam_roles.py)"
            )
        name = resolved.rsplit("/", 1)[-1]
        statements += [Statement.parse(name, i, s) for i, s in enumerate(MANAGED_POLICIES[resolved])]
    # CloudFormation names a role <stack>-<logical id>-<suffix> (at most 64 characters); a short digest stands in for
    # the random suffix.
    suffix = hashlib.sha256(f"{stack.stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    name = f"{stack.stack_name[:20]}-{logical_id[:30]}-{suffix}"
    return Role(name=name, statements=tuple(statements), logical_id=logical_id)


def principal_of(stack: Stack, function: str) -> Principal:
    """The session Lambda runs a function's code as: its execution role, session named after the function."""
    return Principal(role_of(stack, function), stack.physical[function], stack.account, stack.region)
