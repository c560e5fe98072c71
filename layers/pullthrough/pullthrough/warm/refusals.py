"""Why ECR could not import an image: its own answer first (BatchGetImage's failure codes, its API's exceptions, the
registry endpoint's refusal), the upstream's HEAD only where ECR says nothing.

Separate from the outcomes' codes and words (outcomes.py): this is the reading of ECR's answers, the one place that
asks ECR's control plane, and the upstream, why.
"""

from __future__ import annotations

from collections.abc import Callable

from pullthrough.errors import (
    AwsAccessDenied,
    AwsError,
    DigestMismatch,
    PullthroughError,
    RegistryError,
    RegistryNotFound,
    RegistryTimeout,
    RegistryUnavailable,
)
from pullthrough.warm.importing import EcrImports, ImageRefusal
from pullthrough.warm.job import WarmJob
from pullthrough.warm.outcomes import (
    IMAGE_FAILURES,
    UNREACHABLE_CODES,
    Failure,
    Reason,
    ecr_upstream_fix,
    failure,
    fix_for,
    upstream_reason,
)

# Asks the upstream why it would not give the image (a HEAD, which costs no pull); None when it says nothing.
Diagnose = Callable[[], PullthroughError | None]


def explain(error: PullthroughError | ImageRefusal, job: WarmJob, ecr: EcrImports, diagnose: Diagnose) -> Failure:
    """Why ECR could not import: its own answer first; the upstream's HEAD only where ECR says nothing."""
    if isinstance(error, ImageRefusal):
        return refusal(error, job)
    if isinstance(error, AwsError):
        return aws_refusal(error, job)
    if isinstance(error, RegistryError) and not isinstance(error, DigestMismatch):
        return trigger_refusal(error, job, ecr, diagnose)
    return failure(error, image=job.subject, rule=job.rule, secret=job.secret)


def _fix(reason: Reason, job: WarmJob) -> str:
    """The fix of a reason ECR gave: an ECR to ECR rule's access is its role's and the upstream registry's policy."""
    if reason is Reason.AUTH and job.upstream == "ecr":
        return ecr_upstream_fix(job.rule)
    return fix_for(reason, image=job.subject, rule=job.rule, secret=job.secret)


def refusal(found: ImageRefusal, job: WarmJob) -> Failure:
    """What one of BatchGetImage's failure codes means for the job."""
    reason = IMAGE_FAILURES.get(found.code, Reason.ERROR)
    fix = _fix(reason, job)
    return Failure(reason, f"{reason.value.replace('_', ' ')}: ECR says {found.code}: {found.reason}", fix)


def aws_refusal(error: AwsError, job: WarmJob) -> Failure:
    """An ECR API call refused: UnableToGetUpstream* (the upstream, or the rule's secret), access, or reachability."""
    if error.code == "UnableToGetUpstreamImageException":
        # botocore: "usually caused because of an issue with the Secrets Manager secret".
        reason = Reason.AUTH
    elif error.code == "UnableToGetUpstreamLayerException":
        reason = upstream_reason(error.message)
    elif isinstance(error, AwsAccessDenied):
        reason = Reason.ECR_DENIED
    elif error.code in UNREACHABLE_CODES:
        reason = Reason.ECR_UNREACHABLE
    else:
        return failure(error, image=job.subject, rule=job.rule, secret=job.secret)
    fix = _fix(reason, job)
    return Failure(reason, f"{reason.value.replace('_', ' ')}: {error}", fix)


def trigger_refusal(error: RegistryError, job: WarmJob, ecr: EcrImports, diagnose: Diagnose) -> Failure:
    """The registry endpoint refused the trigger: unreachable, denied, no rule, or an upstream failure ECR explains."""
    image, rule, secret = job.subject, job.rule, job.secret
    if error.status is None and isinstance(error, RegistryUnavailable | RegistryTimeout):
        text = f"ecr unreachable: the registry endpoint did not answer ({error})"
        return Failure(Reason.ECR_UNREACHABLE, text, fix_for(Reason.ECR_UNREACHABLE, image=image))
    if isinstance(error, RegistryNotFound) and "NAME_UNKNOWN" in str(error):
        # The registry endpoint names an unknown repository only when no pull-through cache rule covers it.
        text = f"no rule: ECR has no pull-through cache rule for {rule}/ ({error})"
        return Failure(Reason.NO_RULE, text, fix_for(Reason.NO_RULE, image=image, rule=rule))
    said = ecr_says(error, job, ecr)
    if said is not None:
        return said
    if error.status in (401, 403) and "upstream" not in str(error).lower():
        text = f"ecr denied: the registry endpoint refused the pull ({error})"
        return Failure(Reason.ECR_DENIED, text, fix_for(Reason.ECR_DENIED, image=image, rule=rule))
    # ECR says nothing: a HEAD upstream costs no pull and says why.
    upstream = diagnose()
    if upstream is not None:
        found = failure(upstream, image=image, rule=rule, secret=secret)
        return Failure(found.reason, f"{found.text} (ECR: {error})", found.fix)
    return failure(error, image=image, rule=rule, secret=secret)


def ecr_says(error: RegistryError, job: WarmJob, ecr: EcrImports) -> Failure | None:
    """ECR's control plane says why the upstream would not give the image, where it knows; None where it does not."""
    try:
        answer = ecr.images(job.repository, [job.tag])
    except AwsError as exc:
        if isinstance(exc, AwsAccessDenied) or exc.code in UNREACHABLE_CODES:
            return aws_refusal(exc, job)
        answer = None
    said = answer.failures.get(job.tag) if answer is not None else None
    if said is None:
        return None
    found = refusal(ImageRefusal(said.code, said.reason, job.tag), job)
    return Failure(found.reason, f"{found.text} (registry endpoint: {error})", found.fix)


__all__ = ["Diagnose", "aws_refusal", "ecr_says", "explain", "refusal", "trigger_refusal"]
