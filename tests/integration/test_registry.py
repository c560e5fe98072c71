"""The registry client against real CNCF distribution registries (none, Basic, Bearer token realm) and stubs.

Real registries prove the protocol (auth discovery, Accept negotiation, digests); stubs prove what a real registry
will not do on demand (429, 5xx, hangs, redirects to another host, Link pagination, rate-limit headers).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from pullthrough.errors import (
    DigestMismatch,
    RegistryAuthError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
)
from pullthrough.registry import manifests
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from pullthrough.registry.headers import RateLimit
from tests.integration.local_registries import (
    BASIC_PASSWORD,
    BASIC_USER,
    STALL_AFTER,
    TOKEN_PASSWORD,
    TOKEN_SERVICE,
    TOKEN_USER,
    LocalRegistry,
    PushedImage,
    Reply,
    Stub,
    TokenRealm,
)

StubFactory = Callable[[Callable[[str, str, dict[str, str]], Reply]], Stub]
WRONG_PASSWORD = "wr0ng-Secret-value"


class Waits(list[float]):
    """An injected `sleep`: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def manifest_reply(body: bytes = b'{"schemaVersion": 2}', **headers: str) -> Reply:
    return 200, {"Content-Type": manifests.OCI_MANIFEST, **headers}, body


def registry_stub(stub_server: StubFactory, on_repository: Callable[[str, str, dict[str, str]], Reply]) -> Stub:
    """A stub registry: /v2/ answers 200 (no auth) and everything else goes to `on_repository`."""

    def respond(method: str, path: str, headers: dict[str, str]) -> Reply:
        if path == "/v2/":
            return 200, {}, b"{}"
        return on_repository(method, path, headers)

    return stub_server(respond)


# --- real registries -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multiarch(open_registry: LocalRegistry) -> PushedImage:
    return open_registry.push_image("team/multiarch", "v1", platforms=("linux/amd64", "linux/arm64/v8"))


@pytest.mark.sandbox
class TestDiscovery:
    def test_ping_reports_each_auth_scheme(
        self,
        open_registry: LocalRegistry,
        basic_registry: LocalRegistry,
        token_registry: tuple[LocalRegistry, TokenRealm],
    ) -> None:
        # Given three registries, one per auth mode
        bearer, realm = token_registry
        # When each is pinged
        none = RegistryClient(open_registry.url).ping()
        basic = RegistryClient(basic_registry.url).ping()
        token = RegistryClient(bearer.url).ping()
        # Then the challenge says how each authenticates, with the realm and service to use
        assert none.scheme == "none"
        assert (basic.scheme, basic.realm) == ("basic", "basic-realm")
        assert (token.scheme, token.realm, token.service) == ("bearer", realm.url, TOKEN_SERVICE)


