"""The report's items: one per rule and template, with who drifted it and whether ECR finds the rule valid.

Separate from apply because it is read-only: what a change and its result mean for the person reading the report,
plus the one question asked of ECR after the writes (ValidatePullThroughCacheRule, for a rule with credentials).
"""

from __future__ import annotations

from typing import Any

from pullthrough.aws import ptc
from pullthrough.aws.ownership import Kind
from pullthrough.errors import AwsError
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.rules.diff import DELETED_OUTSIDE, Change, RuleChange, TemplateChange
from pullthrough.rules.gate import SECRET_VALUE_SHAPE
from pullthrough.rules.result import Result, join
from pullthrough.rules.trigger import Trigger

__all__ = ["rule_item", "template_item"]


def rule_item(change: RuleChange, result: Result | None, trigger: Trigger, region: str) -> ReportItem | None:
    """A rule's item: its result, the drift the trigger tells of, and ECR's validation of a rule with a secret."""
    if result is None:
        return None
    want, have = change.desired, change.actual
    secret = want.secret if want else None
    upstream = want.upstream.key if want else (have.upstream_registry if have else None)
    reason = with_drift(trigger, Kind.RULE, change, result)
    fix, code, severity, outcome = result.fix, result.code, result.severity, result.outcome
    valid: bool | None = None
    if want is not None and want.secret and result.exists and outcome is not Outcome.FAILED:
        valid, failure = validate(change.prefix)
        if valid is False:
            problem = f"ECR says the rule is not valid: {failure or 'no reason given'}"
            reason = "; ".join(part for part in (reason, problem) if part)
            fix = fix or (
                f"store a working token in {want.secret} (`pullthrough credentials set {change.prefix}`, or aws "
                f"secretsmanager put-secret-value --secret-id {want.secret} --secret-string "
                f"'{SECRET_VALUE_SHAPE}'), then check with aws ecr validate-pull-through-cache-rule "
                f"--ecr-repository-prefix {change.prefix} --region {region}"
            )
            code = code or "rule_invalid"
            if outcome in (Outcome.UNCHANGED, Outcome.NOT_OWNED):
                outcome = Outcome.INVALID
            else:
                severity = Severity.FAILURE
        elif valid is None and failure:
            reason = "; ".join(part for part in (reason, failure) if part)
    item: dict[str, Any] = {
        "subject": f"rule {change.prefix}",
        "outcome": outcome,
        "reason": reason or None,
        "fix": fix,
        "reason_code": code,
        "details": Details(
            rule=change.prefix,
            upstream=upstream,
            secret=secret,
            valid=valid,
            changes=change.differences or None,
        ),
    }
    if severity is not None:
        item["severity"] = severity
    return ReportItem(**item)


def template_item(change: TemplateChange, result: Result | None, trigger: Trigger) -> ReportItem | None:
    """A template's item: its result and the drift the trigger tells of."""
    if result is None:
        return None
    item: dict[str, Any] = {
        "subject": f"template {change.prefix}",
        "outcome": result.outcome,
        "reason": with_drift(trigger, Kind.TEMPLATE, change, result) or None,
        "fix": result.fix,
        "reason_code": result.code,
        "details": Details(changes=change.differences or None),
    }
    if result.severity is not None:
        item["severity"] = result.severity
    return ReportItem(**item)


def with_drift(trigger: Trigger, kind: Kind, change: Change, result: Result) -> str:
    """The item's reason, saying who changed the rule or template outside Pullthrough, when the trigger tells."""
    drift = trigger.drift(kind, change.prefix)
    reason = result.reason or ""
    rest = reason.replace(DELETED_OUTSIDE, "").strip("; ")
    if result.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED):
        verb = "recreated" if result.outcome is Outcome.CREATED else "restored"
        if drift:
            return join(f"{verb}: {drift}", rest)
        if DELETED_OUTSIDE in reason:
            return join(f"{verb}: {DELETED_OUTSIDE}", rest)
    if drift:
        return join(reason, f"the trigger: {drift}")
    return reason


def validate(prefix: str) -> tuple[bool | None, str | None]:
    """ECR's answer to ValidatePullThroughCacheRule: (valid, why not); (None, why) when it could not be asked."""
    try:
        answer = ptc.validate_rule(prefix)
    except AwsError as exc:
        return None, f"could not ask ECR to validate the rule: {exc}"
    return answer.is_valid, answer.failure
