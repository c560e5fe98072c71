"""The `ecs` source: the images the account's ACTIVE task definitions run, read at plan time through the adapter.

Each container definition's image is resolved as every source's reference is (`resolving.resolve`): an image that
points at the cache already (`<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/...`, what a task definition
pulling through the cache names) is mapped back to its upstream; a digest-only one, or one no rule caches, is a
problem naming the revision and the container. An image of an ECR private repository that is not a cache
repository (pushed there by its owner, not pulled through a rule) is no upstream of Pullthrough's: it is skipped and
counted in a note, not reported as a problem on every run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pullthrough.aws import ecs as aws_ecs
from pullthrough.aws.ecs import TaskDefinitions
from pullthrough.config.source_entries import EcsSource
from pullthrough.errors import AwsError, InvalidReference, Problem
from pullthrough.reference import ImageReference
from pullthrough.sources.resolving import Reading, Yielded, from_cache

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["ECS_LOCATION", "PLACE", "Lister", "ecs_references", "fix_for", "read", "reader"]

# The adapter, bound to a region: family prefix (None: every family) in, the ACTIVE revisions read out.
Lister = Callable[[str | None], TaskDefinitions]

# An ECR private registry host (ECR User Guide, "Amazon ECR private registry": aws_account_id.dkr.ecr.region
# .amazonaws.com, .com.cn in China).
_ECR_HOST = re.compile(r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
# How many revisions a note names before it says "and N more".
NAMED = 5
# Where an ecs source's problems are: a container of a task definition revision, or the ECS API itself.
PLACE = "task definition "
ECS_LOCATION = "ECS ListTaskDefinitions / DescribeTaskDefinition"
IMAGE_FIX = (
    "register a revision of {family} that names the image by tag, under a rule's upstream, and deregister {revision}; "
    "or narrow the source's family_prefix"
)
REFUSED_FIX = (
    "if ECS refused access: let plan_warming's role call ecs:ListTaskDefinitions and ecs:DescribeTaskDefinition on "
    "Resource '*' (template.yaml ReadTaskDefinitions, granted when the config has an ecs source; check SCPs too); "
    "else nothing: the next run reads the task definitions again"
)


def read(source: EcsSource, config: Config, lister: Lister) -> Reading:
    """Every image of the source's task definitions, resolved, with problems and notes (as every source's reading);
    AwsError when ECS refuses the listing or a describe."""
    found = lister(source.family_prefix)
    reading = Reading()
    private: dict[str, str] = {}
    for definition in found.read:
        for container in definition.containers:
            place = f"{PLACE}{definition.name} → {container.name}"
            if _private(container.image, config):
                private.setdefault(container.image, place)
            else:
                reading.add(container.image, config, source=source.label, place=place)
    reading.notes.extend(_notes(source, found, private))
    return reading


def reader(config: Config, lister: Lister) -> Callable[[EcsSource], Reading]:
    """`read` bound to the config and the adapter (sources.EcsReader): what ECS refuses is the source's problem, so
    the run still warms every other image and its report says what to grant."""

    def read_one(source: EcsSource) -> Reading:
        try:
            return read(source, config, lister)
        except AwsError as exc:
            refused = Problem(location=ECS_LOCATION, value=f"source {source.label}", message=f"not read: {exc}")
            return Reading(problems=[refused])

    return read_one


def fix_for(problem: Problem) -> str | None:
    """The fix of an ecs source's problem (None for another source's)."""
    if problem.location == ECS_LOCATION:
        return REFUSED_FIX
    if problem.location.startswith(PLACE):
        revision = problem.location.removeprefix(PLACE).split(" ", 1)[0]
        return IMAGE_FIX.format(family=revision.rpartition(":")[0], revision=revision)
    return None


def ecs_references(source: EcsSource, lister: Lister, config: Config) -> list[Yielded]:
    """Each reference once (what `sources.read`'s ecs reader yields); problems and notes are `read`'s."""
    return read(source, config, lister).unique()


def _private(image: str, config: Config) -> bool:
    """An image of an ECR private repository that is neither a cache repository nor what a rule pulls through."""
    try:
        ref = ImageReference.parse(image)
    except InvalidReference:
        return False
    if not _ECR_HOST.fullmatch(ref.domain.lower()) or any(rule.caches(ref) for rule in config.rules):
        return False
    return from_cache(ref, config) is None


def _notes(source: EcsSource, found: TaskDefinitions, private: dict[str, str]) -> list[Problem]:
    notes = []
    where = f"warm.sources {source.label}"
    if private:
        first = ", ".join(f"{image} ({place})" for image, place in list(private.items())[:NAMED])
        more = f" and {len(private) - NAMED} more" if len(private) > NAMED else ""
        message = f"skipped: ECR private repositories no rule pulls through (pushed there, not cached): {first}{more}"
        notes.append(Problem(location=where, value=f"{len(private)} image(s)", message=message))
    if found.unread:
        first = ", ".join(found.unread[:NAMED])
        more = f" and {len(found.unread) - NAMED} more" if len(found.unread) > NAMED else ""
        message = (
            f"not read this run (each family's newest revisions first, {len(found.read)} a run): {first}{more}; "
            "deregister the revisions no service runs any more (aws ecs deregister-task-definition)"
        )
        notes.append(Problem(location=where, value=f"{len(found.unread)} older ACTIVE revision(s)", message=message))
    return notes


def reader_in(config: Config, region: str) -> Callable[[EcsSource], Reading] | None:
    """The ecs sources' reader over the ECS adapter in `region`; None without an ecs source (no call is made).

    plan_warming, prune_images and `pullthrough images` read the same sources the same way."""
    if not any(isinstance(source, EcsSource) for source in config.warm.sources):
        return None
    return reader(config, lambda prefix: aws_ecs.task_definitions(prefix, region))
