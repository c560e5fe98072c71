"""AWS faults, injected into the boto3 clients the library uses: throttling, AccessDenied, a missing secret, a KMS
key that will not decrypt, and SQS delivering a finished job again.

A fault is a botocore `before-send` hook on the cached client of `pullthrough.aws.clients`, registered ahead of
moto's own and aimed at one resource (a repository, a secret) by the request's parameters: it answers as AWS does
(HTTP 400 and the error document), so botocore's retry handler sees it and retries it as it would against AWS.
botocore's waits between retries are taken out (`ExponentialBackoff.delay_amount` returns 0); the attempts are
what the tests assert. Everything else goes to moto, and the registries are the sandbox's.

For each fault: the outcome and reason, the report line, and that every other image, rule and secret is unaffected
(a warm run of three images through two rules, or a credentials check of both rules' secrets); for warm runs,
that nothing is lost: planned == warmed + already cached + refreshed + deferred + failed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.retries import standard

from pullthrough.aws import clients
from pullthrough.env import Settings
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.job import MAX_RECEIVES
from pullthrough.warm.run import ledger_for
from sandbox import PushedImage, Sandbox
from tests.integration.fault_support import (
    GHCR,
    HUB,
    World,
    accounted,
    by_subject,
    report_lines,
    subject,
)
from tests.integration.warm_support import secret_of, unique

pytestmark = pytest.mark.sandbox


class _Body:
    """The raw body botocore reads an answer from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class Injected:
    """A fault on one operation of one client, for requests whose `field` is `value`; `calls` counts them."""

    service: str
    operation: str
    field: str
    value: str
    code: str
    calls: int = 0

    def answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        """AWS's answer to a refused JSON-protocol call, for the aimed-at resource only (None: on to moto)."""
        sent = str(json.loads(request.body or b"{}").get(self.field, ""))
        # A secret is asked for by name or by ARN (arn:...:secret:<name>-<6 random characters>).
        if sent != self.value and not (sent.startswith("arn:") and f":secret:{self.value}-" in sent):
            return None
        self.calls += 1
        document = {"__type": self.code, "message": f"{self.code} (injected by the test)"}
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": f"fault-{self.calls}"}
        return AWSResponse(request.url, 400, headers, _Body(json.dumps(document).encode()))


@contextmanager
def injected(region: str, *faults: Injected) -> Iterator[None]:
    """Register the faults on the library's clients (ahead of moto's handler); remove them afterwards."""
    hooks: list[tuple[Any, str, Callable[..., Any]]] = []
    try:
        for fault in faults:
            client = clients.client(fault.service, region)  # type: ignore[call-overload]
            event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{fault.operation}"
            client.meta.events.register_first(event, fault.answer)
            hooks.append((client, event, fault.answer))
        yield
    finally:
        for client, event, handler in hooks:
            client.meta.events.unregister(event, handler)


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World.deployed(sandbox, tmp_path_factory.mktemp("aws-faults")) as deployed_world:
        yield deployed_world


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries as it would against AWS, without the waits between attempts."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


# --- warm runs -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One AWS fault in a warm run of three images: two through the Docker Hub rule, one through the GHCR rule."""

    name: str
    service: Literal["ecr", "secretsmanager"]
    operation: str
    code: str
    target: Literal["hub", "ghcr"]  # the image whose repository (ecr) or whose rule's secret is refused
    reason_code: str
    says: str  # in the target's Reason line
    fix: str  # in its Fix line
    calls: int  # refused requests, botocore's retries (and SQS's redeliveries) included


ATTEMPTS = clients.RETRY_ATTEMPTS  # botocore's, in all: the first try and the retries

