"""4. Cold start: each handler's import against the floor, its first invocation up to its first AWS call, sizes.

Import time: `python -X importtime -c "import app"` in a fresh interpreter, in the function's directory (Lambda's
LAMBDA_TASK_ROOT, first on sys.path), with the environment template.yaml gives the function plus the variables the
Lambda runtime sets (so Powertools and the X-Ray SDK take their Lambda paths, as they do at a real cold start).
The figure is the cumulative microseconds of the top-level `import app` line. `import boto3` runs the same way in
the same rounds, and so does a "floor" handler: the handler pattern of STYLE.md with no Pullthrough code
(Powertools' Logger, Metrics and Tracer, one pydantic model), the least any handler here can import. Rounds
interleave the targets, so drift in machine load hits all of them alike; a first round is thrown away (it compiles
any stale byte code). Reported: the median time of each target, and the median over the rounds of its time divided
by boto3's in the same round. The interpreter is the venv's (the layer is built for cp313 on arm64 and cannot run
here); its byte code is cached, as it would be in a layer that ships .pyc files.

On Python 3.13 (Lambda's), when the machine has one: the library layer built by its own Makefile for this machine's
platform (PLATFORM=manylinux2014_x86_64; the build compiles it with that Python 3.13), boto3 beside it as the
runtime's (byte code included, as the runtime ships it), and each handler imported from that layer as built and
from a copy without its byte code, which is what a cold start paid when the layer shipped source only: every module
compiled, and the result thrown away (/opt is read-only, and PYTHONDONTWRITEBYTECODE is set).

Goal: each handler's import at most the floor + GOAL_OVER_FLOOR_MS, the difference taken round by round (the same
rounds as the floor) and its median reported. (The 1.3x-of-boto3 goal is retired: the floor itself is 1.3x to 1.4x,
bench/README.md.)

First AWS call: a fresh interpreter with the function's Lambda environment (and the config layer's document as
PULLTHROUGH_CONFIG) runs a probe: the clock starts, boto3's default session gets a `before-call` hook, `import app`
(Lambda's init), then the handler is invoked with the function's sample event (events/<function>/); the hook takes
the time at the first AWS call and exits the process (nothing is sent). The services whose clients were created by
then are recorded, and the baseline is a fresh interpreter that imports boto3 and creates the same clients. Goal:
the probe at most FIRST_CALL_RATIO x the baseline (medians over the same interleaved rounds). The probe imports boto3
(and botocore's session) before `import app` to hook it; the handler imports it anyway before any call, so the sum is
the same.

Package sizes: `sam build` of template.yaml into a temporary directory (nothing is written into the repository), then
the bytes of each built function and layer, unzipped and zipped (what is uploaded).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import ROOT, progress
from bench.table import Figure, ratio, size

GOAL_OVER_FLOOR_MS = 25.0
FIRST_CALL_RATIO = 1.2
BASELINE = "boto3"
# The event each handler's first invocation gets in the first-call probe (events/<directory>/<file>); a function
# without samples gets the inline event.
PROBE_EVENTS = {
    "check_credentials": "scheduled.json",
    "config_facts": "create.json",
    "gather_reports": "close_cycles.json",
    "plan_warming": "schedule.json",
    "prune_images": "schedule.json",
    "reconcile_rules": "scheduled.json",
    "warm_images": "batch.json",
}
# report_pull_failures' queue carries ECR's "ECR Pull Through Cache Action" events (the ECR guide's EventBridge
# sample; FACTS.md names the detail fields).
PULL_FAILURE = {
    "detail-type": "ECR Pull Through Cache Action",
    "source": "aws.ecr",
    "time": "2026-12-07T10:00:00Z",
    "detail": {
        "rule-version": "1",
        "sync-status": "FAILED",
        "ecr-repository-prefix": "docker-hub",
        "repository-name": "docker-hub/library/nginx",
        "upstream-registry-url": "registry-1.docker.io",
        "image-tag": "1.27",
        "failure-code": "UpstreamTooManyRequests",
        "failure-reason": "You have reached your pull rate limit.",
    },
}
INLINE_EVENTS: dict[str, dict[str, Any]] = {
    "report_pull_failures": {
        "Records": [
            {
                "messageId": "probe-0",
                "receiptHandle": "probe",
                "body": json.dumps(PULL_FAILURE),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pullthrough-pull-failures",
                "awsRegion": "us-east-1",
            }
        ]
    },
}
ROTATION_EVENT = {
    "Step": "createSecret",
    "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
    "ClientRequestToken": "00000000-0000-4000-8000-000000000000",
}
PROBE = """\
import json, os, sys, time
started = time.perf_counter()
import boto3
boto3.setup_default_session()
created = []
def first_call(event_name, **_):
    print(json.dumps({"seconds": time.perf_counter() - started, "event": event_name, "clients": created}), flush=True)
    os._exit(0)
