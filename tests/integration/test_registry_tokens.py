"""The registry client asks a token realm once per scope, however many threads need that token at the same moment.

Against a real distribution registry behind a token realm (tests/integration/conftest.py's `token_registry`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from tests.integration.local_registries import TOKEN_PASSWORD, TOKEN_USER, LocalRegistry, TokenRealm

pytestmark = pytest.mark.sandbox

THREADS = 8


def test_threads_that_need_the_same_token_at_once_share_one_token_request(
    token_registry: tuple[LocalRegistry, TokenRealm],
) -> None:
    # Given an image behind a token realm, and one client shared by eight threads
    registry, realm = token_registry
    image = registry.push_image("private/shared-token", "1.0")
    client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD), connections=THREADS)
    client.ping()
    before = len(realm.requests)
    start = threading.Barrier(THREADS, timeout=10)

    def head(_: int) -> str:
        start.wait()
        return client.head_manifest("private/shared-token", "1.0").digest

    # When all of them HEAD the image at the same moment
    with ThreadPoolExecutor(THREADS) as pool:
        digests = list(pool.map(head, range(THREADS)))
    # Then every HEAD succeeded, and the realm was asked for the repository's token once
    assert digests == [image.digest] * THREADS
    assert len(realm.requests) - before == 1
    assert client.calls[("GET", "token")] == 1
    assert client.calls[("HEAD", "manifest")] == THREADS


def test_each_scope_still_gets_its_own_token(token_registry: tuple[LocalRegistry, TokenRealm]) -> None:
    # Given two repositories, When one client HEADs both from several threads
    registry, realm = token_registry
    first = registry.push_image("private/scope-a", "1.0")
    second = registry.push_image("private/scope-b", "1.0")
    client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD), connections=THREADS)
    before = len(realm.requests)
    targets = [("private/scope-a", first.digest), ("private/scope-b", second.digest)] * (THREADS // 2)
    with ThreadPoolExecutor(THREADS) as pool:
        found = list(pool.map(lambda t: client.head_manifest(t[0], "1.0").digest == t[1], targets))
    # Then each repository's token was asked for once, for its own scope
    assert all(found)
    scopes = sorted(r["query"]["scope"] for r in realm.requests[before:])
    assert scopes == ["repository:private/scope-a:pull", "repository:private/scope-b:pull"]
