"""The ECR calls pruning makes, as a protocol (tests give a fake), and the one that makes them against AWS.

Separate so the decisions and the deletion never import the AWS adapter; only this module reaches
pullthrough.aws (the only package that imports boto3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pullthrough.aws import ecr, repositories
from pullthrough.aws.ecr import Deleted, EcrImage, StoredManifest


class Ecr(Protocol):
    """The ECR calls pruning makes (pullthrough.aws.ecr and pullthrough.aws.repositories in a function)."""

    def repositories(self, prefixes: Sequence[str]) -> list[str]: ...

    def images(self, repository: str) -> list[EcrImage]: ...

    def manifests(self, repository: str, digests: Sequence[str]) -> dict[str, StoredManifest]: ...

    def delete(self, repository: str, digests: Sequence[str]) -> Deleted: ...


class AwsEcr:
    """The Ecr calls against AWS (pullthrough.aws: the only package that imports boto3)."""

    def __init__(self, region: str | None = None) -> None:
        self.region = region

    def repositories(self, prefixes: Sequence[str]) -> list[str]:
        return [found.name for found in repositories.under(prefixes, self.region)]

    def images(self, repository: str) -> list[EcrImage]:
        return ecr.list_images(repository, self.region)

    def manifests(self, repository: str, digests: Sequence[str]) -> dict[str, StoredManifest]:
        return ecr.get_manifests(repository, digests, self.region)

    def delete(self, repository: str, digests: Sequence[str]) -> Deleted:
        return ecr.delete_images(repository, digests, self.region)


__all__ = ["AwsEcr", "Ecr"]
