"""Push generated images into a distribution registry through the registry API (no Docker, no skopeo).

Layer bytes are deterministic: the same repository, tag, platform, layer index and seed always give the same
digest, so a test can push again and get the same image, or pass another `seed` to move a tag.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict
from urllib.parse import urlsplit

from sandbox.registries.upstream import NoDelayHTTPConnection

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

_MEDIA = {
    "oci": (OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
    "docker": (DOCKER_LIST, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
}


class PushError(RuntimeError):
    """The registry refused part of a push; names the request and the status."""


@dataclass(frozen=True)
class PushedImage:
    """What `push_image` put in the registry: every digest a pull would touch, and the blob bytes in total."""

    repository: str
    tag: str
    digest: str  # what the tag points at: the index for a multi-arch image, else the image manifest
    media_type: str
    platforms: dict[str, str]  # "linux/arm64/v8" -> image manifest digest
    blobs: dict[str, list[str]]  # image manifest digest -> [config digest, layer digests...]
    total_size: int  # bytes of every distinct config and layer blob (manifests not included)

    @property
    def manifest_digests(self) -> list[str]:
        """The image manifests' digests (one per platform)."""
        return list(self.blobs)

    @property
    def blob_digests(self) -> list[str]:
        """Every config and layer digest, each once."""
        return list(dict.fromkeys(d for digests in self.blobs.values() for d in digests))


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of the bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_bytes(repository: str, tag: str, platform: str, index: int, size: int, seed: int | str = 0) -> bytes:
    """Deterministic pseudo-random layer content (incompressible, like a real gzip layer)."""
    return random.Random(f"{repository}:{tag}:{platform}:{index}:{seed}").randbytes(size)


def _platform_fields(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r}: expected os/architecture[/variant], e.g. linux/arm64/v8")
    fields = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        fields["variant"] = parts[2]
    return fields


class RegistryAPI:
    """Just enough of the registry API to push, over one keep-alive connection (`token` None: no auth)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        parts = urlsplit(base_url)
        self._conn = NoDelayHTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    def close(self) -> None:
        self._conn.close()

    def _call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        all_headers = dict(self._auth)
        all_headers.update(headers or {})
        self._conn.request(method, path, body=body, headers=all_headers)
        response = self._conn.getresponse()
        response.read()
        return response

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        if self._call("HEAD", f"/v2/{repository}/blobs/{digest}").status == 200:
            return digest
        started = self._call("POST", f"/v2/{repository}/blobs/uploads/")
        location = started.getheader("Location")
        if started.status != 202 or not location:
            raise PushError(f"POST /v2/{repository}/blobs/uploads/ answered {started.status}")
        target = urlsplit(location)
        query = f"{target.query}&" if target.query else ""
        done = self._call(
            "PUT",
            f"{target.path}?{query}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status != 201:
            raise PushError(f"PUT blob {digest} into {repository} answered {done.status}")
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        response = self._call(
            "PUT", f"/v2/{repository}/manifests/{reference}", body=body, headers={"Content-Type": media_type}
        )
        if response.status != 201:
            raise PushError(f"PUT manifest {repository}:{reference} answered {response.status}")
        return sha256_digest(body)


@dataclass(frozen=True)
class ImageSpec:
    """What `push_image` generates: one image manifest per platform, behind an index when `index` (default: more
    than one platform); `media` "oci" or "docker"; `seed` moves the layers' bytes (another seed, another image)."""

    platforms: Sequence[str] = ("linux/amd64",)
    layer_sizes: Sequence[int] = (1024,)
    media: str = "oci"
    index: bool | None = None
    seed: int | str = 0

    def media_types(self) -> tuple[str, str, str, str]:
        """(index, manifest, config, layer) media types; ValueError when the spec cannot be pushed."""
        if self.media not in _MEDIA:
            raise ValueError(f"media {self.media!r}: expected one of {sorted(_MEDIA)}")
        if not self.platforms:
            raise ValueError("platforms: give at least one, e.g. ('linux/amd64',)")
        if not self.use_index() and len(self.platforms) > 1:
            raise ValueError(f"platforms {tuple(self.platforms)}: several platforms need index=True")
        return _MEDIA[self.media]

    def use_index(self) -> bool:
        return len(self.platforms) > 1 if self.index is None else self.index


