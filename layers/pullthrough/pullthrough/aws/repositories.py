"""ECR repositories by prefix: the cache repositories a pull-through cache rule's prefix holds, and their removal.

A pull through a rule creates `<prefix>/<upstream path>` (AWS's pull-through cache guide); deleting the rule leaves
those repositories and their images (botocore's DeletePullThroughCacheRule says nothing of them, and ECR keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient


@dataclass(frozen=True)
class Repository:
    """One ECR repository: its name and when ECR created it."""

    name: str
    created: datetime | None = None


def _ecr(region: str | None) -> ECRClient:
    return clients.client("ecr", region)


def under(prefixes: Iterable[str], region: str | None = None) -> list[Repository]:
    """Every repository named `<prefix>/...` for one of `prefixes`, sorted by name (DescribeRepositories, paged)."""
    wanted = tuple(f"{prefix.rstrip('/')}/" for prefix in prefixes)
    if not wanted:
        return []
    found: list[Repository] = []
    with aws_call("ecr:DescribeRepositories", "the registry's repositories"):
        for page in _ecr(region).get_paginator("describe_repositories").paginate():
            for repository in page.get("repositories", []):
                name = repository.get("repositoryName", "")
                if name.startswith(wanted):
                    found.append(Repository(name, repository.get("createdAt")))
    return sorted(found, key=lambda repository: repository.name)


def delete(name: str, region: str | None = None) -> None:
    """DeleteRepository with its images (`force`: ECR refuses a repository that holds images otherwise)."""
    with aws_call("ecr:DeleteRepository", f"repository {name}"):
        _ecr(region).delete_repository(repositoryName=name, force=True)
