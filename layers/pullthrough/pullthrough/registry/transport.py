"""One logical request to a registry: sent, redirected, retried, counted; the connection failures as errors.

The client's operations (client.py) and the authentication (auth.py) both send through a `Transport`. It follows
redirects itself (dropping the Authorization header on the way to blob storage), retries 429, 5xx and connection
errors with equal-jitter backoff (honouring Retry-After up to `max_wait`), re-authenticates once on a 401 through the
`Authorizer` it is given, counts every request by (method, kind), and keeps the last rate limit any answer reported.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

from pullthrough.errors import RegistryError, RegistryTimeout, RegistryUnavailable
from pullthrough.observability import logger
from pullthrough.registry.headers import RateLimit, parse_rate_limit, parse_retry_after

Method = Literal["GET", "HEAD"]
Kind = Literal["manifest", "blob", "tags", "ping", "token"]

_CHUNK = 64 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class TransportOptions(TypedDict, total=False):
    """How a client talks HTTP; every key optional (the defaults are `Transport`'s)."""

    timeout: float  # seconds to connect, and to wait for each read (10)
    retries: int  # further attempts after a 429, a 5xx or a connection error (3)
    backoff: float  # the first retry's wait ceiling in seconds, doubled per retry (0.25)
    pool: urllib3.PoolManager | None  # a pool shared with others (None: the transport makes and owns one)
    sleep: Callable[[float], None]  # how to wait between retries (time.sleep)
    clock: Callable[[], float]  # monotonic seconds, for token lifetimes (time.monotonic)
    # Caps one wait between retries: a longer Retry-After is not slept through but raised (30).
    max_wait: float
    jitter: Callable[[], float]  # a number in [0, 1] (random.random)
    connections: int  # keep-alive connections kept per host: as many as threads share the client at once (8)


@dataclass(frozen=True)
class Request:
    """What to send: method, URL, what it is for (`kind`, counted), and for which repository and token scope."""

    method: Method
    url: str
    kind: Kind
    repository: str | None
    scope: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False
    retries: int | None = None  # the client's own (TransportOptions) unless given


class Authorizer(Protocol):
    """What the transport needs from the authentication (auth.py): a header, and a second chance after a 401."""

    def authorization(self, scope: str | None, repository: str | None) -> str | None: ...

    def renew(self, response: urllib3.BaseHTTPResponse, scope: str | None) -> bool: ...


class Transport:
    """HTTP to one registry, shared by the threads of one client."""

    def __init__(self, name: str, options: TransportOptions) -> None:
        self.name = name
        self.timeout = options.get("timeout", 10.0)
        self.connections = max(1, options.get("connections", 8))
        self.clock = options.get("clock", time.monotonic)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.rate_limit: RateLimit | None = None
        self._lock = threading.Lock()
        self._timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        self._retries = max(0, options.get("retries", 3))
        self._backoff = options.get("backoff", 0.25)
        pool = options.get("pool")
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else urllib3.PoolManager(num_pools=16, maxsize=self.connections)
        self._sleep = options.get("sleep", time.sleep)
        self._max_wait = options.get("max_wait", 30.0)
        self._jitter = options.get("jitter", random.random)

    @property
    def read_timeout(self) -> float | None:
        """Seconds a read may wait for data."""
        return self._timeout.read_timeout

    def close(self) -> None:
        """Close the connections of a pool this transport created (a shared pool is left to its owner)."""
        if self._owns_pool:
            self._pool.clear()

    def send(self, request: Request, auth: Authorizer | None = None) -> urllib3.BaseHTTPResponse:
        """One logical request: authorisation, one re-authentication on 401, retries on 429/5xx/connection errors.

        Returns the final response whatever its status; callers turn a failure into an error with `Failures.fail`.
        """
        retried_auth = False
        attempt = 0
        retries = self._retries if request.retries is None else request.retries
        while True:
            headers = dict(request.headers)
            value = auth.authorization(request.scope, request.repository) if auth is not None else None
            if value:
                headers["Authorization"] = value
            try:
                response = self._open(request, headers)
            except ReadTimeoutError:
                raise RegistryTimeout(
                    self.name,
                    request.repository,
                    f"{describe(request)}: no answer within {self._timeout.read_timeout}s",
                ) from None
            except HTTPError as exc:
                if attempt < retries:
                    self._wait(attempt, None, request.repository, f"{type(exc).__name__}")
                    attempt += 1
                    continue
                raise self._connection_error(exc, request) from None
            self._note_rate_limit(response, request.kind)
            if response.status == 401 and auth is not None and not retried_auth and auth.renew(response, request.scope):
                # A token can expire or be revoked early, and a registry may demand a scope /v2/ did not name.
                retried_auth = True
                discard(response)
                continue
            if self._retry_answer(response, attempt, retries, request.repository):
                attempt += 1
                continue
            return response

    def _retry_answer(
        self, response: urllib3.BaseHTTPResponse, attempt: int, retries: int, repository: str | None
    ) -> bool:
        """After a 429 or a 5xx (but 501): wait and say True when another attempt is left and the wait is short."""
        if response.status == 429 or (response.status >= 500 and response.status != 501):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            wait = retry_after if retry_after is not None else self._backoff_for(attempt)
            if attempt < retries and wait <= self._max_wait:
                discard(response)
                self._wait(attempt, wait, repository, f"HTTP {response.status}")
                return True
        return False

    def _open(self, request: Request, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        method: str = request.method
        url = request.url
        with self._lock:
            self.calls[(method, request.kind)] += 1
        response = self._request(method, url, headers, request.stream)
        for _ in range(_MAX_REDIRECTS):
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                break
            target = urljoin(url, location)
            discard(response)
            if origin(target) != origin(url):
                # Blob storage (S3, a CDN) gets a signed URL; our registry credentials are none of its business.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if response.status == 303 and method != "HEAD":
                method = "GET"
            url = target
            response = self._request(method, url, headers, request.stream)
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

    def _connection_error(self, exc: HTTPError, request: Request) -> RegistryError:
        what = describe(request)
        repository = request.repository
        attempts = (self._retries if request.retries is None else request.retries) + 1
        if isinstance(exc, NewConnectionError):
            return RegistryUnavailable(
                self.name, repository, f"{what}: cannot connect ({attempts} attempts; {reason(exc)})"
            )
        if isinstance(exc, ConnectTimeoutError):
            return RegistryTimeout(
                self.name,
                repository,
                f"{what}: connecting took longer than {self._timeout.connect_timeout}s ({attempts} attempts)",
            )
        return RegistryUnavailable(
            self.name, repository, f"{what}: the connection failed ({attempts} attempts; {reason(exc)})"
        )


def backoff_delay(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Seconds before retry `attempt` (0-based): exponential from `base`, half of it random ("equal jitter")."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what decides whether credentials may follow a URL."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def describe(request: Request) -> str:
    """The request in an error message: "GET /v2/", "the token request", "HEAD manifest"."""
    return {"ping": "GET /v2/", "token": "the token request"}.get(request.kind, f"{request.method} {request.kind}")


def reason(exc: HTTPError) -> str:
    """A connection error in words."""
    # urllib3 messages embed the pool object's repr; the class and the OS error are what a reader needs.
    cause = exc.__context__ or exc.__cause__
    return f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__


def chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """A streamed body as it arrives."""
    # read1 hands over what has arrived instead of waiting for a full chunk, so byte counts are exact when a
    # download stalls; the raw bytes are what a digest covers, so a Content-Encoding is never undone.
    while chunk := response.read1(_CHUNK, decode_content=False):
        yield chunk


def discard(response: urllib3.BaseHTTPResponse) -> None:
    """Drop an answer's body and give its connection back to the pool."""
    response.drain_conn()
    response.release_conn()
