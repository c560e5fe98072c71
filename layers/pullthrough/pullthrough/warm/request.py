"""What a warm run was asked for: the event plan_warming got, read into a WarmRequest.

Separate from the planner because it is the run's input contract (a schedule, the "Pullthrough Rules Reconciled"
event, or a manual selection), which the CLI builds directly and the handler reads from an event.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pullthrough.errors import EventError

RECONCILED_DETAIL_TYPE = "Pullthrough Rules Reconciled"


class WarmRequest(BaseModel):
    """What to warm and why: every listed image, the images of some rules, or a manual selection."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    trigger: str
    images: tuple[str, ...] = ()  # manual: only these references
    rules: tuple[str, ...] | None = None  # rules reconciled: only images cached through these prefixes (None: all)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WarmRequest:
        """Read the Scheduler payload, the "Pullthrough Rules Reconciled" event, or a manual `{"images": [...]}`."""
        if not isinstance(event, dict):
            raise EventError(f"plan_warming takes a JSON object, not {type(event).__name__}")
        detail_type = event.get("detail-type")
        if detail_type == RECONCILED_DETAIL_TYPE:
            detail = event.get("detail") or {}
            if not isinstance(detail, dict):
                raise EventError('a "Pullthrough Rules Reconciled" event\'s detail must be an object with "rules"')
            rules = detail.get("rules")
            if rules is not None and (not isinstance(rules, list) or not all(isinstance(r, str) for r in rules)):
                raise EventError('a "Pullthrough Rules Reconciled" event\'s detail.rules must be a list of prefixes')
            run = detail.get("run_id")
            # An empty list means no rule is ready: their images would only fail, so none is planned.
            return cls(
                trigger=f"rules reconciled (run {run})" if run else "rules reconciled",
                rules=tuple(rules) if rules is not None else None,
            )
        if detail_type == "Scheduled Event":
            resources = event.get("resources") or []
            if not isinstance(resources, list):
                raise EventError('a "Scheduled Event"\'s resources must be a list of rule ARNs')
            names = ", ".join(str(arn).rsplit("/", 1)[-1] for arn in resources)
            return cls(trigger=f"EventBridge schedule ({names or 'rule'})")
        if event.get("trigger") == "schedule":
            schedule = str(event.get("schedule_arn") or "schedule").rsplit("/", 1)[-1]
            when = event.get("scheduled_time")
            return cls(trigger=f"EventBridge Scheduler ({schedule}{', ' + str(when) if when else ''})")
        unknown = set(event) - {"images", "trigger"}
        if unknown:
            raise EventError(
                f"plan_warming does not understand the keys {', '.join(sorted(unknown))}; "
                'invoke it with {"images": ["nginx:1.27", ...]} or {} for the whole warm list'
            )
        images = event.get("images") or []
        if not isinstance(images, list) or not all(isinstance(image, str) and image for image in images):
            raise EventError('"images" must be a list of image references, like ["nginx:1.27"]')
        trigger = event.get("trigger")
        return cls(trigger=str(trigger) if trigger else "manual invoke", images=tuple(images))
