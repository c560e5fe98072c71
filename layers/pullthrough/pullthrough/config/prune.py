"""The `prune` section: deleting cached images nobody pulled for a while (functions/prune_images).

A section of its own because it is the one part of the config that deletes: what it may touch (the rules' prefixes,
never what the warm list or `keep` names) is pullthrough.prune's; this is only what the user asks for.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, Strict

from pullthrough.config import fields
from pullthrough.config.fields import ImageRef, Model

__all__ = ["Prune"]


class Prune(Model):
    """Deleting cached images nobody pulled for a while, under the rules' prefixes only (functions/prune_images).

    Done by Pullthrough rather than an ECR lifecycle policy: ECR's `sinceImagePulled` count type only transitions
    images to the archive storage class, it does not expire them (containers-roadmap #921, closed 2025-11-20 by AWS
    with "paired with our new archival storage class"; #2728, open, asks for expiry), and no lifecycle rule can spare
    the images the warm list still names.
    """

    schedule: Annotated[str, AfterValidator(fields.schedule)] = Field(
        "rate(1 day)",
        description="EventBridge Scheduler expression: rate(N minutes|hours|days) or cron(6 fields).",
        examples=["rate(1 day)", "cron(0 4 ? * SUN *)"],
    )
    # Strict: pydantic would read `unused_for_days: true` as 1.
    unused_for_days: Annotated[int, Strict()] = Field(
        ge=1,
        le=3650,
        description=(
            "Delete a cached image nobody pulled for this many days (ECR's lastRecordedPullTime, which ECR refreshes "
            "about once a day; the import time when it was never pulled), e.g. 30."
        ),
    )
    dry_run: bool = Field(
        True, description="true (the default): only report what would be deleted, with sizes; false: delete it."
    )
    max_deletions: Annotated[int, Strict()] = Field(
        100, ge=1, le=10000, description="At most this many images deleted per run, the oldest first."
    )
    keep: tuple[ImageRef, ...] = Field(
        (),
        description=(
            "Images never deleted besides the warm list: name:tag keeps that tag, a name without a tag keeps every "
            "image of its cache repository."
        ),
    )
