"""Which pull-through cache rules and repository creation templates Pullthrough created: records in the ledger table.

Why a table and not tags: ECR's TagResource takes only repository ARNs. A pull-through cache rule has no ARN and no
tags at all, and a repository creation template has none either (its `resourceTags` are what it puts on the
repositories it creates, not a mark on the template). A description or a naming convention would be a mark anyone
can copy or edit by hand. So ownership is recorded where only Pullthrough writes: one item per resource in the
stack's ledger table, `pk = OWNED`, `sk = rule#<prefix>` or `template#<prefix>`, with `created_at` and `stack`
(docs/CONTRACTS.md). Reconcile deletes only what has a record; everything else is reported and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITION = "OWNED"


class Kind(StrEnum):
    """What an ownership record is about."""

    RULE = "rule"
    TEMPLATE = "template"


@dataclass(frozen=True)
class Owned:
    """The prefixes of the rules and templates Pullthrough created in this account and region."""

    rules: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()

    def has(self, kind: Kind, prefix: str) -> bool:
        """Whether Pullthrough recorded creating this rule or template."""
        return prefix in (self.rules if kind is Kind.RULE else self.templates)


def sort_key(kind: Kind, prefix: str) -> str:
    """The record's sort key: `rule#docker-hub`, `template#ghcr`."""
    return f"{kind.value}#{prefix}"


def _dynamodb(region: str | None = None) -> DynamoDBClient:
    return clients.client("dynamodb", region)


def owned(table: str, region: str | None = None) -> Owned:
    """Every ownership record of the table, read consistently: a run right after another must see its records."""
    rules: set[str] = set()
    templates: set[str] = set()
    with aws_call("dynamodb:Query", f"table {table} (pk {PARTITION})"):
        pages = (
            _dynamodb(region)
            .get_paginator("query")
            .paginate(
                TableName=table,
                KeyConditionExpression="pk = :owned",
                ExpressionAttributeValues={":owned": {"S": PARTITION}},
                ProjectionExpression="sk",
                ConsistentRead=True,
            )
        )
        for page in pages:
            for item in page.get("Items", []):
                kind, _, prefix = item["sk"].get("S", "").partition("#")
                if kind == Kind.RULE.value:
                    rules.add(prefix)
                elif kind == Kind.TEMPLATE.value:
                    templates.add(prefix)
    return Owned(frozenset(rules), frozenset(templates))


def record(table: str, kind: Kind, prefix: str, stack: str, now: datetime | None = None) -> bool:
    """Record that Pullthrough created it; False when a record was there already (the first one is kept)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        with aws_call("dynamodb:PutItem", f"table {table} ({sort_key(kind, prefix)})"):
            _dynamodb().put_item(
                TableName=table,
                Item={
                    "pk": {"S": PARTITION},
                    "sk": {"S": sort_key(kind, prefix)},
                    "created_at": {"S": moment.isoformat().replace("+00:00", "Z")},
                    "stack": {"S": stack},
                },
                # A concurrent run may have recorded it first; its created_at is the true one.
                ConditionExpression="attribute_not_exists(pk)",
            )
    except AwsError as exc:
        if exc.code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def forget(table: str, kind: Kind, prefix: str, region: str | None = None) -> None:
    """Drop the record of a rule or template Pullthrough deleted (or that is gone and no longer configured)."""
    with aws_call("dynamodb:DeleteItem", f"table {table} ({sort_key(kind, prefix)})"):
        _dynamodb(region).delete_item(
            TableName=table, Key={"pk": {"S": PARTITION}, "sk": {"S": sort_key(kind, prefix)}}
        )