boto3.DEFAULT_SESSION.events.register("before-call", first_call)
def made(class_attributes, base_classes, **kw):
    created.append(kw["event_name"].split(".")[-1])
boto3.DEFAULT_SESSION.events.register("creating-client-class", made)
import app
class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "probe")
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/probe"
    log_stream_name = "probe"
    def get_remaining_time_in_millis(self):
        return 60000
try:
    app.lambda_handler(json.loads(sys.argv[1]), Context())
except BaseException as exc:
    print(json.dumps({"seconds": None, "error": f"{type(exc).__name__}: {exc}"[:300], "clients": created}), flush=True)
    os._exit(0)
print(json.dumps({"seconds": None, "error": "no AWS call", "clients": created}), flush=True)
"""
BASELINE_CLIENTS = """\
import sys, time
started = time.perf_counter()
import boto3
for service in sys.argv[1:]:
    boto3.client(service, region_name="us-east-1")
print(time.perf_counter() - started)
"""
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\S.*)$")


@dataclass(frozen=True)
class Handler:
    """A function of template.yaml: its logical id and its directory under functions/."""

    logical_id: str
    directory: str


def handlers() -> list[Handler]:
    """Every AWS::Serverless::Function of template.yaml."""
    from sandbox.template import load_template

    found = []
    for logical_id, resource in load_template().get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            code = str(resource["Properties"].get("CodeUri", "")).rstrip("/")
            found.append(Handler(logical_id, code.rsplit("/", 1)[-1]))
    return sorted(found, key=lambda h: h.directory)


def lambda_environment(handler: Handler) -> dict[str, str]:
    """What the function's process sees in Lambda: the template's variables (Globals merged) and the runtime's."""
    from sandbox.stack import Stack

    stack = Stack(stack_name="pullthrough-bench")
    resources = stack.template.get("Resources", {})
    stack.physical = {logical_id: f"{stack.stack_name}-{logical_id}" for logical_id in resources}
    stack.parameters = {k: v.get("Default") for k, v in stack.template.get("Parameters", {}).items()}
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")}
    env.update(stack.environment(handler.logical_id))
    task_root = str(ROOT / "functions" / handler.directory)
    env.update(
        LAMBDA_TASK_ROOT=task_root,
        LAMBDA_RUNTIME_DIR="/var/runtime",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{stack.physical[handler.logical_id]}",
        AWS_DEFAULT_REGION=stack.region,
        AWS_XRAY_DAEMON_ADDRESS="169.254.79.129:2000",
        _HANDLER="app.lambda_handler",
    )
    return env


