"""The registry client: ping, authenticate, manifests (HEAD and GET), blobs (HEAD and a streamed GET), tags.

Each operation builds its request, sends it through the transport (transport.py) with the client's authentication
(auth.py), and checks what came back: a manifest's bytes against its digest, a blob's stream through a hash, a tag
list's pages. Failures become errors in failures.py; header readings are headers.py's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Unpack
from urllib.parse import quote, urlencode, urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, ReadTimeoutError

from pullthrough import redaction
from pullthrough.errors import (
    DigestMismatch,
    InvalidManifest,
    RegistryAuthError,
    RegistryError,
    RegistryTimeout,
    RegistryUnavailable,
)
from pullthrough.registry import manifests
from pullthrough.registry.auth import Authenticator, Credentials, pull_scope
from pullthrough.registry.failures import Failures
from pullthrough.registry.headers import (
    Challenge,
    RateLimit,
    content_length,
    content_type,
    parse_next_link,
    parse_rate_limit,
)
from pullthrough.registry.transport import (
    Kind,
    Method,
    Request,
    Transport,
    TransportOptions,
    chunks,
    origin,
    reason,
)

# distribution refuses manifests above 4 MiB; anything larger is not a manifest worth holding in memory.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MAX_TAG_PAGES = 10_000


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD on a manifest tells without spending a pull."""

    digest: str
    media_type: str
    size: int
    rate_limit: RateLimit | None


@dataclass(frozen=True)
class Manifest(ManifestHead):
    """A fetched manifest: its head plus the exact bytes, already verified against the digest."""

    body: bytes = field(repr=False)

    def parsed(self) -> manifests.Index | manifests.ImageManifest:
        """The body as an Index or an ImageManifest."""
        return manifests.parse(self.body, self.media_type)


