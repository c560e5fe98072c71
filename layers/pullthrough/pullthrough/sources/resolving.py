"""From the text a source names to the upstream reference Pullthrough warms, or the problem that stops it.

A reference may point at the cache already (seed 000's `${CONTAINER_REGISTRY_BASE}/olakego/ui`, i.e.
`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/...`): the rule with that prefix maps it back to its upstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pullthrough.errors import ConfigError, InvalidReference, Problem
from pullthrough.reference import DEFAULT_DOMAIN, ROOT_PREFIX, ImageReference, upstream_for, upstream_repository

if TYPE_CHECKING:
    from pullthrough.config import Config, Rule

__all__ = ["Reading", "Resolved", "SourceProblem", "Yielded", "resolve"]

# An ECR private registry host (ECR user guide, "Amazon ECR private registry": aws_account_id.dkr.ecr.region
# .amazonaws.com).
_ECR_HOST = re.compile(r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")


@dataclass(frozen=True)
class Yielded:
    """One image reference a source names: the upstream reference, the source's name, and where in it."""

    reference: str  # the upstream reference, fully qualified: docker.io/olakego/source-mysql:v0.1.8
    source: str  # the source's label: its name, or its kind and first file
    place: str  # file:line, or file → service / workload → container


@dataclass(frozen=True)
class SourceProblem(Problem):
    """A problem with the label of the source it is in (reports attribute it as they attribute references)."""

    source: str = ""


@dataclass
class Reading:
    """What sources yield: every reference at every place that names it (in order), problems (what cannot be
    warmed, each with its fix) and notes (what yields nothing on purpose, such as a service built from source)."""

    references: list[Yielded] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    def add(self, text: str, config: Config, *, source: str, place: str) -> None:
        """Resolve `text` as named at `place`: a reference to warm, or a problem."""
        resolved = resolve(text, config)
        if resolved.reference is not None:
            self.references.append(Yielded(str(resolved.reference), source, place))
        else:
            self.problems.append(Problem(location=place, value=text, message=str(resolved.problem)))

    def extend(self, other: Reading) -> None:
        """Add what `other` found after what this one found."""
        self.references.extend(other.references)
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)

    def unique(self) -> list[Yielded]:
        """Each reference once, attributed to the first place that names it."""
        seen: dict[str, Yielded] = {}
        for item in self.references:
            seen.setdefault(item.reference, item)
        return list(seen.values())


@dataclass(frozen=True)
class Resolved:
    """A reference that can be warmed (`reference` set) or why not (`problem` with its fix)."""

    reference: ImageReference | None = None
    problem: str | None = None


def resolve(text: str, config: Config) -> Resolved:
    """The upstream reference `text` names (mapped back from the cache when it points there), or the problem."""
    try:
        ref = ImageReference.parse(text)
    except InvalidReference as exc:
        return Resolved(problem=f"not an image reference: {exc.reason}; fix the reference or the variable behind it")
    if not _cached_by_some_rule(ref, config):
        ref = _from_cache(ref, config) or ref
    ref = _canonical(ref)
    if ref.tag is None and ref.digest is not None:
        return Resolved(
            problem=(
                "a digest-only reference: ECR does not cache an image first pulled by digest; name it with its tag "
                f"too ({ref.familiar.split('@')[0]}:<tag>@sha256:...) or list it in warm.images with a tag"
            )
        )
    if ref.tag is None:
        ref = ref.with_tag("latest")  # what docker pull and Kubernetes pull for a reference without a tag
    try:
        config.rule_for(ref).cache_repository(ref)
    except ConfigError as exc:
        reason = exc.problems[0].message if exc.problems else "no rule caches it"
        return Resolved(problem=f"{reason}; or drop it from this source")
    except InvalidReference as exc:
        return Resolved(problem=exc.reason)
    return Resolved(reference=ref)


def _canonical(ref: ImageReference) -> ImageReference:
    """Docker Hub under any of its names (registry-1.docker.io, as OLake's compose default writes it) as docker.io,
    so one image is one warm target whichever way a file spells it."""
    upstream = upstream_for(ref)
    if upstream is None or upstream.key != "docker-hub" or ref.domain == DEFAULT_DOMAIN:
        return ref
    return ImageReference(DEFAULT_DOMAIN, upstream_repository(ref), ref.tag, ref.digest)


def _cached_by_some_rule(ref: ImageReference, config: Config) -> bool:
    return any(rule.caches(ref) for rule in config.rules)


def _from_cache(ref: ImageReference, config: Config) -> ImageReference | None:
    """`ref` mapped back to its upstream when it names a cache repository (`<ecr host>/<prefix>/<path>`)."""
    if not _ECR_HOST.fullmatch(ref.domain.lower()):
        return None
    rule = _rule_by_prefix(ref.path, config)
    if rule is None:
        return None
    rest = ref.path if rule.prefix == ROOT_PREFIX else ref.path[len(rule.prefix) + 1 :]
    if rule.upstream_prefix:
        rest = f"{rule.upstream_prefix}/{rest}"
    host = rule.url or (rule.entry.domains[0] if rule.entry.domains else rule.upstream_url)
    suffix = (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
    try:
        return ImageReference.parse(f"{host}/{rest}{suffix}")
    except InvalidReference:
        return None


def _rule_by_prefix(path: str, config: Config) -> Rule | None:
    named = [rule for rule in config.rules if rule.prefix != ROOT_PREFIX and path.startswith(rule.prefix + "/")]
    if named:
        return max(named, key=lambda rule: len(rule.prefix))
    return next((rule for rule in config.rules if rule.prefix == ROOT_PREFIX), None)
