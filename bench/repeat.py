"""2. Repeat run: the same warm list again, right after the first run warmed it.

Everything is cached, so the run should cost no upstream manifest GET (what Docker Hub counts as a pull) and take a
fraction of the first run's time. Counted per image: the library's AWS calls (boto3, through a botocore hook) and
the requests the sandbox's registries saw (the ECR registry endpoint and the upstream).
"""

from __future__ import annotations

from bench import warm
from bench.harness import Rig, progress
from bench.table import Figure, ratio, seconds

GOAL_RATIO = 20.0


def run(rig: Rig, count: int) -> list[Figure]:
    """The first run (shared with the warm benchmark), then the same list again; the figures."""
    first = warm.first_run(rig, count)
    progress(f"running the same {count} images again")
    again = warm.warm_run(rig, warm.images_for(rig, count))
    rig.cache[f"repeat-{count}"] = again
    outcomes = {o.value: n for o, n in again.report.counts.items()}
    if outcomes != {"already_cached": count} or again.summary["queued"] != 0:
        raise RuntimeError(f"the repeat run was expected to find everything cached: {outcomes}")
    speedup = first.seconds / again.seconds
    section = f"2 repeat run ({count} images)"
    aws_first, aws_again = sum(first.aws.values()), sum(again.aws.values())
    return [
        Figure(section, "first run / repeat run", f"{seconds(first.seconds)} / {seconds(again.seconds)}"),
        Figure(section, "speed-up of the repeat run", ratio(speedup), f">= {GOAL_RATIO:.0f}x", speedup >= GOAL_RATIO),
        Figure(
            section,
            "upstream manifest GETs in the repeat run",
            str(again.registry.manifest_gets),
            "0",
            again.registry.manifest_gets == 0,
        ),
        Figure(
            section,
            "AWS calls per image: first / repeat",
            f"{aws_first / count:.2f} / {aws_again / count:.2f} ({_top(again.aws, count)})",
        ),
        Figure(
            section,
            "registry requests per image: first / repeat",
            f"{first.registry.total() / count:.2f} / {again.registry.total() / count:.2f}"
            f" (repeat: {_registry_detail(again.registry, count)})",
        ),
    ]


def _top(calls: dict[tuple[str, str], int], count: int) -> str:
    ordered = sorted(calls.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{operation} {n / count:.2f}" for (_, operation), n in ordered[:4])


def _registry_detail(calls: warm.RegistryCalls, count: int) -> str:
    parts = [f"ECR endpoint {sum(calls.ecr.values()) / count:.2f}"]
    for (method, kind), n in sorted(calls.upstream.items(), key=lambda kv: -kv[1]):
        parts.append(f"upstream {method} {kind} {n / count:.2f}")
    return ", ".join(parts)