@pytest.mark.sandbox
class TestBasicAuth:
    def test_right_password_authenticates_and_pulls(self, basic_registry: LocalRegistry) -> None:
        # Given an image in a registry behind htpasswd
        image = basic_registry.push_image("team/basic-app", "1.0")
        client = RegistryClient(basic_registry.url, credentials=Credentials(BASIC_USER, BASIC_PASSWORD))
        # When the client authenticates and pulls its manifest
        client.authenticate()
        manifest = client.get_manifest("team/basic-app", "1.0")
        # Then the manifest is the one pushed, byte for byte
        assert manifest.digest == image.digest
        assert manifest.body == image.body

    def test_wrong_password_is_a_clear_auth_error_without_the_password(self, basic_registry: LocalRegistry) -> None:
        # Given the right user with a wrong password
        client = RegistryClient(
            basic_registry.url, name="basic-upstream", credentials=Credentials(BASIC_USER, WRONG_PASSWORD)
        )
        # When it authenticates
        with pytest.raises(RegistryAuthError) as caught:
            client.authenticate("team/basic-app")
        # Then the error names the registry, the repository, the user and the status, never the password
        error = caught.value
        text = f"{error} {error!r} {error.args}"
        assert "basic-upstream/team/basic-app" in str(error)
        assert BASIC_USER in str(error)
        assert "HTTP 401" in str(error)
        assert (error.status, error.reason, error.registry) == (401, "auth", "basic-upstream")
        assert WRONG_PASSWORD not in text

    def test_refused_basic_credentials_are_sent_once_not_again(self, stub_server: StubFactory) -> None:
        # Given a Basic registry refusing the credentials (a 401 with the same Basic challenge)
        def respond(method: str, path: str, headers: dict[str, str]) -> Reply:
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""

        client = RegistryClient(stub_server(respond).url, credentials=Credentials("robot", "wr0ng-password"))
        # When a manifest is asked for
        with pytest.raises(RegistryAuthError, match="refused the credentials") as raised:
            client.get_manifest("team/app", "v1")
        # Then the refused credentials went out once: resending the same ones cannot help
        assert client.calls[("GET", "manifest")] == 1
        assert "(Docker Hub also answers so for a missing repository)" in str(raised.value)

    def test_credentials_a_repository_asks_for_after_an_open_v2_are_sent_then(self, stub_server: StubFactory) -> None:
        # Given a registry whose /v2/ is open but whose repository asks for Basic credentials
        def on_repository(method: str, path: str, headers: dict[str, str]) -> Reply:
            if headers.get("authorization", "").startswith("Basic "):
                return manifest_reply()
            return 401, {"WWW-Authenticate": 'Basic realm="r"'}, b""

        stub = registry_stub(stub_server, on_repository)
        client = RegistryClient(stub.url, credentials=Credentials("robot", "right-password"))
        # When a manifest is fetched, Then the credentials went with the second request, which was served
        assert client.get_manifest("team/app", "v1").body == b'{"schemaVersion": 2}'
        assert client.calls[("GET", "manifest")] == 2

    def test_a_401_without_a_challenge_is_not_retried(self, stub_server: StubFactory) -> None:
        # Given a registry whose /v2/ needs nothing, but whose manifest answers 401 without WWW-Authenticate
        stub = registry_stub(stub_server, lambda m, p, h: (401, {}, b""))
        client = RegistryClient(stub.url, credentials=Credentials("robot", "some-password"))
        # When a manifest is asked for, Then it is refused after one request: there is nothing to answer
        with pytest.raises(RegistryAuthError):
            client.get_manifest("team/app", "v1")
        assert client.calls[("GET", "manifest")] == 1

    def test_no_credentials_says_credentials_are_needed(self, basic_registry: LocalRegistry) -> None:
        # Given no credentials for a registry that demands them
        client = RegistryClient(basic_registry.url)
        # When it authenticates, or reads a manifest
        with pytest.raises(RegistryAuthError, match="none were given"):
            client.authenticate()
        with pytest.raises(RegistryAuthError, match="anonymous") as caught:
            client.head_manifest("team/basic-app", "1.0")
        # Then each says so, naming the repository
        assert caught.value.repository == "team/basic-app"


