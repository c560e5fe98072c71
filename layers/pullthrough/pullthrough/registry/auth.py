"""How a client proves who it is to a registry: credentials, the challenge of `/v2/`, and the Bearer token cache.

A registry answers an anonymous `GET /v2/` with 200 (no authentication), or with 401 and a WWW-Authenticate
challenge: Basic (send the credentials with every request) or Bearer (ask the named token realm for a token per
scope, Docker's token spec; or one token for several scopes, `share`, cached under each). Separate from the
transport, which asks it for an Authorization header and for a second chance after a 401, and from the client's
operations, which never see a token.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlencode, urlsplit

import urllib3

from pullthrough import redaction
from pullthrough.errors import RegistryAuthError, RegistryError
from pullthrough.registry.failures import Failures
from pullthrough.registry.headers import Challenge, choose_challenge, parse_www_authenticate
from pullthrough.registry.transport import Request, Transport

# Docker's token spec: a token without expires_in lives 60 seconds.
_DEFAULT_TOKEN_SECONDS = 60


@dataclass(frozen=True)
class Credentials:
    """A username and a password or access token for one registry; the password never appears in repr or str.

    Making one registers the password with `pullthrough.redaction`: from then on no log line of the process shows it,
    in any of the forms it travels in (a Basic header, a URL, base64).
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        redaction.register(self.password)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"

    def __str__(self) -> str:
        return self.__repr__()


def basic(credentials: Credentials) -> str:
    """The Basic Authorization header value of `credentials`."""
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def pull_scope(repository: str | None) -> str | None:
    """The token scope that reads `repository` (None: no repository, no scope)."""
    return f"repository:{repository}:pull" if repository else None


