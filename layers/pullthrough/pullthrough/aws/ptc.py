"""ECR pull-through cache rules and repository creation templates: describe (paginated), create, update, delete,
validate.

The adapter speaks in `RuleSpec` and `TemplateSpec`, the fields Pullthrough manages, normalised so that what the
config asks for and what ECR answers compare equal when they mean the same: prefixes without the trailing `/` ECR
always assumes, every rule without an upstream repository prefix as the `ROOT` ECR reports for it (botocore's
CreatePullThroughCacheRule: "When this field isn't specified, Amazon ECR will use the ROOT"), tags and filters in a
fixed order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsNotFound

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

ROOT = "ROOT"
PULL_THROUGH_CACHE = "PULL_THROUGH_CACHE"


@dataclass(frozen=True)
class RuleSpec:
    """A pull-through cache rule as far as Pullthrough manages it."""

    prefix: str  # ecrRepositoryPrefix without a trailing "/", or ROOT
    upstream_registry: str | None  # ECR's upstreamRegistry key (None when ECR does not say, as for old rules)
    upstream_url: str
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    upstream_prefix: str = ROOT  # upstreamRepositoryPrefix; ROOT (what ECR uses) when the rule names none


@dataclass(frozen=True)
class TemplateSpec:
    """A repository creation template as far as Pullthrough manages it."""

    prefix: str
    applied_for: tuple[str, ...] = (PULL_THROUGH_CACHE,)
    description: str | None = None
    encryption_type: str = "AES256"
    kms_key: str | None = None
    tag_mutability: str = "MUTABLE"
    mutability_exclusions: tuple[str, ...] = ()
    lifecycle_policy: str | None = None
    repository_policy: str | None = None
    resource_tags: tuple[tuple[str, str], ...] = ()
    custom_role_arn: str | None = None


@dataclass(frozen=True)
class Validation:
    """ValidatePullThroughCacheRule's answer: can ECR reach the upstream with the rule's credentials."""

    prefix: str
    is_valid: bool
    failure: str | None


@dataclass(frozen=True)
class Snapshot:
    """Every rule and template of the registry, read in one go."""

    registry_id: str | None
    rules: tuple[RuleSpec, ...]
    templates: tuple[TemplateSpec, ...]


def normalise_prefix(prefix: str) -> str:
    """The prefix as Pullthrough compares it: ECR keeps a trailing `/` when given one, but means the same."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def upstream_prefix_of(upstream_prefix: str | None) -> str:
    """The upstream repository prefix a rule ends up with: ROOT when none is named, whatever the upstream.

    botocore's ECR model (CreatePullThroughCacheRule.upstreamRepositoryPrefix) says ECR uses ROOT when the field is
    not given, and says it for every upstream registry: a rule read back with ROOT and a config that names no prefix
    mean the same rule, or reconcile would see a difference in a field ECR cannot update.
    """
    return normalise_prefix(upstream_prefix) if upstream_prefix else ROOT


def _ecr(region: str | None = None) -> ECRClient:
    return clients.client("ecr", region)


# --- reading -------------------------------------------------------------------------------------------------------


def snapshot(region: str | None = None) -> Snapshot:
    """Every pull-through cache rule and repository creation template of this account and region (or `region`)."""
    registry_id: str | None = None
    rules: list[RuleSpec] = []
    with aws_call("ecr:DescribePullThroughCacheRules", "the registry's pull through cache rules"):
        for page in _ecr(region).get_paginator("describe_pull_through_cache_rules").paginate():
            for rule in page.get("pullThroughCacheRules", []):
                registry_id = registry_id or rule.get("registryId")
                rules.append(_rule(rule))
    templates: list[TemplateSpec] = []
    with aws_call("ecr:DescribeRepositoryCreationTemplates", "the registry's repository creation templates"):
        for template_page in _ecr(region).get_paginator("describe_repository_creation_templates").paginate():
            registry_id = registry_id or template_page.get("registryId")
            templates.extend(_template(t) for t in template_page.get("repositoryCreationTemplates", []))
    return Snapshot(registry_id, tuple(rules), tuple(templates))


