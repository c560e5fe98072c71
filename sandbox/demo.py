"""`make demo`: the whole system on one machine, with moto for AWS and real registries on 127.0.0.1.

deploy event -> reconcile_rules -> "rules reconciled" -> plan_warming -> SQS -> warm_images (ECR imports each image
itself; only manifests pass through the function) -> report; the upstream is then stopped and every warmed image is
pulled with skopeo through the ECR endpoint (the offline guarantee); a consumer's pull of a tag the upstream lacks
is reported from ECR's own event; then a rotation with a bad token a pipeline staged (refused, the old token stays
current) and `pullthrough credentials set` with a good one (accepted), each through RotateSecret and the rotation
function as Secrets Manager runs them. Each SNS report is printed as a subscriber would read it. Everything started
is stopped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sandbox.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "pullthrough.yaml"
STACK = "pullthrough-demo"
JSON_MARKER = "-----BEGIN PULLTHROUGH REPORT JSON-----"
FUNCTION_LOG = Path(tempfile.gettempdir()) / "pullthrough-demo-functions.log"

_started = time.monotonic()


def step(text: str) -> None:
    """Progress, with the time since the demo started."""
    print(f"\n[{time.monotonic() - _started:5.1f}s] == {text}", flush=True)


def say(text: str = "") -> None:
    print(f"    {text}" if text else "", flush=True)


@contextmanager
def fake_aws() -> Iterator[None]:
    """moto in-process, with credentials that cannot reach AWS."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="sandbox",
        AWS_SECRET_ACCESS_KEY="sandbox",
        AWS_SESSION_TOKEN="sandbox",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="Pullthrough",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL=os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
    )
    from moto import mock_aws

    with mock_aws():
        yield


class Reports:
    """An SQS queue subscribed to the report topic: what a subscriber receives."""

    def __init__(self, topic_arn: str) -> None:
        import boto3

        self.sqs = boto3.client("sqs")
        self.url = self.sqs.create_queue(QueueName="demo-report-reader")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def print_new(self) -> list[dict[str, Any]]:
        """Print every report published since the last call; return their parsed JSON blocks."""
        parsed = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return parsed
            for message in got:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                envelope = json.loads(message["Body"])
                body: str = envelope["Message"]
                human, _, machine = body.partition(JSON_MARKER)
                print("\n    +" + "-" * 108)
                print(f"    | Subject: {envelope.get('Subject')}")
                attributes = {k: v.get("Value") for k, v in envelope.get("MessageAttributes", {}).items()}
                print(f"    | Attributes: {attributes}")
                print("    |")
                for line in human.rstrip().splitlines():
                    print(f"    | {line}")
                if machine:
                    print(f"    | {JSON_MARKER} ... (the report as JSON, {len(machine)} characters)")
                    parsed.append(json.loads(machine.split("-----END", 1)[0]))
                print("    +" + "-" * 108, flush=True)


class DemoStack(Stack):
    """The deployed stack, with the functions' own output (JSON logs, EMF metrics) sent to FUNCTION_LOG."""

    log: IO[str] | None = None

    def invoke(self, function: str, event: dict[str, Any], kind: str = "direct") -> Any:
        with contextlib.redirect_stdout(self.log or sys.stdout), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Powertools warns when a run had no metrics to flush
            return super().invoke(function, event, kind)


@dataclass
class Demo:
    """What the demo's steps share: the sandbox, the deployed stack, the report reader, the config."""

    sb: Any  # sandbox.Sandbox
    stack: DemoStack
    reports: Reports
    cfg: Any  # pullthrough.config.Config
    config_path: Path
    workdir: Path

    @property
    def functions(self) -> dict[str, str]:
        """functions/ directory -> logical id."""
        return {v: k for k, v in self.stack.functions().items()}


