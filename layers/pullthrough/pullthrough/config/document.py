"""The config document itself: `Config`, its sections put together, and what a whole config answers (the rule of an
image, the warm targets, the explanation `--check` prints); and the `notifications` section.

Reading the files `warm.sources` name is pullthrough.sources' (the readers resolve references against this model's
rules, which they know only as a type): `targets()` and `explain()` take that reading (`sources.read(config)`), so a
function that never reads the sources (config_facts, reconcile_rules, the credentials, report_pull_failures) does
not import their readers with the config (bench/README.md, cold start).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

from pullthrough import upstreams
from pullthrough.config import fields
from pullthrough.config.fields import Model
from pullthrough.config.organization import Organization
from pullthrough.config.patterns import STACK
from pullthrough.config.prune import Prune
from pullthrough.config.resolution import resolve
from pullthrough.config.rules import Rule
from pullthrough.config.schema import SCHEMA_DIALECT
from pullthrough.config.templates import CREATE_ROLE, Template
from pullthrough.config.warm import Warm, WarmImage, WarmTarget
from pullthrough.errors import ConfigError, Problem
from pullthrough.reference import ROOT_PREFIX, ImageReference

if TYPE_CHECKING:
    from pullthrough.sources import Reading

__all__ = ["Config", "Notifications"]


class Notifications(Model):
    """What the SNS reports say."""

    success: Annotated[Literal["full", "summary", "off"], BeforeValidator(fields.success_mode)] = Field(
        "summary",
        description="For a run without trouble: full (every image), summary (counts), or off (no report).",
    )
    subject_prefix: str | None = Field(
        None,
        max_length=40,
        description="Replaces the word pullthrough after the status in every report subject, e.g. [ACME].",
    )

    @field_validator("subject_prefix")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be one line of printable characters")
        return value


class Config(Model):
    """Pullthrough's configuration: ECR pull-through cache rules, images to keep warm, and reports."""

    model_config = ConfigDict(title="Pullthrough configuration", defer_build=True)

    version: Literal[1] = Field(description="The version of this document's format; write version: 1.")
    stack: Annotated[
        str, AfterValidator(lambda v: fields.must_match(v, STACK, "1 to 64 letters, digits, '.', '_' or '-'"))
    ] = Field("pullthrough", description="A label for this installation, used in reports.")
    rules: tuple[Rule, ...] = Field(description="The pull-through cache rules Pullthrough creates and keeps in shape.")
    warm: Warm = Field(default_factory=Warm, description="The images to keep warm.")
    notifications: Notifications = Field(default_factory=Notifications, description="What reports contain.")
    prune: Prune | None = Field(
        None, description="Delete cached images nobody pulled for a while; left out, nothing is ever deleted."
    )
    organization: Organization | None = Field(
        None,
        description=(
            "An organisation caching this hub's prefixes: member accounts and regions get ECR-to-ECR rules to this "
            "account's registry, whose registry policy lets them import; left out, this installation is on its own."
        ),
    )
    _origin: Path | None = PrivateAttr(None)  # the file load() read: warm.sources paths are relative to its folder

    @property
    def origin(self) -> Path | None:
        """The config file this was loaded from (None for a parsed text): source file paths are relative to it."""
        return self._origin

    def rule_for(self, ref: ImageReference | str, pin: str | None = None) -> Rule:
        """The one rule that caches `ref` (the rule with prefix `pin` when given); ConfigError says what to fix."""
        reference = ref if isinstance(ref, ImageReference) else ImageReference.parse(ref)
        rule = resolve(reference, pin, list(enumerate(self.rules)), set(), set())
        if not isinstance(rule, Rule):
            message = rule or "no rule caches this image"
            raise ConfigError([Problem(location=str(reference), value=str(reference), message=message)])
        return rule

    def targets(self, reading: Reading | None = None) -> list[WarmTarget]:
        """Every warm image with its rule, cache repository and platforms; then each reference warm.sources name
        (`reading`: `sources.read(config)`) that warm.images does not. No reading is needed only without warm.sources.
        """
        result = []
        for image in self.warm.images:
            rule = self.rule_for(image.image, image.rule)
            result.append(
                WarmTarget(image, rule, rule.cache_repository(image.image), image.platforms or self.warm.platforms)
            )
        if reading is None:
            if self.warm.sources:
                raise ValueError("the config has warm.sources: pass their reading, pullthrough.sources.read(config)")
            return result
        return result + self._source_targets(reading)

    def _source_targets(self, reading: Reading) -> list[WarmTarget]:
        """The sources' references as targets; warm.images wins: its tags are not repeated, its settings apply."""
        listed: dict[str, WarmImage] = {}
        for image in self.warm.images:
            listed.setdefault(image.image.name, image)
        result = []
        for item in reading.unique():
            ref = ImageReference.parse(item.reference)
            entry = listed.get(ref.name)
            if entry is not None and ref.tag in entry.fixed_tags:
                continue
            image = WarmImage(
                image=ref, platforms=entry.platforms if entry else None, rule=entry.rule if entry else None
            )
            rule = self.rule_for(ref, image.rule)
            platforms = image.platforms or self.warm.platforms
            result.append(WarmTarget(image, rule, rule.cache_repository(ref), platforms, item.source, item.place))
        return result

    def explain(self, reading: Reading | None = None) -> list[str]:
        """Human-readable lines: each rule with its upstream, auth and template; each image (warm.images, and what
        `reading` says warm.sources name) with its cache name."""
        warm = self.warm
        lines = [
            f"stack {self.stack}: {len(self.rules)} rule(s), {len(warm.images)} image(s) warmed on {warm.schedule} "
            f"for {', '.join(warm.platforms)}, spending at most {warm.budget_share:.0%} of an upstream's "
            "remaining pulls per run",
        ]
        for rule in self.rules:
            lines.append(
                f"rule {rule.prefix}: {rule.entry.title} ({rule.upstream_url}"
                + (f", only {rule.upstream_prefix}/..." if rule.upstream_prefix else "")
                + f") cached as {'<path>' if rule.prefix == ROOT_PREFIX else rule.prefix + '/<path>'}"
            )
            lines.append(f"  auth: {_explain_auth(rule)}")
            lines.append(f"  template: {_explain_template(rule.template)}")
            if rule.allow_replace:
                lines.append("  reconcile may delete and recreate this rule when an immutable field changes")
        for target in self.targets(reading):
            image = target.image
            selected = list(image.fixed_tags)
            if image.latest is not None:
                matching = f" matching {image.tag_pattern}" if image.tag_pattern is not None else ""
                selected.append(f"the latest {image.latest} version(s){matching}")
            elif image.tag_pattern is not None:
                selected.append(f"every tag matching {image.tag_pattern}")
            lines.append(
                f"image {image.image.name} -> {target.cache_repository} (rule {target.rule.prefix}): "
                f"{'; '.join(selected)}; {', '.join(target.platforms)}"
                + (f"; digest must stay {image.image.digest}" if image.image.digest else "")
                + (f"; from {target.source} ({target.place})" if target.source else "")
            )
        if self.prune is not None:
            prune = self.prune
            lines.append(
                f"prune on {prune.schedule}: images under the rules' prefixes unpulled for {prune.unused_for_days} "
                f"day(s), at most {prune.max_deletions} a run"
                + (", dry run (reported, not deleted)" if prune.dry_run else ", deleted")
                + (f"; also kept: {', '.join(str(ref) for ref in prune.keep)}" if prune.keep else "")
            )
        if self.organization is not None:
            lines.extend(_explain_organization(self))
        # The word Report.subject puts after the status when no prefix is set: say what subscribers will see.
        subject = self.notifications.subject_prefix or "pullthrough (the default)"
        lines.append(f"reports: success {self.notifications.success}; subject prefix {subject}")
        return lines

    @classmethod
    def dump_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the document, for editors (config/pullthrough.schema.json)."""
        schema = cls.model_json_schema()
        return {"$schema": SCHEMA_DIALECT, **schema}


def _explain_organization(config: Config) -> list[str]:
    org = config.organization
    assert org is not None
    prefixes = ", ".join(rule.prefix for rule in org.cached_rules(config))
    lines = [
        f"organization {org.id}: hub {org.hub.account} in {org.hub.region} ({org.hub.registry}); members cache "
        f"{prefixes}" + (f"; only principals under {', '.join(org.paths)}" if org.paths else "")
    ]
    for member in org.members:
        targets = [*member.accounts, *(f"every account of {unit}" for unit in member.organizational_units)]
        warm = f"; warms {len(member.warm)} image(s)" if member.warm else ""
        lines.append(f"  member {member.name}: {', '.join(targets)} in {', '.join(member.regions)}{warm}")
    return lines


def _explain_auth(rule: Rule) -> str:
    creds = rule.credentials
    if creds is None:
        if rule.entry.auth is upstreams.Auth.IAM_ROLE:
            return f"IAM role {rule.custom_role_arn}" if rule.custom_role_arn else "ECR's service-linked role"
        return "none (public upstream)"
    text = f"secret {creds.secret}, rotation {creds.rotation}"
    if creds.admin_secret:
        text += f" (admin credentials in {creds.admin_secret})"
    if creds.organization:
        text += f", organization {creds.organization}"
    if creds.expires:
        text += f", expires {creds.expires.isoformat()} (warn {creds.warn_days} days ahead)"
    return text


def _explain_template(template: Template | None) -> str:
    if template is None:
        return "none (ECR defaults: MUTABLE, AES256)"
    parts: list[str] = [template.tag_mutability]
    if template.mutability_exclusions:
        parts[0] += f" except {', '.join(template.mutability_exclusions)}"
    encryption = template.encryption
    parts.append(encryption.type + (f" with {encryption.key}" if encryption.key else ""))
    if template.lifecycle and template.lifecycle.keep_last_tags:
        parts.append(f"keep the last {template.lifecycle.keep_last_tags} tagged images")
    if template.lifecycle and template.lifecycle.expire_untagged_days:
        parts.append(f"expire untagged images after {template.lifecycle.expire_untagged_days} days")
    if template.tags:
        parts.append("tags " + ", ".join(f"{k}={v}" for k, v in sorted(template.tags.items())))
    if template.repository_policy:
        parts.append("a repository policy")
    if template.role == CREATE_ROLE:
        parts.append("applied through the role Pullthrough deploys")
    elif template.custom_role_arn:
        parts.append(f"applied through role {template.custom_role_arn}")
    if template.applied_for != ("PULL_THROUGH_CACHE",):
        parts.append("for " + ", ".join(template.applied_for))
    return ", ".join(parts)
