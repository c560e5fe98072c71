"""pullthrough.aws.ownership on moto's DynamoDB: the records that decide what reconcile may change or delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from pullthrough.aws import ownership
from pullthrough.aws.ownership import Kind
from tests.fake_aws import fake_aws

TABLE = "pullthrough-test-ledger"


@pytest.fixture
def table() -> Iterator[list[dict[str, Any]]]:
    """A ledger table in moto; yields the parameters of every Query the library sends."""
    with fake_aws("us-east-1"):
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        queries: list[dict[str, Any]] = []
        client = ownership._dynamodb()
        client.meta.events.register(
            "before-parameter-build.dynamodb.Query", lambda params, **_: queries.append(dict(params))
        )
        yield queries


def created_at(prefix: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "OWNED"}, "sk": {"S": f"rule#{prefix}"}}
    )["Item"]
    return str(item["created_at"]["S"])


def test_a_second_record_of_the_same_rule_keeps_the_first_and_says_so(table: list[dict[str, Any]]) -> None:
    # Given a rule recorded by one run
    first = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert ownership.record(TABLE, Kind.RULE, "docker-hub", "stack-a", now=first) is True
    # When a concurrent run records it too
    again = ownership.record(TABLE, Kind.RULE, "docker-hub", "stack-a", now=datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
    # Then that is no error: it answers False, and the first record (its created_at) stands
    assert again is False
    assert created_at("docker-hub") == "2026-11-23T10:00:00Z"
    assert ownership.owned(TABLE).has(Kind.RULE, "docker-hub")


def test_ownership_is_read_consistently(table: list[dict[str, Any]]) -> None:
    # Given a record just written (a run right after another must see it: DynamoDB reads are eventually consistent
    # unless asked otherwise)
    ownership.record(TABLE, Kind.TEMPLATE, "ghcr", "stack-a")
    # When ownership is read
    owned = ownership.owned(TABLE)
    # Then it was read with ConsistentRead, and it is there
    assert owned.has(Kind.TEMPLATE, "ghcr")
    assert [query.get("ConsistentRead") for query in table] == [True]
