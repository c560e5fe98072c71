"""1. Warm throughput: N images warmed through SQS and warm_images, against a sequential `skopeo copy` of each.

Pullthrough's side: plan_warming fires as its schedule does, queues one job per image, and the warm queue is drained
the way template.yaml wires it (BatchSize messages per invocation, WarmMaxConcurrency invocations at once; see
`Rig.drain`). When template.yaml gives plan_warming a queue of plan shards, it is drained the same way before the
warm queue. The clock runs from the schedule firing to the last warm job.

Today's side: what the seeds tell users to do, `docker pull` every image one after another. skopeo is the closest
thing here: `skopeo copy --multi-arch all docker://<ECR endpoint>/<prefix>/<repo>:<tag> dir:<tmp>` per image, through
a second pull-through cache rule on the same upstream, so each side starts on an empty cache. `--multi-arch all`
makes skopeo fetch every wanted platform, as warming does (one `docker pull` fetches only the machine's own).

Both sides run with the network model (bench/network.py) and without, each on its own fresh images (a namespace per
model), so every run starts on an empty cache. The goals hold the model's figures: loopback has no round trips, and
there both sides are bound by the same two cores' CPU (bench/README.md, "retired").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import catalogue
from bench.harness import PULL_PREFIX, Cpu, DrainResult, RegistryCalls, Rig, progress
from bench.network import Model
from bench.table import Columns, Figure, columns, ratio, seconds

GOAL_RATIO = 8.0
GOAL_CPU_MS = 20.0  # Pullthrough's own CPU per image warmed


@dataclass
class WarmRun:
    """One run of the warm list through plan_warming and warm_images."""

    seconds: float
    plan_seconds: float
    drain_seconds: float
    summary: dict[str, Any]
    report: Any  # pullthrough.reporting.Report
    drain: DrainResult
    shards: DrainResult | None  # the plan shards' queue, when template.yaml has one
    aws: Any  # Counter of (service, operation)
    registry: RegistryCalls
    cpu: Cpu


@dataclass
class PullRun:
    """The sequential skopeo pulls."""

    seconds: float
    images: int
    bytes_written: int
    registry: RegistryCalls
    cpu: Cpu


def images_for(rig: Rig, count: int, label: str = "") -> list[catalogue.BenchImage]:
    """The bench's warm list, pushed upstream once per rig, count and label (a model's own fresh images)."""
    key = f"images-{count}{label}"
    if key not in rig.cache:
        progress(f"pushing {count} images upstream (a fifth multi-arch)")
        rig.cache[key] = catalogue.push(rig.sb, count, namespace=f"bench{count}{label}")
    images: list[catalogue.BenchImage] = rig.cache[key]
    return images


def warm_run(rig: Rig, images: list[catalogue.BenchImage]) -> WarmRun:
    """Plan (schedule), drain the queue, and read the run's one report."""
    rig.configure([image.reference for image in images])
    aws_before, registry_before, cpu_before = rig.aws.snapshot(), rig.registry_calls(), rig.cpu()
    started = time.perf_counter()
    summary = dict(rig.fire_schedule("PlanWarmingFunction"))
    shards = rig.drain("PlanWarmingFunction") if rig.has_event_source("PlanWarmingFunction") else None
    planned = time.perf_counter()
    drain = rig.drain("WarmImagesFunction")
    finished = time.perf_counter()
    aws = rig.aws.since(aws_before)
    registry = rig.registry_since(registry_before)
    cpu = rig.cpu() - cpu_before
    reports = [r for r in rig.reports() if r.run_id == summary["run_id"]]
    if len(reports) != 1:
        raise RuntimeError(f"run {summary['run_id']}: expected one report, got {len(reports)}")
    return WarmRun(
        finished - started,
        planned - started,
        finished - planned,
        summary,
        reports[0],
        drain,
        shards,
        aws,
        registry,
        cpu,
    )


