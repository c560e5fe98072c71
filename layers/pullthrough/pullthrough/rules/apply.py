"""Applying the plan: one path for rules and templates, from the change to what happened to it (`Result`).

    change --(keep, foreign, blocked, conflict, credentials gate, dry run)--> a result without writing
           --write (writes.py)--> created, updated, replaced, deleted; recorded as Pullthrough's or forgotten
           --a race (AwsAlreadyExists, AwsNotFound)--> look again, plan that prefix again, finish the job, once

It writes only what the plan says, only to what Pullthrough owns (the plan already decided that), and survives a
concurrent run creating or deleting the same thing between plan and apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullthrough.aws import ptc
from pullthrough.aws.ownership import Kind
from pullthrough.errors import AwsAlreadyExists, AwsError, AwsNotFound
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.rules.diff import Action, Change, RuleChange, TemplateChange, plan_rule, plan_template
from pullthrough.rules.gate import CredentialsGate
from pullthrough.rules.records import Records
from pullthrough.rules.result import Result, join
from pullthrough.rules.writes import write

__all__ = ["CONFIG_FILE", "Applier"]

CONFIG_FILE = "config/pullthrough.yaml"
OUTCOME_OF = {
    Action.CREATE: Outcome.CREATED,
    Action.UPDATE: Outcome.UPDATED,
    Action.REPLACE: Outcome.REPLACED,
    Action.DELETE: Outcome.DELETED,
}
TEMPLATES_APPLY_ON_CREATE = (
    "ECR applies a repository creation template only when it creates a repository: cache repositories "
    "that exist already keep their settings."
)


@dataclass
class Applier:
    """A run's writes: what it may write (not in a dry run), the gate, the ownership records, what it noted."""

    region: str
    dry_run: bool
    records: Records
    gate: CredentialsGate
    notes: list[str]  # the run's report notes, shared
    wrote: bool = False  # whether anything was written to ECR

    def apply(self, change: Change) -> Result | None:
        """Carry out one change of the plan; None for a forgotten ownership record (it has no report item)."""
        if change.action is Action.FORGET:
            self.records.forget(change.kind, change.prefix)
            return None
        return self._apply(change, 0)

    def _apply(self, change: Change, attempt: int) -> Result:
        standing = self._without_writing(change)
        return standing if standing is not None else self._write(change, attempt)

    def _without_writing(self, change: Change) -> Result | None:
        """The result of a change that writes nothing: kept, not owned, blocked, in conflict, gated, a dry run."""
        action = change.action
        if action in (Action.KEEP, Action.FOREIGN, Action.BLOCKED):
            return _left_alone(change)
        if action is Action.CONFLICT:
            fix = _conflict_fix(change, self.region)
            return Result(Outcome.CONFLICT, reason=change.reason, fix=fix, code="conflict", exists=True)
        skipped = self.gate.check(change) if isinstance(change, RuleChange) else None
        if skipped is not None:
            return skipped
        if self.dry_run:
            return Result(OUTCOME_OF[action], reason=change.reason or None, exists=change.actual is not None)
        return None

    def _write(self, change: Change, attempt: int) -> Result:
        action = change.action
        try:
            write(change)
        except (AwsAlreadyExists, AwsNotFound) as race:
            return self._settle(change, race, attempt)
        except AwsError as exc:
            return Result(
                Outcome.FAILED,
                reason=f"{action.value} failed: {exc}",
                fix=_aws_fix(exc),
                code=exc.code,
                exists=action is not Action.CREATE and change.actual is not None,
            )
        self.wrote = True
        result = Result(OUTCOME_OF[action], reason=change.reason or None, exists=action is not Action.DELETE)
        if action in (Action.CREATE, Action.REPLACE) and not change.owned:
            self.records.record(change.kind, change.prefix, result)
        if action is Action.DELETE:
            self.records.forget(change.kind, change.prefix)
        if isinstance(change, TemplateChange) and change.desired is not None:
            self.notes.append(TEMPLATES_APPLY_ON_CREATE)
        return result

    def _settle(self, change: Change, race: AwsError, attempt: int) -> Result:
        """Another run (or a person) got there between plan and apply: look again and finish the job, once."""
        exists, again = self._look_again(change)
        note = f"changed by someone else between plan and apply ({race.code})"
        if again is None or again.action is Action.FORGET:
            self.records.forget(change.kind, change.prefix)
            return Result(Outcome.DELETED, reason=f"{note}: it was gone already")
        if again.action.writes and attempt > 0:
            fix = (
                "nothing to do if it settles; if it keeps happening, find what else changes this rule"
                if change.kind is Kind.RULE
                else None
            )
            return Result(
                Outcome.SKIPPED, reason=f"{note}, twice: left for the next run", fix=fix, code="race", exists=exists
            )
        result = self._apply(again, attempt + 1)
        result.reason = join(note, result.reason)
        return result

    def _look_again(self, change: Change) -> tuple[bool, Change | None]:
        """Whether the rule or template is in the account now, and the plan for its prefix as things stand."""
        if isinstance(change, RuleChange):
            rule = ptc.describe_rule(change.prefix)
            owned = self.records.still_owned(Kind.RULE, change)
            return rule is not None, plan_rule(change.prefix, change.desired, rule, owned)
        template = ptc.describe_template(change.prefix)
        owned = self.records.still_owned(Kind.TEMPLATE, change)
        return template is not None, plan_template(change.prefix, change.desired, template, owned)


def _left_alone(change: Change) -> Result:
    """As the config says, not Pullthrough's, or not writable as configured: the result without a write."""
    if change.action is Action.KEEP:
        return Result(Outcome.UNCHANGED, exists=True)
    if change.action is Action.FOREIGN:
        in_config = change.desired is not None
        reason = "created outside Pullthrough; " + (
            "matches the config, left as it is" if in_config else "not in the config: left alone"
        )
        return Result(Outcome.NOT_OWNED, reason=reason, exists=in_config)
    return Result(
        Outcome.SKIPPED,
        reason=f"left as it is: {change.reason}",
        fix=(
            "deploy the stack (template.yaml gives reconcile_rules the role's ARN as TEMPLATE_ROLE_ARN), or "
            f"give the template custom_role_arn in {CONFIG_FILE}"
        ),
        code="template_role",
    )


def _conflict_fix(change: Change, region: str) -> str:
    if isinstance(change, TemplateChange):
        return (
            "Pullthrough changes only templates it created. To hand this one over, delete it (aws ecr "
            f"delete-repository-creation-template --prefix {change.prefix} --region {region}) and "
            f"the next reconcile creates it from the config; or change the template in {CONFIG_FILE} to match"
        )
    if not change.owned:
        return (
            "Pullthrough changes only rules it created. To hand this one over, delete it (aws ecr "
            f"delete-pull-through-cache-rule --ecr-repository-prefix {change.prefix} --region {region}) and the "
            f"next reconcile creates it from the config; or change rule {change.prefix} in {CONFIG_FILE} to match"
        )
    return (
        f"set allow_replace: true on rule {change.prefix} in {CONFIG_FILE} to let reconcile delete and "
        f"recreate it (pulls through {change.prefix}/ fail for a moment; cached repositories stay), or "
        "change the config back to match"
    )


def _aws_fix(exc: AwsError) -> str:
    if exc.code in ("AccessDeniedException", "AccessDenied") or "AccessDenied" in exc.code:
        return f"grant {exc.operation} to the reconcile function's role in template.yaml"
    return "the next reconcile retries; if it keeps failing, check the rule in the ECR console"
