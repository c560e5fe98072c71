"""Real registries and HTTP stubs for the registry client's integration tests (the fixtures are in conftest.py).

`docker-registry` processes (Debian's distribution 2.8.2, started by sandbox/registries/distribution.py) on free
loopback ports, one per auth mode: none, htpasswd Basic, and `auth: token` with a Bearer token realm served here (the
sandbox's TokenIssuer signs its ES256 JWTs, sandbox/registries/tokens.py). Stubs stand in where a real registry cannot
misbehave on demand: 429s, a server that never answers, redirects to another host, Link pagination (2.8.2 ignores
`?n=`). The test pushes stay here: they send each request through `authorize` and keep the manifest bytes and the
storage root for tests that read or corrupt them, which sandbox/registries/images.py does not.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3

from sandbox.registries.distribution import free_port, start_registry
from sandbox.registries.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
)
from sandbox.registries.images import sha256_digest as sha256
from sandbox.registries.tokens import TokenIssuer, parse_scopes

__all__ = ["TokenIssuer", "free_port", "sha256"]

BASIC_USER, BASIC_PASSWORD = "basic-user", "basic-Pa55-word"
TOKEN_USER, TOKEN_PASSWORD = "token-user", "dckr_pat_not-a-real-token"
TOKEN_ISSUER, TOKEN_SERVICE = "pullthrough-test-issuer", "pullthrough-test-registry"
READY_SECONDS = 10.0

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


# --- image building and pushing over plain HTTP --------------------------------------------------------------------


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str
    media_type: str
    body: bytes
    platforms: dict[str, str]  # platform -> its manifest digest
    blobs: dict[str, list[str]]  # manifest digest -> config and layer digests


@dataclass
class LocalRegistry:
    """A running registry and a way to push into it."""

    url: str
    root: Path  # the filesystem storage, for tests that corrupt content on purpose
    authorize: Callable[[str], dict[str, str]] = field(default=lambda _repo: {})

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        headers = self.authorize(repository)
        started = _http.request("POST", f"{self.url}/v2/{repository}/blobs/uploads/", headers=headers)
        assert started.status == 202, (started.status, started.data)
        location = started.headers["Location"]
        location = location if location.startswith("http") else self.url + location
        separator = "&" if "?" in location else "?"
        done = _http.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            body=data,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert done.status == 201, (done.status, done.data)
        return digest

    def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        response = _http.request(
            "PUT",
            f"{self.url}/v2/{repository}/manifests/{reference}",
            body=body,
            headers={**self.authorize(repository), "Content-Type": media_type},
        )
        assert response.status == 201, (response.status, response.data)
        return str(response.headers["Docker-Content-Digest"])

    def push_image(
        self,
        repository: str,
        tag: str,
        platforms: tuple[str, ...] = ("linux/amd64",),
        layer_sizes: tuple[int, ...] = (1024,),
        docker: bool = False,
    ) -> PushedImage:
        """Push a generated image: one manifest per platform, and an index over them when there are several."""
        manifest_type, index_type = (DOCKER_MANIFEST, DOCKER_LIST) if docker else (OCI_MANIFEST, OCI_INDEX)
        if docker:
            config_type, layer_type = DOCKER_CONFIG, DOCKER_LAYER
        else:
            config_type, layer_type = OCI_CONFIG, OCI_LAYER
        by_platform: dict[str, str] = {}
        blobs: dict[str, list[str]] = {}
        entries = []
        body = b""
        for platform in platforms:
            os_name, arch, *variant = platform.split("/")
            layers = [os.urandom(size) for size in layer_sizes]
            config = json.dumps(
                {
                    "architecture": arch,
                    "os": os_name,
                    **({"variant": variant[0]} if variant else {}),
                    "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
                },
            ).encode()
            config_digest = self.push_blob(repository, config)
            layer_digests = [self.push_blob(repository, layer) for layer in layers]
            body = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": manifest_type,
                    "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
                    "layers": [
                        {"mediaType": layer_type, "digest": d, "size": len(layer)}
                        for d, layer in zip(layer_digests, layers, strict=True)
                    ],
                },
            ).encode()
            reference = tag if len(platforms) == 1 else sha256(body)
            digest = self.push_manifest(repository, reference, body, manifest_type)
            assert digest == sha256(body)
            by_platform[platform] = digest
            blobs[digest] = [config_digest, *layer_digests]
            platform_doc = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
            entries.append({"mediaType": manifest_type, "digest": digest, "size": len(body), "platform": platform_doc})
        if len(platforms) == 1:
            return PushedImage(repository, tag, sha256(body), manifest_type, body, by_platform, blobs)
        index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode()
        digest = self.push_manifest(repository, tag, index, index_type)
        return PushedImage(repository, tag, digest, index_type, index, by_platform, blobs)

    def blob_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob's bytes."""
        hex_digest = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


