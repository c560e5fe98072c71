"""A run's JOB items: count one job's outcome exactly once, and read jobs back.

Separate from the run's lifecycle (runs.py): the one write here is the transaction whose conditions make a redelivered
job count once and a job arriving after its run closed count not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack

from botocore.exceptions import ClientError

from pullthrough.aws.errors import translate
from pullthrough.aws.ledger.items import (
    cancellation_reasons,
    counter,
    job_record,
    n,
    s,
    shard_record,
    verified_update,
)
from pullthrough.aws.ledger.records import (
    DONE,
    JOB_PREFIX,
    META,
    PENDING,
    RUN_PREFIX,
    SHARD_PREFIX,
    UNPLANNED,
    Counted,
    JobRecord,
    Recorded,
    ShardRecord,
)
from pullthrough.aws.ledger.table import Table


@dataclass(frozen=True)
class Jobs:
    """The jobs of the runs in `table`."""

    table: Table

    def record(self, run_id: str, key: str, outcome: str, report_item: str, **counted: Unpack[Counted]) -> Recorded:
        """Count one job's outcome once: the JOB item goes pending -> done as META's counters grow, together.

        `verified`, when the job left the image complete in ECR, is remembered in the same transaction.
        """
        pk = RUN_PREFIX + run_id
        name = self.table.name
        job_update: dict[str, Any] = {
            "TableName": name,
            "Key": {"pk": s(pk), "sk": s(JOB_PREFIX + key)},
            "UpdateExpression": "SET #status = :done, outcome = :outcome, report_item = :item, finished_at = :now",
            "ConditionExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":done": s(DONE),
                ":pending": s(PENDING),
                ":outcome": s(outcome),
                ":item": s(report_item),
                ":now": s(self.table.clock().isoformat()),
            },
        }
        meta_update: dict[str, Any] = {
            "TableName": name,
            "Key": {"pk": s(pk), "sk": s(META)},
            "UpdateExpression": "ADD done :one, #counter :one, bytes_moved :bytes, pulls_spent :pulls",
            "ConditionExpression": "#status = :open",
            "ExpressionAttributeNames": {"#status": "status", "#counter": counter(outcome)},
            "ExpressionAttributeValues": {
                ":one": n(1),
                ":bytes": n(counted.get("bytes_moved", 0)),
                ":pulls": n(counted.get("pulls_spent", 0)),
                ":open": s("open"),
            },
        }
        writes: list[Any] = [{"Update": job_update}, {"Update": meta_update}]
        verified = counted.get("verified")
        if verified is not None:
            writes.append({"Update": {"TableName": name, **verified_update(verified)}})
        return self._count(writes, pk)

    def _count(self, writes: list[Any], pk: str) -> Recorded:
        try:
            self.table.ddb().transact_write_items(TransactItems=writes)
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None:
                raise translate(error, "dynamodb:TransactWriteItems", self.table.where(pk)) from error
            if reasons[0] == "ConditionalCheckFailed":
                return Recorded.DUPLICATE
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return Recorded.CLOSED
            if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                # The repository's memory is full (verified.py): count the job without remembering its image.
                return self._count(writes[:2], pk)
            raise translate(error, "dynamodb:TransactWriteItems", self.table.where(pk)) from error
        return Recorded.RECORDED

    def job(self, run_id: str, key: str) -> JobRecord | None:
        """One JOB item (strongly consistent), or None."""
        item = self.table.get(RUN_PREFIX + run_id, JOB_PREFIX + key)
        return job_record(item) if item else None

    def jobs(self, run_id: str) -> list[JobRecord]:
        """Every JOB item of the run, in key order; then, for a sharded run, each image a plan shard never decided
        (no JOB item: the shard failed every delivery), as UNPLANNED. One Query over the run's partition."""
        pk = RUN_PREFIX + run_id
        jobs: list[JobRecord] = []
        shards: list[ShardRecord] = []
        for item in self.table.query("pk = :pk", {":pk": s(pk)}, self.table.where(pk)):
            sk = item["sk"]["S"]
            if sk.startswith(JOB_PREFIX):
                jobs.append(job_record(item))
            elif sk.startswith(SHARD_PREFIX):
                shards.append(shard_record(item))
        known = {job.key for job in jobs}
        unplanned = {key: subject for shard in shards for key, subject in shard.images if key not in known}
        return jobs + [JobRecord(key, subject, UNPLANNED, None, None) for key, subject in sorted(unplanned.items())]
