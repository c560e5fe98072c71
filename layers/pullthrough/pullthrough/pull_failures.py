"""Pulls that failed in ECR: heard from ECR's "ECR Pull Through Cache Action" events, recorded, reported in batches.

ECR sends the event (best effort) whenever it syncs a cache repository with its upstream, for warm runs and for every
consumer's own pull alike (the ECR guide's EventBridge page; failed ones carry `failure-code` and `failure-reason`).
template.yaml routes the FAILED ones to a queue; report_pull_failures takes them a batch at a time (the event source
waits up to five minutes to fill one), keeps those under the config's rule prefixes, records each in the ledger (so a
warm job waiting for an import can name what ECR said), and publishes one report per batch: who should act, on what,
and how. An operator then learns that consumers' pulls are failing before anyone files a ticket.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pullthrough import config as config_module
from pullthrough.config import Config
from pullthrough.env import PullFailuresEnv
from pullthrough.errors import EventError
from pullthrough.observability import logger
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.publish import publish
from pullthrough.reporting.vocabulary import Kind, Outcome
from pullthrough.warm.ledger import ledger_for

DETAIL_TYPE = "ECR Pull Through Cache Action"


@dataclass(frozen=True)
class PullFailure:
    """One failed sync of a cache repository with its upstream, as ECR reported it."""

    repository: str
    prefix: str
    upstream_url: str
    tag: str | None
    digest: str | None
    code: str
    reason: str
    at: datetime

    @property
    def image(self) -> str:
        """`repository:tag`, `repository@digest`, or the repository alone."""
        if self.tag:
            return f"{self.repository}:{self.tag}"
        return f"{self.repository}@{self.digest}" if self.digest else self.repository

    @classmethod
    def from_event(cls, event: Any) -> PullFailure:
        """Read a FAILED "ECR Pull Through Cache Action" event (EventError when it is not one)."""
        if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE:
            raise EventError(f'not an "{DETAIL_TYPE}" event')
        detail = event.get("detail")
        if not isinstance(detail, dict) or detail.get("sync-status") != "FAILED":
            raise EventError(f'an "{DETAIL_TYPE}" event without sync-status FAILED')
        repository = detail.get("repository-name")
        if not isinstance(repository, str) or not repository:
            raise EventError(f'an "{DETAIL_TYPE}" event without repository-name')
        try:
            at = datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
        except ValueError:
            at = datetime.now(UTC)
        return cls(
            repository=repository,
            prefix=str(detail.get("ecr-repository-prefix") or repository.split("/", 1)[0]),
            upstream_url=str(detail.get("upstream-registry-url") or ""),
            tag=_text(detail.get("image-tag")),
            digest=_text(detail.get("image-digest")),
            # AWS does not list the codes; an event without one is still a failure worth telling.
            code=_text(detail.get("failure-code")) or "Unknown",
            reason=_text(detail.get("failure-reason")) or "ECR gave no reason",
            at=at if at.tzinfo else at.replace(tzinfo=UTC),
        )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def fix_for(failure: PullFailure, config: Config | None) -> str:
    """What to do about a failure-code, naming the rule's secret where there is one."""
    rule = next((r for r in config.rules if r.prefix == failure.prefix), None) if config is not None else None
    secret = rule.secret_name if rule is not None else None
    if failure.code == "UpstreamAccessDenied":
        if secret:
            return (
                f"the upstream refuses the credentials in secret {secret}: store a working token with "
                f"`pullthrough credentials set {failure.prefix}` (check_credentials then validates the rule)"
            )
        return f"the upstream wants credentials for {failure.image}: give rule {failure.prefix} a credentials secret"
    if failure.code == "UpstreamTooManyRequests":
        return (
            "the upstream's rate limit was hit: authenticate the rule (a logged-in Docker Hub user gets more pulls), "
            "warm the images consumers pull (warm.images) so they are served from the cache, or pull less often"
        )
    if failure.code == "UpstreamUnavailable":
        return (
            "nothing to do if the upstream has an outage: images ECR already holds are still served; if it lasts, "
            "check the upstream's status page"
        )
    if failure.code == "ImageNotFound":
        return (
            f"{failure.image} is not on the upstream (a typo, or deleted there): fix the reference the consumer pulls, "
            "or pin a tag that exists"
        )
    return (
        "look at the ECR Pull Through Cache Action event in EventBridge, and whether ECR validates the rule "
        "(`pullthrough status`)"
    )


