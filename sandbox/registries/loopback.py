"""The sandbox's loopback HTTP plumbing: servers on 127.0.0.1, and a request handler that forwards and answers.

`LoopbackService` runs a `LoopbackServer` in a thread; `ForwardingHandler` streams a request to a backend registry
and its answer back (hop-by-hop headers dropped, nothing else rewritten), or answers itself (`send_simple`),
applying the injected faults (sandbox/registries/faults.py) on the way. Shared by the upstream front
(sandbox/registries/upstream.py), the ECR endpoint (sandbox/registries/ecr_endpoint.py), the Hub API
(sandbox/registries/hub_api.py) and the fault proxy.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandbox.registries.faults import Fault, corrupt_bytes, error_body

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
