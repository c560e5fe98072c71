"""Warming one image through ECR, the outcome model, and how a run's last job closes it and reports.

One job (`WarmJob`, an SQS message the planner wrote) imports one image tag through ECR as ECR imports
(`pullthrough.warm.importing`: trigger with one manifest GET, ask ECR's control plane for what it lacks, wait for ECR).
An import that outlasts one invocation goes back to the queue with a delay and is looked at again; every job ends
in one outcome: warmed, refreshed, already_cached, or failed with a `Reason`. The outcome is written to the run
ledger exactly once; the job that completes the run closes it and publishes the report exactly once.
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
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pullthrough.env import Settings, SettingsError
from pullthrough.errors import (
    AwsAccessDenied,
    AwsError,
    AwsNotFound,
    ConfigError,
    DigestMismatch,
    EventError,
    InvalidReference,
    PullthroughError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
    SecretError,
)
from pullthrough.observability import logger
from pullthrough.registry import Manifest, RegistryClient
from pullthrough.reporting import Details, Kind, Outcome, Report, ReportItem, Severity, rejection
from pullthrough.reporting.publish import publish as reporting_publish
from pullthrough.upstreams import Auth
from pullthrough.warm.importing import (
    Archived,
    EcrImports,
    ImageRefusal,
    Import,
    Incomplete,
    Landed,
    Mismatch,
    NoPlatform,
    Progress,
    Refused,
    Result,
    Wait,
    Waiting,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from pullthrough.aws.ecr import Images
    from pullthrough.aws.ledger import JobRecord, Ledger, RunState, Verified
    from pullthrough.config import Config, Rule

# Seconds one registry call may take before it counts as a timeout (upstream HEADs and tag lists; ECR pulls).
UPSTREAM_TIMEOUT = 10.0
ECR_TIMEOUT = 30.0
# template.yaml's WarmQueue RedrivePolicy maxReceiveCount: on the last delivery an unexpected error becomes a failed
# outcome, so the run still completes; a test keeps the two equal.
MAX_RECEIVES = 3
# A job is not started with less Lambda time left than this: the message goes back to the queue instead.
MIN_SECONDS_FOR_A_JOB = 20.0
# Jobs of one SQS batch warmed at once. A job mostly waits (on ECR importing from the upstream), so one invocation
# keeps its whole batch in flight instead of paying those waits one after another.
JOBS_AT_ONCE = 10

TAG_MOVED = "tag_moved"  # reason code of refreshed items and of tags that moved upstream but not yet in ECR
MOVED_TAG_NOTE = (
    "ECR re-checks a cached tag upstream at most once a day on its own; Pullthrough cannot make it sooner, so a tag "
    "that moved upstream is reported as refreshed once ECR serves the new digest."
)


class Reason(StrEnum):
    """Why an image was not warmed (a failed outcome's reason code), or why it waits (deferred)."""

    UNKNOWN_TAG = "unknown_tag"
    NO_RULE = "no_rule"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_DOWN = "upstream_down"
    TIMEOUT = "timeout"
    DIGEST_MISMATCH = "digest_mismatch"
    NO_PLATFORM = "no_platform"  # the image has none of the wanted platforms
    INVALID_REFERENCE = "invalid_reference"  # a manual request named something that is not an image reference
    NOT_FINISHED = "not_finished"  # the job never reported back (it is in the dead-letter queue)
    BUDGET = "budget"  # deferred: the run's share of the upstream's pull budget was spent
    IN_FLIGHT = "in_flight"  # skipped: a run still open is warming the image
    ECR_UNREACHABLE = "ecr_unreachable"  # the function cannot reach ECR (no VPC endpoint, no route out)
    ECR_DENIED = "ecr_denied"  # ECR refused the function's own request (IAM, registry policy)
    IMPORT_INCOMPLETE = "import_incomplete"  # ECR did not finish importing within warm.imports.give_up_after
    ARCHIVED = "archived"  # ECR holds the image in its archive storage class
    ERROR = "error"  # anything else; the text says what


@dataclass(frozen=True)
class Failure:
    """A reason with the words for people: what happened and what to do."""

    reason: Reason
    text: str
    fix: str


def reason_of(error: PullthroughError) -> Reason:
    """The reason code for an error raised while planning or warming."""
    if isinstance(error, DigestMismatch):
        return Reason.DIGEST_MISMATCH
    if isinstance(error, RegistryNotFound):
        return Reason.UNKNOWN_TAG
    if isinstance(error, RegistryAuthError | SecretError):
        return Reason.AUTH
    if isinstance(error, RegistryRateLimited):
        return Reason.RATE_LIMITED
    if isinstance(error, RegistryTimeout):
        return Reason.TIMEOUT
    if isinstance(error, RegistryUnavailable):
        return Reason.UPSTREAM_DOWN
    if isinstance(error, RegistryError):
        status = error.status or 0
        if status == 404:
            return Reason.UNKNOWN_TAG
        if status in (401, 403):
            return Reason.AUTH
        if status == 429:
            return Reason.RATE_LIMITED
        return Reason.UPSTREAM_DOWN if status >= 500 else Reason.ERROR
    if isinstance(error, ConfigError):
        return Reason.NO_RULE
    if isinstance(error, InvalidReference):
        return Reason.INVALID_REFERENCE
    return Reason.ERROR


CORRUPT_CONTENT_FIX = (
    "nothing to do if it happens once: the content of {image} was corrupted on the way and the next run fetches it "
    "again; if it repeats, the upstream or the cache serves broken content: report it to them"
)


def failure(error: PullthroughError, *, image: str, rule: str | None = None, secret: str | None = None) -> Failure:
    """The failure an error stands for, with a fix that names the image, rule or secret concerned."""
    reason = reason_of(error)
    fix = fix_for(reason, image=image, rule=rule, secret=secret)
    if isinstance(error, DigestMismatch):
        # Bytes that do not hash to their own digest were corrupted on the way; no pinned digest is involved.
        fix = CORRUPT_CONTENT_FIX.format(image=image)
    elif isinstance(error, SecretError) and isinstance(error.__cause__, AwsError):
        # The secret could not be read at all: a new token would not help, access to the secret (or its key) would.
        fix = unreadable_secret_fix(error.secret, error.__cause__)
    return Failure(reason, f"{reason.value.replace('_', ' ')}: {error}", fix)


def unreadable_secret_fix(secret: str, error: AwsError) -> str:
    """What to do when Secrets Manager would not hand out a rule's secret (missing, no access, its key refused)."""
    if isinstance(error, AwsNotFound):
        return f"create secret {secret} (`pullthrough credentials set <rule prefix>`) or point the rule at another"
    if isinstance(error, AwsAccessDenied):
        return (
            f"let the function's role read secret {secret}: secretsmanager:GetSecretValue on the secret and "
            "kms:Decrypt on its KMS key (template.yaml; the key policy)"
        )
    return f"nothing to do if it happens once: the next run reads secret {secret} again"


def fix_for(
    reason: Reason,
    *,
    image: str,
    rule: str | None = None,
    secret: str | None = None,
    repository: str | None = None,
    digest: str | None = None,
) -> str:
    """What the reader should do about a reason."""
    where = "warm.images in config/pullthrough.yaml"
    fixes = {
        Reason.UNKNOWN_TAG: f"check that {image} exists upstream, or remove it from {where}",
        Reason.NO_RULE: (
            f"create the pull-through cache rule {rule!r}: deploy (reconcile runs after it) or run `pullthrough "
            "reconcile`"
            if rule
            else f"add a rule for this registry to config/pullthrough.yaml, or remove the image from {where}"
        ),
        Reason.AUTH: (
            f"store a token that can read {image} in secret {secret} (it must hold username and accessToken)"
            if secret
            else f"the upstream wants credentials for {image}: give rule {rule} a credentials secret"
        ),
        Reason.RATE_LIMITED: "nothing to do now: the next run retries it; lower warm.budget_share if this repeats",
        Reason.UPSTREAM_DOWN: "nothing to do if the upstream has an outage: the next run retries it",
        Reason.TIMEOUT: "nothing to do if the upstream is slow today: the next run retries it",
        Reason.DIGEST_MISMATCH: f"the tag no longer has the pinned digest: update the digest or the tag in {where}",
        Reason.NO_PLATFORM: f"set platforms for this image in {where} to ones it is built for",
        Reason.INVALID_REFERENCE: "give an image reference such as nginx:1.27 or ghcr.io/org/app:v1",
        Reason.NOT_FINISHED: (
            "look at the warm_images logs under the run id and at the dead-letter queue; the next run retries it"
        ),
        Reason.BUDGET: "nothing to do: images warmed in this run cost no pulls next time, so the next run has room",
        Reason.IN_FLIGHT: "nothing to do: the open run's report gives its outcome",
        Reason.ECR_UNREACHABLE: (
            "let the warm functions reach ECR: from a VPC without a route out, add the interface endpoints "
            "com.amazonaws.<region>.ecr.api and com.amazonaws.<region>.ecr.dkr and the S3 gateway endpoint (ECR keeps "
            "layers in S3), or give the subnet a NAT route; the next run retries it"
        ),
        Reason.ECR_DENIED: (
            "let the warm_images role pull through the cache: ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, "
            f"ecr:BatchImportUpstreamImage and ecr:CreateRepository on the repositories under {rule or 'the rule'}/ "
            "(template.yaml), and check the registry's permissions policy does not deny them"
        ),
        Reason.IMPORT_INCOMPLETE: (
            f"look at the ECR Pull Through Cache Action failures for {image} (the pull failures report): the upstream "
            "may refuse or be slow to serve its layers; raise warm.imports.give_up_after if ECR is only slow; the "
            "next run asks again"
        ),
        Reason.ARCHIVED: (
            f"restore it: aws ecr update-image-storage-class --repository-name {repository or '<repository>'} "
            f"--image-id imageDigest={digest or '<digest>'} --target-storage-class STANDARD (restores take minutes "
            "to hours; lifecycle rules that archive cached images should exclude warm.images)"
        ),
        Reason.ERROR: "look at the warm_images logs under the run id; the next run retries it",
    }
    return fixes[reason]


# --- the job -------------------------------------------------------------------------------------------------------


class WarmJob(BaseModel):
    """One image tag to warm: the SQS message the planner sends and warm_images receives."""

    # Unknown fields are ignored: messages queued by a newer planner must not fail a worker still on the old code.
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    key: str = Field(description="Unique within the run: <cache repository>:<tag>.")
    subject: str = Field(description="The image as people read it: docker.io/library/nginx:1.27.")
    rule: str = Field(description="The rule's ECR repository prefix.")
    secret: str | None = Field(None, description="The name (never the value) of the rule's credentials secret.")
    upstream: str = Field(description="The upstream's catalogue key, e.g. docker-hub.")
    repository: str = Field(description="The ECR cache repository.")
    upstream_repository: str = Field(description="The repository's path on the upstream registry.")
    tag: str
    pinned: str | None = Field(None, description="The digest the config pins the tag to, if any.")
    platforms: tuple[str, ...]
    action: Literal["warm", "refresh", "complete"] = Field(
        description="warm: ECR lacks the tag; refresh: the upstream tag moved; complete: blobs are missing."
    )
    expected_digest: str | None = Field(None, description="What the upstream's HEAD said the tag points at.")
    previous_digest: str | None = Field(None, description="What ECR held for the tag when the run was planned.")
    cost: int = Field(0, ge=0, description="Upstream pulls budgeted for the job.")
    pulls_remaining: int | None = Field(None, ge=0, description="The upstream's remaining pulls after this job.")
    wait: Wait = Field(default_factory=Wait, description="How long to wait for ECR's import (config warm.imports).")
    progress: Progress | None = Field(None, description="Where the import stands, once a look has been taken.")
    source: str | None = Field(None, description="The warm.sources entry naming the image; None for warm.images.")


Diagnose = Callable[[], PullthroughError | None]


def details_of(job: WarmJob, **facts: Any) -> Details:
    """Details naming the job's rule, upstream and repository, plus `facts`."""
    return Details(rule=job.rule, upstream=job.upstream, repository=job.repository, source=job.source, **facts)


Told = Callable[[str, datetime], list[tuple[str, str]]]


def warm_image(
    job: WarmJob,
    ecr: EcrImports,
    *,
    diagnose: Diagnose = lambda: None,
    told: Told = lambda repository, since: [],
    seconds_left: float | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReportItem | Waiting:
    """Import one image tag through ECR (see warm.importing): its outcome, or Waiting to look again later."""
    importer = Import(
        ecr,
        job.repository,
        job.tag,
        job.platforms,
        job.pinned,
        job.wait,
        trigger=job.action != "complete",
        previous=job.previous_digest,
        now=now,
        clock=clock,
        sleep=sleep,
    )
    result = importer.look(job.progress, seconds_left)
    if isinstance(result, Waiting):
        return result
    return outcome_of(job, result, ecr, diagnose, now(), told)


def outcome_of(
    job: WarmJob, result: Result, ecr: EcrImports, diagnose: Diagnose, now: datetime, told: Told
) -> ReportItem:
    """The report item an import's result stands for; `told` recalls the failures ECR reported by event."""
    progress = result.progress if not isinstance(result, Waiting) else None
    facts: dict[str, Any] = {}
    if progress is not None:
        facts = {
            "bytes_moved": progress.moved,
            "pulls_spent": progress.spent,
            "seconds": round(max((now - progress.started).total_seconds(), 0.0), 3),
            "downloaded": progress.downloaded or None,
        }
    facts["pulls_remaining"] = job.pulls_remaining

    def item(outcome: Outcome, digest: str | None = None, **fields: Any) -> ReportItem:
        extra = fields.pop("facts", {})
        return ReportItem(
            subject=job.subject, outcome=outcome, details=details_of(job, digest=digest, **facts, **extra), **fields
        )

    def failed(found: Failure, digest: str | None = None, **extra: Any) -> ReportItem:
        return item(Outcome.FAILED, digest, reason=found.text, fix=found.fix, reason_code=found.reason.value, **extra)

    if isinstance(result, Landed):
        return _landed(job, result, item)
    if isinstance(result, Refused):
        return failed(_explain(result.error, job, ecr, diagnose), progress.digest if progress else None)
    if isinstance(result, Mismatch):
        text = f"digest mismatch: ECR serves {result.digest} for the tag, not the pinned {job.pinned}"
        return failed(
            Failure(Reason.DIGEST_MISMATCH, text, fix_for(Reason.DIGEST_MISMATCH, image=job.subject)), result.digest
        )
    if isinstance(result, NoPlatform):
        offered = ", ".join(result.offered) or "none"
        text = f"no platform: the image offers {offered}, none of {', '.join(job.platforms)}"
        return failed(
            Failure(Reason.NO_PLATFORM, text, fix_for(Reason.NO_PLATFORM, image=job.subject)), result.progress.digest
        )
    if isinstance(result, Archived):
        return item(
            Outcome.ALREADY_CACHED,
            result.digest,
            reason=(
                f"archived: ECR holds the image in its archive storage class ({len(result.layers)} layer(s) ARCHIVED); "
                "pulls fail until it is restored"
            ),
            fix=fix_for(Reason.ARCHIVED, image=job.subject, repository=job.repository, digest=result.digest),
            reason_code=Reason.ARCHIVED.value,
            severity=Severity.WARNING,
        )
    assert isinstance(result, Incomplete)
    return failed(_incomplete(job, result, told), result.progress.digest)


def _incomplete(job: WarmJob, result: Incomplete, told: Told) -> Failure:
    """import_incomplete, with what ECR's action events said about the repository meanwhile, if anything."""
    text = (
        f"import incomplete: ECR still lacks {len(result.missing)} layer(s) after {result.waited:.0f} s: "
        + ", ".join(result.missing)
    )
    fix = fix_for(Reason.IMPORT_INCOMPLETE, image=job.subject)
    said = told(job.repository, result.progress.started)
    if said:
        code, why = said[-1]
        text += f"; ECR reported {code}: {why}"
        if code in IMAGE_FAILURES:
            fix = fix_for(IMAGE_FAILURES[code], image=job.subject, rule=job.rule, secret=job.secret)
    return Failure(Reason.IMPORT_INCOMPLETE, text, fix)


def _landed(job: WarmJob, landed: Landed, item: Callable[..., ReportItem]) -> ReportItem:
    facts = {"platforms": landed.platforms or None, "size": landed.size, "index_manifests": landed.children or None}
    warnings = []
    if landed.absent:
        warnings.append(f"the image has no {', '.join(landed.absent)}; warmed {', '.join(landed.platforms)}")
    if landed.progress.downloaded:
        warnings.append(
            f"{len(landed.progress.downloaded)} layer(s) ECR had not imported after "
            f"{job.wait.download_after} s were downloaded through the registry endpoint (a last resort): "
            + ", ".join(landed.progress.downloaded)
        )
    warning = "; ".join(warnings) or None
    severity = {"severity": Severity.WARNING} if warnings else {}
    if job.action == "refresh":
        if landed.digest == job.previous_digest:
            return item(
                Outcome.ALREADY_CACHED,
                landed.digest,
                reason=(
                    f"the upstream tag moved to {job.expected_digest}; ECR still serves the digest it holds until it "
                    "re-checks the tag (at most once a day)"
                ),
                reason_code=TAG_MOVED,
                severity=Severity.WARNING,
                facts=facts,
            )
        moved_text = "the upstream tag moved; ECR now serves the new digest"
        return item(
            Outcome.REFRESHED,
            landed.digest,
            reason=f"{moved_text} ({warning})" if warning else moved_text,
            reason_code=TAG_MOVED,
            facts={**facts, "previous_digest": job.previous_digest},
            **severity,
        )
    return item(Outcome.WARMED, landed.digest, reason=warning, facts=facts, **severity)


def verified_of(job: WarmJob, item: ReportItem) -> Verified | None:
    """What a job's outcome shows complete in ECR, for the next run to recall instead of verifying it again."""
    from pullthrough.aws.ledger import Verified

    if item.outcome not in (Outcome.WARMED, Outcome.REFRESHED, Outcome.ALREADY_CACHED):
        return None
    if item.reason_code == Reason.ARCHIVED.value:
        return None
    digest, size = item.details.digest, item.details.size
    if digest is None or size is None:
        return None
    platforms = tuple(item.details.platforms or ())
    # An import lands on an index only with at least one wanted platform; what it did not warm, the index lacks.
    absent = tuple(p for p in job.platforms if p not in platforms) if platforms else ()
    return Verified(
        job.repository,
        job.tag,
        digest,
        tuple(sorted(job.platforms)),
        platforms,
        absent,
        size,
        datetime.now(UTC),
        item.details.index_manifests or 0,
    )


# ECR's ImageFailureCode values (botocore) and what each means for the reader.
IMAGE_FAILURES = {
    "UpstreamAccessDenied": Reason.AUTH,
    "UpstreamTooManyRequests": Reason.RATE_LIMITED,
    "UpstreamUnavailable": Reason.UPSTREAM_DOWN,
    "ImageNotFound": Reason.UNKNOWN_TAG,
    "ImageTagDoesNotMatchDigest": Reason.DIGEST_MISMATCH,
}


def _explain(error: PullthroughError | ImageRefusal, job: WarmJob, ecr: EcrImports, diagnose: Diagnose) -> Failure:
    """Why ECR could not import: its own answer first; the upstream's HEAD only where ECR says nothing."""
    if isinstance(error, ImageRefusal):
        return _refusal(error, job)
    if isinstance(error, AwsError):
        return _aws_refusal(error, job)
    if isinstance(error, RegistryError) and not isinstance(error, DigestMismatch):
        return _trigger_refusal(error, job, ecr, diagnose)
    return failure(error, image=job.subject, rule=job.rule, secret=job.secret)


def _refusal(refusal: ImageRefusal, job: WarmJob) -> Failure:
    reason = IMAGE_FAILURES.get(refusal.code, Reason.ERROR)
    fix = fix_for(reason, image=job.subject, rule=job.rule, secret=job.secret)
    return Failure(reason, f"{reason.value.replace('_', ' ')}: ECR says {refusal.code}: {refusal.reason}", fix)


def _aws_refusal(error: AwsError, job: WarmJob) -> Failure:
    """An ECR API call refused: UnableToGetUpstream* (the upstream, or the rule's secret), access, or reachability."""
    if error.code == "UnableToGetUpstreamImageException":
        # botocore: "usually caused because of an issue with the Secrets Manager secret".
        reason = Reason.AUTH
    elif error.code == "UnableToGetUpstreamLayerException":
        reason = _upstream_reason(error.message)
    elif isinstance(error, AwsAccessDenied):
        reason = Reason.ECR_DENIED
    elif error.code in _UNREACHABLE_CODES:
        reason = Reason.ECR_UNREACHABLE
    else:
        return failure(error, image=job.subject, rule=job.rule, secret=job.secret)
    fix = fix_for(reason, image=job.subject, rule=job.rule, secret=job.secret)
    return Failure(reason, f"{reason.value.replace('_', ' ')}: {error}", fix)


# botocore's names for an endpoint it cannot reach (no VPC endpoint, no route out).
_UNREACHABLE_CODES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ProxyConnectionError",
    }
)


