"""SQS: send a run's jobs to the warm queue, ten to a SendMessageBatch call, retrying the entries SQS refuses;
and send one job back to look again later (`send_later`).

SendMessageBatch succeeds as a call while failing single entries (throttling, an internal error); those are sent
again with a growing pause, and the ones still refused after the last attempt raise, so a planner never believes
a job was queued when it was not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

BATCH_SIZE = 10  # SendMessageBatch's limit
# SendMessageBatch's total payload (the sum of its messages' lengths): 256 KiB in the SQS API reference, 1 MiB since
# SQS raised its message size; the smaller holds under either reading. A plan shard's message can be 100 KiB or more.
MAX_BATCH_BYTES = 262_144
ATTEMPTS = 4  # per entry, the first included
BACKOFF_SECONDS = 0.2


def send_batch(
    queue_url: str,
    bodies: Sequence[str],
    *,
    client: SQSClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send every body to `queue_url`; returns how many were sent. AwsError names the entries SQS kept refusing."""
    sqs = client if client is not None else clients.client("sqs", _region(queue_url))
    sent = 0
    for chunk in batches(bodies):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "MessageBody": body} for index, body in enumerate(chunk)
        ]
        failures: list[str] = []
        for attempt in range(ATTEMPTS):
            if attempt:
                sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            with aws_call("sqs:SendMessageBatch", queue_url):
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            sent += len(response.get("Successful") or [])
            failed = response.get("Failed") or []
            # A sender fault (a malformed entry) fails the same way every time; only SQS's own faults are retried.
            fatal = [f for f in failed if f.get("SenderFault")]
            if fatal:
                codes = ", ".join(sorted({str(f.get("Code")) for f in fatal}))
                raise AwsError(
                    "sqs:SendMessageBatch",
                    queue_url,
                    codes,
                    f"SQS refused {len(fatal)} job(s): {fatal[0].get('Message')}",
                )
            retry = {f["Id"] for f in failed}
            entries = [entry for entry in entries if entry["Id"] in retry]
            failures = [f"{f.get('Code')}: {f.get('Message')}" for f in failed]
            if not entries:
                break
        if entries:
            raise AwsError(
                "sqs:SendMessageBatch",
                queue_url,
                "EntriesFailed",
                f"{len(entries)} job(s) still refused after {ATTEMPTS} attempts ({failures[0]}); run the planner again",
            )
    return sent


def batches(bodies: Sequence[str]) -> list[list[str]]:
    """The bodies in order, in SendMessageBatch calls of at most BATCH_SIZE messages and MAX_BATCH_BYTES in all (a
    body larger than that alone goes in a call of its own, for SQS to refuse by name)."""
    calls: list[list[str]] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if not calls or len(calls[-1]) == BATCH_SIZE or size + length > MAX_BATCH_BYTES:
            calls.append([])
            size = 0
        calls[-1].append(body)
        size += length
    return calls


MAX_DELAY_SECONDS = 900  # SendMessage's DelaySeconds: 0 to 900 (the SQS API reference)


def send_later(queue_url: str, body: str, delay: int, *, client: SQSClient | None = None) -> None:
    """Send one body that becomes visible `delay` seconds from now (SQS's per-message delay, at most 15 minutes)."""
    sqs = client if client is not None else clients.client("sqs", _region(queue_url))
    with aws_call("sqs:SendMessage", queue_url):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=max(0, min(delay, MAX_DELAY_SECONDS)))


def _region(queue_url: str) -> str | None:
    # https://sqs.<region>.amazonaws.com/<account>/<name>; a queue in another region is called there.
    host = queue_url.split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    return parts[1] if len(parts) >= 4 and parts[0] == "sqs" else None


__all__ = ["BATCH_SIZE", "MAX_BATCH_BYTES", "MAX_DELAY_SECONDS", "batches", "send_batch", "send_later"]
