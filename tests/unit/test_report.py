"""The report model and its rendering for SNS (pullthrough/reporting/: model.py, render.py, links.py, facts.py).

Golden files: tests/unit/golden/<case>.txt hold the subject, the attributes and the body of each sample report
exactly as a subscriber receives them. After a deliberate change to the rendering, regenerate them with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_report.py

and review the diff (`git diff tests/unit/golden`) before committing: the files are what users will read.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from pullthrough.reporting.items import Details, ReportItem, Totals
from pullthrough.reporting.links import (
    console_repository_url,
    console_secret_url,
    logs_insights_query,
    logs_insights_url,
)
from pullthrough.reporting.model import Report
from pullthrough.reporting.render import JSON_BEGIN, JSON_END, MAX_MESSAGE_BYTES, MAX_SUBJECT_CHARS, SUCCESS_LIST_LIMIT
from pullthrough.reporting.vocabulary import Kind, Outcome, Severity, Status

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
HUB_SECRET = "ecr-pullthroughcache/docker-hub"


def make_report(**fields: object) -> Report:
    """A report with the usual envelope; `fields` override or add."""
    envelope: dict[str, object] = {
        "kind": Kind.WARM,
        "stack": "prod",
        "region": "us-east-1",
        "account": ACCOUNT,
        "run_id": "run-0001",
        "trigger": "schedule",
        "started": T0,
        "finished": T0 + timedelta(minutes=4, seconds=12),
    }
    return Report.model_validate(envelope | fields)


def failed_image(index: int, reason_code: str = "not_found") -> ReportItem:
    return ReportItem(
        subject=f"docker.io/example/service-{index:05d}:1.{index}",
        outcome=Outcome.FAILED,
        reason=f"the upstream has no tag 1.{index} in example/service-{index:05d} (HTTP 404 from registry-1.docker.io)",
        fix="check the tag upstream, or remove it from warm.images in config/pullthrough.yaml",
        reason_code=reason_code,
        details=Details(rule="docker-hub", upstream="docker-hub", repository=f"docker-hub/example/service-{index:05d}"),
    )


# --- sample reports, one per kind (the golden cases) ---------------------------------------------------------------


def rules_report() -> Report:
    created_arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ecr-pullthroughcache/ghcr-AbCdEf"
    return make_report(
        kind=Kind.RULES,
        run_id="8d7c1f0e-5b1a-4a53-9d3e-2f6a0c9b7e11",
        trigger=f"DeletePullThroughCacheRule by arn:aws:iam::{ACCOUNT}:user/alice at 2026-11-23T09:58:41Z",
        finished=T0 + timedelta(seconds=6.4),
        log_groups=("/aws/lambda/pullthrough-prod-ReconcileRules",),
        items=(
            ReportItem(
                subject="rule docker-hub",
                outcome=Outcome.CREATED,
                reason="recreated: the rule was deleted outside Pullthrough",
                details=Details(rule="docker-hub", upstream="docker-hub", secret=HUB_SECRET, valid=True),
            ),
            ReportItem(
                subject="rule ghcr",
                outcome=Outcome.UPDATED,
                details=Details(
                    rule="ghcr",
                    upstream="github-container-registry",
                    valid=True,
                    changes=(f"credentialArn -> {created_arn}",),
                ),
            ),
            ReportItem(subject="rule quay", outcome=Outcome.UNCHANGED, details=Details(rule="quay", upstream="quay")),
            ReportItem(
                subject="rule k8s",
                outcome=Outcome.UNCHANGED,
                details=Details(rule="k8s", upstream="kubernetes"),
            ),
            ReportItem(
                subject="rule gitlab",
                outcome=Outcome.SKIPPED,
                reason=f"secret ecr-pullthroughcache/gitlab does not exist in account {ACCOUNT}, region us-east-1",
                fix=(
                    "create it, then the next reconcile creates the rule: aws secretsmanager create-secret "
                    "--name ecr-pullthroughcache/gitlab --region us-east-1 "
                    '--secret-string \'{"username":"<user>","accessToken":"<token>"}\''
                ),
                reason_code="secret_missing",
                details=Details(rule="gitlab", upstream="gitlab-container-registry"),
            ),
            ReportItem(
                subject="rule legacy-hub",
                outcome=Outcome.NOT_OWNED,
                reason="created outside Pullthrough and not in the config: left alone",
                details=Details(rule="legacy-hub", upstream="docker-hub"),
            ),
        ),
    )


def credentials_report() -> Report:
    return make_report(
        kind=Kind.CREDENTIALS,
        run_id="rotation-3f2a9c",
        trigger=f"Secrets Manager rotation of {HUB_SECRET} (testSecret)",
        finished=T0 + timedelta(seconds=2.3),
        log_groups=("/aws/lambda/pullthrough-prod-RotateCredentials",),
        items=(
            ReportItem(
                subject=f"secret {HUB_SECRET} (AWSPENDING)",
                outcome=Outcome.ROTATION_FAILED,
                reason="Docker Hub refused the pending token for user pullthroughbot (HTTP 401 from auth.docker.io)",
                fix=(
                    "nothing broke: AWSCURRENT still holds the previous, working token. Create a new access token "
                    "on Docker Hub, stage it with `pullthrough credentials set docker-hub`, and rotate again."
                ),
                reason_code="auth",
                details=Details(secret=HUB_SECRET, upstream="docker-hub", valid=False),
            ),
            ReportItem(
                subject=f"secret {HUB_SECRET} (AWSCURRENT)",
                outcome=Outcome.VALID,
                details=Details(
                    secret=HUB_SECRET,
                    upstream="docker-hub",
                    valid=True,
                    pulls_remaining=187,
                    expires=datetime(2027, 1, 31, tzinfo=UTC),
                ),
            ),
        ),
    )


def warm_success_report() -> Report:
    index_digest = "sha256:" + "1f" * 32
    return make_report(
        run_id="warm-2026-11-23T10-00-00Z",
        trigger="EventBridge Scheduler (rate(6 hours))",
        log_groups=("/aws/lambda/pullthrough-prod-PlanWarming", "/aws/lambda/pullthrough-prod-WarmImages"),
        notes=(
            "ECR re-checks a tag upstream at most once a day on its own; Pullthrough cannot make it sooner, so a "
            "moved tag is reported as refreshed once ECR has caught up.",
        ),
        items=(
            ReportItem(
                subject="docker.io/olakego/source-mysql:v0.1.8",
                outcome=Outcome.WARMED,
                details=Details(
                    rule="docker-hub",
                    upstream="docker-hub",
                    repository="docker-hub/olakego/source-mysql",
                    digest=index_digest,
                    platforms=("linux/amd64", "linux/arm64"),
                    size=187_654_321,
                    bytes_moved=187_654_321,
                    pulls_spent=3,
                    pulls_remaining=194,
                    seconds=41.7,
                ),
            ),
            ReportItem(
                subject="docker.io/olakego/source-postgres:v0.1.8",
                outcome=Outcome.WARMED,
                details=Details(
                    rule="docker-hub",
                    upstream="docker-hub",
                    repository="docker-hub/olakego/source-postgres",
                    digest="sha256:" + "2e" * 32,
                    platforms=("linux/amd64",),
                    size=98_000_000,
                    bytes_moved=12_582_912,
                    pulls_spent=1,
                    pulls_remaining=193,
                    seconds=9.2,
                ),
            ),
            ReportItem(
                subject="ghcr.io/datazip-inc/olake-ui:v0.2.0",
                outcome=Outcome.ALREADY_CACHED,
                details=Details(
                    rule="ghcr",
                    upstream="github-container-registry",
                    repository="ghcr/datazip-inc/olake-ui",
                    digest="sha256:" + "3d" * 32,
                ),
            ),
            ReportItem(
                subject="quay.io/prometheus/node-exporter:v1.8.2",
                outcome=Outcome.ALREADY_CACHED,
                details=Details(
                    rule="quay",
                    upstream="quay",
                    repository="quay/prometheus/node-exporter",
                    digest="sha256:" + "4c" * 32,
                ),
            ),
            ReportItem(
                subject="docker.io/library/postgres:16",
                outcome=Outcome.REFRESHED,
                reason="the upstream tag moved; ECR now serves the new digest",
                details=Details(
                    rule="docker-hub",
                    upstream="docker-hub",
                    repository="docker-hub/library/postgres",
                    digest="sha256:" + "5b" * 32,
                    previous_digest="sha256:" + "6a" * 32,
                    platforms=("linux/amd64", "linux/arm64"),
                    pulls_spent=0,
                    pulls_remaining=193,
                ),
            ),
        ),
    )


def warm_partial_failure_report() -> Report:
    hub = {"rule": "docker-hub", "upstream": "docker-hub"}
    items = [
        ReportItem(
            subject="docker.io/olakego/source-mongodb:v9.9.9",
            outcome=Outcome.FAILED,
            reason="unknown tag: docker.io/olakego/source-mongodb has no tag v9.9.9 (HTTP 404)",
            fix="check the tag on Docker Hub, or remove it from warm.images in config/pullthrough.yaml",
            reason_code="not_found",
            details=Details(**hub, repository="docker-hub/olakego/source-mongodb"),
        ),
        ReportItem(
            subject="docker.io/acme-private/billing:2.4.0",
            outcome=Outcome.FAILED,
            reason="auth: the rule's credentials cannot read acme-private/billing (HTTP 401 from registry-1.docker.io)",
            fix=(
                f"give the Docker Hub user in {HUB_SECRET} read access to acme-private/billing, or store a token "
                "that has it: pullthrough credentials set docker-hub"
            ),
            reason_code="auth",
            details=Details(**hub, repository="docker-hub/acme-private/billing", secret=HUB_SECRET),
        ),
        ReportItem(
            subject="docker.io/library/redis:7.4",
            outcome=Outcome.FAILED,
            reason="rate limited: Docker Hub answered 429 after 3 retries (Retry-After 3600 s)",
            fix="nothing to do now: the next scheduled run retries it; lower warm.budget_share if this repeats",
            reason_code="rate_limited",
            details=Details(**hub, repository="docker-hub/library/redis", pulls_remaining=0),
        ),
    ]
    items += [
        ReportItem(
            subject=f"docker.io/library/{name}",
            outcome=Outcome.DEFERRED,
            reason="this run's share of the Docker Hub pull budget was spent",
            fix="nothing to do: the next run warms it first",
            reason_code="budget",
            details=Details(**hub),
        )
        for name in ("nginx:1.27", "nginx:1.26", "busybox:1.37", "alpine:3.20", "alpine:3.19")
    ]
    items += [
        ReportItem(
            subject=f"docker.io/olakego/source-{name}:v0.1.8",
            outcome=Outcome.WARMED,
            details=Details(**hub, repository=f"docker-hub/olakego/source-{name}", bytes_moved=50_331_648),
        )
        for name in ("kafka", "s3", "oracle", "db2")
    ]
    return make_report(
        run_id="warm-2026-11-23T16-00-00Z",
        trigger="pullthrough rules reconciled (EventBridge)",
        log_groups=("/aws/lambda/pullthrough-prod-PlanWarming", "/aws/lambda/pullthrough-prod-WarmImages"),
        items=tuple(items),
        # The run's ledger keeps counters for what went well; only problems and fresh imports are itemised.
        unlisted={Outcome.ALREADY_CACHED: 108},
        totals=Totals(bytes_moved=201_326_592, pulls_spent=9, pulls_remaining={"docker-hub": 0}),
    )


CASES = {
    "rules": rules_report,
    "credentials": credentials_report,
    "warm_success": warm_success_report,
    "warm_partial_failure": warm_partial_failure_report,
}


def rendered(report: Report) -> str:
    attributes = " ".join(f"{name}={value['StringValue']}" for name, value in report.attributes().items())
    return f"Subject: {report.subject()}\nAttributes: {attributes}\n\n{report.body()}"


# --- golden files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_the_golden_file(case: str) -> None:
    # Given a sample report of one kind
    report = CASES[case]()
    # When it is rendered as SNS delivers it
    text = rendered(report)
    # Then it is exactly what the golden file shows (UPDATE_GOLDEN=1 rewrites the file instead)
    path = GOLDEN / f"{case}.txt"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("case", "subject"),
    [
        ("rules", "WARNING pullthrough rules prod/us-east-1: 1 of 6 skipped, 1 created, 1 updated, 2 unchanged"),
        ("credentials", "FAILED pullthrough credentials prod/us-east-1: 1 of 2 rotation failed, 1 valid"),
        ("warm_success", "OK pullthrough warm prod/us-east-1: 2 warmed, 2 already cached, 1 refreshed"),
        ("warm_partial_failure", "FAILED pullthrough warm prod/us-east-1: 3 of 120 failed, 5 deferred, 4 warmed,"),
    ],
)
def test_subject_puts_status_first_then_the_counts_that_matter(case: str, subject: str) -> None:
    # Given a sample report / When its subject is rendered / Then it starts with the status and the problem count
    assert CASES[case]().subject().startswith(subject)


def test_every_golden_body_parses_back_into_its_report() -> None:
    for case, build in CASES.items():
        # Given a rendered body / When its JSON block is read back / Then it is the same report
        report = build()
        assert Report.from_message(report.body()) == report, case


# --- status ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ((), Status.OK),
        ((Outcome.WARMED, Outcome.ALREADY_CACHED), Status.OK),
        ((Outcome.WARMED, Outcome.DEFERRED), Status.WARNING),
        ((Outcome.DEFERRED, Outcome.FAILED), Status.FAILED),
        ((Outcome.VALID, Outcome.INVALID), Status.FAILED),
        ((Outcome.CREATED, Outcome.CONFLICT), Status.WARNING),
        ((Outcome.ROTATED,), Status.OK),
        ((Outcome.ROTATION_FAILED,), Status.FAILED),
    ],
)
def test_status_is_derived_from_the_worst_item(outcomes: tuple[Outcome, ...], status: Status) -> None:
    # Given items with these outcomes / When a report is built without a status / Then the worst severity decides
    items = tuple(ReportItem(subject=f"item {i}", outcome=o) for i, o in enumerate(outcomes))
    assert make_report(items=items).status is status


def test_counted_but_unlisted_outcomes_count_towards_status_and_totals() -> None:
    # Given a ledger that only counted 7 failures
    report = make_report(unlisted={Outcome.FAILED: 7, Outcome.WARMED: 3})
    # Then the report is FAILED and says 7 of 10 failed
    assert report.status is Status.FAILED
    assert report.counts == {Outcome.FAILED: 7, Outcome.WARMED: 3}
    assert report.total == 10
    assert "7 of 10 failed" in report.subject()


def test_an_explicit_status_wins_over_the_derived_one() -> None:
    report = make_report(items=(ReportItem(subject="x", outcome=Outcome.FAILED),), status=Status.WARNING)
    assert report.status is Status.WARNING
    assert report.subject().startswith("WARNING ")


def test_a_builder_can_raise_an_items_severity() -> None:
    # Given a skipped rule whose builder says it is a failure (its pulls will fail)
    item = ReportItem(subject="rule gitlab", outcome=Outcome.SKIPPED, severity=Severity.FAILURE)
    report = make_report(kind=Kind.RULES, items=(item, ReportItem(subject="rule quay", outcome=Outcome.UNCHANGED)))
    # Then the report fails and the skipped rule leads the subject
    assert report.status is Status.FAILED
    assert report.subject() == "FAILED pullthrough rules prod/us-east-1: 1 of 2 skipped, 1 unchanged"
    assert "Failures (1)\n  - rule gitlab: skipped" in report.body()


# --- subject -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_length", [1, 40, 70, 90, 128])
@pytest.mark.parametrize("case", sorted(CASES))
def test_subject_fits_sns_for_any_stack_name(case: str, stack_length: int) -> None:
    # Given a stack name up to CloudFormation's 128 characters
    stack = ("pullthrough-" + "x" * 128)[:stack_length]
    report = CASES[case]().model_copy(update={"stack": stack})
    # When the subject is rendered
    subject = report.subject()
    # Then it fits SNS, has no line break, and still starts with the status and names the first count
    assert len(subject) <= MAX_SUBJECT_CHARS <= 100
    assert "\n" not in subject
    assert "\r" not in subject
    assert subject.split(" ")[0] == report.status.value
    first_count = next(iter(report.counts.values()))
    assert re.search(rf": {first_count:,} ", subject)


def test_subject_shortens_a_long_stack_name_not_the_status() -> None:
    report = make_report(stack="s" * 128, items=(failed_image(1),))
    subject = report.subject()
    assert subject.startswith("FAILED pullthrough warm sss")
    assert "...: 1 of 1 failed" in subject


def test_dry_run_says_so_in_subject_and_body() -> None:
    report = make_report(kind=Kind.RULES, dry_run=True, items=(ReportItem(subject="rule a", outcome="created"),))
    assert report.subject() == "OK pullthrough rules dry-run prod/us-east-1: 1 created"
    assert "Dry run: nothing was written" in report.body()


# --- body ------------------------------------------------------------------------------------------------------------


def test_body_lists_failures_with_reason_and_fix_before_successes() -> None:
    report = warm_partial_failure_report()
    body = report.body()
    failures, warnings, successes = body.index("Failures (3)"), body.index("Warnings (5)"), body.index("Succeeded")
    where, json_block = body.index("Where to look"), body.index(JSON_BEGIN)
    assert failures < warnings < successes < where < json_block
    assert "    Reason: auth: the rule's credentials cannot read acme-private/billing" in body
    assert "    Fix: give the Docker Hub user in ecr-pullthroughcache/docker-hub read access" in body


def test_a_warmed_index_says_which_platforms_were_verified_of_the_manifests_ecr_imported() -> None:
    # Given an index of five manifests of which the config has two platforms verified
    item = ReportItem(
        subject="docker.io/library/nginx:1.27",
        outcome=Outcome.WARMED,
        details=Details(platforms=("linux/amd64", "linux/arm64"), index_manifests=5, pulls_spent=6),
    )
    # Then its line says so: what the config chose is what was verified, not what ECR imported (and was charged)
    assert "linux/amd64, linux/arm64 verified of 5 imported; 6 pulls" in make_report(items=(item,)).body()


def test_body_ends_with_the_json_block_between_marker_lines() -> None:
    body = warm_success_report().body()
    lines = body.rstrip("\n").split("\n")
    assert lines[-3:-2] == [JSON_BEGIN]
    assert lines[-1] == JSON_END
    assert json.loads(lines[-2])["kind"] == "warm"


def test_many_successes_are_counted_not_listed() -> None:
    # Given more successes than the body lists one per line
    items = tuple(
        ReportItem(subject=f"docker.io/library/app-{i}:1", outcome=Outcome.ALREADY_CACHED)
        for i in range(SUCCESS_LIST_LIMIT + 1)
    )
    body = make_report(items=items).body()
    # Then the body counts them and points at the JSON
    count = SUCCESS_LIST_LIMIT + 1
    assert f"Succeeded ({count})\n  {count} already cached; each one is listed in the JSON block below." in body
    assert "app-0:1" not in body.split(JSON_BEGIN)[0]


def test_where_to_look_names_the_run_the_query_and_the_console_pages() -> None:
    report = warm_partial_failure_report()
    where = report.body().split("Where to look\n", 1)[1].split(JSON_BEGIN)[0]
    assert f"Run id: {report.run_id}" in where
    assert f'| filter run_id = "{report.run_id}"' in where
    assert "on /aws/lambda/pullthrough-prod-PlanWarming, /aws/lambda/pullthrough-prod-WarmImages" in where
    assert "Open the query: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:" in where
    # the failures' repositories come first, then the kind's own page
    assert where.index("ECR repository docker-hub/olakego/source-mongodb") < where.index("ECR private repositories")


def test_links_are_bounded() -> None:
    report = make_report(items=tuple(failed_image(i) for i in range(50)))
    assert len(report.links.console) == 10
    assert report.links.console[-1].title == "ECR private repositories"


def test_long_texts_are_clipped_so_one_item_cannot_crowd_out_the_rest() -> None:
    item = ReportItem(subject="s" * 400, outcome=Outcome.FAILED, reason="r" * 5000, fix="f" * 5000)
    assert len(item.subject) == 300
    assert item.subject.endswith("...")
    assert len(item.reason or "") == 1000
    assert len(item.fix or "") == 1000


def test_unknown_fields_are_refused_but_derived_ones_are_ignored_on_input() -> None:
    with pytest.raises(ValidationError, match="colour"):
        ReportItem(subject="x", outcome=Outcome.WARMED, colour="red")  # type: ignore[call-arg]
    # A report's own JSON carries counts, total, truncated and links: reading it back recomputes them.
    data = json.loads(warm_success_report().to_json())
    data["counts"] = {"failed": 99}
    assert Report.model_validate(data).counts == warm_success_report().counts


def test_from_message_refuses_a_body_without_json() -> None:
    with pytest.raises(ValueError, match=re.escape(JSON_BEGIN)):
        Report.from_message("OK pullthrough warm prod/us-east-1: 3 warmed. Run run-1.")


# --- size limit ------------------------------------------------------------------------------------------------------


def test_twenty_thousand_failures_are_summarised_into_one_sns_message() -> None:
    # Given a warm run where 20,000 images failed (two reasons) and 5 were warmed
    items = [failed_image(i, "not_found" if i % 4 else "auth") for i in range(20_000)]
    items += [ReportItem(subject=f"docker.io/library/ok-{i}:1", outcome=Outcome.WARMED) for i in range(5)]
    report = make_report(items=tuple(items))
    # When it is rendered for SNS
    message = report.message()
    assert message is not None
    # Then the whole message fits SNS's limit in bytes
    assert message.size <= MAX_MESSAGE_BYTES
    body = message.body
    # and the text says it was shortened, lists failures first with reason and fix, and counts the rest by reason
    assert "This message was shortened to fit SNS's 262,144-byte limit" in body
    assert f"run id {report.run_id}" in body
    assert body.count("    Fix: check the tag upstream") >= 100
    assert re.search(r"  \.\.\. and [\d,]+ more, not listed here", body)
    assert re.search(r"    [\d,]+ failed: not_found\n", body)
    assert re.search(r"    [\d,]+ failed: auth\n", body)
    assert "Failures (20,000)" in body
    # and the JSON block parses, keeps every count, and marks how many items it left out
    parsed = Report.from_message(body)
    assert parsed.status is Status.FAILED
    assert parsed.counts == {Outcome.FAILED: 20_000, Outcome.WARMED: 5}
    data = json.loads(body.split(JSON_BEGIN + "\n")[1].split("\n" + JSON_END)[0])
    assert data["truncated"] == 20_005 - len(data["items"]) > 0
    assert all(item["outcome"] == "failed" for item in data["items"])


def test_multibyte_text_is_measured_in_bytes_not_characters() -> None:
    # Given failures whose reasons are 3-byte characters (a character count would be a third of the byte count)
    items = tuple(
        ReportItem(subject=f"image {i}", outcome=Outcome.FAILED, reason="\u2603" * 900, fix="\u2603" * 900)
        for i in range(400)
    )
    message = make_report(items=items).message()
    assert message is not None
    body_bytes = len(message.body.encode("utf-8"))
    assert body_bytes > 2 * len(message.body)  # mostly 3-byte characters
    assert body_bytes < message.size <= MAX_MESSAGE_BYTES
    assert body_bytes > MAX_MESSAGE_BYTES * 0.9  # the summary keeps as many failures as fit


def test_a_small_report_is_not_summarised() -> None:
    body = warm_partial_failure_report().body()
    assert "shortened" not in body
    assert Report.from_message(body).items == warm_partial_failure_report().items


# --- attributes and success verbosity --------------------------------------------------------------------------------


def test_attributes_let_subscribers_filter_on_kind_status_and_stack() -> None:
    assert credentials_report().attributes() == {
        "kind": {"DataType": "String", "StringValue": "credentials"},
        "status": {"DataType": "String", "StringValue": "FAILED"},
        "stack": {"DataType": "String", "StringValue": "prod"},
    }


def test_success_off_publishes_nothing_for_an_ok_report() -> None:
    assert warm_success_report().message("off") is None


def test_success_summary_is_one_line() -> None:
    message = warm_success_report().message("summary")
    assert message is not None
    assert message.body == (
        "OK pullthrough warm prod/us-east-1: 2 warmed, 2 already cached, 1 refreshed. Run warm-2026-11-23T10-00-00Z."
    )
    assert message.subject == warm_success_report().subject()


def test_success_full_is_the_whole_body() -> None:
    message = warm_success_report().message("full")
    assert message is not None
    assert message.body == warm_success_report().body()


@pytest.mark.parametrize("success", ["off", "summary", "full"])
@pytest.mark.parametrize("case", ["rules", "credentials", "warm_partial_failure"])
def test_warnings_and_failures_are_always_published_in_full(case: str, success: str) -> None:
    report = CASES[case]()
    assert report.status is not Status.OK
    message = report.message(success)  # type: ignore[arg-type]
    assert message is not None
    assert message.body == report.body()


# --- logs ------------------------------------------------------------------------------------------------------------


def test_to_log_puts_the_run_id_on_top_and_bounds_the_problems() -> None:
    report = make_report(items=tuple(failed_image(i) for i in range(60)))
    log = report.to_log(item_limit=50)
    assert log["run_id"] == "run-0001"
    summary = log["report"]
    assert summary["status"] == "FAILED"
    assert summary["counts"] == {"failed": 60}
    assert len(summary["problems"]) == 50
    assert summary["problems_not_shown"] == 10
    assert summary["problems"][0]["reason_code"] == "not_found"
    json.dumps(log)  # a log line must serialise


# --- links -----------------------------------------------------------------------------------------------------------


def _decode_insights(url: str) -> dict[str, str]:
    """Undo the console's encoding far enough to read the string fields back."""
    fragment = url.split("$3FqueryDetail$3D", 1)[1]
    jsurl = unquote(unquote(fragment.replace("$", "%")))
    fields = {}
    for key in ("end", "start", "timeType", "editorString"):
        raw = re.search(rf"[~(]{key}~'([^~)]*)", jsurl)
        assert raw, key
        fields[key] = unquote(raw.group(1).replace("*", "%"))
    fields["source"] = ",".join(unquote(s.replace("*", "%")) for s in re.findall(r"~'(\*2f[^~)]*)", jsurl))
    return fields


