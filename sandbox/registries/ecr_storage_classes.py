"""ECR's pull times and storage classes in the sandbox's registry: lastRecordedPullTime, archive and restore.

Part of `sandbox.registries.ecr_registry.EcrRegistry` (a base class of it), separate so the registry class stays
readable. `lastRecordedPullTime`: "Amazon ECR refreshes the last image pull timestamp at least once every 24 hours"
(botocore's ImageDetail): the sandbox refreshes it only when the recorded time is a day old, the coarsest reading.
Archived images (ECR's archive storage class: ImageStatus ARCHIVED in botocore's model) cannot be pulled until restored.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.registries.ecr_behaviour import Clock
    from sandbox.registries.ecr_registry import Repository

PULL_TIME_REFRESH = timedelta(hours=24)


class StorageClasses:
    """Pull times and storage classes of EcrRegistry's images; the attributes and `repository` are EcrRegistry's."""

    clock: Clock
    _lock: threading.RLock
    _repositories: dict[str, Repository]

    def record_pull(self, repository: str, digest: str) -> None:
        """Refresh lastRecordedPullTime of an image, at most once a day (see the module docstring)."""
        found = self.repository(repository)
        if found is None:
            return
        now = self.clock.now()
        with found.lock:
            last = found.pulled_at.get(digest)
            if last is None or now - last >= PULL_TIME_REFRESH:
                found.pulled_at[digest] = now

    def age(self, **delta: float) -> None:
        """Move every recorded time (imports, pulls, upstream checks) back by `delta`, as if that much time had
        passed: for code that reads the real clock (prune_images' run in a function) rather than `self.clock`."""
        shift = timedelta(**delta)
        with self._lock:
            held = list(self._repositories.values())
        for repository in held:
            with repository.lock:
                for manifest in repository.manifests.values():
                    manifest.imported_at -= shift
                repository.pulled_at = {digest: at - shift for digest, at in repository.pulled_at.items()}
                repository.tags = {tag: (digest, at - shift) for tag, (digest, at) in repository.tags.items()}

    def archive(self, repository: str, digest: str) -> None:
        """Move an image (and, for an index, its children) to the archive storage class (UpdateImageStorageClass)."""
        found = self.repository(repository)
        if found is None:
            raise KeyError(repository)
        with found.lock:
            manifest = found.manifests[digest]
            found.archived.update((digest, *manifest.children))

    def restore(self, repository: str, digest: str) -> None:
        """Back to the standard storage class."""
        found = self.repository(repository)
        if found is not None:
            with found.lock:
                manifest = found.manifests.get(digest)
                found.archived.difference_update((digest, *(manifest.children if manifest else ())))
