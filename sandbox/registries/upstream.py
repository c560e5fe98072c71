"""The upstream front: Docker Hub's behaviour in front of a real distribution registry on 127.0.0.1.

It serves the token realm at `/token` (as auth.docker.io does) and forwards every `/v2/` request to the
distribution registry behind it, streaming bodies and rewriting nothing. On manifest responses it adds Hub's
rate-limit headers from a per-user (or per-address when anonymous) count of manifest GETs; a HEAD is free.

Docker's usage page: "A pull request for a multi-arch image will count as one pull for each different architecture
requested"; whether the index GET itself also counts is not said (an older version of the page defined a pull as
"up to two GET requests on registry manifest URLs"). The front counts every manifest GET, index included: the more
demanding reading, and the one Pullthrough's planner budgets for.

A blob GET with a valid token is answered as Docker Hub answers it: a 307 redirect to the blob in its storage (a
CDN URL that needs no registry token, signed and short-lived), served here under `/cdn/`. Clients that follow
redirects (skopeo, ECR's importer, the library) see the same bytes; `front.redirect_blobs = False` serves them
directly instead.
Tests inject faults through `front.faults`:

    front.faults.status(503, path=MANIFESTS, times=2)       # next 2 manifest requests answer 503
    front.faults.too_many_requests(retry_after=1)            # next request: Hub-style 429 with Retry-After
    front.faults.delay(0.5, method="GET", path=BLOBS)        # slow, then served normally
    front.faults.reset(path=BLOBS)                           # connection reset halfway through the body
    front.faults.truncate(path=BLOBS)                        # body cut short, connection closed cleanly
    front.faults.corrupt(path=MANIFESTS)                     # one digest character flipped in the body
    front.faults.token_status(500, repository="private/app") / front.faults.token_stall()
    front.faults.clear()                                     # drops every fault, releases stalled requests

A fault's `path` is a regex searched in the decoded request target (path and query); scope it to a test's own
repository so that a proxy's background requests cannot use it up.

The faults live in sandbox/registries/faults.py and the loopback plumbing (`LoopbackService`, `ForwardingHandler`,
shared with `sandbox.registries.ecr_endpoint`) in sandbox/registries/loopback.py; their names stay importable from here.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.registries.faults import (
    ANY,
    BLOBS,
    CDN,
    DEFAULT_BODIES,
    MANIFESTS,
    OFF,
    TAGS,
    TOKEN,
    Fault,
    Faults,
    Network,
    corrupt_bytes,
)
from sandbox.registries.loopback import (
    ForwardingHandler,
    LoopbackServer,
    LoopbackService,
    NoDelayHTTPConnection,
    error_body,
    request_kind,
)
from sandbox.registries.signed_urls import UrlSigner
from sandbox.registries.tokens import TOKEN_TTL_SECONDS, TokenIssuer, parse_scopes, token_claims

__all__ = [
    "ANY",
    "BLOBS",
    "CDN",
    "MANIFESTS",
    "TAGS",
    "TOKEN",
    "Fault",
    "Faults",
    "ForwardingHandler",
    "LoopbackServer",
    "LoopbackService",
    "Network",
    "NoDelayHTTPConnection",
    "UpstreamFront",
    "corrupt_bytes",
    "error_body",
    "request_kind",
]

RATE_WINDOW_SECONDS = 21600  # Docker Hub's window: `ratelimit-limit: 100;w=21600`
CDN_URL_SECONDS = 600  # how long a blob redirect stays valid (Docker Hub's CDN URLs are short-lived too)


class _FrontHandler(ForwardingHandler):
    server: LoopbackServer

    def route(self) -> None:
        front: UpstreamFront = self.server.owner
        path = self.request_path
        kind = request_kind(path)
        front.count(self.command, kind, self.headers.get("User-Agent", ""))
        held = front.network.delay(kind)
        if held:
            time.sleep(held)  # the round trip the network model adds (faults.Network); not a synchronisation
        fault = front.faults.take(self.command, unquote(self.path))
        if fault is not None and fault.action == "delay":
            front.faults.wait(fault)
            fault = None
        if fault is not None and fault.action == "status":
            self.send_simple(fault.status, fault.body, fault.headers)
            return
        if kind == "token":
            self._token(front, fault)
            return
        backend = front.backend
        if backend is None:
            self.send_simple(502, DEFAULT_BODIES[502], {"Content-Type": "text/html"})
            return
        if kind == "cdn":
            self._cdn(front, backend, fault)
            return
        if kind == "blob" and self.command == "GET" and front.redirect_blobs and self._redirect_blob(front, backend):
            return
        extra: dict[str, str] = {}
        if kind == "manifest" and self.command in ("GET", "HEAD"):
            extra, allowed = front.count_pull(self.command, self._subject(), self.client_address[0])
            if not allowed:
                self.send_simple(429, DEFAULT_BODIES[429], extra)
                return
        self.forward(backend, self.path, extra_headers=extra, fault=fault)

    def _write(self, data: bytes, chunked: bool) -> None:
        """Send body bytes, then wait out the network model's per-connection cap (this handler is one connection)."""
        super()._write(data, chunked)
        wait = self.server.owner.network.pace(len(data))
        if wait:
            time.sleep(wait)

    def _redirect_blob(self, front: UpstreamFront, backend: tuple[str, int]) -> bool:
        """Answer a blob GET with a redirect to its CDN URL when the registry would serve it (a HEAD says so)."""
        conn = NoDelayHTTPConnection(*backend, timeout=30)
        try:
            conn.request("HEAD", self.request_path, headers={"Authorization": self.headers.get("Authorization", "")})
            status = conn.getresponse().status
        finally:
            conn.close()
        if status != 200:
            return False  # the registry's own answer (401, 404, ...) goes back as it is
        repository, _, digest = self.request_path[len("/v2/") :].rpartition("/blobs/")
        location = front.cdn_url(repository, digest)
        self.send_simple(307, b"", {"Location": location, "Content-Type": "text/plain"})
        return True

    def _cdn(self, front: UpstreamFront, backend: tuple[str, int], fault: Fault | None) -> None:
        """Serve a blob from its signed CDN URL: no registry token, but the signature and expiry must hold."""
        target = front.cdn_target(self.path)
        if target is None:
            self.send_simple(403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
            return
        repository, _ = target
        token = front.issuer.sign("cdn", [{"type": "repository", "name": repository, "actions": ["pull"]}])
        del self.headers["Authorization"]  # a CDN URL carries its own authority; whatever the client sent is not used
        self.headers["Authorization"] = f"Bearer {token}"
        path = f"/v2/{repository}/blobs/{target[1]}"
        self.forward(backend, path, fault=fault)

    def _subject(self) -> str:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return ""
        subject = token_claims(value.strip()).get("sub", "")
        return subject if isinstance(subject, str) else ""

    def _token(self, front: UpstreamFront, fault: Fault | None) -> None:
        if self.command not in ("GET", "HEAD"):
            self.send_simple(405, error_body("UNSUPPORTED", "the token realm answers GET"), fault=fault)
            return
        user = None
        header = self.headers.get("Authorization")
        if header:
            user = front.check_basic(header)
            if user is None:
                # auth.docker.io's answer to a wrong username or token, whatever the scope.
                self.send_simple(401, b'{"details":"incorrect username or password"}\n', fault=fault)
                return
        query = parse_qs(urlsplit(self.path).query)
        token = front.issue_token(user, query.get("scope", []))
        issued = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"token": token, "access_token": token, "expires_in": TOKEN_TTL_SECONDS, "issued_at": issued}
        self.send_simple(200, json.dumps(body).encode(), fault=fault)