@pytest.mark.sandbox
class TestBearerAuth:
    def test_token_realm_gets_basic_credentials_and_the_pull_scope(
        self, token_registry: tuple[LocalRegistry, TokenRealm]
    ) -> None:
        # Given a private image behind a token realm
        registry, realm = token_registry
        image = registry.push_image("private/bearer-app", "2.0")
        client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD))
        before = len(realm.requests)
        # When the client reads the manifest twice
        first = client.head_manifest("private/bearer-app", "2.0")
        second = client.get_manifest("private/bearer-app", "2.0")
        # Then one token was asked for, with Basic credentials, the service and the repository's pull scope, and
        # no `account` in the query (optional in the token spec; the Basic header names the user)
        asked = realm.requests[before:]
        assert len(asked) == 1
        assert asked[0] == {
            "query": {"service": TOKEN_SERVICE, "scope": "repository:private/bearer-app:pull"},
            "basic": True,
        }
        assert client.calls[("GET", "token")] == 1
        assert first.digest == second.digest == image.digest

    def test_wrong_password_is_refused_by_the_realm_without_the_password(
        self, token_registry: tuple[LocalRegistry, TokenRealm]
    ) -> None:
        # Given a wrong token for a real user
        registry, realm = token_registry
        client = RegistryClient(registry.url, name="hub", credentials=Credentials(TOKEN_USER, WRONG_PASSWORD))
        # When it authenticates
        with pytest.raises(RegistryAuthError) as caught:
            client.authenticate("private/bearer-app")
        # Then the error names the realm, the user and the realm's reason, never the password
        message = str(caught.value)
        assert message.startswith("hub/private/bearer-app: the token realm ")
        assert realm.url in message
        assert "incorrect username or password" in message
        assert WRONG_PASSWORD not in f"{message} {caught.value!r}"

    def test_anonymous_token_reads_public_but_not_private(
        self, token_registry: tuple[LocalRegistry, TokenRealm]
    ) -> None:
        # Given a public and a private image, and a client without credentials
        registry, realm = token_registry
        public = registry.push_image("public/tool", "1")
        registry.push_image("private/secret-tool", "1")
        client = RegistryClient(registry.url)
        before = len(realm.requests)
        # When it reads both
        head = client.head_manifest("public/tool", "1")
        with pytest.raises(RegistryAuthError, match="anonymous") as caught:
            client.head_manifest("private/secret-tool", "1")
        # Then the public one is served, the realm was called without credentials, the private one is refused
        assert head.digest == public.digest
        assert all(not r["basic"] for r in realm.requests[before:])
        assert caught.value.repository == "private/secret-tool"

    def test_access_token_field_and_expiry(self, token_registry: tuple[LocalRegistry, TokenRealm]) -> None:
        # Given a realm that answers only `access_token` with expires_in=300, and a clock the test moves
        registry, realm = token_registry
        registry.push_image("private/expiring", "1")
        now = [1000.0]
        client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD), clock=lambda: now[0])
        realm.field_name = "access_token"
        try:
            # When the client reads within the token's life, and again after it
            client.head_manifest("private/expiring", "1")
            now[0] += 200
            client.head_manifest("private/expiring", "1")
            tokens_within_life = client.calls[("GET", "token")]
            now[0] += 200
            client.head_manifest("private/expiring", "1")
        finally:
            realm.field_name = "token"
        # Then the token was reused while valid and renewed once expired
        assert tokens_within_life == 1
        assert client.calls[("GET", "token")] == 2

    def test_a_token_is_renewed_before_it_expires_never_after(
        self, token_registry: tuple[LocalRegistry, TokenRealm]
    ) -> None:
        # Given a realm whose tokens live 300 s, and a clock the test moves
        registry, realm = token_registry
        assert realm.expires_in == 300
        registry.push_image("private/renewed", "1")
        now = [1000.0]
        client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD), clock=lambda: now[0])
        client.head_manifest("private/renewed", "1")
        # When the next request comes 295 s later (inside the token's life, inside the last 10 s of it)
        now[0] += 295
        client.head_manifest("private/renewed", "1")
        # Then a fresh token was asked for: a request never goes out with a token about to expire on the way
        assert client.calls[("GET", "token")] == 2

    def test_tokens_are_cached_per_scope(self, token_registry: tuple[LocalRegistry, TokenRealm]) -> None:
        # Given two repositories
        registry, _ = token_registry
        registry.push_image("private/one", "1")
        registry.push_image("private/two", "1")
        client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD))
        # When each is read twice
        for repository in ("private/one", "private/two", "private/one", "private/two"):
            client.head_manifest(repository, "1")
        # Then there is one token per repository scope
        assert client.calls[("GET", "token")] == 2


