"""5. Plan at scale: plan_warming over 1,000 and 10,000 images (repositories of ten tags), first run and repeat runs.

The images are tags of repositories (ten tags each) that exist upstream. Upstream, they are written straight into the
registry's storage in distribution's own layout (`bench.layout`), because pushing 10,000 images through the registry
API would take minutes; in ECR, the subprocess's registry model holds them as finished imports leave them
(`EcrRegistry.hold`). What the planner then sees over HTTP (HEADs upstream) and through moto (DescribeImages,
BatchGetImage, BatchCheckLayerAvailability) is what a push and a pull through the cache would have produced.

Each plan runs in a fresh subprocess with its own moto (bench/scale_child.py): template.yaml deployed, the cache
rule created, plan_warming fired as its schedule does, once over one image (the cold start, not measured), then over
the N images. When template.yaml gives plan_warming a queue of plan shards, each shard message is invoked one at a
time and measured on its own.

First run (half the images held in ECR): time "as Lambda runs it" is the coordinator's invocation, then the shards in
waves of at most the PlanWarmingShards mapping's MaximumConcurrency (template.yaml) and of what Lambda's SQS poller
runs at that moment (five batches at first, 300 more a minute), each wave as long as its slowest shard plus one queue
hop (QUEUE_HOP_SECONDS): in Lambda each shard is its own invocation on its own CPU, where this
2-core machine can only run them one after another; the serial sum is shown beside it. Counted per
image: AWS calls (the library's boto3 calls), Pullthrough's upstream requests by kind (the upstream front counts the
library's client by its User-Agent), token requests per 50 repositories; Pullthrough's own CPU (the child's process
CPU less moto's thread CPU); peak memory of the coordinator and of the largest shard (VmHWM), against the function's
MemorySize in template.yaml with the handler's resident set after import added.

Repeat runs on a 6-hourly schedule (every image held in ECR): a first plan, then REPEAT_RUNS plans REPEAT_HOURS apart
with the planner's and ECR's clocks moved forward between them (bench/clock.py), so ECR's daily re-check and the
ledger's memory of earlier looks come due as they would. Counted per run and as a mean: AWS calls, upstream
requests, manifest GETs; and how calls grow from 1,000 to 10,000 images.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import layout
from bench.harness import FAKE_AWS, LAMBDA_INITIAL_SQS_CONCURRENCY, ROOT, RegistryCalls, Rig, progress
from bench.network import Model
from bench.table import Columns, Figure, columns, ratio, seconds, size

PREFIX = "bench-scale"
TAGS_PER_REPOSITORY = 10
# The time goals are for these sizes (seconds; strict: "<" rather than "<="); other sizes get none.
GOAL_SECONDS = {1_000: (2.0, False), 10_000: (10.0, True)}
GOAL_CALLS_FIRST, GOAL_UPSTREAM_FIRST, GOAL_TOKENS_PER_50 = 0.3, 1.0, 1.0
GOAL_CALLS_REPEAT, GOAL_UPSTREAM_REPEAT = 0.11, 0.25
GOAL_GROWTH = 1.1  # calls per image at the large size over the small size's: linear growth, within 10%
# The SQS event source's hop from a shard message sent to its invocation: AWS publishes no figure; the poller
# long-polls, so a message is picked up well within a second. An assumption, stated in the table.
QUEUE_HOP_SECONDS = 0.1
# The Lambda guide (services-sqs-scaling): "When messages are available, Lambda starts processing five batches at a
# time with five concurrent invocations of your function. If messages are still available, Lambda increases the
# number of processes that are reading batches by up to 300 more instances per minute", up to MaximumConcurrency.
SQS_SCALE_PER_MINUTE = 300
REPEAT_RUNS, REPEAT_HOURS = 4, 6.0
SMALL_RUNS = 3  # the small first plan takes seconds, so machine noise weighs on it most: its median is used


def seed(rig: Rig, images: int) -> str:
    """Write the first `images` tags upstream (one namespace for every size: the small list is the large one's
    start, so each image is written once per rig); returns the namespace."""
    namespace = "scale"
    seeded = int(rig.cache.get("scale-seeded", 0))
    if images <= seeded:
        return namespace
    upstream = layout.Storage(rig.sb.workdir / "upstream" / "storage")
    shared = layout.shared_blobs(namespace)
    for blob in shared.values():
        upstream.put_blob(blob)
    for repository, tag, manifest in manifests(namespace, images)[seeded:]:
        upstream.put_image(repository, tag, manifest, shared)
    rig.cache["scale-seeded"] = images
    return namespace


def manifests(namespace: str, images: int) -> list[tuple[str, str, bytes]]:
    """(repository, tag, manifest) of every image, as seed() writes them upstream (the same bytes every time)."""
    shared = layout.shared_blobs(namespace)
    found = []
    for index in range(images):
        repository, tag = names(namespace, index)
        found.append((repository, tag, layout.image_manifest(shared, annotation=f"{repository}:{tag}")))
    return found


def hold_images(namespace: str, images: int, account: str, region: str, every: int) -> None:
    """In this process's moto, an ECR registry model holding every `every`-th image (as imported through the rule)."""
    from sandbox.aws import moto_ecr
    from sandbox.registries.ecr_endpoint import MotoCacheRules
    from sandbox.registries.ecr_registry import EcrRegistry

    rules = MotoCacheRules(account, region)
    registry = EcrRegistry(Path(tempfile.mkdtemp(prefix="scale-ecr-")), account=account, region=region, rules=rules)
    moto_ecr.set_registry(account, region, registry)
    for index, (repository, tag, manifest) in enumerate(manifests(namespace, images)):
        route = rules.route(f"{PREFIX}/{repository}")
        if index % every == 0 and route is not None:
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


