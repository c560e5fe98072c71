"""A deployed stack for the fault tests: template.yaml in moto, two rules on the sandbox, and report helpers.

Imported by name by the fault modules. The world is warm_support.WarmHarness (shared with test_warming.py) with its
own rule prefixes, so proxies and storage never mix with other modules', plus what only the fault tests need:
releasing received jobs for redelivery and reading the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

import boto3

from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from sandbox import PushedImage
from tests.integration.warm_support import WarmHarness

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
