"""The run ledger (DynamoDB, docs/CONTRACTS.md): one item per warm run and one per job, so a run closes exactly once.

    pk = RUN#<run_id>  sk = META        planned, done, n_<outcome> counters, bytes and pulls, status, deadline, notes
    pk = RUN#<run_id>  sk = JOB#<key>   subject, status (pending | done), outcome and its report item (JSON)
    pk = OPEN          sk = RUN#<run_id> present while the run is not reported: the next planner finds it here
    pk = PULLFAIL#<repository>  sk = <time>#<id>  a failed sync ECR reported (its action event): code, reason, image
    pk = VERIFIED#<repository>  sk = TAG#<tag>   the digest of the tag last verified complete in ECR, and for which
                                                 platforms, so the next run need not read its manifests and blobs again;
                                                 and how many manifests its index lists (what a new import costs)
    pk = BUDGET#<allowance key> sk = SHARED      the pull allowance open runs share (budget.py): base, each run's
                                                 draw, and a version every write is conditioned on

A job's outcome is written with its counters in one transaction whose conditions make a redelivered job count
once and a job arriving after its run closed count not at all. The job that sees `done == planned` tries the
conditional close; exactly one caller wins it and publishes the report. Every item expires (TTL `expires_at`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call, translate
from pullthrough.errors import AwsAlreadyExists, AwsError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from pullthrough.pull_failures import PullFailure
    from pullthrough.warm.budget import Shared

OPEN_PARTITION = "OPEN"
META = "META"
JOB_PREFIX = "JOB#"
RUN_PREFIX = "RUN#"
PENDING = "pending"
DONE = "done"
VERIFIED_PREFIX = "VERIFIED#"
TAG_PREFIX = "TAG#"
RETENTION = timedelta(days=30)  # how long a run's items stay before DynamoDB's TTL removes them
VERIFIED_FOR = timedelta(days=7)  # a verification older than this is done again in full
PULL_FAILURE_PREFIX = "PULLFAIL#"
PULL_FAILURES_KEPT = timedelta(days=7)
BUDGET_PREFIX = "BUDGET#"
SHARED = "SHARED"
_WRITE_BATCH = 25  # BatchWriteItem's limit
_READ_BATCH = 100  # BatchGetItem's limit
_WRITE_ATTEMPTS = 6


class Recorded(StrEnum):
    """What happened to a job outcome sent to the ledger."""

    RECORDED = "recorded"  # counted now
    DUPLICATE = "duplicate"  # the job was already counted (a redelivery), or is not part of the run
    CLOSED = "closed"  # the run was closed before this job arrived (the next planner gave up waiting for it)


@dataclass(frozen=True)
class JobEntry:
    """One job of a run as the planner writes it: decided already (done, with its outcome) or pending."""

    key: str
    subject: str
    status: str = PENDING
    outcome: str | None = None
    report_item: str | None = None  # the ReportItem as JSON, when done
    bytes_moved: int = 0
    pulls_spent: int = 0


@dataclass(frozen=True)
class RunState:
    """A run's META item."""

    run_id: str
    planned: int
    done: int
    counts: dict[str, int]
    status: str
    trigger: str
    stack: str
    started: datetime
    deadline: datetime
    bytes_moved: int = 0
    pulls_spent: int = 0
    notes: tuple[str, ...] = ()
    closed_by: str | None = None
    closed_at: datetime | None = None
    reported_at: datetime | None = None

    @property
    def complete(self) -> bool:
        """Every planned job has an outcome."""
        return self.done >= self.planned

    @property
    def closed(self) -> bool:
        return self.status == "closed"


@dataclass(frozen=True)
class Verified:
    """ECR held `repository:tag` at `digest` with the manifest, config and layers of every platform in `wanted` it has.

    `wanted` is sorted; `platforms` are those of `wanted` the index has (empty for a single-platform manifest),
    `absent` those it lacks, `size` the bytes of their configs and layers. A digest is immutable and ECR keeps the
    blobs of an image it holds, so while ECR's tag still points at `digest` this stays true; it expires after
    VERIFIED_FOR all the same, and the image is verified in full again.
    """

    repository: str
    tag: str
    digest: str
    wanted: tuple[str, ...]
    platforms: tuple[str, ...]
    absent: tuple[str, ...]
    size: int
    at: datetime
    children: int = 0  # manifests the index lists (ECR imported them all): what its next import costs upstream

    @property
    def key(self) -> tuple[str, str]:
        return (self.repository, self.tag)

    def matches(self, digest: str, platforms: Sequence[str]) -> bool:
        """Whether this verification answers for `digest` with these wanted platforms."""
        return digest == self.digest and tuple(sorted(platforms)) == self.wanted


