"""check_secret (pullthrough/credentials/check.py) against moto's Secrets Manager and the sandbox's Hub-like upstream.

Docker Hub's flow is the token realm with Basic credentials, then a HEAD that reads the pull budget; GHCR and the
others are found out through WWW-Authenticate (the sandbox serves every upstream host from one front).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pullthrough import upstreams
from pullthrough.credentials import upstream as upstream_check
from pullthrough.credentials.check import check_secret
from pullthrough.credentials.upstream import RATE_LIMIT_REPOSITORY
from pullthrough.credentials.verdict import CredentialCheck
from pullthrough.registry.client import RegistryClient
from tests.integration.credentials_support import (
    ACCOUNT,
    PREFIX,
    REGION,
    Aws,
    aws,
    aws_env,
    new_token,
    settings_for,
    unique,
)

if TYPE_CHECKING:
    from sandbox import Sandbox

__all__ = ["aws", "aws_env"]  # fixtures used by name below

pytestmark = pytest.mark.sandbox

HUB = upstreams.get("docker-hub")
GHCR = upstreams.get("github-container-registry")


@pytest.fixture
def front(sandbox: Sandbox) -> Iterator[Any]:
    """The session sandbox's upstream front; faults never outlive the test that set them."""
    yield sandbox.upstream
    sandbox.upstream.faults.clear()