def import_microseconds(module: str, cwd: Path, env: dict[str, str], python: str = sys.executable) -> int:
    """Cumulative import time of `module` in a fresh interpreter (`-X importtime`), in microseconds."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} in {cwd} failed:\n{result.stderr[-2000:]}")
    for line in result.stderr.splitlines():
        match = _LINE.match(line)
        if match and match.group(3) == module:  # top level: no indentation before the name
            return int(match.group(2))
    raise RuntimeError(f"no importtime line for {module} in {cwd}")


@dataclass(frozen=True)
class ImportTimes:
    """Per target (BASELINE, FLOOR, each handler's directory): the median time in seconds, and the median over the
    rounds of its time divided by boto3's in the same round."""

    medians: dict[str, float]
    ratios: dict[str, float]
    rounds: int
    over_floor: dict[str, float]  # median over the rounds of (target - floor), seconds

    def ratio(self, target: str) -> float:
        return self.ratios[target]


# The handler pattern every function follows (STYLE.md), with no Pullthrough code: Powertools' Logger, Metrics and
# Tracer (X-Ray, patching botocore and http.client) and one pydantic model. What any such handler imports at least.
FLOOR = "floor"
FLOOR_HANDLER = """\
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

logger, metrics = Logger(service="floor"), Metrics(namespace="Floor", service="floor")
tracer = Tracer(service="floor", patch_modules=("botocore", "httplib"))


class Settings(BaseModel):
    region: str = "us-east-1"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return Settings().model_dump()
"""


def measure_imports(rounds: int, floor_dir: Path) -> ImportTimes:
    """Interleaved rounds over boto3, the floor handler and every handler; medians."""
    targets = handlers()
    (floor_dir / "app.py").write_text(FLOOR_HANDLER, encoding="utf-8")
    envs = {h.directory: lambda_environment(h) for h in targets}
    baseline_env = envs[targets[0].directory]
    places = {BASELINE: (ROOT / "functions" / targets[0].directory, "boto3", baseline_env)}
    places[FLOOR] = (floor_dir, "app", {**baseline_env, "LAMBDA_TASK_ROOT": str(floor_dir)})
    for handler in targets:
        places[handler.directory] = (ROOT / "functions" / handler.directory, "app", envs[handler.directory])
    samples: dict[str, list[int]] = {}
    # A discarded first round compiles whatever byte code is stale, so no round measures the compiler.
    for round_ in range(rounds + 1):
        if round_ == 1:
            samples = {}
        for target, (cwd, module, env) in places.items():
            samples.setdefault(target, []).append(import_microseconds(module, cwd, env))
    medians = {k: statistics.median(v) / 1e6 for k, v in samples.items()}
    ratios = {
        k: statistics.median(mine / base for mine, base in zip(v, samples[BASELINE], strict=True))
        for k, v in samples.items()
    }
    over = {
        k: statistics.median(mine - floor for mine, floor in zip(v, samples[FLOOR], strict=True)) / 1e6
        for k, v in samples.items()
    }
    return ImportTimes(medians, ratios, rounds, over)


def probe_event(handler: Handler) -> dict[str, Any]:
    """The sample event of the function's first invocation in the probe."""
    name = PROBE_EVENTS.get(handler.directory)
    if name is None:
        return INLINE_EVENTS.get(handler.directory, ROTATION_EVENT)
    return dict(json.loads((ROOT / "events" / handler.directory / name).read_text(encoding="utf-8")))


def probe_environment(handler: Handler) -> dict[str, str]:
    """The function's Lambda environment, fake credentials, and the config layer's document."""
    from bench.harness import FAKE_AWS
    from sandbox.aws.deployed_functions import CONFIG_SOURCE

    return {**lambda_environment(handler), **FAKE_AWS, "PULLTHROUGH_CONFIG": str(CONFIG_SOURCE)}


def first_call(handler: Handler) -> dict[str, Any]:
    """One probe: seconds from a fresh interpreter's start to the handler's first AWS call, and the clients made."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(probe_event(handler))],
        cwd=ROOT / "functions" / handler.directory,
        env=probe_environment(handler),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"seconds"')]
    if not lines:
        return {"seconds": None, "error": result.stderr[-300:] or "no output", "clients": []}
    return dict(json.loads(lines[-1]))


def boto3_with_clients(handler: Handler, services: list[str]) -> float:
    """Seconds for a fresh interpreter to import boto3 and create `services`' clients (the baseline)."""
    result = subprocess.run(
        [sys.executable, "-c", BASELINE_CLIENTS, *services],
        cwd=ROOT / "functions" / handler.directory,
        env=probe_environment(handler),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout.split()[-1])


def first_call_figures(rounds: int) -> list[Figure]:
    """Per handler: init + first invocation up to its first AWS call against import boto3 + the same clients."""
    progress(f"first AWS call: a learning round, then {rounds} interleaved rounds of probe and baseline")
    section = f"4 cold start (init + first invocation to its first AWS call, median of {rounds})"
    learned = {h.directory: first_call(h) for h in handlers()}
    samples: dict[str, list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for handler in handlers():
            services = _services(learned[handler.directory].get("clients", []))
            if learned[handler.directory].get("seconds") is None:
                continue
            probe = first_call(handler)
            if probe.get("seconds") is not None:
                samples.setdefault(handler.directory, []).append(
                    (float(probe["seconds"]), boto3_with_clients(handler, services))
                )
    figures = []
    for handler in handlers():
        found = learned[handler.directory]
        pairs = samples.get(handler.directory)
        if not pairs:
            reason = found.get("error") or "no AWS call"
            figures.append(Figure(section, f"{handler.directory}: no first AWS call measured", str(reason)[:90]))
            continue
        mine = statistics.median(p[0] for p in pairs) * 1000
        base = statistics.median(p[1] for p in pairs) * 1000
        value = statistics.median(p[0] / p[1] for p in pairs)
        figures.append(
            Figure(
                section,
                f"{handler.directory}: to {found['event'].split('.', 1)[1]} / "
                f"boto3 + {', '.join(_services(found['clients']))}",
                f"{mine:.0f} ms / {base:.0f} ms ({ratio(value)})",
                f"<= {FIRST_CALL_RATIO}x",
                value <= FIRST_CALL_RATIO,
            )
        )
    return figures


def _services(created: list[str]) -> list[str]:
    """boto3 service names from botocore's client class names (creating-client-class.<service id>)."""
    return list(dict.fromkeys(name.lower().replace(" ", "").replace("-", "") for name in created))


def python313() -> str | None:
    """A Python 3.13 on this machine (the candidates layers/pullthrough/Makefile tries), or None."""
    pyenv = sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    candidates = ["python3.13", *pyenv, "/usr/local/bin/python3.13"]
    for candidate in candidates:
        try:
            result = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable if sys.version_info[:2] == (3, 13) else '')"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return None


def on_python313(rounds: int) -> list[Figure]:
    """Each handler on Python 3.13, imported from the layer as built (byte code) and from its source alone."""
    section = f"4 cold start (Python 3.13, median of {rounds})"
    python = python313()
    if python is None:
        return [Figure(section, "Python 3.13", "none on this machine: not measured")]
    progress(f"Python 3.13: building the layer for this machine, then {rounds} rounds with and without byte code")
    with tempfile.TemporaryDirectory(prefix="bench-py313-") as tmp:
        work = Path(tmp)
        built = _build_for_python313(work, python)
        plain = work / "source-only"
        shutil.copytree(built, plain, ignore=shutil.ignore_patterns("__pycache__"))
        samples = _python313_samples(rounds, work, python, {"byte code": built, "source": plain})
    boto3_ms = statistics.median(samples[(BASELINE, "byte code")]) / 1000
    figures = [Figure(section, "import boto3 alone (the runtime's, with its byte code)", f"{boto3_ms:.0f} ms")]
    for handler in handlers():
        compiled = statistics.median(samples[(handler.directory, "byte code")]) / 1000
        plain_ms = statistics.median(samples[(handler.directory, "source")]) / 1000
        figures.append(
            Figure(
                section,
                f"import {handler.directory}/app.py: layer of source only / as built",
                f"{plain_ms:.0f} ms / {compiled:.0f} ms ({ratio(compiled / boto3_ms)} boto3; byte code saves "
                f"{plain_ms - compiled:.0f} ms)",
            )
        )
    return figures


def _build_for_python313(work: Path, python: str) -> Path:
    """The layer built for Python 3.13 on this machine (`make build-PullthroughLayer`), and the runtime's boto3 with
    its byte code under `work`/runtime; returns the built layer's python/ directory."""
    source = work / "src"
    shutil.copytree(ROOT / "layers" / "pullthrough", source, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--no-compile"]
    platform = ["--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.13"]
    for command, cwd in (
        (
            [
                "make",
                "build-PullthroughLayer",
                f"ARTIFACTS_DIR={work / 'layer'}",
                f"BUILD_PYTHON={sys.executable}",
                f"PYTHON313={python}",
                "PLATFORM=manylinux2014_x86_64",
            ],
            source,
        ),
        ([*pip, *platform, "--only-binary=:all:", "--target", str(work / "runtime"), "boto3"], work),
        ([python, "-m", "compileall", "-q", "-j", "0", str(work / "runtime")], work),
    ):
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return work / "layer" / "python"


def _python313_samples(
    rounds: int, work: Path, python: str, layers: dict[str, Path]
) -> dict[tuple[str, str], list[int]]:
    """Import times in microseconds: boto3 alone, then each handler from each layer (kind -> its directory)."""
    samples: dict[tuple[str, str], list[int]] = {}
    runtime_env = {**os.environ, "PYTHONPATH": str(work / "runtime"), "PYTHONDONTWRITEBYTECODE": "1"}
    for round_ in range(rounds + 1):
        took = import_microseconds("boto3", work, runtime_env, python)
        if round_:
            samples.setdefault((BASELINE, "byte code"), []).append(took)
        for handler in handlers():
            for kind, layer in layers.items():
                env = {
                    **lambda_environment(handler),
                    "PYTHONPATH": f"{layer}{os.pathsep}{work / 'runtime'}",
                    "PYTHONDONTWRITEBYTECODE": "1",
                }
                took = import_microseconds("app", ROOT / "functions" / handler.directory, env, python)
                if round_:  # the first round warms the disk cache
                    samples.setdefault((handler.directory, kind), []).append(took)
    return samples


@dataclass(frozen=True)
class Built:
    """One built artefact of `sam build`."""

    logical_id: str
    bytes: int
    zipped: int
    files: int


def sam_build(workdir: Path) -> list[Built]:
    """`sam build` into `workdir` (working directory, build and cache directories all there); sizes per artefact."""
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        BUILD_PYTHON=sys.executable,
    )
    build = workdir / "build"
    result = subprocess.run(
        [
            str(venv_bin / "sam"),
            "build",
            "--template",
            str(ROOT / "template.yaml"),
            "--build-dir",
            str(build),
            "--cache-dir",
            str(workdir / "cache"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    built = []
    for artefact in sorted(p for p in build.iterdir() if p.is_dir()):
        files = [p for p in artefact.rglob("*") if p.is_file()]
        archive = workdir / f"{artefact.name}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(artefact))
        built.append(Built(artefact.name, sum(p.stat().st_size for p in files), archive.stat().st_size, len(files)))
    return built


def run(rounds: int, *, build: bool = True) -> list[Figure]:
    """Import times (interleaved rounds) and, unless `build` is False, the built sizes."""
    progress(f"import times: {rounds} interleaved rounds of import boto3 and every handler")
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as floor_dir:
        times = measure_imports(rounds, Path(floor_dir))
    section = f"4 cold start (import, median of {rounds})"
    floor = times.ratio(FLOOR)
    figures = [
        Figure(section, "import boto3 alone", f"{times.medians[BASELINE] * 1000:.0f} ms"),
        Figure(
            section,
            "floor: Powertools + X-Ray + pydantic, no Pullthrough",
            f"{times.medians[FLOOR] * 1000:.0f} ms ({ratio(floor)} boto3)",
        ),
    ]
    for handler in handlers():
        over = times.over_floor[handler.directory] * 1000
        figures.append(
            Figure(
                section,
                f"import {handler.directory}/app.py",
                f"{times.medians[handler.directory] * 1000:.0f} ms (floor {over:+.0f} ms; "
                f"{ratio(times.ratio(handler.directory))} boto3)",
                f"<= floor + {GOAL_OVER_FLOOR_MS:.0f} ms",
                over <= GOAL_OVER_FLOOR_MS,
            )
        )
    figures += first_call_figures(max(min(rounds, 5), 1))
    figures += on_python313(min(rounds, 3))
    if not build:
        return figures
    progress("sam build into a temporary directory")
    with tempfile.TemporaryDirectory(prefix="bench-sam-build-") as workdir:
        built = sam_build(Path(workdir))
    section = "4 cold start (sam build sizes)"
    for artefact in built:
        figures.append(
            Figure(
                section,
                artefact.logical_id,
                f"{size(artefact.bytes)} unzipped, {size(artefact.zipped)} zipped, {artefact.files} files",
            )
        )
    return figures
