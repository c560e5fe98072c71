"""A fault-injecting HTTP proxy on 127.0.0.1, between Pullthrough and a registry endpoint it talks to directly.

The upstream front (`sandbox.registries.upstream`) injects faults in front of the upstream, so they reach Pullthrough
through the cache (the ECR endpoint and its distribution proxy), the way an upstream outage reaches a real ECR. One row
of the fault matrix cannot be seen that way: a download that breaks mid-body. distribution drops its client when the
upstream resets mid-blob, but the sandbox's ECR endpoint then stops sending without closing the connection, so
the warmer sees a stall rather than a reset. This proxy puts the same faults (`sandbox.registries.upstream.Faults`:
status, delay, stall, reset, truncate, corrupt) on the hop between the warmer and the ECR endpoint:

    with FaultProxy(sb.ecr_url, lifetime=60) as proxy:
        proxy.faults.reset(method="GET", path=BLOBS)     # next blob GET: half the body, then RST
        settings PULLTHROUGH_ECR_REGISTRY_URL=proxy.url

It stops when the `with` block ends, and by itself after `lifetime` seconds, so a forgotten one cannot outlive
the test that started it.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from sandbox.registries.upstream import Faults, ForwardingHandler, LoopbackServer, LoopbackService, request_kind

DEFAULT_LIFETIME = 120.0


class _FaultHandler(ForwardingHandler):
    server: LoopbackServer

    def route(self) -> None:
        proxy: FaultProxy = self.server.owner
        proxy.count(self.command, request_kind(self.request_path))
        fault = proxy.faults.take(self.command, unquote(self.path))
        if fault is not None and fault.action == "delay":
            proxy.faults.wait(fault)
            fault = None
        if fault is not None and fault.action == "status":
            self.send_simple(fault.status, fault.body, fault.headers)
            return
        self.forward(proxy.backend, self.path, fault=fault)


class FaultProxy:
    """Forwards every request to `backend_url` unchanged, except those a queued fault matches."""

    def __init__(self, backend_url: str, *, lifetime: float = DEFAULT_LIFETIME, log_path: Path | None = None) -> None:
        parts = urlsplit(backend_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"backend_url {backend_url!r} must look like http://127.0.0.1:<port>")
        self.backend = (parts.hostname, parts.port)
        self.lifetime = lifetime
        self.log_path = log_path
        self.faults = Faults()
        self.counters: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._service = LoopbackService(_FaultHandler, self)
        self._timer: threading.Timer | None = None
        self.stopped = threading.Event()  # set once the port is closed

    @property
    def url(self) -> str:
        return self._service.url

    @property
    def running(self) -> bool:
        return self._service.running

    def count(self, method: str, kind: str) -> None:
        """Record one request in `counters` by (method, kind)."""
        with self._lock:
            self.counters[(method, kind)] += 1

    def start(self) -> FaultProxy:
        """Listen on a free loopback port; stop by itself after `lifetime` seconds."""
        self.stopped.clear()
        self._service.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Release stalled requests and stop listening; safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
        self.faults.clear()
        self._service.stop()
        self.stopped.set()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["DEFAULT_LIFETIME", "FaultProxy"]
