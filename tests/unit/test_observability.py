"""Logger, tracer and metrics (pullthrough/observability.py): what a report sends to CloudWatch and the logs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pullthrough import observability
from pullthrough.observability import (
    METRIC_NAMES,
    NAMESPACE,
    MetricName,
    breakdown_metrics,
    log_report,
    logger,
    metrics,
    record_report_metrics,
    report_metrics,
)
from pullthrough.reporting.items import Details, ReportItem, Totals
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def make_report(kind: Kind, *items: ReportItem, **fields: object) -> Report:
    envelope: dict[str, object] = {
        "kind": kind,
        "stack": "prod",
        "region": "us-east-1",
        "account": "123456789012",
        "run_id": "run-42",
        "trigger": "schedule",
        "started": T0,
        "finished": T0 + timedelta(seconds=30),
        "items": items,
    }
    return Report.model_validate(envelope | fields)


def image(outcome: Outcome, rule: str = "docker-hub", **details: object) -> ReportItem:
    return ReportItem(
        subject=f"{rule}/image:{outcome.value}",
        outcome=outcome,
        details=Details.model_validate({"rule": rule, "upstream": rule} | details),
    )


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    # Powertools keeps the metric set at class level: start and end every test with none.
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    """EMF documents printed to stdout since the last call."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_metric_names_are_the_published_list() -> None:
    assert METRIC_NAMES == (
        "ImagesWarmed",
        "ImagesAlreadyCached",
        "ImagesRefreshed",
        "ImagesDeferred",
        "ImagesFailed",
        "BytesMoved",
        "UpstreamPullsSpent",
        "UpstreamPullsRemaining",
        "RulesValid",
        "RulesInvalid",
        "RulesChanged",
        "CredentialsValid",
        "CredentialsInvalid",
        "RotationSucceeded",
        "RotationFailed",
        "PullFailures",
        "ImagesPruned",
        "ImagesPruneFailed",
        "BytesFreed",
        "OrgMembersReported",
        "OrgMembersMissing",
        "OrgImagesFailed",
        "HubReportsNotSent",
    )
    assert NAMESPACE == "Pullthrough"


def test_warm_metrics_count_every_outcome_including_unlisted_ones() -> None:
    # Given a warm run: 2 warmed (bytes, pulls), 1 failed, and 40 already cached that the ledger only counted
    report = make_report(
        Kind.WARM,
        image(Outcome.WARMED, bytes_moved=1000, pulls_spent=2, pulls_remaining=98),
        image(Outcome.WARMED, bytes_moved=500, pulls_spent=1, pulls_remaining=97),
        image(Outcome.FAILED),
        unlisted={Outcome.ALREADY_CACHED: 40},
    )
    # Then the run-wide values stand for all 43 images
    assert report_metrics(report) == {
        MetricName.IMAGES_WARMED: 2,
        MetricName.IMAGES_ALREADY_CACHED: 40,
        MetricName.IMAGES_REFRESHED: 0,
        MetricName.IMAGES_DEFERRED: 0,
        MetricName.IMAGES_FAILED: 1,
        MetricName.BYTES_MOVED: 1500,
        MetricName.UPSTREAM_PULLS_SPENT: 3,
        MetricName.UPSTREAM_PULLS_REMAINING: 97,
    }


def test_ledger_totals_win_over_item_details() -> None:
    report = make_report(Kind.WARM, unlisted={Outcome.WARMED: 9}, totals=Totals(bytes_moved=7, pulls_spent=9))
    values = report_metrics(report)
    assert values[MetricName.BYTES_MOVED] == 7
    assert values[MetricName.UPSTREAM_PULLS_SPENT] == 9
    assert MetricName.UPSTREAM_PULLS_REMAINING not in values  # unknown is not zero


def test_rules_metrics_count_validity_and_changes() -> None:
    report = make_report(
        Kind.RULES,
        image(Outcome.CREATED, rule="a", valid=True),
        image(Outcome.UPDATED, rule="b", valid=True),
        image(Outcome.INVALID, rule="c"),
        image(Outcome.UNCHANGED, rule="d"),
        image(Outcome.DELETED, rule="e"),
    )
    assert report_metrics(report) == {
        MetricName.RULES_VALID: 2,
        MetricName.RULES_INVALID: 1,
        MetricName.RULES_CHANGED: 3,
    }


def test_credentials_metrics_count_validity_and_rotations() -> None:
    report = make_report(
        Kind.CREDENTIALS,
        image(Outcome.VALID, pulls_remaining=150),
        image(Outcome.ROTATION_FAILED, valid=False),
        image(Outcome.ROTATED, rule="ghcr", valid=True),
    )
    assert report_metrics(report) == {
        MetricName.CREDENTIALS_VALID: 2,
        MetricName.CREDENTIALS_INVALID: 1,
        MetricName.ROTATION_SUCCEEDED: 1,
        MetricName.ROTATION_FAILED: 1,
        MetricName.UPSTREAM_PULLS_REMAINING: 150,
    }


