"""The scale benchmark's subprocess: a fresh moto, template.yaml deployed, plan_warming fired as its schedule does.

    python -m bench.scale_child '<spec JSON>'

Modes (spec["mode"]):
    first    every other image held in ECR; one plan of the N images (the coordinator, then its shards)
    repeat   every image held in ECR; a first plan, then spec["runs"] plans spec["hours"] apart, the planner's and
             ECR's clocks moved forward between them (bench/clock.py): a schedule simulated in minutes

Each plan is the coordinator's invocation (the schedule) and, when template.yaml gives plan_warming an SQS event
source (a queue of plan shards), every shard message invoked one at a time, each timed and measured on its own
(in Lambda each shard runs in its own invocation, on its own CPU). Per invocation: wall time, CPU (this process's,
less moto's thread CPU: bench/cpu.py), and peak memory (VmHWM reset just before, less the resident set then).

The parent counts the upstream requests (its upstream front serves them): the child stops at checkpoints (a line
on stdout, then it reads a line from stdin) so the parent can read its counters between plans. That is a
handshake between two processes, not a sleep. The last line on stdout is the result.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from moto.sqs.models import sqs_backends

from bench import clock, cpu, network
from bench.harness import FAKE_AWS, AwsCalls, correct_moto, quiet_functions, source_concurrency
from bench.scale import PREFIX, hold_images
from sandbox import DEFAULT_ACCOUNT
from sandbox.aws import moto_ecr
from sandbox.stack import Stack, sqs_record

PLAN = "PlanWarmingFunction"
WARM = "WarmImagesFunction"


def checkpoint(name: str) -> None:
    """Tell the parent where the child is and wait for its go-ahead (it reads its counters in between)."""
    print(json.dumps({"checkpoint": name}), file=sys.__stdout__, flush=True)
    sys.stdin.readline()


def rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Start VmHWM afresh from the current resident set (Linux: `echo 5 > /proc/self/clear_refs`)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")


def measured(call: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run one invocation; its wall seconds, own CPU seconds and peak memory increment in bytes."""
    moto_before = cpu.STAND_INS.snapshot()["moto"]
    reset_peak()
    resident = rss_kib("VmRSS")
    cpu_before, started = time.process_time(), time.perf_counter()
    result = call()
    elapsed, spent = time.perf_counter() - started, time.process_time() - cpu_before
    peak = max(rss_kib("VmHWM") - resident, 0) * 1024
    moto = cpu.STAND_INS.snapshot()["moto"] - moto_before
    return result, {"seconds": elapsed, "cpu": spent - moto, "moto_cpu": moto, "peak_bytes": peak}


class Planner:
    """Fires plans in the child's stack and drains the plan shards' queue, when template.yaml has one."""

    def __init__(self, stack: Any, session: Any) -> None:
        self.stack, self.sqs = stack, session.client("sqs")
        routes = {r.function: r for r in stack.routes if r.kind == "sqs" and r.queue}
        self.shard_route, warm_route = routes.get(PLAN), routes.get(WARM)
        self.warm_queue = stack.physical[warm_route.queue] if warm_route is not None else None
        # The PlanWarmingShards mapping's MaximumConcurrency: how many shards Lambda decides at once.
        self.shard_concurrency = source_concurrency(stack, PLAN, self.shard_route) if self.shard_route else 0

    def plan(self) -> dict[str, Any]:
        """One scheduled plan: the coordinator, then each shard; the invocations' measures and what got queued."""
        summary, coordinator = measured(lambda: self.stack.fire_schedule(PLAN))
        shards = self.drain_shards() if self.shard_route is not None else []
        return {
            "summary": _plain(summary),
            "coordinator": coordinator,
            "shards": shards,
            "queued": self.take_warm_jobs(),
            "shard_queue": self.shard_route is not None,
            "shard_concurrency": self.shard_concurrency,
        }

    def drain_shards(self) -> list[dict[str, float]]:
        """Invoke plan_warming with each shard message (as its event source does, one batch at a time)."""
        route = self.shard_route
        assert route is not None
        url, arn = self.stack.physical[route.queue], self.stack.physical[f"{route.queue}.Arn"]
        done: list[dict[str, float]] = []
        while got := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(route.batch_size, 10)).get(
            "Messages", []
        ):
            records = [sqs_record(m, arn, self.stack.region) for m in got]
            _, measure = measured(partial(self.stack.invoke, PLAN, {"Records": records}, "sqs"))
            done.append(measure)
            for message in got:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return done

    def take_warm_jobs(self) -> int:
        """How many warm jobs the plan queued (read from moto's queue: receiving thousands through moto costs
        O(N) per call); the queue is purged for the next plan."""
        if self.warm_queue is None:
            return 0
        name = self.warm_queue.rsplit("/", 1)[-1]
        queue = sqs_backends[self.stack.account][self.stack.region].queues[name]
        queued = len(queue._messages)
        # What PurgeQueue does in moto, without its once-a-minute limit (the plans of a schedule come faster).
        queue._messages, queue._pending_messages = [], set()
        return queued


