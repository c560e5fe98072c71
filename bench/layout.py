"""Images written straight into a distribution registry's filesystem storage, in distribution's own layout.

    <root>/docker/registry/v2/blobs/sha256/<hex[:2]>/<hex>/data
    <root>/docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link                 (config and layers)
    <root>/docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
    <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link
    <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link

A running registry reads these files on every request (the sandbox configures no cache), so what is written here is
served exactly as if it had been pushed. Used by the scale benchmark only: thousands of images in seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def shared_blobs(seed: str) -> dict[str, bytes]:
    """A config and one small layer that every generated image shares: {"config": ..., "layer": ...}."""
    layer = hashlib.sha256(seed.encode()).digest() * 64  # 2 KiB, unique per seed
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]}},
        sort_keys=True,
    ).encode()
    return {"config": config, "layer": layer}


def image_manifest(blobs: dict[str, bytes], annotation: str) -> bytes:
    """An OCI image manifest over the shared blobs; the annotation makes each image's digest its own."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(blobs["config"]), "size": len(blobs["config"])},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(blobs["layer"]), "size": len(blobs["layer"])}],
            "annotations": {"org.opencontainers.image.ref.name": annotation},
        },
        indent=2,
    ).encode()


class Storage:
    """One registry's storage root."""

    def __init__(self, root: Path) -> None:
        self.v2 = root / "docker" / "registry" / "v2"

    def put_blob(self, data: bytes) -> str:
        digest = digest_of(data)
        hex_digest = digest.split(":", 1)[1]
        path = self.v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return digest

    def put_image(self, repository: str, tag: str, manifest: bytes, blobs: dict[str, bytes]) -> str:
        """Store the manifest, link it and its blobs into the repository, and point the tag at it."""
        digest = self.put_blob(manifest)
        repo = self.v2 / "repositories" / repository
        for blob in blobs.values():
            _link(repo / "_layers" / "sha256" / digest_of(blob).split(":", 1)[1], digest_of(blob))
        hex_digest = digest.split(":", 1)[1]
        _link(repo / "_manifests" / "revisions" / "sha256" / hex_digest, digest)
        _link(repo / "_manifests" / "tags" / tag / "current", digest)
        _link(repo / "_manifests" / "tags" / tag / "index" / "sha256" / hex_digest, digest)
        return digest


def _link(directory: Path, digest: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "link").write_text(digest)
