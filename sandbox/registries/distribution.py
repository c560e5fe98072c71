"""Start and stop one CNCF distribution registry (`docker-registry serve`) on a free loopback port.

Processes are spawned from one long-lived launcher thread under `setpriv --pdeathsig`, so the kernel kills them
when the test process dies even by SIGKILL (pdeathsig fires when the spawning *thread* exits, hence one thread
that lives as long as the interpreter rather than whichever request thread needed a proxy first).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BINARY = "docker-registry"
_SETPRIV = shutil.which("setpriv")
_launcher = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-launcher")


class RegistryStartError(RuntimeError):
    """docker-registry did not answer /v2/ before the deadline; the message carries its log's tail."""


def find_binary() -> str | None:
    """Path of `docker-registry`, or None when the Debian package is not installed."""
    return shutil.which(BINARY)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_http(host: str, port: int, path: str = "/v2/", timeout: float = 0.5) -> bool:
    """True when something on host:port answers an HTTP request (any status)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


@dataclass
class RegistryProcess:
    """One running `docker-registry serve`, its port, config and log."""

    name: str
    workdir: Path
    port: int
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; always reaps the process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the registry's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _spawn(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    if _SETPRIV:
        argv = [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)


def spawn(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a process from the launcher thread under pdeathsig (see the module docstring), output to `log_path`."""
    return _launcher.submit(_spawn, argv, log_path, cwd).result()


def start_registry(
    name: str,
    workdir: Path,
    config: dict[str, Any],
    *,
    port: int | None = None,
    timeout: float = 10.0,
    on_spawn: Callable[[int], None] | None = None,
) -> RegistryProcess:
    """Write `config` (plus http.addr on a free port), start `docker-registry serve`, wait until /v2/ answers.

    `on_spawn(pid)` is called right after the process starts, so a caller can track it even if startup fails.
    """
    binary = find_binary()
    if binary is None:
        raise RegistryStartError(f"{BINARY} is not installed: run `apt-get install -y docker-registry`")
    workdir.mkdir(parents=True, exist_ok=True)
    # A free port can be taken between our probe and the registry's bind; a fixed port cannot be chosen again.
    attempts = 1 if port is not None else 3
    last: RegistryProcess | None = None
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        full = _with_defaults(config, chosen)
        config_path = workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(full, sort_keys=False))
        log_path = workdir / "registry.log"
        process = _launcher.submit(_spawn, [binary, "serve", str(config_path)], log_path, workdir).result()
        if on_spawn is not None:
            on_spawn(process.pid)
        last = RegistryProcess(name, workdir, chosen, config_path, log_path, process)
        if _wait_ready(last, timeout):
            return last
        last.stop()
    assert last is not None
    raise RegistryStartError(
        f"registry {name!r} did not answer http://127.0.0.1:{last.port}/v2/ within {timeout}s "
        f"(log {last.log_path}):\n{last.log_tail()}"
    )


def _wait_ready(registry: RegistryProcess, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not registry.alive():
            return False
        if answers_http("127.0.0.1", registry.port):
            return True
        time.sleep(0.02)  # polling a real condition (the port answers), bounded by the deadline
    return False


def _with_defaults(config: dict[str, Any], port: int) -> dict[str, Any]:
    full: dict[str, Any] = {"version": 0.1, "log": {"level": "info", "formatter": "text"}}
    full.update(config)
    http_section = dict(full.get("http") or {})
    http_section["addr"] = f"127.0.0.1:{port}"
    # A fixed secret silences distribution's warning and keeps upload state valid across a restart.
    http_section.setdefault("secret", secrets.token_hex(16))
    full["http"] = http_section
    storage = dict(full.get("storage") or {})
    storage.setdefault("maintenance", {"uploadpurging": {"enabled": False}})
    full["storage"] = storage
    return full


def stop_all(registries: list[RegistryProcess], timeout: float = 5.0) -> None:
    """Stop several registries: SIGTERM to all first so they wind down in parallel, then reap each."""
    for registry in registries:
        if registry.alive():
            with contextlib.suppress(ProcessLookupError):
                registry.process.terminate()
    for registry in registries:
        registry.stop(timeout)