def describe_rule(prefix: str) -> RuleSpec | None:
    """The rule with this prefix, or None."""
    try:
        with aws_call("ecr:DescribePullThroughCacheRules", f"rule {prefix}"):
            found = _ecr().describe_pull_through_cache_rules(ecrRepositoryPrefixes=[prefix])
    except AwsNotFound:
        return None
    rules = [_rule(rule) for rule in found.get("pullThroughCacheRules", [])]
    return next((rule for rule in rules if rule.prefix == normalise_prefix(prefix)), None)


def describe_template(prefix: str) -> TemplateSpec | None:
    """The template with this prefix, or None."""
    try:
        with aws_call("ecr:DescribeRepositoryCreationTemplates", f"template {prefix}"):
            found = _ecr().describe_repository_creation_templates(prefixes=[prefix])
    except AwsNotFound:
        return None
    templates = [_template(t) for t in found.get("repositoryCreationTemplates", [])]
    return next((t for t in templates if t.prefix == normalise_prefix(prefix)), None)


def _rule(shape: Mapping[str, Any]) -> RuleSpec:
    registry = shape.get("upstreamRegistry")
    return RuleSpec(
        prefix=normalise_prefix(str(shape["ecrRepositoryPrefix"])),
        upstream_registry=registry,
        upstream_url=str(shape.get("upstreamRegistryUrl", "")),
        credential_arn=shape.get("credentialArn") or None,
        custom_role_arn=shape.get("customRoleArn") or None,
        upstream_prefix=upstream_prefix_of(shape.get("upstreamRepositoryPrefix") or None),
    )


def _template(shape: Mapping[str, Any]) -> TemplateSpec:
    encryption = shape.get("encryptionConfiguration") or {}
    filters = shape.get("imageTagMutabilityExclusionFilters") or []
    return TemplateSpec(
        prefix=normalise_prefix(str(shape["prefix"])),
        applied_for=tuple(sorted(shape.get("appliedFor") or ())),
        description=shape.get("description") or None,
        encryption_type=str(encryption.get("encryptionType") or "AES256"),
        kms_key=encryption.get("kmsKey") or None,
        tag_mutability=str(shape.get("imageTagMutability") or "MUTABLE"),
        mutability_exclusions=tuple(sorted(str(f.get("filter", "")) for f in filters)),
        lifecycle_policy=shape.get("lifecyclePolicy") or None,
        repository_policy=shape.get("repositoryPolicy") or None,
        resource_tags=tags_of(shape.get("resourceTags") or ()),
        custom_role_arn=shape.get("customRoleArn") or None,
    )


