"""A stand-in for the Docker Hub API (hub.docker.com) on 127.0.0.1, for the docker-hub-api rotation strategy.

It serves the documented endpoints Pullthrough uses, with their request and response shapes:

    POST   /v2/auth/token                        {"identifier", "secret"} -> {"access_token"}
    POST   /v2/access-tokens                     {"token_label", "scopes", "expires_at"?} -> 201 personal token
    POST   /v2/orgs/{org}/access-tokens          {"label", "resources", "expires_at"?, "description"?} -> 201
    DELETE /v2/access-tokens/{uuid}              -> 204
    DELETE /v2/orgs/{org}/access-tokens/{id}     -> 204

A minted token is registered with the sandbox's token realm (`realm.add_user(owner, token)`), so the upstream
accepts it at once; revoking it removes the owner from the realm when it is the owner's live token. The realm
keeps one token per user, so minting a new token for an owner replaces the previous one there.

    with HubApi(sandbox, admins={"hubadmin": "admin-password"}, organizations={"acmecorp": {"hubadmin"}}) as hub:
        hub.fail(401, path="/v2/auth/token")              # next login refused
        hub.fail(429, retry_after=2, times=1)             # next call rate limited (X-Retry-After: now + 2)
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from sandbox.registries.upstream import LoopbackServer, LoopbackService

BEARER_SECONDS = 600  # Hub's access_token "expires in 10 minutes"
PERSONAL_SCOPES = frozenset({"repo:admin", "repo:write", "repo:read", "repo:public_read"})


class Realm(Protocol):
    """What the hub needs from the sandbox: the token realm's users."""

    users: MutableMapping[str, str]

    def add_user(self, name: str, token: str) -> None: ...

    def remove_user(self, name: str) -> None: ...


@dataclass
class MintedToken:
    """A token the hub created; `owner` is the user (personal) or the organization (organization token)."""

    id: str
    owner: str
    token: str = field(repr=False)
    label: str
    organization: str | None
    scopes: list[str]
    resources: list[dict[str, Any]]
    expires_at: str | None
    created_by: str
    active: bool = True


@dataclass
class HubFault:
    """Answer `status` to the next `times` requests matching `method` and `path` (None: every one)."""

    status: int
    method: str | None
    path: re.Pattern[str]
    times: int | None
    retry_after: float | None
    hits: int = 0


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        hub: HubApi = self.server.owner
        if hub.log_path is not None:
            with hub.log_path.open("a") as handle:
                handle.write(f"{self.log_date_time_string()} {format % args}\n")

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        hub: HubApi = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        hub.count(self.command, path)
        fault = hub.take_fault(self.command, path)
        if fault is not None:
            self._fault(fault)
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, {"message": "request body is not JSON", "errinfo": {}})
            return
        status, answer = hub.route(self.command, path, body if isinstance(body, dict) else {}, self._bearer())
        self._send(status, answer)

    def _bearer(self) -> str | None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    def _fault(self, fault: HubFault) -> None:
        headers: dict[str, str] = {}
        if fault.status == 429:
            wait = fault.retry_after if fault.retry_after is not None else 60.0
            # Hub's documented header: a unix time to call again at (not a number of seconds).
            headers["X-Retry-After"] = str(int(time.time() + wait))
            body: dict[str, Any] = {"detail": "Rate limit exceeded", "message": "too many requests"}
        elif fault.status == 401:
            body = {"detail": "Incorrect authentication credentials.", "message": "unauthorized"}
        else:
            body = {"detail": f"injected fault {fault.status}", "message": "error"}
        self._send(fault.status, body, headers)

    def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)


