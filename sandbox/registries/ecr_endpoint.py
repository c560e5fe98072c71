"""The sandbox's ECR registry endpoint: `<account>.dkr.ecr.<region>.amazonaws.com` on 127.0.0.1.

It speaks ECR's path scheme for pull-through cache (`/v2/<prefix>/<upstream path>/...`) and answers from
`sandbox.registries.ecr_registry`, which holds ECR's index and imports from the upstream as ECR does:

    GET/HEAD /v2/<name>/manifests/<tag>      the tag, synced with the upstream when new or a day old (an import)
    GET/HEAD /v2/<name>/manifests/<digest>   held, or listed by a held index; a first pull by digest is refused
    GET/HEAD /v2/<name>/blobs/<digest>       held: a redirect to the layer's pre-signed URL (ECR's layers are in S3);
                                             not yet: a redirect to the upstream's storage, and ECR imports it
    GET      /v2/<name>/tags/list            the tags ECR holds
    GET      /ecr-layers/<name>/<digest>?... the pre-signed layer URL (S3's stand-in), served from the storage registry

Authentication is ECR's: `Basic AWS:<password>` with the password moto's GetAuthorizationToken hands out.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sandbox.aws import iam
from sandbox.registries.ecr_registry import EcrRegistry, Manifest, NotHeld, Route, Rules
from sandbox.registries.ecr_upstream import ACCESS_DENIED, NOT_FOUND, UpstreamFailure
from sandbox.registries.upstream import ForwardingHandler, LoopbackServer, LoopbackService, error_body, request_kind

ROOT = "ROOT"  # ECR's prefix of a rule that covers every repository
UPSTREAM_AUTH_FAILED = (
    "The authentication to the upstream registry failed. Verify that the credentials in the secret of the pull "
    "through cache rule are valid for the upstream registry."
)


def upstream_path(prefix: str, repository: str, upstream_prefix: str | None) -> str:
    """ECR's mapping: strip the rule's prefix, put the upstream repository prefix (if any, and not ROOT) in front."""
    rest = repository if prefix == ROOT else repository[len(prefix) + 1 :]
    if upstream_prefix and upstream_prefix != ROOT:
        return f"{upstream_prefix.rstrip('/')}/{rest}"
    return rest


class MotoCacheRules:
    """The registry's `Rules`, answered by moto's ECR backend through the hooks of `sandbox.aws.moto_ecr`."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def route(self, repository: str) -> Route | None:
        from sandbox.aws import moto_ecr  # here, not at the top: `import sandbox` must not load moto

        rule = moto_ecr.find_rule(self.account, self.region, repository)
        if rule is None:
            return None
        given = str(rule["ecrRepositoryPrefix"])
        prefix = given if given == ROOT else given.rstrip("/")
        path = upstream_path(prefix, repository, rule.get("upstreamRepositoryPrefix"))
        return Route(prefix, repository, path, str(rule["upstreamRegistryUrl"]))

    def credentials(self, route: Route) -> tuple[str, str] | None:
        from sandbox.aws import moto_ecr

        found: tuple[str, str] | None = moto_ecr.rule_secret(self.account, self.region, route.prefix)
        return found

    def ensure_cache_repository(self, repository: str) -> None:
        from sandbox.aws import moto_ecr

        moto_ecr.ensure_cache_repository(self.account, self.region, repository)

    def configure(self, registry: EcrRegistry) -> None:
        """Point moto's image operations of this account and region at `registry`."""
        from sandbox.aws import moto_ecr

        moto_ecr.install()
        moto_ecr.set_upstream_endpoints(registry.upstream_endpoints)
        moto_ecr.set_registry(self.account, self.region, registry)


# Greedy name: the longest repository name that leaves a valid API suffix (a repository may be called `blobs`).
_API_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<api>manifests/[^/]+|blobs/uploads/[^/]*|blobs/[^/]+|tags/list)$")


