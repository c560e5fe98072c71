"""What consumers need to pull through the cache, generated from the config and the target account and region.

Pure: no boto3, no network. `artefacts(config, target, formats)` returns each requested format's files and notes;
`cached_images` and `registry_bases` are what `pullthrough urls` lists.

    env              .env lines with each rule's registry base (CONTAINER_REGISTRY_BASE for Docker Hub)
    registries.conf  containers-registries.conf(5) mirrors: skopeo, podman, buildah, CRI-O
    containerd       certs.d/<host>/hosts.toml per upstream host: containerd (EKS, Bottlerocket, k3s)
    kyverno          a ClusterPolicy rewriting pod images to the cache
    iam-policy       the least-privilege identity policy of a puller
    vpc-endpoints    a CloudFormation template: ecr.api, ecr.dkr and the S3 gateway endpoint
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field

from pullthrough.config import Config
from pullthrough.consumers import iam, kyverno, network, runtimes
from pullthrough.consumers.images import (
    COMPOSE_VARIABLE,
    DOCKER_NOTE,
    CachedImage,
    RegistryBase,
    cached_images,
    env_text,
    registry_bases,
)
from pullthrough.consumers.runtimes import GeneratedFile
from pullthrough.consumers.target import Target, TargetError

__all__ = [
    "COMPOSE_VARIABLE",
    "DOCKER_NOTE",
    "FORMATS",
    "Artefact",
    "CachedImage",
    "GeneratedFile",
    "RegistryBase",
    "Target",
    "TargetError",
    "artefacts",
    "cached_images",
    "registry_bases",
]

FORMATS = ("env", "registries.conf", "containerd", "kyverno", "iam-policy", "vpc-endpoints")


@dataclass(frozen=True)
class Artefact:
    """One format's files, and what a user must know to use them (limits, prerequisites)."""

    # pull-config --json always has `notes` (docs/cli/pull-config.schema.json), empty or not
    __pydantic_config__ = ConfigDict(json_schema_serialization_defaults_required=True)

    format: Annotated[str, Field(description="env, registries.conf, containerd, kyverno, iam-policy or vpc-endpoints")]
    files: tuple[GeneratedFile, ...]
    notes: tuple[str, ...] = ()


def _env(config: Config, target: Target) -> Artefact:
    return Artefact("env", (GeneratedFile(".env", env_text(config, target)),), (DOCKER_NOTE,))


def _registries(config: Config, target: Target) -> Artefact:
    return Artefact("registries.conf", (runtimes.registries_conf(config, target),))


def _containerd(config: Config, target: Target) -> Artefact:
    files, notes = runtimes.containerd_hosts(config, target)
    return Artefact("containerd", tuple(files), tuple(notes))


def _kyverno(config: Config, target: Target) -> Artefact:
    return Artefact("kyverno", (kyverno.policy_file(config, target),))


def _iam(config: Config, target: Target) -> Artefact:
    return Artefact("iam-policy", (iam.policy_file(config, target),), iam.NOTES)


def _vpc(config: Config, target: Target) -> Artefact:
    return Artefact("vpc-endpoints", (network.template_file(target),), network.NOTES)


_BUILDERS: dict[str, Callable[[Config, Target], Artefact]] = {
    "env": _env,
    "registries.conf": _registries,
    "containerd": _containerd,
    "kyverno": _kyverno,
    "iam-policy": _iam,
    "vpc-endpoints": _vpc,
}


def artefacts(config: Config, target: Target, formats: Sequence[str] = FORMATS) -> list[Artefact]:
    """The artefacts of `formats` (each one of FORMATS), in the order given."""
    unknown = [f for f in formats if f not in _BUILDERS]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; valid: {', '.join(FORMATS)}")
    return [_BUILDERS[f](config, target) for f in formats]
