"""The bench's world: one sandbox, template.yaml deployed into moto, and the counters every benchmark reads.

`Rig` starts the sandbox (real registries on 127.0.0.1), fakes AWS with moto in-process, deploys template.yaml
through `sandbox.stack.Stack`, creates two pull-through cache rules on the same upstream (one warmed by Pullthrough,
one pulled by skopeo, so each side starts on a fresh cache), and counts:

    AWS calls      every boto3 call the library makes (a botocore `before-call` hook on boto3's default session;
                   the bench's own calls go through a separate session and are not counted)
    registry calls what the sandbox's ECR endpoint and upstream front saw (their own counters)

Where moto's behaviour or cost differs from the service's in a way a benchmark would measure, `correct_moto` evens
it out (its docstring lists what); moto's answers stay the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench import network
from bench.cpu import STAND_INS
from bench.cpu import install as install_stand_ins
from bench.network import AwsDelay, Model
from sandbox import lambdas
from sandbox.aws.moto_threads import serialise
from sandbox.stack import environment_set, sqs_record

ROOT = Path(__file__).resolve().parent.parent

WARM_PREFIX = "bench-warm"  # the rule Pullthrough warms through
PULL_PREFIX = "bench-pull"  # the rule skopeo pulls through: its own proxy, so its own fresh cache
WANTED = ("linux/amd64", "linux/arm64")
# A paid Docker Hub plan's allowance: the comparison is about speed, not about the free tier's 100 pulls.
PULL_ALLOWANCE = 100_000
LAMBDA_INITIAL_SQS_CONCURRENCY = 5

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "Pullthrough",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the table)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class AwsCalls:
    """boto3 calls by (service, operation), counted by a botocore hook."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, event_name: str, **_: Any) -> None:
        # before-call.<service id>.<Operation>
        _before_call, service, operation = event_name.split(".", 2)
        with self._lock:
            self.counts[(service, operation)] += 1

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.counts)

    def since(self, before: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
        """Calls made since `before` (a snapshot)."""
        now = self.snapshot()
        now.subtract(before)
        return +now


LIBRARY_CLIENT = "python-urllib3"  # the User-Agent product of the library's RegistryClient (urllib3's default)


@dataclass
class RegistryCalls:
    """Requests the sandbox's registries saw, as (method, kind) counters; upstream ones also by client."""

    ecr: Counter[tuple[str, str]]
    upstream: Counter[tuple[str, str]]
    clients: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (client, method, kind)

    @property
    def manifest_gets(self) -> int:
        """Manifest GETs upstream: what Docker Hub counts as pulls."""
        return self.upstream[("GET", "manifest")]

    def total(self) -> int:
        return sum(self.ecr.values()) + sum(self.upstream.values())

    def library(self) -> Counter[str]:
        """Pullthrough's own upstream requests by kind: token, HEAD manifest, GET manifest, blob, other."""
        found: Counter[str] = Counter()
        for (client, method, kind), n in self.clients.items():
            if client == LIBRARY_CLIENT:
                name = f"{method} {kind}" if kind == "manifest" else kind
                found[name] += n
        return found


@dataclass(frozen=True)
class Cpu:
    """CPU seconds spent by the bench process (the functions, moto, the sandbox's Python servers), its children
    (skopeo) and the sandbox's registries: a figure other load on the machine does not inflate the way it does
    wall time. `moto`, `sandbox` and `bench` are the stand-ins' thread CPU inside the process (bench/cpu.py)."""

    process: float
    children: float
    registries: float
    moto: float = 0.0
    sandbox: float = 0.0
    bench: float = 0.0

    @property
    def total(self) -> float:
        return self.process + self.children + self.registries

    @property
    def own(self) -> float:
        """Pullthrough's own: the process's CPU less the stand-ins' (bench/cpu.py says what stays in it)."""
        return self.process - self.moto - self.sandbox - self.bench

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.process - other.process,
            self.children - other.children,
            self.registries - other.registries,
            self.moto - other.moto,
            self.sandbox - other.sandbox,
            self.bench - other.bench,
        )


