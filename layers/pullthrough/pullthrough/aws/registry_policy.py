"""The registry's permissions policy (ECR's registry policy): get, put, delete, as JSON documents.

Shapes are botocore's ECR model: GetRegistryPolicy and DeleteRegistryPolicy take nothing and answer
{registryId, policyText}, and raise RegistryPolicyNotFoundException when the registry has no policy;
PutRegistryPolicy takes policyText (RegistryPolicyText, at most 10,240 characters) and answers the same. The IAM
service reference gives the three actions no resource type: they take Resource "*".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError, AwsNotFound

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

__all__ = ["POLICY_TEXT_MAX", "delete_policy", "get_policy", "policy_text", "put_policy"]

POLICY_TEXT_MAX = 10240  # botocore's ECR model: RegistryPolicyText max


def _ecr(region: str | None) -> ECRClient:
    return clients.client("ecr", region)


def get_policy(region: str | None = None) -> dict[str, Any] | None:
    """The registry's policy document, or None when the registry has none."""
    try:
        with aws_call("ecr:GetRegistryPolicy", "the registry's policy"):
            answer = _ecr(region).get_registry_policy()
    except AwsNotFound:
        return None
    text = answer.get("policyText") or ""
    try:
        document = json.loads(text)
    except ValueError:
        raise AwsError("ecr:GetRegistryPolicy", "the registry's policy", "NotJson", "the policy is not JSON") from None
    if not isinstance(document, dict):
        raise AwsError("ecr:GetRegistryPolicy", "the registry's policy", "NotJson", "the policy is not a JSON object")
    return document


def policy_text(document: dict[str, Any]) -> str:
    """The document as PutRegistryPolicy takes it (compact JSON, keys in the document's order)."""
    return json.dumps(document, separators=(",", ":"))


def put_policy(document: dict[str, Any], region: str | None = None) -> None:
    """Replace the registry's policy with `document`."""
    with aws_call("ecr:PutRegistryPolicy", "the registry's policy"):
        _ecr(region).put_registry_policy(policyText=policy_text(document))


def delete_policy(region: str | None = None) -> None:
    """Delete the registry's policy; a policy already gone is fine."""
    try:
        with aws_call("ecr:DeleteRegistryPolicy", "the registry's policy"):
            _ecr(region).delete_registry_policy()
    except AwsNotFound:
        return
