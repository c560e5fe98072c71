"""The one way a run's report leaves a function: logged, counted, sent to the report topic, and, in a member account
of an organisation, put on the hub's event bus.

Every function ends a run here (rules, credentials, warm, prune, pull failures, a rejected event), so a report reads,
counts and arrives the same whichever run wrote it; `tools/house.py` holds `sns.publish` to this one call site
(docs/ARCHITECTURE.md, "One way to publish").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pullthrough.aws import events, sns
from pullthrough.env import HubSettings, hub_settings
from pullthrough.errors import AwsError
from pullthrough.observability import log_report, logger, record_hub_report_not_sent, record_report_metrics
from pullthrough.org.event import DETAIL_TYPE, detail_for
from pullthrough.reporting.vocabulary import Kind

if TYPE_CHECKING:
    from pullthrough.reporting.model import Report, SuccessVerbosity


class Notifying(Protocol):
    """What a report's sending reads of the config's `notifications` (the config's section, or a warm run's META)."""

    @property
    def success(self) -> SuccessVerbosity: ...

    @property
    def subject_prefix(self) -> str | None: ...


def publish(
    report: Report,
    topic_arn: str | None,
    notifications: Notifying | None = None,
    *,
    strict: bool = False,
    log_successes: bool = True,
    hub: HubSettings | None = None,
) -> str | None:
    """Log `report`, record its metrics, send it to `topic_arn`; the SNS MessageId, or None when nothing was sent.

    `notifications` is the config's section (success verbosity, subject prefix); without a config, every success is
    listed in full. A report that cannot be sent is logged and the run's outcome stands, unless `strict` (a warm run
    retried until its report is sent: the ledger marks it reported only after this returns). A run of many images
    logs only its troubles item by item (`log_successes=False`); the report itself still lists them all.

    Then, when the environment names the hub's bus (`hub`, else HUB_EVENT_BUS_ARN), the report goes there too
    (`to_hub`).
    """
    log_report(report, successes=log_successes)
    record_report_metrics(report)
    sent = _to_topic(report, topic_arn, notifications, strict=strict)
    to_hub(report, hub if hub is not None else hub_settings())
    return sent


def to_hub(report: Report, hub: HubSettings) -> str | None:
    """Put `report` on the hub's bus as a "Pullthrough Report" event; the event id, or None when not sent.

    A member's own report already went to its topic: a refused event is logged and counted (HubReportsNotSent), never
    raised, and the hub names the member missing for the cycle. The hub's own report (kind org) never goes back.
    """
    if not hub.hub_event_bus_arn or report.kind is Kind.ORG or report.dry_run:
        return None
    detail = detail_for(report, member=hub.member, schedule=hub.warm_schedule)
    try:
        return events.put_to_bus(hub.hub_event_bus_arn, DETAIL_TYPE, detail)
    except AwsError as exc:
        record_hub_report_not_sent()
        logger.error(
            "the report was not sent to the organisation's hub",
            extra={"run_id": report.run_id, "event_bus": hub.hub_event_bus_arn, "error": str(exc)},
        )
        return None


def _to_topic(report: Report, topic_arn: str | None, notifications: Notifying | None, *, strict: bool) -> str | None:
    if not topic_arn:
        logger.warning("no report topic (REPORT_TOPIC_ARN): the report is only logged", extra={"run_id": report.run_id})
        return None
    try:
        return sns.publish(
            report,
            topic_arn,
            success=notifications.success if notifications is not None else "full",
            subject_prefix=notifications.subject_prefix if notifications is not None else None,
        )
    except AwsError as exc:
        if strict:
            raise
        logger.error("the report was not published", extra={"run_id": report.run_id, "error": str(exc)})
        return None
