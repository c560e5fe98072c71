"""Warming one image through ECR in this process: `warm_image` (one look at its import) and `Warmer`, which holds what
the looks share (the ECR registry endpoint's client; the upstreams' clients, to ask why ECR could not import, made
from what the job names: its upstream, URL and secret, so warm_images never reads the config).

Separate from the SQS batch (worker.py): the CLI's in-process run warms with a Warmer, and pays for neither the queue
nor Powertools' batch utility.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws import ecr as ecr_adapter
from pullthrough.aws.ledger import Ledger
from pullthrough.env import Settings, SettingsError
from pullthrough.errors import AwsError, PullthroughError
from pullthrough.observability import logger
from pullthrough.registry.client import Manifest, RegistryClient
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.importing import EcrImports, Import, Waiting
from pullthrough.warm.job import JobTarget, WarmJob, details_of
from pullthrough.warm.outcomes import Reason
from pullthrough.warm.refusals import Diagnose
from pullthrough.warm.results import Told, outcome_of
from pullthrough.warm.run import ledger_for
from pullthrough.warm.upstream_clients import registry_client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from pullthrough.aws.ecr import Images

# Seconds one call to the ECR registry endpoint may take before it counts as a timeout (manifest GETs, blob pulls).
ECR_TIMEOUT = 30.0
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


class Warmer:
    """Warms jobs (at once, from threads) with one ECR client; the ledger is read on first use."""

    def __init__(self, settings: Settings, context: LambdaContext | None = None, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.context = context
        self._ledger = ledger
        self._ecr: RegistryClient | None = None
        self._members: dict[str, RegistryClient] = {}  # a member registry's host -> its client (job.target)
        self._upstreams: dict[str, RegistryClient | None] = {}
        self._lock = threading.RLock()  # the lazily built ledger and clients, shared by the batch's jobs

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                self._ledger = ledger_for(self.settings)
            return self._ledger

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
        """Close the registry connections this warmer opened."""
        for client in [self._ecr, *self._members.values(), *self._upstreams.values()]:
            if client is not None:
                client.close()

    def warm(self, job: WarmJob) -> ReportItem | Waiting:
        """Look at one job's import through ECR: its outcome, or Waiting when ECR is not done yet."""
        if job.target is not None:
            return self._warm_member(job, job.target)
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

    def _warm_member(self, job: WarmJob, target: JobTarget) -> ReportItem | Waiting:
        """Warm a member's job acting through its warm role: the member's ECR, in its region, with the role's keys.

        The member's ECR imports from the hub (its rule), so the upstream's pull is the hub's. An image the member's
        ECR already holds (DescribeImages) is already cached: no trigger, no pull. The ledger, queue and report stay
        the hub's: only what runs inside `acting_as` acts in the member."""
        role = clients.Role(target.role, f"pullthrough-{job.run_id}")
        try:
            with clients.acting_as(role):
                held = (
                    None
                    if job.progress is not None
                    else ecr_adapter.describe_image(job.repository, job.tag, target.region)
                )
                if held is not None and job.pinned in (None, held.digest):
                    return ReportItem(
                        subject=job.subject,
                        outcome=Outcome.ALREADY_CACHED,
                        details=details_of(job, digest=held.digest, pulls_spent=0),
                    )
                ecr = AwsEcrImports(self._member_registry(target), target.region)
                return warm_image(job, ecr, seconds_left=self._seconds_left())
        except AwsError as exc:
            if exc.operation != "sts:AssumeRole":
                raise
            return _refused_role(job, target, exc)

    def _member_registry(self, target: JobTarget) -> RegistryClient:
        """The member registry endpoint's client, with a token from the member's GetAuthorizationToken (call it
        acting as the member's warm role)."""
        with self._lock:
            if target.registry not in self._members:
                url = self.settings.upstream_url(target.registry)
                credentials = ecr_adapter.authorization(url, target.region)
                self._members[target.registry] = RegistryClient(
                    url, name="ECR", credentials=credentials, timeout=ECR_TIMEOUT, connections=JOBS_AT_ONCE
                )
            return self._members[target.registry]

    def _diagnose(self, job: WarmJob) -> PullthroughError | None:
        try:
            with self._lock:
                if job.rule not in self._upstreams:
                    self._upstreams[job.rule] = registry_client(
                        job.upstream, job.upstream_url, job.secret, self.settings
                    )
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


def _refused_role(job: WarmJob, target: JobTarget, error: AwsError) -> ReportItem:
    """A member's image failed because the hub could not assume the member's warm role."""
    return ReportItem(
        subject=job.subject,
        outcome=Outcome.FAILED,
        reason=(
            f"the hub could not act in account {target.account}, region {target.region}: sts:AssumeRole on "
            f"{target.role} was refused ({error.code}: {error.message})"
        ),
        fix=(
            f"the members' StackSet creates {target.role} where the member has a warm list, trusting the hub's "
            "warm_images role: check the instance's status (aws cloudformation list-stack-instances "
            "--stack-set-name pullthrough-members-<Stage>), then deploy or update the StackSet with `sam deploy` of "
            "the hub"
        ),
        reason_code=Reason.AUTH.value,
        details=details_of(job),
    )


__all__ = ["ECR_TIMEOUT", "JOBS_AT_ONCE", "AwsEcrImports", "Clocks", "Warmer", "warm_image"]
