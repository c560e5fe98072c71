"""A dry run's report: what a run would do now, the outcomes planning decided and each job as the outcome it would
aim for. plan_warming with PULLTHROUGH_DRY_RUN, `pullthrough plan` and `pullthrough warm --dry-run` send or print it.

Separate from the planner (which makes the plan); built, like every warm report, by warm.run.warm_report.
"""

from __future__ import annotations

from datetime import datetime

from pullthrough.config import Config
from pullthrough.env import Settings
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.plan import Plan
from pullthrough.warm.run import RunHeader, warm_report


def dry_run_report(plan: Plan, config: Config, settings: Settings, trigger: str, started: datetime) -> Report:
    """What a run would do: the decided outcomes, and each job as the outcome it would aim for."""
    items = [d.item for d in plan.decided]
    for job in plan.jobs:
        outcome = Outcome.REFRESHED if job.action == "refresh" else Outcome.WARMED
        items.append(
            ReportItem(
                subject=job.subject,
                outcome=outcome,
                reason=f"dry run: would pull it through ECR ({job.cost} upstream pull(s) budgeted)",
                details=Details(
                    rule=job.rule,
                    upstream=job.upstream,
                    repository=job.repository,
                    digest=job.expected_digest,
                    previous_digest=job.previous_digest if job.action == "refresh" else None,
                    platforms=job.platforms,
                    pulls_remaining=job.pulls_remaining,
                    source=job.source,
                ),
            )
        )
    return warm_report(
        RunHeader(plan.run_id, trigger, config.stack, started, plan.notes, dry_run=True), items, settings
    )
