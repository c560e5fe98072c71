"""Images of pull-through cache repositories, answered from the distribution proxy's own storage.

In AWS the cache repository holds what ECR imported from the upstream; in the sandbox that is what the rule's
distribution proxy stored. Reading its filesystem (distribution's layout, below) gives the real manifest digests,
tags and blobs, where moto's own image store would not (moto's digest is not the manifest's sha256).

    <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link    -> sha256:<hex>
    <root>/docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
    <root>/docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link              (blob linked into repo)
    <root>/docker/registry/v2/blobs/sha256/<hex[:2]>/<hex>/data
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.ecr.exceptions import ImageNotFoundException, RepositoryNotFoundException
from moto.ecr.models import LAYER_MEDIA_TYPE, ECRBackend

from sandbox import moto_ecr_rules as rules
from sandbox import moto_ecr_templates as templates
from sandbox.moto_ecr_state import ROOT, page

DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_V1 = "application/vnd.docker.distribution.manifest.v1+json"
NOT_FOUND = ("ImageNotFound", "Requested image not found")

Resolver = Callable[[str], Path | None]
_resolver: list[Resolver | None] = [None]


def set_resolver(resolver: Resolver | None) -> None:
    """Where each rule's proxy keeps its storage: resolver(normalised rule prefix) -> root, or None."""
    _resolver[0] = resolver


@dataclass(frozen=True)
class StoredImage:
    """One manifest the proxy stored for a repository, as ECR would describe the image."""

    digest: str
    tags: tuple[str, ...]
    media_type: str
    manifest: bytes
    size: int
    pushed_at: datetime
    artifact_media_type: str | None
    descriptors: dict[str, str] = field(default_factory=dict)  # config and layer digest -> media type


class ProxyStorage:
    """Read-only view of one distribution registry's filesystem storage."""

    def __init__(self, root: Path) -> None:
        self.v2 = root / "docker" / "registry" / "v2"

    def has_repository(self, repository: str) -> bool:
        return (self._repo(repository) / "_manifests").is_dir()

    def images(self, repository: str) -> list[StoredImage]:
        """Every manifest revision of the repository whose bytes are stored and hash to its digest."""
        manifests = self._repo(repository) / "_manifests"
        stored: dict[str, tuple[bytes, dict[str, Any], datetime]] = {}
        for link in sorted((manifests / "revisions" / "sha256").glob("*/link")):
            digest = _read_link(link)
            body = self._blob(digest) if digest == f"sha256:{link.parent.name}" else None
            document = _json(body) if body is not None else None
            if digest is None or body is None or document is None:
                continue  # not (yet) complete: the proxy writes in the background
            stored[digest] = (body, document, _mtime(link))
        tags: dict[str, list[str]] = {}
        for link in sorted((manifests / "tags").glob("*/current/link")):
            digest = _read_link(link)
            if digest in stored:
                tags.setdefault(digest, []).append(link.parent.parent.name)

        sizes = {d: _own_size(doc) for d, (_, doc, _) in stored.items()}
        images = []
        for digest, (body, document, pushed_at) in stored.items():
            media_type = _media_type(document)
            config = document.get("config") if isinstance(document.get("config"), dict) else None
            descriptors = {
                str(d.get("digest")): str(d.get("mediaType", LAYER_MEDIA_TYPE))
                for d in ([config] if config else []) + list(document.get("layers") or [])
                if isinstance(d, dict)
            }
            if "manifests" in document:
                # AWS: "If the image is a manifest list, this will be the max size of all manifests in the list."
                children = [sizes.get(str(m.get("digest"))) for m in document["manifests"] if isinstance(m, dict)]
                size = max((s for s in children if s is not None), default=len(body))
            else:
                size = sizes[digest]
            images.append(
                StoredImage(
                    digest=digest,
                    tags=tuple(sorted(tags.get(digest, []))),
                    media_type=media_type,
                    manifest=body,
                    size=size,
                    pushed_at=pushed_at,
                    artifact_media_type=str(config["mediaType"]) if config and "mediaType" in config else None,
                    descriptors=descriptors,
                )
            )
        return sorted(images, key=lambda i: i.digest)

    def blob_size(self, repository: str, digest: str) -> int | None:
        """Size of a blob the proxy stored for this repository (data present and linked into it), else None."""
        hex_digest = digest.removeprefix("sha256:")
        if not (self._repo(repository) / "_layers" / "sha256" / hex_digest / "link").is_file():
            return None
        try:
            return (self._blob_dir(digest) / "data").stat().st_size
        except OSError:
            return None

    def _repo(self, repository: str) -> Path:
        return self.v2 / "repositories" / repository

    def _blob_dir(self, digest: str) -> Path:
        hex_digest = digest.removeprefix("sha256:")
        return self.v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest

    def _blob(self, digest: str) -> bytes | None:
        try:
            body = (self._blob_dir(digest) / "data").read_bytes()
        except OSError:
            return None
        return body if f"sha256:{hashlib.sha256(body).hexdigest()}" == digest else None


