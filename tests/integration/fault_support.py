"""A deployed stack for the fault tests: template.yaml in moto, two rules on the sandbox, and report helpers.

Imported by name by the fault modules. The world is warm_support.WarmHarness (shared with test_warming.py) with its
own rule prefixes, so proxies and storage never mix with other modules', plus what only the fault tests need:
releasing received jobs for redelivery and reading the dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pullthrough.aws import clients, ecr
from pullthrough.report import Outcome, Report, ReportItem
from sandbox import PushedImage, Sandbox, moto_ecr
from sandbox.stack import Stack
from tests.canary import canary_token
from tests.integration.warm_support import WarmHarness, secret_of, unique

HUB, GHCR = "fault-hub", "fault-ghcr"
LAYERS = (1200, 300)  # small: the tests are about faults, not bandwidth
WARM_OUTCOMES = (Outcome.WARMED, Outcome.ALREADY_CACHED, Outcome.REFRESHED, Outcome.DEFERRED, Outcome.FAILED)


class World(WarmHarness):
    """The fault tests' stack: their own rule prefixes, and a budget that never defers (faults, not budgets)."""

    HUB, GHCR = HUB, GHCR
    STACK_LABEL = "faults"
    LAYERS = LAYERS
    BUDGET_SHARE = 0.9

    def release(self, messages: list[dict[str, Any]], ids: set[str]) -> None:
        """End the visibility timeout of the received messages in `ids`, as time passing would: SQS delivers them
        again."""
        sqs = boto3.client("sqs", region_name=self.sb.region)
        url = self.stack.physical["WarmQueue"]
        for message in messages:
            if message["MessageId"] in ids:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the warm queue's dead-letter queue (received and deleted)."""
        sqs = boto3.client("sqs", region_name=self.sb.region)
        url = self.stack.physical["WarmDeadLetterQueue"]
        found: list[dict[str, Any]] = []
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in got:
                found.append(message)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found


def subject(image: PushedImage, registry: str = "docker.io") -> str:
    return f"{registry}/{image.repository}:{image.tag}"


def by_subject(report: Report) -> dict[str, ReportItem]:
    return {item.subject: item for item in report.items}


def accounted(summary: dict[str, Any], report: Report) -> bool:
    """Nothing lost: planned == warmed + already cached + refreshed + deferred + failed, in the report."""
    counts = report.counts
    return summary["planned"] == report.total == sum(counts.get(outcome, 0) for outcome in WARM_OUTCOMES)


def report_lines(report: Report, name: str) -> list[str]:
    """The body's lines about one subject: its line, and for a problem the Reason / Fix lines under it."""
    lines = report.body().splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"  - {name}: "):
            block = [line]
            for following in lines[index + 1 :]:
                if not following.startswith("    "):
                    break
                block.append(following)
            return block
        if line.startswith("  ") and line.split(maxsplit=1)[-1].startswith(name):
            return [line]
    return []


@contextmanager
def deployed(sandbox: Sandbox, workdir: Path) -> Iterator[World]:
    """template.yaml in moto with two rules whose secrets hold tokens the upstream accepts, and a report reader."""
    user = unique("fault-user-")
    sandbox.add_user(user, canary_token("fault"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": sandbox.region,
                "POWERTOOLS_METRICS_NAMESPACE": "Pullthrough",
            }.items():
                patch.setenv(key, value)
            for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
                patch.delenv(key, raising=False)
            with mock_aws():
                # Other modules may have pointed moto's cache operations elsewhere: point them at this sandbox.
                moto_ecr.install()
                moto_ecr.set_upstream_endpoints(sandbox.upstream_endpoints())
                moto_ecr.set_cache_storage(sandbox.ecr.storage_dir)
                clients.clear()
                ecr.forget_authorization()
                secrets, registry = boto3.client("secretsmanager"), boto3.client("ecr")
                for prefix, upstream, url in (
                    (HUB, "docker-hub", "registry-1.docker.io"),
                    (GHCR, "github-container-registry", "ghcr.io"),
                ):
                    arn = secrets.create_secret(
                        Name=secret_of(prefix),
                        SecretString=json.dumps({"username": user, "accessToken": sandbox.users[user]}),
                    )["ARN"]
                    registry.create_pull_through_cache_rule(
                        ecrRepositoryPrefix=prefix,
                        upstreamRegistryUrl=url,
                        upstreamRegistry=upstream,
                        credentialArn=arn,
                    )
                stack = Stack(account=sandbox.account, region=sandbox.region, extra_env=dict(sandbox.env())).deploy()
                sns, sqs = boto3.client("sns"), boto3.client("sqs")
                reader = sqs.create_queue(QueueName="fault-report-reader")["QueueUrl"]
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
                    yield World(sandbox, stack, user, workdir, reader)
                finally:
                    clients.clear()
                    ecr.forget_authorization()
    finally:
        sandbox.remove_user(user)
