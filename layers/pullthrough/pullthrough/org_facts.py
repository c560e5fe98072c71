"""What template.yaml's StackSet and templates/member.yaml need from the config's `organization` section.

The StackSet (template.yaml, MemberStackSet) deploys templates/member.yaml to every member target and region. Both
are fixed expansions (a service-managed StackSet takes no macro, so no Fn::ForEach): ORG_PREFIX_SLOTS cached prefixes
and ORG_MEMBER_SLOTS member groups. CloudFormation conditions cannot read a custom resource's answer ("Conditions":
only parameters and other conditions), so how many member groups exist is the stack parameter OrgMembers, and
config_facts fails the deploy when it disagrees with the config: the deploy, not a silent partial StackSet, says so.

Each member group's DeploymentTargets come out as three facts that are never empty, because an empty list has no
CloudFormation spelling here (Fn::Split of "" is [""], and AWS::NoValue needs a condition). AWS's StackSets
DeploymentTargets: with service-managed permissions OrganizationalUnitIds is the target and AccountFilterType combines
it with Accounts (INTERSECTION, DIFFERENCE, UNION, NONE):
- units only: the units, DIFFERENCE with the hub's own account (the hub caches from its upstreams, not from itself);
- accounts only: the organisation's root (OrgRootId), INTERSECTION with the accounts;
- both: the units, UNION with the accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pullthrough.config import Config
from pullthrough.config.organization import Member, Organization
from pullthrough.config.rules import Rule
from pullthrough.errors import ConfigError, Problem

__all__ = [
    "ORG_MEMBER_SLOTS",
    "ORG_PREFIX_SLOTS",
    "CachedPrefix",
    "MemberGroup",
    "OrgFacts",
    "cached_prefix",
    "check_deployment",
    "derive_org",
]

ORG_PREFIX_SLOTS = 10
ORG_MEMBER_SLOTS = 6
CONFIG = "config/pullthrough.yaml"


@dataclass(frozen=True)
class MemberGroup:
    """One StackInstancesGroup of the StackSet: a member's targets, regions and parameter overrides."""

    name: str
    regions: tuple[str, ...]
    organizational_units: tuple[str, ...]  # never empty (see the module's note)
    accounts: tuple[str, ...]  # never empty
    account_filter: str  # NONE | INTERSECTION | DIFFERENCE | UNION
    warm_images: int
    needs_root: bool = False  # accounts only: OrganizationalUnitIds is the root, given by the OrgRootId parameter

    def fact(self, root: str) -> str:
        """The group as one ConfigFacts attribute: name;warm;filter;units;accounts;regions."""
        units = self.organizational_units or (root,)
        lists = (",".join(units), ",".join(self.accounts), ",".join(self.regions))
        return ";".join((self.name, str(self.warm_images), self.account_filter, *lists))


@dataclass(frozen=True)
class CachedPrefix:
    """A cached hub prefix and the repository creation settings members get for it: the hub rule's template's tag
    mutability and lifecycle. Encryption is AES256 in members: a KMS key needs a repository creation role in the
    member account (the ECR guide), and the hub's key is the hub's."""

    prefix: str
    tag_mutability: str = "MUTABLE"
    keep_last_tags: int = 0  # 0: no such lifecycle rule
    expire_untagged_days: int = 0

    def fact(self) -> str:
        """prefix;mutability;keep;expire, one entry of OrgPrefixes."""
        fields = (self.tag_mutability, str(self.keep_last_tags), str(self.expire_untagged_days))
        return ";".join((self.prefix, *fields)) if self.prefix else ";MUTABLE;0;0"


def cached_prefix(rule: Rule) -> CachedPrefix:
    """A hub rule as members cache it."""
    template = rule.template
    if template is None:
        return CachedPrefix(rule.prefix)
    lifecycle = template.lifecycle
    return CachedPrefix(
        rule.prefix,
        template.tag_mutability,
        (lifecycle.keep_last_tags or 0) if lifecycle else 0,
        (lifecycle.expire_untagged_days or 0) if lifecycle else 0,
    )


