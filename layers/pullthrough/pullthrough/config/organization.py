"""The `organization` section: one hub account and region whose rules face the upstreams, and member targets
(organisational units or accounts, in regions) that cache the hub's prefixes through ECR-to-ECR rules; and what the
section derives for every other part (the member rules, the hub's registry policy statements, the member role).

AWS's guide "Setting up permissions for cross-account ECR to ECR PTC" (the ECR User Guide, pull-through-cache-private)
sets the shape: each member's rule has upstreamRegistry ecr, upstreamRegistryUrl <hub>.dkr.ecr.<hub region>.<suffix>,
upstreamRepositoryPrefix and a customRoleArn (a role in the member ECR assumes as pullthroughcache.ecr.amazonaws.com);
the hub's registry policy lets the organisation's principals BatchGetImage, GetDownloadUrlForLayer and
BatchImportUpstreamImage on the cached repositories. Checks across the document (cache names a rule, the hub is not
a member of itself) are pullthrough.config.organization_checks'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from pullthrough.config import fields
from pullthrough.config.fields import Model, did_you_mean
from pullthrough.config.patterns import REPO_PREFIX
from pullthrough.config.rules import Rule
from pullthrough.config.schema import hint
from pullthrough.config.templates import Template
from pullthrough.config.warm import WarmImageField
from pullthrough.reference import ROOT_PREFIX

if TYPE_CHECKING:
    from pullthrough.config.document import Config

__all__ = [
    "MEMBER_ROLE_PREFIX",
    "ORG_ACTIONS",
    "REGIONS",
    "SID_PREFIX",
    "Hub",
    "Member",
    "MemberRule",
    "Organization",
    "member_role_name",
    "partition_of",
    "registry_host",
    "statement_sid",
]

ORG_ID = r"o-[a-z0-9]{10,32}"  # AWS Organizations API: Organization.Id
OU_ID = r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}"  # AWS Organizations API: OrganizationalUnit.Id
ACCOUNT = r"[0-9]{12}"
# aws:PrincipalOrgPaths (IAM global condition keys): o-id/r-id/ou-id/.../ , a trailing * matches everything below.
ORG_PATH = r"o-[a-z0-9]{10,32}/(?:(?:r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})/)*\*?"
MEMBER_NAME = r"[a-z0-9-]{1,40}"
SID_PREFIX = "PullthroughOrg"  # a registry policy statement whose Sid starts so is Pullthrough's; reconcile owns it
MEMBER_ROLE_PREFIX = "pullthrough-org-ptc-"
# What the hub lets members do on a cached repository, and nothing more (the ECR guide's upstream registry policy).
ORG_ACTIONS = ("ecr:BatchGetImage", "ecr:BatchImportUpstreamImage", "ecr:GetDownloadUrlForLayer")
# The regions ECR serves, per partition: botocore's endpoint data (botocore/data/endpoints.json,
# Session.get_available_regions("ecr", partition)) when this was written. A region AWS opens later needs this list.
REGIONS = {
    "aws": frozenset({
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
        "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
        "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1",
        "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
        "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    }),
    "aws-cn": frozenset({"cn-north-1", "cn-northwest-1"}),
    "aws-us-gov": frozenset({"us-gov-east-1", "us-gov-west-1"}),
}  # fmt: skip
_DNS_SUFFIX = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}
_ALL_REGIONS = frozenset().union(*REGIONS.values())


def partition_of(region: str) -> str:
    """The partition of a region ECR serves: aws, aws-cn or aws-us-gov (botocore's endpoint data)."""
    return next((name for name, regions in REGIONS.items() if region in regions), "aws")


def registry_host(account: str, region: str) -> str:
    """`<account>.dkr.ecr.<region>.<dns suffix>`: the registry a member's rule names as upstreamRegistryUrl."""
    return f"{account}.dkr.ecr.{region}.{_DNS_SUFFIX[partition_of(region)]}"


def member_role_name(region: str) -> str:
    """The role ECR assumes in a member account to import from the hub: one per region (a role is global, the
    member template is deployed per region, so the region keeps the stack instances' roles apart)."""
    return f"{MEMBER_ROLE_PREFIX}{region}"


def statement_sid(prefix: str) -> str:
    """The hub policy statement's Sid for a cached prefix: PullthroughOrg + the prefix in PascalCase
    (docker-hub -> PullthroughOrgDockerHub; a Sid holds letters and digits only)."""
    return SID_PREFIX + "".join(part[:1].upper() + part[1:] for part in re.split(r"[^a-z0-9]+", prefix) if part)


def _region(value: str) -> str:
    if value not in _ALL_REGIONS:
        raise ValueError(
            f"not a region ECR serves{did_you_mean(value, _ALL_REGIONS)}; give one like us-east-1 or eu-west-1 "
            "(botocore's endpoint data lists them)"
        )
    return value


def _unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen = {value for value in values if values.count(value) > 1}
    if seen:
        raise ValueError(f"{what} {', '.join(sorted(seen))} listed twice; list each once")
    return values


def _account_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            'YAML read this as a number (which drops leading zeros); write the 12 digits in quotes, like "111122223333"'
        )
    return value