class TestReauthentication:
    @staticmethod
    def bearer_registry(stub_server: StubFactory, accepts: Callable[[str], bool]) -> tuple[Stub, Stub]:
        """A stub token realm handing out t1, t2, ... and a stub registry that takes the tokens `accepts` likes."""
        issued = iter(range(1, 100))
        realm = stub_server(
            lambda m, p, h: (200, {}, json.dumps({"token": f"t{next(issued)}", "expires_in": 300}).encode())
        )

        def registry(method: str, path: str, headers: dict[str, str]) -> Reply:
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if path != "/v2/" and accepts(token):
                return manifest_reply()
            challenge = f'Bearer realm="{realm.url}/token",service="stub",scope="repository:team/app:pull"'
            return 401, {"WWW-Authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'

        return stub_server(registry), realm

    def test_a_token_refused_mid_life_is_renewed_once(self, stub_server: StubFactory) -> None:
        # Given a registry that stopped honouring the first token the realm issued
        registry, realm = self.bearer_registry(stub_server, lambda token: token != "t1")
        client = RegistryClient(registry.url, credentials=Credentials("user", "token"))
        # When a manifest is fetched
        manifest = client.get_manifest("team/app", "v1")
        # Then the client asked for a fresh token and succeeded on the second request
        assert manifest.body == b'{"schemaVersion": 2}'
        assert (client.calls[("GET", "token")], client.calls[("GET", "manifest")]) == (2, 2)
        assert len(realm.seen) == 2

    def test_a_token_never_honoured_is_an_auth_error_without_a_loop(self, stub_server: StubFactory) -> None:
        # Given a registry that refuses every token
        registry, _ = self.bearer_registry(stub_server, lambda token: False)
        client = RegistryClient(registry.url, credentials=Credentials("user", "token"))
        # When a manifest is fetched
        with pytest.raises(RegistryAuthError, match="refused the credentials of user 'user'"):
            client.get_manifest("team/app", "v1")
        # Then it re-authenticated exactly once
        assert (client.calls[("GET", "token")], client.calls[("GET", "manifest")]) == (2, 2)

    @pytest.mark.parametrize(
        ("realm_port", "error", "words"),
        [("refused_port", RegistryUnavailable, "cannot connect"), ("silent_port", RegistryTimeout, "no answer")],
    )
    def test_a_token_realm_down_or_hung(
        self,
        request: pytest.FixtureRequest,
        stub_server: StubFactory,
        realm_port: str,
        error: type[Exception],
        words: str,
    ) -> None:
        # Given a registry whose token realm refuses connections, or never answers
        port = request.getfixturevalue(realm_port)
        challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="stub"'
        registry = stub_server(lambda m, p, h: (401, {"WWW-Authenticate": challenge}, b""))
        waits = Waits()
        client = RegistryClient(registry.url, name="hub", timeout=0.2, retries=1, sleep=waits)
        # When credentials are checked
        with pytest.raises(error) as caught:
            client.authenticate("team/app")
        # Then the error says the token request failed, for that registry and repository
        assert str(caught.value).startswith(f"hub/team/app: the token request: {words}")


@pytest.mark.sandbox
class TestManifests:
    def test_head_does_not_count_as_a_manifest_get(self, open_registry: LocalRegistry) -> None:
        # Given a single-platform image
        image = open_registry.push_image("team/headed", "v1", layer_sizes=(512, 256))
        client = RegistryClient(open_registry.url)
        # When it is HEADed, then fetched
        head = client.head_manifest("team/headed", "v1")
        gets_after_head = client.calls[("GET", "manifest")]
        manifest = client.get_manifest("team/headed", "v1")
        # Then HEAD told digest, type and size without a GET, and the GET returned the same manifest and its blobs
        assert (head.digest, head.media_type, head.size) == (image.digest, manifests.OCI_MANIFEST, len(image.body))
        assert head.rate_limit is None
        assert gets_after_head == 0
        assert client.calls[("HEAD", "manifest")] == 1
        assert client.calls[("GET", "manifest")] == 1
        parsed = manifest.parsed()
        assert isinstance(parsed, manifests.ImageManifest)
        assert [b.digest for b in parsed.blobs] == image.blobs[image.digest]

    def test_an_index_with_two_platforms(self, open_registry: LocalRegistry, multiarch: PushedImage) -> None:
        # Given an OCI index over linux/amd64 and linux/arm64/v8
        client = RegistryClient(open_registry.url)
        # When the tag, then one platform's manifest by digest, are fetched
        index = client.get_manifest("team/multiarch", "v1")
        parsed = index.parsed()
        assert isinstance(parsed, manifests.Index)
        arm = parsed.entry_for("linux/arm64")
        assert arm is not None
        image = client.get_manifest("team/multiarch", arm.digest)
        # Then the index lists both platforms and the platform manifest is the one pushed for arm64
        assert index.media_type == manifests.OCI_INDEX
        assert index.digest == multiarch.digest
        assert parsed.platforms == ["linux/amd64", "linux/arm64/v8"]
        assert image.digest == multiarch.platforms["linux/arm64/v8"]
        assert client.calls[("GET", "manifest")] == 2

    def test_a_docker_manifest_list(self, open_registry: LocalRegistry) -> None:
        # Given a Docker schema 2 manifest list
        pushed = open_registry.push_image(
            "team/dockerlist", "v1", platforms=("linux/amd64", "linux/arm/v7"), docker=True
        )
        # When its tag is fetched
        manifest = RegistryClient(open_registry.url).get_manifest("team/dockerlist", "v1")
        # Then its media type and platforms are Docker's
        parsed = manifest.parsed()
        assert manifest.media_type == manifests.DOCKER_LIST
        assert isinstance(parsed, manifests.Index)
        assert {e.platform: e.digest for e in parsed.entries} == pushed.platforms

    def test_the_accept_list_is_what_makes_an_oci_manifest_visible(self, open_registry: LocalRegistry) -> None:
        # Given an OCI manifest, which distribution hides from clients that do not accept its type
        open_registry.push_image("team/negotiated", "v1")
        bare = urllib3.PoolManager().request("GET", f"{open_registry.url}/v2/team/negotiated/manifests/v1")
        # When the client asks for it
        manifest = RegistryClient(open_registry.url).get_manifest("team/negotiated", "v1")
        # Then the client gets it where a request without Accept did not
        assert bare.status == 404
        assert manifest.media_type == manifests.OCI_MANIFEST

    def test_unknown_tag_is_not_found_naming_repository_and_tag(self, open_registry: LocalRegistry) -> None:
        # Given a tag nobody pushed
        client = RegistryClient(open_registry.url, name="upstream")
        # When it is read
        with pytest.raises(RegistryNotFound) as caught:
            client.head_manifest("team/multiarch", "no-such-tag")
        with pytest.raises(RegistryNotFound, match="MANIFEST_UNKNOWN"):
            client.get_manifest("team/multiarch", "no-such-tag")
        # Then the error says which repository, tag and status
        assert str(caught.value) == "upstream/team/multiarch: manifest no-such-tag not found (HTTP 404)"

    def test_a_corrupt_manifest_is_a_digest_mismatch(self, open_registry: LocalRegistry) -> None:
        # Given a manifest whose stored bytes were altered after push
        image = open_registry.push_image("team/corrupt-manifest", "v1")
        stored = open_registry.blob_path(image.digest)
        stored.write_bytes(stored.read_bytes().replace(b"tar+gzip", b"tar+zstd"))
        client = RegistryClient(open_registry.url)
        # When it is fetched by digest and by tag
        with pytest.raises(DigestMismatch) as by_digest:
            client.get_manifest("team/corrupt-manifest", image.digest)
        with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
            client.get_manifest("team/corrupt-manifest", "v1")
        # Then both fail, naming the digest asked for
        assert image.digest in str(by_digest.value)
        assert by_digest.value.reason == "digest_mismatch"


@pytest.mark.sandbox
class TestBlobs:
    def test_fetch_streams_and_counts_bytes(self, open_registry: LocalRegistry) -> None:
        # Given an image with a 300 KiB layer
        image = open_registry.push_image("team/blobs", "v1", layer_sizes=(300 * 1024,))
        config, layer = image.blobs[image.digest]
        client = RegistryClient(open_registry.url)
        # When its blobs are checked and fetched
        exists = client.blob_exists("team/blobs", layer)
        fetched = client.fetch_blob("team/blobs", layer)
        missing = client.blob_exists("team/blobs", manifests.sha256_digest(b"never pushed"))
        # Then the layer is there, every byte was read, and a missing blob is just absent
        assert (exists, fetched, missing) == (True, 300 * 1024, False)
        assert client.fetch_blob("team/blobs", config) > 0
        assert client.calls[("GET", "blob")] == 2
        assert client.calls[("HEAD", "blob")] == 2

    def test_a_corrupt_blob_is_a_digest_mismatch(self, open_registry: LocalRegistry) -> None:
        # Given a layer whose stored bytes were replaced by others of the same length
        image = open_registry.push_image("team/corrupt-blob", "v1", layer_sizes=(4096,))
        layer = image.blobs[image.digest][1]
        open_registry.blob_path(layer).write_bytes(b"\0" * 4096)
        # When it is fetched
        with pytest.raises(DigestMismatch) as caught:
            RegistryClient(open_registry.url).fetch_blob("team/corrupt-blob", layer)
        # Then the error names the blob and the hash it really had
        assert layer in str(caught.value)
        assert manifests.sha256_digest(b"\0" * 4096) in str(caught.value)


class TestRedirects:
    def test_a_redirect_to_another_host_drops_the_authorization(self, stub_server: StubFactory) -> None:
        # Given a Basic registry whose blob answers 307 to a storage host on another origin
        data = b"layer bytes" * 1000
        digest = manifests.sha256_digest(data)
        storage = stub_server(lambda method, path, headers: (200, {}, data))

        def registry(method: str, path: str, headers: dict[str, str]) -> Reply:
            if "authorization" not in headers:
                return 401, {"WWW-Authenticate": 'Basic realm="stub"'}, b""
            port = urlsplit(storage.url).port
            return 307, {"Location": f"http://localhost:{port}/signed/{digest}?X-Amz-Signature=abc"}, b""

        upstream = stub_server(registry)
        client = RegistryClient(upstream.url, credentials=Credentials("user", "s3cr3t"))
        # When the blob is fetched
        fetched = client.fetch_blob("team/app", digest)
        # Then the bytes came from storage, which never saw the registry credentials
        assert fetched == len(data)
        assert upstream.seen[-1].headers["authorization"].startswith("Basic ")
        assert [s.path for s in storage.seen] == [f"/signed/{digest}?X-Amz-Signature=abc"]
        assert "authorization" not in storage.seen[0].headers


@pytest.mark.sandbox
class TestTags:
    def test_all_tags_of_a_real_registry(self, open_registry: LocalRegistry) -> None:
        # Given a repository with several tags
        image = open_registry.push_image("team/tagged", "t0")
        for i in range(1, 6):
            open_registry.push_manifest("team/tagged", f"t{i}", image.body, image.media_type)
        # When its tags are listed (distribution 2.8.2 ignores n and sends everything at once)
        tags = RegistryClient(open_registry.url).list_tags("team/tagged", page_size=2)
        # Then every tag is there
        assert sorted(tags) == [f"t{i}" for i in range(6)]


@pytest.mark.sandbox
class TestSharedClient:
    def test_one_client_serves_many_threads(self, token_registry: tuple[LocalRegistry, TokenRealm]) -> None:
        # Given two private images and one client shared by 8 threads
        registry, _ = token_registry
        images = [registry.push_image(f"private/shared-{i}", "1") for i in range(2)]
        client = RegistryClient(registry.url, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD))
        # When 32 HEADs run concurrently over both repositories
        with ThreadPoolExecutor(max_workers=8) as pool:
            heads = list(pool.map(lambda i: client.head_manifest(images[i % 2].repository, "1"), range(32)))
        # Then every answer is right and every call was counted
        assert [h.digest for h in heads] == [images[i % 2].digest for i in range(32)]
        assert client.calls[("HEAD", "manifest")] == 32


