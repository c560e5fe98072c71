"""sandbox/aws/stackset.py's instances: StackSets' targets as AWS documents them (no AWS call)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.aws.cloudformation import DeployFailed
from sandbox.aws.stackset import OrganizationModel, instances

ORG = OrganizationModel(management="111111111111", units={"ou-a": ["111111111111", "222222222222"], "r-x": []})


def stackset(kind: str, accounts: list[str], overrides: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "Parameters": [{"ParameterKey": "MemberName", "ParameterValue": "member"}],
        "StackInstancesGroup": [
            {
                "DeploymentTargets": {
                    "OrganizationalUnitIds": ["ou-a"],
                    "Accounts": accounts,
                    "AccountFilterType": kind,
                },
                "Regions": ["eu-west-1"],
                "ParameterOverrides": overrides or [],
            },
            None,  # a group Fn::If removed
        ],
    }


@pytest.mark.parametrize(
    ("kind", "accounts", "expected"),
    [
        ("NONE", ["333333333333"], ["222222222222"]),
        ("UNION", ["333333333333"], ["222222222222", "333333333333"]),
        ("INTERSECTION", ["222222222222"], ["222222222222"]),
        ("DIFFERENCE", ["222222222222"], []),
    ],
)
def test_account_filters_and_never_the_management_account(kind: str, accounts: list[str], expected: list[str]) -> None:
    # The unit holds the management account too: StackSets never deploys there, whatever the filter
    assert [i.account for i in instances(stackset(kind, accounts), ORG)] == expected


def test_overrides_replace_stackset_parameters_and_only_those() -> None:
    found = instances(stackset("NONE", [], [{"ParameterKey": "MemberName", "ParameterValue": "fleet"}]), ORG)
    assert [i.parameters for i in found] == [{"MemberName": "fleet"}]
    with pytest.raises(DeployFailed, match="not StackSet parameters"):
        instances(stackset("NONE", [], [{"ParameterKey": "Other", "ParameterValue": "x"}]), ORG)
