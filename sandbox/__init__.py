"""The sandbox: Pullthrough's local runtime on 127.0.0.1 (real registries, a Hub-like front, an ECR endpoint).

    with Sandbox(workdir) as sb:
        image = sb.push_image("library/nginx", "1.27", platforms=("linux/amd64", "linux/arm64"))
        os.environ.update(sb.env())

Everything a Sandbox starts is stopped by `stop()`, by leaving the `with` block, at interpreter exit, on SIGTERM
or SIGHUP, and (through the kernel's parent-death signal) even when the test process is killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Unpack

from sandbox.registries.distribution import RegistryProcess, start_registry
from sandbox.registries.ecr_endpoint import EcrEndpoint, MotoCacheRules
from sandbox.registries.ecr_registry import EcrRegistry
from sandbox.registries.images import ImageOptions, ImageSpec, PushedImage, push_image
from sandbox.registries.tokens import TokenIssuer
from sandbox.registries.upstream import UpstreamFront

__all__ = ["DEFAULT_HOSTS", "PushedImage", "Sandbox"]

DEFAULT_HOSTS = ("registry-1.docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "public.ecr.aws")
DEFAULT_ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
PUSHER = "sandbox-pusher"

# Started sandboxes, newest last: the moto hooks are process-wide, so when one stops the previous one's come back.
_active: list[Sandbox] = []


class Sandbox:
    """Upstream registry (token realm + front) and ECR's registry endpoint, with the registry model behind it."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        hosts: Sequence[str] = DEFAULT_HOSTS,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
        users: dict[str, str] | None = None,
        rules: MotoCacheRules | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.hosts = tuple(hosts)
        self.account = account
        self.region = region
        self.users: dict[str, str] = dict(users) if users is not None else {"sandbox-user": _new_token()}
        self.rules = rules if rules is not None else MotoCacheRules(account, region)
        self.started_pids: list[int] = []
        self.issuer: TokenIssuer | None = None
        self.upstream_registry: RegistryProcess | None = None
        self._front: UpstreamFront | None = None
        self._ecr: EcrEndpoint | None = None
        self._upstream_config: dict[str, Any] = {}
        self._lock = threading.RLock()

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Start the front, the upstream registry, the ECR endpoint and its storage."""
        with self._lock:
            if self._front is not None:
                return self
            _install_signal_handlers()
            atexit.register(self.stop)
            try:
                self._start()
            except BaseException:
                self.stop()
                raise
            return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.issuer = TokenIssuer(self.workdir / "tokens")
        self._front = UpstreamFront(self.issuer, self.users, log_path=self.workdir / "front.log")
        self._front.start()  # first: the registry's token realm is the front's URL
        upstream_dir = self.workdir / "upstream"
        self._upstream_config = {
            "storage": {"filesystem": {"rootdirectory": str(upstream_dir / "storage")}, "delete": {"enabled": True}},
            "auth": self.issuer.auth_config(f"{self._front.url}/token"),
        }
        self._start_upstream_registry(port=None)
        self._ecr = EcrEndpoint(
            self.workdir / "ecr",
            account=self.account,
            region=self.region,
            rules=self.rules,
            on_spawn=self.started_pids.append,
        )
        self._ecr.registry.upstream_endpoints.update(self.upstream_endpoints())
        self._ecr.start()
        self.configure_rules()
        _active.append(self)

    def configure_rules(self) -> None:
        """Point the rules side (moto_ecr's process-wide hooks) at this sandbox: upstream endpoints, the registry.

        start() does it; call it again when a test replaced those hooks.
        """
        self.rules.configure(self.ecr.registry)

    def _start_upstream_registry(self, port: int | None) -> None:
        registry = start_registry(
            "upstream", self.workdir / "upstream", self._upstream_config, port=port, on_spawn=self.started_pids.append
        )
        self.upstream_registry = registry
        self.front.backend = ("127.0.0.1", registry.port)

    def stop(self) -> None:
        """Stop everything this sandbox started; safe to call twice, and from atexit or a signal."""
        with self._lock:
            if self in _active:
                was_newest = _active[-1] is self
                _active.remove(self)
                if was_newest and _active:
                    _active[-1].configure_rules()
            if self._ecr is not None:
                self._ecr.stop()
                self._ecr = None
            if self._front is not None:
                self._front.stop()
                self._front = None
            if self.upstream_registry is not None:
                self.upstream_registry.stop()
                self.upstream_registry = None
            atexit.unregister(self.stop)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def live_pids(self) -> list[int]:
        """Processes this sandbox started that still exist (empty after stop())."""
        return [pid for pid in self.started_pids if _exists(pid)]

    # --- the upstream ---------------------------------------------------------------------------------------------

    @property
    def front(self) -> UpstreamFront:
        if self._front is None:
            raise RuntimeError("the sandbox is not started: use `with Sandbox(...)` or call start()")
        return self._front

    @property
    def upstream(self) -> UpstreamFront:
        """The upstream front: `.counters`, `.faults`, `.pulls`, rate limits."""
        return self.front

    @property
    def upstream_url(self) -> str:
        return self.front.url

    def upstream_endpoints(self) -> dict[str, str]:
        """Every upstream host served by the one front."""
        return dict.fromkeys(self.hosts, self.front.url)

    def add_user(self, name: str, token: str) -> None:
        """Let the token realm accept `name` / `token`."""
        self.users[name] = token

    def remove_user(self, name: str) -> None:
        """Revoke a user's token: the realm answers 401 to it from now on."""
        self.users.pop(name, None)

    def push_image(self, repository: str, tag: str, **options: Unpack[ImageOptions]) -> PushedImage:
        """Push a generated image straight into the upstream registry (not through the front: no counters).

        `options` are ImageSpec's (sandbox/registries/images.py): platforms, layer_sizes, media, index, seed.
        """
        issuer = self.issuer
        registry = self.upstream_registry
        if issuer is None or registry is None:
            raise RuntimeError("push_image needs the upstream running: start() or start_upstream() first")

        def token_for(name: str) -> str:
            return issuer.sign(PUSHER, [{"type": "repository", "name": name, "actions": ["pull", "push"]}])

        return push_image(registry.url, token_for, repository, tag, ImageSpec(**options))

    def stop_upstream(self) -> None:
        """Take the upstream down like Docker Hub down: the front's port refuses connections, the registry stops."""
        with self._lock:
            self.front.stop()
            if self.upstream_registry is not None:
                self.upstream_registry.stop()

    def start_upstream(self) -> None:
        """Bring the upstream back on the same ports with the same storage."""
        with self._lock:
            registry = self.upstream_registry
            if registry is None or not registry.alive():
                self._start_upstream_registry(port=registry.port if registry is not None else None)
            self.front.start()

    # --- the ECR endpoint -----------------------------------------------------------------------------------------

    @property
    def ecr(self) -> EcrEndpoint:
        if self._ecr is None:
            raise RuntimeError("the sandbox is not started: use `with Sandbox(...)` or call start()")
        return self._ecr

    @property
    def ecr_url(self) -> str:
        return self.ecr.url

    @property
    def registry(self) -> EcrRegistry:
        """ECR's registry model: `.clock`, `.imports`, `.events`, what each cache repository holds."""
        return self.ecr.registry

    @property
    def ecr_password(self) -> str:
        """The password of `Basic AWS:<password>` the ECR endpoint accepts (moto's GetAuthorizationToken's)."""
        return self.ecr.password

    def env(self) -> dict[str, str]:
        """The PULLTHROUGH_* variables that point the library at this sandbox."""
        return {
            "PULLTHROUGH_ECR_REGISTRY_URL": self.ecr_url,
            "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(self.upstream_endpoints()),
        }

    def is_cached(self, repository: str, digest: str) -> bool:
        """True when ECR holds `digest` (a manifest, or an imported layer) in the cache repository `repository`."""
        held = self.registry.repository(repository)
        if held is None:
            return False
        with held.lock:
            return digest in held.manifests or held.layers.get(digest) == "AVAILABLE"


def _new_token() -> str:
    return f"dckr_pat_{secrets.token_urlsafe(18)}"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_signals_installed = False


def _install_signal_handlers() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit so `with` blocks and atexit stop what the sandbox started."""
    global _signals_installed
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    _signals_installed = True
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, _exit_on_signal)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