class TestTagPagination:
    def test_link_pagination_is_followed_to_the_end(self, stub_server: StubFactory) -> None:
        # Given 7 tags served 2 per page with relative Link headers, as Docker Hub does
        all_tags = [f"1.{i}" for i in range(7)]

        def tags(method: str, path: str, headers: dict[str, str]) -> Reply:
            query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
            n = int(query["n"])
            start = all_tags.index(query["last"]) + 1 if "last" in query else 0
            page = all_tags[start : start + n]
            reply_headers = {"Content-Type": "application/json"}
            if start + n < len(all_tags):
                reply_headers["Link"] = f'</v2/team/app/tags/list?n={n}&last={page[-1]}>; rel="next"'
            return 200, reply_headers, json.dumps({"name": "team/app", "tags": page}).encode()

        stub = registry_stub(stub_server, tags)
        client = RegistryClient(stub.url)
        # When they are listed with a page size of 2
        listed = client.list_tags("team/app", page_size=2)
        # Then every tag comes back in order, over 4 requests
        assert listed == all_tags
        assert client.calls[("GET", "tags")] == 4
        assert [s.path for s in stub.seen if "tags" in s.path][-1] == "/v2/team/app/tags/list?n=2&last=1.5"


# --- rate limits, retries and failures (stubs) ---------------------------------------------------------------------


