"""A run's META item and the OPEN marker: open a run, write one decided whole, close it once, mark it reported, and
read runs back (one, the open ones, the recent ones).

Separate from the jobs (jobs.py): these writes are the run's lifecycle, conditioned so that a run opens once and
closes once however many callers try.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Unpack

from botocore.exceptions import ClientError

from pullthrough.aws.errors import aws_call, translate
from pullthrough.aws.ledger.items import (
    cancellation_reasons,
    code,
    epoch,
    job_item,
    meta_item,
    n,
    run_exists,
    run_state,
    s,
    shard_item,
)
from pullthrough.aws.ledger.records import (
    META,
    OPEN_PARTITION,
    RETENTION,
    RUN_PREFIX,
    JobEntry,
    OpenRun,
    RunFacts,
    RunState,
)
from pullthrough.aws.ledger.table import Table


@dataclass(frozen=True)
class Runs:
    """The runs in `table`."""

    table: Table

    # --- writes ------------------------------------------------------------------------------------------------

    def open_run(self, run_id: str, **run: Unpack[OpenRun]) -> None:
        """Write the run: its jobs first (decided and pending) and its plan shards, then META and the OPEN marker
        together.

        META comes last so no reader ever sees a run whose jobs are missing. AwsAlreadyExists for a reused run id.
        """
        expires = epoch(run["started"] + RETENTION)
        pk = RUN_PREFIX + run_id
        where = self.table.where(pk)
        if self.run(run_id) is not None:
            # Checked before the jobs are written: rewriting them would reset a live run's jobs to pending.
            raise run_exists("dynamodb:PutItem", where)
        shards = [shard_item(pk, shard, expires) for shard in run.get("shards") or ()]
        self.table.batch_put(shards + [job_item(pk, job, expires) for job in run["jobs"]], where)
        meta = meta_item(run_id, run, run["deadline"], run["jobs"], run.get("planned"), len(run.get("shards") or ()))
        marker = {
            "pk": s(OPEN_PARTITION),
            "sk": s(pk),
            "run_id": s(run_id),
            "deadline": n(epoch(run["deadline"])),
            "expires_at": n(expires),
        }
        name = self.table.name
        try:
            self.table.ddb().transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": meta, "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": name, "Item": marker}},
                ]
            )
        except ClientError as error:
            if (cancellation_reasons(error) or [""])[0] == "ConditionalCheckFailed":
                raise run_exists("dynamodb:TransactWriteItems", where) from error
            raise translate(error, "dynamodb:TransactWriteItems", where) from error

    def reported_run(self, run_id: str, *, jobs: Sequence[JobEntry], **facts: Unpack[RunFacts]) -> None:
        """Write a run the planner decided whole (nothing queued) and has reported: its META alone, closed.

        Its report, already published, holds its items; no JOB items, no OPEN marker, nothing left to close.
        """
        where = self.table.where(RUN_PREFIX + run_id)
        now = self.table.clock()
        meta = meta_item(run_id, facts, now, jobs)
        meta.update(
            {
                "status": s("closed"),
                "closed_by": s("planner"),
                "closed_at": s(now.isoformat()),
                "reported_at": s(now.isoformat()),
            }
        )
        try:
            self.table.ddb().put_item(
                TableName=self.table.name, Item=meta, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if code(error) == "ConditionalCheckFailedException":
                raise run_exists("dynamodb:PutItem", where) from error
            raise translate(error, "dynamodb:PutItem", where) from error

    def close(self, run_id: str, by: str) -> bool:
        """Close an open run; True for exactly one caller, however many try at once."""
        now = self.table.clock()
        try:
            self.table.ddb().update_item(
                TableName=self.table.name,
                Key={"pk": s(RUN_PREFIX + run_id), "sk": s(META)},
                UpdateExpression="SET #status = :closed, closed_at = :now, closed_by = :by",
                ConditionExpression="#status = :open",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":closed": s("closed"),
                    ":open": s("open"),
                    ":now": s(now.isoformat()),
                    ":by": s(by),
                },
            )
        except ClientError as error:
            if code(error) == "ConditionalCheckFailedException":
                return False
            raise translate(error, "dynamodb:UpdateItem", f"{self.table.name} {RUN_PREFIX}{run_id}") from error
        return True

    def mark_reported(self, run_id: str) -> None:
        """Note that the run's report went out, and take the run off the OPEN list."""
        self.table.mark_reported(RUN_PREFIX + run_id, OPEN_PARTITION)

    # --- reads -------------------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunState | None:
        """The run's META item (strongly consistent), or None when there is no such run."""
        item = self.table.get(RUN_PREFIX + run_id, META)
        return run_state(item) if item else None

    def open_run_ids(self) -> set[str]:
        """The ids of every run not yet reported (the OPEN partition alone)."""
        return {marker["run_id"]["S"] for marker in self._markers()}

    def open_runs(self) -> list[RunState]:
        """Every run not yet reported (still counting, or closed and waiting for its report), oldest first."""
        runs = []
        for marker in self._markers():
            state = self.run(marker["run_id"]["S"])
            if state is not None:
                runs.append(state)
        return sorted(runs, key=lambda run: run.started)

    def recent_runs(self, since: datetime) -> list[RunState]:
        """Every run started at or after `since`, newest first: a Scan of the META items (the table has no index on
        time; items expire after RETENTION, so it stays small). For `pullthrough status`, never a function's path."""
        runs: list[RunState] = []
        params: dict[str, Any] = {
            "TableName": self.table.name,
            "FilterExpression": "sk = :meta AND begins_with(pk, :run)",
            "ExpressionAttributeValues": {":meta": s(META), ":run": s(RUN_PREFIX)},
        }
        while True:
            with aws_call("dynamodb:Scan", f"{self.table.name} {RUN_PREFIX}*"):
                response = self.table.ddb().scan(**params)
            runs += [run_state(item) for item in response.get("Items") or []]
            start = response.get("LastEvaluatedKey")
            if not start:
                break
            params["ExclusiveStartKey"] = start
        return sorted((run for run in runs if run.started >= since), key=lambda run: run.started, reverse=True)

    def _markers(self) -> Iterator[dict[str, Any]]:
        return self.table.query("pk = :pk", {":pk": s(OPEN_PARTITION)}, self.table.where(OPEN_PARTITION))