def run() -> int:
    """The demo; returns the exit status."""
    from pullthrough.observability import logger
    from sandbox import Sandbox

    log = FUNCTION_LOG.open("w", encoding="utf-8")
    for handler in logging.getLogger(logger.name).handlers:  # the functions' JSON logs go to FUNCTION_LOG
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log)

    step("Starting the sandbox: moto for AWS, CNCF distribution registries and the ECR endpoint on 127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="pullthrough-demo-") as workdir, fake_aws(), Sandbox(workdir) as sb:
        demo = _deploy(sb, Path(workdir), log)
        seeded = _seed(demo)
        _warm(demo)
        _operate(demo)
        _offline(demo, seeded)
        _pull_failure(demo)
        _rotations(demo)
        step("Stopping everything")
    log.close()
    print(f"\nDemo finished in {time.monotonic() - _started:.1f}s. The functions' logs: {FUNCTION_LOG}", flush=True)
    return 0


def _deploy(sb: Any, workdir: Path, log: IO[str]) -> Demo:
    """template.yaml into moto with the sandbox's endpoints; the config loaded and explained."""
    from pullthrough import config as config_module
    from pullthrough import sources

    say(f"upstream (Docker Hub-like token realm, rate limits): {sb.upstream_url}")
    say(f"ECR registry endpoint (imports through each rule as ECR does): {sb.ecr_url}")
    config_path = _demo_config(workdir)
    stack = DemoStack(stack_name=STACK, extra_env={**sb.env(), "PULLTHROUGH_CONFIG": str(config_path)})
    stack.log = log
    stack.deploy()
    reports = Reports(stack.physical["ReportTopic"])
    demo = Demo(sb, stack, reports, None, config_path, workdir)
    say(f"template.yaml deployed into moto: {len(stack.physical)} resources, functions {sorted(demo.functions)}")

    step(f"Loading {CONFIG.relative_to(ROOT)}")
    demo.cfg = config_module.load(CONFIG)
    for line in demo.cfg.explain(sources.read(demo.cfg)):
        say(line)
    return demo


def _seed(demo: Demo) -> list[Any]:
    """The upstream filled with the images the config warms; the rules' secrets stored."""
    import boto3

    from sandbox.seed import seed

    step("Filling the upstream with the images the config warms (generated, multi-arch)")
    seeded = seed(demo.sb, demo.cfg)
    say(f"{len(seeded)} tags pushed across {len({s.repository for s in seeded})} repositories")

    step("Storing upstream credentials in Secrets Manager (what `pullthrough credentials set` does)")
    (user, token), *_ = demo.sb.users.items()
    secrets = boto3.client("secretsmanager")
    for rule in demo.cfg.rules:
        if rule.secret_name:
            value = json.dumps({"username": user, "accessToken": token})
            secrets.create_secret(Name=rule.secret_name, SecretString=value)
            say(f"{rule.secret_name} (for rule {rule.prefix}): stored, value not shown")
    return seeded


def _warm(demo: Demo) -> None:
    """sam deploy's event -> reconcile_rules -> plan_warming -> SQS -> warm_images, each report shown."""
    import boto3

    stack = demo.stack
    with stack.bus() as forward:
        step("sam deploy: CloudFormation CREATE_COMPLETE -> reconcile_rules")
        stack.put_event(
            {
                "source": "aws.cloudformation",
                "detail-type": "CloudFormation Stack Status Change",
                "resources": [stack.stack_id],
                "detail": {
                    "stack-id": stack.stack_id,
                    "status-details": {"status": "CREATE_COMPLETE", "status-reason": ""},
                    "logical-resource-id": STACK,
                },
            }
        )
        rules = boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
        say(f"pull-through cache rules now in the account: {[r['ecrRepositoryPrefix'] for r in rules]}")
        demo.reports.print_new()

        step('"Pullthrough Rules Reconciled" event -> plan_warming -> SQS jobs')
        forwarded = forward()
        say(f"{forwarded} event(s) routed from the bus")
    step("SQS -> warm_images (batch size and partial batch responses from template.yaml)")
    processed = stack.drain(demo.functions["warm_images"])
    say(f"{processed} job(s) processed")
    demo.reports.print_new()


def _operate(demo: Demo) -> None:
    """What an operator and a consumer run: status, plan, pull-config (printed and written)."""
    stack, sb, config = demo.stack, demo.sb, str(demo.config_path)
    step("The operator's view: `pullthrough status`, then `pullthrough plan` (it writes nothing)")
    _cli(stack, sb, ["status", "--config", config], shown=24)
    _cli(stack, sb, ["plan", "--config", config], shown=12)

    step("What consumers need: `pullthrough pull-config` (.env, registries.conf, containerd, Kyverno, IAM, VPC)")
    _cli(stack, sb, ["pull-config", "--format", "env", "--config", config], shown=12)
    consumer = demo.workdir / "pull-config"
    _cli(stack, sb, ["pull-config", "--output-dir", str(consumer), "--config", config], shown=12)


def _offline(demo: Demo, seeded: list[Any]) -> None:
    """The upstream stopped; every warmed image pulled with skopeo through the ECR endpoint, then by upstream name."""
    sb = demo.sb
    step("Offline: stopping the upstream, then pulling every warmed image with skopeo through the ECR endpoint")
    sb.stop_upstream()
    with tempfile.TemporaryDirectory(prefix="demo-pulls-") as pulls:
        pulled, failed = _pull_warmed(sb, seeded, Path(pulls))
    say(f"{pulled} platform image(s) pulled by skopeo with the upstream down, {failed} failed")
    _pull_by_upstream_names(sb, demo.cfg, demo.workdir / "pull-config")
    sb.start_upstream()


def _pull_warmed(sb: Any, seeded: list[Any], pulls: Path) -> tuple[int, int]:
    """Each seeded tag ECR holds, every platform the config warms, pulled by skopeo; (pulled, failed)."""
    import boto3

    from pullthrough.reference import upstream_repository
    from sandbox.registries import skopeo

    ecr_api = boto3.client("ecr")
    pulled = failed = 0
    for n, s in enumerate(seeded):
        repository = f"{s.target.rule.prefix}/{upstream_repository(s.target.image.image)}"
        try:
            ecr_api.describe_images(repositoryName=repository, imageIds=[{"imageTag": s.tag}])
        except ecr_api.exceptions.ClientError:
            continue  # not among the tags the config warms (a tag pattern picked others)
        for platform in s.pushed.platforms:
            if platform not in s.target.platforms:
                continue
            done = skopeo.copy(
                sb.ecr_url,
                sb.ecr_password,
                f"{repository}:{s.tag}",
                pulls / f"{n}-{platform.replace('/', '-')}",
                multi_arch="system",
                platform=platform,
            )
            pulled, failed = pulled + done.ok, failed + (not done.ok)
    return pulled, failed


def _pull_failure(demo: Demo) -> None:
    """A consumer's pull of a tag the upstream lacks: ECR's event -> report_pull_failures."""
    from sandbox.registries import skopeo

    sb, stack = demo.sb, demo.stack
    step("A consumer pulls a tag the upstream does not have: ECR's event -> report_pull_failures")
    prefix = demo.cfg.rules[0].prefix
    with tempfile.TemporaryDirectory(prefix="demo-typo-") as typo:
        missed = skopeo.copy(sb.ecr_url, sb.ecr_password, f"{prefix}/library/nginx:1.99-typo", Path(typo))
    say(f"skopeo: {'pulled' if missed.ok else 'refused, as it should be'}")
    routed = 0
    for event in sb.registry.events.take():
        stack.put_event(event)
        routed += 1
    say(f"{routed} ECR Pull Through Cache Action event(s) put on the bus; the failed ones are queued")
    stack.drain(demo.functions["report_pull_failures"])
    demo.reports.print_new()


def _rotations(demo: Demo) -> None:
    """A bad staged token refused, then `pullthrough credentials set` with a good one promoted."""
    sb, stack = demo.sb, demo.stack
    (user, _), *_ = sb.users.items()
    step("Rotation with a BAD token a pipeline staged: RotateSecret; testSecret proves it upstream and refuses it")
    rule = next(r for r in demo.cfg.rules if r.secret_name)
    assert rule.secret_name is not None
    _rotate_staged(stack, rule.secret_name, user, "dckr_pat_not-a-valid-token")
    demo.reports.print_new()

    step("Rotation with a GOOD token: `pullthrough credentials set` tests it, stages it and rotates; promoted")
    new_token = f"dckr_pat_{uuid.uuid4().hex}"
    sb.add_user(user + "-rotated", new_token)
    before = _current(rule.secret_name)
    _credentials_set(stack, sb, demo.config_path, rule.prefix, user + "-rotated", new_token)
    _run_rotations(stack, rule.secret_name, before)
    demo.reports.print_new()


def _demo_config(workdir: Path) -> Path:
    """config/pullthrough.yaml as it is, but with full success reports, so the demo shows every image."""
    text = CONFIG.read_text(encoding="utf-8")
    path = workdir / "pullthrough.yaml"
    path.write_text(text.replace("  success: summary", "  success: full", 1), encoding="utf-8")
    return path


def _rotate_staged(stack: Any, secret_name: str, user: str, token: str) -> None:
    """What a pipeline does: stage a value under Pullthrough's label, then RotateSecret with the rotation function."""
    import boto3

    from pullthrough.aws.secrets import CANDIDATE

    secrets = boto3.client("secretsmanager")
    value = json.dumps({"username": user, "accessToken": token})
    secrets.put_secret_value(SecretId=secret_name, SecretString=value, VersionStages=[CANDIDATE])
    function = stack.physical["RotateCredentialsFunction.Arn"]
    before = _current(secret_name)
    version = secrets.rotate_secret(SecretId=secret_name, RotationLambdaARN=function)["VersionId"]
    say(f"staged under {CANDIDATE}; RotateSecret started version {version}")
    _run_rotations(stack, secret_name, before)


def _credentials_set(stack: Any, sb: Any, config_path: Path, rule: str, user: str, token: str) -> None:
    """`pullthrough credentials set <rule>`, as a person runs it, the token on stdin; its output shown."""
    _cli(stack, sb, ["credentials", "set", rule, "--username", user, "--config", str(config_path)], stdin=token)


def _cli(stack: Any, sb: Any, argv: list[str], *, stdin: str = "", shown: int = 40) -> int:
    """`pullthrough <argv>` in an operator's shell: the sandbox's endpoints, the account, the stack's ledger table
    and template role (what `--stack` finds in CloudFormation on AWS); its output shown, at most `shown` lines."""
    import io

    from pullthrough import cli
    from sandbox.stack import environment_set

    out = io.StringIO()
    terminal = cli.Io(stdin=io.StringIO(stdin + "\n"), stdout=out, stderr=out)
    function = stack.environment("ReconcileRulesFunction")
    environment = {
        **sb.env(),
        "ACCOUNT_ID": stack.account,
        "AWS_REGION": stack.region,
        "LEDGER_TABLE": function["LEDGER_TABLE"],
        "TEMPLATE_ROLE_ARN": function["TEMPLATE_ROLE_ARN"],
    }
    with environment_set(environment):
        code = cli.main(argv, terminal)
    say(f"$ pullthrough {' '.join(Path(a).name if a.startswith('/') else a for a in argv)}")
    lines = out.getvalue().splitlines()
    for line in lines[:shown]:
        say(f"  {line}")
    if len(lines) > shown:
        say(f"  ... ({len(lines) - shown} more lines)")
    say(f"exit status {code}")
    return code


def _pull_by_upstream_names(sb: Any, cfg: Any, consumer: Path) -> None:
    """One warmed image per rule, pulled by the name people write (docker.io/library/nginx:1.27), through the
    generated registries.conf: what a podman or CRI-O node with that file sees while the upstream is down. Each is
    pulled for a platform the config verifies: ECR imports every child manifest of an index, but the layers of the
    platforms nobody pulled may still be fetched from the upstream (sandbox/registries/ecr_registry.py). The copy of
    the file skopeo reads points the mirror at the sandbox's ECR endpoint (sandbox/registries/skopeo.py), as
    tests/integration/test_consume.py does."""
    from pullthrough import sources
    from pullthrough.consumers import Target, cached_images
    from sandbox.registries import skopeo

    registries_conf = (consumer / "registries.conf").read_text(encoding="utf-8")
    platforms = {warm.cache_repository: warm.platforms for warm in cfg.targets(sources.read(cfg))}
    first: dict[str, tuple[str, str]] = {}
    for image in cached_images(cfg, Target.of(sb.account, sb.region)):
        if image.selection is None:  # a named tag, not one chosen at warm time
            first.setdefault(image.rule, (image.upstream, platforms[image.repository][0]))
    for upstream, platform in first.values():
        with tempfile.TemporaryDirectory(prefix="demo-by-name-") as workdir:
            done = skopeo.pull_by_upstream_name(sb, registries_conf, upstream, Path(workdir), platform=platform)
        outcome = "pulled" if done.returncode == 0 else "FAILED"
        say(f"skopeo copy docker://{upstream} ({platform}) with only the generated registries.conf: {outcome}")


def _run_rotations(stack: Any, secret_name: str, before: str) -> None:
    """Secrets Manager invokes the rotation function for each step of what RotateSecret started."""
    for outcome in stack.rotate():
        if outcome.ok:
            say(f"{outcome.step}: done")
        else:  # Secrets Manager records the failure and reattempts the rotation later; the demo shows it
            say(f"{outcome.step}: refused ({type(outcome.error).__name__}: {outcome.error})")
    current = _current(secret_name)
    say(f"AWSCURRENT is now version {current} ({'the previous one, kept' if current == before else 'the new one'})")


def _current(secret_name: str) -> str:
    import boto3

    version: str = boto3.client("secretsmanager").get_secret_value(SecretId=secret_name, VersionStage="AWSCURRENT")[
        "VersionId"
    ]
    return version


def main() -> int:
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted; everything the demo started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
