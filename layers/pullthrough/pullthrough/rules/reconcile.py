"""One reconcile, orchestrated: read, plan, apply, validate, announce; the report of it all (not yet published).

    desired (config) + actual (ECR, ownership records) --plan()--> Plan --credentials gate--> apply --> validate
    --> Report, and a "Pullthrough Rules Reconciled" event that starts warming

The Run only orders the steps: each lives in its own module (desired, diff, gate, apply, records, items). The
deployed function (handler.py) and the CLI (`pullthrough reconcile`, `pullthrough plan`) both run `reconcile()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pullthrough.aws import events, ptc
from pullthrough.aws.ownership import Kind
from pullthrough.errors import AwsError, PullthroughError
from pullthrough.observability import logger
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind as ReportKind
from pullthrough.rules.apply import Applier
from pullthrough.rules.desired import DesiredRule, desired_rules, secret_arns
from pullthrough.rules.diff import Action, Change, Plan, RuleChange, TemplateChange, plan
from pullthrough.rules.gate import CredentialsGate
from pullthrough.rules.items import rule_item, template_item
from pullthrough.rules.records import Records
from pullthrough.rules.registry_policy import reconcile_policy
from pullthrough.rules.result import Result
from pullthrough.rules.trigger import Trigger, TriggerKind

if TYPE_CHECKING:
    from pullthrough.config import Config
    from pullthrough.env import Settings

__all__ = ["Run", "reconcile"]


def reconcile(
    config: Config, settings: Settings, trigger: Trigger, *, log_group: str | None = None
) -> tuple[Report, Plan]:
    """Plan and (unless a dry run) apply, validate, announce; returns the report (not yet published) and the plan."""
    run = Run(config, settings, trigger, log_group=log_group)
    report = run.reconcile()
    assert run.plan is not None
    return report, run.plan


@dataclass
class Run:
    """One reconcile: its inputs, what it learnt, and what it did."""

    config: Config
    settings: Settings
    trigger: Trigger
    log_group: str | None = None
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)
    event_id: str | None = None

    @property
    def dry_run(self) -> bool:
        """A dry run plans, checks and validates, and writes nothing."""
        return self.settings.dry_run or self.trigger.dry_run

    def reconcile(self) -> Report:
        """Read, plan, check credentials, apply, validate, announce; the report of it all."""
        actual = ptc.snapshot()
        account = self.settings.account_id or actual.registry_id
        if not account:
            raise PullthroughError("cannot tell the AWS account: set ACCOUNT_ID (template.yaml sets it in Globals)")
        records = Records(self.settings.ledger_table, self.settings.stack_name, self.dry_run, self.notes)
        owned = records.owned()
        desired = desired_rules(
            self.config, secret_arns(self.config, self.settings.region), self.settings.template_role_arn
        )
        self.plan = plan(desired, actual, owned)
        logger.info(
            f"plan: {len(self.plan.writes())} change(s)",
            extra={"plan": self.plan.lines(), "dry_run": self.dry_run},
        )
        applier = Applier(self.settings.region, self.dry_run, records, CredentialsGate(self.settings), self.notes)
        # Templates first: a pull right after a rule appears should already get the template's settings.
        results = {(change.kind, change.prefix): applier.apply(change) for change in ordered_for_apply(self.plan)}
        region = self.settings.region
        items = [rule_item(c, results[(Kind.RULE, c.prefix)], self.trigger, region) for c in self.plan.rules]
        items += [template_item(c, results[(Kind.TEMPLATE, c.prefix)], self.trigger) for c in self.plan.templates]
        # The hub's registry policy: the organisation's statements (none without one, or outside the hub).
        policy_items, policy_notes = reconcile_policy(self.config, account, region, dry_run=self.dry_run)
        items += policy_items
        self.notes.extend(policy_notes)
        self._announce(desired, results, items, wrote=applier.wrote)
        return Report(
            kind=ReportKind.RULES,
            stack=self.config.stack,
            region=self.settings.region,
            account=account,
            run_id=self.run_id,
            trigger=self.trigger.text,
            started=self.started,
            dry_run=self.dry_run,
            items=tuple(item for item in items if item is not None),
            notes=tuple(dict.fromkeys(self.notes)),
            log_groups=(self.log_group,) if self.log_group else (),
        )

    def _announce(
        self,
        desired: Sequence[DesiredRule],
        results: Mapping[tuple[Kind, str], Result | None],
        items: Sequence[ReportItem | None],
        *,
        wrote: bool,
    ) -> None:
        """Send the event that starts warming, naming the rules that exist and are valid (never in a dry run)."""
        # A deploy may have changed only the warm list, which rules do not see: it always starts warming.
        if self.dry_run or not (wrote or self.trigger.kind is TriggerKind.DEPLOY):
            return
        invalid = {item.details.rule for item in items if item is not None and item.details.valid is False}
        ready = []
        for rule in desired:
            result = results.get((Kind.RULE, rule.spec.prefix))
            if result is not None and result.exists and rule.spec.prefix not in invalid:
                ready.append(rule.spec.prefix)
        try:
            self.event_id = events.put_rules_reconciled(
                self.settings.stack_name, self.run_id, ready, bus=self.settings.event_bus
            )
        except AwsError as exc:
            logger.error(f"the rules-reconciled event could not be sent: {exc}")
            self.notes.append(
                f"The event that starts warming could not be sent ({exc.code}); warming runs on its schedule instead."
            )


def ordered_for_apply(the_plan: Plan) -> list[Change]:
    """Templates, rules, then deletes (rules before templates), then forgotten records."""

    def stage(change: Change) -> int:
        if change.action is Action.FORGET:
            return 4
        if change.action is Action.DELETE:
            return 2 if isinstance(change, RuleChange) else 3
        return 0 if isinstance(change, TemplateChange) else 1

    return sorted(the_plan.changes(), key=stage)
