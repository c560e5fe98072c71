"""EventBridge PutEvents: the "Pullthrough Rules Reconciled" event that starts a warm run (docs/CONTRACTS.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "pullthrough"
RULES_RECONCILED = "Pullthrough Rules Reconciled"


def _events() -> EventBridgeClient:
    return clients.client("events")


def put_rules_reconciled(stack: str, run_id: str, rules: Sequence[str], bus: str = "default") -> str:
    """Announce a reconcile on `bus`: {"stack", "run_id", "rules": [prefix, ...]}; returns the event id."""
    detail = json.dumps({"stack": stack, "run_id": run_id, "rules": list(rules)})
    where = f"event bus {bus}"
    with aws_call("events:PutEvents", where):
        answer = _events().put_events(
            Entries=[{"Source": SOURCE, "DetailType": RULES_RECONCILED, "Detail": detail, "EventBusName": bus}]
        )
    # PutEvents answers 200 even when an entry is refused; the refusal is in the entry's result.
    entry = answer.get("Entries", [{}])[0]
    if answer.get("FailedEntryCount") or "EventId" not in entry:
        code = entry.get("ErrorCode") or "FailedEntry"
        message = entry.get("ErrorMessage") or "EventBridge did not accept the event"
        raise AwsError("events:PutEvents", where, code, f"{message}; check events:PutEvents on the bus for the role")
    return entry["EventId"]
