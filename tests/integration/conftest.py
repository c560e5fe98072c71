"""Fixtures for the registry client's integration tests: real CNCF distribution registries and tiny HTTP stubs.

What they start lives in `local_registries.py`; each fixture stops what it started, also when a test fails.
Registries are per session (per xdist worker), on free loopback ports; stubs are per test.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator

import bcrypt
import pytest

from tests.integration.local_registries import (
    BASIC_PASSWORD,
    BASIC_USER,
    TOKEN_ISSUER,
    TOKEN_PASSWORD,
    TOKEN_SERVICE,
    TOKEN_USER,
    LocalRegistry,
    Reply,
    Stub,
    TokenIssuer,
    TokenRealm,
    free_port,
    running_registry,
    serve_stub,
    serve_token_realm,
    stop,
)


@pytest.fixture(scope="session")
def open_registry(docker_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with no authentication (`docker_registry`: skipped, or failed in CI, when it is not installed)."""
    workdir = tmp_path_factory.mktemp("open-registry")
    with running_registry(workdir, {}) as (url, root):
        yield LocalRegistry(url=url, root=root)


@pytest.fixture(scope="session")
def basic_registry(docker_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry behind htpasswd Basic auth (one user, BASIC_USER / BASIC_PASSWORD)."""
    workdir = tmp_path_factory.mktemp("basic-registry")
    # Cost 4 keeps every request's bcrypt check to about a millisecond.
    hashed = bcrypt.hashpw(BASIC_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (workdir / "htpasswd").write_text(f"{BASIC_USER}:{hashed}\n")
    auth = {"htpasswd": {"realm": "basic-realm", "path": str(workdir / "htpasswd")}}
    header = "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    with running_registry(workdir, auth) as (url, root):
        yield LocalRegistry(url=url, root=root, authorize=lambda _repo: {"Authorization": header})


@pytest.fixture(scope="session")
def token_registry(
    docker_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalRegistry, TokenRealm]]:
    """A registry with `auth: token` and its token realm: TOKEN_USER may pull anything, anonymous only public/*."""
    workdir = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(workdir, issuer=TOKEN_ISSUER, service=TOKEN_SERVICE)
    realm = TokenRealm(url="", users={TOKEN_USER: TOKEN_PASSWORD}, requests=[])
    server, thread = serve_token_realm(issuer, realm)

    def push_token(repository: str) -> dict[str, str]:
        token = issuer.sign("pusher", [{"type": "repository", "name": repository, "actions": ["pull", "push"]}])
        return {"Authorization": f"Bearer {token}"}

    try:
        with running_registry(workdir, issuer.auth_config(realm.url)) as (url, root):
            yield LocalRegistry(url=url, root=root, authorize=push_token), realm
    finally:
        stop(server, thread)


@pytest.fixture
def stub_server() -> Iterator[Callable[[Callable[[str, str, dict[str, str]], Reply]], Stub]]:
    """A factory of stub servers: `stub_server(respond)`; every one started is stopped after the test."""
    running = []
    released = threading.Event()

    def start(respond: Callable[[str, str, dict[str, str]], Reply]) -> Stub:
        stub = Stub(url="", seen=[], respond=respond)
        running.append(serve_stub(stub, released))
        return stub

    try:
        yield start
    finally:
        released.set()
        for server, thread in running:
            stop(server, thread)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers: a hung registry."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.fixture
def refused_port() -> int:
    """A port with nothing listening: connections are refused."""
    return free_port()
