"""1. Warm throughput: N images warmed through SQS and warm_images, against a sequential `skopeo copy` of each.

Pullthrough's side: plan_warming fires as its schedule does, queues one job per image, and the warm queue is drained
the way template.yaml wires it (BatchSize messages per invocation, WarmMaxConcurrency invocations at once; see
`Rig.drain`). The clock runs from the schedule firing to the run's report being published.

Today's side: what the seeds tell users to do, `docker pull` every image one after another. skopeo is the closest
thing here: `skopeo copy --multi-arch all docker://<ECR endpoint>/<prefix>/<repo>:<tag> dir:<tmp>` per image, through
a second pull-through cache rule on the same upstream, so each side starts on an empty cache. `--multi-arch all`
makes skopeo fetch every wanted platform, as warming does (one `docker pull` fetches only the machine's own).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench import catalogue
from bench.harness import PULL_PREFIX, Cpu, DrainResult, RegistryCalls, Rig, progress
from bench.table import Figure, ratio, seconds

GOAL_RATIO = 3.0


@dataclass
class WarmRun:
    """One run of the warm list through plan_warming and warm_images."""

    seconds: float
    plan_seconds: float
    drain_seconds: float
    summary: dict[str, Any]
    report: Any  # pullthrough.reporting.Report
    drain: DrainResult
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


def images_for(rig: Rig, count: int) -> list[catalogue.BenchImage]:
    """The bench's warm list, pushed upstream once per rig and count."""
    key = f"images-{count}"
    if key not in rig.cache:
        progress(f"pushing {count} images upstream (a fifth multi-arch)")
        rig.cache[key] = catalogue.push(rig.sb, count, namespace=f"bench{count}")
    images: list[catalogue.BenchImage] = rig.cache[key]
    return images


def warm_run(rig: Rig, images: list[catalogue.BenchImage]) -> WarmRun:
    """Plan (schedule), drain the queue, and read the run's one report."""
    rig.configure([image.reference for image in images])
    aws_before, registry_before, cpu_before = rig.aws.snapshot(), rig.registry_calls(), rig.cpu()
    started = time.perf_counter()
    summary = dict(rig.fire_schedule("PlanWarmingFunction"))
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
        finished - started, planned - started, finished - planned, summary, reports[0], drain, aws, registry, cpu
    )


def first_run(rig: Rig, count: int) -> WarmRun:
    """The first warm run of the list on an empty cache (shared by the repeat and bytes benchmarks)."""
    key = f"first-run-{count}"
    if key not in rig.cache:
        images = images_for(rig, count)
        progress(f"warming {count} images through plan_warming -> SQS -> warm_images")
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


def run(rig: Rig, count: int) -> list[Figure]:
    """Both sides on fresh caches; the figures."""
    images = images_for(rig, count)
    warm = first_run(rig, count)
    progress(f"pulling the same {count} images one after another with skopeo copy")
    pulled = pull_sequentially(rig, images)
    rig.cache[f"pulled-{count}"] = pulled
    multi = sum(image.multi_arch for image in images)
    speedup = pulled.seconds / warm.seconds
    section = f"1 warm throughput ({count} images, {multi} multi-arch)"
    source = warm.drain.source
    return [
        Figure(
            section,
            f"Pullthrough: SQS path, batch {source.batch_size}, {warm.drain.workers} concurrent warm_images",
            f"{seconds(warm.seconds)} ({count / warm.seconds:.1f} images/s)",
        ),
        Figure(section, "  of which plan_warming", seconds(warm.plan_seconds)),
        Figure(
            section,
            "today: skopeo copy --multi-arch all, one after another",
            f"{seconds(pulled.seconds)} ({count / pulled.seconds:.1f} images/s)",
        ),
        Figure(
            section,
            "speed-up (skopeo time / Pullthrough time)",
            ratio(speedup),
            f">= {GOAL_RATIO:.0f}x",
            speedup >= GOAL_RATIO,
        ),
        Figure(
            section,
            "upstream manifest GETs: Pullthrough / skopeo",
            f"{warm.registry.manifest_gets} / {pulled.registry.manifest_gets}",
        ),
        Figure(
            section,
            "CPU per image: Pullthrough / skopeo (all processes)",
            f"{_cpu_line(warm.cpu, count)} / {_cpu_line(pulled.cpu, count)}",
        ),
    ]


def _cpu_line(cpu: Cpu, count: int) -> str:
    """Milliseconds of CPU per image: in total, and (this process + skopeo, registries)."""
    return (
        f"{cpu.total / count * 1000:.0f} ms ({(cpu.process + cpu.children) / count * 1000:.0f} Python/skopeo"
        f" + {cpu.registries / count * 1000:.0f} registries)"
    )
