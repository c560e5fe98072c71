"""The library's logger, tracer and metrics, created once; and what a report sends to the logs and to CloudWatch.

Handlers decorate with `@logger.inject_lambda_context`, `@tracer.capture_lambda_handler` and
`@metrics.log_metrics(capture_cold_start_metric=True)`, and call `logger.append_keys(run_id=...)` as soon as the
run id is known: the report's Logs Insights query filters on that key.

Import cost (measured with `python -X importtime` on this machine, Python 3.11): importing this module costs about
40 ms (Powertools' Logger and Metrics; importing `aws_lambda_powertools` imports its Tracer class too, which loads the
X-Ray SDK only when a Tracer is made). Creating a Powertools Tracer imports aws_xray_sdk and patches botocore, about
200 ms more even with boto3 already loaded (about 350 ms without it). So `tracer` is created on first use: a handler
that decorates with it pays at cold start (where tracing needs it); tests, the CLI and modules that only log do not.

Secrets: `pullthrough.redaction` masks them in every log record of the process; its formatter writes this logger's
lines, and importing this module installs it.

Metrics: namespace POWERTOOLS_METRICS_NAMESPACE (default "Pullthrough"); run-wide metrics carry only Powertools'
`service` dimension (POWERTOOLS_SERVICE_NAME, default "pullthrough"), so alarms and the dashboard can name them
exactly; a breakdown per rule and upstream carries `service`, `Rule` and `Upstream` as well.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from pullthrough import redaction
from pullthrough.reporting.vocabulary import CHANGE_OUTCOMES, Kind, Outcome, Severity, Status

if TYPE_CHECKING:  # annotations only: a handler that never reports does not import the report's models
    from pullthrough.reporting.items import ReportItem
    from pullthrough.reporting.model import Report

# Powertools reads these itself too; read here only to give them Pullthrough's defaults.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "pullthrough"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Pullthrough"

SERVICE_DIMENSION = "service"
RULE_DIMENSION = "Rule"  # the rule's ECR repository prefix
UPSTREAM_DIMENSION = "Upstream"  # the upstream's catalogue key

# Every function and the CLI log through this module: importing it puts the redaction in place for every logger of
# the process (botocore's, urllib3's, Powertools', the library's), at whatever level they log (pullthrough.redaction).
logger = Logger(service=SERVICE, logger_formatter=redaction.RedactingFormatter())
redaction.install(SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class MetricName(StrEnum):
    """Every metric Pullthrough emits besides Powertools' ColdStart; the template's alarms and dashboard use these."""

    IMAGES_WARMED = "ImagesWarmed"
    IMAGES_ALREADY_CACHED = "ImagesAlreadyCached"
    IMAGES_REFRESHED = "ImagesRefreshed"
    IMAGES_DEFERRED = "ImagesDeferred"
    IMAGES_FAILED = "ImagesFailed"
    BYTES_MOVED = "BytesMoved"
    UPSTREAM_PULLS_SPENT = "UpstreamPullsSpent"
    UPSTREAM_PULLS_REMAINING = "UpstreamPullsRemaining"
    RULES_VALID = "RulesValid"
    RULES_INVALID = "RulesInvalid"
    RULES_CHANGED = "RulesChanged"
    CREDENTIALS_VALID = "CredentialsValid"
    CREDENTIALS_INVALID = "CredentialsInvalid"
    ROTATION_SUCCEEDED = "RotationSucceeded"
    ROTATION_FAILED = "RotationFailed"
    PULL_FAILURES = "PullFailures"  # images whose pull failed in ECR (its action events), per report
    IMAGES_PRUNED = "ImagesPruned"  # cached images prune deleted (a dry run emits nothing)
    IMAGES_PRUNE_FAILED = "ImagesPruneFailed"  # deletions ECR refused
    BYTES_FREED = "BytesFreed"  # the sizes DescribeImages gave for what prune deleted
    # the hub's report of a warm cycle across the organisation (pullthrough/org/)
    ORG_MEMBERS_REPORTED = "OrgMembersReported"  # member accounts x regions whose warm report reached the hub
    ORG_MEMBERS_MISSING = "OrgMembersMissing"  # member accounts x regions with no report by the cycle's deadline
    ORG_IMAGES_FAILED = "OrgImagesFailed"  # images the members' warm runs of the cycle failed
    # a member's report that could not be put on the hub's event bus (its own SNS report went out)
    HUB_REPORTS_NOT_SENT = "HubReportsNotSent"


METRIC_NAMES: tuple[str, ...] = tuple(name.value for name in MetricName)

_UNITS = {MetricName.BYTES_MOVED: MetricUnit.Bytes, MetricName.BYTES_FREED: MetricUnit.Bytes}

_IMAGE_OUTCOMES = {
    MetricName.IMAGES_WARMED: Outcome.WARMED,
    MetricName.IMAGES_ALREADY_CACHED: Outcome.ALREADY_CACHED,
    MetricName.IMAGES_REFRESHED: Outcome.REFRESHED,
    MetricName.IMAGES_DEFERRED: Outcome.DEFERRED,
    MetricName.IMAGES_FAILED: Outcome.FAILED,
}


def __getattr__(name: str) -> Tracer:
    # PEP 562: `tracer` is built on first access (see the module docstring for what it costs).
    if name == "tracer":
        return _tracer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _tracer() -> Tracer:
    # botocore for the control plane, httplib for the registry client (urllib3 runs on http.client).
    return Tracer(service=SERVICE, patch_modules=("botocore", "httplib"))


# --- metrics -------------------------------------------------------------------------------------------------------


def report_metrics(report: Report) -> dict[MetricName, int]:
    """The run-wide metric values a report stands for (pure: nothing is emitted)."""
    counts = report.counts
    values = _kind_values(report.kind, report.items, counts)
    if report.kind is Kind.WARM:
        values[MetricName.BYTES_MOVED] = report.totals.bytes_moved
        values[MetricName.UPSTREAM_PULLS_SPENT] = report.totals.pulls_spent
    if report.kind is Kind.PRUNE:
        values[MetricName.BYTES_FREED] = report.totals.bytes_freed or 0
    if report.totals.pulls_remaining:
        values[MetricName.UPSTREAM_PULLS_REMAINING] = min(report.totals.pulls_remaining.values())
    return values


def breakdown_metrics(report: Report) -> dict[tuple[str | None, str | None], dict[MetricName, int]]:
    """Metric values per (rule, upstream) of the listed items that name one (pure: nothing is emitted)."""
    groups: dict[tuple[str | None, str | None], list[ReportItem]] = {}
    for item in report.items:
        key = (item.details.rule, item.details.upstream)
        if key != (None, None):
            groups.setdefault(key, []).append(item)
    result = {}
    for key, items in groups.items():
        counts = Counter(item.outcome for item in items)
        values = _kind_values(report.kind, items, counts)
        if report.kind is Kind.WARM:
            values[MetricName.BYTES_MOVED] = sum(item.details.bytes_moved or 0 for item in items)
            values[MetricName.UPSTREAM_PULLS_SPENT] = sum(item.details.pulls_spent or 0 for item in items)
        remaining = [item.details.pulls_remaining for item in items if item.details.pulls_remaining is not None]
        if remaining:
            values[MetricName.UPSTREAM_PULLS_REMAINING] = min(remaining)
        result[key] = values
    return result


def record_report_metrics(report: Report) -> None:
    """Add the report's run-wide metrics to `metrics` (flushed by `@metrics.log_metrics`) and emit the breakdown.

    A dry run records nothing: its outcomes are what would have happened, and alarms must not fire on them.
    """
    if report.dry_run:
        return
    for name, value in report_metrics(report).items():
        metrics.add_metric(name=name.value, unit=_UNITS.get(name, MetricUnit.Count), value=value)
    for (rule, upstream), values in breakdown_metrics(report).items():
        # Ephemeral: its dimensions must not leak into the run-wide metrics that share the Metrics singleton.
        group = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        if rule:
            group.add_dimension(name=RULE_DIMENSION, value=rule)
        if upstream:
            group.add_dimension(name=UPSTREAM_DIMENSION, value=upstream)
        for name, value in values.items():
            group.add_metric(name=name.value, unit=_UNITS.get(name, MetricUnit.Count), value=value)
        group.flush_metrics()


def _kind_values(kind: Kind, items: Iterable[ReportItem], counts: dict[Outcome, int]) -> dict[MetricName, int]:
    if kind is Kind.WARM:
        return {name: counts.get(outcome, 0) for name, outcome in _IMAGE_OUTCOMES.items()}
    if kind is Kind.PULLS:
        return {MetricName.PULL_FAILURES: counts.get(Outcome.FAILED, 0)}
    if kind is Kind.ORG:
        return {
            MetricName.ORG_MEMBERS_REPORTED: counts.get(Outcome.REPORTED, 0),
            MetricName.ORG_MEMBERS_MISSING: counts.get(Outcome.MISSING, 0),
            MetricName.ORG_IMAGES_FAILED: counts.get(Outcome.FAILED, 0),
        }
    if kind is Kind.PRUNE:
        return {
            MetricName.IMAGES_PRUNED: counts.get(Outcome.PRUNED, 0),
            MetricName.IMAGES_PRUNE_FAILED: counts.get(Outcome.FAILED, 0),
        }
    valid, invalid = _validity(items, counts)
    if kind is Kind.RULES:
        return {
            MetricName.RULES_VALID: valid,
            MetricName.RULES_INVALID: invalid,
            MetricName.RULES_CHANGED: sum(counts.get(outcome, 0) for outcome in CHANGE_OUTCOMES),
        }
    return {
        MetricName.CREDENTIALS_VALID: valid,
        MetricName.CREDENTIALS_INVALID: invalid,
        MetricName.ROTATION_SUCCEEDED: counts.get(Outcome.ROTATED, 0),
        MetricName.ROTATION_FAILED: counts.get(Outcome.ROTATION_FAILED, 0),
    }


def record_hub_report_not_sent() -> None:
    """Count a member's report the hub's event bus did not take (alarm: the hub names the member missing too)."""
    metrics.add_metric(name=MetricName.HUB_REPORTS_NOT_SENT.value, unit=MetricUnit.Count, value=1)


def _validity(items: Iterable[ReportItem], counts: dict[Outcome, int]) -> tuple[int, int]:
    """Valid and invalid subjects: outcome valid/invalid (listed or only counted), or a change with details.valid."""
    valid, invalid = counts.get(Outcome.VALID, 0), counts.get(Outcome.INVALID, 0)
    for item in items:
        if item.outcome in (Outcome.VALID, Outcome.INVALID):
            continue
        if item.details.valid is True:
            valid += 1
        elif item.details.valid is False:
            invalid += 1
    return valid, invalid


# --- logs ----------------------------------------------------------------------------------------------------------


def log_report(report: Report, *, successes: bool = True) -> None:
    """One line for the run (its summary), then one per listed item: the full detail under the run id."""
    by_status = {Status.OK: logger.info, Status.WARNING: logger.warning, Status.FAILED: logger.error}
    by_severity = {Severity.OK: logger.info, Severity.WARNING: logger.warning, Severity.FAILURE: logger.error}
    by_status[report.status](report.headline(), extra=report.to_log())
    for item in report.items:
        if item.severity is Severity.OK and not successes:
            continue
        line = f"{item.subject}: {item.outcome.label}" + (f": {item.reason}" if item.reason else "")
        by_severity[item.severity](line, extra={"run_id": report.run_id, "kind": report.kind.value} | item.to_log())
