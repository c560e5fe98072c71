"""Runs open at the same time: what the ledger tells a new plan of the others.

    InFlight        a run still open, and the images it is warming (its pending jobs): a new run leaves them to it
    RunsAround      what a plan is told of other runs: what earlier runs verified, the allowances open runs share,
                    the images they hold (nothing: a plan alone, the CLI's warm and tests)
    Looking         a dry run's view of the shared allowances: it reads them, and draws nothing

Separate from the planner because overlapping runs are their own rule (docs/CONTRACTS.md, Planner): a run plans
only what no open run holds, so no image is imported twice and neither run waits for the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pullthrough.aws.ledger import PENDING, UNPLANNED, Ledger
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.budget import Shared
from pullthrough.warm.outcomes import Reason, fix_for
from pullthrough.warm.plan import Candidate, Decided, decided
from pullthrough.warm.ports import Allowances, Memory


@dataclass(frozen=True)
class InFlight:
    """A run still open: the images it is warming are left to it (its report gives their outcome)."""

    run_id: str
    trigger: str
    started: datetime


def in_flight(ledger: Ledger) -> dict[str, InFlight]:
    """The images runs still open are warming (their pending jobs), by key: a new run leaves them to those runs."""
    held: dict[str, InFlight] = {}
    for state in ledger.open_runs():
        if state.closed:
            continue
        for job in ledger.jobs(state.run_id):
            if job.status in (PENDING, UNPLANNED):  # UNPLANNED: its plan shard has not decided it yet
                held.setdefault(job.key, InFlight(state.run_id, state.trigger, state.started))
    return held


@dataclass(frozen=True)
class Looking:
    """A dry run's view of the shared allowances: it reads them, and draws nothing."""

    ledger: Ledger

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]:
        return self.ledger.shared(keys)

    def draw(self, allowance: Shared) -> bool:
        return True


@dataclass(frozen=True)
class RunsAround:
    """What a plan is told of other runs: `memory` (what earlier runs verified), the `allowances` open runs share
    (None: this run's own share, shared with no other run) and the images open runs are warming (`in_flight`)."""

    memory: Memory | None = None
    allowances: Allowances | None = None
    in_flight: Mapping[str, InFlight] = field(default_factory=dict)

    @classmethod
    def of(cls, ledger: Ledger) -> RunsAround:
        """A run that will open: it recalls, draws, and leaves open runs' images to them."""
        return cls(memory=ledger, allowances=ledger, in_flight=in_flight(ledger))

    @classmethod
    def looking(cls, ledger: Ledger | None, *, recall: bool) -> RunsAround:
        """A run that will not open (a dry run, a preview): it reads the ledger when there is one, writes nothing."""
        if ledger is None:
            return cls()
        return cls(memory=ledger if recall else None, allowances=Looking(ledger), in_flight=in_flight(ledger))


def leave_in_flight(
    candidates: list[Candidate], held: Mapping[str, InFlight], decided_: list[Decided]
) -> list[Candidate]:
    """The candidates no open run is warming; each one that is becomes `skipped`, naming the run."""
    left = []
    for c in candidates:
        holder = held.get(c.key)
        if holder is None:
            left.append(c)
            continue
        decided_.append(
            decided(
                c,
                Outcome.SKIPPED,
                reason=f"run {holder.run_id} ({holder.trigger}) is warming it; its report gives the outcome",
                fix=fix_for(Reason.IN_FLIGHT, image=c.subject),
                reason_code=Reason.IN_FLIGHT.value,
                severity=Severity.OK,
            )
        )
    return left


def in_flight_notes(held: Mapping[str, InFlight], decided_: list[Decided]) -> list[str]:
    """One note per open run this plan left images to."""
    runs: dict[str, int] = {}
    for d in decided_:
        if d.item.reason_code == Reason.IN_FLIGHT.value:
            holder = held[d.key]
            runs[holder.run_id] = runs.get(holder.run_id, 0) + 1
    return [
        f"{count} image(s) skipped: run {run_id} is still open and warming them (its report gives their "
        "outcome); this run plans only what no open run holds, so no image is imported twice and neither "
        "run waits for the other"
        for run_id, count in sorted(runs.items())
    ]
