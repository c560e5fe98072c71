"""The Docker Hub API (hub.docker.com), for minting and revoking access tokens during a rotation.

Documented endpoints only (docs.docker.com/reference/api/hub/latest): `POST /v2/auth/token` turns an admin's
Docker ID and password (or a PAT that may manage tokens) into a short-lived bearer; `POST /v2/access-tokens`
creates a personal access token, `POST /v2/orgs/{org}/access-tokens` an organization access token; `DELETE` on
either revokes one. The base URL comes from the settings (`PULLTHROUGH_UPSTREAM_ENDPOINTS["hub.docker.com"]`),
so the sandbox's stand-in serves the same code. Failures become `HubApiError`s naming the call and the status;
no token, password or bearer ever appears in one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypedDict, Unpack
from urllib.parse import quote

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError

from pullthrough.errors import PullthroughError
from pullthrough.registry.headers import parse_retry_after

logger = logging.getLogger(__name__)

HUB_HOST = "hub.docker.com"
# The narrowest scopes that still pull public images: what ECR pull-through cache needs.
PERSONAL_SCOPES = ("repo:public_read",)
ORGANIZATION_RESOURCES = ({"type": "TYPE_REPO", "path": "*/*/public", "scopes": ["repo-pull"]},)
MAX_LABEL = 100


class HubApiError(PullthroughError):
    """A Docker Hub API call failed; names the call and the HTTP status, never a credential."""

    reason = "hub_error"

    def __init__(self, call: str, message: str, status: int | None = None) -> None:
        self.call = call
        self.status = status
        status_text = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"Docker Hub API {call}: {message}{status_text}")


class HubAuthError(HubApiError):
    """Docker Hub refused the admin credentials or the bearer (401), or the account may not do this (403)."""

    reason = "auth"


class HubRateLimited(HubApiError):
    """Docker Hub answered 429 and the wait it asked for was too long to sit out."""

    reason = "rate_limited"

    def __init__(self, call: str, message: str, status: int | None = 429, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(call, message, status)


class HubUnavailable(HubApiError):
    """Docker Hub could not be reached, timed out, or answered 5xx."""

    reason = "upstream_down"


class HubNotFound(HubApiError):
    """The token (or organization) does not exist."""

    reason = "not_found"


@dataclass(frozen=True)
class AccessToken:
    """A freshly minted access token; `token` is shown once by Docker Hub and never in repr."""

    id: str
    token: str = field(repr=False)
    label: str
    expires_at: datetime | None
    organization: str | None = None


class HubOptions(TypedDict, total=False):
    """How a HubClient talks HTTP; every key optional (the defaults are in `HubClient.__init__`)."""

    timeout: float  # seconds to connect, and to wait for each read (10)
    retries: int  # further attempts after a 429, a 5xx (not for a create) or a refused connection (2)
    max_wait: float  # caps one wait on a 429: a longer Retry-After is raised, not slept through (30)
    pool: urllib3.PoolManager | None  # a pool shared with others (None: the client makes one)
    sleep: Callable[[float], None]  # how to wait between attempts (time.sleep)
    clock: Callable[[], float]  # unix seconds, to read Docker Hub's X-Retry-After (time.time)


class HubClient:
    """A Docker Hub API client: log in once, then create and revoke access tokens."""

    def __init__(self, base_url: str = f"https://{HUB_HOST}", **options: Unpack[HubOptions]) -> None:
        """`options`: timeout, retries, max_wait, pool, sleep, clock (HubOptions).

        `max_wait` caps one wait on a 429: a longer Retry-After is raised as HubRateLimited, not slept through.
        """
        self.base_url = base_url.rstrip("/")
        timeout = options.get("timeout", 10.0)
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._retries = max(0, options.get("retries", 2))
        self._max_wait = options.get("max_wait", 30.0)
        pool = options.get("pool")
        self._pool = pool if pool is not None else urllib3.PoolManager(num_pools=2, maxsize=2)
        self._sleep = options.get("sleep", time.sleep)
        self._clock = options.get("clock", time.time)
        self._bearer: str | None = None
        self._secrets: list[str] = []

    def __repr__(self) -> str:
        return f"HubClient({self.base_url!r}, logged_in={self._bearer is not None})"

    def login(self, identifier: str, secret: str) -> None:
        """POST /v2/auth/token: exchange the admin's Docker ID and password (or PAT) for a bearer."""
        self._secrets.append(secret)
        data = self._call("POST", "/v2/auth/token", "login", {"identifier": identifier, "secret": secret}, auth=False)
        bearer = data.get("access_token") or data.get("token")
        if not isinstance(bearer, str) or not bearer:
            raise HubApiError("login", "answered without an access_token", 200)
        self._bearer = bearer
        self._secrets.append(bearer)

    def create_token(
        self,
        label: str,
        *,
        expires_at: datetime | None = None,
        organization: str | None = None,
        description: str | None = None,
    ) -> AccessToken:
        """Create a read-only public-pull access token: personal, or of `organization` (an organization token)."""
        label = label[:MAX_LABEL]
        expiry = _iso(expires_at) if expires_at is not None else None
        if organization is None:
            body: dict[str, Any] = {"token_label": label, "scopes": list(PERSONAL_SCOPES)}
            path, call = "/v2/access-tokens", "create personal access token"
        else:
            body = {"label": label, "resources": [dict(r) for r in ORGANIZATION_RESOURCES]}
            if description:
                body["description"] = description
            path, call = f"/v2/orgs/{quote(organization, safe='')}/access-tokens", "create organization access token"
        if expiry is not None:
            body["expires_at"] = expiry
        # Creating is not idempotent: a 5xx might have created a token, so only refusals (429) are retried.
        data = self._call("POST", path, call, body, retry_server_errors=False)
        token = data.get("token")
        token_id = data.get("uuid") or data.get("id")
        if not isinstance(token, str) or not token or not isinstance(token_id, str) or not token_id:
            raise HubApiError(call, "answered without the token and its id", 201)
        self._secrets.append(token)
        return AccessToken(
            id=token_id,
            token=token,
            label=str(data.get("token_label") or data.get("label") or label),
            expires_at=_parse_time(data.get("expires_at")),
            organization=organization,
        )

    def revoke_token(self, token_id: str, *, organization: str | None = None) -> bool:
        """DELETE a token by id; True when it was revoked now, False when Docker Hub no longer knew it."""
        if organization is None:
            path, call = f"/v2/access-tokens/{quote(token_id, safe='')}", f"revoke personal access token {token_id}"
        else:
            path = f"/v2/orgs/{quote(organization, safe='')}/access-tokens/{quote(token_id, safe='')}"
            call = f"revoke organization access token {token_id} of {organization}"
        try:
            self._call("DELETE", path, call, None)
        except HubNotFound:
            return False
        return True

    # --- transport -------------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        call: str,
        body: Mapping[str, Any] | None,
        *,
        auth: bool = True,
        retry_server_errors: bool = True,
    ) -> dict[str, Any]:
        headers = self._headers(call, body, auth=auth)
        payload = json.dumps(body).encode() if body is not None else None
        attempt = 0
        while True:
            try:
                response = self._pool.request(
                    method,
                    self.base_url + path,
                    body=payload,
                    headers=headers,
                    timeout=self._timeout,
                    retries=False,
                    redirect=False,
                )
            except ReadTimeoutError:
                raise HubUnavailable(call, f"no answer within {self._timeout.read_timeout}s") from None
            except NewConnectionError as exc:
                # Nothing was sent: safe to try again even for a create.
                if attempt < self._retries:
                    attempt += 1
                    self._wait(call, self._backoff(attempt), "connection refused")
                    continue
                raise HubUnavailable(call, f"cannot connect to {self.base_url} ({type(exc).__name__})") from None
            except HTTPError as exc:
                raise HubUnavailable(call, f"the connection failed ({type(exc).__name__})") from None
            status = response.status
            wait = self._retry_after_answer(response, attempt, retry_server_errors=retry_server_errors)
            if wait is not None:
                attempt += 1
                self._wait(call, wait, f"HTTP {status}")
                continue
            if 200 <= status < 300:
                return _json(response.data)
            self._fail(call, status, response.data, response.headers)

    def _headers(self, call: str, body: Mapping[str, Any] | None, *, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            if self._bearer is None:
                raise HubAuthError(call, "not logged in: call login() with the admin credentials first")
            headers["Authorization"] = f"Bearer {self._bearer}"
        return headers

    def _retry_after_answer(
        self, response: urllib3.BaseHTTPResponse, attempt: int, *, retry_server_errors: bool
    ) -> float | None:
        """Seconds to wait before another attempt after a 429 (or a 5xx, when retried); None: no other attempt."""
        status = response.status
        if not (status == 429 or (retry_server_errors and status >= 500)):
            return None
        wait = self._retry_wait(response.headers) if status == 429 else None
        wait = wait if wait is not None else self._backoff(attempt + 1)
        return wait if attempt < self._retries and wait <= self._max_wait else None

    def _retry_wait(self, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait from Hub's `X-Retry-After` (a unix time) or a standard `Retry-After`."""
        lowered = {key.lower(): value for key, value in headers.items()}
        stamp = lowered.get("x-retry-after")
        if stamp and stamp.strip().isdigit():
            return max(0.0, float(stamp) - self._clock())
        return parse_retry_after(lowered.get("retry-after"))

    def _backoff(self, attempt: int) -> float:
        return float(min(self._max_wait, 0.25 * 2.0 ** (attempt - 1)))

    def _wait(self, call: str, seconds: float, why: str) -> None:
        logger.warning("Docker Hub API call retried", extra={"call": call, "why": why, "wait_seconds": seconds})
        self._sleep(seconds)

    def _fail(self, call: str, status: int, data: bytes, headers: Mapping[str, str]) -> NoReturn:
        detail = self._detail(data)
        if status in (401, 403):
            what = "refused the credentials" if status == 401 else "refused the request for this account"
            fix = (
                "check the admin secret's username and password (or a PAT allowed to manage tokens)"
                if status == 401
                else "the admin must own the account or be an owner of the organization"
            )
            raise HubAuthError(call, f"{what}{detail}; {fix}", status)
        if status == 404:
            raise HubNotFound(call, f"not found{detail}", status)
        if status == 429:
            wait = self._retry_wait(headers)
            hint = f"; retry in {wait:.0f}s" if wait is not None else ""
            raise HubRateLimited(call, f"rate limited{detail}{hint}", status, retry_after=wait)
        if status >= 500:
            raise HubUnavailable(call, f"server error{detail}", status)
        raise HubApiError(call, f"unexpected answer{detail}", status)

    def _detail(self, data: bytes) -> str:
        try:
            document = json.loads(data)
        except ValueError:
            return ""
        parts = []
        if isinstance(document, dict):
            for key in ("message", "detail", "errinfo", "error"):
                value = document.get(key)
                if isinstance(value, str) and value and value not in parts:
                    parts.append(value)
        text = "; ".join(parts)[:200]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return f" ({text})" if text else ""


def _json(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    try:
        document = json.loads(data)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