@pytest.fixture
def user(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    """A Docker Hub user of this test's own, with a fresh token the realm accepts; removed afterwards."""
    name, token = unique("hubuser"), new_token()
    sandbox.add_user(name, token)
    yield name, token
    sandbox.remove_user(name)


def hub_secret(aws: Aws, user: str, token: str) -> str:
    name = unique(f"{PREFIX}docker-hub")
    aws.create_secret(name, {"username": user, "accessToken": token})
    return name


def check(sandbox: Sandbox | None, name: str, upstream: upstreams.Upstream = HUB, **kwargs: Any) -> CredentialCheck:
    url = upstream.url or ""
    return check_secret(name, upstream, url, settings_for(sandbox), rule="docker-hub", **kwargs)


# --- upstream validation ----------------------------------------------------------------------------------------------


def test_good_credentials_are_valid_with_the_pull_budget(
    sandbox: Sandbox, aws: Aws, user: tuple[str, str], front: Any
) -> None:
    # Given a secret holding a token the upstream accepts
    name = hub_secret(aws, *user)
    gets_before = front.counters[("GET", "manifest")]
    # When it is checked
    result = check(sandbox, name)
    # Then it is valid, the budget is Hub's per-user limit, and no pull was spent to learn it
    assert result.status == "valid", result.message
    assert result.valid
    assert result.rate_limit is not None
    assert result.rate_limit.limit == sandbox.upstream.user_limit
    assert result.rate_limit.remaining is not None
    assert result.rate_limit.window_seconds == 21600
    assert "pulls left" in result.message
    assert result.username == user[0]
    assert front.counters[("GET", "manifest")] == gets_before
    assert front.counters[("HEAD", "manifest")] >= 1


def test_wrong_token_is_invalid_with_the_upstreams_reason(sandbox: Sandbox, aws: Aws, user: tuple[str, str]) -> None:
    # Given a secret whose token the realm does not know
    wrong = new_token()
    name = hub_secret(aws, user[0], wrong)
    # When it is checked
    result = check(sandbox, name)
    # Then it is invalid, the realm's own words are quoted, and the token is nowhere in the verdict
    assert result.status == "invalid"
    assert result.reason_code == "auth"
    assert "incorrect username or password" in result.message
    assert "personal access token" in result.fix.lower()
    assert "pullthrough credentials set docker-hub" in result.fix
    assert wrong not in result.model_dump_json()


def test_revoked_token_becomes_invalid(sandbox: Sandbox, aws: Aws, user: tuple[str, str]) -> None:
    # Given a secret that was valid
    name = hub_secret(aws, *user)
    assert check(sandbox, name).valid
    # When the token is revoked upstream and the secret checked again
    sandbox.remove_user(user[0])
    result = check(sandbox, name)
    # Then it is invalid
    assert result.status == "invalid"
    assert result.reason_code == "auth"


def test_token_realm_down_is_unreachable_not_invalid(
    sandbox: Sandbox, aws: Aws, user: tuple[str, str], front: Any
) -> None:
    # Given a realm that answers 503 to every token request for the check's scope
    name = hub_secret(aws, *user)
    front.faults.token_status(503, repository=RATE_LIMIT_REPOSITORY, times=None)
    # When the secret is checked
    result = check(sandbox, name)
    # Then validity is unknown: unreachable, not invalid
    assert result.status == "unreachable"
    assert result.reason_code == "upstream_down"
    assert "could not be reached" in result.message


def test_upstream_host_that_refuses_connections_is_unreachable(aws: Aws, refused_port: int) -> None:
    # Given a Docker Hub secret and an upstream endpoint nobody listens on
    name = hub_secret(aws, "someone", new_token())
    settings = settings_for(PULLTHROUGH_UPSTREAM_ENDPOINTS=json.dumps({HUB.url: f"http://127.0.0.1:{refused_port}"}))
    # When it is checked
    result = check_secret(name, HUB, HUB.url or "", settings)
    # Then it is unreachable, naming the upstream
    assert result.status == "unreachable"
    assert "registry-1.docker.io" in result.message


def test_slow_token_realm_within_the_timeout_is_still_valid(
    sandbox: Sandbox, aws: Aws, user: tuple[str, str], front: Any
) -> None:
    # Given a realm that takes 0.3 s to answer the check's token request
    name = hub_secret(aws, *user)
    fault = front.faults.delay(0.3, path=rf"^/token\?.*scope=repository:{RATE_LIMIT_REPOSITORY}:")
    # When checked with a 5 s timeout
    result = check(sandbox, name, timeout=5.0)
    # Then the slow answer was waited for and accepted
    assert fault.hits == 1
    assert result.status == "valid", result.message


def test_stalled_token_realm_times_out_as_unreachable(
    sandbox: Sandbox, aws: Aws, user: tuple[str, str], front: Any
) -> None:
    # Given a realm that never answers the check's token requests
    name = hub_secret(aws, *user)
    front.faults.token_stall(repository=RATE_LIMIT_REPOSITORY, times=None)
    # When checked with a short timeout
    result = check(sandbox, name, timeout=0.5)
    # Then the check gives up: unreachable, because of a timeout
    assert result.status == "unreachable"
    assert result.reason_code == "timeout"


def test_other_upstreams_are_checked_through_www_authenticate(
    sandbox: Sandbox, aws: Aws, user: tuple[str, str]
) -> None:
    # Given GHCR secrets, one good and one with a wrong token (the sandbox serves ghcr.io from the same front)
    good = unique(f"{PREFIX}ghcr")
    aws.create_secret(good, {"username": user[0], "accessToken": user[1]})
    bad = unique(f"{PREFIX}ghcr")
    aws.create_secret(bad, {"username": user[0], "accessToken": new_token()})
    # When both are checked against ghcr.io
    good_result = check(sandbox, good, GHCR)
    bad_result = check(sandbox, bad, GHCR)
    # Then the realm found through /v2/'s challenge decides
    assert good_result.status == "valid", good_result.message
    assert bad_result.status == "invalid"
    assert "GitHub" in bad_result.fix


# --- the secret itself ------------------------------------------------------------------------------------------------


def test_missing_secret_says_where_it_was_looked_for(aws: Aws) -> None:
    # Given no secret at all
    # When a name is checked
    result = check(None, f"{PREFIX}nothing-here")
    # Then it is missing, in this account and region, and the fix is the CLI command
    assert result.status == "missing"
    assert f"account {ACCOUNT}, region {REGION}" in result.message
    assert "pullthrough credentials set docker-hub" in result.fix


def test_wrong_prefix_is_refused_before_any_aws_call(aws: Aws) -> None:
    # Given a secret outside ecr-pullthroughcache/
    aws.create_secret("dockerhub-credentials", {"username": "u", "accessToken": new_token()})
    # When it is checked
    result = check(None, "dockerhub-credentials")
    # Then the name is the problem, and the fix names the right one
    assert result.status == "wrong_prefix"
    assert "ecr-pullthroughcache/" in result.message
    assert "ecr-pullthroughcache/dockerhub-credentials" in result.fix


def test_secret_in_another_region_is_missing_for_ecr(aws: Aws) -> None:
    # Given a secret ARN in eu-west-1 while the registry is in us-east-1
    arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:{PREFIX}docker-hub-AbCdEf"
    # When it is checked
    result = check(None, arn)
    # Then the region mismatch is named
    assert result.status == "missing"
    assert result.reason_code == "wrong_region"
    assert "eu-west-1" in result.message
    assert REGION in result.message
    assert result.secret == f"{PREFIX}docker-hub"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dckr_pat_not-json-at-all", "is not JSON"),
        ('["a", "b"]', "not an object"),
        ('{"accessToken": "dckr_pat_only-token"}', "'username' is missing"),
        ('{"username": "bot"}', "'accessToken' is missing"),
        ('{"username": "bot", "password": "dckr_pat_wrong-key"}', "found 'password': rename it to 'accessToken'"),
        ('{"username": "", "accessToken": "dckr_pat_empty-user"}', "'username' must be a non-empty string"),
        ('{"username": "bot", "accessToken": 12345}', "'accessToken' must be a non-empty string"),
        ('{"username": "bot", "accessToken": " dckr_pat_spaced "}', "leading or trailing whitespace"),
    ],
)
def test_malformed_values_get_a_clear_message_without_the_value(aws: Aws, value: str, expected: str) -> None:
    # Given a secret with a badly shaped value
    name = unique(f"{PREFIX}bad")
    aws.create_secret(name, value)
    # When it is checked
    result = check(None, name)
    # Then it is malformed, the message says what is wrong, and no part of the value appears
    assert result.status == "malformed"
    assert expected in result.message
    assert name in result.message
    for secret_part in ("dckr_pat_", "12345"):
        assert secret_part not in result.model_dump_json()