def _process_cpu(pid: int) -> float:
    """utime + stime of a live process (and its reaped children), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is state (field 3): utime, stime, cutime, cstime are fields 14-17.
    return sum(int(f) for f in fields[11:15]) / ticks


@dataclass
class Rig:
    """The sandbox, the deployed stack, and the counters; built by `rig()`."""

    sb: Any  # sandbox.Sandbox
    stack: Any  # sandbox.stack.Stack
    workdir: Path
    function_log: IO[str]
    aws: AwsCalls
    session: Any  # the bench's own boto3 session (its calls are not counted)
    users: dict[str, str] = field(default_factory=dict)  # rule prefix -> upstream user
    cache: dict[str, Any] = field(default_factory=dict)  # results shared between benchmarks (first warm run)
    reader: str = ""  # queue subscribed to the report topic
    delay: AwsDelay = field(default_factory=AwsDelay)  # the model's AWS part, hooked on the library's session
    model: Model = field(default_factory=lambda: Model().off())

    def set_model(self, model: Model) -> None:
        """Put the network model (or none) on the upstream front and the library's AWS calls."""
        self.model = model
        network.apply(self.sb.upstream, self.delay, model)

    # --- counters ----------------------------------------------------------------------------------------------

    def cpu(self) -> Cpu:
        """CPU time so far: this process, its reaped children, the sandbox's registry processes."""
        own = os.times()
        registries = sum(_process_cpu(pid) for pid in self.sb.live_pids())
        stand_ins = STAND_INS.snapshot()
        return Cpu(
            own.user + own.system,
            own.children_user + own.children_system,
            registries,
            stand_ins["moto"],
            stand_ins["sandbox"],
            stand_ins["bench"],
        )

    def registry_calls(self) -> RegistryCalls:
        front = self.sb.upstream
        return RegistryCalls(Counter(self.sb.ecr.counters), Counter(front.counters), Counter(front.clients))

    def registry_since(self, before: RegistryCalls) -> RegistryCalls:
        now = self.registry_calls()
        ecr, upstream, clients = Counter(now.ecr), Counter(now.upstream), Counter(now.clients)
        ecr.subtract(before.ecr)
        upstream.subtract(before.upstream)
        clients.subtract(before.clients)
        return RegistryCalls(+ecr, +upstream, +clients)

    # --- the config ----------------------------------------------------------------------------------------------

    def configure(self, images: Sequence[str], *, success: str = "full") -> Path:
        """Write a config that warms `images` through the warm rule; point every function at it, and deploy it
        (`sam deploy` of an edited config: the roles' scopes follow its rules)."""
        import yaml

        document = {
            "version": 1,
            "stack": "bench",
            "rules": [
                {
                    "prefix": WARM_PREFIX,
                    "upstream": "docker-hub",
                    "credentials": f"ecr-pullthroughcache/{WARM_PREFIX}",
                }
            ],
            "warm": {"platforms": list(WANTED), "budget_share": 0.5, "images": list(images)},
            "notifications": {"success": success},
        }
        path = self.workdir / f"config-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.stack.extra_env["PULLTHROUGH_CONFIG"] = str(path)
        self.stack.update()
        return path

    # --- reports -------------------------------------------------------------------------------------------------

    def reports(self) -> list[Any]:
        """Every report published since the last call (read from a queue subscribed to the report topic)."""
        from pullthrough.reporting.model import Report

        sqs = self.session.client("sqs")
        found = []
        while got := sqs.receive_message(QueueUrl=self.reader, MaxNumberOfMessages=10).get("Messages", []):
            for message in got:
                found.append(Report.from_message(message["Body"]))
                sqs.delete_message(QueueUrl=self.reader, ReceiptHandle=message["ReceiptHandle"])
        return found

    # --- invoking functions ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def environment_of(self, function: str) -> Iterator[None]:
        """The function's environment set once for a block: concurrent invocations then never unset it."""
        with environment_set(self.stack.environment(function)):
            yield

    def invoke(self, function: str, event: dict[str, Any], kind: str = "direct") -> Any:
        """Call a handler through the stack, its output going to the function log."""
        with contextlib.redirect_stdout(self.function_log):
            return self.stack.invoke(function, event, kind)

    def warm_up(self) -> None:
        """Each function's first invocation, unmeasured: boto3 clients, secrets, tokens (a warm Lambda container).

        Every measured run then starts as a container already in service does; the cold start has its own benchmark.
        """
        self.configure([])
        self.fire_schedule("PlanWarmingFunction")
        # A job of no run: the worker looks it up in the ledger and drops it (clients and the handler warmed).
        job = {
            "run_id": "bench-warm-up",
            "key": "none:0",
            "subject": "none:0",
            "rule": WARM_PREFIX,
            "upstream": "docker-hub",
            "repository": f"{WARM_PREFIX}/none",
            "upstream_repository": "none",
            "tag": "0",
            "platforms": list(WANTED),
            "action": "warm",
        }
        message = {"MessageId": "warm-up", "ReceiptHandle": "warm-up", "Body": json.dumps(job)}
        source = self.event_source("WarmImagesFunction")
        with self.environment_of("WarmImagesFunction"), contextlib.redirect_stdout(self.function_log):
            event = {"Records": [sqs_record(message, source.queue_arn, self.sb.region)]}
            self.stack.invoke("WarmImagesFunction", event, "sqs")
        from pullthrough.aws import ecr

        ecr.authorization(self.sb.ecr_url, self.sb.region)
        self.reports()

    def put_event(self, event: dict[str, Any]) -> list[Any]:
        """Deliver an EventBridge event to the functions template.yaml routes it to."""
        with contextlib.redirect_stdout(self.function_log):
            return list(self.stack.put_event(event))

    def fire_schedule(self, function: str) -> Any:
        """Fire the function's schedule as template.yaml wires it."""
        with contextlib.redirect_stdout(self.function_log):
            return self.stack.fire_schedule(function)

    def has_event_source(self, function: str) -> bool:
        """Whether template.yaml gives the function an SQS event source (PlanShards for plan_warming, once there)."""
        return any(r.kind == "sqs" and r.function == function and r.queue for r in self.stack.routes)

    def event_source(self, function: str) -> EventSource:
        """The function's SQS event source as template.yaml declares it: queue, batch size, maximum concurrency."""
        route = next((r for r in self.stack.routes if r.kind == "sqs" and r.function == function), None)
        if route is None or route.queue is None:
            raise LookupError(f"{function} has no SQS event source in template.yaml")
        return EventSource(
            function=function,
            queue_url=self.stack.physical[route.queue],
            queue_arn=self.stack.physical[f"{route.queue}.Arn"],
            batch_size=route.batch_size,
            concurrency=source_concurrency(self.stack, function, route),
            partial=route.partial,
        )

    def drain(self, function: str, concurrency: int | None = None) -> DrainResult:
        """Feed the function's queue to it as Lambda's SQS event source does, with its maximum concurrency.

        `concurrency` pollers (the template's MaximumConcurrency unless given) each receive up to BatchSize messages
        and invoke the handler in their own thread; failed records of a partial batch response go back to the queue.
        The run ends when the queue is empty and no batch is in flight.
        """
        source = self.event_source(function)
        pollers = Pollers(self, function, source, DrainResult(source=source, workers=concurrency or source.concurrency))
        with self.environment_of(function), contextlib.redirect_stdout(self.function_log):
            # Lambda's init phase: the handler module is imported once before any invocation (and loading it from
            # two threads at once would hand one of them a half-imported module).
            lambdas.load(self.stack.functions()[function])
            threads = [threading.Thread(target=pollers.poll, name=f"poller-{i}") for i in range(pollers.result.workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if pollers.errors:
            raise pollers.errors[0]
        return pollers.result


class Pollers:
    """Lambda's SQS event source for one drain: pollers in threads, each receiving a batch and invoking the handler.

    The run ends when the queue is empty and no batch is in flight; failed records of a partial batch response go
    back to the queue.
    """

    def __init__(self, rig: Rig, function: str, source: EventSource, result: DrainResult) -> None:
        self.rig, self.function, self.source, self.result = rig, function, source, result
        self.sqs = rig.session.client("sqs")
        self.state = threading.Condition()
        self.in_flight = 0
        self.errors: list[BaseException] = []

    def pending(self) -> bool:
        """A message delayed or in flight in the queue."""
        # Read from moto's queue itself: its approximate counts are cached for a second (correct_moto), and a
        # job sent back with a delay a moment ago must not be missed.
        from moto.sqs.models import sqs_backends

        name = self.source.queue_url.rsplit("/", 1)[-1]
        queue = sqs_backends[self.rig.stack.account][self.rig.sb.region].queues[name]
        return any(message.delayed or not message.visible for message in queue._messages)

    def receive(self, wait: int = 0) -> list[dict[str, Any]]:
        with STAND_INS.measure("bench"):
            got: list[dict[str, Any]] = self.sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=min(self.source.batch_size, 10),
                AttributeNames=["All"],
                **({"WaitTimeSeconds": wait} if wait else {}),
            ).get("Messages", [])
        return got

    def poll(self) -> None:
        """One poller: receive, invoke, settle, until the queue is drained (or another poller failed)."""
        while not self.errors:
            got = self.receive()
            if not got and self.in_flight == 0 and self.pending():
                # A job sent back to look again later (SQS DelaySeconds): the event source keeps polling, and
                # so does the bench, in real time (the delay is part of what a user waits).
                got = self.receive(wait=1)
                if not got:
                    continue
            with self.state:
                if not got:
                    if self.in_flight == 0:
                        self.state.notify_all()
                        return
                    # Another poller's batch may still come back (a failed record): wait for it to finish.
                    self.state.wait(0.05)
                    continue
                self.in_flight += 1
            try:
                self.process(got)
            except BaseException as exc:
                self.errors.append(exc)
            finally:
                with self.state:
                    self.in_flight -= 1
                    self.state.notify_all()

    def process(self, got: list[dict[str, Any]]) -> None:
        """Invoke the handler with one batch; delete what succeeded, make the failed records visible again."""
        source = self.source
        records = [sqs_record(m, source.queue_arn, self.rig.sb.region) for m in got]
        started = time.perf_counter()
        response = self.rig.stack.invoke(self.function, {"Records": records}, "sqs") or {}
        took = time.perf_counter() - started
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} if source.partial else set()
        with STAND_INS.measure("bench"):
            self._settle(got, failed)
        with self.state:
            self.result.batches += 1
            self.result.messages += len(got) - len(failed)
            self.result.failed += len(failed)
            self.result.invocations.append(took)

    def _settle(self, got: list[dict[str, Any]], failed: set[str]) -> None:
        source = self.source
        # As the event source does: one DeleteMessageBatch for what succeeded; failures become visible.
        done = [m for m in got if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for message in got:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )


