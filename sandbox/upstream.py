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

The loopback plumbing here (`LoopbackService`, `ForwardingHandler`) is shared with `sandbox.ecr_endpoint`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hmac
import http.client
import json
import re
import socket
import struct
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sandbox.signed_urls import UrlSigner
from sandbox.tokens import TOKEN_TTL_SECONDS, TokenIssuer, parse_scopes, token_claims

RATE_WINDOW_SECONDS = 21600  # Docker Hub's window: `ratelimit-limit: 100;w=21600`
MANIFESTS = r"^/v2/.+/manifests/"
BLOBS = r"^/v2/.+/blobs/sha256:"
TAGS = r"^/v2/.+/tags/list"
TOKEN = r"^/token"
CDN = r"^/cdn/"
ANY = r""
CDN_URL_SECONDS = 600  # how long a blob redirect stays valid (Docker Hub's CDN URLs are short-lived too)
_CHUNK = 64 * 1024
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "transfer-encoding"}
    | {"upgrade", "content-length", "expect"}  # http.server already answered any `Expect: 100-continue`
)
_KINDS = (
    (re.compile(r"^/token"), "token"),
    (re.compile(r"^/cdn/"), "cdn"),
    (re.compile(r"^/v2/?$"), "ping"),
    (re.compile(r"^/v2/_catalog"), "catalog"),
    (re.compile(r"^/v2/.+/manifests/[^/]+$"), "manifest"),
    (re.compile(r"^/v2/.+/blobs/uploads/"), "upload"),
    (re.compile(r"^/v2/.+/blobs/[^/]+$"), "blob"),
    (re.compile(r"^/v2/.+/tags/list$"), "tags"),
)


def request_kind(path: str) -> str:
    """What a request path is about: token, ping, catalog, manifest, upload, blob, tags or other."""
    for pattern, kind in _KINDS:
        if pattern.search(path):
            return kind
    return "other"


def error_body(code: str, message: str) -> bytes:
    """A registry error document (distribution spec)."""
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode() + b"\n"


# --- faults ------------------------------------------------------------------------------------------------------


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


