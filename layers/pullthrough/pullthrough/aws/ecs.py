"""ECS task definitions: the images the account's ACTIVE task definitions name, for the `ecs` warm source.

Two calls, both read-only and without resource-level permissions (IAM service reference: Resource "*"):
ListTaskDefinitions (status ACTIVE, sort DESC, 100 ARNs a page with nextToken) and DescribeTaskDefinition (one
revision a call: ECS has no batch form). ListTaskDefinitions' familyPrefix is "the full family name" (botocore's
model), not a prefix, so a prefix is matched here on the family in each ARN; ListTaskDefinitionFamilies does take a
real prefix, but it would be a third action to grant and a call per family on top of the same listing.

Which revisions: the latest ACTIVE revision of a family is what a new service or `RunTask family` starts, but a
service keeps the revision it was deployed with until it is updated, and scales out on it, pulling its image again
("Deregistering an Amazon ECS task definition revision": even INACTIVE revisions keep running and scaling). So
every ACTIVE revision is read, the most demanding reading, newest first and round-robin across families (each
family's latest, then each family's second latest, ...), up to DESCRIBE_LIMIT describes a run: ECS throttles all its
API calls with one token bucket per account and Region ("Request throttling for the Amazon ECS API"), which the
account's deployments draw from too, and CI pipelines that register a revision per deploy leave hundreds ACTIVE.
What the limit leaves out is named in `TaskDefinitions.unread`, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call

__all__ = ["DESCRIBE_LIMIT", "LIST_PAGE", "Container", "TaskDefinition", "TaskDefinitions", "task_definitions"]

# ListTaskDefinitions returns at most 100 ARNs a page (botocore: maxResults "between 1 and 100").
LIST_PAGE = 100
# DescribeTaskDefinition calls a run makes at most, one at a time (no burst into the account's shared bucket; the
# clients' standard retry mode waits out a ThrottlingException): well under a minute of plan_warming's 300 seconds.
DESCRIBE_LIMIT = 500


@dataclass(frozen=True)
class Container:
    """One container definition: its name and the image it runs (as written: a tag, a digest, or an ECR URI)."""

    name: str
    image: str


@dataclass(frozen=True)
class TaskDefinition:
    """One revision of a task definition family and its containers."""

    family: str
    revision: int
    containers: tuple[Container, ...]

    @property
    def name(self) -> str:
        """family:revision, as ECS names a revision."""
        return f"{self.family}:{self.revision}"


@dataclass(frozen=True)
class TaskDefinitions:
    """The ACTIVE revisions read, newest first, and the ones the describe limit left unread (family:revision)."""

    read: tuple[TaskDefinition, ...]
    unread: tuple[str, ...] = ()


def _client(region: str | None) -> Any:
    return clients.client("ecs", region)


def active_revisions(family_prefix: str | None = None, region: str | None = None) -> dict[str, list[int]]:
    """Family -> its ACTIVE revisions, newest first, for the families starting with `family_prefix`."""
    found: dict[str, list[int]] = {}
    for arn in _active_arns(region):
        family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
        if family and revision.isdigit() and family.startswith(family_prefix or ""):
            found.setdefault(family, []).append(int(revision))
    return {family: sorted(revisions, reverse=True) for family, revisions in found.items()}


def _active_arns(region: str | None) -> Iterator[str]:
    token: str | None = None
    while True:
        # Keep status constant across pages, as the model asks; DESC lists each family's newest revision first.
        request: dict[str, Any] = {"status": "ACTIVE", "sort": "DESC", "maxResults": LIST_PAGE}
        if token:
            request["nextToken"] = token
        with aws_call("ecs:ListTaskDefinitions", "task definitions"):
            response = _client(region).list_task_definitions(**request)
        yield from (str(arn) for arn in response.get("taskDefinitionArns") or [])
        token = response.get("nextToken")
        if not token:
            return


def describe(name: str, region: str | None = None) -> TaskDefinition:
    """DescribeTaskDefinition of `family:revision`: its containers' names and images."""
    with aws_call("ecs:DescribeTaskDefinition", name):
        response = _client(region).describe_task_definition(taskDefinition=name)
    definition = response.get("taskDefinition") or {}
    family, _, revision = name.rpartition(":")
    containers = tuple(
        Container(str(c.get("name") or ""), str(c["image"]))
        for c in definition.get("containerDefinitions") or []
        if c.get("image")
    )
    return TaskDefinition(
        family=str(definition.get("family") or family),
        revision=int(definition.get("revision") or revision),
        containers=containers,
    )


def task_definitions(
    family_prefix: str | None = None, region: str | None = None, *, limit: int = DESCRIBE_LIMIT
) -> TaskDefinitions:
    """The ACTIVE revisions of the families starting with `family_prefix`, round-robin newest first, `limit` at most."""
    order = list(_round_robin(active_revisions(family_prefix, region)))
    return TaskDefinitions(
        read=tuple(describe(name, region) for name in order[:limit]),
        unread=tuple(order[limit:]),
    )


def _round_robin(revisions: dict[str, list[int]]) -> Iterator[str]:
    """Every family's latest revision first (families in name order), then every family's second latest, ..."""
    depth = max((len(found) for found in revisions.values()), default=0)
    for rank in range(depth):
        for family in sorted(revisions):
            if rank < len(revisions[family]):
                yield f"{family}:{revisions[family][rank]}"
