"""The warm runs as a reader outside warm/ sees them: open and recent runs, their jobs, what earlier runs verified.

`pullthrough status` reads the warm run's ledger records through here, never through pullthrough.aws.ledger
(tools/house.py: only warm/ touches the ledger's records), so the records' shape can change behind this view.
It only reads: Query, GetItem, BatchGetItem and the Scan of recent runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pullthrough.aws.ledger import JobRecord, Ledger, RunState, Verified
from pullthrough.env import Settings
from pullthrough.warm.ledger import ledger_for


class RunsView:
    """What the run ledger says about runs, read only."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @classmethod
    def of(cls, settings: Settings) -> RunsView | None:
        """The view of the ledger LEDGER_TABLE names; None when there is none (ownership and runs are unknown)."""
        return cls(ledger_for(settings)) if settings.ledger_table else None

    def open_run_ids(self) -> set[str]:
        """The ids of every run not yet reported."""
        return self.ledger.open_run_ids()

    def recent(self, since: datetime) -> list[RunState]:
        """Open runs and runs started at or after `since`, newest first."""
        open_ids = self.ledger.open_run_ids()
        runs = {run.run_id: run for run in self.ledger.recent_runs(since)}
        for run in self.ledger.open_runs():
            runs.setdefault(run.run_id, run)
        ordered = sorted(runs.values(), key=lambda run: run.started, reverse=True)
        return [run for run in ordered if run.run_id in open_ids or run.started >= since]

    def jobs(self, run_id: str) -> list[JobRecord]:
        """Every job of the run, in key order."""
        return self.ledger.jobs(run_id)

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        """The unexpired verifications of these (repository, tag) keys."""
        return self.ledger.remembered(keys)


__all__ = ["JobRecord", "RunState", "RunsView", "Verified"]
