"""The scale benchmark: "as Lambda runs it" (shards in waves of the PlanWarmingShards mapping's MaximumConcurrency and
of Lambda's SQS scaling), and moto's transactions corrected to copy a table once (bench/harness.py)."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb import models
from moto.dynamodb.models.table import Table

from bench.harness import RegistryCalls, _copy_tables_once
from bench.scale import QUEUE_HOP_SECONDS, Plan
from tests.fake_aws import fake_aws


def plan(shards: list[float], concurrency: int) -> Plan:
    data = {
        "coordinator": {"seconds": 1.0},
        "shards": [{"seconds": s} for s in shards],
        "shard_concurrency": concurrency,
    }
    return Plan(1_000, data, RegistryCalls(Counter(), Counter(), Counter()))


def test_shards_run_in_waves_of_the_mappings_maximum_concurrency() -> None:
    # Given five shards and a mapping that runs two at a time
    timed = plan([2.0, 3.0, 1.0, 5.0, 1.0], concurrency=2)
    # Then they run in three waves, in the order sent, each as long as its slowest shard and a hop
    assert timed.waves == [[2.0, 3.0], [1.0, 5.0], [1.0]]
    assert timed.lambda_seconds == pytest.approx(1.0 + 3.0 + 5.0 + 1.0 + 3 * QUEUE_HOP_SECONDS)


def test_a_plan_without_shards_is_its_coordinator_alone() -> None:
    assert plan([], concurrency=4).lambda_seconds == pytest.approx(1.0)


def test_lambda_starts_five_batches_at_once_and_adds_more_as_the_seconds_pass() -> None:
    # Given twelve shards of a second each and a mapping allowing ten at once
    timed = plan([1.0] * 12, concurrency=10)
    # Then the first wave is Lambda's five; 1.1 s later the poller runs five more a second (10, the cap): the last 7
    assert [len(wave) for wave in timed.waves] == [5, 7]


def test_a_transaction_copies_the_table_once_and_still_rolls_back_whole() -> None:
    original = models.DynamoDBBackend.transact_write_items
    copies: list[object] = []
    real = copy.deepcopy
    try:
        _copy_tables_once()
        with fake_aws("us-east-1"):
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            key: Any = [{"AttributeName": "pk", "KeyType": "HASH"}]
            kinds: Any = [{"AttributeName": "pk", "AttributeType": "S"}]
            ddb.create_table(TableName="t", KeySchema=key, AttributeDefinitions=kinds, BillingMode="PAY_PER_REQUEST")
            ddb.put_item(TableName="t", Item={"pk": {"S": "held"}})
            # Given a transaction of ten writes to one table whose last one fails its condition
            puts: list[Any] = [{"Put": {"TableName": "t", "Item": {"pk": {"S": f"new{i}"}}}} for i in range(9)]
            held: Any = {
                "TableName": "t",
                "Item": {"pk": {"S": "held"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }

            def counting(thing: Any, memo: Any = None) -> Any:
                copies.append(thing)
                return real(thing, memo)

            copy.deepcopy = counting  # type: ignore[assignment]
            with pytest.raises(ClientError):
                ddb.transact_write_items(TransactItems=[*puts, {"Put": held}])
            # Then the table was copied once, not ten times, and nothing of the transaction was written
            assert len([c for c in copies if isinstance(c, Table)]) == 1
            assert ddb.scan(TableName="t", Select="COUNT")["Count"] == 1
    finally:
        copy.deepcopy = real
        models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
