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
from dataclasses import dataclass
from urllib.parse import urlsplit

from sandbox.upstream import NoDelayHTTPConnection

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


def push_image(
    registry_url: str,
    token_for: Callable[[str], str],
    repository: str,
    tag: str,
    *,
    platforms: Sequence[str] = ("linux/amd64",),
    layer_sizes: Sequence[int] = (1024,),
    media: str = "oci",
    index: bool | None = None,
    seed: int | str = 0,
) -> PushedImage:
    """Push `repository:tag`: one image manifest per platform, behind an index when `index` (default: >1 platform).

    `media` is "oci" or "docker"; `token_for(repository)` returns a Bearer token with push on that repository.
    """
    if media not in _MEDIA:
        raise ValueError(f"media {media!r}: expected one of {sorted(_MEDIA)}")
    if not platforms:
        raise ValueError("platforms: give at least one, e.g. ('linux/amd64',)")
    index_type, manifest_type, config_type, layer_type = _MEDIA[media]
    use_index = len(platforms) > 1 if index is None else index
    if not use_index and len(platforms) > 1:
        raise ValueError(f"platforms {tuple(platforms)}: several platforms need index=True")
    api = RegistryAPI(registry_url, token_for(repository))
    try:
        by_platform: dict[str, str] = {}
        blobs: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        entries: list[dict[str, object]] = []
        for platform in platforms:
            fields = _platform_fields(platform)
            layer_digests: list[str] = []
            for i, size in enumerate(layer_sizes):
                digest = api.put_blob(repository, layer_bytes(repository, tag, platform, i, size, seed))
                sizes[digest] = size
                layer_digests.append(digest)
            pairs = zip(layer_digests, layer_sizes, strict=True)
            layers = [{"mediaType": layer_type, "digest": d, "size": n} for d, n in pairs]
            config = json.dumps(
                {
                    **fields,
                    "config": {"Labels": {"sandbox.repository": repository, "sandbox.tag": tag}},
                    "rootfs": {"type": "layers", "diff_ids": layer_digests},
                },
                sort_keys=True,
            ).encode()
            config_digest = api.put_blob(repository, config)
            sizes[config_digest] = len(config)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": manifest_type,
                    "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
                    "layers": layers,
                },
                indent=2,
            ).encode()
            reference = sha256_digest(manifest) if use_index else tag
            manifest_digest = api.put_manifest(repository, reference, manifest, manifest_type)
            by_platform[platform] = manifest_digest
            blobs[manifest_digest] = [config_digest, *layer_digests]
            entries.append(
                {"mediaType": manifest_type, "digest": manifest_digest, "size": len(manifest), "platform": fields}
            )
        if use_index:
            body = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}, indent=2).encode()
            top_digest = api.put_manifest(repository, tag, body, index_type)
            top_type = index_type
        else:
            top_digest, top_type = next(iter(by_platform.values())), manifest_type
    finally:
        api.close()
    return PushedImage(repository, tag, top_digest, top_type, by_platform, blobs, sum(sizes.values()))