def source_concurrency(stack: Any, function: str, route: Any) -> int:
    """How many batches of the function's SQS event source (`route`) Lambda runs at once: the template's
    ScalingConfig.MaximumConcurrency (on the AWS::Lambda::EventSourceMapping, or the function's SAM SQS event)."""
    concurrency = getattr(route, "max_concurrency", None)
    if concurrency is None:  # a router that does not read it: the function's SAM SQS event may declare it
        events = stack.template["Resources"][function]["Properties"].get("Events") or {}
        declared = [e["Properties"].get("ScalingConfig") or {} for e in events.values() if e.get("Type") == "SQS"]
        maximum = next((d["MaximumConcurrency"] for d in declared if "MaximumConcurrency" in d), None)
        concurrency = stack.resolve(maximum) if maximum is not None else None
    # Without ScalingConfig.MaximumConcurrency, Lambda starts an SQS event source at five concurrent batches.
    return int(concurrency or LAMBDA_INITIAL_SQS_CONCURRENCY)


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping of template.yaml."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    concurrency: int
    partial: bool


@dataclass
class DrainResult:
    """What one drain did."""

    source: EventSource
    workers: int
    batches: int = 0
    messages: int = 0
    failed: int = 0
    invocations: list[float] = field(default_factory=list)  # seconds of each handler invocation


