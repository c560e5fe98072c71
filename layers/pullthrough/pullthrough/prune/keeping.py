"""What pruning must keep: the tags the warm list, warm.sources and prune.keep name, per cache repository.

Tag patterns and latest-N are evaluated on the tags ECR holds (the planner's own `choose_tags`), so an entry keeps
exactly what a warm run would pick from them. A source that cannot be read in full keeps everything: pruning then
deletes nothing (`named_by_sources`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pullthrough import sources
from pullthrough.config.source_entries import EcsSource
from pullthrough.reference import ImageReference
from pullthrough.warm.selection import choose_tags

if TYPE_CHECKING:
    from pullthrough.aws.ecr import EcrImage
    from pullthrough.config import Config
    from pullthrough.sources import EcsReader, Yielded

WHOLE_REPOSITORY = "*"  # a keep that names a repository without a tag


def protected(
    config: Config, held: Mapping[str, Sequence[EcrImage]], named: Sequence[Yielded] = ()
) -> dict[str, dict[str, str]]:
    """Per cache repository, the tags that must stay and why ({tag: reason}; WHOLE_REPOSITORY keeps every image).

    `held`: the images ECR holds per repository, so tag patterns and latest-N pick from the tags ECR has; `named`:
    what warm.sources yield (`named_by_sources`).
    """
    kept: dict[str, dict[str, str]] = {}
    for target in config.targets(sources.read(config)):
        image = target.image
        tags = [tag for ecr_image in held.get(target.cache_repository, ()) for tag in ecr_image.tags]
        chosen = choose_tags(image, tags if image.tag_pattern is not None or image.latest is not None else None).tags
        for tag in chosen:
            reason = (
                f"{target.source} names it ({target.place})"
                if target.source
                else f"warm.images names it ({image.image.name})"
            )
            kept.setdefault(target.cache_repository, {}).setdefault(tag, reason)
    for name, tag, reason in _source_tags(config, named):
        kept.setdefault(name, {}).setdefault(tag, reason)
    if config.prune is not None:
        for ref in config.prune.keep:
            repository = config.rule_for(ref).cache_repository(ref)
            kept.setdefault(repository, {})[ref.tag or WHOLE_REPOSITORY] = f"prune.keep names it ({ref})"
    return kept


def _source_tags(config: Config, named: Sequence[Yielded]) -> list[tuple[str, str, str]]:
    """(cache repository, tag, why) of every reference warm.sources yield."""
    found = []
    for yielded in named:
        ref = ImageReference.parse(yielded.reference)
        if ref.tag:
            reason = f"{yielded.source} names it ({yielded.place})"
            found.append((config.rule_for(ref).cache_repository(ref), ref.tag, reason))
    return found


def named_by_sources(config: Config, ecs: EcsReader | None) -> tuple[list[Yielded], str | None]:
    """Every reference warm.sources yield now, or why they cannot say everything they name (then none).

    Strict (`sources.references` raises SourceError on any problem, a refused ECS call included): a source that
    cannot be read in full might still name an image, so the run deletes nothing (`prune.run` reports why).
    `ecs`: the reader of the account's task definitions (`sources.ecs.reader_in`), None where there is none.
    """
    if ecs is None and any(isinstance(source, EcsSource) for source in config.warm.sources):
        return [], "an ecs source names the images of ECS task definitions, and no ECS reader was given"
    try:
        return list(sources.references(config, ecs=ecs)), None
    except sources.SourceError as exc:
        return [], str(exc)


__all__ = ["WHOLE_REPOSITORY", "named_by_sources", "protected"]
