"""What a consumer pulls: the ECR URI of each warm-list image, and the registry base of each rule.

The cache repository of an image is the warmer's own (`Config.targets()` through `reference.cache_repository`), so a
URI printed here is the repository warming fills: Docker Hub official images keep `library/` (alpine is cached as
`<prefix>/library/alpine`, as the ECR User Guide's pull-through examples show).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from pullthrough import sources, upstreams
from pullthrough.config import Config, Rule
from pullthrough.consumers.target import Target
from pullthrough.reference import image_uri

# The variable OLake's compose file reads (seed 000: CONTAINER_REGISTRY_BASE="<account>.dkr.ecr.<region>...").
COMPOSE_VARIABLE = "CONTAINER_REGISTRY_BASE"
# Docker Engine's daemon.json registry-mirrors: "Only the central Hub can be mirrored" (Docker docs, "Mirror the Docker
# Hub library"), and "The URL of a pull-through registry mirror must be the root of a domain. No path components other
# than an optional trailing slash" (distribution.github.io, "Registry as a pull through cache").
DOCKER_NOTE = (
    "Docker Engine cannot use the cache as a mirror: daemon.json registry-mirrors only mirrors Docker Hub and takes "
    "a registry root without a path, while ECR serves each rule under /<prefix>. What works: name images by their "
    f"ECR URI (the .env base, e.g. ${{{COMPOSE_VARIABLE}}}/library/nginx:1.27 in a compose file), rewrite pod images "
    "with the Kyverno policy, or configure containerd (EKS, Bottlerocket, k3s) with the hosts.toml files."
)


# CachedImage and RegistryBase are also what `pullthrough urls --json` prints (docs/cli/urls.schema.json): the
# descriptions below are the schema's.


@dataclass(frozen=True)
class CachedImage:
    """One warm-list image (a named tag, or the repository when tags are chosen at warm time) and its ECR URI."""

    # the reference as people pull it from the upstream, e.g. docker.io/library/alpine:3.20
    upstream: str
    rule: str
    repository: Annotated[str, Field(description="The cache repository in ECR: docker-hub/library/alpine")]
    uri: Annotated[str, Field(description="<registry>/<repository>[:tag]")]
    selection: Annotated[
        str | None, Field(description="How tags are chosen when none is named; null for a named tag")
    ]  # tag_pattern / latest


@dataclass(frozen=True)
class RegistryBase:
    """One rule's base: replace `upstream` in an image name with `base`."""

    rule: str
    upstream_title: str
    # for ECR upstreams with an upstream prefix, the namespace too
    upstream: Annotated[
        str, Field(description="The registry host (plus upstream prefix) images are named with: docker.io")
    ]
    base: Annotated[str, Field(description="<registry>/<prefix>")]
    variable: Annotated[str, Field(description="The .env variable `pull-config --format env` sets to `base`")]


def upstream_namespace(rule: Rule) -> str:
    """The registry host (plus upstream prefix) the rule's images are named with: docker.io, ghcr.io, <host>/team-a."""
    domain = upstreams.canonical_domain(rule.entry, rule.upstream_url)
    return f"{domain}/{rule.upstream_prefix}" if rule.upstream_prefix else domain


def cached_images(config: Config, target: Target) -> list[CachedImage]:
    """Every warm-list image with its ECR URI; a tag_pattern / latest image is listed once, without a tag."""
    host = target.registry_host
    result: list[CachedImage] = []
    for warm in config.targets(sources.read(config)):
        image, rule, repository = warm.image, warm.rule.prefix, warm.cache_repository
        for tag in image.fixed_tags:
            uri = image_uri(host, repository, tag)
            result.append(CachedImage(str(image.image.with_tag(tag)), rule, repository, uri, None))
        selection = _selection(image.tag_pattern, image.latest)
        if selection is not None:
            result.append(CachedImage(image.image.name, rule, repository, image_uri(host, repository), selection))
    return result


def _selection(pattern: str | None, latest: int | None) -> str | None:
    if latest is not None:
        matching = f" matching {pattern}" if pattern is not None else ""
        return f"the latest {latest} version(s){matching}, chosen at warm time"
    if pattern is not None:
        return f"every tag matching {pattern}, chosen at warm time"
    return None


def registry_bases(config: Config, target: Target) -> list[RegistryBase]:
    """One base per rule, in config order."""
    return [
        RegistryBase(rule.prefix, rule.entry.title, upstream_namespace(rule), target.base(rule.prefix), _variable(rule))
        for rule in config.rules
    ]


def _variable(rule: Rule) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", rule.prefix.upper()).strip("_") + "_REGISTRY_BASE"


def compose_base(bases: list[RegistryBase]) -> RegistryBase | None:
    """The base CONTAINER_REGISTRY_BASE names: the Docker Hub rule's, when there is exactly one."""
    hub = [b for b in bases if b.upstream == upstreams.CATALOGUE["docker-hub"].domains[0]]
    return hub[0] if len(hub) == 1 else None


def env_text(config: Config, target: Target) -> str:
    """The `.env` lines a compose file reads: one base per rule, and CONTAINER_REGISTRY_BASE for Docker Hub.

    Compose's env file syntax ("Set environment variables", docs.docker.com/compose): `#` comments, VAR="value".
    """
    bases = registry_bases(config, target)
    lines = [
        "# Registry bases of the ECR pull-through cache, generated by `pullthrough pull-config --format env`.",
        f"# Log in first: aws ecr get-login-password --region {target.region} | "
        f"docker login --username AWS --password-stdin {target.registry_host}",
        "# An image <upstream>/<path>:<tag> is pulled as <base>/<path>:<tag>; Docker Hub official images keep",
        "# library/ (nginx:1.27 -> ${" + COMPOSE_VARIABLE + "}/library/nginx:1.27).",
        *textwrap.wrap(DOCKER_NOTE, 116, initial_indent="# ", subsequent_indent="# "),
    ]
    compose = compose_base(bases)
    if compose is not None:
        lines.append(f'{COMPOSE_VARIABLE}="{compose.base}"')
    for b in bases:
        lines.extend((f"# rule {b.rule}: {b.upstream_title} ({b.upstream})", f'{b.variable}="{b.base}"'))
    return "\n".join(lines) + "\n"
