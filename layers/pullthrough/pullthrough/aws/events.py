"""EventBridge PutEvents: the "Pullthrough Rules Reconciled" event that starts a warm run, and a member's "Pullthrough
Report" event on the hub's bus (docs/CONTRACTS.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsResponseTypeDef

SOURCE = "pullthrough"
RULES_RECONCILED = "Pullthrough Rules Reconciled"


def _events(region: str | None = None) -> EventBridgeClient:
    return clients.client("events", region)


def put_rules_reconciled(stack: str, run_id: str, rules: Sequence[str], bus: str = "default") -> str:
    """Announce a reconcile on `bus`: {"stack", "run_id", "rules": [prefix, ...]}; returns the event id."""
    detail = json.dumps({"stack": stack, "run_id": run_id, "rules": list(rules)})
    where = f"event bus {bus}"
    with aws_call("events:PutEvents", where):
        answer = _events().put_events(
            Entries=[{"Source": SOURCE, "DetailType": RULES_RECONCILED, "Detail": detail, "EventBusName": bus}]
        )
    return _event_id(answer, where)


def put_to_bus(bus_arn: str, detail_type: str, detail: str) -> str:
    """Put one event (source "pullthrough") on the bus `bus_arn`, maybe another account's, in the bus's region;
    returns the event id. An entry EventBridge refuses raises AwsError with its ErrorCode."""
    where = f"event bus {bus_arn}"
    # PutEvents goes to the bus's own region: an ARN names a bus in one region (EventBridge API Reference, PutEvents:
    # EventBusName "the name or ARN of the event bus").
    parts = bus_arn.split(":")
    region = parts[3] if len(parts) >= 6 and parts[2] == "events" and parts[3] else None
    with aws_call("events:PutEvents", where):
        answer = _events(region).put_events(
            Entries=[{"Source": SOURCE, "DetailType": detail_type, "Detail": detail, "EventBusName": bus_arn}]
        )
    return _event_id(answer, where)


def _event_id(answer: PutEventsResponseTypeDef, where: str) -> str:
    # PutEvents answers 200 even when an entry is refused; the refusal is in the entry's result.
    entry = answer.get("Entries", [{}])[0]
    if answer.get("FailedEntryCount") or "EventId" not in entry:
        code = entry.get("ErrorCode") or "FailedEntry"
        message = entry.get("ErrorMessage") or "EventBridge did not accept the event"
        raise AwsError("events:PutEvents", where, code, f"{message}; check events:PutEvents on the bus for the role")
    return entry["EventId"]
