"""Image manifests and indexes: the four media types ECR pull-through cache serves, parsed into typed values.

Only the OCI image spec and Docker's schema 2 are supported; schema 1 is long deprecated and neither Docker Hub
nor ECR serves it to a client that accepts the types below.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pullthrough.errors import InvalidManifest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

# Order matters only to registries that ignore q-values: an index first, so a multi-arch tag is never downgraded.
ACCEPT: tuple[str, ...] = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
ACCEPT_HEADER = ", ".join(ACCEPT)

_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")

_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+"

# BuildKit writes attestation manifests into an index with this platform and annotation; they are not images.
_ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
_UNKNOWN_PLATFORM = "unknown/unknown"

# Platforms where a missing variant means a default one (containerd's normalisation).
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about one blob."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class PlatformEntry:
    """One manifest of an index, with its platform as `os/arch[/variant]` ("linux/arm64/v8")."""

    digest: str
    platform: str
    size: int
    media_type: str
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_attestation(self) -> bool:
        """True for BuildKit provenance/SBOM entries, which are not runnable images."""
        return (
            self.annotations.get(_ATTESTATION_ANNOTATION) == "attestation-manifest"
            or self.platform == _UNKNOWN_PLATFORM
        )


@dataclass(frozen=True)
class Index:
    """A multi-platform image: an OCI image index or a Docker manifest list."""

    entries: list[PlatformEntry]
    media_type: str = OCI_INDEX

    @property
    def platforms(self) -> list[str]:
        """The platforms of the runnable entries, in index order."""
        return [e.platform for e in self.entries if not e.is_attestation]

    def entry_for(self, platform: str) -> PlatformEntry | None:
        """The entry for `platform` ("linux/arm64" matches "linux/arm64/v8"), or None when the index has none."""
        wanted = normalize_platform(platform)
        for entry in self.entries:
            if not entry.is_attestation and normalize_platform(entry.platform) == wanted:
                return entry
        return None


@dataclass(frozen=True)
class ImageManifest:
    """A single-platform image: its config blob and its layers."""

    config: Descriptor
    layers: list[Descriptor]
    media_type: str = OCI_MANIFEST

    @property
    def blobs(self) -> list[Descriptor]:
        """Every blob the image needs: the config first, then the layers."""
        return [self.config, *self.layers]


def sha256_digest(data: bytes) -> str:
    """The OCI digest (`sha256:<hex>`) of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(reference: str) -> bool:
    """True when a manifest reference is a content digest rather than a tag."""
    return _DIGEST.fullmatch(reference) is not None


def normalize_platform(platform: str) -> str:
    """`os/arch[/variant]` with the default variant made explicit, so "linux/arm64" equals "linux/arm64/v8"."""
    parts = platform.strip().lower().split("/")
    if len(parts) == 2 and parts[1] in _DEFAULT_VARIANT:
        parts.append(_DEFAULT_VARIANT[parts[1]])
    return "/".join(parts)


def media_type_of(body: bytes, header: str | None) -> str:
    """The manifest's media type: the Content-Type header when it names one, else the body's `mediaType`.

    Registries sometimes answer `application/json` or nothing; the body then decides.
    """
    declared = (header or "").split(";", 1)[0].strip().lower()
    if declared in INDEX_TYPES or declared in IMAGE_TYPES:
        return declared
    document = _load(body)
    found = document.get("mediaType")
    if isinstance(found, str) and found:
        return found
    # An OCI manifest may omit mediaType; its shape then says what it is.
    if "manifests" in document:
        return OCI_INDEX
    if "layers" in document or "config" in document:
        return OCI_MANIFEST
    return declared or "unknown"


def parse(body: bytes, media_type: str | None = None) -> Index | ImageManifest:
    """Parse a manifest body into an Index or an ImageManifest; InvalidManifest when it is neither."""
    document = _load(body)
    kind = media_type_of(body, media_type)
    if document.get("schemaVersion") == 1 or kind.startswith(_SCHEMA1) or "signatures" in document:
        raise InvalidManifest("Docker schema 1 manifests are not supported; the upstream must serve schema 2 or OCI")
    if kind in INDEX_TYPES:
        return Index(entries=[_entry(m, i) for i, m in enumerate(_list(document, "manifests"))], media_type=kind)
    if kind in IMAGE_TYPES:
        config = _descriptor(document.get("config"), "config")
        layers = [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(_list(document, "layers"))]
        return ImageManifest(config=config, layers=layers, media_type=kind)
    raise InvalidManifest(
        f"media type {kind!r} is not a supported manifest; expected one of {', '.join(ACCEPT)}",
    )


def _load(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifest(f"manifest body is not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(document, dict):
        raise InvalidManifest(f"manifest body must be a JSON object, got {type(document).__name__}")
    return document


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidManifest(f"manifest field {key!r} must be a list, got {type(value).__name__}")
    return value


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidManifest(f"manifest field {where!r} must be a descriptor object, got {value!r:.80}")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType", "")
    if not isinstance(digest, str) or not is_digest(digest):
        raise InvalidManifest(f"manifest field {where}.digest must be sha256:<64 hex>, got {digest!r:.80}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidManifest(f"manifest field {where}.size must be a non-negative integer, got {size!r:.80}")
    if not isinstance(media_type, str):
        raise InvalidManifest(f"manifest field {where}.mediaType must be a string, got {media_type!r:.80}")
    return Descriptor(media_type=media_type, digest=digest, size=size)


def _entry(value: Any, index: int) -> PlatformEntry:
    where = f"manifests[{index}]"
    descriptor = _descriptor(value, where)
    platform = value.get("platform") or {}
    if not isinstance(platform, dict):
        raise InvalidManifest(f"manifest field {where}.platform must be an object, got {platform!r:.80}")
    os_name, arch, variant = platform.get("os"), platform.get("architecture"), platform.get("variant")
    text = "/".join(str(p) for p in (os_name, arch, variant) if p) if os_name and arch else _UNKNOWN_PLATFORM
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InvalidManifest(f"manifest field {where}.annotations must be an object, got {annotations!r:.80}")
    return PlatformEntry(
        digest=descriptor.digest,
        platform=text,
        size=descriptor.size,
        media_type=descriptor.media_type,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