@dataclass(frozen=True)
class JobRecord:
    """A JOB item read back."""

    key: str
    subject: str
    status: str
    outcome: str | None
    report_item: str | None


@dataclass
class Ledger:
    """The run ledger in table `table`."""

    table: str
    client: DynamoDBClient | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    def _ddb(self) -> DynamoDBClient:
        if self.client is None:
            self.client = clients.client("dynamodb")
        return self.client

    # --- writes ------------------------------------------------------------------------------------------------

    def open_run(
        self,
        run_id: str,
        *,
        trigger: str,
        stack: str,
        started: datetime,
        deadline: datetime,
        jobs: Sequence[JobEntry],
        notes: Sequence[str] = (),
    ) -> None:
        """Write the run: its jobs first (decided and pending), then META and the OPEN marker together.

        META comes last so no reader ever sees a run whose jobs are missing. AwsAlreadyExists for a reused run id.
        """
        expires = _epoch(started + RETENTION)
        pk = RUN_PREFIX + run_id
        if self.run(run_id) is not None:
            # Checked before the jobs are written: rewriting them would reset a live run's jobs to pending.
            raise _run_exists("dynamodb:PutItem", f"{self.table} {pk}")
        items = [_job_item(pk, job, expires) for job in jobs]
        self._batch_put(items, f"{self.table} {pk}")
        meta = _meta_item(
            run_id, trigger=trigger, stack=stack, started=started, deadline=deadline, jobs=jobs, notes=notes
        )
        marker = {
            "pk": _s(OPEN_PARTITION),
            "sk": _s(pk),
            "run_id": _s(run_id),
            "deadline": _n(_epoch(deadline)),
            "expires_at": _n(expires),
        }
        try:
            self._ddb().transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": meta, "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": self.table, "Item": marker}},
                ]
            )
        except ClientError as error:
            if (_cancellation_reasons(error) or [""])[0] == "ConditionalCheckFailed":
                raise _run_exists("dynamodb:TransactWriteItems", f"{self.table} {pk}") from error
            raise translate(error, "dynamodb:TransactWriteItems", f"{self.table} {pk}") from error

    def reported_run(
        self,
        run_id: str,
        *,
        trigger: str,
        stack: str,
        started: datetime,
        jobs: Sequence[JobEntry],
        notes: Sequence[str] = (),
    ) -> None:
        """Write a run the planner decided whole (nothing queued) and has reported: its META alone, closed.

        Its report, already published, holds its items; no JOB items, no OPEN marker, nothing left to close.
        """
        pk = RUN_PREFIX + run_id
        now = self.clock()
        meta = _meta_item(run_id, trigger=trigger, stack=stack, started=started, deadline=now, jobs=jobs, notes=notes)
        meta.update(
            {
                "status": _s("closed"),
                "closed_by": _s("planner"),
                "closed_at": _s(now.isoformat()),
                "reported_at": _s(now.isoformat()),
            }
        )
        try:
            self._ddb().put_item(TableName=self.table, Item=meta, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                raise _run_exists("dynamodb:PutItem", f"{self.table} {pk}") from error
            raise translate(error, "dynamodb:PutItem", f"{self.table} {pk}") from error

    def record(
        self,
        run_id: str,
        key: str,
        outcome: str,
        report_item: str,
        *,
        bytes_moved: int = 0,
        pulls_spent: int = 0,
        verified: Verified | None = None,
    ) -> Recorded:
        """Count one job's outcome once: the JOB item goes pending -> done as META's counters grow, together.

        `verified`, when the job left the image complete in ECR, is remembered in the same transaction.
        """
        pk = RUN_PREFIX + run_id
        job_update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": _s(pk), "sk": _s(JOB_PREFIX + key)},
            "UpdateExpression": "SET #status = :done, outcome = :outcome, report_item = :item, finished_at = :now",
            "ConditionExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":done": _s(DONE),
                ":pending": _s(PENDING),
                ":outcome": _s(outcome),
                ":item": _s(report_item),
                ":now": _s(self.clock().isoformat()),
            },
        }
        meta_update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": _s(pk), "sk": _s(META)},
            "UpdateExpression": "ADD done :one, #counter :one, bytes_moved :bytes, pulls_spent :pulls",
            "ConditionExpression": "#status = :open",
            "ExpressionAttributeNames": {"#status": "status", "#counter": _counter(outcome)},
            "ExpressionAttributeValues": {
                ":one": _n(1),
                ":bytes": _n(bytes_moved),
                ":pulls": _n(pulls_spent),
                ":open": _s("open"),
            },
        }
        writes: list[Any] = [{"Update": job_update}, {"Update": meta_update}]
        if verified is not None:
            writes.append({"Put": {"TableName": self.table, "Item": _verified_item(verified)}})
        try:
            self._ddb().transact_write_items(TransactItems=writes)
        except ClientError as error:
            reasons = _cancellation_reasons(error)
            if reasons is None:
                raise translate(error, "dynamodb:TransactWriteItems", f"{self.table} {pk}") from error
            if reasons[0] == "ConditionalCheckFailed":
                return Recorded.DUPLICATE
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return Recorded.CLOSED
            raise translate(error, "dynamodb:TransactWriteItems", f"{self.table} {pk}") from error
        return Recorded.RECORDED

    def close(self, run_id: str, by: str) -> bool:
        """Close an open run; True for exactly one caller, however many try at once."""
        now = self.clock()
        try:
            self._ddb().update_item(
                TableName=self.table,
                Key={"pk": _s(RUN_PREFIX + run_id), "sk": _s(META)},
                UpdateExpression="SET #status = :closed, closed_at = :now, closed_by = :by",
                ConditionExpression="#status = :open",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":closed": _s("closed"),
                    ":open": _s("open"),
                    ":now": _s(now.isoformat()),
                    ":by": _s(by),
                },
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise translate(error, "dynamodb:UpdateItem", f"{self.table} {RUN_PREFIX}{run_id}") from error
        return True

    def mark_reported(self, run_id: str) -> None:
        """Note that the run's report went out, and take the run off the OPEN list."""
        pk = RUN_PREFIX + run_id
        with aws_call("dynamodb:TransactWriteItems", f"{self.table} {pk}"):
            self._ddb().transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": _s(pk), "sk": _s(META)},
                            "UpdateExpression": "SET reported_at = :now",
                            "ExpressionAttributeValues": {":now": _s(self.clock().isoformat())},
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": {"pk": _s(OPEN_PARTITION), "sk": _s(pk)}}},
                ]
            )

    def remember(self, verified: Sequence[Verified]) -> None:
        """Remember images verified complete in ECR (BatchWriteItem, 25 at a time)."""
        self._batch_put([_verified_item(v) for v in verified], f"{self.table} {VERIFIED_PREFIX}*")

    def draw(self, allowance: Shared) -> bool:
        """Store a shared allowance over the version it was read at; False when another planner wrote it since (read
        it again, fit again, draw again)."""
        pk = BUDGET_PREFIX + allowance.key
        draws = [{"run": d.run_id, "pulls": d.pulls, "at": d.at.astimezone(UTC).isoformat()} for d in allowance.draws]
        item = {
            "pk": _s(pk),
            "sk": _s(SHARED),
            "base": _n(allowance.base),
            "draws": _s(json.dumps(draws, separators=(",", ":"))),
            "version": _n(allowance.version + 1),
            "expires_at": _n(_epoch(self.clock() + RETENTION)),
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "version = :read", "ExpressionAttributeValues": {":read": _n(allowance.version)}}
            if allowance.version
            else {"ConditionExpression": "attribute_not_exists(version)"}
        )
        try:
            self._ddb().put_item(TableName=self.table, Item=item, **condition)
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise translate(error, "dynamodb:PutItem", f"{self.table} {pk}") from error
        return True

    # --- reads -------------------------------------------------------------------------------------------------

    def open_run_ids(self) -> set[str]:
        """The ids of every run not yet reported (the OPEN partition alone)."""
        return {
            marker["run_id"]["S"]
            for marker in self._query("pk = :pk", {":pk": _s(OPEN_PARTITION)}, f"{self.table} {OPEN_PARTITION}")
        }

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]:
        """The stored allowances of these keys, with only the draws of runs still open (budget.Shared.live)."""
        from pullthrough.warm.budget import Draw, Shared

        if not keys:
            return {}
        open_runs, now = self.open_run_ids(), self.clock()
        found: dict[str, Shared] = {}
        for key in keys:
            pk = BUDGET_PREFIX + key
            with aws_call("dynamodb:GetItem", f"{self.table} {pk}"):
                item = (
                    self._ddb()
                    .get_item(TableName=self.table, Key={"pk": _s(pk), "sk": _s(SHARED)}, ConsistentRead=True)
                    .get("Item")
                )
            if not item:
                continue
            try:
                draws = tuple(
                    Draw(str(d["run"]), int(d["pulls"]), datetime.fromisoformat(str(d["at"])))
                    for d in json.loads(_str(item, "draws") or "[]")
                )
            except (ValueError, KeyError, TypeError):
                draws = ()  # an item this code cannot read holds no draw it can honour; its version still guards it
            # A draw of a run that is not open but is in the ledger is a finished run's.
            finished = {d.run_id for d in draws if d.run_id not in open_runs and self.run(d.run_id) is not None}
            found[key] = Shared(key, _int(item, "base"), draws, _int(item, "version")).live(open_runs, finished, now)
        return found

    def run(self, run_id: str) -> RunState | None:
        """The run's META item (strongly consistent), or None when there is no such run."""
        pk = RUN_PREFIX + run_id
        with aws_call("dynamodb:GetItem", f"{self.table} {pk}"):
            response = self._ddb().get_item(
                TableName=self.table, Key={"pk": _s(pk), "sk": _s(META)}, ConsistentRead=True
            )
        item = response.get("Item")
        return _run_state(item) if item else None

    def job(self, run_id: str, key: str) -> JobRecord | None:
        """One JOB item (strongly consistent), or None."""
        pk = RUN_PREFIX + run_id
        with aws_call("dynamodb:GetItem", f"{self.table} {pk}"):
            response = self._ddb().get_item(
                TableName=self.table, Key={"pk": _s(pk), "sk": _s(JOB_PREFIX + key)}, ConsistentRead=True
            )
        item = response.get("Item")
        return _job_record(item) if item else None

    def jobs(self, run_id: str) -> list[JobRecord]:
        """Every JOB item of the run, in key order."""
        pk = RUN_PREFIX + run_id
        return [
            _job_record(item)
            for item in self._query(
                "pk = :pk AND begins_with(sk, :job)", {":pk": _s(pk), ":job": _s(JOB_PREFIX)}, f"{self.table} {pk}"
            )
        ]

    def open_runs(self) -> list[RunState]:
        """Every run not yet reported (still counting, or closed and waiting for its report), oldest first."""
        runs = []
        for marker in self._query("pk = :pk", {":pk": _s(OPEN_PARTITION)}, f"{self.table} {OPEN_PARTITION}"):
            state = self.run(marker["run_id"]["S"])
            if state is not None:
                runs.append(state)
        return sorted(runs, key=lambda run: run.started)

    def recent_runs(self, since: datetime) -> list[RunState]:
        """Every run started at or after `since`, newest first: a Scan of the META items (the table has no index on
        time; items expire after RETENTION, so it stays small). For `pullthrough status`, never a function's path."""
        runs: list[RunState] = []
        params: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "sk = :meta AND begins_with(pk, :run)",
            "ExpressionAttributeValues": {":meta": _s(META), ":run": _s(RUN_PREFIX)},
        }
        while True:
            with aws_call("dynamodb:Scan", f"{self.table} {RUN_PREFIX}*"):
                response = self._ddb().scan(**params)
            runs += [_run_state(item) for item in response.get("Items") or []]
            start = response.get("LastEvaluatedKey")
            if not start:
                break
            params["ExclusiveStartKey"] = start
        return sorted((run for run in runs if run.started >= since), key=lambda run: run.started, reverse=True)

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        """The unexpired verifications of these (repository, tag) keys (BatchGetItem, 100 at a time)."""
        now = self.clock()
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], Verified] = {}
        resource = f"{self.table} {VERIFIED_PREFIX}*"
        for begin in range(0, len(wanted), _READ_BATCH):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        {"pk": _s(VERIFIED_PREFIX + repository), "sk": _s(TAG_PREFIX + tag)}
                        for repository, tag in wanted[begin : begin + _READ_BATCH]
                    ]
                }
            }
            for attempt in range(_WRITE_ATTEMPTS):
                if attempt:
                    self.sleep(0.05 * 2**attempt)
                with aws_call("dynamodb:BatchGetItem", resource):
                    response = self._ddb().batch_get_item(RequestItems=request)
                for item in (response.get("Responses") or {}).get(self.table) or []:
                    verified = _verified(item)
                    if verified is not None and verified.at + VERIFIED_FOR > now:
                        found[verified.key] = verified
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
            # Keys still unprocessed are simply not remembered: their images are verified in full.
        return found

    def record_pull_failures(self, failures: Sequence[PullFailure]) -> None:
        """Record failed syncs ECR reported (BatchWriteItem); each expires after PULL_FAILURES_KEPT."""
        items = []
        for index, failure in enumerate(failures):
            facts = {"code": failure.code, "reason": failure.reason, "tag": failure.tag, "digest": failure.digest}
            items.append(
                {
                    "pk": _s(PULL_FAILURE_PREFIX + failure.repository),
                    "sk": _s(f"{failure.at.astimezone(UTC).isoformat()}#{index:04d}#{failure.code}"),
                    "failure": _s(json.dumps(facts, separators=(",", ":"))),
                    "expires_at": _n(_epoch(failure.at + PULL_FAILURES_KEPT)),
                }
            )
        self._batch_put(items, f"{self.table} {PULL_FAILURE_PREFIX}*")

    def pull_failures(self, repository: str, since: datetime) -> list[tuple[str, str]]:
        """(code, reason) of the failed syncs ECR reported for `repository` since `since`, oldest first."""
        found = []
        condition = "pk = :pk AND sk >= :since"
        values = {":pk": _s(PULL_FAILURE_PREFIX + repository), ":since": _s(since.astimezone(UTC).isoformat())}
        for item in self._query(condition, values, f"{self.table} {PULL_FAILURE_PREFIX}{repository}"):
            try:
                facts = json.loads(_str(item, "failure") or "")
                found.append((str(facts["code"]), str(facts["reason"])))
            except (ValueError, KeyError, TypeError):
                continue  # an item this code cannot read says nothing it can use
        return found

    # --- internals ---------------------------------------------------------------------------------------------

    def _query(self, condition: str, values: dict[str, Any], resource: str) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            params: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ConsistentRead": True,
            }
            if start:
                params["ExclusiveStartKey"] = start
            with aws_call("dynamodb:Query", resource):
                response = self._ddb().query(**params)
            yield from response.get("Items") or []
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def _batch_put(self, items: list[dict[str, Any]], resource: str) -> None:
        for begin in range(0, len(items), _WRITE_BATCH):
            requests: list[Any] = [{"PutRequest": {"Item": item}} for item in items[begin : begin + _WRITE_BATCH]]
            for attempt in range(_WRITE_ATTEMPTS):
                if attempt:
                    self.sleep(0.05 * 2**attempt)
                with aws_call("dynamodb:BatchWriteItem", resource):
                    response = self._ddb().batch_write_item(RequestItems={self.table: requests})
                requests = list((response.get("UnprocessedItems") or {}).get(self.table) or [])
                if not requests:
                    break
            if requests:
                raise AwsError(
                    "dynamodb:BatchWriteItem",
                    resource,
                    "UnprocessedItems",
                    f"{len(requests)} item(s) still unwritten after {_WRITE_ATTEMPTS} attempts; retry the run",
                )


