"""The least-privilege IAM policy a puller (a node role, a CI role, a person) needs to pull through the cache.

- ecr:GetAuthorizationToken takes no resource: "*" (the IAM service reference for Amazon ECR).
- A pull is BatchCheckLayerAvailability, BatchGetImage and GetDownloadUrlForLayer on the repository (the ECR User
  Guide, "Private repository policy examples": the pull actions), scoped here to each rule's cache repositories.
- A first pull through a rule also needs ecr:BatchImportUpstreamImage (ECR retrieves the upstream image and imports
  it) and ecr:CreateRepository (when the cache repository does not exist yet): the ECR User Guide, "IAM permissions
  required to sync an upstream registry with an Amazon ECR private registry" (pull-through-cache-iam).
Resources are `repository/<prefix>/*`, derived from the config's rules (`repository/*` for a ROOT rule).
"""

from __future__ import annotations

import json
from typing import Any

from pullthrough.config import Config
from pullthrough.consumers.runtimes import GeneratedFile
from pullthrough.consumers.target import Target
from pullthrough.reference import ROOT_PREFIX

PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
FIRST_PULL_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")


def cache_repository_arns(config: Config, target: Target) -> list[str]:
    """The ARNs of every cache repository the config's rules can create, one wildcard per rule."""
    patterns = ["*" if rule.prefix == ROOT_PREFIX else f"{rule.prefix}/*" for rule in config.rules]
    return [target.repository_arn(p) for p in dict.fromkeys(patterns)]


def policy(config: Config, target: Target) -> dict[str, Any]:
    """The identity policy document."""
    arns = cache_repository_arns(config, target)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "PullCachedImages", "Effect": "Allow", "Action": list(PULL_ACTIONS), "Resource": arns},
            {"Sid": "FirstPullThroughCache", "Effect": "Allow", "Action": list(FIRST_PULL_ACTIONS), "Resource": arns},
        ],
    }


def policy_file(config: Config, target: Target) -> GeneratedFile:
    """The policy as JSON (`aws iam create-policy --policy-document file://puller-policy.json`)."""
    return GeneratedFile("puller-policy.json", json.dumps(policy(config, target), indent=2) + "\n")


NOTES = (
    "Pullers that only pull images already in the cache (warmed by Pullthrough) need no FirstPullThroughCache "
    "statement; keep it where a puller may be the first to ask for a tag.",
    "A repository creation template that tags repositories or uses a KMS key has ECR assume the template's role "
    "(customRoleArn) to create them; the puller needs nothing more for that.",
)
