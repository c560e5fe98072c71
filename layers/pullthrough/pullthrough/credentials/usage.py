"""Which rules use a secret: the config's and ECR's, the upstreams they authenticate to, and the secret's own tags.

Separate from the checks: the check function, the rotation and the CLI's survey all ask the same question ("what
is this secret for?") before they prove anything, and the answer must not depend on who asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pullthrough import config as config_module
from pullthrough import upstreams
from pullthrough.aws import ptc
from pullthrough.config import Config, Rule
from pullthrough.credentials.value import secret_name
from pullthrough.env import Settings
from pullthrough.errors import AwsError, ConfigError
from pullthrough.observability import logger
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.upstreams import Upstream

# Tags on a secret: how to rotate a secret no config rule names, and the token's expiry as rotation last set it.
ROTATION_TAG = "pullthrough:rotation"  # staged | docker-hub-api
ADMIN_SECRET_TAG = "pullthrough:admin-secret"  # noqa: S105 - a tag key naming another secret
ORGANIZATION_TAG = "pullthrough:organization"
EXPIRES_TAG = "pullthrough:expires"  # YYYY-MM-DD of the AWSCURRENT token; wins over the config's expires


@dataclass(frozen=True)
class Target:
    """One upstream a secret authenticates to, and the rule that uses it for that (None: no rule known)."""

    upstream: Upstream
    url: str
    rule: str | None


@dataclass(frozen=True)
class SecretUse:
    """Everything Pullthrough knows about one credentials secret: its rules, upstreams and token's expiry."""

    name: str
    targets: tuple[Target, ...]
    ecr_rules: tuple[str, ...]  # prefixes of the ECR rules whose credentialArn is this secret
    expires: date | None = None
    warn_days: int = 14
    rotation: str = "staged"
    admin_secret: str | None = None
    organization: str | None = None


def load_config(settings: Settings) -> Config | None:
    """The deployed config, or None (logged) when it cannot be read: credentials work from ECR's rules then."""
    try:
        return config_module.load(settings.config_path)
    except ConfigError as exc:
        logger.warning("config not usable; relying on ECR's rules", extra={"problems": [str(p) for p in exc.problems]})
        return None


def config_rules(config: Config | None, secret: str) -> list[Rule]:
    """The config's rules whose credentials are this secret."""
    if config is None:
        return []
    return [rule for rule in config.rules if rule.secret_name == secret]


def secret_use(
    secret: str,
    config: Config | None,
    tags: Mapping[str, str] | None = None,
    *,
    ecr_rules: Sequence[ptc.RuleSpec] | None = None,
) -> SecretUse:
    """What the config, ECR's rules (`ecr_rules`, from ptc.snapshot) and the secret's tags say about `secret`."""
    name = secret_name(secret)
    tags = tags or {}
    rules = config_rules(config, name)
    targets = [Target(rule.entry, rule.upstream_url, rule.prefix) for rule in rules]
    in_ecr: list[str] = []
    for spec in ecr_rules or ():
        if spec.credential_arn is None or secret_name(spec.credential_arn) != name:
            continue
        in_ecr.append(spec.prefix)
        if any(target.rule == spec.prefix for target in targets):
            continue
        entry = _catalogue_entry(spec.upstream_registry, spec.upstream_url)
        if entry is not None:
            targets.append(Target(entry, spec.upstream_url, spec.prefix))
    creds = rules[0].credentials if rules else None
    return SecretUse(
        name=name,
        targets=tuple(targets),
        ecr_rules=tuple(in_ecr),
        expires=_tag_date(tags.get(EXPIRES_TAG)) or (creds.expires if creds else None),
        warn_days=creds.warn_days if creds else 14,
        rotation=creds.rotation if creds else tags.get(ROTATION_TAG, "staged"),
        admin_secret=creds.admin_secret if creds else tags.get(ADMIN_SECRET_TAG),
        organization=creds.organization if creds else tags.get(ORGANIZATION_TAG),
    )


def distinct(targets: Sequence[Target]) -> list[Target]:
    """The targets once per upstream and URL (two rules on one upstream prove the same value twice otherwise)."""
    seen: dict[tuple[str, str], Target] = {}
    for target in targets:
        seen.setdefault((target.upstream.key, target.url), target)
    return list(seen.values())


def _catalogue_entry(key: str | None, url: str) -> Upstream | None:
    if key and key in upstreams.CATALOGUE:
        return upstreams.CATALOGUE[key]
    return next((u for u in upstreams.CATALOGUE.values() if u.matches_url(url)), None)


def _tag_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def ecr_rules() -> tuple[tuple[ptc.RuleSpec, ...], ReportItem | None]:
    """Every pull-through cache rule of the registry, or none and a warning item saying why they are unknown."""
    try:
        return ptc.snapshot().rules, None
    except AwsError as exc:
        return (), ReportItem(
            subject="ECR pull through cache rules",
            outcome=Outcome.SKIPPED,
            reason=f"the rules could not be read, so none was re-validated: {exc}",
            fix="grant ecr:DescribePullThroughCacheRules and ecr:DescribeRepositoryCreationTemplates to the role",
            reason_code=exc.code,
        )
