"""The one DynamoDB table every ledger adapter reads and writes: its client, consistent reads, paged queries, and
batch writes that retry what DynamoDB leaves unprocessed.

The adapters (runs.py, jobs.py, verified.py, allowances.py, pull_failures.py) each hold one `Table`, shared, so one
client and one clock serve them all; boto3 is imported only when the client is first made (aws/clients.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.aws.ledger.items import s
from pullthrough.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WRITE_BATCH = 25  # BatchWriteItem's limit
READ_BATCH = 100  # BatchGetItem's limit
WRITE_ATTEMPTS = 6


@dataclass
class Table:
    """Table `name`, through `client` (made on first use), with the clock and the pause between retried batches."""

    name: str
    client: DynamoDBClient | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    def ddb(self) -> DynamoDBClient:
        if self.client is None:
            self.client = clients.client("dynamodb")
        return self.client

    def where(self, pk: str) -> str:
        """The resource an error names: the table and the partition."""
        return f"{self.name} {pk}"

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item, strongly consistent, or None."""
        with aws_call("dynamodb:GetItem", self.where(pk)):
            response = self.ddb().get_item(TableName=self.name, Key={"pk": s(pk), "sk": s(sk)}, ConsistentRead=True)
        item = response.get("Item")
        return dict(item) if item else None

    def query(self, condition: str, values: dict[str, Any], resource: str) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            params: dict[str, Any] = {
                "TableName": self.name,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ConsistentRead": True,
            }
            if start:
                params["ExclusiveStartKey"] = start
            with aws_call("dynamodb:Query", resource):
                response = self.ddb().query(**params)
            yield from response.get("Items") or []
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def batch_put(self, items: list[dict[str, Any]], resource: str) -> None:
        for begin in range(0, len(items), WRITE_BATCH):
            requests: list[Any] = [{"PutRequest": {"Item": item}} for item in items[begin : begin + WRITE_BATCH]]
            for attempt in range(WRITE_ATTEMPTS):
                if attempt:
                    self.sleep(0.05 * 2**attempt)
                with aws_call("dynamodb:BatchWriteItem", resource):
                    response = self.ddb().batch_write_item(RequestItems={self.name: requests})
                requests = list((response.get("UnprocessedItems") or {}).get(self.name) or [])
                if not requests:
                    break
            if requests:
                raise AwsError(
                    "dynamodb:BatchWriteItem",
                    resource,
                    "UnprocessedItems",
                    f"{len(requests)} item(s) still unwritten after {WRITE_ATTEMPTS} attempts; retry the run",
                )
