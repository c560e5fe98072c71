"""A StackSet's instances, from CloudFormation: the (account, region) pairs the members' StackSet deployed to, for the
organisation's hub to know whom it waits for when the config names organisational units rather than accounts.

ListStackInstances (CloudFormation API Reference) pages with NextToken and takes CallAs: SELF in the management
account, DELEGATED_ADMIN in a delegated administrator account (service-managed StackSets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call


@dataclass(frozen=True)
class StackInstance:
    """One instance: where it is, and CloudFormation's status for it (CURRENT, OUTDATED, INOPERABLE)."""

    account: str
    region: str
    status: str
    ou: str | None = None


def stack_instances(
    stack_set: str, call_as: Literal["SELF", "DELEGATED_ADMIN"] = "SELF", region: str | None = None
) -> list[StackInstance]:
    """Every instance of `stack_set`; AwsError when it cannot be listed (no such StackSet, access denied)."""
    found: list[StackInstance] = []
    params: dict[str, Any] = {"StackSetName": stack_set, "CallAs": call_as}
    while True:
        with aws_call("cloudformation:ListStackInstances", f"StackSet {stack_set}"):
            response = clients.client("cloudformation", region).list_stack_instances(**params)
        for summary in response.get("Summaries") or []:
            found.append(
                StackInstance(
                    account=str(summary.get("Account") or ""),
                    region=str(summary.get("Region") or ""),
                    status=str(summary.get("Status") or ""),
                    ou=summary.get("OrganizationalUnitId"),
                )
            )
        token = response.get("NextToken")
        if not token:
            return found
        params["NextToken"] = token
