"""The `warm` section: which images Pullthrough keeps warm, how often, and how long it waits for ECR's imports;
and `WarmTarget`, a warm image resolved against the rules (what the planner expands and warms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, Strict, model_validator

from pullthrough import tag_patterns
from pullthrough.config import fields
from pullthrough.config.fields import ImageRef, Model, Platform, Seconds, Tag
from pullthrough.config.rules import Rule
from pullthrough.config.schema import OrString
from pullthrough.config.source_entries import Source
from pullthrough.reference import ImageReference

__all__ = ["Imports", "Warm", "WarmImage", "WarmImageField", "WarmTarget"]


class WarmImage(Model):
    """An image to keep warm, and which of its tags."""

    image: ImageRef = Field(
        description=(
            "The image, e.g. olakego/source-mysql or ghcr.io/org/app. A tag here (nginx:1.27) is warmed too; "
            "name:tag@digest also verifies that the tag still has that digest."
        )
    )
    tags: tuple[Tag, ...] | None = Field(None, min_length=1, description="Tags to warm.")
    tag_pattern: Annotated[str | None, AfterValidator(lambda v: v if v is None else fields.tag_pattern(v))] = Field(
        None,
        description=(
            r"A Python regular expression a tag must match in full, e.g. ^v0\.1\.\d+$; matched in linear time, "
            "so backreferences, lookarounds and (a+)+-style nesting are refused."
        ),
    )
    # Strict: pydantic would read `latest: true` as 1.
    latest: Annotated[int, Strict()] | None = Field(
        None,
        ge=1,
        le=100,
        description=(
            "Warm the N highest versions (1.27.3, 1.2.3.4, 2024.01.15): of the plain tags, or with tag_pattern of "
            "each suffix family it matches (1.27.3-alpine orders among -alpine tags). Tags it cannot order are "
            "named in the report."
        ),
    )
    platforms: tuple[Platform, ...] | None = Field(
        None, min_length=1, description="Platforms for this image; warm.platforms when left out."
    )
    rule: str | None = Field(
        None, description="The prefix of the rule to cache this image through, when several rules could."
    )

    @model_validator(mode="after")
    def _selects_something(self) -> WarmImage:
        # The hints show the image at hand, written as its author would write it (nginx, ghcr.io/org/app).
        name = ImageReference(self.image.domain, self.image.path).familiar
        if self.image.tag is None and self.image.digest is not None:
            raise ValueError(
                f"ECR does not cache an image first pulled by digest; give the tag too ({name}:<tag>@sha256:...)"
            )
        if self.image.tag is None and not self.tags and self.tag_pattern is None and self.latest is None:
            raise ValueError(
                f"nothing to warm: give a tag ({name}:<tag>) or, in the object form, tags, tag_pattern or "
                f"latest ({{image: {name}, latest: 3}})"
            )
        return self

    def matches(self, tag: str) -> bool:
        """Whether `tag` matches tag_pattern in full (True when there is no pattern)."""
        return self.tag_pattern is None or tag_patterns.compile_pattern(self.tag_pattern).fullmatch(tag)

    @property
    def fixed_tags(self) -> tuple[str, ...]:
        """The tags named outright: the reference's own tag, then `tags`, without repeats."""
        named = ([self.image.tag] if self.image.tag else []) + list(self.tags or ())
        return tuple(dict.fromkeys(named))


WarmImageField = Annotated[
    WarmImage,
    BeforeValidator(fields.image_form),
    OrString("Short form: an image reference with a tag, e.g. docker.io/library/nginx:1.27."),
]


class Imports(Model):
    """How warm_images waits for ECR to import an image's layers (ECR imports them itself; nothing is copied)."""

    poll: Seconds = Field(
        60,
        ge=1,
        le=600,
        description=(
            "How long one warm_images invocation waits for ECR (checking with backoff) before the job goes back to "
            "the queue to look again later, e.g. 60 seconds. The function's remaining time caps it."
        ),
    )
    download_after: Seconds = Field(
        900,
        ge=0,
        description=(
            "Layers ECR still lacks this long into the import are downloaded once through ECR's own URL (a last "
            "resort: it moves bytes through the function), e.g. 15 minutes."
        ),
    )
    give_up_after: Seconds = Field(
        3600,
        ge=1,
        le=7200,
        description="After this long the image fails as import_incomplete, naming the layers ECR lacks, e.g. 1 hour.",
    )
    download: bool = Field(True, description="false: never download a layer through the function; wait for ECR only.")

    @model_validator(mode="after")
    def _ordered(self) -> Imports:
        if self.give_up_after < self.poll:
            raise ValueError(
                f"give_up_after ({self.give_up_after} s) must be at least poll ({self.poll} s): "
                "a job looks at least once before it gives up"
            )
        return self


class Warm(Model):
    """Which images Pullthrough keeps warm in the cache, and how often."""

    schedule: Annotated[str, AfterValidator(fields.schedule)] = Field(
        "rate(6 hours)",
        description="EventBridge Scheduler expression: rate(N minutes|hours|days) or cron(6 fields).",
        examples=["rate(6 hours)", "cron(0 3 * * ? *)"],
    )
    platforms: tuple[Platform, ...] = Field(
        ("linux/amd64",),
        min_length=1,
        description=(
            "Default platforms to verify: os/arch[/variant]. ECR imports every platform of a multi-arch image (and "
            "the upstream counts a pull for each); these choose which ones Pullthrough checks are complete."
        ),
    )
    budget_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description=(
            "Share (0 < x <= 1) of an upstream's remaining pull allowance that a warm run may spend; runs open at "
            "the same time share one such allowance."
        ),
    )
    images: tuple[WarmImageField, ...] = Field((), description="The images to keep warm.")
    sources: tuple[Source, ...] = Field(
        (),
        description=(
            "Files (compose, kubernetes or helm template output, text) and ECS task definitions whose images are "
            "warmed too, each attributed to its source; warm.images wins for an image both name."
        ),
    )
    imports: Imports = Field(
        default_factory=lambda: Imports(),
        description="How long to wait for ECR's import of an image, and when to download a layer as a last resort.",
    )


@dataclass(frozen=True)
class WarmTarget:
    """A warm image resolved against the rules: what the planner needs to expand and warm it."""

    image: WarmImage
    rule: Rule
    cache_repository: str
    platforms: tuple[str, ...]
    source: str | None = None  # the warm.sources entry that names the image; None for warm.images
    place: str | None = None  # where in that source: file:line, or file → service / workload → container