def test_secret_scheduled_for_deletion_is_missing(aws: Aws) -> None:
    # Given a secret scheduled for deletion
    name = unique(f"{PREFIX}deleted")
    aws.create_secret(name, {"username": "u", "accessToken": new_token()})
    aws.secrets.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    # When it is checked
    result = check(None, name)
    # Then ECR could not use it: missing, with the restore command
    assert result.status == "missing"
    assert "restore-secret" in result.fix


def test_no_secret_value_reaches_logs_or_output(
    sandbox: Sandbox,
    aws: Aws,
    user: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a good and a bad secret, checked with every log level captured
    caplog.set_level(logging.DEBUG)
    wrong = new_token()
    results = [check(sandbox, hub_secret(aws, *user)), check(sandbox, hub_secret(aws, user[0], wrong))]
    # When the verdicts are turned into report items and everything written is collected
    items = [r.report_item(upstream="docker-hub", rule="docker-hub").model_dump_json() for r in results]
    out, err = capsys.readouterr()
    everything = caplog.text + out + err + "".join(items) + "".join(r.model_dump_json() for r in results)
    # Then neither token appears anywhere
    assert user[1] not in everything
    assert wrong not in everything


def test_check_uses_the_given_client_factory(
    aws: Aws, sandbox: Sandbox, user: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a factory that records the clients it makes
    made: list[RegistryClient] = []

    def factory(*args: Any, **kwargs: Any) -> RegistryClient:
        made.append(RegistryClient(*args, **kwargs))
        return made[-1]

    name = hub_secret(aws, *user)
    # When a check runs with it
    monkeypatch.setattr(upstream_check, "client_factory", factory)
    result = check(sandbox, name)
    # Then the check went through that client, and no manifest was pulled
    assert result.valid
    assert len(made) == 1
    assert made[0].calls[("GET", "manifest")] == 0
    assert made[0].calls[("GET", "token")] >= 1
