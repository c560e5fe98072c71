"""EventBridge's PutEvents to another account's event bus, for moto's backend (the organisation's report bus).

moto 5.2.5 looks an entry's EventBusName up in the caller's own account and region, ARN or not (EventsBackend.
put_events: `_normalize_event_bus_arn` keeps the name after the last "/"), so a member's PutEvents to the hub's bus
fails with ResourceNotFoundException. AWS, as documented:
- EventBridge API Reference, PutEvents, EventBusName: "The name or ARN of the event bus to receive the event"; an
  ARN names a bus of another account (and the call goes to the bus's region).
- EventBridge User Guide, "Sending and receiving events between AWS accounts in Amazon EventBridge": the receiving
  bus's resource-based policy must allow the sender (events:PutEvents); "Permissions for Amazon EventBridge event
  buses": a policy may allow a whole organisation with the aws:PrincipalOrgID condition key. The delivered event's
  `account` is the sender's account.
- An entry the bus refuses is a failed entry of the answer (FailedEntryCount, the entry's ErrorCode and ErrorMessage;
  the call itself succeeds), as PutEvents reports every entry it did not take.

Here: an entry whose EventBusName is an ARN of another account or region is delivered to that account's bus (its
rules run as moto runs them, the envelope's `account` the sender's) when the bus's policy allows the sender:
Effect Allow, Action events:PutEvents (wildcards as IAM matches them), Principal "*" or the sender's account, the
Resource the bus, and its Condition holding for {aws:PrincipalAccount, aws:PrincipalOrgID} of the sender (the
organisation `install` was given). Otherwise the entry fails with AccessDeniedException. Entries for the caller's own
buses are moto's.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from moto.core.utils import unix_time
from moto.events.models import EventsBackend, events_backends
from moto.events.utils import _BASE_EVENT_MESSAGE

from sandbox.aws.iam_conditions import action_matches, conditions_hold, resource_matches

_INSTALLED = "_pullthrough_cross_account_put_events"
# account -> its organisation id (None: not in an organisation); set by install()
_org_of: list[Callable[[str], str | None]] = [lambda account: None]


def install(org_of: Callable[[str], str | None]) -> None:
    """Deliver PutEvents entries to other accounts' buses as AWS does; `org_of` gives an account's organisation id."""
    _org_of[0] = org_of
    if getattr(EventsBackend, _INSTALLED, False):
        return
    original = EventsBackend.put_events

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []
        for event in events:
            target = _foreign_bus(self, event.get("EventBusName"))
            answers += original(self, [event]) if target is None else [_deliver(self, target, event)]
        return answers

    EventsBackend.put_events = put_events  # type: ignore[method-assign]
    setattr(EventsBackend, _INSTALLED, True)


def _foreign_bus(backend: EventsBackend, name: str | None) -> tuple[str, str, str] | None:
    """(account, region, bus name) of an ARN naming a bus outside the caller's account and region, else None."""
    parts = (name or "").split(":")
    if len(parts) < 6 or parts[2] != "events" or not parts[5].startswith("event-bus/"):
        return None
    account, region, bus = parts[4], parts[3], parts[5].removeprefix("event-bus/")
    if (account, region) == (backend.account_id, backend.region_name):
        return None
    return account, region, bus


def _deliver(sender: EventsBackend, target: tuple[str, str, str], event: dict[str, Any]) -> dict[str, Any]:
    account, region, name = target
    receiver = events_backends[account][region]
    bus_arn = str(event.get("EventBusName"))
    buses = receiver.event_buses
    if name not in buses:
        return {"ErrorCode": "ResourceNotFoundException", "ErrorMessage": f"Event bus {name} does not exist."}
    bus = buses[name]
    if not _allowed(bus.policy, sender.account_id, bus_arn):
        return {
            "ErrorCode": "AccessDeniedException",
            "ErrorMessage": f"Account {sender.account_id} is not authorized to put events on {bus_arn}",
        }
    event_id = str(random.getrandbits(128))
    for rule in bus.rules.values():
        message = copy.deepcopy(_BASE_EVENT_MESSAGE)
        message.update(
            {
                "id": event_id,
                "detail-type": event["DetailType"],
                "source": event["Source"],
                "account": sender.account_id,  # the sender's, as EventBridge sets it for cross-account events
                "time": event.get("Time", unix_time()),
                "region": region,
                "resources": event.get("Resources", []),
                "detail": json.loads(event["Detail"]),
                "ingestion-time": unix_time(),
            }
        )
        rule.send_to_targets(message)
    return {"EventId": event_id}


def _allowed(policy: str | None, account: str, bus_arn: str) -> bool:
    """The bus's resource-based policy allows `account` events:PutEvents on it (no Deny is written by Pullthrough; a
    Deny statement refuses)."""
    statements = json.loads(policy)["Statement"] if policy else []
    context = {"aws:principalaccount": account, "aws:principalorgid": _org_of[0](account) or ""}
    allowed = False
    for statement in statements:
        actions = statement.get("Action")
        resources = statement.get("Resource")
        matches = (
            any(action_matches(a, "events:PutEvents") for a in _listed(actions))
            and any(resource_matches(r, bus_arn) for r in _listed(resources))
            and _principal(statement.get("Principal"), account)
            and conditions_hold(statement.get("Condition") or {}, context)
        )
        if matches and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (matches and statement.get("Effect") == "Allow")
    return allowed


def _principal(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    values = _listed(principal.get("AWS") if isinstance(principal, dict) else principal)
    return any(v in ("*", account, f"arn:aws:iam::{account}:root") for v in values)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
