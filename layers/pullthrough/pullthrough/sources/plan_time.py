"""The sources read when a run is planned (`ecs`), as the planner's targets, decided items and notes.

File sources are read from the config layer; an `ecs` source asks the account when plan_warming (or `pullthrough
plan`) runs. What ECS refuses (IAM, throttling past the retries) fails that source in the run's report, never the
run: the other images still warm. An image that cannot be warmed is a skipped item naming the task definition
revision and container, and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pullthrough.errors import AwsAccessDenied, AwsError
from pullthrough.reference import ImageReference
from pullthrough.report import Outcome, ReportItem
from pullthrough.sources import ecs
from pullthrough.sources.model import EcsSource

if TYPE_CHECKING:
    from pullthrough.config import Config, WarmTarget

__all__ = ["SOURCE_REASON", "PlanTimeSources", "read"]

SOURCE_REASON = "source"  # reason code: a warm source could not be read, or named an image that cannot be warmed
IMAGE_FIX = (
    "register a task definition revision that names the image by tag, under a rule's upstream, and deregister this "
    "one; or narrow the source's family_prefix"
)


@dataclass(frozen=True)
class PlanTimeSources:
    """What the plan-time sources add to a run: targets, items decided already (by ledger key), notes."""

    targets: list[WarmTarget] = field(default_factory=list)
    decided: list[tuple[str, ReportItem]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read(config: Config, lister: ecs.Lister | None, listed: Sequence[WarmTarget]) -> PlanTimeSources:
    """The ecs sources' images as targets (those `listed` already, warm.images', left out), problems, notes."""
    result = PlanTimeSources()
    if lister is None:
        return result
    named = {(t.image.image.name, t.image.image.tag) for t in listed}
    for index, source in enumerate(config.warm.sources):
        if isinstance(source, EcsSource):
            _read_one(config, source, f"source#{index}", lister, named, result)
    return result


def _read_one(
    config: Config,
    source: EcsSource,
    key: str,
    lister: ecs.Lister,
    named: set[tuple[str, str | None]],
    result: PlanTimeSources,
) -> None:
    try:
        reading = ecs.read(source, config, lister)
    except AwsError as exc:
        result.decided.append((key, _refused(source, exc)))
        return
    for yielded in reading.unique():
        ref = ImageReference.parse(yielded.reference)
        if (ref.name, ref.tag) not in named:
            named.add((ref.name, ref.tag))
            result.targets.append(_target(config, ref))
    for number, problem in enumerate(reading.problems):
        item = ReportItem(
            subject=problem.value,
            outcome=Outcome.SKIPPED,
            reason=f"{source.label}, {problem.location}: {problem.message}",
            fix=IMAGE_FIX,
            reason_code=SOURCE_REASON,
        )
        result.decided.append((f"{key}#{number}", item))
    result.notes.append(
        f"{source.label}: {len(reading.unique())} image(s) named by the account's ACTIVE task definitions"
        + (f", {len(reading.problems)} that cannot be warmed" if reading.problems else "")
    )
    result.notes.extend(f"{note.location}: {note.value} {note.message}" for note in reading.notes)


def _refused(source: EcsSource, exc: AwsError) -> ReportItem:
    return ReportItem(
        subject=f"source {source.label}",
        outcome=Outcome.FAILED,
        reason=f"the task definitions could not be read: {exc}",
        fix=(
            "let plan_warming's role call ecs:ListTaskDefinitions and ecs:DescribeTaskDefinition on Resource '*' "
            "(template.yaml ReadTaskDefinitions, granted when the config has an ecs source; check SCPs too)"
            if isinstance(exc, AwsAccessDenied)
            else "nothing if it happens once: the next run reads the task definitions again"
        ),
        reason_code=SOURCE_REASON,
    )


def _target(config: Config, ref: ImageReference) -> WarmTarget:
    from pullthrough.config import WarmImage, WarmTarget

    image = WarmImage(image=ref)
    rule = config.rule_for(ref)
    return WarmTarget(image, rule, rule.cache_repository(ref), config.warm.platforms)
