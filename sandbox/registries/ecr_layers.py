"""ECR's layers in the sandbox's registry: where a client gets one, its import from the upstream, pre-signed URLs.

Part of `sandbox.registries.ecr_registry.EcrRegistry` (a base class of it), separate so the registry class stays
readable. What ECR does, with its sources (sandbox/registries/ecr_registry.py's docstring has them all):
GetDownloadUrlForLayer "is called once per image layer that is not already cached" (botocore's model), and first-pull
blob requests are redirected to the upstream's storage while ECR imports in the background (containers-roadmap #939,
#2304); a layer is imported only once something asks ECR for it (the sandbox's reading: AWS does not say). Archived
layers (LayerAvailability ARCHIVED in botocore's model) are held but cannot be pulled until restored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sandbox.registries.ecr_behaviour import ImportFailure
from sandbox.registries.ecr_upstream import UNAVAILABLE, UpstreamFailure
from sandbox.registries.images import RegistryAPI

if TYPE_CHECKING:
    from sandbox.registries.distribution import RegistryProcess
    from sandbox.registries.ecr_behaviour import Imports
    from sandbox.registries.ecr_registry import Route
    from sandbox.registries.signed_urls import UrlSigner

LAYER_URL_SECONDS = 3600  # a pre-signed layer URL's lifetime (GetDownloadUrlForLayer hands out S3 URLs)
AVAILABLE, UNAVAILABLE_LAYER, ARCHIVED = "AVAILABLE", "UNAVAILABLE", "ARCHIVED"


class NotHeld(Exception):
    """ECR has no such manifest and will not fetch it (a first pull by digest)."""


class LayerImports:
    """The layer side of EcrRegistry; the attributes and the methods it calls are EcrRegistry's."""

    imports: Imports
    storage: RegistryProcess | None
    public_url: str
    _signer: UrlSigner

    def request_layer(self, route: Route, digest: str, *, pulled: bool) -> str:
        """Where a client gets a layer now, starting its import when ECR lacks it (raises UpstreamFailure).

        A held layer: a pre-signed URL of ECR's storage. Otherwise the upstream's own location (its redirect target),
        while ECR imports the layer in the background. `pulled`: asked by a blob GET through the registry endpoint
        (else by GetDownloadUrlForLayer).
        """
        repository = self._repository(route)
        with repository.lock:
            state = repository.layer_availability(digest)
            if state in (AVAILABLE, ARCHIVED):
                return self.layer_url(route.repository, digest)
            image = repository.referenced(digest)
        if image is None:
            raise NotHeld(digest)
        location = self._client(route).blob_location(route.upstream_path, digest)
        self._import_layer(route, digest, image.digest, pulled=pulled)
        return location

    def _import_layer(self, route: Route, digest: str, image_digest: str, *, pulled: bool) -> None:
        if not self.imports.starts(pulled=pulled):
            return
        repository = self._repository(route)
        with repository.lock:
            if repository.layers.get(digest) is not None:
                return  # held, or an import already under way
            repository.layers[digest] = UNAVAILABLE_LAYER

        def run() -> None:
            verdict = self.imports.admit(route.repository, run)
            if verdict == "parked":
                return
            try:
                if isinstance(verdict, ImportFailure):
                    raise UpstreamFailure(verdict.code, verdict.reason)
                data = self._client(route).get_blob(route.upstream_path, digest)
                self._store_blob(route.repository, data)
            except UpstreamFailure as failure:
                with repository.lock:
                    repository.layers.pop(digest, None)  # nothing held: the next request tries again
                self._sent(route, None, image_digest, failure)
            except Exception as exc:  # a sandbox bug must show as a failed import, not a silent thread death
                with repository.lock:
                    repository.layers.pop(digest, None)
                self._sent(route, None, image_digest, UpstreamFailure(UNAVAILABLE, f"sandbox error: {exc!r}"))
            else:
                with repository.lock:
                    repository.layers[digest] = AVAILABLE

        self._background(route, digest, run)

    def _store_blob(self, repository: str, data: bytes) -> None:
        if self.storage is None:
            raise RuntimeError("the ECR storage registry is not running")
        api = RegistryAPI(self.storage.url, None)
        try:
            api.put_blob(repository, data)
        finally:
            api.close()

    def layer_url(self, repository: str, digest: str) -> str:
        """A pre-signed URL of a held layer (ECR's layers live in S3; GetDownloadUrlForLayer returns such a URL)."""
        return f"{self.public_url}/ecr-layers/{repository}/{digest}?{self._signer.query(repository, digest)}"

    def signed_layer(self, target: str) -> tuple[str, str] | None:
        """(repository, digest) of a pre-signed layer URL whose signature holds and has not expired."""
        parts = urlsplit(target)
        repository, _, digest = parts.path[len("/ecr-layers/") :].rpartition("/")
        return (repository, digest) if self._signer.holds(repository, digest, parts.query) else None
