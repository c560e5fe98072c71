"""What planning asks of the world outside it, as Protocols: an upstream registry (HEADs and tag lists), ECR's
control plane, what earlier runs verified, and the pull allowances open runs share; and AwsEcr, the ECR one over
pullthrough.aws.ecr.

Separate so that selection, decisions and the planner depend on these narrow shapes, not on the adapters: tests
give fakes, the planner gives the ledger and the AWS adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pullthrough.aws import ecr
from pullthrough.aws.ecr import EcrImage, StoredManifest
from pullthrough.aws.ledger import Verified
from pullthrough.config import Rule
from pullthrough.registry.client import ManifestHead
from pullthrough.warm.budget import Shared


class Upstream(Protocol):
    """What planning asks an upstream registry (RegistryClient): HEADs and tag lists, never a manifest GET."""

    def head_manifest(self, repository: str, reference: str) -> ManifestHead: ...

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]: ...

    def close(self) -> None: ...


class EcrView(Protocol):
    """What planning asks ECR's control plane (pullthrough.aws.ecr)."""

    def describe_image(self, repository: str, tag: str) -> EcrImage | None: ...

    def get_manifests(self, repository: str, references: Sequence[str]) -> dict[str, StoredManifest]: ...

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]: ...


class Memory(Protocol):
    """What earlier runs verified complete in ECR (the ledger's VERIFIED# items)."""

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]: ...


class Allowances(Protocol):
    """The pull allowances open runs share (the ledger's BUDGET# items, budget.py)."""

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]: ...

    def draw(self, allowance: Shared) -> bool: ...


@runtime_checkable
class EcrTags(Protocol):
    """An EcrView that also tells, in one go, which of several tags of a repository ECR holds."""

    def describe_images(self, repository: str, tags: Sequence[str]) -> dict[str, EcrImage]: ...


@runtime_checkable
class SharedTokens(Protocol):
    """An Upstream that can ask its token realm once for several repositories' pull tokens (RegistryClient)."""

    def authorize_pulls(self, repositories: Sequence[str]) -> int: ...


@dataclass(frozen=True)
class AwsEcr:
    """EcrView (and EcrTags) over the ECR API in one region."""

    region: str | None = None

    def describe_image(self, repository: str, tag: str) -> EcrImage | None:
        return ecr.describe_image(repository, tag, self.region)

    def describe_images(self, repository: str, tags: Sequence[str]) -> dict[str, EcrImage]:
        return ecr.describe_tags(repository, tags, self.region)

    def get_manifests(self, repository: str, references: Sequence[str]) -> dict[str, StoredManifest]:
        return ecr.get_manifests(repository, references, self.region)

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]:
        return ecr.layer_states(repository, digests, self.region)


UpstreamFor = Callable[[Rule], Upstream | None]
