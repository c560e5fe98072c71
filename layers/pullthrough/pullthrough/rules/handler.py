"""reconcile_rules' handle: the trigger, the events a run ignores, the run, the published report, the summary.

Separate from the run because the CLI runs `reconcile()` too and publishes nothing: only the deployed function
answers an event, publishes the report (reporting.publish), and returns the summary Lambda logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from pullthrough import config as config_module
from pullthrough.env import ReconcileEnv
from pullthrough.observability import logger
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.publish import publish
from pullthrough.rules.reconcile import Run
from pullthrough.rules.trigger import Trigger, TriggerKind

__all__ = ["LambdaContextLike", "Summary", "handle"]


class Summary(BaseModel):
    """What the handler returns: the report in brief, and what the run did with it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    status: str
    dry_run: bool
    trigger: str
    headline: str
    counts: dict[str, int] = {}
    items: list[str] = []  # "rule docker-hub: created (...)", one per rule and template
    notes: list[str] = []
    event_id: str | None = None  # the "Pullthrough Rules Reconciled" event, when one was sent
    message_id: str | None = None  # the SNS message of the report, when one was published
    ignored: str | None = None  # why the event was not acted upon


class LambdaContextLike(Protocol):
    """The parts of the Lambda context a run uses."""

    @property
    def function_name(self) -> str: ...

    @property
    def log_group_name(self) -> str: ...


def handle(event: Mapping[str, Any], context: LambdaContextLike | None, env: ReconcileEnv) -> dict[str, Any]:
    """Reconcile for one trigger event: plan, apply (unless a dry run), validate, report; returns the summary."""
    logger.remove_keys(["run_id"])  # a warm container's logger still carries the previous run's
    trigger = Trigger.from_event(event)
    if trigger.made_by(context.function_name if context else None):
        # Every write of a run comes back as a CloudTrail event; answering it would only repeat a no-op run.
        logger.info("ignored: a CloudTrail event of this function's own change", extra={"trigger": trigger.text})
        return _ignored(trigger, "the change was made by this function itself")
    if trigger.kind is TriggerKind.DEPLOY and trigger.stack and trigger.stack != env.stack_name:
        return _ignored(trigger, f"the event is about stack {trigger.stack}, not {env.stack_name}")
    config = config_module.load(env.config_path)
    run = Run(config, env, trigger, log_group=context.log_group_name if context else None)
    return execute(run).model_dump(mode="json")


def execute(run: Run) -> Summary:
    """Reconcile, log, count, publish; the summary the handler returns."""
    logger.append_keys(run_id=run.run_id)
    report = run.reconcile()
    message_id = publish(report, run.settings.topic_arn, run.config.notifications)
    return Summary(
        run_id=run.run_id,
        status=report.status.value,
        dry_run=report.dry_run,
        trigger=report.trigger,
        headline=report.headline(run.config.notifications.subject_prefix),
        counts={outcome.value: count for outcome, count in report.counts.items()},
        items=[_item_line(item) for item in report.items],
        notes=list(report.notes),
        event_id=run.event_id,
        message_id=message_id,
    )


def _ignored(trigger: Trigger, why: str) -> dict[str, Any]:
    summary = Summary(
        run_id="-", status="OK", dry_run=False, trigger=trigger.text, headline="nothing to do", ignored=why
    )
    return summary.model_dump(mode="json")


def _item_line(item: ReportItem) -> str:
    text = f"{item.subject}: {item.outcome.label}"
    if item.reason:
        text += f": {item.reason}"
    if item.details.valid is not None:
        text += f" [{'valid' if item.details.valid else 'invalid'}]"
    if item.fix:
        text += f". Fix: {item.fix}"
    return text
