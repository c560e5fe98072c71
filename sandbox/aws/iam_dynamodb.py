"""DynamoDB's calls as IAM sees them: the table, and the partition keys each call touches (dynamodb:LeadingKeys).

Sources: DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control" (LeadingKeys: the
partition key values of the items a request reads or writes) and "Using IAM with DynamoDB transactions" (each item of
a transaction is authorized as its own action: PutItem, UpdateItem, DeleteItem, ConditionCheckItem).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sandbox.aws.iam import Authorization

if TYPE_CHECKING:
    from sandbox.aws.iam_requests import Call

Mapper = Callable[["Call"], list[Authorization]]


def _table_arn(call: Call, table: str) -> str:
    return table if table.startswith("arn:") else f"arn:aws:dynamodb:{call.region}:{call.account}:table/{table}"


def _hash_key(call: Call, table: str) -> str:
    from moto.dynamodb.models import dynamodb_backends

    return str(dynamodb_backends[call.account][call.region].get_table(table.rsplit("/", 1)[-1]).hash_key_attr)


def _leading(call: Call, table: str, keys: list[Mapping[str, Any]]) -> tuple[str, ...]:
    # dynamodb:LeadingKeys: the partition key values the request touches (DynamoDB Developer Guide, "Using IAM policy
    # conditions for fine-grained access control"), one per item for batch operations.
    name = _hash_key(call, table)
    return tuple(str(next(iter(key[name].values()))) for key in keys)


def item(action: str, keys: str) -> Mapper:
    def mapper(call: Call) -> list[Authorization]:
        table = str(call.params["TableName"])
        leading = _leading(call, table, [call.params[keys]])
        return [call.ask(action, _table_arn(call, table), "", {"dynamodb:LeadingKeys": leading})]

    return mapper


def query(call: Call) -> list[Authorization]:
    table = str(call.params["TableName"])
    name = _hash_key(call, table)
    names = {v: k for k, v in (call.params.get("ExpressionAttributeNames") or {}).items()}
    reference = re.escape(names.get(name, name))
    found = re.search(rf"(?<![\w#]){reference}\s*=\s*(:\w+)", str(call.params["KeyConditionExpression"]))
    if found is None:
        from sandbox.aws.iam_requests import Unmapped  # here: iam_requests builds on this module

        raise Unmapped(f"dynamodb:Query: no `{name} = :value` in {call.params['KeyConditionExpression']!r}")
    value = call.params["ExpressionAttributeValues"][found.group(1)]
    leading = (str(next(iter(value.values()))),)
    return [call.ask("dynamodb:Query", _table_arn(call, table), "", {"dynamodb:LeadingKeys": leading})]


def scan(call: Call) -> list[Authorization]:
    # A Scan reads every partition, so the request names no partition key values (no dynamodb:LeadingKeys; Developer
    # Guide, "Using IAM policy conditions for fine-grained access control"). Only the CLI scans, as the operator.
    table = str(call.params["TableName"])
    return [call.ask("dynamodb:Scan", _table_arn(call, table))]


def batch(action: str, request: str, keys: Callable[[Mapping[str, Any]], list[Mapping[str, Any]]]) -> Mapper:
    def mapper(call: Call) -> list[Authorization]:
        asked = []
        for table, entries in call.params[request].items():
            leading = _leading(call, table, keys(entries))
            asked.append(call.ask(action, _table_arn(call, table), "", {"dynamodb:LeadingKeys": leading}))
        return asked

    return mapper


def write_keys(entries: Any) -> list[Mapping[str, Any]]:
    return [e["PutRequest"]["Item"] if "PutRequest" in e else e["DeleteRequest"]["Key"] for e in entries]


_TRANSACT = {"Put": ("dynamodb:PutItem", "Item"), "Update": ("dynamodb:UpdateItem", "Key")}
_TRANSACT |= {"Delete": ("dynamodb:DeleteItem", "Key"), "ConditionCheck": ("dynamodb:ConditionCheckItem", "Key")}


def transact_write(call: Call) -> list[Authorization]:
    # Each item is authorized as its own action (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions").
    asked = []
    for entry in call.params["TransactItems"]:
        ((kind, item),) = entry.items()
        action, keys = _TRANSACT[kind]
        table = str(item["TableName"])
        leading = _leading(call, table, [item[keys]])
        asked.append(
            call.ask(action, _table_arn(call, table), "dynamodb:TransactWriteItems", {"dynamodb:LeadingKeys": leading})
        )
    return asked
