"""5. Scale: plan_warming over 1,000 and 10,000 images, half of them cached in ECR already.

The images are tags of repositories (ten tags each) that exist upstream; every other tag is also in the ECR cache.
Upstream, they are written straight into the registry's storage in distribution's own layout (`bench.layout`),
because pushing 10,000 images through the registry API would take minutes; in ECR, the subprocess's registry model
holds them as finished imports leave them (`EcrRegistry.hold`). What the planner then sees over HTTP (HEADs
upstream) and through moto (DescribeImages, BatchGetImage, BatchCheckLayerAvailability) is exactly what a push and a
pull through the cache would have produced.

Each plan runs in a fresh subprocess with its own moto (template.yaml deployed, the cache rule created): the
plan_warming handler fires as its schedule does, once over one image (the cold start, not measured) and then over
the N images. Time is that second invocation, end to end (config, expansion, decisions, ledger, queue); the small
size is planned SMALL_RUNS times and its median run is reported, the large one once. Peak memory
is the subprocess's peak resident set during the invocation (VmHWM, reset just before) minus its resident set
before it; moto keeps the
ledger items and queued jobs in the same process, so this includes what the stand-ins store.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import layout
from bench.harness import FAKE_AWS, ROOT, Rig, progress
from bench.table import Figure, ratio, seconds, size
from sandbox import DEFAULT_ACCOUNT

PREFIX = "bench-scale"
TAGS_PER_REPOSITORY = 10
GOAL_SECONDS = 10.0
GOAL_GROWTH = 12.0
# The small plan takes a few seconds, so machine noise weighs on it most: its median over this many runs is used.
SMALL_RUNS = 3


@dataclass(frozen=True)
class Planned:
    """One size's plan_warming run, as the subprocess reports it."""

    images: int
    seconds: float
    peak_bytes: int
    planned: int
    queued: int
    decided: dict[str, int]
    aws_calls: dict[str, int]
    upstream_heads: int


def seed(rig: Rig, images: int) -> str:
    """Write `images` tags upstream, every other one also into the cache rule's storage; returns the namespace."""
    namespace = f"scale{images}"
    key = f"scale-seeded-{images}"
    if key in rig.cache:
        return namespace
    upstream = layout.Storage(rig.sb.workdir / "upstream" / "storage")
    shared = layout.shared_blobs(namespace)
    for blob in shared.values():
        upstream.put_blob(blob)
    for repository, tag, manifest in manifests(namespace, images):
        upstream.put_image(repository, tag, manifest, shared)
    rig.cache[key] = True
    return namespace


def manifests(namespace: str, images: int) -> list[tuple[str, str, bytes]]:
    """(repository, tag, manifest) of every image, as seed() writes them upstream (the same bytes every time)."""
    shared = layout.shared_blobs(namespace)
    found = []
    for index in range(images):
        repository, tag = names(namespace, index)
        found.append((repository, tag, layout.image_manifest(shared, annotation=f"{repository}:{tag}")))
    return found


def hold_cached_half(namespace: str, images: int, account: str, region: str) -> None:
    """In this process's moto, an ECR registry model holding every other image (as imported through the rule)."""
    import tempfile

    from sandbox.aws import moto_ecr
    from sandbox.registries.ecr_endpoint import MotoCacheRules
    from sandbox.registries.ecr_registry import EcrRegistry

    rules = MotoCacheRules(account, region)
    registry = EcrRegistry(Path(tempfile.mkdtemp(prefix="scale-ecr-")), account=account, region=region, rules=rules)
    moto_ecr.set_registry(account, region, registry)
    for index, (repository, tag, manifest) in enumerate(manifests(namespace, images)):
        route = rules.route(f"{PREFIX}/{repository}")
        if index % 2 == 0 and route is not None:
            registry.hold(route, tag, manifest, layout.OCI_MANIFEST)


def names(namespace: str, index: int) -> tuple[str, str]:
    """The repository and tag of image `index`."""
    return f"{namespace}/app-{index // TAGS_PER_REPOSITORY:05d}", f"1.{index % TAGS_PER_REPOSITORY}.0"


def config_document(namespace: str, images: int) -> dict[str, Any]:
    """A config warming the N images through the scale rule (one entry per repository, its ten tags)."""
    entries = []
    for start in range(0, images, TAGS_PER_REPOSITORY):
        repository, _ = names(namespace, start)
        tags = [names(namespace, i)[1] for i in range(start, min(start + TAGS_PER_REPOSITORY, images))]
        entries.append({"image": repository, "tags": tags})
    return {
        "version": 1,
        "stack": "bench-scale",
        "rules": [{"prefix": PREFIX, "upstream": "docker-hub", "credentials": f"ecr-pullthroughcache/{PREFIX}"}],
        "warm": {"platforms": ["linux/amd64"], "budget_share": 1.0, "images": entries},
        "notifications": {"success": "summary"},
    }