# --- item shapes -------------------------------------------------------------------------------------------------


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _counter(outcome: str) -> str:
    return f"n_{outcome}"


def _job_item(pk: str, job: JobEntry, expires: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": _s(pk),
        "sk": _s(JOB_PREFIX + job.key),
        "subject": _s(job.subject),
        "status": _s(job.status),
        "expires_at": _n(expires),
    }
    if job.outcome:
        item["outcome"] = _s(job.outcome)
    if job.report_item:
        item["report_item"] = _s(job.report_item)
    return item


def _meta_item(
    run_id: str,
    *,
    trigger: str,
    stack: str,
    started: datetime,
    deadline: datetime,
    jobs: Sequence[JobEntry],
    notes: Sequence[str],
) -> dict[str, Any]:
    """A run's META item, open, its counters counting the jobs already done."""
    counts: dict[str, int] = {}
    for job in jobs:
        if job.status == DONE and job.outcome:
            counts[job.outcome] = counts.get(job.outcome, 0) + 1
    meta: dict[str, Any] = {
        "pk": _s(RUN_PREFIX + run_id),
        "sk": _s(META),
        "run_id": _s(run_id),
        "planned": _n(len(jobs)),
        "done": _n(sum(counts.values())),
        "bytes_moved": _n(sum(job.bytes_moved for job in jobs if job.status == DONE)),
        "pulls_spent": _n(sum(job.pulls_spent for job in jobs if job.status == DONE)),
        "status": _s("open"),
        "trigger": _s(trigger),
        "stack": _s(stack),
        "started": _s(started.isoformat()),
        "deadline": _n(_epoch(deadline)),
        "expires_at": _n(_epoch(started + RETENTION)),
    }
    meta.update({_counter(outcome): _n(count) for outcome, count in counts.items()})
    if notes:
        meta["notes"] = {"L": [_s(note) for note in notes]}
    return meta


