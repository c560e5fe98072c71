"""The ledger table as a whole: find the one a deleted stack left behind, and delete it.

template.yaml retains LedgerTable (DeletionPolicy: Retain): after `sam delete` it stays, under the name
CloudFormation generated for it, `<stack name>-LedgerTable-<suffix>` (CloudFormation's "Name type" rule: a resource
without an explicit name gets the stack name, the logical id and a random string).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsNotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOGICAL_ID = "LedgerTable"  # template.yaml


def _dynamodb(region: str | None) -> DynamoDBClient:
    return clients.client("dynamodb", region)


def left_by(stack: str, region: str | None = None) -> list[str]:
    """The tables named `<stack>-LedgerTable-...` (ListTables, paged), sorted."""
    prefix = f"{stack}-{LOGICAL_ID}-"
    names: list[str] = []
    with aws_call("dynamodb:ListTables", f"tables named {prefix}*"):
        for page in _dynamodb(region).get_paginator("list_tables").paginate():
            names.extend(name for name in page.get("TableNames", []) if name.startswith(prefix))
    return sorted(names)


def exists(table: str, region: str | None = None) -> bool:
    """Whether the table exists (DescribeTable)."""
    try:
        with aws_call("dynamodb:DescribeTable", f"table {table}"):
            _dynamodb(region).describe_table(TableName=table)
    except AwsNotFound:
        return False
    return True


def delete(table: str, region: str | None = None) -> None:
    """DeleteTable: the runs, the learned costs and the ownership records go with it."""
    with aws_call("dynamodb:DeleteTable", f"table {table}"):
        _dynamodb(region).delete_table(TableName=table)