def plan_in_subprocess(rig: Rig, images: int) -> Planned:
    """Seed, then run the child for one size; its JSON result."""
    namespace = seed(rig, images)
    import yaml

    config = rig.workdir / f"scale-{images}.yaml"
    config.write_text(yaml.safe_dump(config_document(namespace, images)), encoding="utf-8")
    warmup = rig.workdir / "scale-warmup.yaml"
    warmup.write_text(yaml.safe_dump(config_document(namespace, 1)), encoding="utf-8")
    user = rig.users["bench-warm"]
    spec = {
        "config": str(config),
        "warmup": str(warmup),
        "namespace": namespace,
        "endpoints": rig.sb.upstream_endpoints(),
        "ecr_url": rig.sb.ecr_url,
        "user": user,
        "images": images,
    }
    heads_before = rig.sb.upstream.counters[("HEAD", "manifest")]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, **FAKE_AWS, "BENCH_SCALE_TOKEN": rig.sb.users[user], "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-m", "bench.scale", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"planning {images} images failed:\n{result.stderr[-4000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    cached = data["decided"].get("already_cached", 0)
    if (cached, data["queued"]) != ((images + 1) // 2, images // 2):
        raise RuntimeError(f"planning {images} images: expected half cached and half queued, got {data}")
    heads = rig.sb.upstream.counters[("HEAD", "manifest")] - heads_before
    return Planned(upstream_heads=heads, **data)


def run(rig: Rig, sizes: tuple[int, int]) -> list[Figure]:
    """Both sizes; the figures."""
    small, large = sizes
    progress(f"planning {small} images (half cached), {SMALL_RUNS} times, each in a fresh subprocess")
    runs = sorted((plan_in_subprocess(rig, small) for _ in range(SMALL_RUNS)), key=lambda r: r.seconds)
    first = runs[len(runs) // 2]
    progress(f"planning {large} images (half cached) in a fresh subprocess")
    second = plan_in_subprocess(rig, large)
    results = [first, second]
    growth = second.seconds / first.seconds
    memory_growth = second.peak_bytes / max(first.peak_bytes, 1)
    section = "5 scale (plan_warming, half cached)"
    figures = []
    for result in results:
        calls = sum(result.aws_calls.values())
        figures.append(
            Figure(
                section,
                f"{result.images:,} images: time, peak memory",
                f"{seconds(result.seconds)}, {size(result.peak_bytes)}",
                f"< {GOAL_SECONDS:.0f} s" if result.images == large else "",
                result.seconds < GOAL_SECONDS if result.images == large else None,
            )
        )
        figures.append(
            Figure(
                section,
                f"{result.images:,} images: AWS calls, upstream HEADs",
                f"{calls:,} ({calls / result.images:.2f}/image), {result.upstream_heads:,}",
            )
        )
    figures.append(
        Figure(
            section,
            f"growth {large // small}x images: time, memory",
            f"{ratio(growth)}, {ratio(memory_growth)}",
            f"time <= {GOAL_GROWTH:.0f}x",
            growth <= GOAL_GROWTH,
        )
    )
    return figures


# --- the subprocess -------------------------------------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Start VmHWM afresh from the current resident set (Linux: `echo 5 > /proc/self/clear_refs`)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Deploy the stack into a fresh moto, create the scale rule, plan a warm-up run, then the measured one."""
    import boto3
    from moto import mock_aws

    from bench.harness import AwsCalls, correct_moto, quiet_functions
    from pullthrough.aws import clients
    from sandbox.aws import moto_ecr
    from sandbox.stack import Stack

    sink = io.StringIO()
    with mock_aws(), quiet_functions(sink), contextlib.redirect_stdout(sink):
        correct_moto()
        moto_ecr.install()
        moto_ecr.set_upstream_endpoints(spec["endpoints"])
        session = boto3.session.Session()
        arn = session.client("secretsmanager").create_secret(
            Name=f"ecr-pullthroughcache/{PREFIX}",
            SecretString=json.dumps({"username": spec["user"], "accessToken": os.environ["BENCH_SCALE_TOKEN"]}),
        )["ARN"]
        session.client("ecr").create_pull_through_cache_rule(
            ecrRepositoryPrefix=PREFIX,
            upstreamRegistryUrl="registry-1.docker.io",
            upstreamRegistry="docker-hub",
            credentialArn=arn,
        )
        hold_cached_half(spec["namespace"], spec["images"], DEFAULT_ACCOUNT, FAKE_AWS["AWS_REGION"])
        env = {
            "PULLTHROUGH_ECR_REGISTRY_URL": spec["ecr_url"],
            "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(spec["endpoints"]),
            "PULLTHROUGH_CONFIG": spec["warmup"],
        }
        stack = Stack(stack_name="pullthrough-scale", extra_env=env).deploy()  # IAM scoped to the warm-up config's rule
        aws = AwsCalls()
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", aws)
        clients.clear()
        stack.fire_schedule("PlanWarmingFunction")  # the cold start: imports, clients, tokens
        stack.extra_env["PULLTHROUGH_CONFIG"] = spec["config"]
        before = aws.snapshot()
        _reset_peak()
        resident = _rss_kib("VmRSS")
        started = time.perf_counter()
        summary = stack.fire_schedule("PlanWarmingFunction")
        elapsed = time.perf_counter() - started
        peak = _rss_kib("VmHWM")
        calls = aws.since(before)
    return {
        "images": spec["images"],
        "seconds": elapsed,
        "peak_bytes": max(peak - resident, 0) * 1024,
        "planned": summary["planned"],
        "queued": summary["queued"],
        "decided": summary["decided"],
        "aws_calls": {f"{service}:{operation}": n for (service, operation), n in sorted(calls.items())},
    }


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
