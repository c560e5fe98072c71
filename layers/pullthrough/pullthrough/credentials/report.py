"""The credentials report: ECR's own verdict on the rules (re-validation), expiry warnings, and the one publish.

Separate from the checks because both functions end here: check_credentials after a change or the schedule, the
rotation after a promotion or a refused step. Every report goes out through reporting.publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pullthrough import config as config_module
from pullthrough.aws import ptc
from pullthrough.config import Config
from pullthrough.credentials.usage import SecretUse
from pullthrough.credentials.verdict import set_command
from pullthrough.env import Settings
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.publish import publish as reporting_publish
from pullthrough.reporting.vocabulary import Kind, Outcome


@dataclass(frozen=True)
class ReportRun:
    """The run a credentials report tells about: its id (the Logs Insights filter), trigger, start and log group."""

    run_id: str
    trigger: str
    started: datetime
    log_group: str | None = None


def revalidate(prefixes: Sequence[str], secret: str) -> list[ReportItem]:
    """ValidatePullThroughCacheRule for each rule using the secret: can ECR itself pull with what it now holds."""
    return [_revalidate(prefix, secret) for prefix in prefixes]


def _revalidate(prefix: str, secret: str) -> ReportItem:
    try:
        answer = ptc.validate_rule(prefix)
    except AwsError as exc:
        return ReportItem(
            subject=f"rule {prefix}",
            outcome=Outcome.UNREACHABLE,
            reason=f"ValidatePullThroughCacheRule failed: {exc}",
            fix="grant ecr:ValidatePullThroughCacheRule on the rule's repositories, then check again",
            reason_code=exc.code,
            details=Details(rule=prefix, secret=secret),
        )
    return ReportItem(
        subject=f"rule {prefix}",
        outcome=Outcome.VALID if answer.is_valid else Outcome.INVALID,
        reason=None if answer.is_valid else f"ECR cannot use the rule's credentials: {answer.failure}",
        fix=None
        if answer.is_valid
        else f"check secret {secret} (pullthrough credentials check {prefix}); pulls through {prefix}/ fail",
        reason_code=None if answer.is_valid else "rule_invalid",
        details=Details(rule=prefix, secret=secret, valid=answer.is_valid),
    )


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
        else f"create a new token upstream and stage it with {set_command(rule)}; update credentials.expires"
    )
    return ReportItem(
        subject=f"secret {use.name} (AWSCURRENT)",
        outcome=Outcome.EXPIRING,
        reason=reason,
        fix=fix,
        reason_code="expiring",
        details=Details(secret=use.name, rule=rule, expires=when),
    )


def publish(items: Sequence[ReportItem], settings: Settings, config: Config | None, run: ReportRun) -> Report | None:
    """Build the credentials report, log it, count it, and send it to the topic (loud on trouble, else as configured).

    Returns None when the account is unknown (a report names it), which only happens outside Lambda.
    """
    if not settings.account_id:
        logger.warning(
            "no ACCOUNT_ID: the credentials report is logged item by item only", extra={"run_id": run.run_id}
        )
        for item in items:
            logger.info(item.subject, extra=item.to_log())
        return None
    report = Report(
        kind=Kind.CREDENTIALS,
        # The config's stack label, as the rules and warm reports use, so one deployment's reports read alike.
        stack=config.stack if config is not None else settings.stack_name,
        region=settings.region,
        account=settings.account_id,
        run_id=run.run_id,
        trigger=run.trigger,
        started=run.started,
        items=tuple(items),
        log_groups=(run.log_group,) if run.log_group else (),
    )
    # The run's outcome stands; a report that could not be sent must not turn it into a failure (publish logs it).
    reporting_publish(report, settings.topic_arn, config.notifications if config else config_module.Notifications())
    return report
