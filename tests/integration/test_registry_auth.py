"""Who is at fault when a registry says 401 or 403: the credentials, their user's access, or missing credentials.

The distribution spec's error codes: UNAUTHORIZED (401, "authentication required") and DENIED (403, "requested access
to the resource is denied"). Docker's token spec has a realm grant what access it can, possibly none, rather than
report authorization errors, so a realm refusing outright refuses the credentials: Docker Hub answers 401 there,
GHCR 403 DENIED (for a wrong or expired personal access token). /v2/ needs no permission of its own, so a 403 there
refuses the credentials too. A 403 on a repository, once authenticated, is the user's access to that repository.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pullthrough import upstreams
from pullthrough.credentials.upstream import check_credentials
from pullthrough.credentials.usage import Target
from pullthrough.env import Settings
from pullthrough.errors import RegistryAccessDenied, RegistryAuthError, RegistryError, RegistryUnavailable
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from tests.integration.local_registries import Reply, Stub

StubFactory = Callable[[Callable[[str, str, dict[str, str]], Reply]], Stub]
DENIED = json.dumps({"errors": [{"code": "DENIED", "message": "denied"}]}).encode()
USER, TOKEN = "octocat", "ghp_" + "N0tARealT0kenButShapedLikeOne12"
GHCR = upstreams.get("github-container-registry")


def ghcr_like(stub_server: StubFactory, *, realm_status: int = 200, manifest_status: int = 200) -> Stub:
    """A GHCR-like registry: /v2/ challenges Bearer, its realm answers `realm_status` to the credentials it gets."""
    realm = stub_server(
        lambda m, p, h: (
            (realm_status, {}, DENIED)
            if realm_status != 200
            else (200, {}, json.dumps({"token": "t1", "expires_in": 300}).encode())
        )
    )

    def registry(method: str, path: str, headers: dict[str, str]) -> Reply:
        if "authorization" not in headers:
            challenge = f'Bearer realm="{realm.url}/token",service="ghcr.io"'
            return 401, {"WWW-Authenticate": challenge}, b""
        if path == "/v2/":
            return 200, {}, b"{}"
        return manifest_status, {"Content-Type": "application/json"}, DENIED

    return stub_server(registry)


def test_a_token_realm_answering_403_refuses_the_credentials(stub_server: StubFactory) -> None:
    # Given a GHCR-like realm that answers 403 DENIED to a wrong token
    registry = ghcr_like(stub_server, realm_status=403)
    client = RegistryClient(registry.url, name="ghcr.io", credentials=Credentials(USER, TOKEN))
    # When the client authenticates
    with pytest.raises(RegistryAuthError) as raised:
        client.authenticate()
    # Then it is an authentication error about the credentials (not an unknown answer, not access to a repository)
    assert type(raised.value) is RegistryAuthError
    assert raised.value.status == 403
    assert "refused the credentials of user 'octocat'" in str(raised.value)


def test_check_credentials_calls_a_403_from_the_realm_invalid_with_the_fix(stub_server: StubFactory) -> None:
    # Given the same realm, and the credentials check ECR's rule for ghcr.io would run
    registry = ghcr_like(stub_server, realm_status=403)
    settings = Settings(PULLTHROUGH_UPSTREAM_ENDPOINTS={"ghcr.io": registry.url})
    # When the secret's value is checked upstream
    result = check_credentials(
        "ecr-pullthroughcache/ghcr", Credentials(USER, TOKEN), Target(GHCR, "ghcr.io", "ghcr"), settings
    )
    # Then the verdict is invalid (the token), with GitHub's fix, not "unreachable"
    assert (result.status, result.reason_code) == ("invalid", "auth")
    assert "read:packages" in result.fix
    assert "pullthrough credentials set ghcr" in result.fix


def test_403_on_v2_with_credentials_refuses_the_credentials(stub_server: StubFactory) -> None:
    # Given a Basic registry whose /v2/ answers 403 to the credentials it is sent
    def respond(method: str, path: str, headers: dict[str, str]) -> Reply:
        if "authorization" not in headers:
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""
        return 403, {}, DENIED

    client = RegistryClient(stub_server(respond).url, credentials=Credentials(USER, TOKEN))
    # When it authenticates
    with pytest.raises(RegistryAuthError) as raised:
        client.authenticate()
    # Then the credentials are refused (every authenticated client may read /v2/); the 401-only hint is not given
    assert type(raised.value) is RegistryAuthError
    assert "refused the credentials" in str(raised.value)
    assert "Docker Hub also answers so" not in str(raised.value)


def test_403_on_a_repository_once_authenticated_is_access_denied(stub_server: StubFactory) -> None:
    # Given credentials the realm accepts, for a repository the registry denies that user
    registry = ghcr_like(stub_server, manifest_status=403)
    client = RegistryClient(registry.url, credentials=Credentials(USER, TOKEN))
    # When a manifest is read
    with pytest.raises(RegistryAccessDenied) as raised:
        client.head_manifest("org/private", "v1")
    # Then it is an authentication error of the access kind, naming the user and the repository and the fix
    assert isinstance(raised.value, RegistryAuthError)
    assert "user 'octocat' is not allowed to read org/private" in str(raised.value)
    assert "give that user read access" in str(raised.value)


@pytest.mark.parametrize("status", [401, 403])
def test_without_credentials_401_or_403_asks_for_credentials(stub_server: StubFactory, status: int) -> None:
    registry = stub_server(lambda m, p, h: (200, {}, b"{}") if p == "/v2/" else (status, {}, DENIED))
    with pytest.raises(RegistryAuthError, match=r"access denied to anonymous requests.*add credentials to the rule"):
        RegistryClient(registry.url).head_manifest("org/private", "v1")


@pytest.mark.parametrize("username", ["dckr_pat_" + "Sw4ppedF1elds" * 3, TOKEN])
def test_a_token_shaped_username_is_never_quoted(stub_server: StubFactory, username: str) -> None:
    # Given credentials whose user name has the shape of a token (fields swapped), refused by the realm
    registry = ghcr_like(stub_server, realm_status=401)
    client = RegistryClient(registry.url, credentials=Credentials(username, "whatever-was-in-accessToken"))
    # When the realm refuses them, Then the error says whose they are without quoting the name
    with pytest.raises(RegistryAuthError) as raised:
        client.authenticate("org/app")
    assert "the user named in the secret" in str(raised.value)
    assert username not in f"{raised.value} {client!r}"


def test_a_token_realm_that_fails_is_the_realm_down_not_refused_credentials(stub_server: StubFactory) -> None:
    # Given a realm answering 503 to every request
    realm = stub_server(lambda m, p, h: (503, {}, b"upstream connect error"))
    challenge = f'Bearer realm="{realm.url}/token",service="ghcr.io"'
    registry = stub_server(lambda m, p, h: (401, {"WWW-Authenticate": challenge}, b""))
    client = RegistryClient(registry.url, credentials=Credentials(USER, TOKEN), retries=1, sleep=lambda _: None)
    # When the client authenticates, Then the culprit is the realm being down (unreachable), not the credentials
    with pytest.raises(RegistryUnavailable, match=r"the token realm .* server error"):
        client.authenticate("org/app")


@pytest.mark.parametrize("answer", [{}, {"token": ""}, {"token": 42}, {"access_token": None}])
def test_a_token_realm_answering_without_a_usable_token_is_an_auth_error(
    stub_server: StubFactory, answer: dict[str, object]
) -> None:
    realm = stub_server(lambda m, p, h: (200, {}, json.dumps(answer).encode()))
    challenge = f'Bearer realm="{realm.url}/token",service="ghcr.io"'
    registry = stub_server(lambda m, p, h: (401, {"WWW-Authenticate": challenge}, b""))
    client = RegistryClient(registry.url, credentials=Credentials(USER, TOKEN))
    with pytest.raises(RegistryAuthError, match="answered 200 without a token"):
        client.authenticate("org/app")


@pytest.mark.parametrize(
    "body",
    [
        {"message": {"nested": "an object where text was expected"}},
        {"errors": "not a list", "detail": ["a", "list"]},
        {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}, "stray"]},
    ],
)
def test_an_error_document_of_any_shape_is_still_a_registry_error(
    stub_server: StubFactory, body: dict[str, object]
) -> None:
    # Given a registry answering 404 with an error document of an unexpected shape
    registry = stub_server(lambda m, p, h: (200, {}, b"{}") if p == "/v2/" else (404, {}, json.dumps(body).encode()))
    # When a manifest is asked for, Then it is Pullthrough's own not-found error, never a crash on the document
    with pytest.raises(RegistryError, match="manifest v1 not found"):
        RegistryClient(registry.url).get_manifest("org/app", "v1")
