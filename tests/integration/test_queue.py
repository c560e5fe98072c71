"""Sending warm jobs (pullthrough/aws/queue.py): ten to a SendMessageBatch, refused entries sent again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pullthrough.aws.queue import send_batch
from pullthrough.errors import AwsError
from tests.fake_aws import fake_aws

REGION = "us-east-1"


@pytest.fixture
def queue_url() -> Iterator[str]:
    with fake_aws(REGION):
        yield boto3.client("sqs", region_name=REGION).create_queue(QueueName="jobs")["QueueUrl"]


class Flaky:
    """SendMessageBatch that refuses some entries (SQS's own fault) a number of times, then takes them."""

    def __init__(self, refusals: int, sender_fault: bool = False) -> None:
        self.refusals = refusals
        self.sender_fault = sender_fault
        self.batches: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append([entry["MessageBody"] for entry in Entries])
        if self.refusals > 0:
            self.refusals -= 1
            failed = Entries[:1]
            code = "InvalidMessageContents" if self.sender_fault else "InternalError"
            return {
                "Successful": [{"Id": e["Id"]} for e in Entries[1:]],
                "Failed": [
                    {"Id": e["Id"], "Code": code, "Message": "m", "SenderFault": self.sender_fault} for e in failed
                ],
            }
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_jobs_go_out_ten_to_a_call_and_all_arrive(queue_url: str) -> None:
    # Given 23 job bodies, When they are sent
    bodies = [f'{{"n": {i}}}' for i in range(23)]
    sent = send_batch(queue_url, bodies)
    # Then every one arrives
    sqs = boto3.client("sqs", region_name=REGION)
    received: list[str] = []
    while got := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        received += [m["Body"] for m in got]
    assert sent == 23
    assert sorted(received) == sorted(bodies)


def test_entries_sqs_refuses_are_sent_again_with_a_growing_pause() -> None:
    # Given SQS refusing one entry of the batch twice
    client, slept = Flaky(refusals=2), []
    # When 12 bodies are sent
    sent = send_batch(
        "https://sqs.us-east-1.amazonaws.com/1/q", [str(i) for i in range(12)], client=client, sleep=slept.append
    )  # type: ignore[arg-type]
    # Then the refused entry went again alone, after growing pauses, and every body counted once
    assert sent == 12
    assert [len(batch) for batch in client.batches] == [10, 1, 1, 2]
    assert slept == [0.2, 0.4]


def test_entries_still_refused_after_the_last_attempt_raise() -> None:
    client = Flaky(refusals=100)
    with pytest.raises(AwsError, match="still refused after 4 attempts"):
        send_batch("https://sqs.us-east-1.amazonaws.com/1/q", ["a", "b"], client=client, sleep=lambda _: None)  # type: ignore[arg-type]


def test_a_malformed_entry_is_not_retried() -> None:
    client = Flaky(refusals=1, sender_fault=True)
    with pytest.raises(AwsError, match="InvalidMessageContents"):
        send_batch("https://sqs.us-east-1.amazonaws.com/1/q", ["a", "b"], client=client, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(client.batches) == 1


def test_large_messages_go_out_in_calls_within_sqs_total_payload(queue_url: str) -> None:
    # Given twelve plan-shard-sized messages of 100 KiB each (ten of them are more than a SendMessageBatch may carry)
    bodies = [f'{{"n": {i}, "pad": "{"x" * (100 * 1024)}"}}' for i in range(12)]
    flaky = Flaky(refusals=0)
    # When they are sent
    sent = send_batch(queue_url, bodies, client=flaky)  # type: ignore[arg-type]
    # Then every call stays within 256 KiB in all, and every message goes out once, in order
    assert sent == 12
    assert all(sum(len(b.encode()) for b in batch) <= 256 * 1024 for batch in flaky.batches)
    assert [b for batch in flaky.batches for b in batch] == bodies


def test_a_queue_refusing_a_batch_over_its_payload_limit_still_gets_every_shard(queue_url: str) -> None:
    # Given moto's SQS, which refuses a SendMessageBatch over its total payload (1 MiB), and eleven 110 KiB messages
    bodies = [f'{{"n": {i}, "pad": "{"x" * (110 * 1024)}"}}' for i in range(11)]
    # When they are sent, Then all arrive
    assert send_batch(queue_url, bodies) == 11
