"""The sandbox router matches events with EventBridge's pattern semantics (sandbox/stack.py)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.stack import matches

CLOUDTRAIL = {
    "source": "aws.ecr",
    "detail-type": "AWS API Call via CloudTrail",
    "detail": {
        "eventSource": "ecr.amazonaws.com",
        "eventName": "DeletePullThroughCacheRule",
        "requestParameters": {"ecrRepositoryPrefix": "docker-hub"},
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"},
        "tags": ["a", "b"],
    },
}

CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("exact value in a list", {"source": ["aws.ecr"]}, True),
    ("value not in the list", {"source": ["aws.secretsmanager"]}, False),
    (
        "nested keys all match",
        {"detail": {"eventName": ["DeletePullThroughCacheRule", "UpdatePullThroughCacheRule"]}},
        True,
    ),
    ("nested key missing", {"detail": {"errorCode": ["AccessDenied"]}}, False),
    ("prefix", {"detail": {"requestParameters": {"ecrRepositoryPrefix": [{"prefix": "docker"}]}}}, True),
    ("prefix miss", {"detail": {"requestParameters": {"ecrRepositoryPrefix": [{"prefix": "ghcr"}]}}}, False),
    ("suffix", {"detail": {"userIdentity": {"arn": [{"suffix": "/alice"}]}}}, True),
    ("anything-but a value", {"source": [{"anything-but": "aws.ecr"}]}, False),
    ("anything-but a list", {"source": [{"anything-but": ["aws.s3", "aws.sqs"]}]}, True),
    ("anything-but a prefix", {"source": [{"anything-but": {"prefix": "aws.e"}}]}, False),
    ("exists true", {"detail": {"userIdentity": [{"exists": True}]}}, True),
    ("exists false on a present key", {"detail": {"userIdentity": [{"exists": False}]}}, False),
    ("exists false on an absent key", {"detail": {"errorCode": [{"exists": False}]}}, True),
    ("array value: any element", {"detail": {"tags": ["b"]}}, True),
    ("equals-ignore-case", {"source": [{"equals-ignore-case": "AWS.ECR"}]}, True),
    ("wildcard", {"detail": {"eventName": [{"wildcard": "*PullThrough*Rule"}]}}, True),
    ("wildcard miss", {"detail": {"eventName": [{"wildcard": "Create*"}]}}, False),
    ("a scalar where the event has a mapping", {"detail": ["x"]}, False),
]


@pytest.mark.parametrize(("name", "pattern", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pattern_matching(name: str, pattern: dict[str, Any], expected: bool) -> None:
    # Given a CloudTrail-shaped event, When a pattern is matched against it, Then EventBridge's answer comes back
    assert matches(pattern, CLOUDTRAIL) is expected


def test_unsupported_filter_is_named() -> None:
    # Given a filter the router does not implement, When matched, Then the error names it instead of guessing
    with pytest.raises(ValueError, match="numeric"):
        matches({"detail": {"eventName": [{"numeric": [">", 0]}]}}, CLOUDTRAIL)
