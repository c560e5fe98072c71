"""What an import's result stands for: the report item of each way an import ends (landed, refused, mismatched, no
platform, archived, incomplete), the failure of a job that raised on every delivery, and what an outcome verified.

Separate from the worker's batch and queue handling (worker.py): these are pure functions of a job and its result,
which the CLI's in-process run reaches too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pullthrough.aws.ledger import Verified
from pullthrough.errors import AwsError
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.importing import (
    Archived,
    EcrImports,
    Incomplete,
    Landed,
    Mismatch,
    NoPlatform,
    Refused,
    Result,
    Waiting,
)
from pullthrough.warm.job import WarmJob, details_of
from pullthrough.warm.outcomes import IMAGE_FAILURES, TAG_MOVED, UNREACHABLE_CODES, Failure, Reason, fix_for
from pullthrough.warm.refusals import Diagnose, aws_refusal, explain

# Recalls the failures ECR reported by event for a repository since a moment: (code, reason), oldest first.
Told = Callable[[str, datetime], list[tuple[str, str]]]


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
        return failed(explain(result.error, job, ecr, diagnose), progress.digest if progress else None)
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
    now = datetime.now(UTC)
    # A warm or refresh job's trigger made ECR look at the tag upstream (its first look, carried by the job from one
    # delivery to the next): the planner's next HEAD of the tag is due a day after. A complete job's was not.
    looked = (job.progress.started if job.progress else now) if job.action != "complete" else None
    return Verified(
        job.repository,
        job.tag,
        digest,
        tuple(sorted(job.platforms)),
        platforms,
        absent,
        size,
        now,
        item.details.index_manifests or 0,
        looked,
    )


def last_delivery(job: WarmJob, exc: Exception) -> ReportItem:
    """The failure of a job that raised on every delivery: ECR out of reach, or the error as it was."""
    if isinstance(exc, AwsError) and exc.code in UNREACHABLE_CODES:
        found = aws_refusal(exc, job)
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


__all__ = ["Told", "last_delivery", "outcome_of", "verified_of"]
