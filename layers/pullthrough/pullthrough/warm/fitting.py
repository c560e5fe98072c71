"""Fitting a plan's jobs into the upstream pull budget: in order of need (absent, then incomplete, then moved), what
the budget cannot pay is deferred; what the jobs cost is drawn from the allowances open runs share (budget.py), and a
draw another planner overtook is fitted again on what that planner left.

Separate from budget.py, which is the arithmetic of one allowance: this turns wanted images into jobs, deferred
items and the notes that explain them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pullthrough.config import Config
from pullthrough.errors import AwsError
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.budget import Budget, allowance_key, run_of
from pullthrough.warm.importing import Wait
from pullthrough.warm.job import WarmJob
from pullthrough.warm.outcomes import Reason, fix_for
from pullthrough.warm.plan import Decided, Wanted, candidate_details
from pullthrough.warm.ports import Allowances

# Draws from a shared pull allowance that another planner's write may overtake before this planner gives up: as
# many as template.yaml's PlanWarmingShards MaximumConcurrency (10), so the shards of one wave, which finish deciding
# together, can each be overtaken by every sibling once (warm/shards.py).
DRAW_ATTEMPTS = 10


@dataclass(frozen=True)
class Fitting:
    """Fits wanted images into a run's budget; `allowances` None: this run's own share, shared with no other run."""

    config: Config
    allowances: Allowances | None
    clock: Callable[[], datetime]

    def draw(
        self, wanted: list[Wanted], budget: Budget, run_id: str, drawer: str | None = None
    ) -> tuple[list[WarmJob], list[Decided], list[str]]:
        """Fit the jobs into the budget and draw what they cost from the allowances open runs share, as `drawer` (a
        plan shard's draw id; the run id by default): a draw another planner overtook is fitted again on what that
        planner left."""
        for _ in range(DRAW_ATTEMPTS):
            if self.allowances is not None:
                shared = self.allowances.shared(budget.limited()) if budget.limited() else {}
                budget.share_with(drawer or run_id, shared)
            jobs, deferred, notes = self.fit(wanted, budget, run_id)
            if self.allowances is None or all(self.allowances.draw(a) for a in budget.drawn(self.clock())):
                return jobs, deferred, _sharing_notes(budget) + notes
        raise AwsError(
            "dynamodb:PutItem",
            "the ledger's shared pull allowances",
            "ConditionalCheckFailedException",
            f"other planners changed the allowance {DRAW_ATTEMPTS} times while this run drew from it; start the run "
            "again",
        )

    def fit(self, wanted: list[Wanted], budget: Budget, run_id: str) -> tuple[list[WarmJob], list[Decided], list[str]]:
        """Jobs in order of need (absent, then incomplete, then moved); what the budget cannot pay is deferred."""
        priority = {"warm": 0, "complete": 1, "refresh": 2}
        imports = self.config.warm.imports
        wait = Wait(imports.poll, imports.download_after, imports.give_up_after, imports.download)
        jobs: list[WarmJob] = []
        deferred: list[Decided] = []
        for want in sorted(wanted, key=lambda w: (priority[w.action], w.order)):
            c = want.candidate
            key = allowance_key(c.rule)
            if not budget.take(key, want.cost):
                remaining = budget.remaining(key)
                item = ReportItem(
                    subject=c.subject,
                    outcome=Outcome.DEFERRED,
                    reason=_deferral(budget, key, c.rule.entry.title, want.cost),
                    fix=fix_for(Reason.BUDGET, image=c.subject),
                    reason_code=Reason.BUDGET.value,
                    details=candidate_details(c, digest=want.expected_digest, pulls_remaining=remaining),
                )
                deferred.append(Decided(c.key, item))
                continue
            jobs.append(job_for(want, run_id, budget.left(key), wait))
        notes: list[str] = []
        if deferred:
            rules = sorted({d.item.details.rule or "" for d in deferred})
            notes.append(
                f"{len(deferred)} image(s) deferred: this run spent its share ({self.config.warm.budget_share:.0%}) "
                f"of the remaining pulls of rule(s) {', '.join(rules)}; the next run warms them first, since what "
                "this run warmed costs no pulls then."
            )
        return jobs, deferred, notes


def _deferral(budget: Budget, key: str, upstream: str, cost: int) -> str:
    """Why an image did not fit: the allowance, who spent it, and what the image needs."""
    share, spent = f"{budget.share:.0%}", budget.spent(key)
    shared = budget.shared(key)
    if shared is None:
        return (
            f"budget: this run may spend {share} of the {budget.remaining(key)} pulls {upstream} has left "
            f"({budget.allowance(key)}); {spent} are spent and this image needs {cost}"
        )
    holders = ", ".join(f"{draw.run_id} ({draw.pulls})" for draw in shared.holders(budget.run_id))
    return (
        f"budget: the runs open at once may spend {share} of the {shared.base} pulls {upstream} had left when the "
        f"first of them planned; open run(s) {holders} hold {shared.drawn(budget.run_id)}, this run spent {spent} "
        f"and this image needs {cost}"
    )


def _sharing_notes(budget: Budget) -> list[str]:
    """One note per allowance this run shares with another open run."""
    notes = []
    for key in budget.limited():
        shared = budget.shared(key)
        # The other shards of this run hold draws too; the note is about other runs.
        holders = shared.holders(budget.run_id) if shared is not None else ()
        others = sorted({run_of(d.run_id) for d in holders} - {run_of(budget.run_id)})
        if shared is None or not others:
            continue
        runs = ", ".join(others)
        notes.append(
            f"run(s) {runs} still open: this run drew {budget.spent(key)} pull(s) from the allowance it shares with "
            f"them ({key.split('#', 1)[0]}), {budget.share:.0%} of the {shared.base} pulls left when the first of "
            f"them planned, of which they hold {shared.drawn(budget.run_id)}"
        )
    return notes


def job_for(want: Wanted, run_id: str, pulls_remaining: int | None, wait: Wait) -> WarmJob:
    """The warm queue's message for a wanted image that fits the budget."""
    c = want.candidate
    return WarmJob(
        run_id=run_id,
        key=c.key,
        subject=c.subject,
        rule=c.rule.prefix,
        secret=c.rule.secret_name,
        upstream=c.rule.upstream,
        upstream_url=c.rule.upstream_url,
        repository=c.repository,
        upstream_repository=c.upstream_repository,
        tag=c.tag,
        pinned=c.reference.digest,
        platforms=c.platforms,
        action=want.action,
        expected_digest=want.expected_digest,
        previous_digest=want.previous_digest,
        cost=want.cost,
        pulls_remaining=pulls_remaining,
        wait=wait,
        source=c.source,
    )
