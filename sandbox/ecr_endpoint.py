"""The sandbox's ECR registry endpoint: `<account>.dkr.ecr.<region>.amazonaws.com` on 127.0.0.1.

It speaks ECR's path scheme for pull-through cache: `/v2/<prefix>/<upstream path>/...` goes to the distribution
proxy of that rule as `/v2/<upstream path>/...`. One `docker-registry` in proxy mode per rule, started on first
use with the rule's secret as its upstream credentials, restarted on the same storage when the secret's value
changes. Rules, secrets and cache repositories come from moto through `sandbox.moto_ecr`; tests may pass any
object with the `CacheRules` methods instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from sandbox import iam
from sandbox.distribution import RegistryProcess, start_registry, stop_all
from sandbox.upstream import ForwardingHandler, LoopbackServer, LoopbackService, error_body, request_kind

ROOT = "ROOT"  # ECR's prefix of a rule that covers every repository


@dataclass(frozen=True)
class Route:
    """Where an ECR repository's pulls go: its rule's prefix and the repository's path upstream."""

    prefix: str  # the rule's prefix without a trailing `/`, or ROOT
    repository: str  # the ECR repository name, prefix included
    upstream_path: str  # the repository's path on the upstream registry (and in the rule's proxy)


class CacheRules(Protocol):
    """What the endpoint needs to know about pull-through cache rules (moto answers it in the sandbox)."""

    def route(self, repository: str) -> Route | None:
        """The route of an ECR repository name, None when no rule's prefix covers it."""

    def credentials(self, route: Route) -> tuple[str, str] | None:
        """The rule's upstream (username, accessToken) from its secret's AWSCURRENT value; None for no secret."""

    def ensure_cache_repository(self, repository: str) -> None:
        """Create the cache repository as a first pull does (idempotent)."""

    def configure(self, upstream_endpoints: dict[str, str], storage: Callable[[str], Path]) -> None:
        """Tell the rules side where upstreams are and where each prefix's proxy keeps its storage."""


def upstream_path(prefix: str, repository: str, upstream_prefix: str | None) -> str:
    """ECR's mapping: strip the rule's prefix, put the upstream repository prefix (if any, and not ROOT) in front."""
    rest = repository if prefix == ROOT else repository[len(prefix) + 1 :]
    if upstream_prefix and upstream_prefix != ROOT:
        return f"{upstream_prefix.rstrip('/')}/{rest}"
    return rest


