"""The warm-run harness shared by test_warming.py and the fault tests (fault_support.py).

template.yaml deployed into moto (sandbox.stack.Stack), two rules on the sandbox: plan_warming is fired as its
schedule or invoked directly, warm_images is fed from moto's queue as the SQS event source would, and reports come
back through a queue subscribed to the report topic. A module subclasses `WarmHarness` with its own rule prefixes,
stack label, layer sizes and default budget share, so proxies and storage never mix between modules.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

import boto3
import yaml

from pullthrough.aws import ecr
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind
from sandbox import PushedImage, Sandbox
from sandbox.stack import Stack, sqs_record
from tests.canary import canary_token
from tests.fake_aws import fake_aws

WANTED = ("linux/amd64", "linux/arm64")


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}"


def secret_of(prefix: str) -> str:
    return f"ecr-pullthroughcache/{prefix}"


@dataclass
class WarmHarness:
    """The deployed stack, the sandbox, and what a test drives a warm run with."""

    HUB: ClassVar[str]
    GHCR: ClassVar[str]
    STACK_LABEL: ClassVar[str]
    LAYERS: ClassVar[tuple[int, ...]]
    BUDGET_SHARE: ClassVar[float]

    sb: Sandbox
    stack: Stack
    user: str
    workdir: Path
    reader: str  # queue subscribed to the report topic
    reports: list[Report] = field(default_factory=list)

    @classmethod
    @contextmanager
    def deployed(cls, sandbox: Sandbox, workdir: Path, *, ghcr_token: str | None = None) -> Iterator[Self]:
        """template.yaml in moto with this harness's two rules on the sandbox, and a queue reading the reports.

        The rules' secrets hold a new upstream user's token, which the upstream accepts; `ghcr_token` replaces the
        GHCR rule's (a token the upstream refuses, say).
        """
        user = unique(f"{cls.STACK_LABEL}-user-")
        sandbox.add_user(user, canary_token(cls.STACK_LABEL))
        try:
            with fake_aws(sandbox.region, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
                # Other modules may have pointed moto's cache operations elsewhere: point them at this sandbox.
                sandbox.configure_rules()
                ecr.forget_authorization()
                secrets, registry = boto3.client("secretsmanager"), boto3.client("ecr")
                for prefix, upstream, url, token in (
                    (cls.HUB, "docker-hub", "registry-1.docker.io", sandbox.users[user]),
                    (cls.GHCR, "github-container-registry", "ghcr.io", ghcr_token or sandbox.users[user]),
                ):
                    arn = secrets.create_secret(
                        Name=secret_of(prefix), SecretString=json.dumps({"username": user, "accessToken": token})
                    )["ARN"]
                    registry.create_pull_through_cache_rule(
                        ecrRepositoryPrefix=prefix,
                        upstreamRegistryUrl=url,
                        upstreamRegistry=upstream,
                        credentialArn=arn,
                    )
                # The deploy scopes IAM to the config's rules (ConfigFacts), as a real one does: a config of the two
                # rules is in place from the start.
                config = workdir / f"{unique('config-')}.yaml"
                config.write_text(yaml.safe_dump(cls.document([])))
                env = {**sandbox.env(), "PULLTHROUGH_CONFIG": str(config)}
                stack = Stack(account=sandbox.account, region=sandbox.region, extra_env=env).deploy()
                sns, sqs = boto3.client("sns"), boto3.client("sqs")
                reader = sqs.create_queue(QueueName=f"{cls.STACK_LABEL}-report-reader")["QueueUrl"]
                reader_arn = sqs.get_queue_attributes(QueueUrl=reader, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                sns.subscribe(
                    TopicArn=stack.physical["ReportTopic"],
                    Protocol="sqs",
                    Endpoint=reader_arn,
                    Attributes={"RawMessageDelivery": "true"},
                )
                try:
                    yield cls(sandbox, stack, user, workdir, reader)
                finally:
                    ecr.forget_authorization()
        finally:
            sandbox.remove_user(user)

    def configure(
        self, images: list[Any], *, budget_share: float | None = None, imports: dict[str, Any] | None = None
    ) -> None:
        """Write a config with the module's two rules and `images`, and point every function at it.

        `imports`: config warm.imports (how long to wait for ECR), e.g. {"poll": 1, "give_up_after": 3}.
        """
        path = self.workdir / f"{unique('config-')}.yaml"
        path.write_text(yaml.safe_dump(self.document(images, budget_share=budget_share, imports=imports)))
        self.stack.extra_env["PULLTHROUGH_CONFIG"] = str(path)
        self.stack.update()  # as `sam deploy` of an edited config: the template's facts about it follow

    @classmethod
    def document(
        cls, images: list[Any], *, budget_share: float | None = None, imports: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The config document of the module's two rules and `images`."""
        return {
            "version": 1,
            "stack": cls.STACK_LABEL,
            "rules": [
                {"prefix": cls.HUB, "upstream": "docker-hub", "credentials": secret_of(cls.HUB)},
                {"prefix": cls.GHCR, "upstream": "github-container-registry", "credentials": secret_of(cls.GHCR)},
            ],
            "warm": {
                "platforms": list(WANTED),
                "budget_share": cls.BUDGET_SHARE if budget_share is None else budget_share,
                "images": images,
                **({"imports": imports} if imports else {}),
            },
            "notifications": {"success": "full"},
        }

    def push(self, name: str, tag: str = "1.0", **options: Any) -> PushedImage:
        options.setdefault("layer_sizes", self.LAYERS)
        return self.sb.push_image(name, tag, **options)

    def plan(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fire plan_warming: its schedule by default, else a direct invoke with `event`."""
        if event is None:
            return dict(self.stack.fire_schedule("PlanWarmingFunction"))
        return dict(self.stack.invoke("PlanWarmingFunction", event))

    def drain(self) -> int:
        """Feed the warm queue to warm_images until it is empty (failed records come back until the DLQ)."""
        return self.stack.drain("WarmImagesFunction")

    def run(self, event: dict[str, Any] | None = None) -> tuple[dict[str, Any], Report]:
        """A whole run: plan, drain; the planner's summary and the run's one report."""
        summary = self.plan(event)
        self.drain()
        return summary, self.report_of(summary["run_id"])

    def receive(self) -> list[dict[str, Any]]:
        """The jobs waiting on the warm queue, received as the event source would (they stay invisible)."""
        sqs = boto3.client("sqs", region_name=self.sb.region)
        url = self.stack.physical["WarmQueue"]
        messages: list[dict[str, Any]] = []
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        ):
            messages += got
        return messages

    def deliver(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Hand received messages to warm_images as one SQS event."""
        arn = self.stack.physical["WarmQueue.Arn"]
        records = [sqs_record(m, arn, self.sb.region) for m in messages]
        return dict(self.stack.invoke("WarmImagesFunction", {"Records": records}, "sqs"))

    def collect(self) -> list[Report]:
        """Every report published so far (each read once from the subscribed queue)."""
        sqs = boto3.client("sqs", region_name=self.sb.region)
        while got := sqs.receive_message(QueueUrl=self.reader, MaxNumberOfMessages=10).get("Messages", []):
            for message in got:
                self.reports.append(Report.from_message(message["Body"]))
                sqs.delete_message(QueueUrl=self.reader, ReceiptHandle=message["ReceiptHandle"])
        return self.reports

    def reports_of(self, run_id: str) -> list[Report]:
        return [report for report in self.collect() if report.run_id == run_id]

    def report_of(self, run_id: str) -> Report:
        (report,) = self.reports_of(run_id)
        return report

    def age(self, hours: float) -> None:
        """Let `hours` pass for ECR (the sandbox registry's clock) and for the planner, whose clock is the wall clock:
        each tag's last look upstream in the ledger's memory moves back as much (a tag ECR holds is HEADed again
        only once that look is a day old, warm/decisions.py)."""
        self.sb.registry.clock.advance(hours=hours)
        ddb = boto3.client("dynamodb", region_name=self.sb.region)
        table = self.stack.physical["LedgerTable"]
        scan: dict[str, Any] = {
            "TableName": table,
            "FilterExpression": "begins_with(pk, :verified)",
            "ExpressionAttributeValues": {":verified": {"S": "VERIFIED#"}},
        }
        while True:
            page = ddb.scan(**scan)
            for item in page.get("Items", []):
                # One item per repository, one TAG#<tag> attribute per tag (aws/ledger/verified.py).
                for name, value in list(item.items()):
                    facts = json.loads(value["S"]) if name.startswith("TAG#") else {}
                    if facts.get("looked"):
                        looked = datetime.fromisoformat(facts["looked"]) - timedelta(hours=hours)
                        facts["looked"] = looked.isoformat()
                        item[name] = {"S": json.dumps(facts)}
                ddb.put_item(TableName=table, Item=item)
            if "LastEvaluatedKey" not in page:
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def pulls(self) -> int:
        """Manifest GETs the upstream has seen (what Docker Hub counts as pulls)."""
        return self.sb.upstream.counters[("GET", "manifest")]

    def ecr_events(self) -> int:
        """Deliver the events ECR sent since the last call through the template's rules (as EventBridge would)."""
        events = self.sb.registry.events.take()
        for event in events:
            self.stack.put_event(event)
        return len(events)

    def report_pull_failures(self) -> list[Report]:
        """Route ECR's events, let report_pull_failures take its queue; the pull failure reports it published."""
        before = len(self.collect())
        self.ecr_events()
        self.stack.drain("ReportPullFailuresFunction")
        return [report for report in self.collect()[before:] if report.kind is Kind.PULLS]
