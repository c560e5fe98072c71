"""A warm run over the ledger, in one object: open it, record each job's outcome once, close it once when every job
is counted (or its deadline passed: the sweep), and report it exactly once.

`WarmRun` is the only place the warm report of a run is built (`run_report`, from the ledger's items) and the moved-tag
note derived (`notes_with_moved_tag`); the planner opens runs and sweeps through it, the worker records and closes
through it. The ledger (pullthrough.aws.ledger) is the adapter beneath; nothing outside pullthrough/warm/ holds it
(docs/ARCHITECTURE.md, "One object owns a warm run").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Unpack

from pullthrough.aws.ledger import (
    UNPLANNED,
    JobEntry,
    JobRecord,
    Ledger,
    OpenRun,
    Recorded,
    RunNotifications,
    RunState,
    RunTarget,
)
from pullthrough.env import Settings, SettingsError, hub_settings
from pullthrough.observability import logger
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.publish import publish as reporting_publish
from pullthrough.reporting.vocabulary import Kind, Outcome
from pullthrough.warm.job import MAX_RECEIVES, WarmJob
from pullthrough.warm.ledger import ledger_for
from pullthrough.warm.outcomes import TAG_MOVED, Reason, fix_for
from pullthrough.warm.results import verified_of

if TYPE_CHECKING:
    from pullthrough.config import Config
    from pullthrough.reporting.publish import Notifying

# template.yaml's PlanShardsQueue maxReceiveCount (warm/shards.py holds its other figures).
SHARD_DELIVERIES = 3
MOVED_TAG_NOTE = (
    "ECR re-checks a cached tag upstream at most once a day on its own; Pullthrough cannot make it sooner, so a tag "
    "that moved upstream is reported as refreshed once ECR serves the new digest."
)


@dataclass
class WarmRun:
    """The warm runs in `ledger`, reported with `settings` and the notifications each run's META carries.

    `config` (the planner's, which has one) gives a run its notifications when it opens, and stands in for a META
    written before runs carried them; warm_images has none: it never imports the config."""

    ledger: Ledger
    settings: Settings
    config: Callable[[], Config] | None = None

    def open(self, run_id: str, **run: Unpack[OpenRun]) -> None:
        """Open a run: its jobs (decided and pending), then its META; AwsAlreadyExists for a reused run id."""
        if "notifications" not in run and self.config is not None:
            run["notifications"] = notifications_of(self.config())
        self.ledger.open_run(run_id, **run)

    def notifications(self, state: RunState | None = None) -> Notifying:
        """What the run's report says: the META's notifications, else the config's, else the config's defaults."""
        if state is not None and state.notifications is not None:
            return state.notifications
        return notifications_of(self.config()) if self.config is not None else RunNotifications()

    def record(self, job: WarmJob, item: ReportItem) -> Recorded:
        """Count one job's outcome once, with what it moved and spent, and what it verified complete in ECR."""
        return self.ledger.record(
            job.run_id,
            job.key,
            item.outcome.value,
            item.model_dump_json(exclude_none=True),
            bytes_moved=item.details.bytes_moved or 0,
            pulls_spent=item.details.pulls_spent or 0,
            # what the hub's ECR holds, verified: a member's image is the member's, not the hub's to remember
            verified=verified_of(job, item) if job.target is None else None,
        )

    def close(self, run_id: str, key: str) -> None:
        """Close the run when every job is counted; the one caller that closes it publishes the report."""
        state = self.ledger.run(run_id)
        if state is None:
            return
        if not state.closed and state.complete and self.ledger.close(run_id, by=key):
            # Closing changes nothing the report reads (run id, stack, trigger, start, notes): no second read.
            report_run(self.ledger, state, self.notifications(state), self.settings)
        elif state.closed and state.closed_by == key and state.reported_at is None:
            # This job closed the run, but its report did not go out (the publish failed and SQS redelivered).
            report_run(self.ledger, state, self.notifications(state), self.settings)

    def sweep(self, now: datetime) -> list[str]:
        """Close and report earlier runs that cannot complete (their deadline passed), or completed unreported."""
        closed: list[str] = []
        for state in self.ledger.open_runs():
            overdue = now >= state.deadline
            if state.closed:
                if overdue:  # its closer could not publish, and SQS gave up redelivering
                    report_run(self.ledger, state, self.notifications(state), self.settings)
                    closed.append(state.run_id)
            elif (state.complete or overdue) and self.ledger.close(state.run_id, by="planner"):
                logger.warning(
                    "closing a run that cannot complete",
                    extra={"closed_run": state.run_id, "planned": state.planned, "done": state.done},
                )
                closed_state = self.ledger.run(state.run_id) or state
                report_run(self.ledger, closed_state, self.notifications(closed_state), self.settings)
                closed.append(state.run_id)
        return closed

    def report_whole(self, header: RunHeader, entries: Sequence[JobEntry]) -> Report:
        """Report a run the planner decided whole, as its ledger items would report it, then write its closed META.

        The report is published first, so a failed write re-plans rather than loses the report."""
        state = RunState(
            run_id=header.run_id,
            planned=len(entries),
            done=len(entries),
            counts={},
            status="closed",
            trigger=header.trigger,
            stack=header.stack,
            started=header.started,
            deadline=header.started,
            notes=tuple(header.notes),
            target=header.target,
        )
        records = [JobRecord(e.key, e.subject, e.status, e.outcome, e.report_item) for e in entries]
        report = run_report(state, records, self.settings)
        publish(report, self.notifications(), self.settings, header.target)
        self.ledger.reported_run(
            header.run_id,
            trigger=header.trigger,
            stack=header.stack,
            started=header.started,
            jobs=entries,
            notes=header.notes,
            target=header.target,
        )
        return report


def notes_with_moved_tag(notes: Iterable[str], items: Iterable[ReportItem], *, refreshing: bool = False) -> list[str]:
    """A run's notes, with the moved-tag note once when an item's tag moved upstream (or a job will refresh one)."""
    found = list(notes)
    moved = refreshing or any(i.reason_code == TAG_MOVED for i in items)
    if moved and MOVED_TAG_NOTE not in found:
        found.append(MOVED_TAG_NOTE)
    return found


@dataclass(frozen=True)
class RunHeader:
    """What a warm report says about its run, whichever way the run went (queued, in this process, a dry run)."""

    run_id: str
    trigger: str
    stack: str
    started: datetime
    notes: Sequence[str] = ()
    dry_run: bool = False
    target: RunTarget | None = None  # the organisation member the run warmed; None: the settings' account and region


def warm_report(header: RunHeader, items: Sequence[ReportItem], settings: Settings) -> Report:
    """THE warm report: every warm run's report is built here (the ledger's run, `pullthrough warm`, a dry run), the
    moved-tag note derived once from its items. A member's run is reported as the member's account and region."""
    target = header.target
    return Report(
        kind=Kind.WARM,
        stack=header.stack,
        region=target.region if target is not None else settings.region,
        account=target.account if target is not None else account_of(settings),
        run_id=header.run_id,
        trigger=header.trigger,
        started=header.started,
        dry_run=header.dry_run or settings.dry_run,
        items=tuple(items),
        notes=tuple(notes_with_moved_tag(header.notes, items)),
    )


def run_report(state: RunState, jobs: Sequence[JobRecord], settings: Settings) -> Report:
    """The run's report from its ledger items; a job that never reported back is failed as not finished."""
    items = [_item_of(job) for job in jobs]
    notes = list(dict.fromkeys(state.notes))  # plan shards append theirs: the same note once
    unfinished = sum(1 for job in jobs if job.status not in ("done", UNPLANNED))
    if unfinished:
        notes.append(
            f"{unfinished} job(s) never reported back; the run was closed by the next planner run so it accounts "
            "for every image."
        )
    header = RunHeader(
        state.run_id,
        state.trigger or "unknown",
        state.stack or "pullthrough",
        state.started,
        notes,
        target=state.target,
    )
    return warm_report(header, items, settings)


def _item_of(job: JobRecord) -> ReportItem:
    """A job's report item as recorded; a job that never reported back, failed as not finished."""
    if job.status == "done" and job.report_item:
        return ReportItem.model_validate_json(job.report_item)
    if job.status == UNPLANNED:
        return ReportItem(
            subject=job.subject,
            outcome=Outcome.FAILED,
            reason=(
                f"not planned: its plan shard failed on each of its {SHARD_DELIVERIES} deliveries and went to the "
                "PlanShards dead-letter queue, so the run was closed without it"
            ),
            fix=(
                "look at the plan_warming logs under the run id and at the PlanShards dead-letter queue (its message "
                "names the shard's images); the next run plans them again"
            ),
            reason_code=Reason.NOT_FINISHED.value,
        )
    return ReportItem(
        subject=job.subject,
        outcome=Outcome.FAILED,
        reason=(
            f"not finished: the job did not report back before the run was closed (after {MAX_RECEIVES} "
            "deliveries it goes to the warm queue's dead-letter queue)"
        ),
        fix=fix_for(Reason.NOT_FINISHED, image=job.subject),
        reason_code=Reason.NOT_FINISHED.value,
    )


def account_of(settings: Settings) -> str:
    """The account the report is about (ACCOUNT_ID, set by template.yaml's Globals)."""
    if not settings.account_id:
        raise SettingsError("ACCOUNT_ID is not set: reports name the account (template.yaml sets it to AWS::AccountId)")
    return settings.account_id


def report_run(ledger: Ledger, state: RunState, notifications: Notifying, settings: Settings) -> Report:
    """Build the closed run's report, publish it once, and take the run off the open list."""
    report = run_report(state, ledger.jobs(state.run_id), settings)
    publish(report, notifications, settings, state.target)
    ledger.mark_reported(state.run_id)
    return report


def publish(
    report: Report, notifications: Notifying, settings: Settings, target: RunTarget | None = None
) -> str | None:
    """Log the report, add its metrics, and send it to the report topic; an SNS error is raised, so the run's last
    job is retried until its report is sent (the ledger marks the run reported only after this returns). A member's
    run (`target`) goes to the hub's bus under the member's name."""
    hub = hub_settings()
    if target is not None:
        hub = hub.model_copy(update={"member": target.member})
    return reporting_publish(report, settings.topic_arn, notifications, strict=True, log_successes=False, hub=hub)


def notifications_of(config: Config) -> RunNotifications:
    """The config's notifications, as a run's META carries them."""
    return RunNotifications(config.notifications.success, config.notifications.subject_prefix)


__all__ = [
    "MOVED_TAG_NOTE",
    "RunHeader",
    "WarmRun",
    "account_of",
    "ledger_for",
    "notes_with_moved_tag",
    "notifications_of",
    "publish",
    "report_run",
    "run_report",
    "warm_report",
]