# --- running a child -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One plan of a child: its invocations' measures, AWS calls, and the upstream requests the front counted."""

    images: int
    data: dict[str, Any]
    upstream: RegistryCalls  # what the front saw during the plan (its clients' counts)

    @property
    def coordinator(self) -> dict[str, float]:
        return dict(self.data["coordinator"])

    @property
    def shards(self) -> list[dict[str, float]]:
        return list(self.data["shards"])

    @property
    def concurrency(self) -> int:
        """Shards Lambda decides at once: the PlanWarmingShards mapping's MaximumConcurrency in template.yaml."""
        return max(1, int(self.data.get("shard_concurrency") or 1))

    @property
    def waves(self) -> list[list[float]]:
        """The shards' seconds in waves, in the order the coordinator sent them: each wave as wide as Lambda's poller
        runs batches at its start (LAMBDA_INITIAL_SQS_CONCURRENCY, then SQS_SCALE_PER_MINUTE more), at most the
        mapping's MaximumConcurrency."""
        shards, waves, elapsed = [s["seconds"] for s in self.shards], [], 0.0
        while shards:
            width = min(self.concurrency, LAMBDA_INITIAL_SQS_CONCURRENCY + int(SQS_SCALE_PER_MINUTE * elapsed / 60))
            wave, shards = shards[:width], shards[width:]
            waves.append(wave)
            elapsed += max(wave) + QUEUE_HOP_SECONDS
        return waves

    @property
    def lambda_seconds(self) -> float:
        """As Lambda runs it: the coordinator, then the shards in waves (`waves`), each as long as its slowest shard
        and one queue hop before it."""
        return self.coordinator["seconds"] + sum(max(wave) + QUEUE_HOP_SECONDS for wave in self.waves)

    @property
    def serial_seconds(self) -> float:
        return self.coordinator["seconds"] + sum(s["seconds"] for s in self.shards)

    @property
    def cpu(self) -> float:
        return self.coordinator["cpu"] + sum(s["cpu"] for s in self.shards)

    @property
    def aws_calls(self) -> int:
        return sum(self.data["aws_calls"].values())

    def library(self) -> Counter[str]:
        return self.upstream.library()

    @property
    def repositories(self) -> int:
        return -(-self.images // TAGS_PER_REPOSITORY)


def spec_for(rig: Rig, images: int, mode: str, model: Model) -> dict[str, Any]:
    """What the child needs: the configs, the upstream endpoints, the ECR endpoint, the user, the model, the mode."""
    namespace = seed(rig, images)
    import yaml

    config = rig.workdir / f"scale-{images}.yaml"
    config.write_text(yaml.safe_dump(config_document(namespace, images)), encoding="utf-8")
    warmup = rig.workdir / "scale-warmup.yaml"
    warmup.write_text(yaml.safe_dump(config_document(namespace, 1)), encoding="utf-8")
    return {
        "config": str(config),
        "warmup": str(warmup),
        "namespace": namespace,
        "endpoints": rig.sb.upstream_endpoints(),
        "ecr_url": rig.sb.ecr_url,
        "user": rig.users["bench-warm"],
        "images": images,
        "mode": mode,
        "runs": REPEAT_RUNS,
        "hours": REPEAT_HOURS,
        "model": model.as_dict(),
    }


def run_child(rig: Rig, spec: dict[str, Any]) -> list[Plan]:
    """The child's plans; the upstream front's counts read at each of its checkpoints (one before every plan)."""
    rig.set_model(Model.from_dict(spec["model"]))
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, **FAKE_AWS, "BENCH_SCALE_TOKEN": rig.sb.users[spec["user"]], "PYTHONPATH": path}
    marks: list[Counter[tuple[str, str, str]]] = []
    result: dict[str, Any] = {}
    with tempfile.TemporaryFile(mode="w+") as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.scale_child", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        for line in child.stdout:
            message = json.loads(line) if line.startswith("{") else {}
            if "checkpoint" in message:
                marks.append(Counter(rig.sb.upstream.clients))
                child.stdin.write("\n")
                child.stdin.flush()
            elif "result" in message:
                result = message["result"]
        if child.wait(timeout=900) != 0 or not result:
            errors.seek(0)
            raise RuntimeError(f"planning {spec['images']} images ({spec['mode']}) failed:\n{errors.read()[-4000:]}")
    progress(f"  the child planned with {result.get('library', '?')}")
    plans = []
    for index, data in enumerate(result["plans"]):
        seen = Counter(marks[index + 1])
        seen.subtract(marks[index])
        plan = Plan(spec["images"], data, RegistryCalls(Counter(), Counter(), +seen))
        progress(
            f"  plan {index} of {plan.images:,} at +{data['hours']:.0f} h: {plan.lambda_seconds:.2f} s as Lambda runs"
            f" it, {plan.aws_calls / plan.images:.3f} AWS calls and {sum(plan.library().values()) / plan.images:.3f}"
            f" upstream requests per image, {len(plan.shards)} shards, {data['queued']:,} queued"
        )
        plans.append(plan)
    return plans


