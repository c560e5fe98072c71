"""The images the warm benchmarks use: a mix of sizes, a fifth of them multi-arch, pushed into the sandbox upstream.

Sizes follow what a warm list usually holds: small tools and sidecars, mid-sized service images, a few large
runtimes. Sizes are scaled down (megabytes, not hundreds of megabytes) so a run fits in minutes on 2 cores; both
sides of every comparison move exactly the same bytes, so the ratios hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.harness import WANTED

KIB = 1024
MIB = 1024 * KIB

# Layer sizes per profile (the config blob comes on top).
PROFILES: dict[str, tuple[int, ...]] = {
    "small": (48 * KIB, 8 * KIB),
    "medium": (640 * KIB, 256 * KIB, 32 * KIB),
    "large": (2 * MIB, 512 * KIB),
}
ORDER = ("small", "medium", "small", "large", "medium")


@dataclass(frozen=True)
class BenchImage:
    """One image of the warm list, as pushed upstream."""

    repository: str  # path upstream (and under each rule's prefix)
    tag: str
    profile: str
    multi_arch: bool
    pushed: Any  # sandbox.PushedImage

    @property
    def reference(self) -> str:
        """How the config names it (Docker Hub short form)."""
        return f"{self.repository}:{self.tag}"

    @property
    def wanted_size(self) -> int:
        """Bytes of the configs and layers of the wanted platforms: what a full pull moves (manifests aside)."""
        return int(self.pushed.total_size)


def plan(count: int, namespace: str) -> list[tuple[str, str, str, bool, str]]:
    """(repository, tag, profile, multi_arch, media) for `count` images: sizes cycle, every fifth is multi-arch."""
    rows = []
    for index in range(count):
        profile = ORDER[index % len(ORDER)]
        multi = index % 5 == 4
        media = "docker" if index % 3 == 1 else "oci"
        rows.append((f"{namespace}/app-{index:04d}", "1.0", profile, multi, media))
    return rows


def push(sb: Any, count: int, namespace: str) -> list[BenchImage]:
    """Push the mix into the sandbox's upstream; each multi-arch image is an index of exactly the wanted platforms."""
    images = []
    for repository, tag, profile, multi, media in plan(count, namespace):
        platforms: Sequence[str] = WANTED if multi else WANTED[:1]
        pushed = sb.push_image(
            repository, tag, platforms=platforms, layer_sizes=PROFILES[profile], media=media, seed=namespace
        )
        images.append(BenchImage(repository, tag, profile, multi, pushed))
    return images