@dataclass(frozen=True)
class OrgFacts:
    """The organisation's facts; `enabled` False (and nothing else set) without an organization section."""

    enabled: bool = False
    org_id: str = ""  # the organization section's id: the condition on the hub's sts:AssumeRole of members' roles
    hub_account: str = ""
    hub_region: str = ""
    prefixes: tuple[CachedPrefix, ...] = ()
    members: tuple[MemberGroup, ...] = ()

    def attributes(self, root: str = "") -> dict[str, str]:
        """ConfigFacts' Data for the organisation: fixed keys, padded slots (template.yaml selects by index with
        Fn::Select and Fn::Split). Few keys, because every key's name counts against CloudFormation's 4096 bytes:
        OrgHub "account,region"; OrgPrefixes ORG_PREFIX_SLOTS entries "prefix;mutability;keep;expire";
        OrgMember<N> "name;warm entries;account filter;units;accounts;regions"
        with comma-separated lists. `root` (the OrgRootId parameter) is the unit of members that list accounts only."""
        data = {
            "OrgId": self.org_id,
            "OrgHub": f"{self.hub_account},{self.hub_region}",
            "OrgPrefixes": ",".join(
                p.fact() for p in self.prefixes + (CachedPrefix(""),) * (ORG_PREFIX_SLOTS - len(self.prefixes))
            ),
        }
        for n in range(1, ORG_MEMBER_SLOTS + 1):
            group = self.members[n - 1] if n <= len(self.members) else None
            data[f"OrgMember{n}"] = group.fact(root) if group else ";0;NONE;;;"
        return data


def derive_org(config: Config) -> OrgFacts:
    """The organisation's facts of a validated config; ConfigError when the fixed expansions cannot hold it."""
    org: Organization | None = config.organization
    if org is None:
        return OrgFacts()
    problems: list[Problem] = []
    rules = org.cached_rules(config)
    prefixes = tuple(rule.prefix for rule in rules)
    if len(prefixes) > ORG_PREFIX_SLOTS:
        problems.append(
            _problem(
                "organization.cache",
                ", ".join(prefixes),
                f"members cache at most {ORG_PREFIX_SLOTS} prefixes (templates/member.yaml's slots); "
                "list fewer in organization.cache",
            )
        )
    if len(org.members) > ORG_MEMBER_SLOTS:
        problems.append(
            _problem(
                "organization.members",
                str(len(org.members)),
                f"the StackSet holds at most {ORG_MEMBER_SLOTS} members (template.yaml's groups); "
                "merge members that share regions (a member may list several units and accounts)",
            )
        )
    if problems:
        raise ConfigError(problems)
    return OrgFacts(
        enabled=True,
        org_id=org.id,
        hub_account=org.hub.account,
        hub_region=org.hub.region,
        prefixes=tuple(cached_prefix(rule) for rule in rules),
        members=tuple(_group(member, org.hub.account) for member in org.members),
    )


def _group(member: Member, hub_account: str) -> MemberGroup:
    units, accounts = tuple(member.organizational_units), tuple(member.accounts)
    warm = len(member.warm)
    if units and accounts:
        return MemberGroup(member.name, tuple(member.regions), units, accounts, "UNION", warm)
    if units:
        return MemberGroup(member.name, tuple(member.regions), units, (hub_account,), "DIFFERENCE", warm)
    return MemberGroup(member.name, tuple(member.regions), (), accounts, "INTERSECTION", warm, needs_root=True)


def _problem(field: str, value: str, message: str) -> Problem:
    return Problem(f"{CONFIG}: {field}", value, message)


def check_deployment(org: OrgFacts, properties: Mapping[str, Any]) -> None:
    """The stack's parameters against the config (ConfigFacts' properties OrgMembers, OrgRootId, Account, Region):
    ConfigError naming the parameter, its value and the fix, before CloudFormation touches the StackSet."""
    problems: list[Problem] = []
    count = str(properties.get("OrgMembers", "0"))
    wanted = str(len(org.members))
    if count != wanted:
        fix = (
            f"deploy with --parameter-overrides OrgMembers={wanted} (the organization section lists {wanted} members)"
            if org.enabled
            else "deploy with OrgMembers=0, or add the organization section to the config"
        )
        problems.append(Problem("stack parameter OrgMembers", count, f"it must match the config: {fix}"))
    if org.enabled:
        here = (str(properties.get("Account", "")), str(properties.get("Region", "")))
        if here != (org.hub_account, org.hub_region):
            problems.append(
                _problem(
                    "organization.hub",
                    f"{org.hub_account} {org.hub_region}",
                    f"this stack deploys in {here[0]} {here[1]}: deploy the hub's stack in the hub's "
                    "account and region (the management or delegated administrator account), or "
                    "name this account and region as the hub",
                )
            )
        root = str(properties.get("OrgRootId", ""))
        needing = [group.name for group in org.members if group.needs_root]
        if needing and not root:
            problems.append(
                Problem(
                    "stack parameter OrgRootId",
                    "(empty)",
                    f"members {', '.join(needing)} list accounts without organizational_units, and a "
                    "service-managed StackSet targets accounts through a unit: deploy with "
                    "--parameter-overrides OrgRootId=r-xxxx (aws organizations list-roots), or give "
                    "those members their organizational_units",
                )
            )
    if problems:
        raise ConfigError(problems)
