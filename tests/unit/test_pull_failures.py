"""ECR's failed-pull events read and reported (pullthrough/pull_failures.py): one report per batch, one item per
image and failure code, each with the fix for that code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pullthrough import config as config_module
from pullthrough.errors import EventError
from pullthrough.pull_failures import Batch, PullFailure, fix_for, read_batch, report
from pullthrough.reporting.vocabulary import Kind, Outcome

CONFIG = config_module.parse(
    "version: 1\nstack: prod\nrules:\n"
    "  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}\n"
    "  - {prefix: quay, upstream: quay}\n"
)


def event(repository: str, code: str, *, tag: str | None = "1", when: str = "2026-12-07T10:00:00Z") -> dict[str, Any]:
    detail: dict[str, Any] = {
        "rule-version": "1",
        "sync-status": "FAILED",
        "ecr-repository-prefix": repository.split("/", 1)[0],
        "repository-name": repository,
        "upstream-registry-url": "registry-1.docker.io",
        "failure-code": code,
        "failure-reason": f"reason for {code}",
    }
    if tag:
        detail["image-tag"] = tag
    return {"detail-type": "ECR Pull Through Cache Action", "source": "aws.ecr", "time": when, "detail": detail}


def batch(*bodies: Any) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "body": json.dumps(b)} for i, b in enumerate(bodies)]}


def test_a_batch_is_read_and_records_that_are_not_failures_are_counted_not_retried() -> None:
    # Given two failures, a SUCCESS event and a body that is not JSON
    success = event("docker-hub/library/nginx", "x")
    success["detail"]["sync-status"] = "SUCCESS"
    records = batch(event("docker-hub/library/nginx", "UpstreamTooManyRequests"), event("quay/a/b", "ImageNotFound"))
    records["Records"] += batch(success)["Records"] + [{"messageId": "bad", "body": "{not json"}]
    # When the batch is read
    failures, unreadable = read_batch(records)
    # Then the two failures are kept and the other two counted as unreadable
    assert [(f.repository, f.code) for f in failures] == [
        ("docker-hub/library/nginx", "UpstreamTooManyRequests"),
        ("quay/a/b", "ImageNotFound"),
    ]
    assert unreadable == 2


def test_something_that_is_not_an_sqs_batch_is_refused_clearly() -> None:
    with pytest.raises(EventError, match="SQS batch"):
        read_batch({"detail-type": "ECR Pull Through Cache Action"})


def test_one_item_per_image_and_code_with_how_often_and_the_last_time() -> None:
    # Given the same image failing three times, and another once
    failures = [
        PullFailure.from_event(
            event("docker-hub/library/nginx", "UpstreamAccessDenied", when=f"2026-12-07T10:0{i}:00Z")
        )
        for i in range(3)
    ] + [PullFailure.from_event(event("quay/a/b", "ImageNotFound", tag=None))]
    # When they are reported
    found = report(
        Batch(failures, unreadable=1, run_id="pulls-1", started=datetime(2026, 12, 7, 10, 5, tzinfo=UTC)),
        config=CONFIG,
        region="us-east-1",
        account="123456789012",
    )
    # Then each image is one failed item, counted, with the fix for its code naming the rule's secret
    assert found.kind is Kind.PULLS
    items = {i.subject: i for i in found.items}
    assert set(items) == {"docker-hub/library/nginx:1", "quay/a/b"}
    nginx = items["docker-hub/library/nginx:1"]
    assert (nginx.outcome, nginx.reason_code) == (Outcome.FAILED, "UpstreamAccessDenied")
    assert "3 failed pulls, the last at 2026-12-07 10:02:00 UTC" in (nginx.reason or "")
    assert "secret ecr-pullthroughcache/docker-hub" in (nginx.fix or "")
    assert any("could not be read" in note for note in found.notes)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("UpstreamAccessDenied", "pullthrough credentials set docker-hub"),
        ("UpstreamTooManyRequests", "rate limit"),
        ("UpstreamUnavailable", "outage"),
        ("ImageNotFound", "not on the upstream"),
        ("SomethingNew", "ECR Pull Through Cache Action event"),
    ],
)
def test_each_failure_code_has_its_own_fix(code: str, words: str) -> None:
    failure = PullFailure.from_event(event("docker-hub/library/nginx", code))
    assert words in fix_for(failure, CONFIG)


def test_an_event_without_a_code_is_still_a_failure() -> None:
    body = event("docker-hub/library/nginx", "x")
    del body["detail"]["failure-code"]
    assert PullFailure.from_event(body).code == "Unknown"
