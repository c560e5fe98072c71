"""warm_images: the jobs of one SQS batch, each one image tag imported through ECR, at once.

One job (`WarmJob`, warm/job.py, an SQS message the planner wrote) imports one image tag through ECR as ECR imports
(`pullthrough.warm.importing`: trigger with one manifest GET, ask ECR's control plane for what it lacks, wait for ECR).
An import that outlasts one invocation goes back to the queue with a delay and is looked at again; every job ends
in one outcome (warm/results.py): warmed, refreshed, already_cached, or failed with a `Reason` (warm/outcomes.py).
The outcome is written to the run ledger exactly once; the job that completes the run closes it and publishes the
report exactly once (warm/run.py, `WarmRun`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from pydantic import ValidationError

from pullthrough import config as config_module
from pullthrough.aws import ecr as ecr_adapter
from pullthrough.aws import queue
from pullthrough.aws.ledger import Ledger, Recorded
from pullthrough.env import Settings, SettingsError, WarmEnv
from pullthrough.errors import AwsError, EventError, PullthroughError
from pullthrough.observability import logger
from pullthrough.registry import Manifest, RegistryClient
from pullthrough.reporting import ReportItem, rejection
from pullthrough.warm.importing import EcrImports, Import, Waiting
from pullthrough.warm.job import MAX_RECEIVES, WarmJob, details_of
from pullthrough.warm.outcomes import IMAGE_FAILURES, TAG_MOVED, Failure, Reason, failure, fix_for, reason_of
from pullthrough.warm.refusals import Diagnose
from pullthrough.warm.results import Told, last_delivery, outcome_of, verified_of
from pullthrough.warm.run import (
    MOVED_TAG_NOTE,
    WarmRun,
    account_of,
    ledger_for,
    publish,
    report_run,
    run_report,
)
from pullthrough.warm.upstream_clients import (
    UPSTREAM_TIMEOUT,
    forget_kept_clients,
    kept_upstream_client,
    upstream_client,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from pullthrough.aws.ecr import Images
    from pullthrough.config import Config

# Seconds one call to the ECR registry endpoint may take before it counts as a timeout (manifest GETs, blob pulls).
ECR_TIMEOUT = 30.0
# A job is not started with less Lambda time left than this: the message goes back to the queue instead.
MIN_SECONDS_FOR_A_JOB = 20.0
# Jobs of one SQS batch warmed at once. A job mostly waits (on ECR importing from the upstream), so one invocation
# keeps its whole batch in flight instead of paying those waits one after another.
JOBS_AT_ONCE = 10


@dataclass(frozen=True)
class Clocks:
    """What an import looks at the time with: the wall clock, a monotonic one, and a pause (tests pass fakes)."""

    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def warm_image(
    job: WarmJob,
    ecr: EcrImports,
    *,
    diagnose: Diagnose = lambda: None,
    told: Told = lambda repository, since: [],
    seconds_left: float | None = None,
    clocks: Clocks | None = None,
) -> ReportItem | Waiting:
    """Import one image tag through ECR (see warm.importing): its outcome, or Waiting to look again later."""
    clocks = clocks or Clocks()
    importer = Import(
        ecr,
        job.repository,
        job.tag,
        job.platforms,
        job.pinned,
        job.wait,
        trigger=job.action != "complete",
        previous=job.previous_digest,
        now=clocks.now,
        clock=clocks.clock,
        sleep=clocks.sleep,
    )
    result = importer.look(job.progress, seconds_left)
    if isinstance(result, Waiting):
        return result
    return outcome_of(job, result, ecr, diagnose, clocks.now(), told)


@dataclass(frozen=True)
class AwsEcrImports:
    """EcrImports over ECR: the registry endpoint (a RegistryClient with ECR's token) and the control plane."""

    registry: RegistryClient
    region: str | None

    def trigger(self, repository: str, tag: str) -> Manifest:
        return self.registry.get_manifest(repository, tag)

    def images(self, repository: str, references: Sequence[str]) -> Images:
        return ecr_adapter.get_images(repository, references, self.region)

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]:
        return ecr_adapter.layer_states(repository, digests, self.region)

    def request_layer(self, repository: str, digest: str) -> str:
        return ecr_adapter.request_layer(repository, digest, self.region)

    def download(self, repository: str, digest: str) -> int:
        return self.registry.fetch_blob(repository, digest)


# --- the worker: one SQS batch ---------------------------------------------------------------------------------------


