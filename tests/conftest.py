"""Fixtures shared by every test directory: the sandbox (real registries on 127.0.0.1), one per test session.

With pytest-xdist each worker gets its own sandbox: ports are free loopback ports, so workers never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sandbox import Sandbox

# The secrets canary guards the whole run: a secret in a log, report, exception or message fails the test.
pytest_plugins = ("tests.canary",)


@pytest.fixture(scope="session")
def docker_registry() -> str:
    """Path of Debian's docker-registry; skips when missing, but fails in CI (CI=true) so tests cannot vanish."""
    from sandbox.registries.distribution import find_binary

    binary = find_binary()
    if binary is None:
        message = "docker-registry is not installed: run `make system` (apt-get install -y docker-registry)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run the sandbox tests", pytrace=False)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def sandbox(docker_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A started Sandbox for the whole session; stopped at the end, also after failures or Ctrl-C."""
    from sandbox import Sandbox

    with Sandbox(tmp_path_factory.mktemp("sandbox")) as started:
        yield started


@pytest.fixture(autouse=True)
def fresh_upstream_clients() -> Iterator[None]:
    """Each test starts without upstream clients kept by an earlier one (a Lambda container's reuse, per test)."""
    from pullthrough.warm import upstream_clients

    upstream_clients.forget_kept_clients()
    yield
    upstream_clients.forget_kept_clients()
