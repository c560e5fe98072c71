"""gather_reports, the organisation's hub: records each member's report once per warm cycle, and publishes one hub
report per cycle, when every expected member account and region has reported or the cycle's deadline passed.

Two triggers (template.yaml): the queue the hub's bus rule fills with "Pullthrough Report" events (an SQS batch), and
a schedule that closes the cycles whose deadline passed (`{"trigger": "close-cycles"}`), naming every member that did
not report. The cycle is closed by one conditional write (the ledger's cycles.py), so exactly one caller publishes
its report, whichever comes first; a close whose publish failed is published again by the same record's redelivery
or, after the deadline, by the schedule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pullthrough import config as config_module
from pullthrough.aws.ledger.cycles import Cycles, CycleState, MemberReport, Recorded
from pullthrough.aws.stacksets import stack_instances
from pullthrough.errors import AwsError, EventError
from pullthrough.observability import logger
from pullthrough.org.cycles import deadline_of
from pullthrough.org.event import HubEvent
from pullthrough.org.expected import Expected, expected
from pullthrough.org.hub_report import Hub, hub_report
from pullthrough.reporting.model import Report
from pullthrough.reporting.publish import publish
from pullthrough.reporting.vocabulary import Kind

if TYPE_CHECKING:
    from pullthrough.config import Config
    from pullthrough.env import GatherEnv

CLOSE_TRIGGER = "close-cycles"
COMPLETE = "every expected member reported"
OVERDUE = "the cycle's deadline passed (schedule)"


@dataclass
class Gatherer:
    """The hub's cycles in `cycles`, for `env`, with the config `load()` reads and the members `expected_of` finds."""

    cycles: Cycles
    env: GatherEnv
    load: Callable[[], Config]
    expected_of: Callable[[Config], Expected]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @cached_property
    def config(self) -> Config:
        return self.load()

    @cached_property
    def expected(self) -> Expected:
        return self.expected_of(self.config)

    # --- a member's report -------------------------------------------------------------------------------------

    def take(self, envelope: Mapping[str, Any]) -> Recorded | None:
        """Record one report event and close its cycle when it completes it; None for an event not counted (a
        report other than warm). EventError for an event that is not a member's report."""
        event = HubEvent.from_envelope(dict(envelope), hub_account=self.env.account_id)
        if event.kind is not Kind.WARM:
            logger.info("not a warm report: not part of a cycle", extra={"kind": event.kind.value, "run": event.run_id})
            return None
        entry = MemberReport(
            account=event.account,
            region=event.region,
            run_id=event.run_id,
            member=event.member,
            kind=event.kind.value,
            report=event.report.to_json(),
            trimmed=event.trimmed,
        )
        deadline = deadline_of(event.cycle_start(), self.config.warm.schedule)
        recorded = self.cycles.record(event.cycle, deadline, entry)
        if recorded is Recorded.CLOSED:
            logger.warning(
                "a member's report arrived after its cycle closed; its own report went to its topic",
                extra={"cycle": event.cycle, "account": event.account, "region": event.region, "run": event.run_id},
            )
            return recorded
        # A duplicate may be the redelivery of the record that closed the cycle but could not publish: try again.
        self.close_if_complete(event.cycle, by=f"{event.account}/{event.region}/{event.run_id}")
        return recorded

    def close_if_complete(self, cycle: str, by: str) -> Report | None:
        """Close `cycle` and publish its report when every expected member reported; the report, when this call sent
        it."""
        state = self.cycles.state(cycle)
        if state is None:
            return None
        if state.closed:
            if state.closed_by == by and state.reported_at is None:
                return self._report(state, COMPLETE)  # this caller closed it; its publish failed before
            return None
        reported = {(entry.account, entry.region) for entry in self.cycles.reports(cycle)}
        if self.expected.complete(reported) and self.cycles.close(cycle, by=by):
            return self._report(state, COMPLETE)
        return None

    # --- the schedule ------------------------------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Close and report every cycle whose deadline passed (naming who did not report), and publish any closed
        cycle whose report did not go out; the cycles reported."""
        now = self.clock()
        done: list[str] = []
        for state in self.cycles.open_cycles():
            if now < state.deadline:
                continue
            if state.closed or self.cycles.close(state.cycle, by="deadline"):
                self._report(state, OVERDUE)
                done.append(state.cycle)
        return done

    def _report(self, state: CycleState, trigger: str) -> Report:
        config = self.config
        hub = Hub(config.stack, self.env.account_id, self.env.region)
        report = hub_report(state, self.cycles.reports(state.cycle), self.expected, hub, trigger)
        logger.append_keys(run_id=report.run_id)  # the report's Logs Insights query finds this invocation's lines
        # Strict, as a warm run's: an SNS error fails the invocation, and the ledger marks the cycle reported only
        # after the report went out (the redelivery or the schedule publishes it then).
        publish(report, self.env.topic_arn, config.notifications, strict=True, log_successes=False)
        self.cycles.mark_reported(state.cycle)
        return report


def gatherer_for(env: GatherEnv) -> Gatherer:
    """The hub's gatherer as the function runs it: the ledger's table, the deployed config, the StackSet's members."""

    def members(config: Config) -> Expected:
        return expected(
            config, lambda: stack_instances(env.stack_set(), call_as=env.stack_set_call_as), env.stack_set()
        )

    return Gatherer(Cycles.in_table(env.ledger_table), env, lambda: config_module.load(env.config_path), members)


def handle(event: Any, context: Any, env: GatherEnv) -> dict[str, Any]:
    """gather_reports: an SQS batch of member report events, or the schedule's close-cycles."""
    gatherer = gatherer_for(env)
    if isinstance(event, dict) and event.get("trigger") == CLOSE_TRIGGER:
        return {"closed": gatherer.sweep()}
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise EventError(
            f'gather_reports takes an SQS batch of "Pullthrough Report" events or {{"trigger": "{CLOSE_TRIGGER}"}}'
        )
    return take_batch(gatherer, event["Records"])


def take_batch(gatherer: Gatherer, records: list[Any]) -> dict[str, Any]:
    """Each record once; an AWS error fails that record alone (SQS redelivers it: ReportBatchItemFailures), an
    unreadable event is logged and dropped (it would fail the same way every time)."""
    failures: list[dict[str, str]] = []
    counted: dict[str, int] = {}
    for record in records:
        message_id = str(record.get("messageId") or "")
        try:
            outcome = gatherer.take(json.loads(record.get("body") or "{}"))
        except (EventError, ValueError) as exc:
            logger.error("a report event the hub cannot take", extra={"message_id": message_id, "error": str(exc)})
            outcome = None
        except AwsError as exc:
            logger.error(
                "a report event not recorded; SQS retries it", extra={"message_id": message_id, "error": str(exc)}
            )
            failures.append({"itemIdentifier": message_id})
            continue
        key = outcome.value if outcome else "skipped"
        counted[key] = counted.get(key, 0) + 1
    return {"batchItemFailures": failures, "counted": counted}
