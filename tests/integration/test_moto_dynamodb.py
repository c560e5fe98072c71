"""The sandbox's TransactWriteItems is all or nothing, as DynamoDB's API reference says, with an item-level rollback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox.aws import moto_dynamodb

TABLE = "ledger"


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        moto_dynamodb.install()
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def key(pk: str, sk: str = "META") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def items(client: Any) -> dict[tuple[str, str], dict[str, Any]]:
    found = client.scan(TableName=TABLE)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in found}


def test_a_failed_condition_undoes_every_write_of_the_transaction(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={**key("run"), "count": {"N": "1"}})
    ddb.put_item(TableName=TABLE, Item={**key("held"), "v": {"S": "before"}})
    before = items(ddb)

    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("new"), "v": {"S": "x"}}}},
                {"Put": {"TableName": TABLE, "Item": {**key("held"), "v": {"S": "after"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("run"),
                        "UpdateExpression": "SET #c = #c + :one",
                        "ExpressionAttributeNames": {"#c": "count"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key("absent"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    assert items(ddb) == before


def test_a_transaction_whose_conditions_hold_writes_everything(ddb: Any) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {**key("a"), "v": {"S": "1"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": {"TableName": TABLE, "Item": {**key("b"), "v": {"S": "2"}}}},
        ]
    )

    assert set(items(ddb)) == {("a", "META"), ("b", "META")}


def test_a_refused_transaction_of_two_writes_to_one_item_leaves_the_table_as_it_was(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={**key("a"), "v": {"S": "kept"}})

    with pytest.raises(ddb.exceptions.ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**key("a"), "v": {"S": "one"}}}},
                {"Put": {"TableName": TABLE, "Item": {**key("a"), "v": {"S": "two"}}}},
            ]
        )

    assert items(ddb)[("a", "META")]["v"] == {"S": "kept"}