# --- first run -----------------------------------------------------------------------------------------------------


def first_plans(rig: Rig, model: Model, sizes: tuple[int, int], small_runs: int) -> tuple[Plan, Plan]:
    """The small size planned `small_runs` times (its median run by time), the large one once."""
    small, large = sizes
    progress(f"planning {small:,} images (half cached) x{small_runs}, then {large:,} ({model.describe()})")
    runs = [run_child(rig, spec_for(rig, small, "first", model))[0] for _ in range(small_runs)]
    runs.sort(key=lambda plan: plan.lambda_seconds)
    return runs[len(runs) // 2], run_child(rig, spec_for(rig, large, "first", model))[0]


def memory_size(function: str = "PlanWarmingFunction") -> int:
    """The function's MemorySize in template.yaml (its own, else Globals'), in MiB."""
    from sandbox.template import load_template

    template = load_template()
    own = template["Resources"][function]["Properties"].get("MemorySize")
    return int(own or template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))


def import_resident_bytes() -> int:
    """plan_warming's resident set after `import app` in a fresh interpreter with its Lambda environment."""
    from bench.coldstart import Handler, lambda_environment

    handler = Handler("PlanWarmingFunction", "plan_warming")
    code = "import app\nfor l in open('/proc/self/status'):\n    l.startswith('VmRSS:') and print(l.split()[1])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "functions" / "plan_warming",
        env=lambda_environment(handler),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1]) * 1024


