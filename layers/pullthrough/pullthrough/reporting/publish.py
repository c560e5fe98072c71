"""The one way a run's report leaves a function: logged, counted, and sent to the report topic.

Every function ends a run here (rules, credentials, warm, prune, pull failures, a rejected event), so a report reads,
counts and arrives the same whichever run wrote it; `tools/house.py` holds `sns.publish` to this one call site
(docs/ARCHITECTURE.md, "One way to publish").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pullthrough.aws import sns
from pullthrough.errors import AwsError
from pullthrough.observability import log_report, logger, record_report_metrics

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
) -> str | None:
    """Log `report`, record its metrics, send it to `topic_arn`; the SNS MessageId, or None when nothing was sent.

    `notifications` is the config's section (success verbosity, subject prefix); without a config, every success is
    listed in full. A report that cannot be sent is logged and the run's outcome stands, unless `strict` (a warm run
    retried until its report is sent: the ledger marks it reported only after this returns). A run of many images
    logs only its troubles item by item (`log_successes=False`); the report itself still lists them all.
    """
    log_report(report, successes=log_successes)
    record_report_metrics(report)
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
