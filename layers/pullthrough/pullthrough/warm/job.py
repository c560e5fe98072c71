"""The warm job: the SQS message the planner sends and warm_images receives, one image tag to warm through ECR.

Separate from the worker so that both ends of the queue hold the one contract (the planner writes it, the worker
reads it, a queued message outlives a deployment: unknown fields are ignored).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pullthrough.aws.ledger import RunTarget
from pullthrough.reporting.items import Details
from pullthrough.warm.importing import Progress, Wait

# template.yaml's WarmQueue RedrivePolicy maxReceiveCount: on the last delivery an unexpected error becomes a failed
# outcome, so the run still completes; a test keeps the two equal.
MAX_RECEIVES = 3


class JobTarget(BaseModel):
    """Where a member's job warms: the member account and region, the warm role the hub assumes there, and that
    registry's host (the planner names both, so warm_images never reads the config)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    account: str
    region: str
    member: str = ""
    role: str = Field(description="arn:<partition>:iam::<account>:role/pullthrough-org-warm-<region>")
    registry: str = Field(description="The member registry's host: <account>.dkr.ecr.<region>.<dns suffix>.")

    def run_target(self) -> RunTarget:
        return RunTarget(self.account, self.region, self.member)


class WarmJob(BaseModel):
    """One image tag to warm: the SQS message the planner sends and warm_images receives."""

    # Unknown fields are ignored: messages queued by a newer planner must not fail a worker still on the old code.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    run_id: str
    key: str = Field(description="Unique within the run: <cache repository>:<tag>.")
    subject: str = Field(description="The image as people read it: docker.io/library/nginx:1.27.")
    rule: str = Field(description="The rule's ECR repository prefix.")
    secret: str | None = Field(None, description="The name (never the value) of the rule's credentials secret.")
    upstream: str = Field(description="The upstream's catalogue key, e.g. docker-hub.")
    upstream_url: str | None = Field(
        None,
        description="The rule's upstreamRegistryUrl: warm_images asks the upstream why ECR could not import without "
        "reading the config. None from a planner that predates the field: the catalogue's URL for the upstream.",
    )
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
    target: JobTarget | None = Field(
        None, description="The organisation member this job warms in; None: the function's own account and region."
    )


def details_of(job: WarmJob, **facts: Any) -> Details:
    """Details naming the job's rule, upstream and repository, plus `facts`."""
    return Details(rule=job.rule, upstream=job.upstream, repository=job.repository, source=job.source, **facts)


__all__ = ["MAX_RECEIVES", "JobTarget", "WarmJob", "details_of"]
