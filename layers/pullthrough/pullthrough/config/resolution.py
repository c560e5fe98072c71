"""Which rule caches an image: the one rule, or a message that says what to fix (no rule, several, a wrong pin).

Shared by `Config.rule_for` (a valid config, at run time) and the document checks (a config still being fixed, where
a broken rule may be the answer and is reported on its own instead).
"""

from __future__ import annotations

from collections.abc import Sequence

from pullthrough import upstreams
from pullthrough.config.rules import Rule
from pullthrough.reference import ImageReference, upstream_for

__all__ = ["resolve", "scope"]


def resolve(
    ref: ImageReference,
    pin: str | None,
    rules: Sequence[tuple[int, Rule]],
    broken_upstreams: set[str],
    broken_prefixes: set[str],
) -> Rule | str | None:
    """The rule that caches `ref`, a message saying what to fix, or None when a broken rule may be the answer."""
    upstream = upstream_for(ref)
    if upstream is None:
        return _uncacheable(ref)
    if pin is not None:
        return _pinned(ref, pin, rules, broken_prefixes)
    candidates = [rule for _, rule in rules if rule.caches(ref)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        return _ambiguous(ref, candidates)
    if upstream.key in broken_upstreams:
        return None
    return _missing(ref, upstream, rules)


def scope(rule: Rule) -> str:
    """What `rule` caches, for a message: `caches Docker Hub (registry-1.docker.io)`, with its upstream prefix."""
    text = f"caches {rule.entry.title} ({rule.upstream_url})"
    return text + (f" under {rule.upstream_prefix}/ only" if rule.upstream_prefix else "")


def _uncacheable(ref: ImageReference) -> str:
    supported = sorted(u.domains[0] for u in upstreams.CATALOGUE.values() if u.domains)
    return (
        f"ECR pull-through cache cannot cache images from {ref.domain}; it caches {', '.join(supported)}, "
        "<name>.azurecr.io and <account>.dkr.ecr.<region>.amazonaws.com"
    )


def _pinned(
    ref: ImageReference, pin: str, rules: Sequence[tuple[int, Rule]], broken_prefixes: set[str]
) -> Rule | str | None:
    pinned = next((rule for _, rule in rules if rule.prefix == pin), None)
    if pinned is None:
        if pin in broken_prefixes:
            return None
        return f"no rule has prefix {pin!r}; prefixes: {', '.join(rule.prefix for _, rule in rules) or 'none'}"
    candidates = [rule for _, rule in rules if rule.caches(ref)]
    if not pinned.caches(ref):
        hint = f"; rule {candidates[0].prefix!r} does" if len(candidates) == 1 else ""
        return f"rule {pin!r} does not cache {ref.domain}/{ref.path}: it {scope(pinned)}{hint}"
    return pinned


def _ambiguous(ref: ImageReference, candidates: Sequence[Rule]) -> str:
    names = [repr(rule.prefix) for rule in candidates]
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    return (
        f"ambiguous: rules {listed} {'both' if len(names) == 2 else 'all'} cache {ref.domain} images; "
        "set rule: to one of them"
    )


def _missing(ref: ImageReference, upstream: upstreams.Upstream, rules: Sequence[tuple[int, Rule]]) -> str:
    message = f"no rule caches {ref.domain} images; add a rule with upstream: {upstream.key}"
    if upstream.url is None:
        message += f" and url: {ref.domain.lower()}"
    near = [rule for _, rule in rules if rule.upstream == upstream.key]
    if near:
        message += " (" + "; ".join(f"rule {rule.prefix!r} {scope(rule)}" for rule in near) + ")"
    return message
