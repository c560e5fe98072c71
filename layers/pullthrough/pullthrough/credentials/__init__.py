"""Upstream credentials: prove a secret's username and access token against the upstream before pulls depend on it.

`check_secret` goes through what ECR itself would trip over, in order: the secret exists in the registry's account
and region, its name starts with `ecr-pullthroughcache/`, its value is JSON with `username` and `accessToken`; then
it authenticates upstream through the registry client. Docker Hub gets a Bearer token for a pull scope from its
realm with the credentials (as a pull would), then a HEAD on a manifest, which Docker Hub does not count as a pull,
to read `ratelimit-limit` / `ratelimit-remaining`. Other upstreams are asked what they want through `/v2/`'s
WWW-Authenticate. The result names the secret and says why and what to do; it never carries the token.

`handle` is the check_credentials function: on a Secrets Manager change (CloudTrail) it checks the changed secret,
on the daily schedule every secret, re-validates the ECR rules that use it, warns ahead of a known expiry, and
reports (loud on trouble, one line when all is well). `rotation.py` builds on the same pieces.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pullthrough import config as config_module
from pullthrough import redaction, upstreams
from pullthrough.aws import ptc
from pullthrough.config import SECRET_PREFIX, Config, Rule
from pullthrough.env import Settings
from pullthrough.errors import (
    AwsAccessDenied,
    AwsError,
    AwsNotFound,
    ConfigError,
    EventError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
    SecretError,
)
from pullthrough.observability import logger
from pullthrough.registry import Credentials, RateLimit, RegistryClient
from pullthrough.reporting import Details, Kind, Outcome, Report, ReportItem
from pullthrough.reporting.publish import publish as reporting_publish
from pullthrough.upstreams import Upstream

Status = Literal["valid", "invalid", "missing", "malformed", "wrong_prefix", "unreachable"]

# Docker's documented way to read the pull budget: a HEAD on this manifest costs no pull.
RATE_LIMIT_REPOSITORY = "ratelimitpreview/test"
RATE_LIMIT_TAG = "latest"
DOCKER_HUB = "docker-hub"
CHECK_TIMEOUT = 10.0  # seconds per upstream call: well inside a Lambda's minute, long enough for a slow realm
CHECK_RETRIES = 1

_OUTCOMES: dict[str, Outcome] = {
    "valid": Outcome.VALID,
    "invalid": Outcome.INVALID,
    "missing": Outcome.INVALID,
    "malformed": Outcome.INVALID,
    "wrong_prefix": Outcome.INVALID,
    "unreachable": Outcome.UNREACHABLE,
}


class CredentialCheck(BaseModel):
    """The verdict on one credentials secret; names the secret, never carries the token."""

    model_config = ConfigDict(frozen=True)

    secret: str
    status: Status
    message: str
    fix: str
    rate_limit: RateLimit | None = None
    reason_code: str | None = None  # RegistryError.reason ("auth", "timeout", ...) or the secret problem's kind
    username: str | None = None  # the account the token belongs to: not secret, and what a reader checks first
    stage: str = "AWSCURRENT"

    @property
    def valid(self) -> bool:
        """True when the upstream accepted the credentials."""
        return self.status == "valid"

    def report_item(
        self, *, upstream: str | None = None, rule: str | None = None, subject: str | None = None
    ) -> ReportItem:
        """This check as a report line (`secret <name> (<stage>)`), with the pull budget when the upstream told it."""
        remaining = self.rate_limit.remaining if self.rate_limit is not None else None
        return ReportItem(
            subject=subject or f"secret {self.secret} ({self.stage})",
            outcome=_OUTCOMES[self.status],
            reason=None if self.valid else self.message,
            fix=None if self.valid else self.fix,
            reason_code=None if self.valid else self.reason_code or self.status,
            details=Details(
                rule=rule,
                upstream=upstream,
                secret=self.secret,
                pulls_remaining=remaining,
                valid=None if self.status == "unreachable" else self.valid,
            ),
        )


ClientFactory = Callable[..., RegistryClient]


# --- the secret itself ---------------------------------------------------------------------------------------------


def secret_name(secret_id: str) -> str:
    """The name of a secret given by name or ARN (an ARN's name ends in a 6-character suffix Secrets Manager adds)."""
    if not secret_id.startswith("arn:"):
        return secret_id
    name = secret_id.split(":", 6)[-1]
    stem, dash, suffix = name.rpartition("-")
    return stem if dash and len(suffix) == 6 and suffix.isalnum() else name


def parse_value(secret: str, value: str | None) -> Credentials:
    """The Credentials in a secret's value; SecretError (naming the secret and the fix, never the value) if unusable."""
    shape = 'JSON {"username": "<user>", "accessToken": "<token>"}'
    if value is None:
        raise SecretError(secret, f"has no SecretString (binary only); store the value as {shape}")
    try:
        document = json.loads(value)
    except ValueError:
        raise SecretError(
            secret,
            f"its value is not JSON; store it as {shape} (console: Other type of secret, two key/value pairs)",
        ) from None
    if not isinstance(document, dict):
        raise SecretError(secret, f"its value is JSON but not an object; store it as {shape}")
    problems: list[str] = []
    for key, alternatives in (("username", ("user", "Username", "login")), ("accessToken", _TOKEN_ALIASES)):
        if key not in document:
            near = [alt for alt in alternatives if alt in document]
            hint = f" (found {near[0]!r}: rename it to {key!r}, the name ECR reads)" if near else ""
            problems.append(f"the key {key!r} is missing{hint}")
        elif not isinstance(document[key], str) or not document[key].strip():
            problems.append(f"the key {key!r} must be a non-empty string")
        elif document[key] != document[key].strip():
            problems.append(f"the value of {key!r} has leading or trailing whitespace (a paste accident?)")
    # Masked in every log line from now on, before anything else can go wrong with them (a refused value included).
    redaction.register_document(document)
    if problems:
        raise SecretError(secret, "; ".join(problems) + f"; store the value as {shape}")
    refuse_swapped(secret, document["username"], document["accessToken"])
    return Credentials(username=document["username"], password=document["accessToken"])


def refuse_swapped(secret: str, username: str, token: str) -> None:
    """SecretError when the user name has the shape of an access token, or is the token: fields swapped (a common
    paste accident) would otherwise put the token wherever a message names the user. Names neither value."""
    if username == token or redaction.looks_like_token(username):
        raise SecretError(
            secret,
            "the value of 'username' looks like an access token, not a user name (fields swapped, or the token "
            "pasted into both?); put the upstream account's user name in 'username' and the token in 'accessToken'",
        )


_TOKEN_ALIASES = ("password", "token", "access_token", "accesstoken", "AccessToken", "secret")


def credentials_value(credentials: Credentials) -> str:
    """The secret value ECR reads, as JSON text (for the CLI and rotation to store)."""
    return json.dumps({"username": credentials.username, "accessToken": credentials.password})


def _problem(secret: str, status: Status, message: str, fix: str, stage: str, code: str) -> CredentialCheck:
    return CredentialCheck(secret=secret, status=status, message=message, fix=fix, reason_code=code, stage=stage)


def _set_command(rule: str | None) -> str:
    return f"`pullthrough credentials set {rule}`" if rule else "`pullthrough credentials set <rule prefix>`"


def check_secret(
    secret_name_or_arn: str,
    upstream: Upstream,
    url: str,
    settings: Settings,
    *,
    stage: str = "AWSCURRENT",
    version_id: str | None = None,
    rule: str | None = None,
    timeout: float = CHECK_TIMEOUT,
    client_factory: ClientFactory = RegistryClient,
) -> CredentialCheck:
    """Check a credentials secret the way ECR would use it, then prove its value against the upstream at `url`.

    `url` is the rule's upstream registry host (`registry-1.docker.io`); `stage` / `version_id` pick the version
    (a rotation tests AWSPENDING). AWS errors other than a missing secret become an `unreachable` verdict.
    """
    from pullthrough.aws import secrets

    name = secret_name(secret_name_or_arn)
    where = f"account {settings.account_id or '(this account)'}, region {settings.region}"
    if not name.startswith(SECRET_PREFIX):
        return _problem(
            name,
            "wrong_prefix",
            f"secret {name}: ECR pull-through cache only reads secrets whose name starts with {SECRET_PREFIX}",
            f"create it as {SECRET_PREFIX}{name.rsplit('/', 1)[-1]} (a secret cannot be renamed) and point the rule "
            "at it in config/pullthrough.yaml",
            stage,
            "wrong_prefix",
        )
    if secret_name_or_arn.startswith("arn:"):
        arn_region = secrets.region_of(secret_name_or_arn)
        arn_account = secret_name_or_arn.split(":")[4] if secret_name_or_arn.count(":") >= 6 else ""
        if arn_region != settings.region or (settings.account_id and arn_account != settings.account_id):
            return _problem(
                name,
                "missing",
                f"secret {name} is in account {arn_account}, region {arn_region}, but ECR reads credentials only "
                f"from its own account and region ({where})",
                f"create the secret in {settings.region} with {_set_command(rule)} and use that one",
                stage,
                "wrong_region",
            )
    try:
        info = secrets.describe(secret_name_or_arn, region=settings.region)
    except AwsNotFound:
        return _problem(
            name,
            "missing",
            f"secret {name} does not exist in {where}",
            f"create it with {_set_command(rule)} (ECR reads the secret from its own account and region)",
            stage,
            "missing",
        )
    except AwsError as exc:
        return _aws_problem(name, exc, stage)
    if info.deleted is not None:
        return _problem(
            name,
            "missing",
            f"secret {name} is scheduled for deletion (since {info.deleted:%Y-%m-%d}); ECR cannot read it",
            f"restore it (aws secretsmanager restore-secret --secret-id {name}) or create a new one with "
            f"{_set_command(rule)}",
            stage,
            "deleted",
        )
    try:
        value = secrets.get_value(info.arn, stage, version_id, region=settings.region)
    except AwsNotFound:
        version = f" version {version_id}" if version_id else ""
        return _problem(
            name,
            "missing",
            f"secret {name} has no value at {stage}{version}",
            f"store the credentials with {_set_command(rule)}",
            stage,
            "no_value",
        )
    except AwsError as exc:
        return _aws_problem(name, exc, stage)
    try:
        credentials = parse_value(name, value)
    except SecretError as exc:
        return _problem(
            name,
            "malformed",
            str(exc),
            f"replace the value with {_set_command(rule)}, which writes the right shape",
            stage,
            "malformed",
        )
    return check_credentials(
        name,
        credentials,
        upstream,
        url,
        settings,
        stage=stage,
        rule=rule,
        timeout=timeout,
        client_factory=client_factory,
    )


def _aws_problem(name: str, exc: AwsError, stage: str) -> CredentialCheck:
    fix = (
        "grant secretsmanager:DescribeSecret and GetSecretValue on the secret (and kms:Decrypt on its key) to the role"
        if isinstance(exc, AwsAccessDenied)
        else "retry; if it persists, check the secret in the Secrets Manager console"
    )
    return _problem(name, "unreachable", f"secret {name}: {exc}", fix, stage, exc.code)


# --- upstream -----------------------------------------------------------------------------------------------------


def check_credentials(
    secret: str,
    credentials: Credentials,
    upstream: Upstream,
    url: str,
    settings: Settings,
    *,
    stage: str = "AWSCURRENT",
    rule: str | None = None,
    timeout: float = CHECK_TIMEOUT,
    client_factory: ClientFactory = RegistryClient,
) -> CredentialCheck:
    """Prove a username and token against the upstream: valid, invalid (with the upstream's reason) or unreachable."""
    base_url = settings.upstream_url(url)
    who = redaction.user_label(credentials.username)
    title = f"{upstream.title} ({url})"

    def verdict(status: Status, message: str, fix: str, code: str | None, rate: RateLimit | None) -> CredentialCheck:
        return CredentialCheck(
            secret=secret,
            status=status,
            message=_scrub(message, credentials),
            fix=fix,
            rate_limit=rate,
            reason_code=code,
            username=None if redaction.looks_like_token(credentials.username) else credentials.username,
            stage=stage,
        )

    client = client_factory(
        base_url, name=url, credentials=credentials, timeout=timeout, retries=CHECK_RETRIES, max_wait=timeout
    )
    with client:
        try:
            if upstream.key == DOCKER_HUB:
                client.authenticate(RATE_LIMIT_REPOSITORY)
            else:
                challenge = client.ping()
                if challenge.scheme == "none":
                    return verdict(
                        "valid",
                        f"secret {secret}: {title} asks for no credentials, so {who} was not put to the test",
                        "nothing to do",
                        "no_auth",
                        None,
                    )
                client.authenticate()
        except RegistryAuthError as exc:
            return verdict(
                "invalid",
                f"secret {secret}: {title}: {_upstream_reason(exc)}",
                _invalid_fix(upstream, rule),
                exc.reason,
                client.rate_limit,
            )
        except RegistryRateLimited as exc:
            return verdict(
                "unreachable",
                f"secret {secret}: {title} rate-limited the check, so validity is unknown: {exc}",
                "retry after the upstream's rate-limit window; nothing needs changing yet",
                exc.reason,
                client.rate_limit,
            )
        except (RegistryUnavailable, RegistryTimeout) as exc:
            return verdict(
                "unreachable",
                f"secret {secret}: {title} could not be reached, so validity is unknown: {exc}",
                "retry later; if it persists, check the upstream's status page and the network path to it",
                exc.reason,
                None,
            )
        except RegistryError as exc:
            return verdict(
                "unreachable",
                f"secret {secret}: {title} answered the check unexpectedly, so validity is unknown: {exc}",
                "check the rule's upstream URL in config/pullthrough.yaml and retry",
                exc.reason,
                None,
            )
        rate = _rate_limit(client) if upstream.key == DOCKER_HUB else client.rate_limit
    budget = _budget_text(rate)
    return verdict("valid", f"secret {secret}: {title} accepted {who}{budget}", "nothing to do", None, rate)


def _upstream_reason(exc: RegistryError) -> str:
    """The registry error without its `registry/repository: ` head: the repository is only the check's probe."""
    text = str(exc)
    for head in (f"{exc.registry}/{exc.repository}: ", f"{exc.registry}: "):
        if text.startswith(head):
            return text[len(head) :]
    return text


def _rate_limit(client: RegistryClient) -> RateLimit | None:
    """The pull budget from a HEAD (free on Docker Hub); None when the upstream does not say or the HEAD fails."""
    try:
        head = client.head_manifest(RATE_LIMIT_REPOSITORY, RATE_LIMIT_TAG)
    except RegistryNotFound:
        return client.rate_limit  # the answer still carries the headers; the image itself is not needed
    except RegistryError:
        return client.rate_limit
    return head.rate_limit or client.rate_limit


def _budget_text(rate: RateLimit | None) -> str:
    if rate is None or rate.remaining is None:
        return ""
    window = f" per {rate.window_seconds // 3600}h" if rate.window_seconds and rate.window_seconds >= 3600 else ""
    limit = f" of {rate.limit:,}{window}" if rate.limit is not None else ""
    return f"; {rate.remaining:,}{limit} pulls left"


def _invalid_fix(upstream: Upstream, rule: str | None) -> str:
    where = {
        DOCKER_HUB: "on Docker Hub (Account settings > Personal access tokens; Public Repo Read-only is enough)",
        "github-container-registry": "on GitHub (a classic personal access token with read:packages)",
        "gitlab-container-registry": "on GitLab (a token with read_registry)",
        "azure-container-registry": "in Azure (a token or service principal with pull access)",
        "chainguard": "in Chainguard (a pull token)",
    }.get(upstream.key, f"for {upstream.title}")
    return f"create a new access token {where} and store it with {_set_command(rule)}"


def _scrub(text: str, credentials: Credentials) -> str:
    # Upstream texts are passed through; a registry echoing the token back must not carry it any further.
    return text.replace(credentials.password, "***") if credentials.password else text


# --- which rules use a secret, and what ECR says about them -----------------------------------------------------------

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
    targets: list[Target] = []
    rules = config_rules(config, name)
    for rule in rules:
        targets.append(Target(rule.entry, rule.upstream_url, rule.prefix))
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


def revalidate(prefixes: Sequence[str], secret: str) -> list[ReportItem]:
    """ValidatePullThroughCacheRule for each rule using the secret: can ECR itself pull with what it now holds."""
    items: list[ReportItem] = []
    for prefix in prefixes:
        try:
            answer = ptc.validate_rule(prefix)
        except AwsError as exc:
            items.append(
                ReportItem(
                    subject=f"rule {prefix}",
                    outcome=Outcome.UNREACHABLE,
                    reason=f"ValidatePullThroughCacheRule failed: {exc}",
                    fix="grant ecr:ValidatePullThroughCacheRule on the rule's repositories, then check again",
                    reason_code=exc.code,
                    details=Details(rule=prefix, secret=secret),
                )
            )
            continue
        items.append(
            ReportItem(
                subject=f"rule {prefix}",
                outcome=Outcome.VALID if answer.is_valid else Outcome.INVALID,
                reason=None if answer.is_valid else f"ECR cannot use the rule's credentials: {answer.failure}",
                fix=None
                if answer.is_valid
                else f"check secret {secret} (pullthrough credentials check {prefix}); pulls through {prefix}/ fail",
                reason_code=None if answer.is_valid else "rule_invalid",
                details=Details(rule=prefix, secret=secret, valid=answer.is_valid),
            )
        )
    return items


def expiry_item(use: SecretUse, today: date) -> ReportItem | None:
    """A warning when the token's known expiry is within its warning window (or past)."""
    if use.expires is None:
        return None
    left = (use.expires - today).days
    if left > use.warn_days:
        return None
    when = datetime.combine(use.expires, datetime.min.time(), tzinfo=UTC)
    rule = use.targets[0].rule if use.targets else None
    reason = (
        f"the token expired {-left} day(s) ago ({use.expires:%Y-%m-%d})"
        if left < 0
        else f"the token expires in {left} day(s), on {use.expires:%Y-%m-%d}"
    )
    fix = (
        "rotation docker-hub-api mints the next token: rotate now (aws secretsmanager rotate-secret --secret-id "
        f"{use.name})"
        if use.rotation == "docker-hub-api"
        else f"create a new token upstream and stage it with {_set_command(rule)}; update credentials.expires"
    )
    return ReportItem(
        subject=f"secret {use.name} (AWSCURRENT)",
        outcome=Outcome.EXPIRING,
        reason=reason,
        fix=fix,
        reason_code="expiring",
        details=Details(secret=use.name, rule=rule, expires=when),
    )


def check_use(use: SecretUse, settings: Settings, *, today: date, timeout: float = CHECK_TIMEOUT) -> list[ReportItem]:
    """Report items for one secret: the value checked against each upstream, each ECR rule re-validated, expiry."""
    items: list[ReportItem] = []
    if not use.targets:
        items.append(
            ReportItem(
                subject=f"secret {use.name}",
                outcome=Outcome.SKIPPED,
                reason="no rule in the config or in ECR uses this secret, so there is no upstream to test it against",
                fix="name it in a rule's credentials in config/pullthrough.yaml, or delete it if it is unused",
                reason_code="unused",
                details=Details(secret=use.name),
            )
        )
    seen: set[tuple[str, str]] = set()
    for target in use.targets:
        if (target.upstream.key, target.url) in seen:
            continue
        seen.add((target.upstream.key, target.url))
        result = check_secret(use.name, target.upstream, target.url, settings, rule=target.rule, timeout=timeout)
        items.append(result.report_item(upstream=target.upstream.key, rule=target.rule))
    items.extend(revalidate(use.ecr_rules, use.name))
    expiring = expiry_item(use, today)
    if expiring is not None:
        items.append(expiring)
    return items


# --- reports --------------------------------------------------------------------------------------------------------


def publish(
    items: Sequence[ReportItem],
    settings: Settings,
    config: Config | None,
    *,
    run_id: str,
    trigger: str,
    started: datetime,
    log_group: str | None = None,
) -> Report | None:
    """Build the credentials report, log it, count it, and send it to the topic (loud on trouble, else as configured).

    Returns None when the account is unknown (a report names it), which only happens outside Lambda.
    """
    if not settings.account_id:
        logger.warning("no ACCOUNT_ID: the credentials report is logged item by item only", extra={"run_id": run_id})
        for item in items:
            logger.info(item.subject, extra=item.to_log())
        return None
    report = Report(
        kind=Kind.CREDENTIALS,
        # The config's stack label, as the rules and warm reports use, so one deployment's reports read alike.
        stack=config.stack if config is not None else settings.stack_name,
        region=settings.region,
        account=settings.account_id,
        run_id=run_id,
        trigger=trigger,
        started=started,
        items=tuple(items),
        log_groups=(log_group,) if log_group else (),
    )
    # The run's outcome stands; a report that could not be sent must not turn it into a failure (publish logs it).
    reporting_publish(report, settings.topic_arn, config.notifications if config else config_module.Notifications())
    return report


# --- check_credentials: EventBridge events ----------------------------------------------------------------------------

CLOUDTRAIL_CALL = "AWS API Call via CloudTrail"
CLOUDTRAIL_SERVICE = "AWS Service Event via CloudTrail"
SCHEDULED = "Scheduled Event"
ROTATION_OUTCOMES = ("RotationSucceeded", "RotationFailed", "RotationAbandoned")


class ChangeEvent(BaseModel):
    """What a Secrets Manager change event (or the schedule) asks check_credentials to look at."""

    model_config = ConfigDict(frozen=True)

    trigger: str
    secrets: tuple[str, ...] = ()  # names or ARNs; empty with `everything` for the schedule
    everything: bool = False
    rotation_failed: bool = False
    ignored: str | None = None  # why the event needs nothing (a failed API call, another prefix)


class CheckResult(BaseModel):
    """What check_credentials returns: the run, what it checked, and the report's verdict."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    trigger: str
    secrets: tuple[str, ...]
    status: str
    counts: dict[str, int]
    ignored: str | None = None


def parse_change_event(event: Mapping[str, Any]) -> ChangeEvent:
    """Read an EventBridge event: CloudTrail API calls and service events on secrets, or the schedule."""
    if not isinstance(event, Mapping):
        raise EventError(f"check_credentials takes an EventBridge event (a JSON object), not a {type(event).__name__}")
    detail_type = str(event.get("detail-type") or "")
    detail = event.get("detail")
    if detail_type == SCHEDULED:
        return ChangeEvent(trigger="schedule (daily check and expiry warnings)", everything=True)
    if detail_type not in (CLOUDTRAIL_CALL, CLOUDTRAIL_SERVICE) or not isinstance(detail, Mapping):
        raise EventError(
            f"check_credentials takes Secrets Manager CloudTrail events or the schedule, not detail-type "
            f"{detail_type!r}; check the EventBridge rule's pattern in template.yaml"
        )
    name = str(detail.get("eventName") or "an event")
    when = str(detail.get("eventTime") or event.get("time") or "")
    who = _principal(detail.get("userIdentity"))
    trigger = f"{name}{' by ' + who if who else ''}{' at ' + when if when else ''}"
    if detail.get("errorCode"):
        return ChangeEvent(trigger=trigger, ignored=f"the call failed ({detail['errorCode']}): nothing changed")
    staged = _staged_only(detail)
    if staged is not None:
        return ChangeEvent(trigger=trigger, ignored=staged)
    secret = _secret_of(detail)
    if secret is None:
        raise EventError(f"{name} event without a secret id in requestParameters or additionalEventData")
    if not secret_name(secret).startswith(SECRET_PREFIX):
        return ChangeEvent(trigger=trigger, ignored=f"secret {secret_name(secret)} is not under {SECRET_PREFIX}")
    return ChangeEvent(
        trigger=f"{trigger} on {secret_name(secret)}",
        secrets=(secret,),
        rotation_failed=name in ("RotationFailed", "RotationAbandoned"),
    )


def _staged_only(detail: Mapping[str, Any]) -> str | None:
    """Why a change leaves AWSCURRENT alone (a value staged at AWSPENDING, a label moved elsewhere), or None."""
    request = detail.get("requestParameters")
    if not isinstance(request, Mapping):
        return None
    stages = request.get("versionStages")
    if detail.get("eventName") == "PutSecretValue" and isinstance(stages, list) and "AWSCURRENT" not in stages:
        return f"the value was staged at {', '.join(map(str, stages))}, not made current: the rotation tests it"
    stage = request.get("versionStage")
    if detail.get("eventName") == "UpdateSecretVersionStage" and stage != "AWSCURRENT":
        return f"label {stage} moved; AWSCURRENT did not change"
    return None


def _secret_of(detail: Mapping[str, Any]) -> str | None:
    for key in ("requestParameters", "additionalEventData", "responseElements"):
        part = detail.get(key)
        if isinstance(part, Mapping):
            # "aRN": before February 2024 some Secrets Manager events spelt the ARN's key so (Secrets Manager User
            # Guide, "AWS CloudTrail entries for Secrets Manager").
            for field_name in ("secretId", "SecretId", "arn", "ARN", "aRN", "name", "Name"):
                value = part.get(field_name)
                if isinstance(value, str) and value:
                    return value
    return None


def _principal(identity: object) -> str | None:
    if not isinstance(identity, Mapping):
        return None
    for key in ("arn", "invokedBy", "principalId"):
        value = identity.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def handle(
    event: Mapping[str, Any], settings: Settings, *, log_group: str | None = None, today: date | None = None
) -> CheckResult:
    """check_credentials: validate what changed (or, on the schedule, every secret) upstream and in ECR; report."""
    started = datetime.now(UTC)
    change = parse_change_event(event)
    run_id = f"credentials-{uuid.uuid4().hex[:12]}"
    logger.append_keys(run_id=run_id)
    if change.ignored is not None:
        logger.info("nothing to check", extra={"trigger": change.trigger, "why": change.ignored})
        return CheckResult(
            run_id=run_id, trigger=change.trigger, secrets=(), status="OK", counts={}, ignored=change.ignored
        )
    config = load_config(settings)
    rules, problem = ecr_rules()
    names = list(dict.fromkeys(secret_name(s) for s in change.secrets))
    if change.everything:
        in_config = [r.secret_name for r in (config.rules if config else ()) if r.secret_name]
        in_ecr = [secret_name(r.credential_arn) for r in rules if r.credential_arn]
        names = list(dict.fromkeys(n for n in [*in_config, *in_ecr] if n.startswith(SECRET_PREFIX)))
    items: list[ReportItem] = [problem] if problem is not None else []
    for name in names:
        tags = _tags(name, settings)
        use = secret_use(name, config, tags, ecr_rules=rules)
        if change.rotation_failed:
            items.append(
                ReportItem(
                    subject=f"secret {name} (AWSPENDING)",
                    outcome=Outcome.ROTATION_FAILED,
                    reason="Secrets Manager reports that the rotation failed; AWSCURRENT keeps the previous value",
                    fix="read the rotation function's log for the run, fix the pending value, and rotate again",
                    reason_code="rotation_failed",
                    details=Details(secret=name),
                )
            )
        items.extend(check_use(use, settings, today=today or started.date()))
    report = publish(
        items, settings, config, run_id=run_id, trigger=change.trigger, started=started, log_group=log_group
    )
    counts = {o.value: c for o, c in report.counts.items()} if report else {}
    status = report.status.value if report else "UNKNOWN"
    return CheckResult(run_id=run_id, trigger=change.trigger, secrets=tuple(names), status=status, counts=counts)


def _tags(name: str, settings: Settings) -> Mapping[str, str]:
    from pullthrough.aws import secrets

    try:
        return secrets.describe(name, region=settings.region).tags
    except AwsError:
        return {}  # check_secret says what is wrong with the secret itself