MATRIX = [
    Row(
        "throttling while planning (DescribeImages)",
        "ecr",
        "DescribeImages",
        "ThrottlingException",
        "hub",
        "error",
        "ecr:DescribeImages on",
        "the next run retries it",
        calls=ATTEMPTS,
    ),
    Row(
        "throttling while warming (BatchCheckLayerAvailability)",
        "ecr",
        "BatchCheckLayerAvailability",
        "ThrottlingException",
        "hub",
        "error",
        "AwsThrottled: ecr:BatchCheckLayerAvailability on",
        "the next run retries it",
        calls=ATTEMPTS * MAX_RECEIVES,  # each SQS delivery retried by botocore; the last one reports
    ),
    Row(
        "AccessDenied on the rule's secret",
        "secretsmanager",
        "GetSecretValue",
        "AccessDeniedException",
        "ghcr",
        "auth",
        "cannot be read (AccessDeniedException)",
        f"let the function's role read secret {secret_of(GHCR)}",
        calls=1,
    ),
    Row(
        "SecretNotFound",
        "secretsmanager",
        "GetSecretValue",
        "ResourceNotFoundException",
        "ghcr",
        "auth",
        "cannot be read (ResourceNotFoundException)",
        f"create secret {secret_of(GHCR)}",
        calls=1,
    ),
    Row(
        "KMS decrypt failure",
        "secretsmanager",
        "GetSecretValue",
        "DecryptionFailure",
        "ghcr",
        "auth",
        "cannot be read (DecryptionFailure)",
        "kms:Decrypt on its KMS key",
        calls=1,
    ),
]


def three_images(world: World) -> dict[str, tuple[PushedImage, str]]:
    """Two images through the Docker Hub rule and one through the GHCR rule, configured; name -> (image, subject)."""
    ns = unique("aws")
    hub, other, ghcr = (world.push(f"{ns}/{name}") for name in ("hub", "other", "ghcr"))
    world.configure([f"{hub.repository}:1.0", f"{other.repository}:1.0", f"ghcr.io/{ghcr.repository}:1.0"])
    return {
        "hub": (hub, subject(hub)),
        "other": (other, subject(other)),
        "ghcr": (ghcr, subject(ghcr, "ghcr.io")),
    }


@pytest.mark.parametrize("row", MATRIX, ids=[row.name for row in MATRIX])
def test_an_aws_fault_fails_only_what_it_touches_and_every_image_is_accounted_for(world: World, row: Row) -> None:
    # Given three images through two rules, and AWS refusing one call about one of them
    images = three_images(world)
    image, target = images[row.target]
    if row.service == "ecr":
        fault = Injected("ecr", row.operation, "repositoryName", f"{HUB}/{image.repository}", row.code)
    else:
        fault = Injected("secretsmanager", row.operation, "SecretId", secret_of(GHCR), row.code)
    # When a warm run goes through (SQS redelivering what failed, as the event source does)
    with injected(world.sb.region, fault):
        summary, report = world.run()
    # Then the image it touched ends failed with the reason, and its report line says what AWS said and what to do
    items = by_subject(report)
    item = items[target]
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, row.reason_code), item.reason
    assert row.code in (item.reason or "")
    lines = "\n".join(report_lines(report, target))
    assert f"  - {target}: failed" in lines
    assert f"Reason: {item.reason}" in lines
    assert row.says in lines
    assert row.fix in (item.fix or "")
    # And AWS was asked as often as botocore's retries (and SQS's deliveries) allow
    assert fault.calls == row.calls
    # And the other images, of both rules, were warmed
    others = {name: items[name].outcome for _, name in images.values() if name != target}
    assert others == dict.fromkeys(others, Outcome.WARMED)
    # And nothing is lost, in the run's one report
    assert accounted(summary, report)
    assert summary["planned"] == 3