def handle(event: dict[str, Any], context: LambdaContext, env: WarmEnv) -> dict[str, Any]:
    """warm_images: warm every job of an SQS batch; records that failed go back to the queue (partial response)."""
    rejection.require_sqs_batch(event)

    worker = Worker(env, context)
    # With the logger, a job that fails (and goes back to the queue) is logged at WARNING with its error; without it,
    # Powertools says so at DEBUG only and the failure leaves no trace in the function's logs.
    processor = ConcurrentBatchProcessor(
        event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logging.getLogger(logger.name)
    )
    try:
        response = process_partial_response(
            event=event, record_handler=worker.process, processor=processor, context=context
        )
    finally:
        worker.close()
    return dict(response)


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor, with the records of a batch handled at once (up to JOBS_AT_ONCE)."""

    def process(self) -> list[tuple[Any, ...]]:
        if len(self.records) <= 1:
            return super().process()
        with ThreadPoolExecutor(max_workers=min(JOBS_AT_ONCE, len(self.records))) as pool:
            return list(pool.map(self._process_record, self.records))


class Worker:
    """Warms the jobs of a batch (at once) with one ECR client, and records each outcome in the ledger."""

    def __init__(
        self,
        settings: Settings,
        context: LambdaContext | None = None,
        config: Config | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self._config = config
        self._ledger = ledger
        self._run: WarmRun | None = None
        self._ecr: RegistryClient | None = None
        self._upstreams: dict[str, RegistryClient | None] = {}
        self._lock = threading.RLock()  # the lazily built config, ledger and clients, shared by the batch's jobs
        # One ledger writer at a time per invocation: DynamoDB's conditions make concurrent writers safe, moto's
        # (the sandbox's) do not, and a write takes milliseconds next to the seconds a job spends pulling.
        self._writes = threading.Lock()
        self._unrecorded: Counter[str] = Counter()  # jobs of this invocation not recorded yet, by run

    @property
    def config(self) -> Config:
        with self._lock:
            if self._config is None:
                # Loaded on first use: most warm_images invocations never read the config (only a run's last job, for
                # the report, and a failed job, to ask the upstream why).
                self._config = config_module.load(self.settings.config_path)
            return self._config

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                self._ledger = ledger_for(self.settings)
            return self._ledger

    @property
    def run(self) -> WarmRun:
        """The warm runs this worker records outcomes in and closes (the config is read only for a report)."""
        with self._lock:
            if self._run is None:
                self._run = WarmRun(self.ledger, self.settings, lambda: self.config)
            return self._run

    def ecr(self) -> RegistryClient:
        """The ECR registry endpoint's client, with a token from GetAuthorizationToken."""
        with self._lock:
            if self._ecr is None:
                url = self.settings.registry_url()
                credentials = ecr_adapter.authorization(url, self.settings.region)
                self._ecr = RegistryClient(
                    url, name="ECR", credentials=credentials, timeout=ECR_TIMEOUT, connections=JOBS_AT_ONCE
                )
            return self._ecr

    def close(self) -> None:
        """Close the registry connections this worker opened."""
        for client in [self._ecr, *self._upstreams.values()]:
            if client is not None:
                client.close()

    def process(self, record: SQSRecord) -> None:
        """Handle one SQS record: warm its job unless the ledger already has its outcome, then maybe close the run."""
        try:
            job = WarmJob.model_validate_json(record.body)
        except ValidationError as exc:
            problem = f"SQS message {record.message_id} is not a warm job: {exc.errors()[0]['msg']}"
            # It fails alike on every delivery: after MAX_RECEIVES the queue's redrive policy moves it to the
            # dead-letter queue, which keeps it for inspection (its body is not logged: it is not ours to trust).
            logger.error(
                f"{problem}; rejected, and kept in the dead-letter queue after {MAX_RECEIVES} deliveries",
                extra={"message_id": record.message_id, "receive_count": record.attributes.approximate_receive_count},
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

    def _warm_and_record(self, job: WarmJob, record: SQSRecord, counted: list[bool]) -> None:
        try:
            looked = self.warm(job)
            if isinstance(looked, Waiting):
                self.look_again(job, looked)  # this delivery is done; the job comes back later, not yet recorded
                return
            item = looked
        except Exception as exc:
            if int(record.attributes.approximate_receive_count or 1) < MAX_RECEIVES:
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

    def warm(self, job: WarmJob) -> ReportItem | Waiting:
        """Look at one job's import through ECR: its outcome, or Waiting when ECR is not done yet."""
        return warm_image(
            job,
            AwsEcrImports(self.ecr(), self.settings.region),
            diagnose=lambda: self._diagnose(job),
            told=self._told,
            seconds_left=self._seconds_left(),
        )

    def _told(self, repository: str, since: datetime) -> list[tuple[str, str]]:
        """The failures ECR reported for a repository since `since` (none when the ledger cannot say)."""
        try:
            return self.ledger.pull_failures(repository, since)
        except (AwsError, SettingsError) as exc:
            logger.warning("ECR's reported pull failures could not be read", extra={"error": str(exc)})
            return []

    def until_done(self, job: WarmJob, sleep: Callable[[float], None] = time.sleep) -> ReportItem:
        """Look at a job's import until it ends, waiting here in between (the CLI, which has no queue)."""
        while True:
            looked = self.warm(job)
            if not isinstance(looked, Waiting):
                return looked
            sleep(looked.delay)
            job = job.model_copy(update={"progress": looked.progress})

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

    def _diagnose(self, job: WarmJob) -> PullthroughError | None:
        try:
            with self._lock:
                if job.rule not in self._upstreams:
                    rule = next((r for r in self.config.rules if r.prefix == job.rule), None)
                    self._upstreams[job.rule] = upstream_client(rule, self.settings) if rule else None
                client = self._upstreams[job.rule]
            if client is not None:
                client.head_manifest(job.upstream_repository, job.tag)
        except PullthroughError as exc:
            return exc
        return None

    def _seconds_left(self) -> float | None:
        if self.context is None:
            return None
        return float(self.context.get_remaining_time_in_millis()) / 1000.0

    def _check_time(self, job: WarmJob) -> None:
        left = self._seconds_left()
        if left is not None and left < MIN_SECONDS_FOR_A_JOB:
            raise JobPostponed(f"{job.subject}: only {left:.0f}s of the invocation left; back to the queue")


class JobPostponed(PullthroughError):
    """Too little Lambda time is left to start a job; SQS delivers it again."""


__all__ = [
    "ECR_TIMEOUT",
    "IMAGE_FAILURES",
    "MAX_RECEIVES",
    "MOVED_TAG_NOTE",
    "TAG_MOVED",
    "UPSTREAM_TIMEOUT",
    "Clocks",
    "Failure",
    "JobPostponed",
    "Reason",
    "WarmJob",
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
