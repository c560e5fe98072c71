"""The "Pullthrough Report" event a member puts on the hub's bus after its own SNS report (docs/CONTRACTS.md):

    source "pullthrough", detail-type "Pullthrough Report",
    detail {"account", "region", "member", "kind", "run_id", "cycle", "report": <the report's JSON>, "trimmed"?}

Both sides use this module: `detail_for` (the member: reporting/publish.py) and `HubEvent.from_envelope` (the hub:
org/gather.py), so the shape is declared once.

Size: "The maximum size for a PutEvents event entry is 256 KB. Entry size is calculated including the event and any
necessary characters and keys of the JSON representation of the event" (EventBridge API Reference, PutEvents; the
User Guide's "Calculating PutEvents event entry size" counts Source, DetailType, Detail and Resources in UTF-8
bytes). A detail larger than `MAX_DETAIL_BYTES` (256 KB less a margin for that JSON) keeps the failures and counts
the rest (the report's `unlisted`), then, if still too large, keeps as many failures as fit (fewer in proportion to
the excess, try by try); `trimmed` says so, and the member's own SNS report and logs keep every item.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pullthrough.errors import EventError
from pullthrough.org.cycles import cycle_id, cycle_of, parse_cycle
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome, Severity

SOURCE = "pullthrough"
DETAIL_TYPE = "Pullthrough Report"
MAX_ENTRY_BYTES = 256 * 1024
# Source, DetailType and the JSON keys and characters EventBridge adds around the entry stay well under this.
MAX_DETAIL_BYTES = MAX_ENTRY_BYTES - 4 * 1024
TRIMMED_NOTE = (
    "trimmed to fit EventBridge's 256 KB event: {kept} item(s) kept (failures first), {dropped} counted only; "
    "the member's own report (its SNS topic) and its logs under run {run_id} list every item"
)


class HubEvent(BaseModel):
    """The detail of one member's report event."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    member: str = Field("", max_length=64)
    kind: Kind
    run_id: str = Field(min_length=1, max_length=128)
    cycle: str
    report: Report
    trimmed: str | None = None

    def cycle_start(self) -> datetime:
        return parse_cycle(self.cycle)

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any], hub_account: str | None = None) -> Self:
        """Read an EventBridge event (as the SQS queue receives it); EventError names what is wrong.

        A cross-account event carries the sending account in the envelope's `account` ("Sending and receiving events
        between AWS accounts in Amazon EventBridge"): a detail naming another account is refused, so a member cannot
        report for someone else. Only the hub itself (`hub_account`) may report a member's account and region: its
        functions warm members' regions through their roles.
        """
        if envelope.get("source") != SOURCE or envelope.get("detail-type") != DETAIL_TYPE:
            raise EventError(
                f"not a Pullthrough report event (source {envelope.get('source')!r}, detail-type "
                f"{envelope.get('detail-type')!r}); the hub's rule sends only source {SOURCE!r}, {DETAIL_TYPE!r}"
            )
        try:
            event = cls.model_validate(envelope.get("detail") or {})
            event.cycle_start()
        except (ValidationError, ValueError) as exc:
            raise EventError(f"the report event's detail is not readable: {_first_error(exc)}") from None
        sender = envelope.get("account")
        if sender and sender not in (event.account, hub_account):
            raise EventError(
                f"account {sender} sent a report for account {event.account}; a member reports for itself only"
            )
        return event


def detail_for(report: Report, *, member: str, schedule: str) -> str:
    """The detail of `report`'s event as JSON, trimmed when it would not fit in one PutEvents entry."""
    from_run = {
        "account": report.account,
        "region": report.region,
        "member": member,
        "kind": report.kind.value,
        "run_id": report.run_id,
        "cycle": cycle_id(cycle_of(report.started, schedule)),
    }
    detail = _dump(from_run, report, None)
    if _size(detail) <= MAX_DETAIL_BYTES:
        return detail
    failures = [item for item in report.items if item.severity is Severity.FAILURE]
    keep = len(failures)
    while True:
        kept = failures[:keep]
        trimmed = _trimmed(report, kept)
        note = TRIMMED_NOTE.format(kept=len(kept), dropped=len(report.items) - len(kept), run_id=report.run_id)
        detail = _dump(from_run, trimmed, note)
        size = _size(detail)
        if size <= MAX_DETAIL_BYTES or keep == 0:
            return detail
        # Items are alike in size: scale the number kept by how far over the limit this try was (at least one less).
        keep = min(keep - 1, keep * MAX_DETAIL_BYTES // size)


def _trimmed(report: Report, kept: list[ReportItem]) -> Report:
    """The report with only `kept` listed; every other item counted in `unlisted` by its outcome."""
    unlisted: dict[Outcome, int] = dict(report.unlisted)
    kept_ids = {id(item) for item in kept}
    for item in report.items:
        if id(item) not in kept_ids:
            unlisted[item.outcome] = unlisted.get(item.outcome, 0) + 1
    data = report.model_dump(mode="json", exclude={"items", "unlisted"})
    # status and totals stay the whole run's: they describe every item, listed or not
    return Report.model_validate({**data, "items": [i.model_dump(mode="json") for i in kept], "unlisted": unlisted})


def _dump(fields: dict[str, str], report: Report, trimmed: str | None) -> str:
    detail: dict[str, Any] = {**fields, "report": json.loads(report.to_json())}
    if trimmed:
        detail["trimmed"] = trimmed
    return json.dumps(detail, separators=(",", ":"))


def _size(detail: str) -> int:
    return len(detail.encode("utf-8")) + len(SOURCE) + len(DETAIL_TYPE)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc']) or 'detail'}: {err['msg']}"
    return str(exc)