Account = Annotated[
    str,
    BeforeValidator(_account_text),
    AfterValidator(
        lambda v: fields.must_match(v, ACCOUNT, 'an AWS account id is 12 digits, in quotes: "111122223333"')
    ),
    hint(pattern=f"^{ACCOUNT}$"),
]
OrgPath = Annotated[
    str,
    AfterValidator(
        lambda v: fields.must_match(
            v, ORG_PATH, "an aws:PrincipalOrgPaths entry is o-<org>/r-<root>/ou-<unit>/ (or o-<org>/* for everyone)"
        )
    ),
    hint(pattern=f"^{ORG_PATH}$", examples=["o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"]),
]
Region = Annotated[str, AfterValidator(_region), hint(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$", examples=["us-east-1"])]
OrganizationalUnit = Annotated[
    str,
    AfterValidator(
        lambda v: fields.must_match(
            v, OU_ID, "an organisational unit id is ou-<root part>-<8 to 32>, like ou-ab12-11111111"
        )
    ),
    hint(pattern=f"^{OU_ID}$"),
]


class Hub(Model):
    """The account and region whose rules face the upstreams; members import from its registry."""

    account: Account = Field(description="The hub's AWS account id (12 digits, in quotes).")
    region: Region = Field(description="The hub's region: where its rules and registry policy live.")

    @property
    def registry(self) -> str:
        """The hub's registry host, every member rule's upstreamRegistryUrl."""
        return registry_host(self.account, self.region)


class Member(Model):
    """Member targets: accounts and/or organisational units (every account in them), each in every listed region."""

    name: Annotated[
        str, AfterValidator(lambda v: fields.must_match(v, MEMBER_NAME, "1 to 40 lower-case letters, digits or '-'"))
    ] = Field(description="A label for reports and the CLI; unique among members.", examples=["prod-eu"])
    organizational_units: Annotated[
        tuple[OrganizationalUnit, ...], AfterValidator(lambda v: _unique(v, "organisational unit"))
    ] = Field((), description="StackSet targets: every account in these organisational units (and those added later).")
    accounts: Annotated[tuple[Account, ...], AfterValidator(lambda v: _unique(v, "account"))] = Field(
        (), description="StackSet targets: these accounts (12 digits each, in quotes)."
    )
    regions: Annotated[tuple[Region, ...], AfterValidator(lambda v: _unique(v, "region"))] = Field(
        min_length=1, description="The regions each target account caches the hub's prefixes in."
    )
    warm: tuple[WarmImageField, ...] = Field(
        (),
        description=(
            "Images to keep warm in every account and region of this member (the same entries as warm.images), so "
            "a region is warm before its first pull; each must resolve to a cached rule."
        ),
    )

    @model_validator(mode="after")
    def _targets(self) -> Member:
        if not self.organizational_units and not self.accounts:
            raise ValueError(
                f'member {self.name!r} targets nothing: give accounts ("444455556666") and/or organizational_units '
                "(ou-ab12-11111111)"
            )
        return self


@dataclass(frozen=True)
class MemberRule:
    """One ECR-to-ECR rule a member account gets in one region, from the hub's prefix `ecr_repository_prefix`.

    `account` is None for an organisational unit's accounts, known only when the StackSet deploys: then
    `custom_role_arn` names the account as the member template does, ${AWS::AccountId}; `for_account` fills it in.
    """

    member: str
    account: str | None
    organizational_unit: str | None
    region: str
    ecr_repository_prefix: str
    upstream_registry_url: str
    upstream_repository_prefix: str
    custom_role_arn: str
    template: Template | None = None  # the hub rule's repository creation template, reused in the member
    upstream_registry: str = "ecr"

    def for_account(self, account: str) -> MemberRule:
        """This rule in `account` (one of an organisational unit's accounts)."""
        return replace(self, account=account, custom_role_arn=role_arn(account, self.region))

    def as_rule(self) -> Rule:
        """The rule as the config models it (upstream ecr, url, upstream_prefix, custom_role_arn), for a member
        account that is known: what the member's reconcile or the sandbox creates."""
        if self.account is None:
            raise ValueError("an organisational unit's rule needs its account: call for_account(account) first")
        return Rule(
            prefix=self.ecr_repository_prefix,
            upstream="ecr",
            url=self.upstream_registry_url,
            upstream_prefix=self.upstream_repository_prefix,
            custom_role_arn=self.custom_role_arn,
            template=self.template,
        )


def role_arn(account: str, region: str) -> str:
    """The member role's ARN in `account` for `region` (the rule's customRoleArn)."""
    return f"arn:{partition_of(region)}:iam::{account}:role/{member_role_name(region)}"


class Organization(Model):
    """An organisation of accounts caching one hub's prefixes (ECR to ECR), deployed by a StackSet."""

    id: Annotated[
        str,
        AfterValidator(
            lambda v: fields.must_match(
                v, ORG_ID, "an organization id is o- and 10 to 32 lower-case letters or digits, like o-a1b2c3d4e5"
            )
        ),
    ] = Field(
        description="The AWS Organizations id: the hub's registry policy allows principals of this aws:PrincipalOrgID.",
        json_schema_extra={"pattern": f"^{ORG_ID}$"},
    )
    paths: Annotated[tuple[OrgPath, ...], AfterValidator(lambda v: _unique(v, "path"))] = Field(
        (),
        description=(
            "Optional aws:PrincipalOrgPaths entries (o-.../r-.../ou-.../, a trailing * for everything below) that "
            "narrow who may pull from the hub; left out, the whole organisation may."
        ),
    )
    hub: Hub = Field(description="The account and region whose rules face the upstreams.")
    cache: Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(lambda v: _unique(v, "prefix"))] | None = (
        Field(
            None,
            description="The hub rule prefixes members cache (each a rule in rules); left out, every rule but ROOT.",
            json_schema_extra={"items": {"pattern": f"^{REPO_PREFIX}$"}},
        )
    )
    members: tuple[Member, ...] = Field(min_length=1, description="Who caches the hub's prefixes, and where.")

    def cached_rules(self, config: Config) -> list[Rule]:
        """The hub rules members cache: those `cache` names, in its order; or every rule but ROOT."""
        by_prefix = {rule.prefix: rule for rule in config.rules}
        if self.cache is None:
            return [rule for rule in config.rules if rule.prefix != ROOT_PREFIX]
        return [by_prefix[prefix] for prefix in self.cache if prefix in by_prefix]

    def member_rules(self, config: Config) -> list[MemberRule]:
        """Every rule every member target gets: per member, target (account or organisational unit), region and
        cached prefix P: ecr_repository_prefix P, upstream ecr at the hub's registry, upstream prefix P, and the
        member role of that account and region."""
        result = []
        for member in self.members:
            targets: list[tuple[str | None, str | None]] = [(account, None) for account in member.accounts]
            targets += [(None, unit) for unit in member.organizational_units]
            for account, unit in targets:
                for region in member.regions:
                    arn = role_arn(account or "${AWS::AccountId}", region)
                    result += [
                        MemberRule(
                            member=member.name,
                            account=account,
                            organizational_unit=unit,
                            region=region,
                            ecr_repository_prefix=rule.prefix,
                            upstream_registry_url=self.hub.registry,
                            upstream_repository_prefix=rule.prefix,
                            custom_role_arn=arn,
                            template=rule.template,
                        )
                        for rule in self.cached_rules(config)
                    ]
        return result

    def registry_policy_statements(self, config: Config, partition: str = "aws") -> list[dict[str, Any]]:
        """The hub's registry policy statements: one per cached prefix, allowing the organisation's principals (and,
        with paths, only those under them) the three import actions on that prefix's repositories, nothing more."""
        condition: dict[str, Any] = {"StringEquals": {"aws:PrincipalOrgID": self.id}}
        if self.paths:
            condition["ForAnyValue:StringLike"] = {"aws:PrincipalOrgPaths": list(self.paths)}
        return [
            {
                "Sid": statement_sid(rule.prefix),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": list(ORG_ACTIONS),
                "Resource": f"arn:{partition}:ecr:{self.hub.region}:{self.hub.account}:repository/{rule.prefix}/*",
                "Condition": condition,
            }
            for rule in self.cached_rules(config)
        ]

    def targets(self) -> Iterable[tuple[Member, str, str]]:
        """Each (member, account, region) of the accounts members name (organisational units' accounts are known
        only to AWS Organizations)."""
        for member in self.members:
            for account in member.accounts:
                for region in member.regions:
                    yield member, account, region
