"""Which event asked for a reconcile: a deploy, the schedule, a drift (CloudTrail) or a person, as the report tells it.

Separate from the run because it is the handler's first question (an event of this function's own change, or of
another stack, is answered without reading the config) and because the report and the drift lines read it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pullthrough.aws import ptc
from pullthrough.aws.ownership import Kind
from pullthrough.errors import EventError

__all__ = ["Trigger", "TriggerKind"]


class EventBridgeEvent(BaseModel):
    """An EventBridge event's envelope, its top-level fields as the EventBridge User Guide lists them ("Amazon
    EventBridge events"); the same fields Powertools' EventBridgeModel requires. Our own: importing Powertools' parser
    models imports every event model it has (about 30 ms of reconcile_rules' cold start; bench/README.md)."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: Any  # a JSON object; EventBridge Scheduler sends the string "{}" when the schedule has no payload
    replay_name: str | None = Field(None, alias="replay-name")


class TriggerKind(StrEnum):
    """What started a run."""

    DEPLOY = "deploy"  # this stack's CloudFormation CREATE_COMPLETE / UPDATE_COMPLETE
    SCHEDULE = "schedule"
    DRIFT = "drift"  # a CloudTrail event: someone changed or deleted a rule or template
    MANUAL = "manual"  # a direct invocation, e.g. {"dryRun": true}


_DRIFT_OPERATIONS = {
    "DeletePullThroughCacheRule": (Kind.RULE, "ecrRepositoryPrefix", "deleted"),
    "UpdatePullThroughCacheRule": (Kind.RULE, "ecrRepositoryPrefix", "changed"),
    "DeleteRepositoryCreationTemplate": (Kind.TEMPLATE, "prefix", "deleted"),
    "UpdateRepositoryCreationTemplate": (Kind.TEMPLATE, "prefix", "changed"),
}
_STACK_DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


@dataclass(frozen=True)
class Trigger:
    """The event a run answers, as the report tells it."""

    kind: TriggerKind
    text: str  # "CloudFormation UPDATE_COMPLETE of stack pullthrough-prod"
    dry_run: bool = False
    operation: str | None = None  # CloudTrail eventName
    resource: Kind | None = None  # what the CloudTrail call was about
    prefix: str | None = None  # its rule or template prefix
    actor: str | None = None  # userIdentity.arn (or the closest thing the event has)
    at: str | None = None  # eventTime
    stack: str | None = None  # the stack a CloudFormation event is about

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Trigger:
        """Read an EventBridge event (deploy, schedule, CloudTrail) or a manual one ({} or {"dryRun": true})."""
        if not isinstance(event, Mapping):
            raise EventError(f"the event must be a JSON object, not {type(event).__name__}")
        if "detail-type" not in event:
            return _manual(event)
        try:
            bridge = EventBridgeEvent.model_validate(event)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in error["loc"]) for error in exc.errors())
            raise EventError(f"not an EventBridge event: missing or invalid {fields}") from None
        detail: Mapping[str, Any] = bridge.detail if isinstance(bridge.detail, Mapping) else {}
        if bridge.detail_type == "CloudFormation Stack Status Change":
            return _deploy(detail)
        if bridge.detail_type == "Scheduled Event":
            rule = bridge.resources[0].rsplit("/", 1)[-1] if bridge.resources else None
            return cls(TriggerKind.SCHEDULE, f"schedule ({rule})" if rule else "schedule")
        if bridge.detail_type == "AWS API Call via CloudTrail":
            return _cloudtrail(detail)
        raise EventError(
            f"detail-type {bridge.detail_type!r} is not one reconcile_rules handles; expected CloudFormation Stack "
            "Status Change, Scheduled Event or AWS API Call via CloudTrail (check the function's EventBridge rules)"
        )

    def drift(self, kind: Kind, prefix: str) -> str | None:
        """Who changed the resource and when ("deleted outside Pullthrough by <arn> at <time>"), if the trigger says."""
        if self.kind is not TriggerKind.DRIFT or self.resource is not kind or self.prefix != prefix:
            return None
        verb = _DRIFT_OPERATIONS[self.operation or ""][2]
        return f"{verb} outside Pullthrough by {self.actor or 'an unknown principal'} at {self.at or 'an unknown time'}"

    def made_by(self, function_name: str | None) -> bool:
        """Whether the CloudTrail call was made by the function itself (its role session is named after it)."""
        if self.kind is not TriggerKind.DRIFT or not function_name or not self.actor:
            return False
        return ":assumed-role/" in self.actor and self.actor.endswith(f"/{function_name}")


def _manual(event: Mapping[str, Any]) -> Trigger:
    unknown = sorted(set(event) - {"dryRun"})
    if unknown:
        raise EventError(
            f"manual event field(s) {', '.join(unknown)} not understood; send {{}} to reconcile or "
            '{"dryRun": true} to plan and report without writing'
        )
    dry_run = event.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise EventError(f"event field dryRun must be true or false, not {dry_run!r}")
    return Trigger(TriggerKind.MANUAL, "manual invocation", dry_run=dry_run)


def _deploy(detail: Mapping[str, Any]) -> Trigger:
    status_details = detail.get("status-details")
    status = status_details.get("status") if isinstance(status_details, Mapping) else None
    stack_id = detail.get("stack-id")
    if not isinstance(status, str) or not isinstance(stack_id, str):
        raise EventError("CloudFormation event without detail.stack-id and detail.status-details.status")
    # arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
    parts = stack_id.split(":", 5)[-1].split("/")
    stack = parts[1] if len(parts) > 1 else stack_id
    if status not in _STACK_DONE:
        raise EventError(f"CloudFormation status {status} of stack {stack} is not a finished create or update")
    return Trigger(TriggerKind.DEPLOY, f"CloudFormation {status} of stack {stack}", stack=stack)


def _cloudtrail(detail: Mapping[str, Any]) -> Trigger:
    operation = detail.get("eventName")
    if not isinstance(operation, str) or operation not in _DRIFT_OPERATIONS:
        raise EventError(
            f"CloudTrail eventName {operation!r} is not one reconcile_rules repairs; expected "
            f"{', '.join(_DRIFT_OPERATIONS)}"
        )
    kind, key, _ = _DRIFT_OPERATIONS[operation]
    parameters = detail.get("requestParameters")
    prefix = parameters.get(key) if isinstance(parameters, Mapping) else None
    prefix = ptc.normalise_prefix(prefix) if isinstance(prefix, str) and prefix else None
    identity = detail.get("userIdentity")
    actor = None
    if isinstance(identity, Mapping):
        actor = identity.get("arn") or identity.get("invokedBy") or identity.get("principalId") or identity.get("type")
    at = detail.get("eventTime")
    text = f"{operation}{' ' + prefix if prefix else ''} by {actor or 'an unknown principal'} at {at or '?'}"
    if detail.get("errorCode"):
        text += f" (the call failed: {detail['errorCode']})"
    return Trigger(
        TriggerKind.DRIFT,
        text,
        operation=operation,
        resource=kind,
        prefix=prefix,
        actor=str(actor) if actor else None,
        at=str(at) if at else None,
    )