@contextlib.contextmanager
def quiet_functions(log: IO[str]) -> Iterator[None]:
    """Send the functions' JSON logs and EMF metrics to `log`, and drop Powertools' empty-metrics warning."""
    import warnings

    from pullthrough.observability import logger

    handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(log) for h in handlers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                if stream is not None:
                    handler.setStream(stream)


APPROXIMATE_SECONDS = 1.0


def correct_moto() -> None:
    """Give moto the complexity of the services it stands in for, where its own makes a benchmark measure moto.

    - SQS: moto recounts every message of a queue for every message sent (SendMessage reads the queue's attributes,
      ApproximateNumberOfMessages* included), so queueing N jobs costs O(N^2); SQS's is O(N). The approximate counts
      are cached for APPROXIMATE_SECONDS, which SQS documents them to be (approximate, eventually consistent).
    - every moto request is handled one at a time (`sandbox.aws.moto_threads.serialised`, for the whole bench): moto is
      not thread-safe (two concurrent conditional writes to one DynamoDB item can both succeed), where DynamoDB
      serialises them. moto's calls are CPU-bound Python under the GIL anyway, so the lock costs the concurrent warm
      path next to nothing.

    Nothing the library sees changes: same answers, same errors.
    """
    from moto.sqs.models import Queue

    if getattr(Queue, "_bench_corrected", False):
        return
    # For the rest of the process. (It was `ExitStack().enter_context(serialised())`: the stack was dropped at once,
    # its generator closed, and moto ran unserialised: concurrent warm_images invocations then lost an increment of a
    # run's `done` counter now and then, and the run never closed. That was the report the bench "lost".)
    serialise()
    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        setattr(Queue, name, property(_cached_count(getattr(Queue, name).fget, name)))
    Queue._bench_corrected = True  # type: ignore[attr-defined]


