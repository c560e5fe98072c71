"""The run ledger (DynamoDB, docs/CONTRACTS.md): one item per warm run and one per job, so a run closes exactly once.

    pk = RUN#<run_id>  sk = META        planned, done, n_<outcome> counters, bytes and pulls, status, deadline, notes
    pk = RUN#<run_id>  sk = JOB#<key>   subject, status (pending | done), outcome and its report item (JSON)
    pk = RUN#<run_id>  sk = SHARD#<n>   a sharded run's plan shard: the images (key, subject) it decides, status
    pk = OPEN          sk = RUN#<run_id> present while the run is not reported: the next planner finds it here
    pk = PULLFAIL#<repository>  sk = <time>#<id>  a failed sync ECR reported (its action event): code, reason, image
    pk = VERIFIED#<repository>  sk = PART#00     per tag (attribute TAG#<tag>): the digest last verified complete in
                                                 ECR, and for which platforms, so the next run need not read its
                                                 manifests and blobs again; how many manifests its index lists (what a
                                                 new import costs), and when Pullthrough last looked at the tag
                                                 upstream (HEAD, import); PART#01.. when the tags outgrow one item
    pk = BUDGET#<allowance key> sk = SHARED      the pull allowance open runs share (budget.py): base, each run's
                                                 draw, and a version every write is conditioned on
    pk = CYCLE#<cycle> sk = META | REPORT#<account>#<region>#<run>   the organisation's warm cycles at the hub, and
    pk = OPENCYCLE     sk = CYCLE#<cycle>            the ones not yet reported (cycles.py: pullthrough/org/ only)

A job's outcome is written with its counters in one transaction whose conditions make a redelivered job count
once and a job arriving after its run closed count not at all. The job that sees `done == planned` tries the
conditional close; exactly one caller wins it and publishes the report. Every item expires (TTL `expires_at`).

One small adapter per kind of item, over one table (table.py): runs.py (META and OPEN), jobs.py (JOB), verified.py
(VERIFIED), allowances.py (BUDGET), pull_failures.py (PULLFAIL); records.py holds what they read and write, items.py
the attribute shapes. `Ledger` is the one object the warm package holds: the table's name, and each adapter's calls.
Only pullthrough/warm/ uses it (tools/house.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Unpack

from pullthrough.aws.ledger.allowances import Allowances
from pullthrough.aws.ledger.jobs import Jobs
from pullthrough.aws.ledger.pull_failures import PullFailures
from pullthrough.aws.ledger.records import (
    DONE,
    PENDING,
    RETENTION,
    UNPLANNED,
    VERIFIED_FOR,
    Counted,
    JobEntry,
    JobRecord,
    OpenRun,
    Recorded,
    RunFacts,
    RunNotifications,
    RunState,
    RunTarget,
    ShardRecord,
    Verified,
)
from pullthrough.aws.ledger.runs import Runs
from pullthrough.aws.ledger.shards import Shards
from pullthrough.aws.ledger.table import Table
from pullthrough.aws.ledger.verified import Memory

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from pullthrough.pull_failures import PullFailure
    from pullthrough.warm.budget import Shared


@dataclass
class Ledger:
    """The run ledger in table `table`."""

    table: str
    client: DynamoDBClient | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        store = Table(self.table, self.client, self.clock, self.sleep)
        self._runs = Runs(store)
        self._jobs = Jobs(store)
        self._shards = Shards(store)
        self._memory = Memory(store)
        self._allowances = Allowances(store, self._runs.open_run_ids, self._runs.run)
        self._failures = PullFailures(store)

    # --- runs (runs.py) ----------------------------------------------------------------------------------------

    def open_run(self, run_id: str, **run: Unpack[OpenRun]) -> None:
        """Write the run: its jobs (decided and pending), then META and the OPEN marker (Runs.open_run)."""
        self._runs.open_run(run_id, **run)

    def reported_run(self, run_id: str, *, jobs: Sequence[JobEntry], **facts: Unpack[RunFacts]) -> None:
        """Write a run the planner decided whole and has reported: its META alone, closed (Runs.reported_run)."""
        self._runs.reported_run(run_id, jobs=jobs, **facts)

    def close(self, run_id: str, by: str) -> bool:
        """Close an open run; True for exactly one caller, however many try at once."""
        return self._runs.close(run_id, by)

    def mark_reported(self, run_id: str) -> None:
        """Note that the run's report went out, and take the run off the OPEN list."""
        self._runs.mark_reported(run_id)

    def run(self, run_id: str) -> RunState | None:
        """The run's META item (strongly consistent), or None when there is no such run."""
        return self._runs.run(run_id)

    def open_run_ids(self) -> set[str]:
        """The ids of every run not yet reported (the OPEN partition alone)."""
        return self._runs.open_run_ids()

    def open_runs(self) -> list[RunState]:
        """Every run not yet reported (still counting, or closed and waiting for its report), oldest first."""
        return self._runs.open_runs()

    def recent_runs(self, since: datetime) -> list[RunState]:
        """Every run started at or after `since`, newest first (a Scan: `pullthrough status`, never a function's)."""
        return self._runs.recent_runs(since)

    # --- jobs (jobs.py) ----------------------------------------------------------------------------------------

    def record(self, run_id: str, key: str, outcome: str, report_item: str, **counted: Unpack[Counted]) -> Recorded:
        """Count one job's outcome once, with its counters and what it verified (Jobs.record)."""
        return self._jobs.record(run_id, key, outcome, report_item, **counted)

    def job(self, run_id: str, key: str) -> JobRecord | None:
        """One JOB item (strongly consistent), or None."""
        return self._jobs.job(run_id, key)

    def jobs(self, run_id: str) -> list[JobRecord]:
        """Every JOB item of the run, in key order."""
        return self._jobs.jobs(run_id)

    # --- plan shards (shards.py) -----------------------------------------------------------------------------------

    def add_entries(self, run_id: str, entries: Sequence[JobEntry]) -> bool:
        """A plan shard's entries, each created once and counted with it; False when the run was closed meanwhile."""
        return self._shards.add(run_id, entries)

    def shard_done(self, run_id: str, index: int, notes: Sequence[str] = ()) -> bool:
        """Record plan shard `index` done (with its notes); True the first time only."""
        return self._shards.done(run_id, index, notes)

    # --- verified images, shared allowances, reported pull failures -------------------------------------------------

    def remember(self, verified: Sequence[Verified]) -> None:
        """Remember images verified complete in ECR, each repository's item written whole (Memory.remember)."""
        self._memory.remember(verified)

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        """The unexpired verifications of these (repository, tag) keys (one BatchGetItem key per repository)."""
        return self._memory.remembered(keys)

    def draw(self, allowance: Shared) -> bool:
        """Store a shared allowance over the version it was read at; False when another planner wrote it since."""
        return self._allowances.draw(allowance)

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]:
        """The stored allowances of these keys, with only the draws of runs still open (budget.Shared.live)."""
        return self._allowances.shared(keys)

    def record_pull_failures(self, failures: Sequence[PullFailure]) -> None:
        """Record failed syncs ECR reported (BatchWriteItem); each expires after PULL_FAILURES_KEPT."""
        self._failures.record_pull_failures(failures)

    def pull_failures(self, repository: str, since: datetime) -> list[tuple[str, str]]:
        """(code, reason) of the failed syncs ECR reported for `repository` since `since`, oldest first."""
        return self._failures.pull_failures(repository, since)


__all__ = [
    "DONE",
    "PENDING",
    "RETENTION",
    "UNPLANNED",
    "VERIFIED_FOR",
    "Counted",
    "JobEntry",
    "JobRecord",
    "Ledger",
    "OpenRun",
    "Recorded",
    "RunFacts",
    "RunNotifications",
    "RunState",
    "RunTarget",
    "ShardRecord",
    "Verified",
]
