"""What one prune run deletes, keeps and leaves for later, decided from what DescribeImages said (no AWS call).

Separate from the deletion and the run so the rules of what counts as use, the cap and the untagged images of an
index can be read (and tested) as the pure function they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pullthrough.aws.ecr import EcrImage
from pullthrough.prune.keeping import WHOLE_REPOSITORY

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


@dataclass(frozen=True)
class Candidate:
    """An image pruning looked at: unused since `last_used`, and why it stays when it does."""

    repository: str
    image: EcrImage
    last_used: datetime
    kept_by: str | None = None  # the reason it stays: the warm list, prune.keep, an index

    @property
    def subject(self) -> str:
        tags = self.image.tags
        return f"{self.repository}:{tags[0]}" if tags else f"{self.repository}@{self.image.digest}"

    @property
    def is_index(self) -> bool:
        return self.image.media_type in INDEX_TYPES


@dataclass
class Plan:
    """What one run deletes (oldest first, within the cap), keeps although unused, and leaves for the next run."""

    delete: list[Candidate] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    deferred: list[Candidate] = field(default_factory=list)
    # per repository: the untagged images that may go with an index deleted there (read when it is deleted)
    untagged: dict[str, list[Candidate]] = field(default_factory=dict)
    fresh: int = 0  # images used within the window: not listed
    notes: list[str] = field(default_factory=list)


# --- the plan (pure) -------------------------------------------------------------------------------------------------


def last_used(image: EcrImage) -> datetime | None:
    """lastRecordedPullTime, or the import time (imagePushedAt) of an image never pulled."""
    return image.last_pulled or image.pushed_at


def plan(
    held: Mapping[str, Sequence[EcrImage]],
    kept: Mapping[str, Mapping[str, str]],
    *,
    now: datetime,
    unused_for_days: int,
    max_deletions: int,
) -> Plan:
    """Decide, from what DescribeImages said, which images go: unused, unnamed, oldest first, at most the cap."""
    cutoff = now - timedelta(days=unused_for_days)
    result = Plan()
    stale: list[Candidate] = []
    for repository in sorted(held):
        images = held[repository]
        needs = kept.get(repository, {})
        for image in images:
            used = last_used(image)
            if used is None or used >= cutoff:
                result.fresh += 1
                continue
            candidate = Candidate(repository, image, used)
            reason = needs.get(WHOLE_REPOSITORY) or next((needs[t] for t in image.tags if t in needs), None)
            if reason is not None:
                result.kept.append(_keep(candidate, reason))
            elif image.tags or candidate.is_index:
                stale.append(candidate)  # an untagged index is a tag's old image: nothing names it any more
            else:
                result.untagged.setdefault(repository, []).append(candidate)
    stale.sort(key=lambda c: (c.last_used, c.repository, c.image.digest))
    result.delete, result.deferred = stale[:max_deletions], stale[max_deletions:]
    for repository, untagged in result.untagged.items():
        if not _keeps_an_index(held[repository], result.delete):
            room = max_deletions - len(result.delete)
            untagged.sort(key=lambda c: (c.last_used, c.image.digest))
            result.delete += untagged[:room]
            result.deferred += untagged[room:]
            result.untagged[repository] = []
    return result


def _keep(candidate: Candidate, reason: str) -> Candidate:
    return Candidate(candidate.repository, candidate.image, candidate.last_used, reason)


def _keeps_an_index(images: Sequence[EcrImage], deleted: Iterable[Candidate]) -> bool:
    """Whether an index of the repository stays after this run (one that may list its untagged images)."""
    going = {c.image.digest for c in deleted}
    return any(image.media_type in INDEX_TYPES and image.digest not in going for image in images)


__all__ = ["INDEX_TYPES", "Candidate", "Plan", "last_used", "plan"]
