"""The OCI distribution client: the one place Pullthrough speaks HTTP to a registry.

Upstream credential checks and ECR warming both use it, with different credentials. It discovers how a registry
authenticates from `/v2/` (none, Basic, or a Bearer token realm as Docker Hub does), asks for manifests with every
media type ECR pull-through cache serves, streams blobs without keeping them, and turns every failure into a
`pullthrough.errors.RegistryError` that names the registry, the repository and the HTTP status, never a secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, NoReturn
from urllib.parse import quote, urlencode, urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from pullthrough import redaction
from pullthrough.errors import (
    DigestMismatch,
    InvalidManifest,
    RegistryAccessDenied,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
)
from pullthrough.observability import logger
from pullthrough.registry import manifests

Method = Literal["GET", "HEAD"]
Kind = Literal["manifest", "blob", "tags", "ping", "token"]
Scheme = Literal["none", "basic", "bearer"]

# distribution refuses manifests above 4 MiB; anything larger is not a manifest worth holding in memory.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 5
_MAX_TAG_PAGES = 10_000
# Docker's token spec: a token without expires_in lives 60 seconds.
_DEFAULT_TOKEN_SECONDS = 60
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


@dataclass(frozen=True)
class RateLimit:
    """What a registry said about its pull budget (Docker Hub's `ratelimit-*` headers); None where it said nothing."""

    limit: int | None
    remaining: int | None
    window_seconds: int | None
    source: str | None


@dataclass(frozen=True)
class Challenge:
    """How a registry wants to be authenticated, from the WWW-Authenticate header of a 401."""

    scheme: Scheme
    realm: str | None = None
    service: str | None = None
    scope: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD on a manifest tells without spending a pull."""

    digest: str
    media_type: str
    size: int
    rate_limit: RateLimit | None


@dataclass(frozen=True)
class Manifest(ManifestHead):
    """A fetched manifest: its head plus the exact bytes, already verified against the digest."""

    body: bytes = field(repr=False)

    def parsed(self) -> manifests.Index | manifests.ImageManifest:
        """The body as an Index or an ImageManifest."""
        return manifests.parse(self.body, self.media_type)


# --- header parsing (pure) -----------------------------------------------------------------------------------------

_TOKEN_CHARS = re.compile(r"[^\s,=\"]+")


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """Every Basic or Bearer challenge in one or more WWW-Authenticate values (RFC 9110 syntax, quoted params)."""
    texts = [values] if isinstance(values, str) else list(values)
    challenges: list[Challenge] = []
    for text in texts:
        for scheme, params in _challenges(text):
            if scheme in ("basic", "bearer"):
                challenges.append(
                    Challenge(
                        scheme="basic" if scheme == "basic" else "bearer",
                        realm=params.get("realm"),
                        service=params.get("service"),
                        scope=params.get("scope"),
                        error=params.get("error"),
                    ),
                )
    return challenges


def _challenges(text: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        match = _TOKEN_CHARS.match(text, i)
        if match is None:
            i += 1
            continue
        token, i = match.group(), match.end()
        j = i
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "=" and found:
            value, i = _param_value(text, j + 1)
            found[-1][1][token.lower()] = value
        elif j < n and text[j] == "=":
            # A parameter before any scheme: malformed, skip its value.
            _, i = _param_value(text, j + 1)
        else:
            found.append((token.lower(), {}))
    return found


def _param_value(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == '"':
        out: list[str] = []
        i += 1
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                i += 1
            out.append(text[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < n and text[i] not in " \t,":
        i += 1
    return text[start:i], i


def choose_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge a client should answer: Bearer when offered (it carries the scope), else Basic."""
    ordered = sorted(challenges, key=lambda c: c.scheme != "bearer")
    return ordered[0] if ordered else None


def _quota(value: str | None) -> tuple[int | None, int | None]:
    """`100;w=21600` (Docker Hub) or `100, 100;w=21600` (IETF draft) -> (100, 21600)."""
    if not value:
        return None, None
    amount: int | None = None
    window: int | None = None
    for item in value.split(","):
        parts = [p.strip() for p in item.split(";")]
        if amount is None and parts[0].isdigit():
            amount = int(parts[0])
        for param in parts[1:]:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "w" and raw.strip().isdigit() and window is None:
                window = int(raw.strip())
    return amount, window


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The registry's `ratelimit-limit`, `ratelimit-remaining` and `docker-ratelimit-source`, or None if absent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    limit, limit_window = _quota(lowered.get("ratelimit-limit"))
    remaining, remaining_window = _quota(lowered.get("ratelimit-remaining"))
    source = lowered.get("docker-ratelimit-source") or None
    if limit is None and remaining is None and source is None:
        return None
    return RateLimit(limit=limit, remaining=remaining, window_seconds=limit_window or remaining_window, source=source)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_REL_NEXT = re.compile(r"""rel\s*=\s*"?([^";]*)"?""", re.IGNORECASE)


def parse_next_link(value: str | None) -> str | None:
    """The target of the `rel="next"` entry of a Link header, as written (often relative)."""
    if not value:
        return None
    for target, params in _LINK.findall(value):
        rel = _REL_NEXT.search(params)
        if rel and "next" in rel.group(1).lower().split():
            return str(target)
    return None


def backoff_delay(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Seconds before retry `attempt` (0-based): exponential from `base`, half of it random ("equal jitter")."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


# --- the client ----------------------------------------------------------------------------------------------------


class RegistryClient:
    """A client for one registry (an upstream or the ECR registry endpoint); safe to share between threads.

    `calls` counts the requests sent, by (method, kind), retries and re-authentications included, so it matches
    what the registry saw: `calls[("GET", "manifest")]` is the pulls Docker Hub would count. Redirect hops to blob
    storage are not counted. `rate_limit` is the last rate limit any answer reported.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        pool: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_wait: float = 30.0,
        jitter: Callable[[], float] = random.random,
        connections: int = 8,
    ) -> None:
        """`max_wait` caps one wait between retries: a longer Retry-After is not slept through but raised.

        `connections`: keep-alive connections kept per host (as many as threads share the client at once).
        """
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.name = name or parts.netloc or self.base_url
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(self.name, None, f"base URL {base_url!r} must look like https://host[:port]")
        self.credentials = credentials
        self.connections = max(1, connections)
        self.timeout = timeout
        self.calls: Counter[tuple[str, str]] = Counter()
        self.rate_limit: RateLimit | None = None
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._retries = max(0, retries)
        self._backoff = backoff
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else urllib3.PoolManager(num_pools=16, maxsize=self.connections)
        self._sleep = sleep
        self._clock = clock
        self._max_wait = max_wait
        self._jitter = jitter
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._flights: dict[str, threading.Lock] = {}  # one token request in flight per scope

    def __repr__(self) -> str:
        user = redaction.user_label(self.credentials.username) if self.credentials else "anonymous"
        return f"RegistryClient({self.base_url!r}, name={self.name!r}, {user})"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections of a pool this client created (a shared pool is left to its owner)."""
        if self._owns_pool:
            self._pool.clear()

    # --- public operations -----------------------------------------------------------------------------------------

    def ping(self) -> Challenge:
        """GET /v2/ and report how the registry authenticates ("none", "basic" or "bearer")."""
        return self._discover(None)

    def authenticate(self, repository: str | None = None) -> None:
        """Prove the credentials (anonymous access for a token realm without them); RegistryAuthError when refused.

        With a repository, a Bearer token is asked for pull access to it, so a realm that refuses the scope fails.
        """
        challenge = self._discover(repository)
        if challenge.scheme == "none":
            return
        if challenge.scheme == "basic" and self.credentials is None:
            raise RegistryAuthError(
                self.name, repository, "demands credentials (Basic auth) and none were given; add them to the rule", 401
            )
        scope = _pull_scope(repository) if repository else None
        if challenge.scheme == "bearer":
            self._forget_token(scope)
            self._token(challenge, scope, repository)
        response = self._send("GET", self._url("/v2/"), kind="ping", repository=repository, scope=scope)
        if response.status != 200:
            self._fail(response, repository, "the /v2/ endpoint", resource=False)

    def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        """HEAD a manifest: digest, media type, size and rate limit, without counting as a pull on Docker Hub."""
        response = self._send(
            "HEAD",
            self._manifest_url(repository, reference),
            kind="manifest",
            repository=repository,
            scope=_pull_scope(repository),
            headers={"Accept": manifests.ACCEPT_HEADER},
        )
        what = f"manifest {reference}"
        if response.status != 200:
            self._fail(response, repository, what)
        digest = response.headers.get("Docker-Content-Digest") or (
            reference if manifests.is_digest(reference) else None
        )
        if digest is None or not manifests.is_digest(digest):
            raise RegistryError(
                self.name,
                repository,
                f"{what}: HEAD answered without a valid Docker-Content-Digest ({digest!r}); use get_manifest",
                response.status,
            )
        return ManifestHead(
            digest=digest,
            media_type=_content_type(response.headers.get("Content-Type")),
            size=_int(response.headers.get("Content-Length")),
            rate_limit=parse_rate_limit(response.headers),
        )

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest (a pull on Docker Hub); its bytes are verified against the digest asked for or announced."""
        response = self._send(
            "GET",
            self._manifest_url(repository, reference),
            kind="manifest",
            repository=repository,
            scope=_pull_scope(repository),
            headers={"Accept": manifests.ACCEPT_HEADER},
            stream=True,
        )
        what = f"manifest {reference}"
        if response.status != 200:
            self._fail(response, repository, what, streamed=True)
        body = self._read_bounded(response, repository, what)
        announced = response.headers.get("Docker-Content-Digest")
        expected = reference if manifests.is_digest(reference) else announced
        if expected and manifests.is_digest(expected):
            actual = _digest_as(expected, body)
            if actual != expected:
                source = "asked for" if expected == reference else "announced in Docker-Content-Digest"
                raise DigestMismatch(
                    self.name,
                    repository,
                    f"{what}: the body hashes to {actual}, not the digest {source} ({expected})",
                    response.status,
                )
            digest = expected
        else:
            digest = manifests.sha256_digest(body)
        try:
            media_type = manifests.media_type_of(body, response.headers.get("Content-Type"))
        except InvalidManifest as exc:
            raise RegistryError(self.name, repository, f"{what}: {exc}", response.status) from None
        return Manifest(
            digest=digest,
            media_type=media_type,
            size=len(body),
            rate_limit=parse_rate_limit(response.headers),
            body=body,
        )

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD a blob: True when the registry has it."""
        self._require_digest(repository, digest)
        response = self._send(
            "HEAD",
            self._url(f"/v2/{_path(repository)}/blobs/{digest}"),
            kind="blob",
            repository=repository,
            scope=_pull_scope(repository),
        )
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        self._fail(response, repository, f"blob {digest}")

    def fetch_blob(self, repository: str, digest: str) -> int:
        """Stream a blob through a hash, keeping none of it; returns the bytes read. DigestMismatch if corrupt."""
        algorithm = self._require_digest(repository, digest)
        what = f"blob {digest}"
        response = self._send(
            "GET",
            self._url(f"/v2/{_path(repository)}/blobs/{digest}"),
            kind="blob",
            repository=repository,
            scope=_pull_scope(repository),
            stream=True,
        )
        if response.status != 200:
            self._fail(response, repository, what, streamed=True)
        hasher = hashlib.new(algorithm)
        total = 0
        try:
            for chunk in _chunks(response):
                hasher.update(chunk)
                total += len(chunk)
        except ReadTimeoutError:
            raise RegistryTimeout(
                self.name, repository, f"{what}: no data for {self._timeout.read_timeout}s after {total} bytes"
            ) from None
        except HTTPError as exc:
            raise RegistryUnavailable(
                self.name, repository, f"{what}: the download broke after {total} bytes ({type(exc).__name__})"
            ) from None
        finally:
            response.release_conn()
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(
                self.name, repository, f"{what}: the {total} bytes served hash to {actual}", response.status
            )
        return total

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """Every tag of a repository, following `Link: <...>; rel="next"` pagination."""
        url: str | None = self._url(f"/v2/{_path(repository)}/tags/list")
        if page_size is not None:
            url = f"{url}?{urlencode({'n': page_size})}"
        tags: list[str] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_TAG_PAGES:
                raise RegistryError(self.name, repository, f"tag list pagination loops at {url}")
            seen.add(url)
            response = self._send("GET", url, kind="tags", repository=repository, scope=_pull_scope(repository))
            if response.status != 200:
                self._fail(response, repository, "tag list")
            try:
                document = json.loads(response.data)
                page = document.get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(
                    self.name, repository, "tag list: the answer is not a JSON object", response.status
                ) from None
            tags.extend(str(tag) for tag in page)
            link = parse_next_link(response.headers.get("Link"))
            url = urljoin(url, link) if link else None
            if url is not None and _origin(url) != _origin(self.base_url):
                raise RegistryError(self.name, repository, f"tag list: next page is on another host ({url})")
        return tags

    # --- authentication --------------------------------------------------------------------------------------------

    def _discover(self, repository: str | None) -> Challenge:
        response = self._send("GET", self._url("/v2/"), kind="ping", repository=repository, auth=False)
        if response.status == 200:
            challenge = Challenge(scheme="none")
        elif response.status == 401:
            found = choose_challenge(parse_www_authenticate(response.headers.getlist("WWW-Authenticate")))
            if found is None:
                raise RegistryError(
                    self.name, repository, "/v2/ answered 401 without a Basic or Bearer WWW-Authenticate", 401
                )
            challenge = found
        else:
            self._fail(response, repository, "the /v2/ endpoint (is this a registry?)", resource=False)
        self._challenge = challenge
        return challenge

    def _authorization(self, scope: str | None, repository: str | None) -> str | None:
        challenge = self._challenge or self._discover(repository)
        if challenge.scheme == "basic":
            return _basic(self.credentials) if self.credentials else None
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(challenge, scope, repository)
        return None

    def _token(self, challenge: Challenge, scope: str | None, repository: str | None) -> str:
        key = scope or ""
        with self._lock:
            cached = self._tokens.get(key)
            flight = self._flights.setdefault(key, threading.Lock())
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        # Threads that need the same scope's token at once wait for one request instead of each sending their own.
        with flight:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached[1] > self._clock():
                return cached[0]
            return self._request_token(challenge, scope, repository)

    def _request_token(self, challenge: Challenge, scope: str | None, repository: str | None) -> str:
        key = scope or ""
        realm = challenge.realm
        if not realm or urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryAuthError(
                self.name, repository, f"the Bearer challenge names no usable token realm ({realm!r})", 401
            )
        params: dict[str, str] = {}
        if challenge.service:
            params["service"] = challenge.service
        if scope:
            params["scope"] = scope
        headers: dict[str, str] = {}
        if self.credentials is not None:
            # No `account` parameter: the distribution token spec makes it optional ("if it can be inferred from
            # client authentication"), the Basic header names the user, and a query string ends up in access logs.
            headers["Authorization"] = _basic(self.credentials)
        url = realm + ("&" if "?" in realm else "?") + urlencode(params) if params else realm
        started = self._clock()
        response = self._send("GET", url, kind="token", repository=repository, headers=headers, auth=False)
        if response.status in (401, 403):
            # The token spec has a realm grant what access it can (possibly none) rather than report authorization
            # errors, so a realm refusing outright refuses the credentials: Docker Hub answers 401, GHCR 403 DENIED.
            detail = self._detail(response)
            who = (
                f"the credentials of {redaction.user_label(self.credentials.username)}"
                if self.credentials
                else "anonymous access"
            )
            fix = "check the username and access token" if self.credentials else "add credentials to the rule"
            raise RegistryAuthError(
                self.name, repository, f"the token realm {realm} refused {who}{detail}; {fix}", response.status
            )
        if response.status != 200:
            self._fail(response, repository, f"the token realm {realm}")
        try:
            document = json.loads(response.data)
            token = document.get("token") or document.get("access_token")
            lifetime = float(document.get("expires_in") or _DEFAULT_TOKEN_SECONDS)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(
                self.name, repository, f"the token realm {realm} answered 200 without a token", response.status
            )
        # Renew a little early so a token never expires between the check and the request it authorises.
        expires = started + lifetime - min(10.0, lifetime / 10)
        with self._lock:
            self._tokens[key] = (token, expires)
        return token

    def _forget_token(self, scope: str | None) -> None:
        with self._lock:
            self._tokens.pop(scope or "", None)

    # --- transport -------------------------------------------------------------------------------------------------

    def _send(
        self,
        method: Method,
        url: str,
        *,
        kind: Kind,
        repository: str | None,
        scope: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """One logical request: authorisation, one re-authentication on 401, retries on 429/5xx/connection errors.

        Returns the final response whatever its status; callers turn a failure into an error with `_fail`.
        """
        retried_auth = False
        attempt = 0
        while True:
            request_headers = dict(headers or {})
            if auth:
                value = self._authorization(scope, repository)
                if value:
                    request_headers["Authorization"] = value
            try:
                response = self._open(method, url, kind, request_headers, stream)
            except ReadTimeoutError:
                raise RegistryTimeout(
                    self.name,
                    repository,
                    f"{_describe(method, kind)}: no answer within {self._timeout.read_timeout}s",
                ) from None
            except HTTPError as exc:
                if attempt < self._retries:
                    self._wait(attempt, None, repository, f"{type(exc).__name__}")
                    attempt += 1
                    continue
                raise self._connection_error(exc, method, kind, repository) from None
            self._note_rate_limit(response, kind)
            if response.status == 401 and auth and not retried_auth and self._renew_auth(response, scope):
                # A token can expire or be revoked early, and a registry may demand a scope /v2/ did not name.
                retried_auth = True
                _discard(response)
                continue
            if response.status == 429 or (response.status >= 500 and response.status != 501):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                wait = retry_after if retry_after is not None else self._backoff_for(attempt)
                if attempt < self._retries and wait <= self._max_wait:
                    _discard(response)
                    self._wait(attempt, wait, repository, f"HTTP {response.status}")
                    attempt += 1
                    continue
            return response

    def _open(
        self, method: Method, url: str, kind: Kind, headers: dict[str, str], stream: bool
    ) -> urllib3.BaseHTTPResponse:
        with self._lock:
            self.calls[(method, kind)] += 1
        response = self._request(method, url, headers, stream)
        for _ in range(_MAX_REDIRECTS):
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                break
            target = urljoin(url, location)
            _discard(response)
            if _origin(target) != _origin(url):
                # Blob storage (S3, a CDN) gets a signed URL; our registry credentials are none of its business.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status == 303 and method != "HEAD":
                method = "GET"
            url = target
            response = self._request(method, url, headers, stream)
        return response

    def _request(self, method: str, url: str, headers: dict[str, str], stream: bool) -> urllib3.BaseHTTPResponse:
        return self._pool.request(
            method,
            url,
            headers=headers,
            timeout=self._timeout,
            retries=False,
            redirect=False,
            preload_content=not stream,
        )

    def _renew_auth(self, response: urllib3.BaseHTTPResponse, scope: str | None) -> bool:
        """After a 401: take the registry's new challenge; True when answering it could change the outcome."""
        found = choose_challenge(parse_www_authenticate(response.headers.getlist("WWW-Authenticate")))
        if found is None:
            return False
        previous = self._challenge
        self._challenge = Challenge(scheme=found.scheme, realm=found.realm, service=found.service)
        if found.scheme == "bearer":
            self._forget_token(scope)
            return True
        # Basic: resending the same credentials cannot help; sending them for the first time can.
        return self.credentials is not None and (previous is None or previous.scheme != "basic")

    def _wait(self, attempt: int, wait: float | None, repository: str | None, why: str) -> None:
        seconds = wait if wait is not None else self._backoff_for(attempt)
        logger.warning(
            "registry call retried",
            extra={
                "registry": self.name,
                "repository": repository,
                "why": why,
                "attempt": attempt + 1,
                "wait_seconds": round(seconds, 3),
            },
        )
        self._sleep(seconds)

    def _backoff_for(self, attempt: int) -> float:
        return backoff_delay(attempt, self._backoff, self._max_wait, self._jitter())

    def _note_rate_limit(self, response: urllib3.BaseHTTPResponse, kind: Kind) -> None:
        if kind == "token":
            return
        found = parse_rate_limit(response.headers)
        if found is not None:
            self.rate_limit = found

    # --- errors ----------------------------------------------------------------------------------------------------

    def _fail(
        self,
        response: urllib3.BaseHTTPResponse,
        repository: str | None,
        what: str,
        *,
        streamed: bool = False,
        resource: bool = True,
    ) -> NoReturn:
        """Raise the error an answer stands for. `resource`: False for /v2/, which needs no permission of its own.

        401 and 403 are authentication errors: the distribution spec's UNAUTHORIZED (401, "authentication required")
        and DENIED (403, "requested access to the resource is denied"). Which party is at fault differs:
        - without credentials, either means the registry wants some: add them to the rule;
        - with credentials, a 401, or a 403 on /v2/ (which every authenticated client may read), refuses the
          credentials themselves (GHCR answers 403 DENIED to a bad or expired token);
        - with credentials, a 403 on a repository is `RegistryAccessDenied`: the user is known but may not read it.
        """
        status = response.status
        detail = self._detail(response, streamed=streamed)
        if status in (401, 403):
            if self.credentials is None:
                message = f"{what}: access denied to anonymous requests{detail}; add credentials to the rule"
                raise RegistryAuthError(self.name, repository, message, status)
            user = redaction.user_label(self.credentials.username)
            if status == 403 and resource:
                raise RegistryAccessDenied(
                    self.name,
                    repository,
                    f"{what}: {user} is not allowed to read {repository or 'it'}{detail}; give that user read "
                    "access, or check the repository name",
                    status,
                )
            message = (
                f"{what}: the registry refused the credentials of {user}{detail}; check the username and access "
                "token" + (" (Docker Hub also answers so for a missing repository)" if status == 401 else "")
            )
            raise RegistryAuthError(self.name, repository, message, status)
        if status == 404:
            raise RegistryNotFound(self.name, repository, f"{what} not found{detail}", status)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            hint = f"; retry after {retry_after:.0f}s" if retry_after is not None else ""
            raise RegistryRateLimited(
                self.name,
                repository,
                f"{what}: rate limited, still after retrying{detail}{hint}",
                status,
                retry_after=retry_after,
            )
        if status >= 500:
            raise RegistryUnavailable(
                self.name, repository, f"{what}: server error, still after retrying{detail}", status
            )
        raise RegistryError(self.name, repository, f"{what}: unexpected answer{detail}", status)

    def _connection_error(self, exc: HTTPError, method: str, kind: str, repository: str | None) -> RegistryError:
        what = _describe(method, kind)
        attempts = self._retries + 1
        if isinstance(exc, NewConnectionError):
            return RegistryUnavailable(
                self.name, repository, f"{what}: cannot connect ({attempts} attempts; {_reason(exc)})"
            )
        if isinstance(exc, ConnectTimeoutError):
            return RegistryTimeout(
                self.name,
                repository,
                f"{what}: connecting took longer than {self._timeout.connect_timeout}s ({attempts} attempts)",
            )
        return RegistryUnavailable(
            self.name, repository, f"{what}: the connection failed ({attempts} attempts; {_reason(exc)})"
        )

    def _detail(self, response: urllib3.BaseHTTPResponse, *, streamed: bool = False) -> str:
        """The registry's own error codes and messages, shortened, with any credential scrubbed out."""
        try:
            # A streamed error body is read only as far as an error document can reasonably go.
            raw = response.read(8192) if streamed else response.data
        except HTTPError:
            raw = b""
        finally:
            response.release_conn()
        try:
            document = json.loads(raw)
        except ValueError:
            return ""
        parts: list[str] = []
        if isinstance(document, dict):
            errors = document.get("errors")
            if isinstance(errors, list):
                for error in errors[:3]:
                    if isinstance(error, dict):
                        parts.append(f"{error.get('code', '')}: {error.get('message', '')}".strip(": "))
            for key in ("details", "detail", "error", "message"):
                value = document.get(key)
                if isinstance(value, str) and value:
                    parts.append(value)
                    break
        text = "; ".join(p for p in parts if p)[:200]
        if self.credentials is not None and self.credentials.password:
            text = text.replace(self.credentials.password, "***")
        return f" ({text})" if text else ""

    # --- small pieces ----------------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _manifest_url(self, repository: str, reference: str) -> str:
        return self._url(f"/v2/{_path(repository)}/manifests/{quote(reference, safe=':')}")

    def _require_digest(self, repository: str, digest: str) -> str:
        if not manifests.is_digest(digest):
            raise RegistryError(self.name, repository, f"{digest!r} is not a digest (sha256:<64 hex>)")
        return digest.split(":", 1)[0]

    def _read_bounded(self, response: urllib3.BaseHTTPResponse, repository: str, what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in _chunks(response):
                size += len(chunk)
                if size > MAX_MANIFEST_BYTES:
                    raise RegistryError(
                        self.name, repository, f"{what}: larger than {MAX_MANIFEST_BYTES} bytes", response.status
                    )
                chunks.append(chunk)
        except ReadTimeoutError:
            raise RegistryTimeout(
                self.name, repository, f"{what}: no data for {self._timeout.read_timeout}s mid-body"
            ) from None
        except HTTPError as exc:
            raise RegistryUnavailable(self.name, repository, f"{what}: the download broke ({_reason(exc)})") from None
        finally:
            response.release_conn()
        return b"".join(chunks)


def _pull_scope(repository: str | None) -> str | None:
    return f"repository:{repository}:pull" if repository else None


def _path(repository: str) -> str:
    return quote(repository, safe="/")


def _digest_as(reference: str, body: bytes) -> str:
    algorithm = reference.split(":", 1)[0]
    return f"{algorithm}:" + hashlib.new(algorithm, body).hexdigest()


def _content_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip()


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _describe(method: str, kind: str) -> str:
    return {"ping": "GET /v2/", "token": "the token request"}.get(kind, f"{method} {kind}")


def _reason(exc: HTTPError) -> str:
    # urllib3 messages embed the pool object's repr; the class and the OS error are what a reader needs.
    cause = exc.__context__ or exc.__cause__
    return f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__


def _chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    # read1 hands over what has arrived instead of waiting for a full chunk, so byte counts are exact when a
    # download stalls; the raw bytes are what a digest covers, so a Content-Encoding is never undone.
    while chunk := response.read1(_CHUNK, decode_content=False):
        yield chunk


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    response.drain_conn()
    response.release_conn()
