"""What a Secrets Manager change event (CloudTrail) or the daily schedule asks check_credentials to look at.

Separate from the run (handler.py): reading EventBridge's shapes is pure, and every odd shape (a failed call, a
value staged at AWSPENDING, a secret outside the prefix) is decided here, before any AWS call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from pullthrough.config import SECRET_PREFIX
from pullthrough.credentials.value import secret_name
from pullthrough.errors import EventError

CLOUDTRAIL_CALL = "AWS API Call via CloudTrail"
CLOUDTRAIL_SERVICE = "AWS Service Event via CloudTrail"
SCHEDULED = "Scheduled Event"
ROTATION_OUTCOMES = ("RotationSucceeded", "RotationFailed", "RotationAbandoned")


class ChangeEvent(BaseModel):
    """What a Secrets Manager change event (or the schedule) asks check_credentials to look at."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    trigger: str
    secrets: tuple[str, ...] = ()  # names or ARNs; empty with `everything` for the schedule
    everything: bool = False
    rotation_failed: bool = False
    ignored: str | None = None  # why the event needs nothing (a failed API call, another prefix)


def parse_change_event(event: Mapping[str, Any]) -> ChangeEvent:
    """Read an EventBridge event: CloudTrail API calls and service events on secrets, or the schedule."""
    if not isinstance(event, Mapping):
        raise EventError(f"check_credentials takes an EventBridge event (a JSON object), not a {type(event).__name__}")
    detail_type = str(event.get("detail-type") or "")
    detail = event.get("detail")
    if detail_type == SCHEDULED:
        return ChangeEvent(trigger="schedule (daily check and expiry warnings)", everything=True)
    if detail_type not in (CLOUDTRAIL_CALL, CLOUDTRAIL_SERVICE) or not isinstance(detail, Mapping):
        raise EventError(
            f"check_credentials takes Secrets Manager CloudTrail events or the schedule, not detail-type "
            f"{detail_type!r}; check the EventBridge rule's pattern in template.yaml"
        )
    name = str(detail.get("eventName") or "an event")
    when = str(detail.get("eventTime") or event.get("time") or "")
    who = _principal(detail.get("userIdentity"))
    trigger = f"{name}{' by ' + who if who else ''}{' at ' + when if when else ''}"
    if detail.get("errorCode"):
        return ChangeEvent(trigger=trigger, ignored=f"the call failed ({detail['errorCode']}): nothing changed")
    staged = _staged_only(detail)
    if staged is not None:
        return ChangeEvent(trigger=trigger, ignored=staged)
    secret = _secret_of(detail)
    if secret is None:
        raise EventError(f"{name} event without a secret id in requestParameters or additionalEventData")
    if not secret_name(secret).startswith(SECRET_PREFIX):
        return ChangeEvent(trigger=trigger, ignored=f"secret {secret_name(secret)} is not under {SECRET_PREFIX}")
    return ChangeEvent(
        trigger=f"{trigger} on {secret_name(secret)}",
        secrets=(secret,),
        rotation_failed=name in ("RotationFailed", "RotationAbandoned"),
    )


def _staged_only(detail: Mapping[str, Any]) -> str | None:
    """Why a change leaves AWSCURRENT alone (a value staged at AWSPENDING, a label moved elsewhere), or None."""
    request = detail.get("requestParameters")
    if not isinstance(request, Mapping):
        return None
    stages = request.get("versionStages")
    if detail.get("eventName") == "PutSecretValue" and isinstance(stages, list) and "AWSCURRENT" not in stages:
        return f"the value was staged at {', '.join(map(str, stages))}, not made current: the rotation tests it"
    stage = request.get("versionStage")
    if detail.get("eventName") == "UpdateSecretVersionStage" and stage != "AWSCURRENT":
        return f"label {stage} moved; AWSCURRENT did not change"
    return None


def _secret_of(detail: Mapping[str, Any]) -> str | None:
    for key in ("requestParameters", "additionalEventData", "responseElements"):
        part = detail.get(key)
        if isinstance(part, Mapping):
            # "aRN": before February 2024 some Secrets Manager events spelt the ARN's key so (Secrets Manager User
            # Guide, "AWS CloudTrail entries for Secrets Manager").
            for field_name in ("secretId", "SecretId", "arn", "ARN", "aRN", "name", "Name"):
                value = part.get(field_name)
                if isinstance(value, str) and value:
                    return value
    return None


def _principal(identity: object) -> str | None:
    if not isinstance(identity, Mapping):
        return None
    for key in ("arn", "invokedBy", "principalId"):
        value = identity.get(key)
        if isinstance(value, str) and value:
            return value
    return None