def _plain(summary: Any) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(summary, default=str)))
    except (TypeError, ValueError):
        return {}


def deploy(spec: dict[str, Any], session: Any) -> Any:
    """The scale rule and its secret, ECR holding the images, the stack deployed (IAM scoped to the warm-up config)."""
    moto_ecr.install()
    moto_ecr.set_upstream_endpoints(spec["endpoints"])
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
    every = 1 if spec["mode"] == "repeat" else 2
    hold_images(spec["namespace"], spec["images"], DEFAULT_ACCOUNT, FAKE_AWS["AWS_REGION"], every)
    env = {
        "PULLTHROUGH_ECR_REGISTRY_URL": spec["ecr_url"],
        "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(spec["endpoints"]),
        "PULLTHROUGH_CONFIG": spec["warmup"],
    }
    return Stack(stack_name="pullthrough-scale", extra_env=env).deploy()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Deploy, plan a warm-up run (the cold start, unmeasured), then the measured plans."""
    import boto3
    from moto import mock_aws

    from pullthrough.aws import clients

    sink = io.StringIO()
    with mock_aws(), quiet_functions(sink), contextlib.redirect_stdout(sink):
        correct_moto()
        cpu.install()
        session = boto3.session.Session()
        stack = deploy(spec, session)
        aws = AwsCalls()
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", aws)
        delay = network.AwsDelay()
        network.install(boto3.DEFAULT_SESSION, delay)
        clients.clear()
        planner = Planner(stack, session)
        stack.fire_schedule(PLAN)  # the cold start: imports, clients, tokens
        planner.take_warm_jobs()
        delay.seconds = network.Model.from_dict(spec["model"]).aws_ms / 1000
        stack.extra_env["PULLTHROUGH_CONFIG"] = spec["config"]
        plans = []
        for index in range(1 + (spec.get("runs", 0) if spec["mode"] == "repeat" else 0)):
            if index == 1:
                clock.install()
            if index:
                clock.advance(spec["hours"])
            checkpoint(f"before plan {index}")
            before = aws.snapshot()
            plan = planner.plan()
            plan["aws_calls"] = {f"{s}:{o}": n for (s, o), n in sorted(aws.since(before).items())}
            plan["hours"] = clock.offset().total_seconds() / 3600
            plans.append(plan)
        checkpoint("done")
    # Which library the plans ran (the parent's PYTHONPATH, inherited: the worktree's, not an editable install's).
    return {"images": spec["images"], "mode": spec["mode"], "plans": plans, "library": str(Path(clients.__file__))}


if __name__ == "__main__":
    print(json.dumps({"result": child(json.loads(sys.argv[1]))}), file=sys.__stdout__, flush=True)