class TestRateLimits:
    def test_headers_are_read_from_a_head(self, stub_server: StubFactory) -> None:
        # Given a registry that reports Docker Hub's rate-limit headers
        headers = {
            "Docker-Content-Digest": manifests.sha256_digest(b"m"),
            "ratelimit-limit": "100;w=21600",
            "ratelimit-remaining": "76;w=21600",
            "docker-ratelimit-source": "203.0.113.7",
        }
        stub = registry_stub(stub_server, lambda m, p, h: (200, {"Content-Type": manifests.OCI_INDEX, **headers}, b""))
        client = RegistryClient(stub.url)
        # When a manifest is HEADed
        head = client.head_manifest("library/nginx", "latest")
        # Then the budget is known, on the result and on the client
        expected = RateLimit(limit=100, remaining=76, window_seconds=21600, source="203.0.113.7")
        assert head.rate_limit == expected
        assert client.rate_limit == expected

    def test_a_429_with_retry_after_waits_then_succeeds(self, stub_server: StubFactory) -> None:
        # Given a registry that answers 429 (Retry-After: 2) once, then the manifest
        answers = iter([(429, {"Retry-After": "2"}, b""), manifest_reply()])
        stub = registry_stub(stub_server, lambda m, p, h: next(answers))
        waits = Waits()
        client = RegistryClient(stub.url, sleep=waits)
        # When the manifest is fetched
        manifest = client.get_manifest("library/nginx", "latest")
        # Then the client waited exactly what the registry asked, once, and got the manifest
        assert waits == [2.0]
        assert manifest.body == b'{"schemaVersion": 2}'
        assert client.calls[("GET", "manifest")] == 2

    def test_retry_after_as_an_http_date(self, stub_server: StubFactory) -> None:
        # Given a 429 whose Retry-After is a date 5 seconds ahead
        when = email.utils.formatdate(time.time() + 5, usegmt=True)
        answers = iter([(429, {"Retry-After": when}, b""), manifest_reply()])
        stub = registry_stub(stub_server, lambda m, p, h: next(answers))
        waits = Waits()
        # When the manifest is fetched
        RegistryClient(stub.url, sleep=waits).get_manifest("library/nginx", "latest")
        # Then the wait is the time until that date (HTTP dates have whole seconds)
        assert len(waits) == 1
        assert 3.0 <= waits[0] <= 5.0

    def test_a_429_storm_ends_in_rate_limited_with_retry_after(self, stub_server: StubFactory) -> None:
        # Given a registry that answers 429 to everything
        stub = registry_stub(
            stub_server,
            lambda m, p, h: (
                429,
                {"Retry-After": "1"},
                b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
            ),
        )
        waits = Waits()
        client = RegistryClient(stub.url, name="hub", retries=3, sleep=waits)
        # When a manifest is fetched
        with pytest.raises(RegistryRateLimited) as caught:
            client.get_manifest("library/nginx", "latest")
        # Then it tried 1 + 3 times, waited as told between them, and says when to come back
        assert waits == [1.0, 1.0, 1.0]
        assert client.calls[("GET", "manifest")] == 4
        assert (caught.value.status, caught.value.retry_after, caught.value.reason) == (429, 1.0, "rate_limited")
        assert "hub/library/nginx" in str(caught.value)
        assert "TOOMANYREQUESTS" in str(caught.value)
        assert "retry after 1s" in str(caught.value)

    def test_a_429_storm_without_retry_after_is_rate_limited_without_a_time(self, stub_server: StubFactory) -> None:
        # Given a registry answering 429 without saying when to come back
        stub = registry_stub(stub_server, lambda m, p, h: (429, {}, b""))
        client = RegistryClient(stub.url, name="hub", retries=1, sleep=Waits())
        # When a manifest is fetched, Then it is rate limited, without a made-up time
        with pytest.raises(RegistryRateLimited) as caught:
            client.get_manifest("library/nginx", "latest")
        assert caught.value.retry_after is None
        assert "retry after" not in str(caught.value)

    def test_a_retry_after_beyond_max_wait_is_not_slept_through(self, stub_server: StubFactory) -> None:
        # Given a 429 asking for an hour
        stub = registry_stub(stub_server, lambda m, p, h: (429, {"Retry-After": "3600"}, b""))
        waits = Waits()
        client = RegistryClient(stub.url, sleep=waits, max_wait=30)
        # When the manifest is HEADed
        with pytest.raises(RegistryRateLimited) as caught:
            client.head_manifest("library/nginx", "latest")
        # Then the client gives up at once and passes the hour on
        assert waits == []
        assert caught.value.retry_after == 3600.0
        assert client.calls[("HEAD", "manifest")] == 1

    @pytest.mark.parametrize("status", [500, 502, 504])
    def test_every_5xx_but_501_is_retried(self, stub_server: StubFactory, status: int) -> None:
        # Given a registry that fails once with a server error, then answers
        answers = iter([(status, {}, b""), manifest_reply()])
        stub = registry_stub(stub_server, lambda m, p, h: next(answers))
        waits = Waits()
        # When a manifest is fetched, Then it is served after one wait (501 Not Implemented is never retried)
        RegistryClient(stub.url, sleep=waits).get_manifest("library/nginx", "latest")
        assert len(waits) == 1

    def test_a_503_is_retried_with_jittered_backoff(self, stub_server: StubFactory) -> None:
        # Given a registry that fails twice with 503, then answers
        answers = iter([(503, {}, b""), (503, {}, b""), manifest_reply()])
        stub = registry_stub(stub_server, lambda m, p, h: next(answers))
        waits = Waits()
        client = RegistryClient(stub.url, sleep=waits, backoff=0.5, jitter=lambda: 1.0)
        # When a manifest is fetched
        client.get_manifest("library/nginx", "latest")
        # Then the waits grew exponentially from the backoff base
        assert waits == [0.5, 1.0]

    @pytest.mark.parametrize("status", [500, 502])
    def test_a_5xx_storm_is_unavailable(self, stub_server: StubFactory, status: int) -> None:
        # Given a registry that always answers a server error
        stub = registry_stub(stub_server, lambda m, p, h: (status, {}, b"bad gateway"))
        waits = Waits()
        client = RegistryClient(stub.url, retries=2, sleep=waits, jitter=lambda: 0.0)
        # When a manifest is fetched
        with pytest.raises(RegistryUnavailable) as caught:
            client.get_manifest("library/nginx", "latest")
        # Then it retried twice, with waits of at least half the backoff, and reports the status
        assert waits == [0.125, 0.25]
        assert (caught.value.status, caught.value.reason) == (status, "upstream_down")