class UpstreamFront:
    """Token realm plus forwarding front with Hub's rate-limit headers, counters and fault injection."""

    def __init__(
        self,
        issuer: TokenIssuer,
        users: MutableMapping[str, str],
        *,
        anonymous_limit: int = 100,
        user_limit: int = 200,
        log_path: Path | None = None,
    ) -> None:
        self.issuer = issuer
        self.users = users
        self.anonymous_limit = anonymous_limit
        self.user_limit = user_limit
        self.log_path = log_path
        self.counters: Counter[tuple[str, str]] = Counter()
        # The same requests by client: (client, method, kind); client is the User-Agent's product ("python-urllib3"
        # for the library's RegistryClient, "" for the sandbox's ECR importer, which sends none).
        self.clients: Counter[tuple[str, str, str]] = Counter()
        self.network: Network = OFF  # the bench's network model (faults.Network); off for tests
        self.pulls: Counter[str] = Counter()  # manifest GETs per rate-limit source (user name or client address)
        self.faults = Faults()
        self.backend: tuple[str, int] | None = None
        self.redirect_blobs = True
        self._cdn = UrlSigner(CDN_URL_SECONDS, "expires", "signature")
        self._lock = threading.Lock()
        self._service = LoopbackService(_FrontHandler, self)

    @property
    def url(self) -> str:
        return self._service.url

    @property
    def port(self) -> int:
        return self._service.port

    @property
    def running(self) -> bool:
        return self._service.running

    def start(self) -> None:
        """Listen on 127.0.0.1 (the same port again after a stop)."""
        self._service.start()

    def stop(self) -> None:
        """Stop listening, cut open connections, release stalled requests: clients see connection refused."""
        self.faults.release()
        self._service.stop()

    def cdn_url(self, repository: str, digest: str) -> str:
        """A signed, expiring URL for a blob, as Docker Hub's redirect hands out."""
        return f"{self.url}/cdn/{repository}/blobs/{digest}?{self._cdn.query(repository, digest)}"

    def cdn_target(self, target: str) -> tuple[str, str] | None:
        """(repository, digest) of a CDN URL whose signature holds and has not expired, else None."""
        parts = urlsplit(target)
        repository, _, digest = parts.path[len("/cdn/") :].rpartition("/blobs/")
        return (repository, digest) if self._cdn.holds(repository, digest, parts.query) else None

    def is_public(self, repository: str) -> bool:
        """Anonymous pulls are allowed everywhere except under `private/`."""
        return not repository.startswith("private/")

    def check_basic(self, header: str) -> str | None:
        """The user name when the Basic credentials match `users`, else None."""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.users.get(name)
        if not sep or expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return name

    def issue_token(self, user: str | None, scopes: list[str]) -> str:
        """A token for the scopes this caller may have: users pull and push anywhere, anonymous pulls public repos.

        Each `scope` parameter is granted on its own, as auth.docker.io does: a request naming several (Docker's
        token spec repeats the parameter, https://distribution.github.io/distribution/spec/auth/token/) gets one
        token for what the caller may do, and a scope it may not have is left out of `access`, not an error (the
        spec: "If the client only has a subset of the requested access it must not be considered an error";
        Docker Hub answers 200 with `"access":[]` for a repository the caller cannot read,
        distribution/distribution#1203). The registry then answers 401 insufficient_scope for that repository.
        """
        access = []
        for entry in parse_scopes(scopes):
            if entry["type"] != "repository":
                continue
            allowed = {"pull", "push"} if user else ({"pull"} if self.is_public(entry["name"]) else set())
            granted = [a for a in entry["actions"] if a in allowed]
            if granted:
                access.append({**entry, "actions": granted})
        return self.issuer.sign(user or "", access)

    def count_pull(self, method: str, user: str, address: str) -> tuple[dict[str, str], bool]:
        """Count a manifest GET against its source (HEAD is free); returns Hub's headers and whether it may go on."""
        source = user or address
        limit = self.user_limit if user else self.anonymous_limit
        with self._lock:
            allowed = True
            if method == "GET":
                if self.pulls[source] >= limit:
                    allowed = False
                else:
                    self.pulls[source] += 1
            remaining = max(limit - self.pulls[source], 0)
        headers = {
            "ratelimit-limit": f"{limit};w={RATE_WINDOW_SECONDS}",
            "ratelimit-remaining": f"{remaining};w={RATE_WINDOW_SECONDS}",
            "docker-ratelimit-source": source,
        }
        return headers, allowed

    def count(self, method: str, kind: str, agent: str = "") -> None:
        """Record one request in `counters` (and, by the User-Agent's product, in `clients`)."""
        client = agent.split("/", 1)[0].strip()
        with self._lock:
            self.counters[(method, kind)] += 1
            self.clients[(client, method, kind)] += 1

    def reset_counters(self) -> None:
        """Forget counted requests and pulls (a fresh rate-limit window)."""
        with self._lock:
            self.counters.clear()
            self.clients.clear()
            self.pulls.clear()