class HubApi:
    """The Docker Hub API stand-in; `tokens` holds every token minted, `counters` every (method, path) served."""

    def __init__(
        self,
        realm: Realm | None = None,
        *,
        admins: dict[str, str] | None = None,
        organizations: dict[str, set[str]] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.realm = realm
        self.admins: dict[str, str] = dict(admins or {})
        self.organizations: dict[str, set[str]] = {org: set(owners) for org, owners in (organizations or {}).items()}
        self.log_path = log_path
        self.tokens: dict[str, MintedToken] = {}
        self.counters: Counter[tuple[str, str]] = Counter()
        self._bearers: dict[str, tuple[str, float]] = {}
        self._faults: list[HubFault] = []
        self._lock = threading.Lock()
        self._service = LoopbackService(_HubHandler, self)

    # --- lifecycle -------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._service.url

    def start(self) -> HubApi:
        """Listen on a free loopback port."""
        self._service.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections."""
        self._service.stop()

    def __enter__(self) -> HubApi:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- test controls ---------------------------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str = "",
        times: int | None = 1,
        retry_after: float | None = None,
    ) -> HubFault:
        """Answer `status` (401, 429 with X-Retry-After, 5xx...) to the next matching requests."""
        fault = HubFault(status, method.upper() if method else None, re.compile(path), times, retry_after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every fault not yet used up."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> HubFault | None:
        """The fault for this request, consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method == method) and fault.path.search(path):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def count(self, method: str, path: str) -> None:
        """Record a request by method and path with ids replaced by `{id}`."""
        shape = re.sub(r"/access-tokens/[^/]+$", "/access-tokens/{id}", path)
        shape = re.sub(r"^/v2/orgs/[^/]+/", "/v2/orgs/{org}/", shape)
        with self._lock:
            self.counters[(method, shape)] += 1

    def active(self, owner: str | None = None) -> list[MintedToken]:
        """Tokens not revoked, of one owner when given."""
        with self._lock:
            return [t for t in self.tokens.values() if t.active and (owner is None or t.owner == owner)]

    # --- the API ---------------------------------------------------------------------------------------------------

    def route(
        self, method: str, path: str, body: dict[str, Any], bearer: str | None
    ) -> tuple[int, dict[str, Any] | None]:
        """One request: (status, JSON body or None)."""
        if method == "POST" and path == "/v2/auth/token":
            return self._login(body)
        user = self._user(bearer)
        if user is None:
            return 401, {"detail": "Authentication credentials were not provided or are invalid.", "message": "401"}
        if method == "POST" and path == "/v2/access-tokens":
            return self._create_personal(user, body)
        match = re.fullmatch(r"/v2/orgs/([^/]+)/access-tokens(?:/([^/]+))?", path)
        if match is not None:
            answer = self._organization_route(method, user, *match.groups(), body)
            if answer is not None:
                return answer
        match = re.fullmatch(r"/v2/access-tokens/([^/]+)", path)
        if method == "DELETE" and match is not None:
            return self._revoke(match.group(1), owner=user)
        return 404, {"detail": f"no route {method} {path}", "message": "not found"}

    def _organization_route(
        self, method: str, user: str, org: str, token_id: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None] | None:
        """/v2/orgs/<org>/access-tokens[/<id>]: an owner of the organization creates or revokes; None: no route."""
        if user not in self.organizations.get(org, set()):
            return 403, {"detail": f"{user} is not an owner of organization {org}", "message": "forbidden"}
        if method == "POST" and token_id is None:
            return self._create_organization(user, org, body)
        if method == "DELETE" and token_id is not None:
            return self._revoke(token_id, owner=org)
        return None

    def _login(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        identifier, secret = body.get("identifier"), body.get("secret")
        if not isinstance(identifier, str) or not isinstance(secret, str):
            return 400, {"message": "identifier and secret are required", "errinfo": {}}
        expected = self.admins.get(identifier)
        if expected is None or not secrets.compare_digest(expected.encode(), secret.encode()):
            return 401, {"detail": "Incorrect authentication credentials.", "message": "unauthorized"}
        bearer = secrets.token_urlsafe(32)
        with self._lock:
            self._bearers[bearer] = (identifier, time.monotonic() + BEARER_SECONDS)
        return 200, {"access_token": bearer}

    def _user(self, bearer: str | None) -> str | None:
        if bearer is None:
            return None
        with self._lock:
            found = self._bearers.get(bearer)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def _create_personal(self, user: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        label, scopes = body.get("token_label"), body.get("scopes")
        if not isinstance(label, str) or not 1 <= len(label) <= 100:
            return 400, {"message": "token_label: 1 to 100 characters", "errinfo": {"field": "token_label"}}
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= PERSONAL_SCOPES:
            return 400, {"message": f"scopes: some of {sorted(PERSONAL_SCOPES)}", "errinfo": {"field": "scopes"}}
        minted = self._mint(user, None, label, scopes, [], body.get("expires_at"))
        return 201, {
            "uuid": minted.id,
            "client_id": "HUB",
            "creator_ip": "127.0.0.1",
            "creator_ua": "pullthrough",
            "created_at": _now(),
            "last_used": None,
            "generated_by": "manual",
            "is_active": True,
            "token": minted.token,
            "token_label": minted.label,
            "scopes": minted.scopes,
            "expires_at": minted.expires_at,
        }

    def _create_organization(self, user: str, org: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        label, resources = body.get("label"), body.get("resources")
        if not isinstance(label, str) or not label:
            return 400, {"message": "label is required", "errinfo": {"field": "label"}}
        if not isinstance(resources, list) or not resources:
            return 400, {"message": "resources: at least one", "errinfo": {"field": "resources"}}
        minted = self._mint(user, org, label, [], resources, body.get("expires_at"))
        return 201, {
            "id": minted.id,
            "label": minted.label,
            "created_by": user,
            "is_active": True,
            "created_at": _now(),
            "expires_at": minted.expires_at,
            "last_used_at": None,
            "resources": minted.resources,
            "token": minted.token,
        }

    def _mint(
        self,
        created_by: str,
        organization: str | None,
        label: str,
        scopes: list[str],
        resources: list[dict[str, Any]],
        expires_at: object,
    ) -> MintedToken:
        """A new token `created_by` a user: owned by `organization` when given (an organization token), else by
        the user (a personal token)."""
        owner = organization or created_by
        prefix = "dckr_oat_" if organization else "dckr_pat_"
        minted = MintedToken(
            id=str(uuid.uuid4()),
            owner=owner,
            token=prefix + secrets.token_urlsafe(24),
            label=label,
            organization=organization,
            scopes=list(scopes),
            resources=list(resources),
            expires_at=expires_at if isinstance(expires_at, str) else None,
            created_by=created_by,
        )
        with self._lock:
            self.tokens[minted.id] = minted
        if self.realm is not None:
            self.realm.add_user(owner, minted.token)
        return minted

    def _revoke(self, token_id: str, *, owner: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            minted = self.tokens.get(token_id)
            if minted is None or minted.owner != owner or not minted.active:
                return 404, {"detail": "access token not found", "message": "not found"}
            minted.active = False
        if self.realm is not None and self.realm.users.get(owner) == minted.token:
            self.realm.remove_user(owner)
        return 204, None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
