"""Tags read as versions, for a warm-list entry's `latest: N`.

A tag is `[v]N.N[.N[.N]][-PRE][-SUFFIX][+BUILD]`: two to four numeric parts (semantic `1.27.3`, four-part
`1.2.3.4`, calendar `2024.01.15`, where a leading zero is just a number), an optional pre-release (`-rc.1`,
`-beta2`, `-0.3.7`) and an optional suffix that names a variant of the image (`-alpine`, `-slim-bookworm`,
`-alpine3.20`). Tags of one suffix form a family and are ordered within it: `1.27.3-alpine` is a newer `-alpine`
than `1.27.2-alpine`, never a pre-release of `1.27.3` (as a strict semver reading would have it).

What cannot be ordered (`latest`, `mainline`, a lone `16`) is returned as such, so the caller can say so instead of
leaving it out silently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Any

_TAG = re.compile(r"(?P<v>v)?(?P<numbers>\d+(?:\.\d+){1,3})(?:-(?P<rest>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
# The words projects use for a pre-release (semver's examples, PEP 440's, Maven's), each optionally numbered.
# Anything else after the version names a variant: a suffix family.
_PRERELEASE = re.compile(r"(?i)(alpha|beta|rc|pre|preview|dev|snapshot|nightly|canary|next|ea|milestone)\d*|\d+")
_PARTS = 4


@total_ordering
@dataclass(frozen=True)
class Version:
    """A tag read as a version; ordered by its numbers, then release above its pre-releases (semver 11)."""

    numbers: tuple[int, ...]
    prerelease: tuple[int | str, ...] = ()
    suffix: str = ""  # the variant family: "" for plain tags, "alpine" for 1.27-alpine

    @classmethod
    def parse(cls, tag: str) -> Version | None:
        """The version a tag names, or None when it has none (`latest`, `stable-1.2`, `16`)."""
        match = _TAG.fullmatch(tag)
        if match is None:
            return None
        numbers = tuple(int(part) for part in match.group("numbers").split("."))
        prerelease: list[int | str] = []
        segments = (match.group("rest") or "").split("-") if match.group("rest") else []
        while segments and _PRERELEASE.fullmatch(segments[0].split(".")[0]):
            for identifier in segments.pop(0).split("."):
                prerelease += _identifiers(identifier)
        return cls(numbers, tuple(prerelease), "-".join(segments))

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _key(self) -> tuple[Any, ...]:
        # 1.27 ranks with 1.27.0 (padded); numeric identifiers rank below alphanumeric ones (semver 11.4).
        padded = self.numbers + (0,) * (_PARTS - len(self.numbers))
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (padded, not self.prerelease, pre, self.suffix)

    def sort_key(self, tag: str) -> tuple[Any, ...]:
        """A total order over tags: the version, then the tag's text (`1.27` and `1.27.0` are the same version)."""
        return (self._key(), tag)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()


@dataclass(frozen=True)
class Latest:
    """What `latest: N` picked from a tag list, and what it could not consider."""

    tags: list[str]  # highest first; family by family in the order of their best tag
    unordered: tuple[str, ...] = ()  # tags that name no version
    other_families: dict[str, int] = field(default_factory=dict)  # suffix -> tags left out (plain tags asked for)

    def note(self, selection: str, limit: int = 5) -> str | None:
        """One line for the report saying which tags were left out and why; None when none were."""
        parts = []
        if self.unordered:
            shown = ", ".join(self.unordered[:limit])
            more = f" and {len(self.unordered) - limit} more" if len(self.unordered) > limit else ""
            parts.append(f"{len(self.unordered)} tag(s) name no version it can order: {shown}{more}")
        if self.other_families:
            families = sorted(self.other_families.items(), key=lambda item: (-item[1], item[0]))
            shown = ", ".join(f"-{suffix} ({count})" for suffix, count in families[:limit])
            more = f" and {len(families) - limit} more" if len(families) > limit else ""
            parts.append(f"tags with a suffix were left out: {shown}{more}")
        if not parts:
            return None
        return (
            f"{selection}: {'; '.join(parts)}. Name such a tag under tags:, or choose a suffix family with "
            r"tag_pattern (e.g. ^\d+\.\d+\.\d+-alpine$)."
        )


def _identifiers(identifier: str) -> list[int | str]:
    # "beta11" is ("beta", 11), so beta11 ranks above beta2 as the number says.
    if identifier.isdigit():
        return [int(identifier)]
    worded = re.fullmatch(r"([A-Za-z]+)(\d+)", identifier)
    return [worded.group(1), int(worded.group(2))] if worded else [identifier]


def latest(tags: Sequence[str], count: int, *, families: bool = False) -> Latest:
    """The `count` highest versions among `tags`, highest first.

    Without `families` (no tag_pattern chose the tags): plain releases only, other suffix families counted as left
    out. With `families` (a tag_pattern chose them on purpose): pre-releases count, and each suffix family the tags
    hold gets its own `count` highest.
    """
    parsed = [(Version.parse(tag), tag) for tag in tags]
    unordered = tuple(tag for version, tag in parsed if version is None)
    versions = [(version, tag) for version, tag in parsed if version is not None]
    left_out: Counter[str] = Counter()
    if not families:
        left_out.update(v.suffix for v, _ in versions if v.suffix)
        versions = [(v, tag) for v, tag in versions if not v.suffix and not v.is_prerelease]
    by_family: dict[str, list[tuple[Version, str]]] = {}
    for version, tag in sorted(versions, key=lambda pair: pair[0].sort_key(pair[1]), reverse=True):
        by_family.setdefault(version.suffix, []).append((version, tag))
    ranked = sorted(by_family.values(), key=lambda family: family[0][0].numbers, reverse=True)
    picked = [tag for family in ranked for _, tag in family[:count]]
    return Latest(picked, unordered, dict(left_out))


def latest_versions(tags: Sequence[str], count: int, *, prereleases: bool = False) -> list[str]:
    """The tags `latest(tags, count, families=prereleases)` picks (the older name, kept for callers)."""
    return latest(tags, count, families=prereleases).tags


def highest_first(tags: Sequence[str]) -> list[str]:
    """Every tag, versions highest first (grouped by suffix family), then the tags that name no version."""
    parsed = [(Version.parse(tag), tag) for tag in tags]
    ordered = sorted(((v, tag) for v, tag in parsed if v is not None), key=lambda p: p[0].sort_key(p[1]), reverse=True)
    return [tag for _, tag in ordered] + sorted((tag for v, tag in parsed if v is None), reverse=True)