_DEFAULT_BODIES = {
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
        content = body if body is not None else _DEFAULT_BODIES.get(status, error_body("UNKNOWN", "injected"))
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


# --- loopback plumbing -------------------------------------------------------------------------------------------


class NoDelayHTTPConnection(http.client.HTTPConnection):
    """http.client with TCP_NODELAY: headers and body go in separate sends, and Nagle plus delayed ACKs would
    add 40 ms to every such request on loopback."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that can drop its open keep-alive connections on stop."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Headers and body are written separately; without NODELAY each response waits for a delayed ACK.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is normal here (resets, timeouts in tests); anything else goes to the log."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        log = getattr(self.owner, "log_path", None)
        if isinstance(log, Path):
            with contextlib.suppress(OSError), log.open("a") as handle:
                handle.write(f"error serving {client_address}: {traceback.format_exc()}\n")

    def close_connections(self) -> None:
        """Shut every open client connection so keep-alive clients see the server gone, as with a dead host."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class LoopbackService:
    """Runs a LoopbackServer in a thread; stop() then start() reuses the same port."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any, port: int = 0) -> None:
        self._handler = handler
        self._owner = owner
        self.port = port
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Bind (the previous port when there was one) and serve in a daemon thread."""
        if self._server is not None:
            return
        server = LoopbackServer(self.port, self._handler, self._owner)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"loopback-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and cut open connections: clients get connection refused or reset from now on."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(5)


class _Aborted(Exception):
    """The response was cut on purpose (a reset or truncate fault); the connection must not be reused."""


class ForwardingHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with a streaming forwarder; subclasses implement `route()`."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer
    _backend_conn: http.client.HTTPConnection | None = None
    _backend_addr: tuple[str, int] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        log = getattr(self.server.owner, "log_path", None)
        if isinstance(log, Path):
            line = f"{self.log_date_time_string()} {self.client_address[0]} {format % args}\n"
            with contextlib.suppress(OSError), log.open("a") as handle:
                handle.write(line)

    def _dispatch(self) -> None:
        self.headers_sent = False
        try:
            self.route()
        except (_Aborted, OSError):
            self.close_connection = True
            self._drop_backend()
        except Exception as exc:  # a bug in the sandbox must show as a 500, not a hung client
            self.log_message("sandbox error: %s: %s", type(exc).__name__, exc)
            self._drop_backend()
            if not self.headers_sent:
                with contextlib.suppress(OSError):
                    self.send_simple(500, error_body("UNKNOWN", f"sandbox error: {type(exc).__name__}"))
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def finish(self) -> None:
        self._drop_backend()
        super().finish()

    def route(self) -> None:
        raise NotImplementedError

    @property
    def request_path(self) -> str:
        return urlsplit(self.path).path

    # --- responses --------------------------------------------------------------------------------------------

    def send_simple(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, fault: Fault | None = None
    ) -> None:
        """Answer with a complete body (JSON unless headers say otherwise), applying a body fault if any."""
        all_headers = {"Content-Type": "application/json; charset=utf-8"}
        all_headers.update(headers or {})
        if fault is not None and fault.action == "corrupt":
            body = corrupt_bytes(body)
        self._start_response(status, list(all_headers.items()), len(body))
        if self.command != "HEAD":
            self._write_body(iter([body]), len(body), chunked=False, fault=fault)

    def _start_response(self, status: int, headers: list[tuple[str, str]], length: int | None) -> bool:
        """Status line and headers; returns True when the body goes out chunked."""
        self.send_response_only(status)
        if not any(name.lower() == "date" for name, _ in headers):
            self.send_header("Date", self.date_time_string())
        for name, value in headers:
            self.send_header(name, value)
        chunked = False
        if length is not None:
            self.send_header("Content-Length", str(length))
        elif self.command != "HEAD" and status not in (204, 304):
            self.send_header("Transfer-Encoding", "chunked")
            chunked = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.headers_sent = True
        return chunked

    def _write_body(self, chunks: Iterator[bytes], length: int | None, *, chunked: bool, fault: Fault | None) -> None:
        cutting = fault is not None and fault.action in ("reset", "truncate")
        cut = (length or 0) // 2
        sent = 0
        for chunk in chunks:
            if cutting:
                if length is None:  # length unknown: cut halfway through the first chunk
                    cut = len(chunk) // 2
                if sent + len(chunk) >= cut:
                    self._write(chunk[: cut - sent], chunked)
                    self._abort(fault)
            self._write(chunk, chunked)
            sent += len(chunk)
        if cutting:  # an empty body: nothing to cut, abort anyway so the fault is visible
            self._abort(fault)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes, chunked: bool) -> None:
        if not data:
            return
        if chunked:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            self.wfile.write(data)

    def _abort(self, fault: Fault | None) -> None:
        if fault is not None and fault.action == "reset":
            # SO_LINGER 0 makes close() send RST; the read side file holds a reference, so close it first.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        raise _Aborted

    # --- forwarding -------------------------------------------------------------------------------------------

    def forward(
        self,
        backend: tuple[str, int],
        path: str,
        *,
        extra_headers: dict[str, str] | None = None,
        fault: Fault | None = None,
        on_response: Callable[[http.client.HTTPResponse], None] | None = None,
    ) -> int:
        """Send this request to `backend` as `path`, stream the answer back; returns the backend's status.

        `on_response` runs after the backend answered and before anything is written to the client.
        """
        has_body = self._has_body()
        response: http.client.HTTPResponse | None = None
        for attempt in (0, 1):
            conn = self._backend(backend, fresh=attempt > 0)
            try:
                self._send_request(conn, path)
                response = conn.getresponse()
                break
            except (ConnectionError, http.client.HTTPException, TimeoutError, OSError):
                self._drop_backend()
                # A kept-alive backend connection may have gone stale; retry once when nothing was streamed.
                if attempt or has_body:
                    self.close_connection = True
                    self.send_simple(502, error_body("UNAVAILABLE", "backend registry not reachable"))
                    return 502
        assert response is not None
        if on_response is not None:
            on_response(response)
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        headers.extend((extra_headers or {}).items())
        raw_length = response.getheader("Content-Length")
        length = int(raw_length) if raw_length is not None else None
        no_body = self.command == "HEAD" or response.status in (204, 304)
        if fault is not None and fault.action == "corrupt" and not no_body:
            body = corrupt_bytes(response.read())
            self._start_response(response.status, headers, len(body))
            self.wfile.write(body)
            return response.status
        if no_body:
            response.read()
            if fault is not None and fault.action == "reset":
                self._abort(fault)
            self._start_response(response.status, headers, length if length is not None else 0)
            return response.status
        chunked = self._start_response(response.status, headers, length)
        self._write_body(iter(lambda: response.read(_CHUNK), b""), length, chunked=chunked, fault=fault)
        if response.getheader("Connection", "").lower() == "close":
            self._drop_backend()
        return response.status

    def _has_body(self) -> bool:
        return bool(self.headers.get("Content-Length", "0") not in ("", "0") or self.headers.get("Transfer-Encoding"))

    def _backend(self, address: tuple[str, int], *, fresh: bool) -> http.client.HTTPConnection:
        if fresh or self._backend_conn is None or self._backend_addr != address:
            self._drop_backend()
            self._backend_conn = NoDelayHTTPConnection(*address, timeout=60)
            self._backend_addr = address
        return self._backend_conn

    def _drop_backend(self) -> None:
        if self._backend_conn is not None:
            self._backend_conn.close()
            self._backend_conn = None

    def _send_request(self, conn: http.client.HTTPConnection, path: str) -> None:
        conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                conn.putheader(name, value)
        length = self.headers.get("Content-Length")
        chunked_in = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked_in:
            conn.putheader("Transfer-Encoding", "chunked")
        elif length is not None:
            conn.putheader("Content-Length", length)
        conn.endheaders()
        if chunked_in:
            for piece in self._read_chunked():
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        elif length:
            remaining = int(length)
            while remaining > 0:
                piece = self.rfile.read(min(_CHUNK, remaining))
                if not piece:
                    raise ConnectionError("client closed the connection mid-body")
                conn.send(piece)
                remaining -= len(piece)

    def _read_chunked(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers: nothing here uses them
                return
            piece = self.rfile.read(size)
            self.rfile.readline()
            yield piece


# --- the front ---------------------------------------------------------------------------------------------------


class _FrontHandler(ForwardingHandler):
    server: LoopbackServer

    def route(self) -> None:
        front: UpstreamFront = self.server.owner
        path = self.request_path
        kind = request_kind(path)
        front.count(self.command, kind)
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
            self.send_simple(502, _DEFAULT_BODIES[502], {"Content-Type": "text/html"})
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
                self.send_simple(429, _DEFAULT_BODIES[429], extra)
                return
        self.forward(backend, self.path, extra_headers=extra, fault=fault)

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
        """A token for the scopes this caller may have: users pull and push anywhere, anonymous pulls public repos."""
        access = []
        for entry in parse_scopes(scopes):
            if entry["type"] != "repository":
                continue
            allowed = {"pull", "push"} if user else ({"pull"} if self.is_public(entry["name"]) else set())
            access.append({**entry, "actions": [a for a in entry["actions"] if a in allowed]})
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

    def count(self, method: str, kind: str) -> None:
        """Record one request in `counters`."""
        with self._lock:
            self.counters[(method, kind)] += 1

    def reset_counters(self) -> None:
        """Forget counted requests and pulls (a fresh rate-limit window)."""
        with self._lock:
            self.counters.clear()
            self.pulls.clear()
