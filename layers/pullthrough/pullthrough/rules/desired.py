"""The desired state: the config's rules and templates in ECR's terms, each secret resolved to its ARN.

Separate from the diff because it is the only part that reads the config (and Secrets Manager, for the ARNs); the
diff compares what this module gives it with what the account holds, and knows nothing of the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pullthrough import config as config_module
from pullthrough import upstreams
from pullthrough.aws import ptc, secrets
from pullthrough.aws.ptc import RuleSpec, TemplateSpec
from pullthrough.errors import AwsError, AwsNotFound
from pullthrough.observability import logger

if TYPE_CHECKING:
    from pullthrough.config import Config, Rule, Template

__all__ = ["TEMPLATE_ROLE_UNKNOWN", "DesiredRule", "desired_rule", "desired_rules", "secret_arns", "template_spec"]


@dataclass(frozen=True)
class DesiredRule:
    """A config rule in ECR's terms, its secret resolved to an ARN (None: no secret, or the secret was not found)."""

    spec: RuleSpec
    upstream: upstreams.Upstream
    secret: str | None = None
    allow_replace: bool = False
    template: TemplateSpec | None = None
    template_blocked: str | None = None  # why the template cannot be written as configured (its role is unknown)


TEMPLATE_ROLE_UNKNOWN = (
    "the template asks for role: create, but this function does not know the role the stack deploys "
    "(TEMPLATE_ROLE_ARN is not set)"
)


def template_spec(prefix: str, template: Template, created_role_arn: str | None = None) -> TemplateSpec:
    """The repository creation template a config rule asks for (the rule's prefix, the config's appliedFor).

    `created_role_arn` is the repository creation role the stack deploys (template.yaml, TEMPLATE_ROLE_ARN), passed
    as customRoleArn to a template with role: create.
    """
    encryption = template.encryption
    role = template.custom_role_arn or (created_role_arn if template.role == config_module.CREATE_ROLE else None)
    return TemplateSpec(
        prefix=prefix,
        applied_for=tuple(template.applied_for),
        description=template.description or None,
        encryption_type=encryption.type,
        kms_key=encryption.key,
        tag_mutability=template.tag_mutability,
        mutability_exclusions=tuple(sorted(template.mutability_exclusions or ())),
        lifecycle_policy=template.lifecycle.policy_text() if template.lifecycle else None,
        repository_policy=config_module.policy_text(template.repository_policy) if template.repository_policy else None,
        resource_tags=tuple(sorted(template.tags.items())),
        custom_role_arn=role,
    )


def desired_rule(rule: Rule, secret_arn: str | None, template_role_arn: str | None = None) -> DesiredRule:
    """One config rule as ECR would hold it (`template_role_arn`: the role the stack deploys for role: create)."""
    template = rule.template
    blocked = None
    if template is not None and template.role == config_module.CREATE_ROLE and not template_role_arn:
        blocked = TEMPLATE_ROLE_UNKNOWN
    return DesiredRule(
        spec=RuleSpec(
            prefix=rule.prefix,
            upstream_registry=rule.upstream,
            upstream_url=rule.upstream_url,
            credential_arn=secret_arn if rule.secret_name else None,
            custom_role_arn=rule.custom_role_arn,
            upstream_prefix=ptc.upstream_prefix_of(rule.upstream_prefix),
        ),
        upstream=rule.entry,
        secret=rule.secret_name,
        allow_replace=rule.allow_replace,
        template=template_spec(rule.prefix, template, template_role_arn) if template else None,
        template_blocked=blocked,
    )


def desired_rules(
    config: Config, secret_arns: Mapping[str, str | None], template_role_arn: str | None = None
) -> tuple[DesiredRule, ...]:
    """Every config rule as ECR would hold it; `secret_arns` maps secret names to ARNs (None: not found)."""
    return tuple(
        desired_rule(rule, secret_arns.get(rule.secret_name or ""), template_role_arn) for rule in config.rules
    )


def secret_arns(config: Config, region: str) -> dict[str, str | None]:
    """The ARN of every secret the config's rules name (None: not found, deleted, or not readable now)."""
    arns: dict[str, str | None] = {}
    for name in sorted({rule.secret_name for rule in config.rules if rule.secret_name}):
        try:
            info = secrets.describe(name, region=region)
        except AwsNotFound:
            arns[name] = None
            continue
        except AwsError as exc:
            # The gate asks again and explains; until then the rule cannot be pointed at this secret.
            logger.warning(f"secret {name}: cannot resolve its ARN: {exc}")
            arns[name] = None
            continue
        arns[name] = info.arn if info.deleted is None else None
    return arns