class RegistryClient:
    """A client for one registry (an upstream or the ECR registry endpoint); safe to share between threads.

    `calls` counts the requests sent, by (method, kind), retries and re-authentications included, so it matches
    what the registry saw: `calls[("GET", "manifest")]` is the pulls Docker Hub would count. Redirect hops to blob
    storage are not counted. `rate_limit` is the last rate limit any answer reported.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        credentials: Credentials | None = None,
        **options: Unpack[TransportOptions],
    ) -> None:
        """`options`: timeout, retries, backoff, pool, sleep, clock, max_wait, jitter, connections (TransportOptions).

        `max_wait` caps one wait between retries: a longer Retry-After is not slept through but raised.
        `connections`: keep-alive connections kept per host (as many as threads share the client at once).
        """
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.name = name or parts.netloc or self.base_url
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(self.name, None, f"base URL {base_url!r} must look like https://host[:port]")
        self.credentials = credentials
        self._transport = Transport(self.name, options)
        self._failures = Failures(self.name, credentials)
        self._auth = Authenticator(self._transport, self._url("/v2/"), self._failures)
        self.connections = self._transport.connections
        self.timeout = self._transport.timeout
        self.calls = self._transport.calls

    @property
    def rate_limit(self) -> RateLimit | None:
        """The last rate limit any answer reported."""
        return self._transport.rate_limit

    def __repr__(self) -> str:
        user = redaction.user_label(self.credentials.username) if self.credentials else "anonymous"
        return f"RegistryClient({self.base_url!r}, name={self.name!r}, {user})"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections of a pool this client created (a shared pool is left to its owner)."""
        self._transport.close()

    def ping(self) -> Challenge:
        """GET /v2/ and report how the registry authenticates ("none", "basic" or "bearer")."""
        return self._auth.discover(None)

    def authenticate(self, repository: str | None = None) -> None:
        """Prove the credentials (anonymous access for a token realm without them); RegistryAuthError when refused.

        With a repository, a Bearer token is asked for pull access to it, so a realm that refuses the scope fails.
        """
        challenge = self._auth.discover(repository)
        if challenge.scheme == "none":
            return
        if challenge.scheme == "basic" and self.credentials is None:
            raise RegistryAuthError(
                self.name, repository, "demands credentials (Basic auth) and none were given; add them to the rule", 401
            )
        scope = pull_scope(repository) if repository else None
        if challenge.scheme == "bearer":
            self._auth.forget_token(scope)
            self._auth.token(challenge, scope, repository)
        response = self._send("GET", "/v2/", "ping", repository)
        if response.status != 200:
            self._failures.fail(response, repository, "the /v2/ endpoint", resource=False)

    def authorize_pulls(self, repositories: Sequence[str]) -> int:
        """Ask the token realm once for pull access to all of `repositories` (repeated `scope` parameters), for the
        requests that follow; returns the token requests sent (0 or 1). Only for a realm known to grant several
        scopes in one token (Docker Hub's does): a scope it leaves out costs that repository its own token later,
        never a failure. Errors are the realm's, as for any token request."""
        return self._auth.share([scope for repository in repositories if (scope := pull_scope(repository))])

    def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        """HEAD a manifest: digest, media type, size and rate limit, without counting as a pull on Docker Hub."""
        response = self._manifest("HEAD", repository, reference)
        what = f"manifest {reference}"
        if response.status != 200:
            self._failures.fail(response, repository, what)
        digest = response.headers.get("Docker-Content-Digest") or (
            reference if manifests.is_digest(reference) else None
        )
        if digest is None or not manifests.is_digest(digest):
            raise RegistryError(
                self.name,
                repository,
                f"{what}: HEAD answered without a valid Docker-Content-Digest ({digest!r}); use get_manifest",
                response.status,
            )
        return ManifestHead(
            digest=digest,
            media_type=content_type(response.headers.get("Content-Type")),
            size=content_length(response.headers.get("Content-Length")),
            rate_limit=parse_rate_limit(response.headers),
        )

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest (a pull on Docker Hub); its bytes are verified against the digest asked for or announced."""
        response = self._manifest("GET", repository, reference)
        what = f"manifest {reference}"
        if response.status != 200:
            self._failures.fail(response, repository, what, streamed=True)
        body = self._read_bounded(response, repository, what)
        digest = _verified_digest(response, self.name, repository, reference, body)
        try:
            media_type = manifests.media_type_of(body, response.headers.get("Content-Type"))
        except InvalidManifest as exc:
            raise RegistryError(self.name, repository, f"{what}: {exc}", response.status) from None
        return Manifest(
            digest=digest,
            media_type=media_type,
            size=len(body),
            rate_limit=parse_rate_limit(response.headers),
            body=body,
        )

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD a blob: True when the registry has it."""
        self._require_digest(repository, digest)
        response = self._send("HEAD", f"/v2/{_path(repository)}/blobs/{digest}", "blob", repository)
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        self._failures.fail(response, repository, f"blob {digest}")

    def fetch_blob(self, repository: str, digest: str) -> int:
        """Stream a blob through a hash, keeping none of it; returns the bytes read. DigestMismatch if corrupt."""
        algorithm = self._require_digest(repository, digest)
        what = f"blob {digest}"
        response = self._send("GET", f"/v2/{_path(repository)}/blobs/{digest}", "blob", repository, stream=True)
        if response.status != 200:
            self._failures.fail(response, repository, what, streamed=True)
        hasher = hashlib.new(algorithm)
        total = 0
        try:
            for chunk in chunks(response):
                hasher.update(chunk)
                total += len(chunk)
        except ReadTimeoutError:
            raise RegistryTimeout(
                self.name, repository, f"{what}: no data for {self._transport.read_timeout}s after {total} bytes"
            ) from None
        except HTTPError as exc:
            raise RegistryUnavailable(
                self.name, repository, f"{what}: the download broke after {total} bytes ({type(exc).__name__})"
            ) from None
        finally:
            response.release_conn()
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(
                self.name, repository, f"{what}: the {total} bytes served hash to {actual}", response.status
            )
        return total

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """Every tag of a repository, following `Link: <...>; rel="next"` pagination."""
        url: str | None = self._url(f"/v2/{_path(repository)}/tags/list")
        if page_size is not None:
            url = f"{url}?{urlencode({'n': page_size})}"
        tags: list[str] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_TAG_PAGES:
                raise RegistryError(self.name, repository, f"tag list pagination loops at {url}")
            seen.add(url)
            request = Request("GET", url, "tags", repository, scope=pull_scope(repository))
            response = self._transport.send(request, self._auth)
            if response.status != 200:
                self._failures.fail(response, repository, "tag list")
            tags.extend(_tag_page(response, self.name, repository))
            link = parse_next_link(response.headers.get("Link"))
            url = urljoin(url, link) if link else None
            if url is not None and origin(url) != origin(self.base_url):
                raise RegistryError(self.name, repository, f"tag list: next page is on another host ({url})")
        return tags

    # --- small pieces ----------------------------------------------------------------------------------------------

    def _send(
        self,
        method: Method,
        path: str,
        kind: Kind,
        repository: str | None,
        *,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send `path` of this registry, authenticated for pull access to `repository`."""
        request = Request(method, self._url(path), kind, repository, pull_scope(repository), headers or {}, stream)
        return self._transport.send(request, self._auth)

    def _manifest(self, method: Method, repository: str, reference: str) -> urllib3.BaseHTTPResponse:
        path = f"/v2/{_path(repository)}/manifests/{quote(reference, safe=':')}"
        accept = {"Accept": manifests.ACCEPT_HEADER}
        return self._send(method, path, "manifest", repository, stream=method == "GET", headers=accept)

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _require_digest(self, repository: str, digest: str) -> str:
        if not manifests.is_digest(digest):
            raise RegistryError(self.name, repository, f"{digest!r} is not a digest (sha256:<64 hex>)")
        return digest.split(":", 1)[0]

    def _read_bounded(self, response: urllib3.BaseHTTPResponse, repository: str, what: str) -> bytes:
        pieces: list[bytes] = []
        size = 0
        try:
            for chunk in chunks(response):
                size += len(chunk)
                if size > MAX_MANIFEST_BYTES:
                    raise RegistryError(
                        self.name, repository, f"{what}: larger than {MAX_MANIFEST_BYTES} bytes", response.status
                    )
                pieces.append(chunk)
        except ReadTimeoutError:
            raise RegistryTimeout(
                self.name, repository, f"{what}: no data for {self._transport.read_timeout}s mid-body"
            ) from None
        except HTTPError as exc:
            raise RegistryUnavailable(self.name, repository, f"{what}: the download broke ({reason(exc)})") from None
        finally:
            response.release_conn()
        return b"".join(pieces)


def _path(repository: str) -> str:
    return quote(repository, safe="/")


def _digest_as(reference: str, body: bytes) -> str:
    algorithm = reference.split(":", 1)[0]
    return f"{algorithm}:" + hashlib.new(algorithm, body).hexdigest()


def _verified_digest(
    response: urllib3.BaseHTTPResponse, registry: str, repository: str, reference: str, body: bytes
) -> str:
    """The manifest's digest: the one asked for or announced, checked against the body, else the body's own."""
    announced = response.headers.get("Docker-Content-Digest")
    expected = reference if manifests.is_digest(reference) else announced
    if not expected or not manifests.is_digest(expected):
        return manifests.sha256_digest(body)
    actual = _digest_as(expected, body)
    if actual != expected:
        source = "asked for" if expected == reference else "announced in Docker-Content-Digest"
        raise DigestMismatch(
            registry,
            repository,
            f"manifest {reference}: the body hashes to {actual}, not the digest {source} ({expected})",
            response.status,
        )
    return expected


def _tag_page(response: urllib3.BaseHTTPResponse, registry: str, repository: str) -> list[str]:
    try:
        document = json.loads(response.data)
        page = document.get("tags") or []
    except (ValueError, AttributeError):
        raise RegistryError(
            registry, repository, "tag list: the answer is not a JSON object", response.status
        ) from None
    return [str(tag) for tag in page]
