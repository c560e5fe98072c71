"""Publish a run's report to the SNS topic."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.reporting.model import Report, SuccessVerbosity

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def publish(
    report: Report,
    topic_arn: str,
    client: SNSClient | None = None,
    *,
    success: SuccessVerbosity = "full",
    subject_prefix: str | None = None,
) -> str | None:
    """Publish `report` to `topic_arn`; returns the MessageId, or None when success reports are off and it is OK.

    `success` and `subject_prefix` are the config's notifications.success and notifications.subject_prefix.
    """
    message = report.message(success, subject_prefix)
    if message is None:
        return None
    sns = client if client is not None else clients.client("sns", _region(topic_arn))
    with aws_call("sns:Publish", topic_arn):
        response = sns.publish(
            TopicArn=topic_arn,
            Subject=message.subject,
            Message=message.body,
            MessageAttributes={
                name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                for name, value in message.attributes.items()
            },
        )
    return response["MessageId"]


def _region(arn: str) -> str | None:
    # arn:<partition>:sns:<region>:<account>:<topic>; a topic in another region is published to there.
    parts = arn.split(":")
    return parts[3] if len(parts) >= 6 and parts[2] == "sns" and parts[3] else None
