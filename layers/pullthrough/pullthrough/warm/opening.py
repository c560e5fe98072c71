"""The planner's side of the run ledger and the warm queue: open a planned run (every image, decided or pending) and
queue its jobs, report a run the planner decided whole, and remember what it verified, through the one WarmRun
(warm/run.py), which also sweeps the earlier runs that can no longer complete.

Separate from the planner, which decides what a run is: this module is where a plan is written down, so the ledger
calls a warm run makes at planning time stand together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pullthrough.aws import queue
from pullthrough.aws.ledger import DONE, JobEntry, Ledger, RunTarget, Verified
from pullthrough.config import Config
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.warm.plan import Decided, Plan
from pullthrough.warm.run import RunHeader, WarmRun

# A run still open this long after it started (plus the longest an import may be waited for) has jobs that will not
# come back (dead-letter queue): each job is delivered up to MAX_RECEIVES (3) times, each delivery hidden for the
# queue's visibility timeout (30 minutes).
STALE_AFTER = timedelta(hours=3)
# ...plus the time a long queue takes to drain at the event source's lowest concurrency (2), one job at a time.
DRAIN_SECONDS_PER_JOB = 15.0


def ledger_entries(plan: Plan) -> list[JobEntry]:
    """The plan as ledger items: decided outcomes done, jobs pending."""
    return done_entries(plan.decided) + [JobEntry(key=job.key, subject=job.subject) for job in plan.jobs]


def done_entries(decided: Iterable[Decided]) -> list[JobEntry]:
    """Outcomes decided at planning time as ledger items, done, each with its report item."""
    return [
        JobEntry(
            key=d.key,
            subject=d.item.subject,
            status=DONE,
            outcome=d.item.outcome.value,
            report_item=d.item.model_dump_json(exclude_none=True),
        )
        for d in decided
    ]


def open_run(
    run: WarmRun, plan: Plan, config: Config, trigger: str, started: datetime, target: RunTarget | None = None
) -> None:
    """Write the run's META and its items; its deadline leaves every job its deliveries, waits and the queue's drain.
    `target`: the organisation member the run warms (None: this account and region)."""
    run.open(
        plan.run_id,
        trigger=trigger,
        stack=config.stack,
        started=started,
        deadline=started
        + STALE_AFTER
        + timedelta(seconds=config.warm.imports.give_up_after + DRAIN_SECONDS_PER_JOB * len(plan.jobs)),
        jobs=ledger_entries(plan),
        notes=plan.notes,
        target=target,
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
    run: WarmRun, plan: Plan, config: Config, trigger: str, started: datetime, target: RunTarget | None = None
) -> None:
    """Report a run the planner decided whole (nothing to queue), as its ledger items would report it."""
    header = RunHeader(plan.run_id, trigger, config.stack, started, plan.notes, target=target)
    run.report_whole(header, sorted(ledger_entries(plan), key=lambda entry: entry.key))
