"""Publishing reports to SNS (pullthrough/aws/sns.py) under moto, with an SQS queue subscribed as a reader.

The queue subscription uses raw message delivery, so the queue receives the body and the message attributes exactly
as SNS was given them, the way a filtering subscriber would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from pullthrough.aws import clients
from pullthrough.aws.sns import publish
from pullthrough.errors import AwsNotFound
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.render import MAX_MESSAGE_BYTES
from pullthrough.reporting.vocabulary import Kind, Outcome, Status
from tests.fake_aws import fake_aws

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass
class Topic:
    arn: str
    queue_url: str
    sns: SNSClient
    sqs: SQSClient

    def received(self) -> list[dict[str, Any]]:
        """Messages waiting on the subscribed queue (moto delivers synchronously, so no waiting is needed)."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        return list(response.get("Messages", []))


@pytest.fixture
def topic() -> Iterator[Topic]:
    with fake_aws(REGION):
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        arn = sns.create_topic(Name="pullthrough-reports")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="report-reader")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        yield Topic(arn=arn, queue_url=queue_url, sns=sns, sqs=sqs)


def warm_report(*items: ReportItem) -> Report:
    return Report(
        kind=Kind.WARM,
        stack="pullthrough-dev",
        region=REGION,
        account="123456789012",
        run_id="warm-run-7",
        trigger="schedule",
        started=T0,
        finished=T0 + timedelta(minutes=1),
        items=items,
    )


WARMED = ReportItem(
    subject="docker.io/library/nginx:1.27",
    outcome=Outcome.WARMED,
    details=Details(rule="docker-hub", upstream="docker-hub", repository="docker-hub/library/nginx"),
)
FAILED = ReportItem(
    subject="docker.io/library/nginx:9.9",
    outcome=Outcome.FAILED,
    reason="unknown tag 9.9 (HTTP 404)",
    fix="remove it from warm.images",
)


def test_a_published_report_reaches_a_subscriber_with_its_attributes(topic: Topic) -> None:
    # Given a failed warm report
    report = warm_report(WARMED, FAILED)
    # When it is published through the default client
    message_id = publish(report, topic.arn)
    # Then the queue holds exactly that message: body, attributes for filtering, and the JSON block
    [received] = topic.received()
    assert message_id
    assert received["MessageId"]
    assert received["Body"] == report.body()
    attributes = {name: value["StringValue"] for name, value in received["MessageAttributes"].items()}
    assert attributes == {"kind": "warm", "status": "FAILED", "stack": "pullthrough-dev"}
    assert Report.from_message(received["Body"]) == report


def test_the_subject_reaches_sns(topic: Topic) -> None:
    # Given a subscriber that receives the SNS envelope (not raw) / When a report is published
    queue_url = topic.sqs.create_queue(QueueName="envelope-reader")["QueueUrl"]
    arn = topic.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic.sns.subscribe(TopicArn=topic.arn, Protocol="sqs", Endpoint=arn)
    report = warm_report(WARMED)
    publish(report, topic.arn, client=topic.sns)
    # Then the envelope carries the rendered subject
    [received] = topic.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    envelope = json.loads(received["Body"])
    assert envelope["Subject"] == report.subject() == "OK pullthrough warm pullthrough-dev/us-east-1: 1 warmed"


def test_success_off_publishes_nothing(topic: Topic) -> None:
    assert publish(warm_report(WARMED), topic.arn, client=topic.sns, success="off") is None
    assert topic.received() == []


def test_success_summary_publishes_one_line(topic: Topic) -> None:
    publish(warm_report(WARMED), topic.arn, client=topic.sns, success="summary")
    [received] = topic.received()
    assert received["Body"] == "OK pullthrough warm pullthrough-dev/us-east-1: 1 warmed. Run warm-run-7."
    assert received["MessageAttributes"]["status"]["StringValue"] == "OK"


def test_failures_are_published_even_when_success_reports_are_off(topic: Topic) -> None:
    report = warm_report(FAILED)
    publish(report, topic.arn, client=topic.sns, success="off")
    [received] = topic.received()
    assert received["MessageAttributes"]["status"]["StringValue"] == "FAILED"


def test_a_huge_report_is_accepted_by_sns_and_parses_back(topic: Topic) -> None:
    # Given 20,000 failed images
    items = tuple(
        ReportItem(
            subject=f"docker.io/example/app-{i}:1.0",
            outcome=Outcome.FAILED,
            reason=f"auth: registry-1.docker.io refused the rule's credentials for example/app-{i} (HTTP 401)",
            fix="store a working token: pullthrough credentials set docker-hub",
            reason_code="auth",
        )
        for i in range(20_000)
    )
    report = warm_report(*items)
    # When it is published / Then SNS accepts it and the subscriber reads a summary that parses back
    publish(report, topic.arn, client=topic.sns)
    [received] = topic.received()
    assert len(received["Body"].encode()) <= MAX_MESSAGE_BYTES
    parsed = Report.from_message(received["Body"])
    assert parsed.status is Status.FAILED
    assert parsed.counts == {Outcome.FAILED: 20_000}
    assert 0 < len(parsed.items) < 20_000
    assert parsed.truncated == 20_000 - len(parsed.items)


def test_a_missing_topic_is_reported_with_operation_and_arn(topic: Topic) -> None:
    missing = topic.arn + "-gone"
    with pytest.raises(AwsNotFound) as caught:
        publish(warm_report(WARMED), missing, client=topic.sns)
    assert caught.value.operation == "sns:Publish"
    assert caught.value.resource == missing
    assert missing in str(caught.value)


def test_clients_are_cached_per_service_and_region(topic: Topic) -> None:
    assert clients.client("sns", REGION) is clients.client("sns", REGION)
    assert clients.client("sns", "eu-west-1") is not clients.client("sns", REGION)
    assert clients.client("sns", "eu-west-1").meta.region_name == "eu-west-1"
    config = clients.client("sqs", REGION).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": clients.RETRY_ATTEMPTS}
    assert (config.connect_timeout, config.read_timeout) == (clients.CONNECT_TIMEOUT, clients.READ_TIMEOUT)