class _EcrHandler(ForwardingHandler):
    server: LoopbackServer

    def route(self) -> None:
        endpoint: EcrEndpoint = self.server.owner
        path = self.request_path
        kind = request_kind(path)
        endpoint.count(self.command, kind)
        if path.startswith("/ecr-layers/"):
            self._presigned(endpoint)
            return
        refused = self._before_api(endpoint, path, kind)
        if refused is not None:
            self.send_simple(*refused)
            return
        match = _API_PATH.match(path)
        if match is None:
            self.send_simple(404, error_body("UNSUPPORTED", f"{path} is not supported by this registry"))
            return
        self._api(endpoint, match["name"], match["api"], kind)

    def _before_api(self, endpoint: EcrEndpoint, path: str, kind: str) -> tuple[int, bytes, dict[str, str]] | None:
        """The answer to a request that never reaches a repository: not the API, not authorized, or the ping."""
        if not path.startswith("/v2"):
            return 404, error_body("NOT_FOUND", "not found"), {}
        if not endpoint.authorized(self.headers.get("Authorization")):
            return 401, error_body("UNAUTHORIZED", "Not Authorized"), {"Www-Authenticate": endpoint.challenge}
        if kind == "ping":
            return 200, b"{}", {"Docker-Distribution-Api-Version": "registry/2.0"}
        return None

    def _api(self, endpoint: EcrEndpoint, name: str, api: str, kind: str) -> None:
        """One registry API call on repository `name`: IAM first, then the cache rule, then the operation."""
        # IAM: the pull is the token's principal's (sandbox/aws/iam.py); ECR answers a refused one 403 DENIED.
        denied = iam.registry_denial(self.headers.get("Authorization"), name, kind, self.command)
        if denied is not None:
            self.send_simple(*denied)
            return
        route = endpoint.rules.route(name)
        if route is None:
            message = f"The repository with name '{name}' does not exist in the registry with id '{endpoint.account}'"
            self.send_simple(404, error_body("NAME_UNKNOWN", message))
            return
        if api.startswith("blobs/uploads") or self.command not in ("GET", "HEAD"):
            # AWS does not document pushes into a pull-through cache repository; the sandbox refuses them.
            self.send_simple(405, error_body("UNSUPPORTED", "pull through cache repositories cannot be pushed to"))
            return
        if api == "tags/list":
            self._tags(endpoint, name)
        elif api.startswith("manifests/"):
            self._manifest(endpoint, route, api[len("manifests/") :])
        else:
            self._blob(endpoint, route, api[len("blobs/") :])

    def _manifest(self, endpoint: EcrEndpoint, route: Route, reference: str) -> None:
        registry = endpoint.registry
        try:
            if reference.startswith("sha256:"):
                manifest = registry.digest(route, reference)
            else:
                manifest = registry.tag(route, reference)
        except NotHeld:
            # containers-roadmap #2837: a first pull by digest is not cached; ECR answers it as an unknown manifest.
            self.send_simple(404, error_body("MANIFEST_UNKNOWN", "Requested image not found"))
            return
        except UpstreamFailure as failure:
            if failure.code == NOT_FOUND:
                self.send_simple(404, error_body("MANIFEST_UNKNOWN", "Requested image not found"))
            elif failure.code == ACCESS_DENIED:
                # What docker printed for a refused upstream login (containers-roadmap #2354): "denied: The
                # authentication to the upstream registry failed. Verify that the credenti[als ...]".
                self.send_simple(403, error_body("DENIED", UPSTREAM_AUTH_FAILED))
            else:
                # AWS does not say what the registry endpoint answers for other upstream failures; the sandbox hides the
                # reason as a cache would, so a client must ask the control plane (BatchGetImage) why.
                self.send_simple(500, error_body("UNKNOWN", "failed to fetch the image from the upstream registry"))
            return
        repository = registry.repository(route.repository)
        if repository is not None and manifest.digest in repository.archived:
            # AWS: an archived image must be restored before it can be pulled (the error it answers is not documented).
            self.send_simple(403, error_body("DENIED", "The image is archived; restore it to pull it."))
            return
        if self.command == "GET":
            registry.record_pull(route.repository, manifest.digest)
        self._send_manifest(manifest)

    def _send_manifest(self, manifest: Manifest) -> None:
        headers = {"Content-Type": manifest.media_type, "Docker-Content-Digest": manifest.digest}
        self.send_simple(200, manifest.body, headers)

    def _blob(self, endpoint: EcrEndpoint, route: Route, digest: str) -> None:
        try:
            location = endpoint.registry.request_layer(route, digest, pulled=True)
        except NotHeld:
            self.send_simple(404, error_body("BLOB_UNKNOWN", "blob unknown to registry"))
            return
        except UpstreamFailure:
            self.send_simple(500, error_body("UNKNOWN", "failed to fetch the layer from the upstream registry"))
            return
        # ECR answers a blob request with a redirect: to its S3 layer bucket when it holds the layer, else (during a
        # first pull) to the upstream's own storage (containers-roadmap #939, #2304).
        self.send_simple(307, b"", {"Location": location, "Content-Type": "text/plain"})

    def _tags(self, endpoint: EcrEndpoint, name: str) -> None:
        repository = endpoint.registry.repository(name)
        tags = sorted(repository.tags) if repository is not None else []
        self.send_simple(200, json.dumps({"name": name, "tags": tags}).encode())

    def _presigned(self, endpoint: EcrEndpoint) -> None:
        target = endpoint.registry.signed_layer(self.path)
        storage = endpoint.registry.storage
        if target is None or storage is None or self.command not in ("GET", "HEAD"):
            self.send_simple(403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
            return
        repository, digest = target
        self.forward(("127.0.0.1", storage.port), f"/v2/{repository}/blobs/{digest}")


class EcrEndpoint:
    """The ECR registry endpoint: ECR's Basic auth and path scheme in front of the registry's index and storage."""

    def __init__(
        self,
        workdir: Path,
        *,
        account: str,
        region: str,
        rules: Rules,
        on_spawn: Callable[[int], None] | None = None,
    ) -> None:
        self.workdir = workdir
        self.account = account
        self.region = region
        self.rules = rules
        self.host = f"{account}.dkr.ecr.{region}.amazonaws.com"
        self.challenge = f'Basic realm="https://{self.host}/",service="ecr.amazonaws.com"'
        # moto's GetAuthorizationToken hands out base64("AWS:<account>-auth-token") (moto/ecr/responses.py).
        self.password = f"{account}-auth-token"
        self.log_path = workdir / "ecr-endpoint.log"
        self.counters: Counter[tuple[str, str]] = Counter()
        self.registry = EcrRegistry(
            workdir / "registry", account=account, region=region, rules=rules, on_spawn=on_spawn
        )
        self._lock = threading.Lock()
        self._service = LoopbackService(_EcrHandler, self)

    @property
    def url(self) -> str:
        return self._service.url

    def start(self) -> None:
        """Listen on a free loopback port and start the storage behind it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.registry.start()
        self._service.start()
        self.registry.public_url = self.url

    def stop(self) -> None:
        """Stop listening and stop the storage."""
        self._service.stop()
        self.registry.stop()

    def count(self, method: str, kind: str) -> None:
        """Record one request in `counters`."""
        with self._lock:
            self.counters[(method, kind)] += 1

    def authorized(self, header: str | None) -> bool:
        """True for `Basic AWS:<password>` with the password moto's GetAuthorizationToken gives."""
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        known = hmac.compare_digest(password.encode(), self.password.encode())
        # Tokens GetAuthorizationToken issued to a function's principal are valid too (sandbox/aws/iam.py).
        return user == "AWS" and (known or iam.principal_of_token(password) is not None)
