"""Why an image was not warmed, in codes and in words: the `Reason` codes, the error each stands for, and the fix a
reader is told.

Separate from the worker: the planner fails images with the same reasons and fixes (an unknown tag, no rule, a budget
spent), and a reader of a report looks here for what a reason code means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pullthrough.errors import (
    AwsAccessDenied,
    AwsError,
    AwsNotFound,
    ConfigError,
    DigestMismatch,
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

TAG_MOVED = "tag_moved"  # reason code of refreshed items and of tags that moved upstream but not yet in ECR


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


# The error types that name their reason, most specific first (a DigestMismatch is a RegistryError too).
_BY_TYPE: tuple[tuple[type[PullthroughError], Reason], ...] = (
    (DigestMismatch, Reason.DIGEST_MISMATCH),
    (RegistryNotFound, Reason.UNKNOWN_TAG),
    (RegistryAuthError, Reason.AUTH),
    (SecretError, Reason.AUTH),
    (RegistryRateLimited, Reason.RATE_LIMITED),
    (RegistryTimeout, Reason.TIMEOUT),
    (RegistryUnavailable, Reason.UPSTREAM_DOWN),
)


def reason_of(error: PullthroughError) -> Reason:
    """The reason code for an error raised while planning or warming."""
    for kind, reason in _BY_TYPE:
        if isinstance(error, kind):
            return reason
    if isinstance(error, RegistryError):
        return _status_reason(error.status or 0)
    if isinstance(error, ConfigError):
        return Reason.NO_RULE
    if isinstance(error, InvalidReference):
        return Reason.INVALID_REFERENCE
    return Reason.ERROR


def _status_reason(status: int) -> Reason:
    """The reason of a registry error that says no more than its HTTP status."""
    if status == 404:
        return Reason.UNKNOWN_TAG
    if status in (401, 403):
        return Reason.AUTH
    if status == 429:
        return Reason.RATE_LIMITED
    return Reason.UPSTREAM_DOWN if status >= 500 else Reason.ERROR


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


def ecr_upstream_fix(rule: str) -> str:
    """What to do when ECR could not import from an upstream ECR registry (ECR to ECR): the rule's role or the
    upstream's registry policy, never a secret (such a rule has none). AWS's ECR guide, "Setting up permissions for
    cross-account ECR to ECR PTC"."""
    return (
        f"fix the role ECR assumes for rule {rule} (its customRoleArn, in an organisation pullthrough-org-ptc-<region> "
        "of the member template): its trust policy must let pullthroughcache.ecr.amazonaws.com sts:AssumeRole, its "
        "permissions allow ecr:GetAuthorizationToken on * and ecr:BatchGetImage, ecr:GetDownloadUrlForLayer and "
        f"ecr:BatchImportUpstreamImage on the upstream registry's {rule}/ repositories; redeploy the hub "
        "(`sam deploy`: its StackSet restores the member stacks) if the role was changed by hand, and check the "
        "upstream registry's policy allows the role (the hub's reconcile writes it)"
    )


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


# ECR's ImageFailureCode values (botocore) and what each means for the reader.
IMAGE_FAILURES = {
    "UpstreamAccessDenied": Reason.AUTH,
    "UpstreamTooManyRequests": Reason.RATE_LIMITED,
    "UpstreamUnavailable": Reason.UPSTREAM_DOWN,
    "ImageNotFound": Reason.UNKNOWN_TAG,
    "ImageTagDoesNotMatchDigest": Reason.DIGEST_MISMATCH,
}

# botocore's names for an endpoint it cannot reach (no VPC endpoint, no route out).
UNREACHABLE_CODES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ProxyConnectionError",
    }
)


# ECR's messages about an upstream carry digests and ids (hex, where "403" or "429" may well appear): a status only
# counts as a word of its own, and "rate" only as a word ("generate" or "separate" is not a rate limit).
_RATE_LIMITED = re.compile(r"toomanyrequests|\b429\b|\brate\b|rate[ -]?limit")
_AUTH = re.compile(r"accessdenied|denied|\b40[13]\b|authenticat")


def upstream_reason(text: str) -> Reason:
    """The reason in ECR's words about an upstream (its exception messages carry no code of their own)."""
    lowered = text.lower()
    if _RATE_LIMITED.search(lowered):
        return Reason.RATE_LIMITED
    if _AUTH.search(lowered):
        return Reason.AUTH
    return Reason.UPSTREAM_DOWN


__all__ = [
    "CORRUPT_CONTENT_FIX",
    "IMAGE_FAILURES",
    "TAG_MOVED",
    "UNREACHABLE_CODES",
    "Failure",
    "Reason",
    "ecr_upstream_fix",
    "failure",
    "fix_for",
    "reason_of",
    "unreadable_secret_fix",
    "upstream_reason",
]