# --- which repositories are answered from storage --------------------------------------------------------------------


@dataclass(frozen=True)
class CacheView:
    """A pull-through cache repository and the proxy storage that holds its images."""

    name: str  # the ECR repository name, <prefix>/<upstream path>
    upstream_repository: str  # the repository name in the proxy's storage
    storage: ProxyStorage


def view(ecr: ECRBackend, repository_name: object) -> CacheView | None:
    """The storage view of a repository under a PTC rule whose proxy storage is known; None keeps moto's way."""
    resolver = _resolver[0]
    if resolver is None or not isinstance(repository_name, str):
        return None
    rule = rules.find(ecr, repository_name)
    if rule is None:
        return None
    root = resolver(rule.key)
    if root is None:
        return None
    return CacheView(repository_name, upstream_repository(rule, repository_name), ProxyStorage(root))


def upstream_repository(rule: rules.Rule, repository_name: str) -> str:
    """The upstream repository a cache repository mirrors (AWS's table for ecr and upstream prefixes)."""
    rest = repository_name if rule.key == ROOT else repository_name[len(rule.key) + 1 :]
    upstream_prefix = rule.upstream_repository_prefix
    if upstream_prefix and upstream_prefix != ROOT:
        return f"{upstream_prefix.rstrip('/')}/{rest}"
    return rest


# --- operations ------------------------------------------------------------------------------------------------------


