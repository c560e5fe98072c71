"""Fill the sandbox's upstream with the images a config asks to warm, so the config runs unchanged locally.

Every upstream host the sandbox stands in for is served by one registry, so an image is pushed under its upstream
path (`library/nginx`, `fluxcd/source-controller`). Fixed tags are pushed as they are; a tag pattern or latest-N
gets a few semantic versions (and a `latest` that no pattern of ours matches) so the expansion has something to pick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pullthrough import sources
from pullthrough.config import Config, WarmTarget
from pullthrough.reference import upstream_repository
from sandbox import PushedImage, Sandbox

CANDIDATE_TAGS = ("v1.2.0", "v1.3.0", "v1.3.1", "1.8.2", "1.9.0", "1.9.1", "latest")
ALL_PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class Seeded:
    """An image pushed into the sandbox's upstream for a warm target."""

    target: WarmTarget
    repository: str  # the upstream path
    tag: str
    pushed: PushedImage


def tags_for(target: WarmTarget) -> list[str]:
    """The tags to push for one warm target."""
    image = target.image
    tags = list(image.fixed_tags)
    if image.tag_pattern or image.latest:
        pattern = re.compile(image.tag_pattern) if image.tag_pattern else None
        tags += [t for t in CANDIDATE_TAGS if pattern is None or pattern.fullmatch(t)]
        tags.append("latest")
    return list(dict.fromkeys(tags))


def seed(sb: Sandbox, config: Config, layer_sizes: tuple[int, ...] = (4096, 1024)) -> list[Seeded]:
    """Push every warm target's tags into the sandbox's upstream, as a multi-arch index of amd64 and arm64."""
    seeded = []
    for target in config.targets(sources.read(config)):
        repository = upstream_repository(target.image.image)
        for tag in tags_for(target):
            pushed = sb.push_image(repository, tag, platforms=ALL_PLATFORMS, layer_sizes=layer_sizes, seed=tag)
            seeded.append(Seeded(target, repository, tag, pushed))
    return seeded