class ImageOptions(TypedDict, total=False):
    """ImageSpec's fields as keyword arguments (`Sandbox.push_image(repository, tag, platforms=...)`)."""

    platforms: Sequence[str]
    layer_sizes: Sequence[int]
    media: str
    index: bool | None
    seed: int | str


@dataclass
class _Pushing:
    """One push in progress: the registry connection, what it is pushing, and what it pushed so far."""

    api: RegistryAPI
    repository: str
    tag: str
    spec: ImageSpec
    by_platform: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    entries: list[dict[str, object]] = field(default_factory=list)

    def platform(self, platform: str) -> None:
        """Push one platform's layers, config and image manifest (by digest when behind an index, else by tag)."""
        _, manifest_type, config_type, layer_type = self.spec.media_types()
        fields = _platform_fields(platform)
        layer_digests: list[str] = []
        for i, size in enumerate(self.spec.layer_sizes):
            layer = layer_bytes(self.repository, self.tag, platform, i, size, self.spec.seed)
            digest = self.api.put_blob(self.repository, layer)
            self.sizes[digest] = size
            layer_digests.append(digest)
        pairs = zip(layer_digests, self.spec.layer_sizes, strict=True)
        layers = [{"mediaType": layer_type, "digest": d, "size": n} for d, n in pairs]
        config = json.dumps(
            {
                **fields,
                "config": {"Labels": {"sandbox.repository": self.repository, "sandbox.tag": self.tag}},
                "rootfs": {"type": "layers", "diff_ids": layer_digests},
            },
            sort_keys=True,
        ).encode()
        config_digest = self.api.put_blob(self.repository, config)
        self.sizes[config_digest] = len(config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
                "layers": layers,
            },
            indent=2,
        ).encode()
        reference = sha256_digest(manifest) if self.spec.use_index() else self.tag
        manifest_digest = self.api.put_manifest(self.repository, reference, manifest, manifest_type)
        self.by_platform[platform] = manifest_digest
        self.blobs[manifest_digest] = [config_digest, *layer_digests]
        self.entries.append(
            {"mediaType": manifest_type, "digest": manifest_digest, "size": len(manifest), "platform": fields}
        )

    def top(self) -> tuple[str, str]:
        """Push the index over the platforms when there is one; (digest, media type) of what the tag points at."""
        index_type, manifest_type, _, _ = self.spec.media_types()
        if not self.spec.use_index():
            return next(iter(self.by_platform.values())), manifest_type
        index = {"schemaVersion": 2, "mediaType": index_type, "manifests": self.entries}
        body = json.dumps(index, indent=2).encode()
        return self.api.put_manifest(self.repository, self.tag, body, index_type), index_type


def push_image(
    registry_url: str, token_for: Callable[[str], str], repository: str, tag: str, spec: ImageSpec | None = None
) -> PushedImage:
    """Push `repository:tag` as `spec` says (ImageSpec(): one linux/amd64 OCI image of one 1 KiB layer).

    `token_for(repository)` returns a Bearer token with push on that repository.
    """
    spec = spec if spec is not None else ImageSpec()
    spec.media_types()  # refuse a spec that cannot be pushed before connecting
    api = RegistryAPI(registry_url, token_for(repository))
    pushing = _Pushing(api, repository, tag, spec)
    try:
        for platform in spec.platforms:
            pushing.platform(platform)
        top_digest, top_type = pushing.top()
    finally:
        api.close()
    blobs, sizes = pushing.blobs, pushing.sizes
    return PushedImage(repository, tag, top_digest, top_type, pushing.by_platform, blobs, sum(sizes.values()))
