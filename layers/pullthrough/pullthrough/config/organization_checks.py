"""Checks of the `organization` section against the rest of the document: each cached prefix is a rule's, the hub is
not a member of itself, no account and region is claimed twice, members stay in the hub's partition, and each member
warm image resolves to a cached rule. Run by pullthrough.config.checks on whatever parts of the document are valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pullthrough.config.fields import did_you_mean
from pullthrough.config.organization import Member, Organization, partition_of, statement_sid
from pullthrough.config.resolution import resolve
from pullthrough.config.rules import Rule
from pullthrough.reference import ROOT_PREFIX

__all__ = ["check_organization"]

Report = Callable[[tuple[Any, ...], Any, str], None]
_AT = ("organization",)


def check_organization(
    org: Organization,
    rules: Sequence[tuple[int, Rule]],
    broken: tuple[set[str], set[str]],
    report: Report,
) -> None:
    """Report (location, value, message) for each problem of `org` against the valid `rules`; `broken` holds the
    upstreams and prefixes of broken rules (a problem that may be theirs waits for their own)."""
    for index, path in enumerate(org.paths):
        if not path.startswith(org.id + "/"):
            report((*_AT, "paths", index), path, f"outside organization {org.id}: start the path with {org.id}/")
    cached = _check_cache(org, rules, broken[1], report)
    _check_sids(org, cached, report)
    _check_members(org, report)
    for index, member in enumerate(org.members):
        _check_warm(index, member, rules, broken, cached, report)


def _check_cache(
    org: Organization, rules: Sequence[tuple[int, Rule]], broken_prefixes: set[str], report: Report
) -> list[str]:
    prefixes = [rule.prefix for _, rule in rules]
    if org.cache is None:
        cached = [prefix for prefix in prefixes if prefix != ROOT_PREFIX]
        if not cached and not broken_prefixes:
            report(_AT, "no cache", "no rule for members to cache: add a rule with a prefix (not ROOT) to rules")
        return cached
    for index, prefix in enumerate(org.cache):
        if prefix == ROOT_PREFIX:
            report(
                (*_AT, "cache", index),
                prefix,
                "members cannot cache the ROOT rule (ECR refuses an upstream prefix for ROOT); name a prefixed rule",
            )
        elif prefix not in prefixes and prefix not in broken_prefixes:
            valid = ", ".join(p for p in prefixes if p != ROOT_PREFIX) or "none"
            report(
                (*_AT, "cache", index),
                prefix,
                f"no rule has this prefix{did_you_mean(prefix, prefixes)}; cache names rules' prefixes: {valid}",
            )
    return [prefix for prefix in org.cache if prefix in prefixes and prefix != ROOT_PREFIX]


def _check_sids(org: Organization, cached: list[str], report: Report) -> None:
    first: dict[str, str] = {}
    for prefix in cached:
        sid = statement_sid(prefix)
        if sid in first:
            report(
                (*_AT, "cache"),
                prefix,
                f"prefixes {first[sid]!r} and {prefix!r} give the same hub policy statement id {sid}: "
                "rename one of the rules' prefixes",
            )
        first.setdefault(sid, prefix)


def _check_members(org: Organization, report: Report) -> None:
    names: dict[str, int] = {}
    claimed: dict[tuple[str, str], str] = {}
    hub = org.hub
    for index, member in enumerate(org.members):
        at = (*_AT, "members", index)
        if member.name in names:
            report((*at, "name"), member.name, f"duplicate: members[{names[member.name]}] has this name; rename one")
        names.setdefault(member.name, index)
        for spot, region in enumerate(member.regions):
            if partition_of(region) != partition_of(hub.region):
                report(
                    (*at, "regions", spot),
                    region,
                    f"ECR to ECR stays in one partition: the hub's region {hub.region} is in "
                    f"{partition_of(hub.region)}, this one in {partition_of(region)}; list regions of "
                    f"{partition_of(hub.region)}",
                )
        for spot, account in enumerate(member.accounts):
            _check_account(member, (*at, "accounts", spot), account, (hub.account, hub.region), claimed, report)


def _check_account(
    member: Member,
    at: tuple[Any, ...],
    account: str,
    hub: tuple[str, str],
    claimed: dict[tuple[str, str], str],
    report: Report,
) -> None:
    if account == hub[0] and hub[1] in member.regions:
        report(
            at,
            account,
            f"the hub account in the hub region {hub[1]} holds the rules members cache from; remove {hub[1]} "
            "from this member's regions or the hub account from its accounts",
        )
    for region in member.regions:
        other = claimed.get((account, region))
        if other is not None and other != member.name:
            report(
                at,
                account,
                f"member {other!r} already covers this account in {region}: an account and region belong to one member",
            )
            return
        claimed.setdefault((account, region), member.name)


def _check_warm(
    index: int,
    member: Member,
    rules: Sequence[tuple[int, Rule]],
    broken: tuple[set[str], set[str]],
    cached: list[str],
    report: Report,
) -> None:
    for spot, image in enumerate(member.warm):
        at = (*_AT, "members", index, "warm", spot)
        resolved = resolve(image.image, image.rule, rules, *broken)
        if isinstance(resolved, str):
            report((*at, "rule") if image.rule else at, image.rule or str(image.image), resolved)
        elif resolved is not None and resolved.prefix not in cached:
            report(
                at,
                str(image.image),
                f"its rule {resolved.prefix!r} is not cached by members (organization.cache: {', '.join(cached)}); "
                f"add {resolved.prefix} to organization.cache or warm it in the hub (warm.images)",
            )
