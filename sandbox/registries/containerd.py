"""A private containerd daemon for real-client tests of the containerd configuration Pullthrough generates.

Debian's `containerd` package; the daemon runs as root with its own root, state and socket under a work directory
and without the CRI plugin (no Kubernetes here), so it never touches a system containerd. Tests drive it with `ctr`,
e.g. `ctr content fetch --hosts-dir <certs.d> <image>`, which resolves registries through hosts.toml files as the
CRI plugin does with `config_path` (containerd docs/hosts.md). Like the registries, it is spawned under pdeathsig
(sandbox.registries.distribution.spawn) and stopped by leaving the `with` block.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandbox.registries.distribution import spawn

BINARY, CLIENT = "containerd", "ctr"
NAMESPACE = "pullthrough-tests"


def find_binary() -> str | None:
    """Path of `containerd` when both it and `ctr` are installed, else None."""
    found = shutil.which(BINARY)
    return found if found and shutil.which(CLIENT) else None


@dataclass(frozen=True)
class Containerd:
    """A running daemon: its socket, and `ctr` against it."""

    socket: Path
    log_path: Path

    def ctr(self, args: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`ctr --address <socket> --namespace pullthrough-tests <args>`."""
        command = [CLIENT, "--address", str(self.socket), "--namespace", NAMESPACE, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@contextlib.contextmanager
def running(workdir: Path, timeout: float = 15.0) -> Iterator[Containerd]:
    """Start containerd under `workdir`, wait until `ctr version` answers, and stop it afterwards."""
    binary = find_binary()
    if binary is None:
        raise RuntimeError("containerd is not installed: run `make system` (apt-get install -y containerd)")
    workdir.mkdir(parents=True, exist_ok=True)
    socket = workdir / "containerd.sock"
    config = workdir / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{workdir / "root"}"\n'
        f'state = "{workdir / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n'
        f'[ttrpc]\n  address = "{socket}.ttrpc"\n'
    )
    daemon = Containerd(socket, workdir / "containerd.log")
    process = spawn([binary, "--config", str(config)], daemon.log_path, workdir)
    try:
        _wait_ready(daemon, process, timeout)
        yield daemon
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(daemon: Containerd, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if daemon.socket.exists() and daemon.ctr(["version"], timeout=5).returncode == 0:
            return
        time.sleep(0.05)  # polling a real condition (the daemon answers), bounded by the deadline
    raise RuntimeError(f"containerd did not answer within {timeout}s (log {daemon.log_path})")
