"""The Docker Hub API client (pullthrough/dockerhub.py) against the sandbox's Hub API stand-in
(sandbox/registries/hub_api.py).

Minted tokens are registered with the sandbox's token realm, so a test can prove one upstream the way ECR would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from pullthrough.errors import RegistryAuthError
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from pullthrough.registry.dockerhub import (
    HubAuthError,
    HubClient,
    HubRateLimited,
    HubUnavailable,
)
from sandbox.registries.hub_api import HubApi
from tests.integration.credentials_support import unique

if TYPE_CHECKING:
    from sandbox import Sandbox

pytestmark = pytest.mark.sandbox

ADMIN_PASSWORD = "hub-admin-password-do-not-log"


@pytest.fixture
def admin() -> str:
    return unique("hubadmin")


@pytest.fixture
def org() -> str:
    return unique("acmecorp").replace("-", "")


@pytest.fixture
def hub(sandbox: Sandbox, admin: str, org: str) -> Iterator[HubApi]:
    """A Hub API stand-in wired to the session sandbox's realm; the users it registered are removed after."""
    with HubApi(sandbox, admins={admin: ADMIN_PASSWORD}, organizations={org: {admin}}) as started:
        yield started
    for token in started.tokens.values():
        if sandbox.users.get(token.owner) == token.token:
            sandbox.remove_user(token.owner)


class Sleeps:
    """A `sleep` that records instead of sleeping: retries are checked by the waits they asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def proves_upstream(sandbox: Sandbox, username: str, token: str) -> bool:
    """Whether the sandbox's token realm accepts username/token (as ECR's pull would)."""
    with RegistryClient(sandbox.upstream_url, credentials=Credentials(username, token), retries=0) as client:
        try:
            client.authenticate("library/anything")
        except RegistryAuthError:
            return False
    return True


def test_personal_token_is_minted_usable_upstream_and_revocable(sandbox: Sandbox, hub: HubApi, admin: str) -> None:
    # Given a logged-in client
    client = HubClient(hub.url)
    client.login(admin, ADMIN_PASSWORD)
    expires = datetime.now(UTC) + timedelta(days=30)
    # When it mints a personal token
    minted = client.create_token("pullthrough test", expires_at=expires)
    # Then the token works upstream, read-only for public repositories, with the expiry asked for
    assert minted.token.startswith("dckr_pat_")
    assert minted.token not in repr(minted)
    assert proves_upstream(sandbox, admin, minted.token)
    assert hub.tokens[minted.id].scopes == ["repo:public_read"]
    assert minted.expires_at is not None
    assert abs((minted.expires_at - expires).total_seconds()) < 1
    # And when it is revoked, the upstream refuses it, and revoking again reports it gone
    assert client.revoke_token(minted.id) is True
    assert not proves_upstream(sandbox, admin, minted.token)
    assert client.revoke_token(minted.id) is False


def test_organization_token_logs_in_as_the_organization(sandbox: Sandbox, hub: HubApi, admin: str, org: str) -> None:
    # Given an admin who owns an organization
    client = HubClient(hub.url)
    client.login(admin, ADMIN_PASSWORD)
    # When an organization token is minted and later revoked
    minted = client.create_token("pullthrough org", organization=org, description="ECR pull-through cache")
    works = proves_upstream(sandbox, org, minted.token)
    revoked = client.revoke_token(minted.id, organization=org)
    # Then it worked under the organization's name, pulled public repositories only, and was revoked
    assert minted.token.startswith("dckr_oat_")
    assert works
    assert hub.tokens[minted.id].resources == [{"type": "TYPE_REPO", "path": "*/*/public", "scopes": ["repo-pull"]}]
    assert revoked
    assert not hub.tokens[minted.id].active


def test_wrong_admin_password_is_an_auth_error_without_the_password(hub: HubApi, admin: str) -> None:
    # Given a wrong password
    client = HubClient(hub.url)
    # When the client logs in
    with pytest.raises(HubAuthError) as raised:
        client.login(admin, "not-the-password-xyz")
    # Then Hub's refusal is named, with the fix, and neither password appears
    message = str(raised.value)
    assert "HTTP 401" in message
    assert "admin secret" in message
    assert "not-the-password-xyz" not in message
    assert ADMIN_PASSWORD not in message


def test_injected_401_on_create_is_an_auth_error(hub: HubApi, admin: str) -> None:
    # Given a logged-in client, and Hub answering 401 to the next token creation (an expired bearer)
    client = HubClient(hub.url)
    client.login(admin, ADMIN_PASSWORD)
    hub.fail(401, method="POST", path="^/v2/access-tokens$")
    # When it mints
    with pytest.raises(HubAuthError):
        client.create_token("refused")
    # Then nothing was minted
    assert hub.active(admin) == []


def test_short_429_is_waited_out_per_x_retry_after(hub: HubApi, admin: str) -> None:
    # Given Hub rate-limiting the next call for about 3 seconds (X-Retry-After is a unix time)
    sleeps = Sleeps()
    client = HubClient(hub.url, sleep=sleeps, max_wait=30)
    client.login(admin, ADMIN_PASSWORD)
    fault = hub.fail(429, path="^/v2/access-tokens$", retry_after=3)
    # When a token is minted
    minted = client.create_token("after a wait")
    # Then the client waited as told, once, and then succeeded
    assert fault.hits == 1
    assert len(sleeps.waits) == 1
    assert 1 <= sleeps.waits[0] <= 4
    assert hub.tokens[minted.id].active


def test_long_429_is_raised_with_the_wait(hub: HubApi, admin: str) -> None:
    # Given Hub rate-limiting for ten minutes
    sleeps = Sleeps()
    client = HubClient(hub.url, sleep=sleeps, max_wait=30)
    client.login(admin, ADMIN_PASSWORD)
    hub.fail(429, path="^/v2/access-tokens$", retry_after=600, times=None)
    # When a token is minted
    with pytest.raises(HubRateLimited) as raised:
        client.create_token("too long to wait")
    # Then no wait was slept through, and the error carries it
    assert sleeps.waits == []
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 500
    assert "retry in" in str(raised.value)


def test_server_error_on_create_is_not_retried(hub: HubApi, admin: str) -> None:
    # Given Hub failing the creation with a 500 (a token may or may not have been made)
    client = HubClient(hub.url, sleep=Sleeps())
    client.login(admin, ADMIN_PASSWORD)
    hub.fail(500, path="^/v2/access-tokens$", times=None)
    # When a token is minted
    with pytest.raises(HubUnavailable):
        client.create_token("never twice")
    # Then the client asked once: a retry could have minted a second token
    assert hub.counters[("POST", "/v2/access-tokens")] == 1


def test_organization_the_admin_does_not_own_is_refused(hub: HubApi, admin: str) -> None:
    client = HubClient(hub.url)
    client.login(admin, ADMIN_PASSWORD)
    with pytest.raises(HubAuthError) as raised:
        client.create_token("not mine", organization="someoneelse")
    assert raised.value.status == 403
    assert "owner of the organization" in str(raised.value)


def test_unreachable_hub_is_unavailable(refused_port: int) -> None:
    client = HubClient(f"http://127.0.0.1:{refused_port}", sleep=Sleeps(), retries=1)
    with pytest.raises(HubUnavailable) as raised:
        client.login("anyone", "anything-secret")
    assert "cannot connect" in str(raised.value)
    assert "anything-secret" not in str(raised.value)


def test_calls_before_login_are_refused_locally(hub: HubApi) -> None:
    with pytest.raises(HubAuthError, match="not logged in"):
        HubClient(hub.url).create_token("no bearer")
    assert hub.counters == {}