def _verified_item(verified: Verified) -> dict[str, Any]:
    # One JSON attribute rather than seven: a run reads hundreds of these at once, and each attribute costs.
    facts = {
        "digest": verified.digest,
        "wanted": verified.wanted,
        "platforms": verified.platforms,
        "absent": verified.absent,
        "size": verified.size,
        "at": verified.at.isoformat(),
        "children": verified.children,
    }
    return {
        "pk": _s(VERIFIED_PREFIX + verified.repository),
        "sk": _s(TAG_PREFIX + verified.tag),
        "verified": _s(json.dumps(facts, separators=(",", ":"))),
        "expires_at": _n(_epoch(verified.at + VERIFIED_FOR)),
    }


def _verified(item: dict[str, Any]) -> Verified | None:
    """The item's verification; None for one this code cannot read (it is verified in full again)."""
    try:
        facts = json.loads(_str(item, "verified") or "")
        return Verified(
            repository=(_str(item, "pk") or "").removeprefix(VERIFIED_PREFIX),
            tag=(_str(item, "sk") or "").removeprefix(TAG_PREFIX),
            digest=str(facts["digest"]),
            wanted=tuple(str(p) for p in facts["wanted"]),
            platforms=tuple(str(p) for p in facts["platforms"]),
            absent=tuple(str(p) for p in facts["absent"]),
            size=int(facts["size"]),
            at=datetime.fromisoformat(facts["at"]),
            children=int(facts.get("children", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _int(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else 0


def _str(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else None


def _time(item: dict[str, Any], name: str) -> datetime | None:
    text = _str(item, name)
    return datetime.fromisoformat(text) if text else None


def _run_state(item: dict[str, Any]) -> RunState:
    counts = {name[2:]: int(value["N"]) for name, value in item.items() if name.startswith("n_") and "N" in value}
    started = _time(item, "started") or datetime.fromtimestamp(0, UTC)
    return RunState(
        run_id=_str(item, "run_id") or "",
        planned=_int(item, "planned"),
        done=_int(item, "done"),
        counts=counts,
        status=_str(item, "status") or "open",
        trigger=_str(item, "trigger") or "",
        stack=_str(item, "stack") or "",
        started=started,
        deadline=datetime.fromtimestamp(_int(item, "deadline"), UTC),
        bytes_moved=_int(item, "bytes_moved"),
        pulls_spent=_int(item, "pulls_spent"),
        notes=tuple(str(note["S"]) for note in (item.get("notes") or {}).get("L", []) if "S" in note),
        closed_by=_str(item, "closed_by"),
        closed_at=_time(item, "closed_at"),
        reported_at=_time(item, "reported_at"),
    )


def _job_record(item: dict[str, Any]) -> JobRecord:
    return JobRecord(
        key=(_str(item, "sk") or "").removeprefix(JOB_PREFIX),
        subject=_str(item, "subject") or "",
        status=_str(item, "status") or PENDING,
        outcome=_str(item, "outcome"),
        report_item=_str(item, "report_item"),
    )


def _run_exists(operation: str, resource: str) -> AwsAlreadyExists:
    return AwsAlreadyExists(operation, resource, "RunExists", "run ids are never reused")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "")


def _cancellation_reasons(error: ClientError) -> list[str] | None:
    """The per-item codes of a cancelled transaction ("None" where the item was fine), else None."""
    if _code(error) != "TransactionCanceledException":
        return None
    raw: Any = error.response
    reasons = raw.get("CancellationReasons")
    if not isinstance(reasons, list):
        return None
    return [str(reason.get("Code") or "None") for reason in reasons]


__all__ = ["JobEntry", "JobRecord", "Ledger", "Recorded", "RunState", "Verified"]
