"""The members' StackSet: its stack instances (CloudFormation ListStackInstances, paginated).

Shapes are botocore's CloudFormation model: ListStackInstances takes StackSetName and CallAs (SELF in the management
account, DELEGATED_ADMIN in a delegated administrator account, for service-managed StackSets) and answers Summaries of
Account, Region, Status (CURRENT, OUTDATED, INOPERABLE), StatusReason, StackInstanceStatus.DetailedStatus (PENDING,
RUNNING, SUCCEEDED, FAILED, CANCELLED, INOPERABLE, SKIPPED_SUSPENDED_ACCOUNT, FAILED_IMPORT), OrganizationalUnitId and
DriftStatus; a StackSet that does not exist is StackSetNotFoundException (AwsNotFound here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call

__all__ = ["CALL_AS", "StackInstance", "members_stack_set", "stack_instances"]

CALL_AS = ("SELF", "DELEGATED_ADMIN")
CallAs = Literal["SELF", "DELEGATED_ADMIN"]


def members_stack_set(stage: str) -> str:
    """The StackSet the hub deploys for its members: pullthrough-members-<Stage> (docs/CONTRACTS.md)."""
    return f"pullthrough-members-{stage}"


@dataclass(frozen=True)
class StackInstance:
    """One stack instance: a member account in one region, and how its last deployment went."""

    account: str
    region: str
    status: str
    detailed_status: str | None = None
    status_reason: str | None = None
    organizational_unit: str | None = None
    drift_status: str | None = None


def stack_instances(stack_set: str, region: str | None = None, call_as: CallAs = "SELF") -> list[StackInstance]:
    """Every stack instance of `stack_set` in the StackSet's own region; AwsNotFound when there is no such StackSet."""
    found = []
    with aws_call("cloudformation:ListStackInstances", f"StackSet {stack_set}"):
        pages = clients.client("cloudformation", region).get_paginator("list_stack_instances")
        for page in pages.paginate(StackSetName=stack_set, CallAs=call_as):
            for summary in page.get("Summaries", []):
                found.append(
                    StackInstance(
                        account=summary.get("Account", ""),
                        region=summary.get("Region", ""),
                        status=summary.get("Status", "UNKNOWN"),
                        detailed_status=(summary.get("StackInstanceStatus") or {}).get("DetailedStatus"),
                        status_reason=summary.get("StatusReason"),
                        organizational_unit=summary.get("OrganizationalUnitId"),
                        drift_status=summary.get("DriftStatus"),
                    )
                )
    return found
