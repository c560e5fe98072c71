"""The planner's side of the run ledger and the warm queue: open a planned run (every image, decided or pending) and
queue its jobs, report a run the planner decided whole, remember what it verified, and first close and report the
earlier runs that can no longer complete (sweep).

Separate from the planner, which decides what a run is: this module is where a plan is written down, so the ledger
calls a warm run makes at planning time stand together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pullthrough.aws import queue
from pullthrough.aws.ledger import DONE, JobEntry, JobRecord, Ledger, RunState, Verified
from pullthrough.config import Config
from pullthrough.env import Settings
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.warm.plan import Plan
from pullthrough.warm.worker import publish, report_run, run_report

# A run still open this long after it started (plus the longest an import may be waited for) has jobs that will not
# come back (dead-letter queue): each job is delivered up to MAX_RECEIVES (3) times, each delivery hidden for the
# queue's visibility timeout (30 minutes).
STALE_AFTER = timedelta(hours=3)
# ...plus the time a long queue takes to drain at the event source's lowest concurrency (2), one job at a time.
DRAIN_SECONDS_PER_JOB = 15.0


def ledger_entries(plan: Plan) -> list[JobEntry]:
    """The plan as ledger items: decided outcomes done, jobs pending."""
    entries = [
        JobEntry(
            key=d.key,
            subject=d.item.subject,
            status=DONE,
            outcome=d.item.outcome.value,
            report_item=d.item.model_dump_json(exclude_none=True),
        )
        for d in plan.decided
    ]
    entries += [JobEntry(key=job.key, subject=job.subject) for job in plan.jobs]
    return entries


def open_run(ledger: Ledger, plan: Plan, config: Config, trigger: str, started: datetime) -> None:
    """Write the run's META and its items; its deadline leaves every job its deliveries, waits and the queue's drain."""
    ledger.open_run(
        plan.run_id,
        trigger=trigger,
        stack=config.stack,
        started=started,
        deadline=started
        + STALE_AFTER
        + timedelta(seconds=config.warm.imports.give_up_after + DRAIN_SECONDS_PER_JOB * len(plan.jobs)),
        jobs=ledger_entries(plan),
        notes=plan.notes,
    )


def queue_jobs(queue_url: str, plan: Plan) -> int:
    """Send the plan's jobs to the warm queue; the number sent."""
    return queue.send_batch(queue_url, [job.model_dump_json(exclude_none=True) for job in plan.jobs])


def remember(ledger: Ledger, verified: Sequence[Verified]) -> None:
    """Remember what the plan verified in full; a failure costs the next run a full verification, nothing more."""
    if not verified:
        return
    try:
        ledger.remember(verified)
    except AwsError as exc:
        logger.warning("verified images could not be remembered", extra={"images": len(verified), "error": str(exc)})


def report_whole_run(
    ledger: Ledger, plan: Plan, config: Config, settings: Settings, trigger: str, started: datetime
) -> None:
    """Report a run the planner decided whole, as its ledger items would report it, then write its closed META."""
    entries = sorted(ledger_entries(plan), key=lambda entry: entry.key)
    state = RunState(
        run_id=plan.run_id,
        planned=len(entries),
        done=len(entries),
        counts={},
        status="closed",
        trigger=trigger,
        stack=config.stack,
        started=started,
        deadline=started,
        notes=plan.notes,
    )
    records = [JobRecord(e.key, e.subject, e.status, e.outcome, e.report_item) for e in entries]
    publish(run_report(state, records, settings), config, settings)
    ledger.reported_run(
        plan.run_id, trigger=trigger, stack=config.stack, started=started, jobs=entries, notes=plan.notes
    )


def sweep(ledger: Ledger, config: Config, settings: Settings, now: datetime) -> list[str]:
    """Close and report earlier runs that cannot complete (their deadline passed), or completed unreported."""
    closed: list[str] = []
    for state in ledger.open_runs():
        overdue = now >= state.deadline
        if state.closed:
            if overdue:  # its closer could not publish, and SQS gave up redelivering
                report_run(ledger, state, config, settings)
                closed.append(state.run_id)
        elif (state.complete or overdue) and ledger.close(state.run_id, by="planner"):
            logger.warning(
                "closing a run that cannot complete",
                extra={"closed_run": state.run_id, "planned": state.planned, "done": state.done},
            )
            report_run(ledger, ledger.run(state.run_id) or state, config, settings)
            closed.append(state.run_id)
    return closed
