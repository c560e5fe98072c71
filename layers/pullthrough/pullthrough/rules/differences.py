"""Field by field: what differs between the config's rule or template and the account's, as lines people read.

Separate from the diff, which decides what to do with a difference (update, replace, conflict) the same way for
rules and templates: this module knows ECR's fields, which of them an update can change, and how each is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pullthrough.aws import ptc
from pullthrough.aws.ptc import RuleSpec, TemplateSpec
from pullthrough.rules.desired import DesiredRule

__all__ = ["rule_differences", "template_differences", "template_settings"]


def rule_differences(want: DesiredRule, have: RuleSpec) -> tuple[list[str], list[str]]:
    """What differs: (fields ECR cannot update, fields UpdatePullThroughCacheRule can change)."""
    spec = want.spec
    immutable: list[str] = []
    mutable: list[str] = []
    if have.upstream_registry and have.upstream_registry != spec.upstream_registry:
        immutable.append(f"upstreamRegistry: {have.upstream_registry} -> {spec.upstream_registry}")
    if have.upstream_url != spec.upstream_url:
        immutable.append(f"upstreamRegistryUrl: {have.upstream_url} -> {spec.upstream_url}")
    if have.upstream_prefix != spec.upstream_prefix:
        immutable.append(f"upstreamRepositoryPrefix: {have.upstream_prefix} -> {spec.upstream_prefix}")
    _credential_difference(want, have, immutable, mutable)
    if spec.custom_role_arn is None:
        if have.custom_role_arn is not None:
            immutable.append(f"customRoleArn: {have.custom_role_arn} -> none (ECR cannot take a rule's role away)")
    elif spec.custom_role_arn != have.custom_role_arn:
        mutable.append(f"customRoleArn: {have.custom_role_arn or 'none'} -> {spec.custom_role_arn}")
    return immutable, mutable


def _credential_difference(want: DesiredRule, have: RuleSpec, immutable: list[str], mutable: list[str]) -> None:
    spec = want.spec
    if want.secret is None:
        if have.credential_arn is not None:
            immutable.append(f"credentialArn: {have.credential_arn} -> none (ECR cannot take a rule's secret away)")
    elif spec.credential_arn is None:
        mutable.append(f"credentialArn: {have.credential_arn or 'none'} -> secret {want.secret} (not found)")
    elif spec.credential_arn != have.credential_arn:
        mutable.append(f"credentialArn: {have.credential_arn or 'none'} -> {spec.credential_arn}")


def template_differences(want: TemplateSpec, have: TemplateSpec) -> tuple[list[str], list[str]]:
    """What differs, and which of those fields only a delete and create can remove."""
    differences = [f"{name}: {_show(now)} -> {_show(wanted)}" for name, now, wanted in _setting_differences(want, have)]
    clears: list[str] = []
    for name, now, wanted, cleared in _clearable_differences(want, have):
        differences.append(f"{name}: {_show(now)} -> {_show(wanted)}")
        if cleared:
            clears.append(name)
    return differences, clears


def _setting_differences(want: TemplateSpec, have: TemplateSpec) -> Iterator[tuple[str, object, object]]:
    """(field, now, wanted) of the settings an update can change either way."""
    if sorted(have.applied_for) != sorted(want.applied_for):
        yield "appliedFor", ",".join(have.applied_for), ",".join(want.applied_for)
    if (have.description or None) != (want.description or None):
        yield "description", have.description, want.description
    # Without a key in the config, KMS means ECR's managed key, whose ARN the account may report back.
    key_differs = want.kms_key is not None and have.kms_key != want.kms_key
    if have.encryption_type != want.encryption_type or key_differs:
        yield "encryption", _encryption(have), _encryption(want)
    if have.tag_mutability != want.tag_mutability:
        yield "imageTagMutability", have.tag_mutability, want.tag_mutability
    if sorted(have.mutability_exclusions) != sorted(want.mutability_exclusions):
        yield "exclusionFilters", ",".join(have.mutability_exclusions), ",".join(want.mutability_exclusions)
    if tuple(sorted(have.resource_tags)) != tuple(sorted(want.resource_tags)):
        yield "resourceTags", _tags(have.resource_tags), _tags(want.resource_tags)


def _clearable_differences(want: TemplateSpec, have: TemplateSpec) -> Iterator[tuple[str, object, object, bool]]:
    """(field, now, wanted, whether the config removes it) of the fields an update cannot clear."""
    for name, now, wanted in (
        ("lifecyclePolicy", have.lifecycle_policy, want.lifecycle_policy),
        ("repositoryPolicy", have.repository_policy, want.repository_policy),
    ):
        if not ptc.policy_equal(now, wanted):
            yield name, "set" if now else None, "set" if wanted else None, bool(now and not wanted)
    if (have.custom_role_arn or None) != (want.custom_role_arn or None):
        cleared = bool(have.custom_role_arn and not want.custom_role_arn)
        yield "customRoleArn", have.custom_role_arn, want.custom_role_arn, cleared


def template_settings(spec: TemplateSpec) -> tuple[str, ...]:
    """What a template sets, briefly: ("MUTABLE", "AES256", "lifecycle policy", "tags team=platform")."""
    settings = [
        spec.tag_mutability + (f" except {','.join(spec.mutability_exclusions)}" if spec.mutability_exclusions else "")
    ]
    settings.append(_encryption(spec))
    if spec.lifecycle_policy:
        settings.append("lifecycle policy")
    if spec.repository_policy:
        settings.append("repository policy")
    if spec.resource_tags:
        settings.append(f"tags {_tags(spec.resource_tags)}")
    return tuple(settings)


def _show(value: object) -> str:
    return "none" if value in (None, "") else str(value)


def _encryption(spec: TemplateSpec) -> str:
    return spec.encryption_type + (f" ({spec.kms_key})" if spec.kms_key else "")


def _tags(tags: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{key}={value}" for key, value in tags) or "none"
