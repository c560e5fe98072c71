"""Events a handler cannot take: logged, reported, and answered with a result instead of an exception.

EventBridge and EventBridge Scheduler invoke a function asynchronously and retry an invocation that raised (twice
by default); a malformed event fails the same way every time, so raising only triples the noise and still tells
nobody why. A handler wrapped with `rejects_malformed_events` catches `EventError` (the library's error for an
event of the wrong shape), logs it at ERROR with the reason, publishes a one-item report to the report topic
(where people look), and returns a `Rejection`, so the invocation counts as done and is not retried.

rotate_credentials is wrapped with `raise_again=True`: Secrets Manager must see a step it cannot run fail (it then
marks the rotation failed), so the rejection is logged and reported and the error raised. warm_images is not
wrapped too, for an event that is not an SQS batch at all (`require_sqs_batch`: a hand-made invocation); inside a
batch, a malformed SQS message fails its own record, and the queue's redrive policy moves it to the dead-letter queue
after maxReceiveCount deliveries.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from pullthrough.env import Settings
from pullthrough.errors import EventError, PullthroughError
from pullthrough.observability import logger
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.publish import publish
from pullthrough.reporting.vocabulary import Kind, Outcome

REASON_CODE = "rejected_event"
FIX = (
    "if an EventBridge rule sent it, compare the rule's pattern in template.yaml with what the function takes; if it "
    "was invoked by hand, send one of the sample events in events/<function>/"
)


class Context(Protocol):
    """The parts of the Lambda context a rejection names."""

    @property
    def function_name(self) -> str: ...

    @property
    def log_group_name(self) -> str: ...


Handler = Callable[[Any, Any], Any]


class Rejection(BaseModel):
    """What a wrapped handler returns for an event it cannot take."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    status: Literal["REJECTED"] = "REJECTED"
    run_id: str
    function: str
    event: str  # what the event said it was (source, detail-type, id): never its values
    reason: str
    fix: str = FIX


def describe_event(event: object) -> str:
    """The event as its envelope names it ("detail-type 'X' from aws.s3, id 1"), or its keys; never its values."""
    if not isinstance(event, Mapping):
        return f"a {type(event).__name__}, not a JSON object"
    parts = []
    for key, label in (("detail-type", "detail-type"), ("source", "from"), ("id", "id")):
        value = event.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{label} {value[:100]!r}")
    if parts:
        return ", ".join(parts)
    keys = ", ".join(sorted(str(key)[:40] for key in event)[:10])
    return f"an event with keys {keys}" if keys else "an empty event"


def reject(error: EventError, event: object, *, kind: Kind, context: Context | None = None) -> Rejection:
    """Log the rejection at ERROR, report it on the topic (when the environment names one), and return it."""
    function = context.function_name if context is not None else "pullthrough"
    run_id = f"rejected-{uuid.uuid4().hex[:12]}"
    described = describe_event(event)
    rejection = Rejection(run_id=run_id, function=function, event=described, reason=str(error))
    logger.error(
        f"{function} rejected {described}: {error}",
        extra={"run_id": run_id, "reason_code": REASON_CODE, "event": described, "fix": FIX},
    )
    try:
        _report(rejection, kind, context)
    except (PullthroughError, ValueError) as exc:
        # The rejection stands; a report that could not be sent must not turn it into a retried failure.
        logger.error("the rejection was not reported", extra={"run_id": run_id, "error": str(exc)})
    return rejection


def _report(rejection: Rejection, kind: Kind, context: Context | None) -> None:
    settings = Settings.from_env()
    if not settings.topic_arn or not settings.account_id:
        return
    report = Report(
        kind=kind,
        stack=settings.stack_name,
        region=settings.region,
        account=settings.account_id,
        run_id=rejection.run_id,
        trigger=f"{rejection.function} was sent {rejection.event}",
        started=datetime.now(UTC),
        items=(
            ReportItem(
                subject=f"event ({rejection.event})",
                outcome=Outcome.SKIPPED,
                reason=f"rejected: {rejection.reason}",
                fix=rejection.fix,
                reason_code=REASON_CODE,
            ),
        ),
        log_groups=(context.log_group_name,) if context is not None else (),
    )
    publish(report, settings.topic_arn)


def require_sqs_batch(event: object, function: str = "warm_images") -> None:
    """EventError unless `event` is what an SQS event source mapping sends: `Records`, each from aws:sqs.

    Powertools' batch processor would otherwise answer a hand-made event with its own generic error.
    """
    fix = "send it through the warm queue (plan_warming does), or invoke with events/warm_images/batch.json"
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        raise EventError(
            f"{function} takes an SQS batch (a non-empty Records list), not {describe_event(event)}; {fix}"
        )
    # SNS spells it EventSource; anything else is named by what it is.
    sources = {
        str(r.get("eventSource") or r.get("EventSource") or "an unnamed source")
        if isinstance(r, Mapping)
        else f"a {type(r).__name__}"
        for r in records
    }
    if sources != {"aws:sqs"}:
        others = ", ".join(sorted(sources - {"aws:sqs"}))
        raise EventError(f"{function} takes SQS records only (eventSource aws:sqs), not records from {others}; {fix}")


def rejects_malformed_events(kind: Kind, *, raise_again: bool = False) -> Callable[[Handler], Handler]:
    """Decorate a handler: an `EventError` becomes a logged, reported `Rejection` it returns (or, with
    `raise_again`, logs and reports, then raises)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            except EventError as error:
                rejection = reject(error, event, kind=kind, context=context)
                if raise_again:
                    raise
                return rejection.model_dump(mode="json")

        return wrapper

    return decorate


__all__ = [
    "FIX",
    "REASON_CODE",
    "Rejection",
    "describe_event",
    "reject",
    "rejects_malformed_events",
    "require_sqs_batch",
]
