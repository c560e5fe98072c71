"""check_credentials, the function: on a Secrets Manager change it checks the changed secret, on the daily schedule
every secret; it re-validates the ECR rules that use it, warns ahead of a known expiry, and reports (loud on
trouble, one line when all is well).

The run only: what to check comes from events.py, the verdicts from check.py, the report from report.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from pullthrough.aws import ptc, secrets
from pullthrough.config import SECRET_PREFIX, Config
from pullthrough.credentials.check import check_secret
from pullthrough.credentials.events import ChangeEvent, parse_change_event
from pullthrough.credentials.report import ReportRun, expiry_item, publish, revalidate
from pullthrough.credentials.upstream import CHECK_TIMEOUT
from pullthrough.credentials.usage import SecretUse, distinct, ecr_rules, load_config, secret_use
from pullthrough.credentials.value import secret_name
from pullthrough.env import CheckEnv, Settings
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class CheckResult(BaseModel):
    """What check_credentials returns: the run, what it checked, and the report's verdict."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    trigger: str
    secrets: tuple[str, ...]
    status: str
    counts: dict[str, int]
    ignored: str | None = None


def today() -> date:
    """The day expiry warnings count from (the seam tests set to a fixed day)."""
    return datetime.now(UTC).date()


def handle(event: Mapping[str, Any], context: LambdaContext, env: CheckEnv) -> dict[str, Any]:
    """check_credentials: validate what changed (or, on the schedule, every secret) upstream and in ECR; report."""
    started = datetime.now(UTC)
    change = parse_change_event(event)
    run = ReportRun(f"credentials-{uuid.uuid4().hex[:12]}", change.trigger, started, context.log_group_name)
    logger.append_keys(run_id=run.run_id)
    if change.ignored is not None:
        logger.info("nothing to check", extra={"trigger": change.trigger, "why": change.ignored})
        ignored = CheckResult(
            run_id=run.run_id, trigger=change.trigger, secrets=(), status="OK", counts={}, ignored=change.ignored
        )
        return ignored.model_dump(mode="json")
    config = load_config(env)
    rules, problem = ecr_rules()
    names = _names(change, config, rules)
    items: list[ReportItem] = [problem] if problem is not None else []
    for name in names:
        use = secret_use(name, config, _tags(name, env), ecr_rules=rules)
        if change.rotation_failed:
            items.append(_rotation_failed(name))
        items.extend(check_use(use, env, today=today()))
    report = publish(items, env, config, run)
    counts = {o.value: c for o, c in report.counts.items()} if report else {}
    status = report.status.value if report else "UNKNOWN"
    result = CheckResult(run_id=run.run_id, trigger=change.trigger, secrets=tuple(names), status=status, counts=counts)
    return result.model_dump(mode="json")


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
    for target in distinct(use.targets):
        result = check_secret(use.name, target.upstream, target.url, settings, rule=target.rule, timeout=timeout)
        items.append(result.report_item(upstream=target.upstream.key, rule=target.rule))
    items.extend(revalidate(use.ecr_rules, use.name))
    expiring = expiry_item(use, today)
    if expiring is not None:
        items.append(expiring)
    return items


def _names(change: ChangeEvent, config: Config | None, rules: Sequence[ptc.RuleSpec]) -> list[str]:
    """The secrets to check: the one that changed, or on the schedule every one the config or ECR names."""
    if not change.everything:
        return list(dict.fromkeys(secret_name(s) for s in change.secrets))
    in_config = [r.secret_name for r in (config.rules if config else ()) if r.secret_name]
    in_ecr = [secret_name(r.credential_arn) for r in rules if r.credential_arn]
    return list(dict.fromkeys(n for n in [*in_config, *in_ecr] if n.startswith(SECRET_PREFIX)))


def _rotation_failed(name: str) -> ReportItem:
    return ReportItem(
        subject=f"secret {name} (AWSPENDING)",
        outcome=Outcome.ROTATION_FAILED,
        reason="Secrets Manager reports that the rotation failed; AWSCURRENT keeps the previous value",
        fix="read the rotation function's log for the run, fix the pending value, and rotate again",
        reason_code="rotation_failed",
        details=Details(secret=name),
    )


def _tags(name: str, settings: Settings) -> Mapping[str, str]:
    try:
        return secrets.describe(name, region=settings.region).tags
    except AwsError:
        return {}  # check_secret says what is wrong with the secret itself