def test_a_throttle_that_ends_before_the_last_delivery_only_delays_the_image(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a planned run of three images, and AWS throttling one repository's layer checks on the first delivery
    caplog.set_level(logging.WARNING)
    images = three_images(world)
    image, _ = images["hub"]
    fault = Injected("ecr", "BatchCheckLayerAvailability", "repositoryName", f"{HUB}/{image.repository}", "Throttling")
    summary = world.plan()
    batch = world.receive()
    with injected(world.sb.region, fault):
        first = world.deliver(batch)
    # ...so that job alone goes back to the queue, and the run is not reported yet
    (failed,) = first["batchItemFailures"]
    assert image.repository in next(m["Body"] for m in batch if m["MessageId"] == failed["itemIdentifier"])
    assert world.reports_of(summary["run_id"]) == []
    # ...and the function's log says which error sent it back (not only Powertools' DEBUG line)
    (logged,) = [r for r in caplog.records if r.levelno == logging.WARNING and r.exc_info]
    assert "AwsThrottled" in logged.getMessage() + repr(logged.exc_info[1])
    # When SQS delivers it again once its visibility timeout ends
    world.release(batch, {failed["itemIdentifier"]})
    world.drain()
    # Then it is warmed on the second delivery, and the run is reported once with every image warmed
    report = world.report_of(summary["run_id"])
    assert {name: item.outcome for name, item in by_subject(report).items()} == {
        name: Outcome.WARMED for _, name in images.values()
    }
    assert fault.calls == ATTEMPTS


def test_sqs_delivering_a_finished_job_again_counts_it_once_and_reports_once(world: World) -> None:
    # Given a run whose two jobs were warmed and reported
    images = three_images(world)
    world.configure([f"{images['hub'][0].repository}:1.0", f"ghcr.io/{images['ghcr'][0].repository}:1.0"])
    first = world.plan()
    delivered = world.receive()
    assert world.deliver(delivered) == {"batchItemFailures": []}
    assert len(world.reports_of(first["run_id"])) == 1
    # ...and a new run with a job of its own
    world.configure([f"{images['other'][0].repository}:1.0"])
    second = world.plan()
    fresh = world.receive()
    pulls = world.pulls()
    # When SQS delivers one finished job again, in the same batch as the new run's job
    again = world.deliver([delivered[0], *fresh])
    # Then nothing fails; the finished job is not warmed again (the new job is the only pull)
    assert again == {"batchItemFailures": []}
    assert world.pulls() - pulls == 1
    # And the first run still counts each job once and has its one report; the new run is unaffected
    ledger = ledger_for(Settings.from_env(world.stack.environment("WarmImagesFunction")))
    state = ledger.run(first["run_id"])
    assert state is not None
    assert (state.planned, state.done, state.counts) == (2, 2, {"warmed": 2})
    assert len(world.reports_of(first["run_id"])) == 1
    report = world.report_of(second["run_id"])
    assert [(i.subject, i.outcome) for i in report.items] == [(images["other"][1], Outcome.WARMED)]
    assert accounted(second, report)


@dataclass
class Refusal:
    """SNS refusing Publish `times` times, as AWS answers (a ClientError botocore raises), counted in `calls`."""

    code: str
    times: int = 1
    calls: int = 0

    def answer(self, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        # A `before-call` handler's answer short-circuits the request: botocore raises it as AWS's error.
        if self.calls >= self.times:
            return None
        self.calls += 1
        status = type("Http", (), {"status_code": 400, "headers": {}})()
        return status, {"Error": {"Code": self.code, "Message": "refused by the test"}, "ResponseMetadata": {}}


def test_a_report_whose_publish_failed_goes_out_once_from_the_closing_jobs_redelivery_alone(world: World) -> None:
    # Given a run of two jobs, the first warmed and counted
    images = three_images(world)
    world.configure([f"{images['hub'][0].repository}:1.0", f"{images['other'][0].repository}:1.0"])
    run = world.plan()
    first, closing = world.receive()
    assert world.deliver([first]) == {"batchItemFailures": []}
    # ...and the job that completes the run, whose report SNS refuses once
    refusal = Refusal("KMSThrottling")
    sns = clients.client("sns", world.sb.region)
    sns.meta.events.register_first("before-call.sns.Publish", refusal.answer)
    try:
        failed = world.deliver([closing])
    finally:
        sns.meta.events.unregister("before-call.sns.Publish", refusal.answer)
    assert (failed, refusal.calls) == ({"batchItemFailures": [{"itemIdentifier": closing["MessageId"]}]}, 1)
    assert world.reports_of(run["run_id"]) == []
    # When SQS delivers the other job again first: it is counted once and publishes nothing
    assert world.deliver([first]) == {"batchItemFailures": []}
    assert world.reports_of(run["run_id"]) == []
    # Then the closing job's redelivery publishes the report, once, with both images
    assert world.deliver([closing]) == {"batchItemFailures": []}
    (report,) = world.reports_of(run["run_id"])
    assert sorted(i.outcome for i in report.items) == [Outcome.WARMED, Outcome.WARMED]
    # And any later delivery of either job publishes nothing more
    assert world.deliver([first, closing]) == {"batchItemFailures": []}
    assert len(world.reports_of(run["run_id"])) == 1


# --- credentials checks ----------------------------------------------------------------------------------------------

SECRET = f"secret {secret_of(GHCR)} (AWSCURRENT)"  # how the credentials report names the refused secret
GRANT = "grant secretsmanager:DescribeSecret and GetSecretValue on the secret (and kms:Decrypt on its key)"

# (row, operations refused, AWS's code, the secret's outcome, words of its Reason line, of its Fix line, calls)
SECRET_FAULTS = [
    (
        "AccessDenied",
        ("GetSecretValue",),
        "AccessDeniedException",
        Outcome.UNREACHABLE,
        "AccessDeniedException",
        GRANT,
        1,
    ),
    (
        "KMS decrypt failure",
        ("GetSecretValue",),
        "DecryptionFailure",
        Outcome.UNREACHABLE,
        "DecryptionFailure",
        GRANT,
        1,
    ),
    (
        "throttling",
        ("GetSecretValue",),
        "ThrottlingException",
        Outcome.UNREACHABLE,
        "AWS still refused after retries",
        "retry; if it persists",
        ATTEMPTS,
    ),
    (
        "SecretNotFound",
        ("DescribeSecret", "GetSecretValue"),
        "ResourceNotFoundException",
        Outcome.INVALID,
        "does not exist in account",
        f"create it with `pullthrough credentials set {GHCR}`",
        2,  # DescribeSecret (for its tags, then for the check) says so; the value is never asked for
    ),
]


class SecretFault(NamedTuple):
    """One row of SECRET_FAULTS after its id."""

    operations: tuple[str, ...]
    code: str
    outcome: Outcome
    says: str
    fix: str
    calls: int


@pytest.mark.parametrize("fault", [pytest.param(SecretFault(*row[1:]), id=row[0]) for row in SECRET_FAULTS])
def test_the_daily_credentials_check_names_the_secret_it_cannot_read_and_checks_the_others(
    world: World, fault: SecretFault
) -> None:
    operations, code, outcome, says, fix, calls = fault
    # Given both rules' secrets, and Secrets Manager refusing the GHCR rule's
    world.configure([])
    faults = [Injected("secretsmanager", op, "SecretId", secret_of(GHCR), code) for op in operations]
    # When the daily check runs
    with injected(world.sb.region, *faults):
        result = world.stack.fire_schedule("CheckCredentialsFunction")
    report = world.report_of(result["run_id"])
    items = {item.subject: item for item in report.items}
    # Then the refused secret is reported with what AWS said and what to do about it
    refused = items[SECRET]
    assert (refused.outcome, refused.details.secret) == (outcome, secret_of(GHCR))
    lines = "\n".join(report_lines(report, SECRET))
    assert f"Reason: {refused.reason}" in lines
    assert says in lines
    assert fix in (refused.fix or "")
    assert sum(fault.calls for fault in faults) == calls
    # And the other secret is valid, and both rules were re-validated by ECR, which reads the secrets itself
    assert {subject: item.outcome for subject, item in items.items() if subject != SECRET} == {
        f"secret {secret_of(HUB)} (AWSCURRENT)": Outcome.VALID,
        f"rule {HUB}": Outcome.VALID,
        f"rule {GHCR}": Outcome.VALID,
    }
