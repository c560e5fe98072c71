"""Real registries and HTTP stubs for the registry client's integration tests (the fixtures are in conftest.py).

`docker-registry` processes (Debian's distribution 2.8.2) on free loopback ports, one per auth mode: none,
htpasswd Basic, and `auth: token` with a Bearer token realm served here (ES256 JWTs whose certificate rides in the
`x5c` header, as distribution verifies them). Stubs stand in where a real registry cannot misbehave on demand:
429s, a server that never answers, redirects to another host, Link pagination (2.8.2 ignores `?n=`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

BASIC_USER, BASIC_PASSWORD = "basic-user", "basic-Pa55-word"
TOKEN_USER, TOKEN_PASSWORD = "token-user", "dckr_pat_not-a-real-token"
TOKEN_SERVICE = "pullthrough-test-registry"
READY_SECONDS = 10.0

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers any HTTP status, the process dies, or the deadline passes."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode} before answering")
        try:
            _http.request("GET", url, timeout=0.5)
            return
        except urllib3.exceptions.HTTPError:
            time.sleep(0.02)  # poll interval, not synchronisation: the loop waits for a real answer
    raise RuntimeError(f"{url} did not answer within {READY_SECONDS}s")


# --- image building and pushing over plain HTTP --------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


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


def _config(root: Path, port: int, auth: str) -> str:
    return f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
{auth}"""


@contextmanager
def running_registry(binary: str, workdir: Path, auth: str) -> Iterator[tuple[str, Path]]:
    """Start one registry on a free port and yield (base URL, storage root); always stop it."""
    root = workdir / "storage"
    for _ in range(3):  # a free port can be taken between the probe and the bind; try another
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(_config(root, port, auth))
        log = (workdir / "registry.log").open("ab")
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log, cwd=workdir)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_answers(f"{url}/v2/", process)
            except RuntimeError:
                if process.poll() is not None:
                    continue
                raise
            yield url, root
            return
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            log.close()
    raise RuntimeError(f"docker-registry would not start; see {workdir / 'registry.log'}")


# --- a Bearer token realm, as Docker Hub's auth.docker.io behaves ---------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Signs distribution-compatible ES256 JWTs with a self-signed certificate that is its own root bundle."""

    def __init__(self, workdir: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pullthrough test token issuer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = workdir / "root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.issuer = "pullthrough-test-issuer"

    def mint(self, subject: str, access: Sequence[Mapping[str, object]], lifetime: int = 300) -> str:
        header = {
            "alg": "ES256",
            "typ": "JWT",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + lifetime,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


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
            access = []
            for scope in query.get("scope", "").split():
                kind, _, rest = scope.partition(":")
                repository, _, actions = rest.rpartition(":")
                if kind == "repository" and (user is not None or repository.startswith("public/")):
                    access.append({"type": kind, "name": repository, "actions": actions.split(",")})
            token = issuer.mint(user or "", access, lifetime=realm.expires_in + 60)
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