def first_figures(pairs: list[tuple[Plan, Plan]]) -> list[Figure]:
    """`pairs`: (small, large) per model, the model's first. Per size: time (as Lambda runs it, and serial), counts,
    CPU, memory; model and loopback side by side."""
    section = "5 plan, first run (half cached)"
    figures: list[Figure] = []
    for which in (0, 1):
        plans = [pair[which] for pair in pairs]
        figures += _first_size(section, plans)
    figures += _memory(section, [pair[1] for pair in pairs])
    return figures


def _both(plans: list[Plan], show: Callable[[Plan], str]) -> Columns:
    return columns(plans, show)


def _first_size(section: str, plans: list[Plan]) -> list[Figure]:
    first = plans[0]
    n = first.images
    library = first.library()
    upstream = sum(library.values()) / n
    tokens = library["token"] / (first.repositories / 50)
    lambda_s = first.lambda_seconds
    goal, strict = GOAL_SECONDS.get(n, (0.0, False))
    return [
        Figure(
            section,
            f"{n:,}: time as Lambda runs it (coordinator + per wave of shards: slowest + hop)",
            goal=f"{'<' if strict else '<='} {goal:.0f} s" if goal else "",
            met=(lambda_s < goal if strict else lambda_s <= goal) if goal else None,
            **_both(plans, lambda p: seconds(p.lambda_seconds)),
        ),
        Figure(section, f"{n:,}:   invocations in waves; serial sum", **_both(plans, _invocations)),
        Figure(
            section,
            f"{n:,}: AWS calls per image",
            goal=f"<= {GOAL_CALLS_FIRST}",
            met=first.aws_calls / n <= GOAL_CALLS_FIRST,
            **_both(plans, lambda p: _calls(p)),
        ),
        Figure(
            section,
            f"{n:,}: Pullthrough's upstream requests per image",
            goal=f"<= {GOAL_UPSTREAM_FIRST:.0f}",
            met=upstream <= GOAL_UPSTREAM_FIRST,
            **_both(plans, lambda p: _upstream(p)),
        ),
        Figure(
            section,
            f"{n:,}: token requests per 50 repositories",
            goal=f"<= {GOAL_TOKENS_PER_50:.0f}",
            met=tokens <= GOAL_TOKENS_PER_50,
            **_both(plans, lambda p: f"{p.library()['token'] / (p.repositories / 50):.2f}"),
        ),
        Figure(
            section,
            f"{n:,}: Pullthrough's CPU per image (moto's apart); warm jobs queued",
            **_both(plans, lambda p: f"{p.cpu / n * 1000:.2f} ms (moto {_moto(p) / n * 1000:.2f}); {_queued(p)}"),
        ),
    ]


def _invocations(plan: Plan) -> str:
    shards = plan.shards
    if not plan.data.get("shard_queue"):
        return f"1 (no plan-shard queue in template.yaml); {seconds(plan.serial_seconds)}"
    waves = len(plan.waves)
    return f"1 + {len(shards)} shards in {waves} wave(s) of <= {plan.concurrency}; {seconds(plan.serial_seconds)}"


def _calls(plan: Plan) -> str:
    calls = plan.data["aws_calls"]
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:4]
    detail = ", ".join(f"{name.split(':', 1)[1]} {n}" for name, n in top)
    return f"{plan.aws_calls / plan.images:.3f} ({plan.aws_calls:,}: {detail})"


def _upstream(plan: Plan) -> str:
    library = plan.library()
    detail = ", ".join(f"{kind} {n:,}" for kind, n in sorted(library.items(), key=lambda kv: -kv[1]))
    return f"{sum(library.values()) / plan.images:.3f} ({detail or 'none'})"


def _moto(plan: Plan) -> float:
    return plan.coordinator["moto_cpu"] + sum(s["moto_cpu"] for s in plan.shards)


def _queued(plan: Plan) -> str:
    return f"{plan.data['queued']:,}"


