"""ECR's words about an upstream become the reason a report gives: a status is a word, not digits in a digest."""

import pytest

from pullthrough.warm.outcomes import Reason, upstream_reason

DIGEST_WITH_STATUS_DIGITS = "sha256:" + "ab4031429c" * 6 + "abcd"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("upstream answered 429 Too Many Requests", Reason.RATE_LIMITED),
        ("TOOMANYREQUESTS: pull rate limit reached", Reason.RATE_LIMITED),
        ("the upstream's rate limit was exceeded", Reason.RATE_LIMITED),
        ("upstream answered 401", Reason.AUTH),
        ("403 Forbidden from the upstream", Reason.AUTH),
        ("AccessDenied: not authorized", Reason.AUTH),
        ("authentication required", Reason.AUTH),
        (f"the upstream could not serve layer {DIGEST_WITH_STATUS_DIGITS}: connection reset", Reason.UPSTREAM_DOWN),
        ("could not generate a download url; the upstream is unreachable", Reason.UPSTREAM_DOWN),
    ],
)
def test_a_status_counts_only_as_a_word_of_its_own(message: str, reason: Reason) -> None:
    assert upstream_reason(message) is reason