def _upstream_reason(text: str) -> Reason:
    """The reason in ECR's words about an upstream (its exception messages carry no code of their own)."""
    lowered = text.lower()
    if "toomanyrequests" in lowered or "429" in lowered or "rate" in lowered:
        return Reason.RATE_LIMITED
    if (
        "accessdenied" in lowered
        or "denied" in lowered
        or "401" in lowered
        or "403" in lowered
        or "authenticat" in lowered
    ):
        return Reason.AUTH
    return Reason.UPSTREAM_DOWN


def _trigger_refusal(error: RegistryError, job: WarmJob, ecr: EcrImports, diagnose: Diagnose) -> Failure:
    """The registry endpoint refused the trigger: unreachable, denied, no rule, or an upstream failure ECR explains."""
    image, rule, secret = job.subject, job.rule, job.secret
    if error.status is None and isinstance(error, RegistryUnavailable | RegistryTimeout):
        text = f"ecr unreachable: the registry endpoint did not answer ({error})"
        return Failure(Reason.ECR_UNREACHABLE, text, fix_for(Reason.ECR_UNREACHABLE, image=image))
    if isinstance(error, RegistryNotFound) and "NAME_UNKNOWN" in str(error):
        # The registry endpoint names an unknown repository only when no pull-through cache rule covers it.
        text = f"no rule: ECR has no pull-through cache rule for {rule}/ ({error})"
        return Failure(Reason.NO_RULE, text, fix_for(Reason.NO_RULE, image=image, rule=rule))
    # ECR's control plane says why the upstream would not give the image, where it knows.
    try:
        answer = ecr.images(job.repository, [job.tag])
    except AwsError as exc:
        if isinstance(exc, AwsAccessDenied) or exc.code in _UNREACHABLE_CODES:
            return _aws_refusal(exc, job)
        answer = None
    said = answer.failures.get(job.tag) if answer is not None else None
    if said is not None:
        found = _refusal(ImageRefusal(said.code, said.reason, job.tag), job)
        return Failure(found.reason, f"{found.text} (registry endpoint: {error})", found.fix)
    if error.status in (401, 403) and "upstream" not in str(error).lower():
        text = f"ecr denied: the registry endpoint refused the pull ({error})"
        return Failure(Reason.ECR_DENIED, text, fix_for(Reason.ECR_DENIED, image=image, rule=rule))
    # ECR says nothing: a HEAD upstream costs no pull and says why.
    upstream = diagnose()
    if upstream is not None:
        found = failure(upstream, image=image, rule=rule, secret=secret)
        return Failure(found.reason, f"{found.text} (ECR: {error})", found.fix)
    return failure(error, image=image, rule=rule, secret=secret)


