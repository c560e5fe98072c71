"""Pure parts of pullthrough/credentials/: the secret's value, names, verdicts and their report lines.

The upstream is a fake registry client here, so every branch of the verdict can be reached without a network.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from pullthrough import redaction, upstreams
from pullthrough.credentials import upstream as upstream_check
from pullthrough.credentials.upstream import RATE_LIMIT_REPOSITORY, check_credentials
from pullthrough.credentials.usage import Target
from pullthrough.credentials.value import credentials_value, parse_value, secret_name
from pullthrough.credentials.verdict import CredentialCheck
from pullthrough.env import Settings
from pullthrough.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
    SecretError,
)
from pullthrough.registry.auth import Credentials
from pullthrough.registry.headers import Challenge, RateLimit
from pullthrough.reporting.vocabulary import Outcome, Severity

TOKEN = "dckr_pat_unit-test-token-0123456789"
CREDS = Credentials("pullthroughbot", TOKEN)
SETTINGS = Settings.from_env({"AWS_REGION": "us-east-1", "ACCOUNT_ID": "123456789012"})
HUB = upstreams.get("docker-hub")
QUAY_LIKE = upstreams.get("chainguard")
BUDGET = RateLimit(limit=200, remaining=187, window_seconds=21600, source="pullthroughbot")


@dataclass
class FakeClient:
    """Stands in for RegistryClient: raises what it is told to, records what it was asked."""

    auth_error: Exception | None = None
    head_error: Exception | None = None
    scheme: str = "bearer"
    rate_limit: RateLimit | None = None
    asked: list[tuple[str, Any]] = field(default_factory=list)
    made_with: dict[str, Any] = field(default_factory=dict)

    def __call__(self, base_url: str, **kwargs: Any) -> FakeClient:
        self.made_with = {"base_url": base_url, **kwargs}
        return self

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def ping(self) -> Challenge:
        self.asked.append(("ping", None))
        return Challenge(scheme=self.scheme)  # type: ignore[arg-type]

    def authenticate(self, repository: str | None = None) -> None:
        self.asked.append(("authenticate", repository))
        if self.auth_error is not None:
            raise self.auth_error

    def head_manifest(self, repository: str, reference: str) -> Any:
        self.asked.append(("head", f"{repository}:{reference}"))
        self.rate_limit = BUDGET
        if self.head_error is not None:
            raise self.head_error
        return type("Head", (), {"rate_limit": BUDGET})()


def run(fake: FakeClient, upstream: upstreams.Upstream = HUB) -> CredentialCheck:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(upstream_check, "client_factory", fake)
        return check_credentials(
            "ecr-pullthroughcache/docker-hub", CREDS, Target(upstream, upstream.url or "", "docker-hub"), SETTINGS
        )


# --- parse_value ------------------------------------------------------------------------------------------------------


def test_parse_value_reads_username_and_access_token() -> None:
    # Given the value ECR reads
    value = credentials_value(CREDS)
    # When it is parsed
    parsed = parse_value("ecr-pullthroughcache/hub", value)
    # Then both fields come back, and the token is hidden from repr
    assert parsed == CREDS
    assert TOKEN not in repr(parsed)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "no SecretString"),
        ("not json", "is not JSON"),
        ("42", "not an object"),
        ("{}", "'username' is missing; the key 'accessToken' is missing"),
        ('{"user": "bot", "token": "t"}', "found 'user': rename it to 'username'"),
        ('{"username": "bot", "accessToken": ""}', "'accessToken' must be a non-empty string"),
        ('{"username": ["bot"], "accessToken": "t"}', "'username' must be a non-empty string"),
        ('{"username": "bot", "accessToken": " dckr_pat_x\\n"}', "'accessToken' has leading or trailing whitespace"),
    ],
)
def test_parse_value_explains_each_problem(value: str | None, expected: str) -> None:
    # Given a value of the wrong shape
    # When it is parsed
    with pytest.raises(SecretError) as raised:
        parse_value("ecr-pullthroughcache/hub", value)
    # Then the message names the secret, the problem and the expected shape
    message = str(raised.value)
    assert message.startswith("secret ecr-pullthroughcache/hub: ")
    assert expected in message
    assert '{"username": "<user>", "accessToken": "<token>"}' in message


SWAPPED = [
    pytest.param("dckr_pat_2YotnFZFEjr1zCsicMWpAAbc", "alice", id="docker-hub-pat-as-username"),
    pytest.param("ghp_" + "aB3dE5" * 6, "octocat", id="github-pat-as-username"),
    pytest.param("glpat-xK9mQ2vL8nR4tY6wZ1aB", "gitlab-user", id="gitlab-pat-as-username"),
    pytest.param("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl", "robot", id="jwt-as-username"),
    pytest.param("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo", "svc", id="random-string-as-username"),
    pytest.param("sameValuePastedTwice-1", "sameValuePastedTwice-1", id="username-equals-token"),
]


@pytest.mark.parametrize(("username", "token"), SWAPPED)
def test_a_secret_whose_fields_look_swapped_is_refused_naming_neither_value(username: str, token: str) -> None:
    # Given a value whose username has the shape of a token (or is the token)
    value = json.dumps({"username": username, "accessToken": token})
    # When it is parsed (the credentials check, rotation, warming and the CLI all parse it here)
    with pytest.raises(SecretError) as raised:
        parse_value("ecr-pullthroughcache/hub", value)
    # Then it is refused with the fix, and neither value is in the message
    message = str(raised.value)
    assert "the value of 'username' looks like an access token" in message
    assert "put the upstream account's user name in 'username' and the token in 'accessToken'" in message
    assert username not in message
    assert token not in message


def test_every_field_of_a_secret_read_is_masked_in_log_lines_from_then_on() -> None:
    # Given a value whose username holds a random token (no known prefix: only registering it can mask it), and one
    # with an extra field beside the credentials
    swapped = base64.b64encode(os.urandom(30)).decode()
    extra = "pin-" + base64.b32encode(os.urandom(10)).decode()
    # When they are read (the swapped one is refused)
    with pytest.raises(SecretError):
        parse_value("ecr-pullthroughcache/hub", json.dumps({"username": swapped, "accessToken": "whatever-else-12"}))
    parse_value(
        "ecr-pullthroughcache/hub", json.dumps({"username": "bob-the-builder", "accessToken": TOKEN, "pin": extra})
    )
    # Then a log line holding either is redacted, and a plain user name is not
    line = redaction.redact(f"user bob-the-builder, value {swapped}, pin {extra}")
    assert line == f"user bob-the-builder, value {redaction.MASK}, pin {redaction.MASK}"


def test_parse_value_never_echoes_the_value() -> None:
    # Given a value that is not JSON (a token pasted alone)
    # When it is parsed
    with pytest.raises(SecretError) as raised:
        parse_value("ecr-pullthroughcache/hub", TOKEN)
    # Then the token is not in the error
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("ecr-pullthroughcache/docker-hub", "ecr-pullthroughcache/docker-hub"),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbC123",
            "ecr-pullthroughcache/docker-hub",
        ),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub", "ecr-pullthroughcache/hub"),
    ],
)
def test_secret_name_strips_the_arn_and_its_suffix(given: str, name: str) -> None:
    assert secret_name(given) == name


# --- verdicts ---------------------------------------------------------------------------------------------------------


def test_docker_hub_valid_reads_the_budget_with_a_head() -> None:
    # Given an upstream that accepts the credentials
    fake = FakeClient()
    # When they are checked
    result = run(fake)
    # Then the token was asked for the rate-limit repository, a HEAD read the budget, and the verdict says so
    assert fake.asked == [("authenticate", RATE_LIMIT_REPOSITORY), ("head", f"{RATE_LIMIT_REPOSITORY}:latest")]
    assert result.status == "valid"
    assert result.rate_limit == BUDGET
    assert "187 of 200 per 6h pulls left" in result.message
    assert fake.made_with["base_url"] == "https://registry-1.docker.io"
    assert fake.made_with["credentials"] == CREDS


def test_docker_hub_missing_rate_limit_image_still_gives_the_budget() -> None:
    # Given an upstream without the rate-limit image (the HEAD answers 404 with the headers)
    fake = FakeClient(head_error=RegistryNotFound("registry-1.docker.io", RATE_LIMIT_REPOSITORY, "nope", 404))
    # When checked
    result = run(fake)
    # Then the credentials are valid and the budget comes from the 404's headers
    assert result.status == "valid"
    assert result.rate_limit == BUDGET


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (RegistryAuthError("registry-1.docker.io", None, "incorrect username or password", 401), "invalid", "auth"),
        (RegistryRateLimited("registry-1.docker.io", None, "slow down"), "unreachable", "rate_limited"),
        (RegistryUnavailable("registry-1.docker.io", None, "503", 503), "unreachable", "upstream_down"),
        (RegistryTimeout("registry-1.docker.io", None, "no answer"), "unreachable", "timeout"),
        (RegistryError("registry-1.docker.io", None, "teapot", 418), "unreachable", "registry_error"),
    ],
)
def test_upstream_errors_map_to_verdicts(error: Exception, status: str, code: str) -> None:
    # Given an upstream that fails the authentication this way
    # When checked
    result = run(FakeClient(auth_error=error))
    # Then the verdict and its reason code follow the error, and the upstream's words are kept
    assert result.status == status
    assert result.reason_code == code
    assert str(error).split(": ", 1)[1] in result.message  # the upstream's words, without the probe's name


def test_upstream_echoing_the_token_is_scrubbed() -> None:
    # Given an upstream whose refusal quotes the token back
    error = RegistryAuthError("registry-1.docker.io", None, f"token {TOKEN} is revoked", 401)
    # When checked
    result = run(FakeClient(auth_error=error))
    # Then the verdict does not carry it
    assert TOKEN not in result.model_dump_json()
    assert "***" in result.message


def test_other_upstreams_are_discovered_and_authenticated_without_a_scope() -> None:
    # Given a non-Hub upstream with a Bearer challenge
    fake = FakeClient()
    # When checked
    result = run(fake, QUAY_LIKE)
    # Then it was pinged and authenticated without a repository, and no HEAD was spent
    assert fake.asked == [("ping", None), ("authenticate", None)]
    assert result.status == "valid"


def test_upstream_without_authentication_is_valid_but_says_nothing_was_proved() -> None:
    # Given an upstream whose /v2/ answers 200 to anyone
    result = run(FakeClient(scheme="none"), QUAY_LIKE)
    # Then the check passes, saying the credentials were not put to the test
    assert result.status == "valid"
    assert result.reason_code == "no_auth"
    assert "not put to the test" in result.message


# --- report lines -----------------------------------------------------------------------------------------------------


def test_invalid_check_is_a_failure_line_with_reason_and_fix() -> None:
    # Given an invalid verdict
    result = run(FakeClient(auth_error=RegistryAuthError("registry-1.docker.io", None, "incorrect", 401)))
    # When it becomes a report item
    item = result.report_item(upstream="docker-hub", rule="docker-hub")
    # Then it is a failure naming the secret, with the reason and the fix
    assert item.outcome is Outcome.INVALID
    assert item.severity is Severity.FAILURE
    assert item.subject == "secret ecr-pullthroughcache/docker-hub (AWSCURRENT)"
    assert item.reason is not None
    assert "incorrect" in item.reason
    assert item.fix is not None
    assert "pullthrough credentials set docker-hub" in item.fix
    assert item.details.valid is False


def test_valid_check_is_an_ok_line_with_the_budget() -> None:
    # Given a valid verdict
    item = run(FakeClient()).report_item(upstream="docker-hub")
    # Then it is OK, carries the budget, and neither reason nor fix
    assert item.outcome is Outcome.VALID
    assert item.severity is Severity.OK
    assert item.details.pulls_remaining == 187
    assert item.reason is None
    assert item.fix is None


def test_unreachable_check_is_a_warning_of_unknown_validity() -> None:
    item = run(FakeClient(auth_error=RegistryTimeout("registry-1.docker.io", None, "late"))).report_item()
    assert item.outcome is Outcome.UNREACHABLE
    assert item.severity is Severity.WARNING
    assert item.details.valid is None


# --- what a secret is used for, events, expiry ----------------------------------------------------------------------


def config_with(credentials: dict[str, Any]) -> Any:
    from pullthrough import config

    document = {
        "version": 1,
        "rules": [{"prefix": "docker-hub", "upstream": "docker-hub", "credentials": credentials}],
    }
    return config.parse(json.dumps(document))


def test_secret_use_merges_config_ecr_rules_and_tags() -> None:
    from datetime import date

    from pullthrough.aws.ptc import RuleSpec
    from pullthrough.credentials.usage import EXPIRES_TAG, secret_use

    # Given the config's rule, a second ECR rule (not in the config) on GHCR using the same secret, and a tag
    config = config_with({"secret": "ecr-pullthroughcache/hub", "expires": "2027-01-31", "warn_days": 10})
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbC123"
    rules = [
        RuleSpec("docker-hub", "docker-hub", "registry-1.docker.io", arn),
        RuleSpec("legacy-ghcr", None, "ghcr.io", arn),
        RuleSpec("other", "docker-hub", "registry-1.docker.io", arn.replace("/hub-", "/other-")),
    ]
    # When the secret's use is worked out
    use = secret_use(arn, config, {EXPIRES_TAG: "2027-06-30"}, ecr_rules=rules)
    # Then both rules are targets (the ECR one found by its URL), both are re-validated, the tag's expiry wins
    assert use.name == "ecr-pullthroughcache/hub"
    assert [(t.rule, t.upstream.key, t.url) for t in use.targets] == [
        ("docker-hub", "docker-hub", "registry-1.docker.io"),
        ("legacy-ghcr", "github-container-registry", "ghcr.io"),
    ]
    assert use.ecr_rules == ("docker-hub", "legacy-ghcr")
    assert use.expires == date(2027, 6, 30)
    assert use.warn_days == 10


@pytest.mark.parametrize(("days_left", "warns"), [(30, False), (14, True), (3, True), (-2, True)])
def test_expiry_warns_inside_the_window(days_left: int, warns: bool) -> None:
    from datetime import date, timedelta

    from pullthrough.credentials.report import expiry_item
    from pullthrough.credentials.usage import secret_use

    today = date(2026, 11, 23)
    config = config_with({"secret": "ecr-pullthroughcache/hub", "expires": str(today + timedelta(days_left))})
    item = expiry_item(secret_use("ecr-pullthroughcache/hub", config), today)
    assert (item is not None) == warns
    if item is not None:
        assert item.outcome is Outcome.EXPIRING
        assert item.severity is Severity.WARNING
        assert ("expired" in (item.reason or "")) == (days_left < 0)
        assert "pullthrough credentials set docker-hub" in (item.fix or "")


@pytest.mark.parametrize(
    ("sample", "secret", "rotation_failed"),
    [
        ("put_secret_value", "ecr-pullthroughcache/docker-hub", False),
        (
            "update_secret",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
            False,
        ),
        (
            "rotation_succeeded",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
            False,
        ),
        (
            "rotation_failed",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
            True,
        ),
    ],
)
def test_change_events_name_their_secret_and_trigger(sample: str, secret: str, rotation_failed: bool) -> None:
    from pullthrough.credentials.events import parse_change_event
    from sandbox import lambdas

    change = parse_change_event(lambdas.sample_event("check_credentials", sample))
    assert change.secrets == (secret,)
    assert change.rotation_failed is rotation_failed
    assert change.ignored is None
    assert change.trigger.endswith("on ecr-pullthroughcache/docker-hub")


def test_schedule_event_means_every_secret() -> None:
    from pullthrough.credentials.events import parse_change_event
    from sandbox import lambdas

    change = parse_change_event(lambdas.sample_event("check_credentials", "scheduled"))
    assert change.everything
    assert change.trigger.startswith("schedule")