def tags_of(tags: Iterable[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    """ECR's [{"Key": k, "Value": v}] as sorted pairs."""
    return tuple(sorted((str(tag["Key"]), str(tag.get("Value", ""))) for tag in tags))


# --- rules ---------------------------------------------------------------------------------------------------------


def create_rule(spec: RuleSpec) -> None:
    """CreatePullThroughCacheRule; AwsAlreadyExists when a rule has this prefix."""
    params: dict[str, Any] = {"ecrRepositoryPrefix": spec.prefix, "upstreamRegistryUrl": spec.upstream_url}
    if spec.upstream_registry:
        params["upstreamRegistry"] = spec.upstream_registry
    if spec.credential_arn:
        params["credentialArn"] = spec.credential_arn
    if spec.custom_role_arn:
        params["customRoleArn"] = spec.custom_role_arn
    # ROOT is what ECR uses when the field is left out; naming it would be refused for a ROOT ecr prefix.
    if spec.upstream_prefix != ROOT:
        params["upstreamRepositoryPrefix"] = spec.upstream_prefix
    with aws_call("ecr:CreatePullThroughCacheRule", f"rule {spec.prefix}"):
        _ecr().create_pull_through_cache_rule(**params)


def update_rule(prefix: str, *, credential_arn: str | None = None, custom_role_arn: str | None = None) -> None:
    """UpdatePullThroughCacheRule: point the rule at another secret and/or role; AwsNotFound without the rule."""
    params: dict[str, Any] = {"ecrRepositoryPrefix": prefix}
    if credential_arn:
        params["credentialArn"] = credential_arn
    if custom_role_arn:
        params["customRoleArn"] = custom_role_arn
    with aws_call("ecr:UpdatePullThroughCacheRule", f"rule {prefix}"):
        _ecr().update_pull_through_cache_rule(**params)


def delete_rule(prefix: str, region: str | None = None) -> None:
    """DeletePullThroughCacheRule (the cache repositories stay); AwsNotFound without the rule."""
    with aws_call("ecr:DeletePullThroughCacheRule", f"rule {prefix}"):
        _ecr(region).delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)


def validate_rule(prefix: str) -> Validation:
    """ValidatePullThroughCacheRule: ECR reaches the upstream and authenticates with the rule's secret."""
    with aws_call("ecr:ValidatePullThroughCacheRule", f"rule {prefix}"):
        answer = _ecr().validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    failure = answer.get("failure") or None
    return Validation(prefix=prefix, is_valid=bool(answer.get("isValid")), failure=failure)


# --- templates -----------------------------------------------------------------------------------------------------


def template_params(spec: TemplateSpec) -> dict[str, Any]:
    """The Create/UpdateRepositoryCreationTemplate parameters for a spec (fields it leaves unset are left out)."""
    encryption: dict[str, str] = {"encryptionType": spec.encryption_type}
    if spec.kms_key:
        encryption["kmsKey"] = spec.kms_key
    params: dict[str, Any] = {
        "prefix": spec.prefix,
        "appliedFor": list(spec.applied_for),
        "encryptionConfiguration": encryption,
        "imageTagMutability": spec.tag_mutability,
        "resourceTags": [{"Key": key, "Value": value} for key, value in spec.resource_tags],
        # An update replaces only the fields it names: an empty description is how one is removed.
        "description": spec.description or "",
    }
    if spec.mutability_exclusions:
        params["imageTagMutabilityExclusionFilters"] = [
            {"filterType": "WILDCARD", "filter": value} for value in spec.mutability_exclusions
        ]
    if spec.lifecycle_policy:
        params["lifecyclePolicy"] = spec.lifecycle_policy
    if spec.repository_policy:
        params["repositoryPolicy"] = spec.repository_policy
    if spec.custom_role_arn:
        params["customRoleArn"] = spec.custom_role_arn
    return params


def create_template(spec: TemplateSpec) -> None:
    """CreateRepositoryCreationTemplate; AwsAlreadyExists when a template has this prefix."""
    params = template_params(spec)
    if not spec.description:
        del params["description"]
    with aws_call("ecr:CreateRepositoryCreationTemplate", f"template {spec.prefix}"):
        _ecr().create_repository_creation_template(**params)


def update_template(spec: TemplateSpec) -> None:
    """UpdateRepositoryCreationTemplate with every managed field; AwsNotFound without the template."""
    with aws_call("ecr:UpdateRepositoryCreationTemplate", f"template {spec.prefix}"):
        _ecr().update_repository_creation_template(**template_params(spec))


def delete_template(prefix: str, region: str | None = None) -> None:
    """DeleteRepositoryCreationTemplate (repositories it created keep their settings); AwsNotFound without it."""
    with aws_call("ecr:DeleteRepositoryCreationTemplate", f"template {prefix}"):
        _ecr(region).delete_repository_creation_template(prefix=prefix)


def policy_equal(left: str | None, right: str | None) -> bool:
    """Whether two policy documents say the same (ECR may store them reformatted)."""
    if not left or not right:
        return not left and not right
    try:
        return bool(json.loads(left) == json.loads(right))
    except ValueError:
        return left.strip() == right.strip()