def _last_delivery(job: WarmJob, exc: Exception) -> ReportItem:
    """The failure of a job that raised on every delivery: ECR out of reach, or the error as it was."""
    if isinstance(exc, AwsError) and exc.code in _UNREACHABLE_CODES:
        found = _aws_refusal(exc, job)
    else:
        text = f"error: {type(exc).__name__}: {exc}"
        found = Failure(Reason.ERROR, text, fix_for(Reason.ERROR, image=job.subject))
    return ReportItem(
        subject=job.subject,
        outcome=Outcome.FAILED,
        reason=found.text,
        fix=found.fix,
        reason_code=found.reason.value,
        details=details_of(job),
    )


@dataclass(frozen=True)
class AwsEcrImports:
    """EcrImports over ECR: the registry endpoint (a RegistryClient with ECR's token) and the control plane."""

    registry: RegistryClient
    region: str | None

    def trigger(self, repository: str, tag: str) -> Manifest:
        return self.registry.get_manifest(repository, tag)

    def images(self, repository: str, references: Sequence[str]) -> Images:
        from pullthrough.aws import ecr

        return ecr.get_images(repository, references, self.region)

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]:
        from pullthrough.aws import ecr

        return ecr.layer_states(repository, digests, self.region)

    def request_layer(self, repository: str, digest: str) -> str:
        from pullthrough.aws import ecr

        return ecr.request_layer(repository, digest, self.region)

    def download(self, repository: str, digest: str) -> int:
        return self.registry.fetch_blob(repository, digest)


