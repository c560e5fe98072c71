"""A sharded run's writes: the items a plan shard adds to its run, and the shard recorded done, each exactly once.

    add     each image's JOB item is created only where none exists (`attribute_not_exists`), in the same transaction
            as the META update that counts the done ones: an image is counted once however often its shard is
            delivered, and a redelivered shard never turns a job a worker already counted back to pending
    done    the SHARD item pending -> done with META's `shards_done` (and the shard's notes), together, once

Separate from jobs.py (a worker's outcome) and runs.py (the run's lifecycle): these are the planner's writes into a
run that is already open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pullthrough.aws.errors import translate
from pullthrough.aws.ledger.items import cancellation_reasons, counter, epoch, job_item, n, s
from pullthrough.aws.ledger.records import DONE, META, RETENTION, RUN_PREFIX, SHARD_PREFIX, JobEntry
from pullthrough.aws.ledger.table import Table
from pullthrough.errors import AwsError

# TransactWriteItems takes up to 100 actions (the DynamoDB API reference): 99 items and the META update counting them.
CHUNK = 99
# Every job's outcome updates META in a transaction too, so a chunk may be cancelled by a conflict on META
# (TransactionConflict): tried again this many times, with a growing pause, before the shard fails (and is redelivered).
ATTEMPTS = 6


@dataclass(frozen=True)
class Shards:
    """The plan shards of the runs in `table`."""

    table: Table

    def add(self, run_id: str, entries: Sequence[JobEntry]) -> bool:
        """Create the entries' JOB items that do not exist yet, counting the done ones in META with them; False when
        the run was closed meanwhile (the sweep gave up on it: its report already accounts for these images)."""
        pk = RUN_PREFIX + run_id
        expires = epoch(self.table.clock() + RETENTION)
        for start in range(0, len(entries), CHUNK):
            if not self._add_chunk(pk, list(entries[start : start + CHUNK]), expires):
                return False
        return True

    def _add_chunk(self, pk: str, entries: list[JobEntry], expires: int) -> bool:
        for attempt in range(ATTEMPTS):
            if not entries:
                return True
            if attempt:
                self.table.sleep(0.05 * 2**attempt)
            writes: list[Any] = [self._put(pk, entry, expires) for entry in entries] + [self._count(pk, entries)]
            try:
                self.table.ddb().transact_write_items(TransactItems=writes)
            except ClientError as error:
                reasons = cancellation_reasons(error)
                if reasons is None:
                    raise translate(error, "dynamodb:TransactWriteItems", self.table.where(pk)) from error
                if reasons[-1] == "ConditionalCheckFailed":
                    return False
                # Items that exist already (an earlier delivery of this shard wrote them) are left as they are.
                entries = [e for e, reason in zip(entries, reasons, strict=False) if reason != "ConditionalCheckFailed"]
                continue
            return True
        raise translate_conflict(self.table.where(pk))

    def _put(self, pk: str, entry: JobEntry, expires: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table.name,
                "Item": job_item(pk, entry, expires),
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }

    def _count(self, pk: str, entries: Sequence[JobEntry]) -> dict[str, Any]:
        """The META update counting the chunk's done entries (and nothing else), while the run is open."""
        counts: dict[str, int] = {}
        for entry in entries:
            if entry.status == DONE and entry.outcome:
                counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
        names = {"#status": "status"} | {f"#c{i}": counter(outcome) for i, outcome in enumerate(counts)}
        values = {":open": s("open"), ":done": n(sum(counts.values()))}
        values |= {f":c{i}": n(count) for i, count in enumerate(counts.values())}
        adds = ", ".join(["done :done"] + [f"#c{i} :c{i}" for i in range(len(counts))])
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": {"pk": s(pk), "sk": s(META)},
                "UpdateExpression": f"ADD {adds}",
                "ConditionExpression": "#status = :open",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def done(self, run_id: str, index: int, notes: Sequence[str]) -> bool:
        """Record shard `index` done, with its notes appended to the run's; True the first time only."""
        pk = RUN_PREFIX + run_id
        meta_values: dict[str, Any] = {":one": n(1), ":open": s("open")}
        update = "ADD shards_done :one"
        if notes:
            update += " SET notes = list_append(if_not_exists(notes, :none), :notes)"
            meta_values |= {":none": {"L": []}, ":notes": {"L": [s(note) for note in notes]}}
        writes: list[Any] = [
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"pk": s(pk), "sk": s(f"{SHARD_PREFIX}{index:05d}")},
                    "UpdateExpression": "SET #status = :done",
                    "ConditionExpression": "#status = :pending",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":done": s(DONE), ":pending": s("pending")},
                }
            },
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"pk": s(pk), "sk": s(META)},
                    "UpdateExpression": update,
                    "ConditionExpression": "#status = :open",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": meta_values,
                }
            },
        ]
        for attempt in range(ATTEMPTS):
            if attempt:
                self.table.sleep(0.05 * 2**attempt)
            try:
                self.table.ddb().transact_write_items(TransactItems=writes)
            except ClientError as error:
                reasons = cancellation_reasons(error)
                if reasons is None:
                    raise translate(error, "dynamodb:TransactWriteItems", self.table.where(pk)) from error
                if "ConditionalCheckFailed" in reasons:
                    return False  # done already (a redelivery), or the run was closed
                continue
            return True
        raise translate_conflict(self.table.where(pk))


def translate_conflict(where: str) -> AwsError:
    return AwsError(
        "dynamodb:TransactWriteItems",
        where,
        "TransactionConflict",
        f"other writers to the run kept conflicting after {ATTEMPTS} attempts; the shard is delivered again",
    )
