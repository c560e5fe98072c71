"""What pruning must keep: the tags the warm list, warm.sources and prune.keep name, per cache repository.

Tag patterns and latest-N are evaluated on the tags ECR holds (the planner's own `choose_tags`), so an entry keeps
exactly what a warm run would pick from them. A source that cannot be read in full keeps everything: pruning then
deletes nothing (`unreadable_sources`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pullthrough.aws.ecr import EcrImage
    from pullthrough.config import Config

WHOLE_REPOSITORY = "*"  # a keep that names a repository without a tag


def protected(config: Config, held: Mapping[str, Sequence[EcrImage]]) -> dict[str, dict[str, str]]:
    """Per cache repository, the tags that must stay and why ({tag: reason}; WHOLE_REPOSITORY keeps every image).

    `held`: the images ECR holds per repository, so tag patterns and latest-N pick from the tags ECR has.
    """
    from pullthrough.planning import choose_tags

    kept: dict[str, dict[str, str]] = {}
    for target in config.targets():
        image = target.image
        tags = [tag for ecr_image in held.get(target.cache_repository, ()) for tag in ecr_image.tags]
        chosen = choose_tags(image, tags if image.tag_pattern is not None or image.latest is not None else None).tags
        for tag in chosen:
            named = (
                f"{target.source} names it ({target.place})"
                if target.source
                else f"warm.images names it ({image.image.name})"
            )
            kept.setdefault(target.cache_repository, {}).setdefault(tag, named)
    for name, tag in _source_tags(config):
        kept.setdefault(name, {}).setdefault(tag, "a warm.sources file names it")
    if config.prune is not None:
        for ref in config.prune.keep:
            repository = config.rule_for(ref).cache_repository(ref)
            kept.setdefault(repository, {})[ref.tag or WHOLE_REPOSITORY] = f"prune.keep names it ({ref})"
    return kept


def _source_tags(config: Config) -> list[tuple[str, str]]:
    """(cache repository, tag) of every reference warm.sources yields.

    Strict (`sources.references` raises SourceError on any problem): a source that cannot be read in full might
    still name an image, so the run deletes nothing (`run` reports why).
    """
    from pullthrough import sources
    from pullthrough.reference import ImageReference

    found = []
    for yielded in sources.references(config):
        ref = ImageReference.parse(yielded.reference)
        if ref.tag:
            found.append((config.rule_for(ref).cache_repository(ref), ref.tag))
    return found


def unreadable_sources(config: Config) -> str | None:
    """Why the warm.sources cannot say everything they name now, or None when they can."""
    from pullthrough import sources
    from pullthrough.sources.model import EcsSource

    if any(isinstance(source, EcsSource) for source in config.warm.sources):
        # ECS task definitions are read at plan time with the ECS adapter (issue16-ecs); prune has no reader yet.
        return "an ecs source names the images of ECS task definitions, which prune cannot read yet"
    try:
        sources.references(config)
    except sources.SourceError as exc:
        return str(exc)
    return None


__all__ = ["WHOLE_REPOSITORY", "protected", "unreadable_sources"]