def first_run(rig: Rig, count: int, model: Model | None = None) -> WarmRun:
    """The first warm run of the list on an empty cache, under `model` (the rig's current one when None; shared by
    the repeat and bytes benchmarks)."""
    model = model or rig.model
    key = f"first-run-{count}{model.label()}"
    if key not in rig.cache:
        rig.set_model(model)
        images = images_for(rig, count, model.label())
        progress(f"warming {count} images through plan_warming -> SQS -> warm_images ({model.describe()})")
        run = warm_run(rig, images)
        outcomes = {o.value: n for o, n in run.report.counts.items()}
        if outcomes != {"warmed": count}:
            raise RuntimeError(f"the first warm run did not warm every image: {outcomes}")
        rig.cache[key] = run
    found: WarmRun = rig.cache[key]
    return found


def pull_sequentially(rig: Rig, images: list[catalogue.BenchImage]) -> PullRun:
    """`skopeo copy` every image, one after another, through the pull rule's own (empty) cache."""
    host = rig.sb.ecr_url.split("://", 1)[1]
    registry_before, cpu_before = rig.registry_calls(), rig.cpu()
    written = 0
    with tempfile.TemporaryDirectory(prefix="bench-skopeo-", dir=rig.workdir) as target:
        started = time.perf_counter()
        for index, image in enumerate(images):
            destination = f"{target}/{index}"
            subprocess.run(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--src-creds",
                    f"AWS:{rig.sb.ecr_password}",
                    "--multi-arch",
                    "all",
                    f"docker://{host}/{PULL_PREFIX}/{image.repository}:{image.tag}",
                    f"dir:{destination}",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            written += sum(p.stat().st_size for p in _files(destination))
            shutil.rmtree(destination)
        elapsed = time.perf_counter() - started
    return PullRun(elapsed, len(images), written, rig.registry_since(registry_before), rig.cpu() - cpu_before)


def _files(directory: str) -> list[Any]:
    from pathlib import Path

    return [p for p in Path(directory).rglob("*") if p.is_file()]


@dataclass(frozen=True)
class Side:
    """One model's warm run and skopeo pulls of the same (fresh) images."""

    model: Model
    images: list[catalogue.BenchImage]
    warm: WarmRun
    pulled: PullRun


def side(rig: Rig, count: int, model: Model) -> Side:
    """Warm the model's fresh list, then skopeo the same images through the pull rule's own cache."""
    warm = first_run(rig, count, model)
    images = images_for(rig, count, model.label())
    rig.set_model(model)
    progress(f"pulling the same {count} images one after another with skopeo copy ({model.describe()})")
    pulled = pull_sequentially(rig, images)
    rig.cache[f"pulled-{count}{model.label()}"] = pulled
    return Side(model, images, warm, pulled)


def run(rig: Rig, count: int, models: list[Model]) -> list[Figure]:
    """Each model's side on fresh caches; the figures, the first model's in the value column (goals held to it)."""
    sides = [side(rig, count, model) for model in models]
    multi = sum(image.multi_arch for image in sides[0].images)
    section = f"1 warm ({count} images, {multi} multi-arch)"
    return [
        *_time_figures(section, sides),
        *_cpu_figures(section, sides, count),
        *_count_figures(section, sides, count),
    ]


def _columns(sides: list[Side], show: Callable[[Side], str]) -> Columns:
    """value (first side) and loopback (second side, if any) of one figure."""
    return columns(sides, show)


def _time_figures(section: str, sides: list[Side]) -> list[Figure]:
    first = sides[0]
    speedup = first.pulled.seconds / first.warm.seconds
    count = len(first.images)
    source = first.warm.drain.source
    return [
        Figure(
            section,
            f"Pullthrough: plan, SQS (batch {source.batch_size}, {first.warm.drain.workers} warm_images at once)",
            **_columns(sides, lambda s: f"{seconds(s.warm.seconds)} ({count / s.warm.seconds:.1f} images/s)"),
        ),
        Figure(section, "  of which plan_warming (and its shards)", **_columns(sides, _plan_line)),
        Figure(
            section,
            "today: skopeo copy --multi-arch all, one after another",
            **_columns(sides, lambda s: f"{seconds(s.pulled.seconds)} ({count / s.pulled.seconds:.1f} images/s)"),
        ),
        Figure(
            section,
            "speed-up (skopeo time / Pullthrough time)",
            goal=f">= {GOAL_RATIO:.0f}x",
            met=speedup >= GOAL_RATIO,
            **_columns(sides, lambda s: ratio(s.pulled.seconds / s.warm.seconds)),
        ),
    ]


def _plan_line(s: Side) -> str:
    shards = s.warm.shards
    extra = f", {shards.batches} shard invocation(s)" if shards is not None else ", one invocation (no shard queue)"
    return f"{seconds(s.warm.plan_seconds)}{extra}"


def _cpu_figures(section: str, sides: list[Side], count: int) -> list[Figure]:
    first = sides[0]
    own_ms = first.warm.cpu.own / count * 1000
    return [
        Figure(
            section,
            "Pullthrough's own CPU per image (process less moto, sandbox, event source)",
            goal=f"<= {GOAL_CPU_MS:.0f} ms",
            met=own_ms <= GOAL_CPU_MS,
            **_columns(sides, lambda s: f"{s.warm.cpu.own / count * 1000:.1f} ms"),
        ),
        Figure(
            section,
            "  stand-ins per image: moto / sandbox Python (ECR import, fronts, IAM checks) / registries",
            **_columns(sides, lambda s: _stand_ins(s.warm.cpu, count)),
        ),
        Figure(
            section,
            "  skopeo side per image: skopeo / sandbox Python / registries",
            **_columns(sides, lambda s: _skopeo_cpu(s.pulled.cpu, count)),
        ),
    ]


def _stand_ins(cpu: Cpu, count: int) -> str:
    return f"{cpu.moto / count * 1000:.0f} / {cpu.sandbox / count * 1000:.0f} / {cpu.registries / count * 1000:.0f} ms"


def _skopeo_cpu(cpu: Cpu, count: int) -> str:
    return (
        f"{cpu.children / count * 1000:.0f} / {cpu.sandbox / count * 1000:.0f} / {cpu.registries / count * 1000:.0f} ms"
    )


def _count_figures(section: str, sides: list[Side], count: int) -> list[Figure]:
    repositories = len({image.repository for image in sides[0].images})
    return [
        Figure(
            section, "AWS calls per image (top operations)", **_columns(sides, lambda s: per_image(s.warm.aws, count))
        ),
        Figure(
            section,
            "Pullthrough's upstream requests per image, by kind",
            **_columns(sides, lambda s: by_kind(s.warm.registry.library(), count)),
        ),
        Figure(
            section,
            "tokens per repository (Pullthrough's token requests)",
            **_columns(sides, lambda s: f"{s.warm.registry.library()['token'] / repositories:.2f}"),
        ),
        Figure(
            section,
            "upstream manifest GETs (pulls): Pullthrough's import / skopeo's",
            **_columns(sides, lambda s: f"{s.warm.registry.manifest_gets} / {s.pulled.registry.manifest_gets}"),
        ),
    ]


def per_image(calls: Any, count: int, top: int = 5) -> str:
    """AWS calls per image in all, and the largest operations."""
    total = sum(calls.values())
    ordered = sorted(calls.items(), key=lambda kv: -kv[1])[:top]
    detail = ", ".join(f"{operation} {n / count:.2f}" for (_, operation), n in ordered)
    return f"{total / count:.2f} ({detail})"


def by_kind(kinds: Any, count: int) -> str:
    """Requests per image in all, and by kind."""
    total = sum(kinds.values())
    detail = ", ".join(f"{kind} {n / count:.2f}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    return f"{total / count:.2f} ({detail or 'none'})"