def test_breakdown_is_per_rule_and_upstream() -> None:
    report = make_report(
        Kind.WARM,
        image(Outcome.WARMED, rule="docker-hub", bytes_moved=10),
        image(Outcome.FAILED, rule="docker-hub"),
        image(Outcome.ALREADY_CACHED, rule="quay"),
        ReportItem(subject="no rule", outcome=Outcome.FAILED),
    )
    groups = breakdown_metrics(report)
    assert set(groups) == {("docker-hub", "docker-hub"), ("quay", "quay")}
    hub = groups[("docker-hub", "docker-hub")]
    assert hub[MetricName.IMAGES_WARMED] == 1
    assert hub[MetricName.IMAGES_FAILED] == 1
    assert hub[MetricName.BYTES_MOVED] == 10
    assert groups[("quay", "quay")][MetricName.IMAGES_ALREADY_CACHED] == 1


def test_record_adds_run_wide_metrics_and_prints_the_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a warm report with two rules
    report = make_report(
        Kind.WARM, image(Outcome.WARMED, rule="docker-hub", bytes_moved=10), image(Outcome.FAILED, rule="quay")
    )
    # When its metrics are recorded
    record_report_metrics(report)
    # Then the breakdown is one EMF document per rule, with Rule and Upstream dimensions
    documents = emitted(capsys)
    assert sorted(doc["Rule"] for doc in documents) == ["docker-hub", "quay"]  # type: ignore[type-var]
    for doc in documents:
        directive = doc["_aws"]["CloudWatchMetrics"][0]  # type: ignore[index]
        assert directive["Namespace"] == NAMESPACE
        assert sorted(directive["Dimensions"][0]) == ["Rule", "Upstream", "service"]
    hub = next(doc for doc in documents if doc["Rule"] == "docker-hub")
    assert _single(hub["ImagesWarmed"]) == 1.0
    assert _single(hub["BytesMoved"]) == 10.0
    # and the run-wide metrics wait in the Metrics singleton, with only the service dimension, for log_metrics
    run_wide = metrics.serialize_metric_set()
    assert _single(run_wide["ImagesWarmed"]) == 1.0
    assert _single(run_wide["ImagesFailed"]) == 1.0
    assert run_wide["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    units = {m["Name"]: m["Unit"] for m in run_wide["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["BytesMoved"] == "Bytes"
    assert units["ImagesFailed"] == "Count"


def _single(value: object) -> object:
    # EMF allows a list of values per metric; Powertools keeps one until it flushes.
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_prune_metrics_count_deletions_refusals_and_bytes_freed() -> None:
    # Given a prune run: two images deleted (3 KiB in all), one ECR refused, one kept
    report = make_report(
        Kind.PRUNE,
        image(Outcome.PRUNED, size=1024),
        image(Outcome.PRUNED, size=2048),
        image(Outcome.FAILED),
        image(Outcome.KEPT, size=4096),
    )
    # Then its metrics say so, and what was kept frees nothing
    assert report_metrics(report) == {
        MetricName.IMAGES_PRUNED: 2,
        MetricName.IMAGES_PRUNE_FAILED: 1,
        MetricName.BYTES_FREED: 3072,
    }


def test_a_dry_run_records_no_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    record_report_metrics(make_report(Kind.RULES, image(Outcome.CREATED), dry_run=True))
    assert emitted(capsys) == []
    assert metrics.metric_set == {}


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the Powertools logger writes (its handler kept the stdout of import time, out of capsys' reach)."""
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


def test_log_report_writes_the_summary_and_every_item_under_the_run_id(log_output: io.StringIO) -> None:
    # Given a run with a success and a failure
    report = make_report(
        Kind.WARM,
        image(Outcome.WARMED),
        ReportItem(subject="docker.io/library/nginx:9", outcome=Outcome.FAILED, reason="unknown tag"),
    )
    # When it is logged
    log_report(report)
    # Then there is a summary line and one line per item, each with the run id the report's query filters on
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["ERROR", "INFO", "ERROR"]
    assert all(line["run_id"] == "run-42" for line in lines)
    assert lines[0]["report"]["counts"] == {"failed": 1, "warmed": 1}
    assert lines[2]["message"] == "docker.io/library/nginx:9: failed: unknown tag"
    assert lines[2]["outcome"] == "failed"


def test_tracer_is_created_on_first_use_only() -> None:
    # Given a fresh interpreter: importing the module does not import the X-Ray SDK (about 200 ms)
    code = (
        "import sys, pullthrough.observability as o\n"
        "print('aws_xray_sdk.core' in sys.modules)\n"
        "t = o.tracer\n"
        "print('aws_xray_sdk.core' in sys.modules, t is o.tracer, type(t).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "True", "Tracer"]


def test_unknown_module_attributes_still_raise() -> None:
    with pytest.raises(AttributeError, match="no attribute 'tracers'"):
        observability.tracers  # noqa: B018


def test_an_org_report_counts_members_reported_missing_and_their_failures() -> None:
    items = [ReportItem(subject=f"m{i}", outcome=o) for i, o in enumerate([Outcome.REPORTED] * 3 + [Outcome.MISSING])]
    items.append(ReportItem(subject="444455556666/eu-west-1 nginx:1", outcome=Outcome.FAILED))
    report = Report(
        kind=Kind.ORG,
        stack="org",
        region="us-east-1",
        account="111122223333",
        run_id="org-1",
        trigger="t",
        started=datetime(2026, 12, 7, tzinfo=UTC),
        items=tuple(items),
    )
    assert report_metrics(report) == {
        MetricName.ORG_MEMBERS_REPORTED: 3,
        MetricName.ORG_MEMBERS_MISSING: 1,
        MetricName.ORG_IMAGES_FAILED: 1,
    }
