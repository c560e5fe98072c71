"""ECR's own client to an upstream registry: how the sandbox's ECR fetches what a pull-through cache rule imports.

It is deliberately not Pullthrough's `RegistryClient`: the sandbox stands in for AWS, and a bug in the library's
client must not be able to hide itself by also being the cache's. It speaks just what an import needs: the
`/v2/` challenge, a Bearer token from the realm with the rule's credentials (or anonymously), HEAD and GET of a
manifest, and the location of a blob (the upstream's redirect to its storage, as Docker Hub answers a blob GET).

An upstream's refusal becomes an `UpstreamFailure` carrying the failure code ECR reports for it. botocore's ECR
model names the codes (`ImageFailureCode`: UpstreamAccessDenied, UpstreamTooManyRequests, UpstreamUnavailable,
ImageNotFound) but not which HTTP answers map to them; the sandbox maps 401 and 403 to UpstreamAccessDenied, 429 to
UpstreamTooManyRequests, 404 to ImageNotFound, and 5xx, timeouts and refused connections to UpstreamUnavailable.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

from sandbox.registries.upstream import NoDelayHTTPConnection

# What ECR asks an upstream for: every manifest kind the OCI and Docker specs define (the distribution spec's
# content negotiation), so an index comes back as an index.
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
TIMEOUT = 10.0
TOKEN_LIFETIME = 240.0  # Docker Hub's tokens live 300 s; renew a minute early

ACCESS_DENIED = "UpstreamAccessDenied"
TOO_MANY_REQUESTS = "UpstreamTooManyRequests"
UNAVAILABLE = "UpstreamUnavailable"
NOT_FOUND = "ImageNotFound"


class UpstreamFailure(Exception):
    """The upstream refused or could not answer; `code` is the ECR failure code that stands for it."""

    def __init__(self, code: str, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


def failure_for(status: int, what: str) -> UpstreamFailure:
    """The failure an HTTP status of the upstream stands for (see the module docstring)."""
    if status in (401, 403):
        return UpstreamFailure(ACCESS_DENIED, f"The upstream registry denied access to {what} (HTTP {status}).", status)
    if status == 429:
        return UpstreamFailure(TOO_MANY_REQUESTS, f"The upstream registry throttled the request for {what}.", status)
    if status == 404:
        return UpstreamFailure(NOT_FOUND, f"The upstream registry does not have {what}.", status)
    return UpstreamFailure(UNAVAILABLE, f"The upstream registry could not serve {what} (HTTP {status}).", status)


@dataclass(frozen=True)
class Fetched:
    """A manifest as the upstream served it."""

    digest: str
    media_type: str
    body: bytes


@dataclass(frozen=True)
class Head:
    digest: str
    media_type: str
    size: int


class UpstreamClient:
    """One upstream registry, reached with one rule's credentials (None: anonymously)."""

    def __init__(self, base_url: str, credentials: tuple[str, str] | None, *, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.credentials = credentials
        self.timeout = timeout
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    # --- operations ---------------------------------------------------------------------------------------------

    def head_manifest(self, repository: str, reference: str) -> Head:
        """What a tag or digest points at; a HEAD, which Docker Hub does not count as a pull."""
        status, headers, _ = self._call("HEAD", repository, f"/v2/{repository}/manifests/{reference}")
        if status != 200:
            raise failure_for(status, f"{repository}:{reference}")
        return Head(
            digest=headers.get("docker-content-digest", ""),
            media_type=headers.get("content-type", "").split(";")[0],
            size=int(headers.get("content-length") or 0),
        )

    def get_manifest(self, repository: str, reference: str) -> Fetched:
        """The manifest's bytes (a pull on Docker Hub), checked against its digest."""
        status, headers, body = self._call("GET", repository, f"/v2/{repository}/manifests/{reference}")
        if status != 200:
            raise failure_for(status, f"{repository}:{reference}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        # A registry checks what it stores against the digest it was asked for or told (Docker-Content-Digest, the
        # distribution spec); AWS does not say which failure code ECR gives corrupt content: the sandbox says
        # UpstreamUnavailable, as for any upstream that cannot serve the image.
        expected = reference if reference.startswith("sha256:") else headers.get("docker-content-digest", digest)
        if digest != expected:
            what = f"{repository}:{reference}"
            raise UpstreamFailure(
                UNAVAILABLE, f"The upstream served {what} with content that does not match its digest."
            )
        return Fetched(digest, headers.get("content-type", "").split(";")[0], body)

    def blob_location(self, repository: str, digest: str) -> str:
        """Where the upstream serves a blob: the URL it redirects a GET to (its storage), or its own blob URL."""
        status, headers, _ = self._call("GET", repository, f"/v2/{repository}/blobs/{digest}", follow=False)
        if status in (301, 302, 303, 307, 308) and headers.get("location"):
            return urljoin(f"http://{self.host}:{self.port}/", headers["location"])
        if status == 200:
            return f"http://{self.host}:{self.port}/v2/{repository}/blobs/{digest}"
        raise failure_for(status, f"layer {digest} of {repository}")

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes (following the upstream's redirect), checked against its digest."""
        status, headers, body = self._call("GET", repository, f"/v2/{repository}/blobs/{digest}", follow=False)
        if status in (301, 302, 303, 307, 308) and headers.get("location"):
            status, body = _fetch(urljoin(f"http://{self.host}:{self.port}/", headers["location"]), self.timeout)
        if status != 200:
            raise failure_for(status, f"layer {digest} of {repository}")
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise UpstreamFailure(UNAVAILABLE, f"The upstream served layer {digest} of {repository} corrupted.")
        return body

    def authenticate(self) -> None:
        """Prove the credentials (or anonymous access) against the token realm, as ValidatePullThroughCacheRule."""
        self._token(None)

    # --- transport ----------------------------------------------------------------------------------------------

    def _call(
        self, method: str, repository: str, path: str, *, follow: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        scope = f"repository:{repository}:pull"
        for attempt in (0, 1):
            token = self._token(scope)
            headers = {"Accept": ACCEPT}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            status, answer, body = self._request(method, path, headers)
            if status == 401 and attempt == 0:
                self._forget(scope)  # an expired token: ask once more
                continue
            return status, answer, body
        raise AssertionError("unreachable")

    def _token(self, scope: str | None) -> str | None:
        key = scope or ""
        with self._lock:
            kept = self._tokens.get(key)
        if kept is not None and kept[1] > time.monotonic():
            return kept[0]
        status, headers, _ = self._request("GET", "/v2/", {})
        if status == 200:
            return None  # no authentication at all
        challenge = headers.get("www-authenticate", "")
        if status != 401 or not challenge.lower().startswith("bearer"):
            raise failure_for(status if status != 401 else 403, "the registry's /v2/ endpoint")
        params = _challenge_params(challenge)
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        headers = {}
        if self.credentials is not None:
            user, password = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        realm = params.get("realm", "")
        status, body = _fetch(f"{realm}?{urlencode(query)}", self.timeout, headers)
        if status != 200:
            raise failure_for(status, "a token from the registry's token service")
        try:
            document = json.loads(body)
            token = str(document.get("token") or document.get("access_token"))
        except (ValueError, AttributeError):
            raise UpstreamFailure(UNAVAILABLE, "The upstream's token service answered something else.") from None
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + TOKEN_LIFETIME)
        return token

    def _forget(self, scope: str) -> None:
        with self._lock:
            self._tokens.pop(scope, None)

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = NoDelayHTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise UpstreamFailure(
                UNAVAILABLE, f"The upstream registry is unreachable ({type(exc).__name__})."
            ) from None
        finally:
            conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def _fetch(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = NoDelayHTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamFailure(UNAVAILABLE, f"The upstream registry is unreachable ({type(exc).__name__}).") from None
    finally:
        conn.close()


def _challenge_params(header: str) -> dict[str, str]:
    """`Bearer realm="...",service="..."` -> {"realm": ..., "service": ...} (values without commas, as the front's)."""
    _, _, rest = header.partition(" ")
    params = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        params[name.lower()] = value.strip('"')
    return params