class Authenticator:
    """The authentication state of one client: the registry's challenge and its Bearer tokens, per scope."""

    def __init__(self, transport: Transport, ping_url: str, failures: Failures) -> None:
        self.credentials = failures.credentials
        self._transport = transport
        self._ping_url = ping_url
        self._failures = failures
        self._name = failures.registry
        self._lock = threading.Lock()
        self._pinging = threading.Lock()  # threads that find no challenge yet wait for one GET /v2/
        self._challenge: Challenge | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._flights: dict[str, threading.Lock] = {}  # one token request in flight per scope

    def discover(self, repository: str | None) -> Challenge:
        """GET /v2/ without credentials and remember how the registry wants to be authenticated."""
        response = self._transport.send(Request("GET", self._ping_url, "ping", repository))
        if response.status == 200:
            challenge = Challenge(scheme="none")
        elif response.status == 401:
            found = choose_challenge(parse_www_authenticate(response.headers.getlist("WWW-Authenticate")))
            if found is None:
                raise RegistryError(
                    self._name, repository, "/v2/ answered 401 without a Basic or Bearer WWW-Authenticate", 401
                )
            challenge = found
        else:
            self._failures.fail(response, repository, "the /v2/ endpoint (is this a registry?)", resource=False)
        self._challenge = challenge
        return challenge

    def _discovered(self, repository: str | None) -> Challenge:
        """The challenge, from one GET /v2/ however many threads need it at once."""
        with self._pinging:
            return self._challenge or self.discover(repository)

    def authorization(self, scope: str | None, repository: str | None) -> str | None:
        """The Authorization header for a request in `scope` (None: send none)."""
        challenge = self._challenge or self._discovered(repository)
        if challenge.scheme == "basic":
            return basic(self.credentials) if self.credentials else None
        if challenge.scheme == "bearer":
            return "Bearer " + self.token(challenge, scope, repository)
        return None

    def token(self, challenge: Challenge, scope: str | None, repository: str | None) -> str:
        """A Bearer token for `scope`: the cached one while it lives, else a new one from the challenge's realm."""
        key = scope or ""
        with self._lock:
            cached = self._tokens.get(key)
            flight = self._flights.setdefault(key, threading.Lock())
        if cached is not None and cached[1] > self._transport.clock():
            return cached[0]
        # Threads that need the same scope's token at once wait for one request instead of each sending their own.
        with flight:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached[1] > self._transport.clock():
                return cached[0]
            return self._request_token(challenge, [scope], repository)

    def share(self, scopes: Sequence[str]) -> int:
        """Ask the realm once for a token that serves every scope in `scopes` not already served by a live token.

        Docker's token spec has the client repeat `scope` once per scope it needs, and the realm answer with a token
        for the access granted ("If the client only has a subset of the requested access it must not be considered
        an error"); https://distribution.github.io/distribution/spec/auth/token/. The token is cached under each
        of the scopes, so requests in any of them use it; a request it does not authorise (a scope the realm did
        not grant) gets a 401, after which that scope alone asks for its own token (`renew`). Returns the token
        requests sent: 0 (nothing missing, or the registry wants no Bearer token) or 1.
        """
        if not scopes:
            return 0
        challenge = self._challenge or self._discovered(None)
        if challenge.scheme != "bearer":
            return 0
        now = self._transport.clock()
        with self._lock:
            missing = [s for s in dict.fromkeys(scopes) if not ((found := self._tokens.get(s)) and found[1] > now)]
        if not missing:
            return 0
        # Not retried: a shared token saves requests, and if the realm cannot give it now each repository asks for
        # its own (retried as usual), so a failure here costs one request and fails nothing.
        self._request_token(challenge, missing, None, retries=0)
        return 1

    def _request_token(
        self, challenge: Challenge, scopes: Sequence[str | None], repository: str | None, *, retries: int | None = None
    ) -> str:
        realm = challenge.realm
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryAuthError(
                self._name, repository, f"the Bearer challenge names no usable token realm ({realm!r})", 401
            )
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", scope) for scope in scopes if scope)
        headers: dict[str, str] = {}
        if self.credentials is not None:
            # No `account` parameter: the distribution token spec makes it optional ("if it can be inferred from
            # client authentication"), the Basic header names the user, and a query string ends up in access logs.
            headers["Authorization"] = basic(self.credentials)
        url = realm + ("&" if "?" in realm else "?") + urlencode(params) if params else realm
        started = self._transport.clock()
        response = self._transport.send(Request("GET", url, "token", repository, headers=headers, retries=retries))
        if response.status in (401, 403):
            self._realm_refused(response, realm, repository)
        if response.status != 200:
            self._failures.fail(response, repository, f"the token realm {realm}")
        try:
            document = json.loads(response.data)
            token = document.get("token") or document.get("access_token")
            lifetime = float(document.get("expires_in") or _DEFAULT_TOKEN_SECONDS)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(
                self._name, repository, f"the token realm {realm} answered 200 without a token", response.status
            )
        # Renew a little early so a token never expires between the check and the request it authorises.
        expires = started + lifetime - min(10.0, lifetime / 10)
        with self._lock:
            for scope in scopes:
                self._tokens[scope or ""] = (token, expires)
        return token

    def _realm_refused(self, response: urllib3.BaseHTTPResponse, realm: str, repository: str | None) -> NoReturn:
        # The token spec has a realm grant what access it can (possibly none) rather than report authorization
        # errors, so a realm refusing outright refuses the credentials: Docker Hub answers 401, GHCR 403 DENIED.
        detail = self._failures.detail(response)
        who = (
            f"the credentials of {redaction.user_label(self.credentials.username)}"
            if self.credentials
            else "anonymous access"
        )
        fix = "check the username and access token" if self.credentials else "add credentials to the rule"
        raise RegistryAuthError(
            self._name, repository, f"the token realm {realm} refused {who}{detail}; {fix}", response.status
        )

    def forget_token(self, scope: str | None) -> None:
        """Drop the cached token of `scope`: the next request asks the realm again."""
        with self._lock:
            self._tokens.pop(scope or "", None)

    def renew(self, response: urllib3.BaseHTTPResponse, scope: str | None) -> bool:
        """After a 401: take the registry's new challenge; True when answering it could change the outcome."""
        found = choose_challenge(parse_www_authenticate(response.headers.getlist("WWW-Authenticate")))
        if found is None:
            return False
        previous = self._challenge
        self._challenge = Challenge(scheme=found.scheme, realm=found.realm, service=found.service)
        if found.scheme == "bearer":
            self.forget_token(scope)
            return True
        # Basic: resending the same credentials cannot help; sending them for the first time can.
        return self.credentials is not None and (previous is None or previous.scheme != "basic")
