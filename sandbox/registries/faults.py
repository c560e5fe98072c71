"""Faults a test injects into the sandbox's registries: a status, a 429, a delay, a stall, a reset, a cut body...

`Faults` holds them (each scoped to a method and a path regex, used up after `times` requests); the loopback plumbing
(sandbox/registries/loopback.py) applies them to the requests it serves, for the upstream front
(sandbox/registries/upstream.py) and the fault proxy (sandbox/registries/fault_proxy.py). Separate so the faults'
vocabulary reads on its own.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

MANIFESTS = r"^/v2/.+/manifests/"
BLOBS = r"^/v2/.+/blobs/sha256:"
TAGS = r"^/v2/.+/tags/list"
TOKEN = r"^/token"
CDN = r"^/cdn/"
ANY = r""


@dataclass
class Fault:
    """One injected fault: what to do to the next `times` requests matching `method` and `path` (None: forever).

    `path` is a regex searched in the decoded request target, path and query: `/token?...scope=repository:x:pull`.
    """

    action: str  # "status" | "delay" | "reset" | "truncate" | "corrupt"
    method: str | None
    path: re.Pattern[str]
    times: int | None = 1
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float | None = None  # delay; None stalls until the faults are cleared or the server stops
    hits: int = 0

    def matches(self, method: str, target: str) -> bool:
        return (self.method is None or self.method == method) and self.path.search(target) is not None


def error_body(code: str, message: str) -> bytes:
    """A registry error document (distribution spec)."""
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode() + b"\n"


DEFAULT_BODIES = {
    429: error_body(
        "TOOMANYREQUESTS",
        "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: "
        "https://www.docker.com/increase-rate-limit",
    ),
    500: error_body("UNKNOWN", "internal server error"),
    502: b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    503: b"<html><body><h1>503 Service Unavailable</h1></body></html>\n",
    504: b"<html><body><h1>504 Gateway Time-out</h1></body></html>\n",
}
_STALL_LIMIT_SECONDS = 120.0  # a stalled request is released by clear()/stop(); this only bounds a forgotten one


class Faults:
    """Faults to inject into the next matching requests; thread-safe; the first matching fault wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._release = threading.Event()

    def add(self, fault: Fault) -> Fault:
        """Queue a fault; returns it so a test can read `.hits` afterwards."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def _new(self, action: str, method: str | None, path: str, times: int | None, **kwargs: Any) -> Fault:
        return self.add(Fault(action, method.upper() if method else None, re.compile(path), times, **kwargs))

    def status(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str = ANY,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Fault:
        """Answer `status` (with `headers` and `body`) instead of forwarding."""
        content = body if body is not None else DEFAULT_BODIES.get(status, error_body("UNKNOWN", "injected"))
        return self._new("status", method, path, times, status=status, headers=dict(headers or {}), body=content)

    def too_many_requests(
        self, retry_after: int | None = None, *, method: str | None = None, path: str = ANY, times: int | None = 1
    ) -> Fault:
        """Docker Hub's 429 TOOMANYREQUESTS, with a `Retry-After` header only when `retry_after` is given."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return self.status(429, method=method, path=path, times=times, headers=headers)

    def delay(self, seconds: float, *, method: str | None = None, path: str = ANY, times: int | None = 1) -> Fault:
        """Wait `seconds` (or until clear()), then serve the request normally."""
        return self._new("delay", method, path, times, seconds=seconds)

    def stall(self, *, method: str | None = None, path: str = ANY, times: int | None = 1) -> Fault:
        """Hold the request until clear() or stop(): a client's timeout is what ends it."""
        return self._new("delay", method, path, times, seconds=None)

    def reset(self, *, method: str | None = None, path: str = ANY, times: int | None = 1) -> Fault:
        """Send the headers and half the body, then reset the connection (RST)."""
        return self._new("reset", method, path, times)

    def truncate(self, *, method: str | None = None, path: str = ANY, times: int | None = 1) -> Fault:
        """Send the full Content-Length header but half the body, then close the connection."""
        return self._new("truncate", method, path, times)

    def corrupt(self, *, method: str | None = None, path: str = ANY, times: int | None = 1) -> Fault:
        """Flip one character of a digest in the body (same length, still JSON): the digest no longer matches."""
        return self._new("corrupt", method, path, times)

    def token_status(self, status: int = 401, *, repository: str | None = None, times: int | None = 1) -> Fault:
        """Make the token realm answer `status` (401 as for wrong credentials, 500, ...), for one repository's
        scope when `repository` is given (so a proxy's own token requests do not use the fault up)."""
        body = b'{"details":"incorrect username or password"}\n' if status == 401 else None
        return self.status(status, path=_token_path(repository), times=times, body=body)

    def token_stall(self, *, repository: str | None = None, times: int | None = 1) -> Fault:
        """Make the token realm hang until clear(), for one repository's scope when `repository` is given."""
        return self.stall(path=_token_path(repository), times=times)

    def take(self, method: str, target: str) -> Fault | None:
        """The fault that applies to this request (`target`: decoded path and query), consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, target):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def wait(self, fault: Fault) -> None:
        """Sleep out a delay fault; returns early when the faults are cleared or released."""
        release = self._release
        release.wait(fault.seconds if fault.seconds is not None else _STALL_LIMIT_SECONDS)

    @property
    def active(self) -> list[Fault]:
        """Faults still waiting for a matching request."""
        with self._lock:
            return list(self._faults)

    def release(self) -> None:
        """Let every delayed or stalled request go on."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()

    def clear(self) -> None:
        """Drop every fault and release stalled requests."""
        with self._lock:
            self._faults.clear()
        self.release()


@dataclass(frozen=True)
class Network:
    """The network between a client in an AWS region and Docker Hub, which loopback does not have: a delay before
    each request is served (`request_seconds` for the registry's `/v2/` requests and the blob storage's `/cdn/`
    ones, `token_seconds` for the token realm, which Docker Hub serves from another host, auth.docker.io) and a cap
    on each connection's bytes per second (None: none). The bench sets it (bench/network.py); tests leave it off.

    Docker does not publish its latency. The bench's defaults (40 ms a request, 60 ms a token) are round trips of
    the order users report from AWS regions to registry-1.docker.io and auth.docker.io (a TLS connection set up
    once, kept alive, as urllib3 and the sandbox's ECR client keep theirs); they are a model, and every figure is
    also taken without it.
    """

    request_seconds: float = 0.0
    token_seconds: float = 0.0
    bytes_per_second: float | None = None

    def delay(self, kind: str) -> float:
        """Seconds to hold a request of this kind (`loopback.request_kind`) before serving it."""
        return self.token_seconds if kind == "token" else self.request_seconds

    def pace(self, sent: int) -> float:
        """Seconds a connection waits after sending `sent` bytes to stay under the cap (0 without one)."""
        return sent / self.bytes_per_second if self.bytes_per_second else 0.0


OFF = Network()


def _token_path(repository: str | None) -> str:
    if repository is None:
        return TOKEN
    return rf"{TOKEN}\?.*scope=repository:{re.escape(repository)}:"


def corrupt_bytes(body: bytes) -> bytes:
    """Same length, one byte different: a hex digit after the first `sha256:` (JSON stays valid), else byte 0."""
    if not body:
        return body
    data = bytearray(body)
    at = body.find(b"sha256:") + 7
    if 7 <= at < len(body):
        data[at] = ord("1") if data[at] == ord("0") else ord("0")
    else:
        data[0] ^= 0x01
    return bytes(data)
