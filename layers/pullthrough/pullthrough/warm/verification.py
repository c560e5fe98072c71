"""Verification of ECR's copy of a tag: is every wanted platform's manifest, config and layer there?

    fetch      one repository's copies in three calls whatever the number of tags: BatchGetImage for the tags'
               manifests, again for the wanted platforms' manifests of the indexes among them, then
               BatchCheckLayerAvailability for their blobs
    read_copy  what ECR holds of one tag from those answers: its platforms' image manifests, the wanted platforms
               the index lacks, those whose manifest ECR lacks

Separate from the decisions, which say what a copy found complete, incomplete or archived means for the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pullthrough.aws.ecr import StoredManifest
from pullthrough.errors import InvalidManifest
from pullthrough.registry import manifests
from pullthrough.warm.plan import Candidate
from pullthrough.warm.ports import EcrView


@dataclass(frozen=True)
class Fetched:
    """What ECR answered for one repository's tags: manifests by digest, their platforms' manifests, blob states."""

    tops: dict[str, StoredManifest]
    children: dict[str, StoredManifest]
    held: dict[str, str]  # blob digest -> ECR's layer availability


@dataclass(frozen=True)
class Copy:
    """ECR's copy of one tag: the image manifests of its wanted platforms, and what it lacks of them."""

    images: tuple[manifests.ImageManifest, ...] = ()
    platforms: tuple[str, ...] = ()  # the wanted platforms an index has (empty for a single-platform manifest)
    absent: tuple[str, ...] = ()  # the wanted platforms the index lacks
    missing: int = 0  # the wanted platforms whose manifest ECR does not hold
    listed: int = 0  # the manifests an index lists (0 for a single-platform manifest)

    @property
    def sizes(self) -> dict[str, int]:
        """The configs' and layers' sizes by digest."""
        return {blob.digest: blob.size for image in self.images for blob in image.blobs}


def fetch(ecr: EcrView, repository: str, copies: Sequence[tuple[Candidate, str]]) -> Fetched:
    """ECR's copies of one repository's tags (candidate, digest ECR's tag points at); raises AwsError."""
    tops = ecr.get_manifests(repository, list(dict.fromkeys(digest for _, digest in copies)))
    wanted_children: list[str] = []
    for c, digest in copies:
        top = tops.get(digest)
        try:
            parsed = top.parsed() if top is not None else None
        except InvalidManifest:
            continue
        if isinstance(parsed, manifests.Index):
            wanted_children += [e.digest for p in c.platforms if (e := parsed.entry_for(p)) is not None]
    children = ecr.get_manifests(repository, list(dict.fromkeys(wanted_children))) if wanted_children else {}
    blobs: list[str] = []
    for stored in [*tops.values(), *children.values()]:
        try:
            parsed = stored.parsed()
        except InvalidManifest:
            continue
        if isinstance(parsed, manifests.ImageManifest):
            blobs += [blob.digest for blob in parsed.blobs]
    held = ecr.layer_states(repository, list(dict.fromkeys(blobs))) if blobs else {}
    return Fetched(tops, children, held)


def read_copy(c: Candidate, digest: str, fetched: Fetched) -> Copy | None:
    """ECR's copy of the tag at `digest`; None when ECR lacks its manifest or holds one that does not parse."""
    top = fetched.tops.get(digest)
    try:
        if top is None:
            return None
        parsed = top.parsed()
        if not isinstance(parsed, manifests.Index):
            return Copy(images=(parsed,))
        return _index_copy(c, parsed, fetched.children)
    except InvalidManifest:
        return None


def _index_copy(c: Candidate, index: manifests.Index, children: dict[str, StoredManifest]) -> Copy:
    """The wanted platforms of an index; raises InvalidManifest when one of their manifests does not parse."""
    entries = {}
    absent: list[str] = []
    for platform in c.platforms:
        entry = index.entry_for(platform)
        if entry is None:
            absent.append(platform)
        else:
            entries[platform] = entry.digest
    missing = [p for p, d in entries.items() if d not in children]
    if missing:
        return Copy(missing=len(missing))
    images: list[manifests.ImageManifest] = []
    platforms: list[str] = []
    for platform, child_digest in entries.items():
        child = children[child_digest].parsed()
        if isinstance(child, manifests.ImageManifest):
            images.append(child)
            platforms.append(platform)
    return Copy(tuple(images), tuple(platforms), tuple(absent), listed=len(index.entries))