class TestConnectionFailures:
    def test_a_blob_that_stalls_mid_body_times_out(self, stub_server: StubFactory) -> None:
        # Given a registry that sends 100 bytes of a blob, then nothing
        data = b"x" * 1000
        stub = registry_stub(stub_server, lambda m, p, h: (200, {STALL_AFTER: "100"}, data))
        client = RegistryClient(stub.url, timeout=0.3)
        started = time.monotonic()
        # When the blob is fetched
        with pytest.raises(RegistryTimeout, match="after 100 bytes"):
            client.fetch_blob("team/app", manifests.sha256_digest(data))
        # Then it gives up after the read timeout, not the whole body's time
        assert time.monotonic() - started < 2.0

    def test_a_registry_that_never_answers_times_out(self, silent_port: int) -> None:
        # Given a server that accepts connections and never answers, and a short timeout
        waits = Waits()
        client = RegistryClient(f"http://127.0.0.1:{silent_port}", name="slow", timeout=0.2, sleep=waits)
        started = time.monotonic()
        # When a manifest is HEADed
        with pytest.raises(RegistryTimeout) as caught:
            client.head_manifest("library/nginx", "latest")
        # Then it fails within the timeout, without retrying a slow registry
        assert time.monotonic() - started < 2.0
        assert waits == []
        assert caught.value.reason == "timeout"
        assert str(caught.value).startswith("slow/library/nginx: ")

    def test_connection_refused_is_unavailable_after_retries(self, refused_port: int) -> None:
        # Given nothing listening
        waits = Waits()
        client = RegistryClient(f"http://127.0.0.1:{refused_port}", retries=2, sleep=waits)
        # When the registry is pinged
        with pytest.raises(RegistryUnavailable, match="cannot connect") as caught:
            client.ping()
        # Then it retried with backoff and reports the registry as down, counting the attempts right
        assert len(waits) == 2
        assert "(3 attempts;" in str(caught.value)
        assert caught.value.status is None
        assert caught.value.registry == f"127.0.0.1:{refused_port}"