def _memory(section: str, plans: list[Plan]) -> list[Figure]:
    """The largest invocation's peak (a shard's when there are shards) with the handler's import, against MemorySize."""
    plan = plans[0]
    invocations = plan.shards or [plan.coordinator]
    peak = max(s["peak_bytes"] for s in invocations)
    base = import_resident_bytes()
    limit = memory_size() * 1024 * 1024
    what = "largest shard" if plan.shards else "the one invocation"
    total = base + peak
    return [
        Figure(
            section,
            f"{plan.images:,}: peak memory of {what}: import + increment, of MemorySize",
            f"{size(base)} + {size(peak)} = {size(total)} of {size(limit)} ({total / limit:.0%}); "
            f"coordinator +{size(plan.coordinator['peak_bytes'])}",
            goal="<= 75% (room to spare)",
            met=total <= 0.75 * limit,
        )
    ]


# --- repeat runs ---------------------------------------------------------------------------------------------------


def repeat_figures(series: list[list[Plan]]) -> list[Figure]:
    """Per size: per run and mean AWS calls, upstream requests and manifest GETs; growth between the sizes."""
    section = f"5 plan, repeat runs every {REPEAT_HOURS:.0f} h ({REPEAT_RUNS} runs after a first plan, all cached)"
    figures: list[Figure] = []
    means = []
    for plans in series:
        runs = plans[1:]
        n = runs[0].images
        calls = statistics.mean(p.aws_calls for p in runs) / n
        upstream = statistics.mean(sum(p.library().values()) for p in runs) / n
        gets = sum(p.library()["GET manifest"] for p in runs)
        means.append(calls)
        figures += [
            Figure(section, f"{n:,}: first plan of the cached list: AWS calls, upstream requests", _per(plans[0])),
            Figure(
                section,
                f"{n:,}: AWS calls per image, mean (per run)",
                f"{calls:.3f} ({', '.join(f'{p.aws_calls:,}' for p in runs)})",
                f"<= {GOAL_CALLS_REPEAT}",
                calls <= GOAL_CALLS_REPEAT,
            ),
            Figure(
                section,
                f"{n:,}: upstream requests per image, mean (per run)",
                f"{upstream:.3f} ({', '.join(f'{sum(p.library().values()):,}' for p in runs)})",
                f"<= {GOAL_UPSTREAM_REPEAT}",
                upstream <= GOAL_UPSTREAM_REPEAT,
            ),
            Figure(section, f"{n:,}: manifest GETs upstream (all runs)", str(gets), "0", gets == 0),
            Figure(
                section, f"{n:,}: time per run as Lambda runs it", ", ".join(seconds(p.lambda_seconds) for p in runs)
            ),
            Figure(section, f"{n:,}: what the runs cost most", _calls(runs[-1]).split(" ", 1)[1]),
        ]
    if len(means) == 2:
        growth = means[1] / means[0]
        figures.append(
            Figure(
                section,
                "growth: calls per image at the large size / the small size's",
                ratio(growth),
                f"<= {GOAL_GROWTH}x (linear)",
                growth <= GOAL_GROWTH,
            )
        )
    return figures


def _per(plan: Plan) -> str:
    return f"{plan.aws_calls / plan.images:.3f}, {sum(plan.library().values()) / plan.images:.3f} per image"


def run(rig: Rig, sizes: tuple[int, int], models: list[Model], small_runs: int = SMALL_RUNS) -> list[Figure]:
    """First plans under each model, then the repeat series under the first model; the figures."""
    pairs = [first_plans(rig, model, sizes, small_runs if index == 0 else 1) for index, model in enumerate(models)]
    return first_figures(pairs)


def repeat_run(rig: Rig, sizes: tuple[int, int], model: Model) -> list[Figure]:
    """The repeat series at both sizes under `model`; the figures."""
    series = []
    for images in sizes:
        progress(f"repeat runs of {images:,} cached images, every {REPEAT_HOURS:.0f} h x{REPEAT_RUNS} (simulated)")
        series.append(run_child(rig, spec_for(rig, images, "repeat", model)))
    return repeat_figures(series)