def test_logs_insights_url_carries_the_query_groups_and_window() -> None:
    query = logs_insights_query('run "1"')
    url = logs_insights_url("eu-west-1", query, ["/aws/lambda/a", "/aws/lambda/b"], T0, T0 + timedelta(minutes=10))
    assert url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:")
    decoded = _decode_insights(url)
    assert decoded["editorString"] == query
    assert '| filter run_id = "run \\"1\\""' in query
    assert decoded["start"] == "2026-11-23T10:00:00.000Z"
    assert decoded["end"] == "2026-11-23T10:10:00.000Z"
    assert decoded["timeType"] == "ABSOLUTE"
    assert decoded["source"] == "/aws/lambda/a,/aws/lambda/b"


def test_console_urls_are_built_from_region_account_and_names() -> None:
    assert console_repository_url("us-east-1", ACCOUNT, "docker-hub/library/nginx") == (
        "https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/docker-hub/library/nginx"
        "?region=us-east-1"
    )
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
    assert console_secret_url("us-east-1", arn) == (
        "https://us-east-1.console.aws.amazon.com/secretsmanager/secret"
        "?name=ecr-pullthroughcache%2Fdocker-hub&region=us-east-1"
    )
    assert console_secret_url("us-east-1", "ecr-pullthroughcache/docker-hub") == console_secret_url("us-east-1", arn)