def describe_images(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """DescribeImages from storage; an unknown image id raises ImageNotFoundException, as moto and AWS do."""
    registry_id = _check_repository(ecr, params, cache)
    images = cache.storage.images(cache.upstream_repository)
    image_ids = params.get("imageIds")
    if image_ids:
        selected: list[StoredImage] = []
        for image_id in image_ids:
            image = _lookup(images, image_id)
            if image is None:
                raise ImageNotFoundException(_image_id_text(image_id), cache.name, registry_id)
            if image not in selected:
                selected.append(image)
    else:
        selected = _by_tag_status(images, (params.get("filter") or {}).get("tagStatus", "ANY"))
    chunk, token = page(selected, lambda i: i.digest, params.get("maxResults"), params.get("nextToken"))
    result: dict[str, Any] = {"imageDetails": [_detail(image, cache.name, registry_id) for image in chunk]}
    if token:
        result["nextToken"] = token
    return result


def list_images(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """ListImages from storage: one id per tag, and a digest-only id for an untagged image."""
    _check_repository(ecr, params, cache)
    images = _by_tag_status(
        cache.storage.images(cache.upstream_repository), (params.get("filter") or {}).get("tagStatus", "ANY")
    )
    ids: list[dict[str, str]] = []
    for image in images:
        ids.extend({"imageDigest": image.digest, "imageTag": tag} for tag in image.tags)
        if not image.tags:
            ids.append({"imageDigest": image.digest})
    chunk, token = page(
        ids, lambda i: f"{i['imageDigest']} {i.get('imageTag', '')}", params.get("maxResults"), params.get("nextToken")
    )
    result: dict[str, Any] = {"imageIds": chunk}
    if token:
        result["nextToken"] = token
    return result


def batch_get_image(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """BatchGetImage from storage: the stored manifest bytes, failures per image id as ECR reports them."""
    registry_id = _check_repository(ecr, params, cache)
    images = cache.storage.images(cache.upstream_repository)
    found: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for image_id in params.get("imageIds") or []:
        tag, digest = image_id.get("imageTag"), image_id.get("imageDigest")
        image = None
        if not tag and not digest:
            failure = ("MissingDigestAndTag", "Invalid request parameters: image tag and digest cannot both be null")
        elif digest and not DIGEST.fullmatch(digest):
            failure = ("InvalidImageDigest", "Invalid image digest")
        else:
            image = _lookup(images, image_id)
            moved = tag and digest and _lookup(images, {"imageTag": tag}) is not None
            failure = ("ImageTagDoesNotMatchDigest", "Tag does not match digest") if moved else NOT_FOUND
        if image is None:
            code, reason = failure
            failures.append({"imageId": dict(image_id), "failureCode": code, "failureReason": reason})
            continue
        found.append(
            {
                "registryId": registry_id,
                "repositoryName": cache.name,
                "imageId": {"imageDigest": image.digest, **({"imageTag": tag} if tag else {})},
                "imageManifest": image.manifest.decode(),
                "imageManifestMediaType": image.media_type,
            }
        )
    return {"images": found, "failures": failures}


def batch_check_layer_availability(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """BatchCheckLayerAvailability: AVAILABLE only for blobs the proxy stored and linked into this repository."""
    _check_repository(ecr, params, cache)
    media_types: dict[str, str] = {}
    for image in cache.storage.images(cache.upstream_repository):
        media_types.update(image.descriptors)
    layers: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for digest in params.get("layerDigests") or []:
        size = cache.storage.blob_size(cache.upstream_repository, digest) if DIGEST.fullmatch(digest) else None
        if not DIGEST.fullmatch(digest):
            failures.append(
                {
                    "layerDigest": digest,
                    "failureCode": "InvalidLayerDigest",
                    "failureReason": f"Invalid layer digest '{digest}'",
                }
            )
        elif size is None:
            failures.append(
                {
                    "layerDigest": digest,
                    "failureCode": "MissingLayerDigest",
                    "failureReason": f"Layer digest '{digest}' could not be found",
                }
            )
        else:
            layers.append(
                {
                    "layerDigest": digest,
                    "layerAvailability": "AVAILABLE",
                    "layerSize": size,
                    "mediaType": media_types.get(digest, LAYER_MEDIA_TYPE),
                }
            )
    return {"layers": layers, "failures": failures}


# --- internals -------------------------------------------------------------------------------------------------------


def _check_repository(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> str:
    """The registry id, after making sure the repository exists.

    A repository the proxy already holds but moto does not was pulled through the endpoint: ECR would have created
    it on that pull, so it is created now (with its template) rather than reported missing.
    """
    registry_id = params.get("registryId") or ecr.account_id
    if cache.name not in ecr.repositories and cache.storage.has_repository(cache.upstream_repository):
        templates.ensure_repository(ecr, cache.name)
    repository = ecr.repositories.get(cache.name)
    if repository is None or repository.registry_id != registry_id:
        raise RepositoryNotFoundException(cache.name, registry_id)
    return str(registry_id)


def _lookup(images: list[StoredImage], image_id: dict[str, str]) -> StoredImage | None:
    tag, digest = image_id.get("imageTag"), image_id.get("imageDigest")
    if not tag and not digest:
        return None
    for image in images:
        if (not tag or tag in image.tags) and (not digest or digest == image.digest):
            return image
    return None


def _by_tag_status(images: list[StoredImage], tag_status: str) -> list[StoredImage]:
    if tag_status == "TAGGED":
        return [i for i in images if i.tags]
    if tag_status == "UNTAGGED":
        return [i for i in images if not i.tags]
    return list(images)


def _detail(image: StoredImage, repository_name: str, registry_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "registryId": registry_id,
        "repositoryName": repository_name,
        "imageDigest": image.digest,
        "imageSizeInBytes": image.size,
        "imagePushedAt": image.pushed_at,
        "imageManifestMediaType": image.media_type,
        "imageStatus": "ACTIVE",
    }
    if image.tags:  # AWS leaves imageTags out of untagged images
        detail["imageTags"] = list(image.tags)
    if image.artifact_media_type:
        detail["artifactMediaType"] = image.artifact_media_type
    return detail


def _image_id_text(image_id: dict[str, str]) -> str:
    return f"{{imageDigest:'{image_id.get('imageDigest') or 'null'}', imageTag:'{image_id.get('imageTag') or 'null'}'}}"


def _read_link(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text if DIGEST.fullmatch(text) else None


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _media_type(document: dict[str, Any]) -> str:
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in document:
        return OCI_INDEX
    if document.get("schemaVersion") == 1:
        return DOCKER_V1
    return OCI_MANIFEST


def _own_size(document: dict[str, Any]) -> int:
    """Bytes of an image manifest's config and layers as stored (compressed), the way ECR counts an image."""
    parts = [document.get("config"), *(document.get("layers") or [])]
    return sum(int(p.get("size", 0)) for p in parts if isinstance(p, dict))
