"""The sandbox's ECR private registry, as far as pull-through cache goes: what it holds and how it imports.

Both of ECR's faces answer from here: the registry endpoint (`sandbox.registries.ecr_endpoint`, what docker and skopeo
pull from) and the control plane (`sandbox.aws.moto_ecr_images`: DescribeImages, BatchGetImage,
BatchCheckLayerAvailability, GetDownloadUrlForLayer). What ECR does, with the source of each behaviour:

- A pull of a tag through a rule's prefix syncs the tag with the upstream: ECR fetches the manifest, and for an index
  "the manifest list and each image referenced in the manifest list are pulled to the Amazon ECR repository" (the
  ECR guide, "Sync an upstream registry": every child, whatever platform the client wanted, attestation manifests
  included). The children are fetched in the background; one asked for before it arrived is fetched at once.
- A cached tag is re-checked upstream at most once per 24 hours (the ECR guide; it cannot be forced sooner:
  containers-roadmap #2254). The re-check is a HEAD; a moved tag is fetched again. When the re-check cannot reach the
  upstream, the cached copy is served (AWS does not say; its announcement promises the cache's availability).
- Layers: GetDownloadUrlForLayer "is called once per image layer that is not already cached" (botocore's model), and
  first-pull blob requests are redirected to the upstream's storage while ECR imports in the background
  (containers-roadmap #939, #2304). AWS does not say whether pulling a manifest alone imports its layers; the sandbox
  takes the more demanding reading: a layer is imported only once something asks ECR for it (a blob GET through the
  registry endpoint, or GetDownloadUrlForLayer).
- A first pull by digest of an image ECR does not hold is refused (containers-roadmap #2837); a digest the held index
  lists is not a first pull.
- Each sync with the upstream sends an "ECR Pull Through Cache Action" event (the ECR guide's EventBridge page).
- `lastRecordedPullTime`: "Amazon ECR refreshes the last image pull timestamp at least once every 24 hours" (botocore's
  ImageDetail): the sandbox refreshes it only when the recorded time is a day old, the coarsest reading.
- Archived images (ECR's archive storage class: ImageStatus ARCHIVED, LayerAvailability ARCHIVED in botocore's
  model) cannot be pulled until restored.

Layer and config bytes live in a plain CNCF distribution registry (the real part that serves them); manifests,
tags, import states and times are ECR's own index, kept here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sandbox.registries.distribution import RegistryProcess, start_registry
from sandbox.registries.ecr_behaviour import Clock, Events, Imports
from sandbox.registries.ecr_layers import ARCHIVED, AVAILABLE, LAYER_URL_SECONDS, LayerImports, NotHeld
from sandbox.registries.ecr_storage_classes import StorageClasses
from sandbox.registries.ecr_upstream import NOT_FOUND, UNAVAILABLE, UpstreamClient, UpstreamFailure
from sandbox.registries.signed_urls import UrlSigner

RECHECK_AFTER = timedelta(hours=24)
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
IMPORT_THREADS = 8


@dataclass(frozen=True)
class Route:
    """Where an ECR repository's pulls go: its rule and the repository's path upstream."""

    prefix: str  # the rule's prefix without a trailing `/`, or ROOT
    repository: str  # the ECR repository name, prefix included
    upstream_path: str  # the repository's path on the upstream registry
    upstream_url: str  # the rule's upstreamRegistryUrl (a host)


class Rules(Protocol):
    """What the registry needs to know about pull-through cache rules (moto answers it in the sandbox)."""

    def route(self, repository: str) -> Route | None: ...

    def credentials(self, route: Route) -> tuple[str, str] | None: ...

    def ensure_cache_repository(self, repository: str) -> None: ...


@dataclass
class Manifest:
    """A manifest ECR holds: its bytes and what it refers to."""

    digest: str
    media_type: str
    body: bytes
    imported_at: datetime
    children: tuple[str, ...] = ()  # an index's manifests
    blobs: dict[str, tuple[int, str]] = field(default_factory=dict)  # an image's config and layers: size, media type

    @property
    def is_index(self) -> bool:
        return bool(self.children) or self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.blobs.values())


@dataclass
class Repository:
    """One cache repository's part of ECR's index."""

    route: Route
    tags: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # tag -> (digest, last checked upstream)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    layers: dict[str, str] = field(default_factory=dict)  # digest -> AVAILABLE | UNAVAILABLE (importing)
    pulled_at: dict[str, datetime] = field(default_factory=dict)  # image digest -> lastRecordedPullTime
    archived: set[str] = field(default_factory=set)  # image digests in the archive storage class
    lock: threading.RLock = field(default_factory=threading.RLock)

    def referenced(self, digest: str) -> Manifest | None:
        """A held image manifest that lists the blob, if any."""
        return next((m for m in self.manifests.values() if digest in m.blobs), None)

    def listed(self, digest: str) -> bool:
        """Whether a held index lists the manifest."""
        return any(digest in m.children for m in self.manifests.values())

    def layer_availability(self, digest: str) -> str | None:
        """AVAILABLE, UNAVAILABLE (an import under way) or ARCHIVED; None when ECR has nothing of it."""
        state = self.layers.get(digest)
        if state == AVAILABLE and any(digest in self.manifests[d].blobs for d in self.archived if d in self.manifests):
            return ARCHIVED
        return state


class EcrRegistry(LayerImports, StorageClasses):
    """One account and region's private registry: cache repositories, their imports, and the storage behind them.

    Its layers' imports and pre-signed URLs are sandbox/registries/ecr_layers.py's, pull times and storage classes
    sandbox/registries/ecr_storage_classes.py's; the sources of what ECR does are in this module's docstring.
    """

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
        self.clock = Clock()
        self.imports = Imports()
        self.events = Events(account, region, self.clock)
        self.upstream_endpoints: dict[str, str] = {}  # upstream host -> local base URL
        # Clients for rules whose upstream is another ECR registry (sandbox/registries/ecr_cross_account.py).
        self.ecr_upstream: Callable[[Route], UpstreamClient | None] | None = None
        self.public_url = ""  # the registry endpoint's URL, for pre-signed layer URLs (set by the endpoint)
        self.storage: RegistryProcess | None = None
        self._on_spawn = on_spawn
        self._repositories: dict[str, Repository] = {}
        self._clients: dict[tuple[str, str], UpstreamClient] = {}
        self._inflight: dict[tuple[str, str], Future[None]] = {}
        self._lock = threading.RLock()  # _background submits (and so records the task) while holding it
        self._pool = ThreadPoolExecutor(max_workers=IMPORT_THREADS, thread_name_prefix="ecr-import")
        self._signer = UrlSigner(LAYER_URL_SECONDS, "X-Amz-Expires", "X-Amz-Signature")
        self._running: set[Future[None]] = set()  # every background task not yet done (for settle())
        self.imports.attach(self._submit)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the storage registry (a plain distribution registry; pulls never reach it but through here)."""
        storage = self.workdir / "storage"
        self.storage = start_registry(
            "ecr storage",
            self.workdir,
            {"storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}}},
            on_spawn=self._on_spawn,
        )

    def stop(self) -> None:
        self.imports.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.storage is not None:
            self.storage.stop()
            self.storage = None

    # --- repositories -------------------------------------------------------------------------------------------

    def repository(self, name: str) -> Repository | None:
        """ECR's index of a cache repository, if anything was ever pulled into it."""
        with self._lock:
            return self._repositories.get(name)

    def _repository(self, route: Route) -> Repository:
        with self._lock:
            found = self._repositories.get(route.repository)
            if found is None:
                found = self._repositories[route.repository] = Repository(route)
            return found

    # --- manifests ----------------------------------------------------------------------------------------------

    def tag(self, route: Route, tag: str) -> Manifest:
        """The manifest a tag points at, synced with the upstream when new or due (raises UpstreamFailure)."""
        repository = self._repository(route)
        # The first pull through a rule creates the repository from its creation template (kaniko #2994 and the ECR
        # guide); AWS does not say whether before or after the upstream answers: the sandbox creates it first, so a
        # failed first pull leaves an empty repository that BatchGetImage can be asked about.
        self.rules.ensure_cache_repository(route.repository)
        with repository.lock:
            now = self.clock.now()
            held = repository.tags.get(tag)
            if held is not None and now - held[1] < RECHECK_AFTER:
                return repository.manifests[held[0]]
            client = self._client(route)
            try:
                head = client.head_manifest(route.upstream_path, tag)
                if held is not None and head.digest == held[0]:
                    repository.tags[tag] = (held[0], now)
                    return repository.manifests[held[0]]
                fetched = client.get_manifest(route.upstream_path, tag)
            except UpstreamFailure as failure:
                self._sent(route, tag, held[0] if held else None, failure)
                if held is not None:
                    return repository.manifests[held[0]]
                raise
            manifest = self._keep(repository, fetched.digest, fetched.media_type, fetched.body)
            repository.tags[tag] = (manifest.digest, now)
        self._sent(route, tag, manifest.digest, None)
        for child in manifest.children:
            self._background(route, child, lambda c=child: self._child(route, c))  # type: ignore[misc]
        return manifest

    def digest(self, route: Route, digest: str) -> Manifest:
        """A manifest by digest: held, or listed by a held index (fetched now); else NotHeld (first pull by digest)."""
        repository = self._repository(route)
        with repository.lock:
            if digest in repository.manifests:
                return repository.manifests[digest]
            if not repository.listed(digest):
                raise NotHeld(digest)
        self._child(route, digest)
        return repository.manifests[digest]

    def hold(self, route: Route, tag: str, body: bytes, media_type: str) -> Manifest:
        """Record a tag as a finished import leaves it (its manifest, and every layer AVAILABLE), without the upstream:
        a large cache seeded for the planner (bench/scale.py), which reads ECR's control plane only. No bytes are
        stored: the registry endpoint cannot serve these layers."""
        self.rules.ensure_cache_repository(route.repository)
        repository = self._repository(route)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with repository.lock:
            manifest = self._keep(repository, digest, media_type, body)
            repository.tags[tag] = (digest, self.clock.now())
            repository.layers.update(dict.fromkeys(manifest.blobs, AVAILABLE))
        return manifest

    def _child(self, route: Route, digest: str) -> None:
        repository = self._repository(route)
        with repository.lock:
            if digest in repository.manifests:
                return
            fetched = self._client(route).get_manifest(route.upstream_path, digest)
            self._keep(repository, fetched.digest, fetched.media_type, fetched.body)

    def _keep(self, repository: Repository, digest: str, media_type: str, body: bytes) -> Manifest:
        document = _json(body)
        children = tuple(str(m.get("digest")) for m in document.get("manifests") or [] if isinstance(m, dict))
        parts = [document.get("config"), *(document.get("layers") or [])]
        blobs = {
            str(p["digest"]): (int(p.get("size", 0)), str(p.get("mediaType", "")))
            for p in parts
            if isinstance(p, dict) and "digest" in p
        }
        manifest = Manifest(digest, media_type or _media_type(document), body, self.clock.now(), children, blobs)
        repository.manifests[digest] = manifest
        return manifest

    def _sent(self, route: Route, tag: str | None, digest: str | None, failure: UpstreamFailure | None) -> None:
        self.events.pull_through_action(
            prefix=route.prefix,
            repository=route.repository,
            upstream_url=route.upstream_url,
            tag=tag,
            digest=digest,
            failure=(failure.code, failure.reason) if failure else None,
        )

    # --- plumbing -----------------------------------------------------------------------------------------------

    def _client(self, route: Route) -> UpstreamClient:
        cross = self.ecr_upstream(route) if self.ecr_upstream is not None else None
        if cross is not None:
            return cross  # an ECR to ECR rule: ECR reads the other registry as the rule's role
        base_url = self.upstream_endpoints.get(route.upstream_url)
        if base_url is None:
            raise UpstreamFailure(UNAVAILABLE, f"The upstream registry {route.upstream_url} is unreachable.")
        credentials = self.rules.credentials(route)
        # The secret's AWSCURRENT value is read on every use: a rotation takes effect on the next pull.
        fingerprint = hashlib.sha256(repr((base_url, credentials)).encode()).hexdigest()
        with self._lock:
            client = self._clients.get((route.prefix, fingerprint))
            if client is None:
                client = self._clients[(route.prefix, fingerprint)] = UpstreamClient(base_url, credentials)
        return client

    def _background(self, route: Route, digest: str, task: Callable[[], None]) -> None:
        key = (route.repository, digest)
        with self._lock:
            running = self._inflight.get(key)
            if running is not None and not running.done():
                return

            def done(_: Future[None]) -> None:
                with self._lock:
                    if self._inflight.get(key) is future:
                        del self._inflight[key]

            future = self._submit(task)
            self._inflight[key] = future
        future.add_done_callback(done)

    def _submit(self, task: Callable[[], None]) -> Future[None]:
        future = self._pool.submit(_quietly, task)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(lambda f: self._forget(f))
        return future

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(future)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no background import is running (parked ones do not count): tests read a settled state."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = [f for f in self._running if not f.done()]
            if not running:
                return
            for future in running:
                future.result(max(deadline - time.monotonic(), 0.0))


def _quietly(task: Callable[[], None]) -> None:
    with contextlib.suppress(UpstreamFailure):  # a failed child fetch: ECR fetches it again when it is asked for
        task()


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _media_type(document: dict[str, Any]) -> str:
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    return INDEX_TYPES[0] if "manifests" in document else "application/vnd.oci.image.manifest.v1+json"


__all__ = [
    "ARCHIVED",
    "AVAILABLE",
    "NOT_FOUND",
    "EcrRegistry",
    "Manifest",
    "NotHeld",
    "Repository",
    "Route",
    "Rules",
]