@dataclass(frozen=True)
class Batch:
    """One batch report_pull_failures took from its queue: the failures, how many records were unreadable, its run."""

    failures: Sequence[PullFailure]
    unreadable: int
    run_id: str
    started: datetime


def report(batch: Batch, *, config: Config | None, region: str, account: str) -> Report:
    """One report for a batch: one item per image and failure-code, with how often and when it last failed."""
    failures, unreadable = batch.failures, batch.unreadable
    groups: dict[tuple[str, str], list[PullFailure]] = {}
    for failure in failures:
        groups.setdefault((failure.image, failure.code), []).append(failure)
    items = []
    for (image, code), seen in sorted(groups.items()):
        last = max(seen, key=lambda f: f.at)
        times = f"{len(seen)} failed pulls, the last" if len(seen) > 1 else "a failed pull"
        items.append(
            ReportItem(
                subject=image,
                outcome=Outcome.FAILED,
                reason=f"{code}: {last.reason} ({times} at {last.at:%Y-%m-%d %H:%M:%S} UTC)",
                fix=fix_for(last, config),
                reason_code=code,
                details=Details(rule=last.prefix, repository=last.repository, digest=last.digest),
            )
        )
    notes = []
    if unreadable:
        notes.append(f"{unreadable} event(s) of the batch could not be read and were dropped (see the function's log)")
    return Report(
        kind=Kind.PULLS,
        stack=config.stack if config is not None else "pullthrough",
        region=region,
        account=account,
        run_id=batch.run_id,
        trigger=f"ECR Pull Through Cache Action events ({len(failures)} failed)",
        started=batch.started,
        finished=datetime.now(UTC),
        items=tuple(items),
        notes=tuple(notes),
    )


def read_batch(event: Any) -> tuple[list[PullFailure], int]:
    """The failures of an SQS batch of EventBridge events, and how many records could not be read.

    A record that is not a failure event fails the same way on every delivery: it is logged and dropped rather
    than returned to the queue.
    """
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise EventError("report_pull_failures takes an SQS batch ({'Records': [...]}) from its queue")
    failures: list[PullFailure] = []
    unreadable = 0
    for record in event["Records"]:
        try:
            body = json.loads(record.get("body") or "") if isinstance(record, dict) else None
            failures.append(PullFailure.from_event(body))
        except (ValueError, EventError) as exc:
            unreadable += 1
            message_id = record.get("messageId") if isinstance(record, dict) else None
            logger.error(f"an event of the batch is not a pull failure: {exc}", extra={"message_id": message_id})
    return failures, unreadable


def handle(event: Any, context: Any, env: PullFailuresEnv) -> dict[str, Any]:
    """report_pull_failures: record a batch of failed pulls in the ledger and publish one report for it."""
    started = datetime.now(UTC)
    failures, unreadable = read_batch(event)
    run_id = f"pulls-{started:%Y-%m-%dT%H-%M-%SZ}"
    logger.append_keys(run_id=run_id)
    if not failures and not unreadable:
        return {"run_id": run_id, "failures": 0}
    config = config_module.load(env.config_path)
    ours = {rule.prefix for rule in config.rules}
    # EventBridge sends every failed sync of the account; the rules of other tools are theirs to report.
    failures = [failure for failure in failures if failure.prefix in ours]
    if not failures and not unreadable:
        return {"run_id": run_id, "failures": 0}
    if failures:
        ledger_for(env).record_pull_failures(failures)
    batch = Batch(failures, unreadable, run_id, started)
    found = report(batch, config=config, region=env.region, account=env.account_id)
    # Sent as a warm run's report is: an SNS error fails the invocation; successes are not logged one by one.
    publish(found, env.topic_arn, config.notifications, strict=True, log_successes=False)
    return {"run_id": run_id, "failures": len(failures), "unreadable": unreadable, "items": len(found.items)}


__all__ = ["DETAIL_TYPE", "Batch", "PullFailure", "fix_for", "handle", "read_batch", "report"]