# --- docker-registry processes -------------------------------------------------------------------------------------


@contextmanager
def running_registry(workdir: Path, auth: dict[str, Any]) -> Iterator[tuple[str, Path]]:
    """Start one registry (sandbox/registries/distribution.py) on a free port and yield (base URL, storage root);
    always stop it.

    `auth` is the config's `auth` section ({} for none).
    """
    root = workdir / "storage"
    config: dict[str, Any] = {
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}},
        **({"auth": auth} if auth else {}),
    }
    registry = start_registry(workdir.name, workdir, config, timeout=READY_SECONDS)
    try:
        yield registry.url, root
    finally:
        registry.stop()


# --- a Bearer token realm, as Docker Hub's auth.docker.io behaves ---------------------------------------------------


@dataclass
class TokenRealm:
    """The realm's state that tests look at or change."""

    url: str
    users: dict[str, str]
    requests: list[dict[str, object]]  # one per token request: query and whether Basic credentials came
    expires_in: int = 300
    field_name: str = "token"  # Docker Hub sends both; some realms only "access_token"


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def stop(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def serve_token_realm(issuer: TokenIssuer, realm: TokenRealm) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve Docker Hub's token protocol: Basic credentials or none, `scope` params, a JWT per request."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            header = self.headers.get("Authorization", "")
            realm.requests.append({"query": query, "basic": header.startswith("Basic ")})
            user = None
            if header.startswith("Basic "):
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if realm.users.get(name) != password or not password:
                    self._answer(401, {"details": "incorrect username or password"})
                    return
                user = name
            access = [
                entry
                for entry in parse_scopes([query.get("scope", "")])
                if entry["type"] == "repository" and (user is not None or entry["name"].startswith("public/"))
            ]
            token = issuer.sign(user or "", access, ttl=realm.expires_in + 60)
            self._answer(200, {realm.field_name: token, "expires_in": realm.expires_in})

        def _answer(self, status: int, document: dict[str, object]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server, thread = serve(Handler)
    realm.url = f"http://127.0.0.1:{server.server_address[1]}/token"
    return server, thread


# --- programmable stubs --------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


Reply = tuple[int, dict[str, str], bytes]
# A reply header the stub consumes: send only this many body bytes, then hang until the test ends.
STALL_AFTER = "X-Stub-Stall-After"


@dataclass
class Stub:
    """An HTTP server whose answers a test scripts: `respond(method, path, headers) -> (status, headers, body)`."""

    url: str
    seen: list[Seen]
    respond: Callable[[str, str, dict[str, str]], Reply]


def serve_stub(stub: Stub, released: threading.Event) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve `stub`: record each request, answer what its `respond` says; a stalled body waits for `released`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            stub.seen.append(Seen(self.command, self.path, headers))
            status, reply_headers, body = stub.respond(self.command, self.path, headers)
            stall_after = reply_headers.pop(STALL_AFTER, None)
            self.send_response(status)
            for key, value in reply_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if stall_after is None:
                self.wfile.write(body)
                return
            # A registry that hangs mid-body: send part of it, then nothing until the test is over.
            self.wfile.write(body[: int(stall_after)])
            self.wfile.flush()
            released.wait(timeout=30)

        do_GET = do_HEAD = _handle

        def log_message(self, *_: object) -> None:
            pass

    server, thread = serve(Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server, thread
