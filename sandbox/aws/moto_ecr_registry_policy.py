"""PutRegistryPolicy as ECR answers it today: any ECR action in the registry policy (the V2 registry policy scope).

moto 5.2.5 refuses every action but ecr:CreateRepository and ecr:ReplicateImage, the V1 scope. The ECR User Guide
("Private registry permissions in Amazon ECR") says V2 "is the expanded registry policy scope that includes all ECR
permissions" and "the default registry policy scope", and its ECR-to-ECR page ("Setting up permissions for
cross-account ECR to ECR PTC") grants downstream accounts ecr:BatchGetImage, ecr:GetDownloadUrlForLayer and
ecr:BatchImportUpstreamImage in the upstream's registry policy. The limits are botocore's ECR model
(RegistryPolicyText: at most 10,240 characters; InvalidParameterException for a malformed policy). The policy is
kept where moto keeps it (ECRBackend.registry_policy), so moto's GetRegistryPolicy and DeleteRegistryPolicy answer
for it unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from moto.ecr.exceptions import InvalidParameterException
from moto.ecr.models import ECRBackend
from moto.iam.exceptions import MalformedPolicyDocument
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from sandbox.aws.moto_ecr_state import LOCK

__all__ = ["POLICY_TEXT_MAX", "put"]

POLICY_TEXT_MAX = 10240
_INVALID = "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"


def put(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """PutRegistryPolicy: a valid IAM policy of ECR actions only, at most 10,240 characters."""
    text = params.get("policyText")
    if not isinstance(text, str) or len(text) > POLICY_TEXT_MAX:
        raise InvalidParameterException(_INVALID)
    try:
        IAMPolicyDocumentValidator(text).validate()
    except MalformedPolicyDocument:
        raise InvalidParameterException(_INVALID) from None
    for statement in _statements(json.loads(text)):
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if not str(action).lower().startswith("ecr:"):
                raise InvalidParameterException(_INVALID)
    with LOCK:
        ecr.registry_policy = text
    return {"registryId": ecr.account_id, "policyText": text}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]