def test_a_subject_prefix_follows_the_status() -> None:
    # Given the config's notifications.subject_prefix
    report = warm_partial_failure_report()
    # When the subject is rendered with it / Then the status stays first and the prefix replaces "pullthrough"
    subject = report.subject(prefix="[ACME registry cache]")
    assert subject.startswith("FAILED [ACME registry cache] warm prod/us-east-1: 3 of 120 failed")
    assert len(subject) <= MAX_SUBJECT_CHARS
    assert report.message(prefix="[ACME]").subject.startswith("FAILED [ACME] warm ")  # type: ignore[union-attr]


_STATUS_OUTCOMES = {Status.OK: "warmed", Status.WARNING: "deferred", Status.FAILED: "failed"}


def _first_line_verdict(body: str) -> str:
    # A summary body is the headline plus ". Run <id>."; a full body's first line is the headline itself.
    return body.splitlines()[0].split(". Run ")[0]


@pytest.mark.parametrize("success", ["full", "summary"])
@pytest.mark.parametrize("prefix", [None, "[ACME]", "[ACME registry cache]"])
@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("status", list(Status))
def test_the_subject_and_the_bodys_first_line_agree(
    status: Status, kind: Kind, dry_run: bool, prefix: str | None, success: str
) -> None:
    # Given a report of every status, kind and mode, with or without the config's subject prefix
    items = (
        ReportItem(subject="docker.io/library/alpine:3.20", outcome=_STATUS_OUTCOMES[status]),
        ReportItem(subject="docker.io/library/nginx:1.27", outcome="warmed"),
    )
    report = make_report(kind=kind, dry_run=dry_run, items=items)
    assert report.status is status
    # When it is turned into the message a subscriber receives
    message = report.message(success, prefix)  # type: ignore[arg-type]
    assert message is not None
    # Then the body opens with exactly the subject's verdict: same status, same prefix, same counts
    assert _first_line_verdict(message.body) == message.subject
    assert message.subject.startswith(f"{status.value} {prefix or 'pullthrough'} {kind.value}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_shortened_subject_is_the_first_line_with_its_tail_cut(case: str) -> None:
    # Given a report whose headline is longer than a subject may be (a long stack name, a long prefix)
    report = CASES[case]().model_copy(update={"stack": "pullthrough-" + "x" * 80})
    prefix = "[ACME registry cache]"
    # When it is published in full
    message = report.message("full", prefix)
    assert message is not None
    first = message.body.splitlines()[0]
    assert len(first) > MAX_SUBJECT_CHARS
    # Then the subject keeps the first line's verdict and its leading counts; only the stack name and later counts give
    subject_head, subject_counts = message.subject.split(": ", 1)
    first_head, first_counts = first.split(": ", 1)
    assert first_head.startswith(subject_head.removesuffix("..."))
    assert first_counts.startswith(subject_counts)


def test_only_successes_too_many_for_one_message_are_counted() -> None:
    # Given 20,000 warmed images, listed one by one
    items = tuple(
        ReportItem(
            subject=f"docker.io/example/app-{i:05d}:1.0",
            outcome=Outcome.WARMED,
            details=Details(digest="sha256:" + f"{i:064x}", platforms=("linux/amd64", "linux/arm64")),
        )
        for i in range(20_000)
    )
    report = make_report(items=items)
    # When rendered / Then it fits, stays OK, and the JSON keeps the count while listing none of them
    message = report.message()
    assert message is not None
    assert message.size <= MAX_MESSAGE_BYTES
    parsed = Report.from_message(message.body)
    assert parsed.status is Status.OK
    assert parsed.counts == {Outcome.WARMED: 20_000}
    assert parsed.items == ()
    assert parsed.truncated == 20_000
    assert "Succeeded (20,000)\n  20,000 warmed; each one is in the logs under the run id." in message.body
