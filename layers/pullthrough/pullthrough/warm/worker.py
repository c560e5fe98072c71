"""warm_images: the jobs of one SQS batch, each one image tag imported through ECR (warm/warmer.py), at once.

One job (`WarmJob`, warm/job.py, an SQS message the planner wrote) imports one image tag through ECR as ECR imports
(`pullthrough.warm.importing`: trigger with one manifest GET, ask ECR's control plane for what it lacks, wait for ECR).
An import that outlasts one invocation goes back to the queue with a delay and is looked at again; every job ends
in one outcome (warm/results.py): warmed, refreshed, already_cached, or failed with a `Reason` (warm/outcomes.py).
The outcome is written to the run ledger exactly once; the job that completes the run closes it and publishes the
report exactly once (warm/run.py, `WarmRun`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pullthrough.aws import queue
from pullthrough.aws.ledger import Ledger, Recorded
from pullthrough.env import Settings, SettingsError, WarmEnv
from pullthrough.errors import EventError, PullthroughError
from pullthrough.observability import logger
from pullthrough.reporting import rejection
from pullthrough.warm.importing import Waiting
from pullthrough.warm.job import MAX_RECEIVES, WarmJob, details_of
from pullthrough.warm.outcomes import IMAGE_FAILURES, TAG_MOVED, Failure, Reason, failure, fix_for, reason_of
from pullthrough.warm.results import last_delivery, verified_of
from pullthrough.warm.run import MOVED_TAG_NOTE, WarmRun, account_of, ledger_for, publish, report_run, run_report
from pullthrough.warm.upstream_clients import (
    UPSTREAM_TIMEOUT,
    forget_kept_clients,
    kept_upstream_client,
    upstream_client,
)
from pullthrough.warm.warmer import ECR_TIMEOUT, JOBS_AT_ONCE, AwsEcrImports, Clocks, Warmer, warm_image

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# A job is not started with less Lambda time left than this: the message goes back to the queue instead.
MIN_SECONDS_FOR_A_JOB = 20.0


# --- the worker: one SQS batch ---------------------------------------------------------------------------------------


def handle(event: dict[str, Any], context: LambdaContext, env: WarmEnv) -> dict[str, Any]:
    """warm_images: warm every job of an SQS batch; records that failed go back to the queue (partial response)."""
    rejection.require_sqs_batch(event)

    worker = Worker(env, context)
    try:
        failed = worker.process_batch(event["Records"])
    finally:
        worker.close()
    # SQS's partial batch response (the event source mapping's ReportBatchItemFailures, template.yaml): the records
    # named go back to the queue, the rest are deleted. Powertools' batch utility answered the same way, but importing
    # it imports its pydantic event models too (about 60 ms of every cold start; bench/README.md, cold start).
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


class Worker(Warmer):
    """Warms the jobs of a batch (at once) with one ECR client, and records each outcome in the ledger."""

    def __init__(self, settings: Settings, context: LambdaContext | None = None, ledger: Ledger | None = None) -> None:
        super().__init__(settings, context, ledger)
        self._run: WarmRun | None = None
        # One ledger writer at a time per invocation: DynamoDB's conditions make concurrent writers safe, moto's
        # (the sandbox's) do not, and a write takes milliseconds next to the seconds a job spends pulling.
        self._writes = threading.Lock()
        self._unrecorded: Counter[str] = Counter()  # jobs of this invocation not recorded yet, by run

    @property
    def run(self) -> WarmRun:
        """The warm runs this worker records outcomes in and closes (the report as each run's META says)."""
        with self._lock:
            if self._run is None:
                self._run = WarmRun(self.ledger, self.settings)
            return self._run

    def process_batch(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Process a batch's records at once (up to JOBS_AT_ONCE); the message ids of those that failed, in order."""
        with ThreadPoolExecutor(max_workers=max(1, min(JOBS_AT_ONCE, len(records)))) as pool:
            failed = list(pool.map(self._failed, records))
        return [message_id for message_id in failed if message_id is not None]

    def _failed(self, record: Mapping[str, Any]) -> str | None:
        """Process one record; its message id when it failed (it goes back to the queue), else None."""
        try:
            self.process(record)
        except Exception as exc:
            message_id = str(record.get("messageId"))
            logger.warning(
                f"SQS message {message_id} failed: {exc}; back to the queue",
                exc_info=True,
                extra={"message_id": message_id},
            )
            return message_id
        return None

    def process(self, record: Mapping[str, Any]) -> None:
        """Handle one SQS record (as the event carries it): warm its job unless the ledger already has its outcome,
        then maybe close the run."""
        try:
            job = WarmJob.model_validate_json(record["body"])
        except ValidationError as exc:
            problem = f"SQS message {record.get('messageId')} is not a warm job: {exc.errors()[0]['msg']}"
            # It fails alike on every delivery: after MAX_RECEIVES the queue's redrive policy moves it to the
            # dead-letter queue, which keeps it for inspection (its body is not logged: it is not ours to trust).
            logger.error(
                f"{problem}; rejected, and kept in the dead-letter queue after {MAX_RECEIVES} deliveries",
                extra={"message_id": record.get("messageId"), "receive_count": receive_count(record)},
            )
            raise EventError(problem) from None
        logger.append_keys(run_id=job.run_id)
        known = self.ledger.job(job.run_id, job.key)
        if known is None:
            logger.warning("job is not part of any run in the ledger; dropped", extra={"subject": job.subject})
            return
        if known.status != "pending":
            # A redelivery: the outcome is counted already. Only the run's closer may still owe its report.
            logger.info("job already recorded; redelivery ignored", extra={"subject": job.subject})
            with self._writes:
                self.finish_run(job.run_id, job.key)
            return
        self._check_time(job)
        with self._warming(job.run_id) as counted:
            self._warm_and_record(job, record, counted)

    def _warm_and_record(self, job: WarmJob, record: Mapping[str, Any], counted: list[bool]) -> None:
        try:
            looked = self.warm(job)
            if isinstance(looked, Waiting):
                self.look_again(job, looked)  # this delivery is done; the job comes back later, not yet recorded
                return
            item = looked
        except Exception as exc:
            if receive_count(record) < MAX_RECEIVES:
                raise
            # The last delivery: an outcome keeps the run completable where the dead-letter queue would not.
            logger.exception("job failed on its last delivery", extra={"subject": job.subject})
            item = last_delivery(job, exc)
        logger.info(f"{job.subject}: {item.outcome.label}", extra=item.to_log())
        with self._writes:
            recorded = self.run.record(job, item)
            self._unrecorded[job.run_id] -= 1
            counted[0] = True
            if recorded is Recorded.CLOSED:
                logger.warning("the run was closed before this job finished; outcome not counted")
                return
            if self._unrecorded[job.run_id] > 0:
                # Another job of this run, in this invocation, is not recorded yet: the run cannot be complete, and
                # that job checks once it is recorded (one ledger read per run and batch rather than per job).
                return
            self.finish_run(job.run_id, job.key)

    @contextmanager
    def _warming(self, run_id: str) -> Iterator[list[bool]]:
        """Count a job of `run_id` as not recorded until the block marks it recorded (or ends without it)."""
        counted = [False]
        with self._writes:
            self._unrecorded[run_id] += 1
        try:
            yield counted
        finally:
            with self._writes:
                if not counted[0]:
                    self._unrecorded[run_id] -= 1

    def look_again(self, job: WarmJob, waiting: Waiting) -> None:
        """Hand the job back to the queue, to be looked at again in `waiting.delay` seconds."""
        if not self.settings.queue_url:
            raise SettingsError("WARM_QUEUE_URL is not set: a job waiting for ECR goes back to it (template.yaml)")
        later = job.model_copy(update={"progress": waiting.progress})
        queue.send_later(self.settings.queue_url, later.model_dump_json(exclude_none=True), waiting.delay)
        logger.info(
            f"{job.subject}: ECR is still importing {len(waiting.missing)} layer(s); again in {waiting.delay} s",
            extra={"subject": job.subject, "missing": list(waiting.missing), "looks": waiting.progress.looks - 1},
        )

    def finish_run(self, run_id: str, key: str) -> None:
        """Close the run when every job is counted; the one caller that closes it publishes the report (WarmRun)."""
        self.run.close(run_id, key)

    def _check_time(self, job: WarmJob) -> None:
        left = self._seconds_left()
        if left is not None and left < MIN_SECONDS_FOR_A_JOB:
            raise JobPostponed(f"{job.subject}: only {left:.0f}s of the invocation left; back to the queue")


def receive_count(record: Mapping[str, Any]) -> int:
    """How many times SQS has delivered the record (its ApproximateReceiveCount attribute; 1 when absent)."""
    return int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)


class JobPostponed(PullthroughError):
    """Too little Lambda time is left to start a job; SQS delivers it again."""


__all__ = [
    "ECR_TIMEOUT",
    "IMAGE_FAILURES",
    "JOBS_AT_ONCE",
    "MAX_RECEIVES",
    "MOVED_TAG_NOTE",
    "TAG_MOVED",
    "UPSTREAM_TIMEOUT",
    "AwsEcrImports",
    "Clocks",
    "Failure",
    "JobPostponed",
    "Reason",
    "WarmJob",
    "Warmer",
    "Worker",
    "account_of",
    "details_of",
    "failure",
    "fix_for",
    "forget_kept_clients",
    "handle",
    "kept_upstream_client",
    "last_delivery",
    "ledger_for",
    "publish",
    "reason_of",
    "report_run",
    "run_report",
    "upstream_client",
    "verified_of",
    "warm_image",
]