class MotoCacheRules:
    """CacheRules answered by moto's ECR backend through the hooks of `sandbox.moto_ecr`."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def route(self, repository: str) -> Route | None:
        from sandbox import moto_ecr  # here, not at the top: `import sandbox` must not load moto

        rule = moto_ecr.find_rule(self.account, self.region, repository)
        if rule is None:
            return None
        given = str(rule["ecrRepositoryPrefix"])
        prefix = given if given == ROOT else given.rstrip("/")
        return Route(prefix, repository, upstream_path(prefix, repository, rule.get("upstreamRepositoryPrefix")))

    def credentials(self, route: Route) -> tuple[str, str] | None:
        from sandbox import moto_ecr

        found: tuple[str, str] | None = moto_ecr.rule_secret(self.account, self.region, route.prefix)
        return found

    def ensure_cache_repository(self, repository: str) -> None:
        from sandbox import moto_ecr

        moto_ecr.ensure_cache_repository(self.account, self.region, repository)

    def configure(self, upstream_endpoints: dict[str, str], storage: Callable[[str], Path]) -> None:
        from sandbox import moto_ecr

        moto_ecr.install()
        moto_ecr.set_upstream_endpoints(upstream_endpoints)
        moto_ecr.set_cache_storage(storage)


def _error(code: str, message: str) -> bytes:
    return error_body(code, message)


class _EcrHandler(ForwardingHandler):
    server: LoopbackServer

    def route(self) -> None:
        endpoint: EcrEndpoint = self.server.owner
        path = self.request_path
        kind = request_kind(path)
        endpoint.count(self.command, kind)
        if not path.startswith("/v2"):
            self.send_simple(404, _error("NOT_FOUND", "not found"))
            return
        if not endpoint.authorized(self.headers.get("Authorization")):
            self.send_simple(401, _error("UNAUTHORIZED", "Not Authorized"), {"Www-Authenticate": endpoint.challenge})
            return
        if kind == "ping":
            self.send_simple(200, b"{}", {"Docker-Distribution-Api-Version": "registry/2.0"})
            return
        name = _repository_name(path)
        if name is None:
            self.send_simple(404, _error("UNSUPPORTED", f"{path} is not supported by this registry"))
            return
        route = endpoint.rules.route(name)
        if route is None:
            message = f"The repository with name '{name}' does not exist in the registry with id '{endpoint.account}'"
            self.send_simple(404, _error("NAME_UNKNOWN", message))
            return
        # IAM: the pull is the token's principal's (sandbox/iam.py); ECR answers a refused one 403 DENIED.
        denied = iam.registry_denial(self.headers.get("Authorization"), name, kind, self.command)
        if denied is not None:
            self.send_simple(*denied)
            return
        proxy = endpoint.proxy(route)
        query = urlsplit(self.path).query
        target = f"/v2/{route.upstream_path}{path[len('/v2/') + len(name) :]}" + (f"?{query}" if query else "")

        def created_on_first_pull(response: http.client.HTTPResponse) -> None:
            if kind == "manifest" and response.status == 200:
                endpoint.rules.ensure_cache_repository(name)

        self.forward(("127.0.0.1", proxy.port), target, on_response=created_on_first_pull)


# Greedy name: the longest repository name that leaves a valid API suffix (a repository may be called `blobs`).
_API_PATH = re.compile(r"^/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/uploads/[^/]*|blobs/[^/]+|tags/list)$")


def _repository_name(path: str) -> str | None:
    """The repository part of `/v2/<name>/(manifests|blobs|tags)/...`."""
    match = _API_PATH.match(path)
    return match["name"] if match else None


class EcrEndpoint:
    """The ECR registry endpoint: ECR's Basic auth, path routing by rule prefix, one proxy per rule."""

    def __init__(
        self,
        workdir: Path,
        upstream_url: str,
        *,
        account: str,
        region: str,
        rules: CacheRules,
        on_spawn: Callable[[int], None] | None = None,
    ) -> None:
        self.workdir = workdir
        self.upstream_url = upstream_url
        self.account = account
        self.region = region
        self.rules = rules
        self.host = f"{account}.dkr.ecr.{region}.amazonaws.com"
        self.challenge = f'Basic realm="https://{self.host}/",service="ecr.amazonaws.com"'
        # moto's GetAuthorizationToken hands out base64("AWS:<account>-auth-token") (moto/ecr/responses.py).
        self.password = f"{account}-auth-token"
        self.log_path = workdir / "ecr-endpoint.log"
        self.counters: Counter[tuple[str, str]] = Counter()
        self.proxies: dict[str, RegistryProcess] = {}
        self._fingerprints: dict[str, str] = {}
        self._on_spawn = on_spawn
        self._stopped = False
        self._lock = threading.Lock()
        self._prefix_locks: dict[str, threading.Lock] = {}
        self._service = LoopbackService(_EcrHandler, self)

    @property
    def url(self) -> str:
        return self._service.url

    def start(self) -> None:
        """Listen on a free loopback port; proxies start later, on first use."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stopped = False
        self._service.start()

    def stop(self) -> None:
        """Stop listening and stop every proxy."""
        self._service.stop()
        with self._lock:
            self._stopped = True
            proxies, self.proxies = list(self.proxies.values()), {}
            self._fingerprints.clear()
        stop_all(proxies)

    def count(self, method: str, kind: str) -> None:
        """Record one request in `counters`."""
        with self._lock:
            self.counters[(method, kind)] += 1

    def authorized(self, header: str | None) -> bool:
        """True for `Basic AWS:<password>` with the password moto's GetAuthorizationToken gives."""
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        known = hmac.compare_digest(password.encode(), self.password.encode())
        # Tokens GetAuthorizationToken issued to a function's principal are valid too (sandbox/iam.py).
        return user == "AWS" and (known or iam.principal_of_token(password) is not None)

    def storage_dir(self, prefix: str) -> Path:
        """Where the proxy of a rule prefix keeps what it cached (kept across restarts)."""
        return self.workdir / "proxies" / prefix.replace("/", "__") / "storage"

    def proxy(self, route: Route) -> RegistryProcess:
        """The running proxy of a route's rule: started on first use, restarted when its secret's value changed."""
        prefix = route.prefix
        with self._lock:
            lock = self._prefix_locks.setdefault(prefix, threading.Lock())
        with lock:
            credentials = self.rules.credentials(route)
            # A fingerprint, not the value, so nothing secret is kept beyond the proxy's own config file.
            fingerprint = hashlib.sha256(repr(credentials).encode()).hexdigest()
            current = self.proxies.get(prefix)
            if current is not None and current.alive() and self._fingerprints.get(prefix) == fingerprint:
                return current
            if current is not None:
                current.stop()
            proxy_config: dict[str, str] = {"remoteurl": self.upstream_url}
            if credentials is not None:
                proxy_config["username"], proxy_config["password"] = credentials
            storage = self.storage_dir(prefix)
            started = start_registry(
                f"proxy {prefix}",
                storage.parent,
                {
                    "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
                    "proxy": proxy_config,
                },
                on_spawn=self._on_spawn,
            )
            with self._lock:
                stopped = self._stopped
                if not stopped:
                    self.proxies[prefix] = started
                    self._fingerprints[prefix] = fingerprint
            if stopped:  # stop() ran while this proxy was starting: it must not outlive the endpoint
                started.stop()
                raise RuntimeError(f"the ECR endpoint stopped while the proxy of {prefix} was starting")
            return started

    def is_cached(self, prefix: str, repository: str, digest: str) -> bool:
        """True when the proxy of `prefix` stored `digest` (blob or manifest) for `repository` (path under prefix)."""
        name = repository if prefix == ROOT else f"{prefix}/{repository}"
        route = self.rules.route(name)
        path = route.upstream_path if route is not None else repository
        algorithm, _, hex_digest = digest.partition(":")
        v2 = self.storage_dir(prefix) / "docker" / "registry" / "v2"
        data = v2 / "blobs" / algorithm / hex_digest[:2] / hex_digest / "data"
        repo = v2 / "repositories" / path
        linked = (repo / "_layers" / algorithm / hex_digest / "link").is_file() or (
            repo / "_manifests" / "revisions" / algorithm / hex_digest / "link"
        ).is_file()
        return data.is_file() and linked

    def wait_cached(self, prefix: str, repository: str, digest: str, timeout: float = 10.0) -> None:
        """Poll the proxy's storage until `digest` is stored (the proxy stores a blob after serving it)."""
        deadline = time.monotonic() + timeout
        while not self.is_cached(prefix, repository, digest):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{digest} of {prefix}/{repository} not in the proxy's storage after {timeout}s")
            time.sleep(0.02)  # polling the storage (a real condition), bounded by the deadline