# --- the worker: one SQS batch ---------------------------------------------------------------------------------------


def handle(event: dict[str, Any], context: LambdaContext, settings: Settings) -> dict[str, Any]:
    """warm_images: warm every job of an SQS batch; records that failed go back to the queue (partial response)."""
    from aws_lambda_powertools.utilities.batch import EventType, process_partial_response

    rejection.require_sqs_batch(event)

    worker = Worker(settings, context)
    # With the logger, a job that fails (and goes back to the queue) is logged at WARNING with its error; without it,
    # Powertools says so at DEBUG only and the failure leaves no trace in the function's logs.
    processor = _concurrent_batch_processor()(
        event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logging.getLogger(logger.name)
    )
    try:
        response = process_partial_response(
            event=event, record_handler=worker.process, processor=processor, context=context
        )
    finally:
        worker.close()
    return dict(response)


@cache
def _concurrent_batch_processor() -> type[BatchProcessor]:
    """Powertools' BatchProcessor, with the records of a batch handled at once (up to JOBS_AT_ONCE).

    Built on first use: Powertools' batch utility is imported by warm_images only, not by every importer of this module.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor

    class ConcurrentBatchProcessor(BatchProcessor):
        def process(self) -> list[tuple[Any, ...]]:
            if len(self.records) <= 1:
                return super().process()
            with ThreadPoolExecutor(max_workers=min(JOBS_AT_ONCE, len(self.records))) as pool:
                return list(pool.map(self._process_record, self.records))

    return ConcurrentBatchProcessor


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
                # Imported here: most warm_images invocations never read the config (only a run's last job, for the
                # report, and a failed job, to ask the upstream why), and the config's models and YAML cost about
                # 40 ms of import at every cold start.
                from pullthrough import config as config_module

                self._config = config_module.load(self.settings.config_path)
            return self._config

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
                from pullthrough.aws import ecr

                url = self.settings.registry_url()
                credentials = ecr.authorization(url, self.settings.region)
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
        from pullthrough.aws.ledger import Recorded

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
            item = _last_delivery(job, exc)
        logger.info(f"{job.subject}: {item.outcome.label}", extra=item.to_log())
        with self._writes:
            recorded = self.ledger.record(
                job.run_id,
                job.key,
                item.outcome.value,
                item.model_dump_json(exclude_none=True),
                bytes_moved=item.details.bytes_moved or 0,
                pulls_spent=item.details.pulls_spent or 0,
                verified=verified_of(job, item),
            )
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
        from pullthrough.aws import queue

        if not self.settings.queue_url:
            raise SettingsError("WARM_QUEUE_URL is not set: a job waiting for ECR goes back to it (template.yaml)")
        later = job.model_copy(update={"progress": waiting.progress})
        queue.send_later(self.settings.queue_url, later.model_dump_json(exclude_none=True), waiting.delay)
        logger.info(
            f"{job.subject}: ECR is still importing {len(waiting.missing)} layer(s); again in {waiting.delay} s",
            extra={"subject": job.subject, "missing": list(waiting.missing), "looks": waiting.progress.looks - 1},
        )

    def finish_run(self, run_id: str, key: str) -> None:
        """Close the run when every job is counted; the one caller that closes it publishes the report."""
        state = self.ledger.run(run_id)
        if state is None:
            return
        if not state.closed and state.complete and self.ledger.close(run_id, by=key):
            # Closing changes nothing the report reads (run id, stack, trigger, start, notes): no second read.
            report_run(self.ledger, state, self.config, self.settings)
        elif state.closed and state.closed_by == key and state.reported_at is None:
            # This job closed the run, but its report did not go out (the publish failed and SQS redelivered).
            report_run(self.ledger, state, self.config, self.settings)

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


# --- shared with the planner ---------------------------------------------------------------------------------------


def upstream_client(
    rule: Rule, settings: Settings, *, timeout: float | None = None, connections: int = 8
) -> RegistryClient | None:
    """A client for the rule's upstream with the rule's credentials; None where only ECR can reach it (IAM roles).

    `connections`: as many as threads share the client at once (the planner's workers).
    """
    if rule.entry.auth is Auth.IAM_ROLE:
        return None
    credentials = None
    if rule.secret_name:
        from pullthrough import credentials as credentials_module
        from pullthrough.aws import secrets

        try:
            value = secrets.get_value(rule.secret_name, region=settings.region)
        except AwsError as exc:
            raise SecretError(
                rule.secret_name, f"cannot be read ({exc.code}); check it exists and the role may read it"
            ) from exc
        credentials = credentials_module.parse_value(rule.secret_name, value)
    return RegistryClient(
        settings.upstream_url(rule.upstream_url),
        name=rule.upstream_url,
        credentials=credentials,
        timeout=UPSTREAM_TIMEOUT if timeout is None else timeout,
        connections=connections,
    )


# Upstream clients kept between invocations of one Lambda container, by rule prefix (see kept_upstream_client).
_KEPT: dict[str, RegistryClient] = {}
_KEPT_LOCK = threading.Lock()


def kept_upstream_client(rule: Rule, settings: Settings, *, connections: int = 8) -> RegistryClient | None:
    """upstream_client, kept for this container's next invocations: its connections and tokens are reused.

    The secret is read on every call; another value (a rotation), endpoint or pool size makes a new client. A
    token is reused only until it expires (Docker Hub's live 5 minutes); one refused anyway is asked for again.
    The caller must not close it.
    """
    fresh = upstream_client(rule, settings, connections=connections)
    if fresh is None:
        return None
    with _KEPT_LOCK:
        kept = _KEPT.get(rule.prefix)
        if kept is not None and _same_client(kept, fresh):
            fresh.close()
            return kept
        _KEPT[rule.prefix] = fresh
    if kept is not None:
        kept.close()
    return fresh


def forget_kept_clients() -> None:
    """Close and drop the kept upstream clients (a new sandbox, or a test that changes an upstream's tokens)."""
    with _KEPT_LOCK:
        clients = list(_KEPT.values())
        _KEPT.clear()
    for client in clients:
        client.close()


def _same_client(a: RegistryClient, b: RegistryClient) -> bool:
    return (a.base_url, a.name, a.credentials, a.connections, a.timeout) == (
        b.base_url,
        b.name,
        b.credentials,
        b.connections,
        b.timeout,
    )


def ledger_for(settings: Settings) -> Ledger:
    """The run ledger named by LEDGER_TABLE."""
    from pullthrough.aws.ledger import Ledger

    if not settings.ledger_table:
        raise SettingsError("LEDGER_TABLE is not set: it names the warm run ledger (template.yaml: LedgerTable)")
    return Ledger(settings.ledger_table)


# --- closing a run: its report -------------------------------------------------------------------------------------


def run_report(
    state: RunState, jobs: Sequence[JobRecord], settings: Settings, *, finished: datetime | None = None
) -> Report:
    """The run's report from its ledger items; a job that never reported back is failed as not finished."""
    items: list[ReportItem] = []
    for job in jobs:
        if job.status == "done" and job.report_item:
            items.append(ReportItem.model_validate_json(job.report_item))
        else:
            items.append(
                ReportItem(
                    subject=job.subject,
                    outcome=Outcome.FAILED,
                    reason=(
                        f"not finished: the job did not report back before the run was closed (after {MAX_RECEIVES} "
                        "deliveries it goes to the warm queue's dead-letter queue)"
                    ),
                    fix=fix_for(Reason.NOT_FINISHED, image=job.subject),
                    reason_code=Reason.NOT_FINISHED.value,
                )
            )
    notes = list(state.notes)
    if any(i.reason_code == TAG_MOVED for i in items) and MOVED_TAG_NOTE not in notes:
        notes.append(MOVED_TAG_NOTE)
    unfinished = sum(1 for job in jobs if job.status != "done")
    if unfinished:
        notes.append(
            f"{unfinished} job(s) never reported back; the run was closed by the next planner run so it accounts "
            "for every image."
        )
    return Report(
        kind=Kind.WARM,
        stack=state.stack or "pullthrough",
        region=settings.region,
        account=account_of(settings),
        run_id=state.run_id,
        trigger=state.trigger or "unknown",
        started=state.started,
        finished=finished or datetime.now(UTC),
        dry_run=settings.dry_run,
        items=tuple(items),
        notes=tuple(notes),
    )


def account_of(settings: Settings) -> str:
    """The account the report is about (ACCOUNT_ID, set by template.yaml's Globals)."""
    if not settings.account_id:
        raise SettingsError("ACCOUNT_ID is not set: reports name the account (template.yaml sets it to AWS::AccountId)")
    return settings.account_id


def report_run(ledger: Ledger, state: RunState, config: Config, settings: Settings) -> Report:
    """Build the closed run's report, publish it once, and take the run off the open list."""
    report = run_report(state, ledger.jobs(state.run_id), settings)
    publish(report, config, settings)
    ledger.mark_reported(state.run_id)
    return report


def publish(report: Report, config: Config, settings: Settings) -> str | None:
    """Log the report, add its metrics, and send it to the report topic; an SNS error is raised, so the run's last
    job is retried until its report is sent (the ledger marks the run reported only after this returns)."""
    return reporting_publish(report, settings.topic_arn, config.notifications, strict=True, log_successes=False)


__all__ = [
    "ECR_TIMEOUT",
    "MAX_RECEIVES",
    "MOVED_TAG_NOTE",
    "TAG_MOVED",
    "UPSTREAM_TIMEOUT",
    "Failure",
    "JobPostponed",
    "Reason",
    "WarmJob",
    "Worker",
    "account_of",
    "failure",
    "fix_for",
    "forget_kept_clients",
    "handle",
    "kept_upstream_client",
    "ledger_for",
    "publish",
    "reason_of",
    "report_run",
    "run_report",
    "upstream_client",
    "verified_of",
    "warm_image",
]