def _cached_count(count: Any, name: str) -> Any:
    def cached(queue: Any) -> int:
        now = time.monotonic()
        memo = queue.__dict__.setdefault("_bench_counts", {})
        found = memo.get(name)
        if found is None or now - found[1] > APPROXIMATE_SECONDS:
            found = (count(queue), now)
            memo[name] = found
        return int(found[0])

    return cached


@contextlib.contextmanager
def rig(workdir: Path) -> Iterator[Rig]:
    """Start everything the benchmarks share; stop it all on the way out, also on failure or Ctrl-C."""
    for key, value in FAKE_AWS.items():
        os.environ.setdefault(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)

    import boto3
    from moto import mock_aws

    from pullthrough.aws import clients, ecr
    from sandbox import Sandbox
    from sandbox.aws import moto_ecr
    from sandbox.stack import Stack

    workdir.mkdir(parents=True, exist_ok=True)
    users = {WARM_PREFIX: "bench-warmer", PULL_PREFIX: "bench-puller"}
    tokens = {user: f"dckr_pat_{uuid.uuid4().hex}" for user in users.values()}
    install_stand_ins()
    with (
        (workdir / "functions.log").open("w", encoding="utf-8") as log,
        quiet_functions(log),
        mock_aws(),
        Sandbox(workdir / "sandbox", users=tokens) as sb,
    ):
        correct_moto()
        sb.upstream.user_limit = PULL_ALLOWANCE
        moto_ecr.install()
        sb.configure_rules()
        session = boto3.session.Session(region_name=sb.region)
        _create_rules(session, users, tokens)
        stack = Stack(stack_name="pullthrough-bench", account=sb.account, region=sb.region, extra_env=sb.env())
        stack.deploy()
        reader = _report_reader(session, stack.physical["ReportTopic"])
        # Count the library's calls: its clients come from boto3's default session, created after the hook.
        aws = AwsCalls()
        boto3.setup_default_session(region_name=sb.region)
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", aws)
        delay = AwsDelay()
        network.install(boto3.DEFAULT_SESSION, delay)
        clients.clear()
        ecr.forget_authorization()
        # Lambda's init phase, once per function, before any measurement: import times are the cold start
        # benchmark's subject; here every run is measured as warm containers run it.
        for directory in stack.functions().values():
            lambdas.load(directory)
        world = Rig(sb, stack, workdir, log, aws, session, users=users, reader=reader, delay=delay)
        world.warm_up()
        try:
            yield world
        finally:
            clients.clear()
            ecr.forget_authorization()


def _create_rules(session: Any, users: dict[str, str], tokens: dict[str, str]) -> None:
    """One Docker Hub pull-through cache rule per prefix, its secret holding that prefix's upstream user."""
    secrets, registry = session.client("secretsmanager"), session.client("ecr")
    for prefix, user in users.items():
        arn = secrets.create_secret(
            Name=f"ecr-pullthroughcache/{prefix}",
            SecretString=json.dumps({"username": user, "accessToken": tokens[user]}),
        )["ARN"]
        registry.create_pull_through_cache_rule(
            ecrRepositoryPrefix=prefix,
            upstreamRegistryUrl="registry-1.docker.io",
            upstreamRegistry="docker-hub",
            credentialArn=arn,
        )


def _report_reader(session: Any, topic_arn: str) -> str:
    """A queue subscribed to the report topic (raw delivery): its URL."""
    sqs, sns = session.client("sqs"), session.client("sns")
    reader: str = sqs.create_queue(QueueName="bench-report-reader")["QueueUrl"]
    reader_arn = sqs.get_queue_attributes(QueueUrl=reader, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=reader_arn, Attributes={"RawMessageDelivery": "true"})
    return reader
