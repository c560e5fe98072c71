"""Malformed events for every handler: a logged, reported rejection, never a crash loop.

How each trigger retries decides what a rejection must be:
- EventBridge and Scheduler (reconcile_rules, check_credentials, plan_warming) invoke asynchronously and retry an
  invocation that raised twice more. A malformed event fails alike each time, so these handlers return a
  `Rejection` (status REJECTED) instead of raising, log it at ERROR and publish a one-item report.
- Secrets Manager (rotate_credentials) must see a step it cannot run fail, so that it marks the rotation failed
  and AWSCURRENT keeps its value: the handler logs, reports and raises an error that names what is wrong.
- SQS (warm_images): a message that is not a warm job fails its own record only (partial batch response), is
  delivered maxReceiveCount (3) times, then the redrive policy moves it to the dead-letter queue, which keeps it
  for inspection and has an alarm. It is not deleted at once: it cannot be tied to a run, so no run report would
  account for it, and the dead-letter queue is the only place it stays visible; if it was a real job whose body
  was mangled, its run's ledger item stays pending and the next planner closes the run with it as not finished.

Each event reaches the handler the way Lambda would hand it over (sandbox/stack.py's `invoke`, with the function's
environment from template.yaml): an EventBridge rule that matches too much, or a person invoking by hand.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pullthrough.errors import EventError, PullthroughError
from pullthrough.reporting.rejection import REASON_CODE
from pullthrough.reporting.vocabulary import Kind, Outcome, Status
from pullthrough.warm.worker import MAX_RECEIVES
from sandbox import Sandbox
from tests.integration.fault_support import HUB, World, accounted, by_subject, subject
from tests.integration.warm_support import secret_of, unique

pytestmark = pytest.mark.sandbox

RECONCILE, CHECK, PLAN = "ReconcileRulesFunction", "CheckCredentialsFunction", "PlanWarmingFunction"
ROTATE, WARM = "RotateCredentialsFunction", "WarmImagesFunction"
KINDS = {RECONCILE: Kind.RULES, CHECK: Kind.CREDENTIALS, PLAN: Kind.WARM, ROTATE: Kind.CREDENTIALS}


def bridge(source: str, detail_type: str, detail: Any) -> dict[str, Any]:
    """An event in EventBridge's envelope."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-23T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


S3_OBJECT_CREATED = bridge("aws.s3", "Object Created", {"bucket": {"name": "photos"}, "object": {"key": "a.jpg"}})

# (function, case, event, words the rejection's reason carries)
BRIDGE_CASES = [
    (RECONCILE, "wrong source", S3_OBJECT_CREATED, "detail-type 'Object Created' is not one reconcile_rules handles"),
    (
        RECONCILE,
        "missing fields",
        bridge("aws.cloudformation", "CloudFormation Stack Status Change", {"status-details": {}}),
        "without detail.stack-id and detail.status-details.status",
    ),
    (
        RECONCILE,
        "an ECR call it does not repair",
        bridge("aws.ecr", "AWS API Call via CloudTrail", {"eventName": "CreateRepository"}),
        "CloudTrail eventName 'CreateRepository' is not one reconcile_rules repairs",
    ),
    (RECONCILE, "a manual event with an unknown field", {"dryrun": True}, "field(s) dryrun not understood"),
    (RECONCILE, "not an object", ["reconcile"], "must be a JSON object, not list"),
    (CHECK, "wrong source", S3_OBJECT_CREATED, "not detail-type 'Object Created'"),
    (
        CHECK,
        "missing fields",
        bridge("aws.secretsmanager", "AWS API Call via CloudTrail", {"eventName": "PutSecretValue"}),
        "PutSecretValue event without a secret id",
    ),
    (CHECK, "not an object", ["check"], "a JSON object), not a list"),
    (PLAN, "wrong source", S3_OBJECT_CREATED, "does not understand the keys"),
    (
        PLAN,
        "rules of the wrong type",
        bridge("pullthrough", "Pullthrough Rules Reconciled", {"rules": HUB}),
        "detail.rules must be a list of prefixes",
    ),
    (
        PLAN,
        "detail of the wrong type",
        bridge("pullthrough", "Pullthrough Rules Reconciled", "all of them"),
        "detail must be an object",
    ),
    (
        PLAN,
        "schedule resources of the wrong type",
        {**bridge("aws.events", "Scheduled Event", {}), "resources": "every-hour"},
        "resources must be a list",
    ),
    (PLAN, "images of the wrong type", {"images": "nginx:1.27"}, '"images" must be a list'),
    (PLAN, "not an object", ["plan"], "takes a JSON object, not list"),
]


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World.deployed(sandbox, tmp_path_factory.mktemp("malformed")) as deployed_world:
        deployed_world.configure([])
        yield deployed_world


def errors(caplog: pytest.LogCaptureFixture, *words: str) -> list[logging.LogRecord]:
    """ERROR records whose message carries every one of `words`."""
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and all(word in record.getMessage() for word in words)
    ]


def rules_in_ecr() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return rules


@pytest.mark.parametrize(
    ("function", "event", "says"),
    [pytest.param(function, event, says, id=f"{function}: {case}") for function, case, event, says in BRIDGE_CASES],
)
def test_an_eventbridge_handler_answers_a_malformed_event_with_a_logged_reported_rejection(
    world: World, caplog: pytest.LogCaptureFixture, function: str, event: Any, says: str
) -> None:
    # Given an event the function does not take, and the account's rules as they are
    caplog.set_level(logging.INFO)
    before = rules_in_ecr()
    # When it is delivered as EventBridge delivers it (an exception here would make Lambda retry it twice)
    result = world.stack.invoke(function, event, "eventbridge")
    # Then the handler answers with a rejection that says what is wrong and what to do
    assert (result["status"], result["function"]) == ("REJECTED", world.stack.physical[function])
    assert says in result["reason"]
    assert "template.yaml" in result["fix"]
    # And it is logged at ERROR, with the reason, under the rejection's run id
    (logged,) = errors(caplog, "rejected", says)
    assert getattr(logged, "run_id", None) == result["run_id"]
    # And one report says so on the topic: one skipped item with the reason and the fix
    (report,) = world.reports_of(result["run_id"])
    assert (report.kind, report.status) == (KINDS[function], Status.WARNING)
    (item,) = report.items
    assert (item.outcome, item.reason_code) == (Outcome.SKIPPED, REASON_CODE)
    assert says in (item.reason or "")
    assert f"Fix: {item.fix}" in report.body()
    # And nothing else happened: no job queued, no rule touched
    assert world.receive() == []
    assert rules_in_ecr() == before


def test_check_credentials_leaves_a_secret_outside_the_prefix_alone(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a change to a secret ECR pull-through cache would never read
    caplog.set_level(logging.INFO)
    event = bridge(
        "aws.secretsmanager",
        "AWS API Call via CloudTrail",
        {"eventName": "PutSecretValue", "requestParameters": {"secretId": "team/database-password"}},
    )
    # When it arrives
    result = world.stack.invoke(CHECK, event, "eventbridge")
    # Then nothing is checked and nothing is reported, and the log says why (not as an error: it is no mistake)
    assert result["secrets"] == []
    assert "is not under ecr-pullthroughcache/" in result["ignored"]
    assert world.reports_of(result["run_id"]) == []
    assert [r.getMessage() for r in caplog.records if "nothing to check" in r.getMessage()] == ["nothing to check"]
    assert errors(caplog, "team/database-password") == []


def rotation_event(step: str = "createSecret", secret: str = secret_of(HUB), **changes: Any) -> dict[str, Any]:
    event = {"Step": step, "SecretId": secret, "ClientRequestToken": str(uuid.uuid4())}
    event.update(changes)
    return {key: value for key, value in event.items() if value is not None}


ROTATION_CASES = [
    ("unknown step", rotation_event("rotateSecret"), "Step: Input should be 'createSecret'"),
    ("missing SecretId", rotation_event(SecretId=None), "SecretId: Field required"),
    ("missing ClientRequestToken", rotation_event(ClientRequestToken=None), "ClientRequestToken: Field required"),
    ("not an object", ["createSecret"], "not a Secrets Manager rotation event"),
]


@pytest.mark.parametrize(
    ("event", "says"), [pytest.param(event, says, id=case) for case, event, says in ROTATION_CASES]
)
def test_a_rotation_step_it_cannot_run_fails_clearly_and_is_reported(
    world: World, caplog: pytest.LogCaptureFixture, event: Any, says: str
) -> None:
    # Given a rotation event Secrets Manager could not have sent, and the secret's current value
    caplog.set_level(logging.INFO)
    current = current_value(secret_of(HUB))
    # When it reaches the rotation function
    with pytest.raises(EventError) as raised:
        world.stack.invoke(ROTATE, event)
    # Then it fails (Secrets Manager then marks the rotation failed), naming the field and the four steps
    assert says in str(raised.value)
    assert "expected Step (createSecret, setSecret, testSecret or finishSecret)" in str(raised.value)
    # And it is logged at ERROR and reported once, and the current value is untouched
    (logged,) = errors(caplog, "rejected", says)
    (report,) = world.reports_of(logged.run_id)  # type: ignore[attr-defined]
    assert [(i.outcome, i.reason_code) for i in report.items] == [(Outcome.SKIPPED, REASON_CODE)]
    assert current_value(secret_of(HUB)) == current


def test_rotating_a_secret_outside_the_prefix_is_refused_and_reported(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a secret outside ecr-pullthroughcache/ whose rotation was (wrongly) pointed at this function
    caplog.set_level(logging.INFO)
    name = unique("team/app-")
    boto3.client("secretsmanager").create_secret(
        Name=name, SecretString=json.dumps({"username": "bot", "accessToken": "unused-by-this-test"})
    )
    # When Secrets Manager asks it to create the new version
    with pytest.raises(PullthroughError) as raised:
        world.stack.invoke(ROTATE, rotation_event(secret=name))
    # Then the step fails with the fix, is logged and reported, and the secret keeps its value
    assert "ECR pull-through cache reads only secrets named ecr-pullthroughcache/" in str(raised.value)
    assert errors(caplog, "rotation step failed")
    (report,) = [r for r in world.collect() if any(name in i.subject for i in r.items)]
    (item,) = report.items
    assert (item.outcome, item.reason_code) == (Outcome.ROTATION_FAILED, "wrong_prefix")
    assert json.loads(current_value(name))["username"] == "bot"


def current_value(secret: str) -> str:
    value: str = boto3.client("secretsmanager").get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")[
        "SecretString"
    ]
    return value


# --- warm_images: SQS ------------------------------------------------------------------------------------------------

NOT_SQS_CASES = [
    ("an EventBridge event", bridge("aws.events", "Scheduled Event", {}), "not detail-type 'Scheduled Event'"),
    ("no Records", {"images": ["nginx:1.27"]}, "not an event with keys images"),
    ("empty Records", {"Records": []}, "takes an SQS batch (a non-empty Records list)"),
    (
        "SNS records",
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]},
        "takes SQS records only (eventSource aws:sqs), not records from aws:sns",
    ),
    ("S3 records", {"Records": [{"eventSource": "aws:s3"}]}, "not records from aws:s3"),
    ("not an object", ["warm"], "not a list, not a JSON object"),
]


@pytest.mark.parametrize(("event", "says"), [pytest.param(event, says, id=case) for case, event, says in NOT_SQS_CASES])
def test_warm_images_answers_an_event_that_is_not_an_sqs_batch_with_a_logged_reported_rejection(
    world: World, caplog: pytest.LogCaptureFixture, event: Any, says: str
) -> None:
    # Given an event that is not an SQS batch (someone invoked warm_images by hand, or wired another source to it)
    caplog.set_level(logging.INFO)
    # When it reaches warm_images
    result = world.stack.invoke(WARM, event)
    # Then the answer is Pullthrough's own rejection, saying what it takes and how to send it, not Powertools' error
    assert (result["status"], result["function"]) == ("REJECTED", world.stack.physical[WARM])
    assert says in result["reason"]
    assert "through the warm queue" in result["reason"]
    # And it is logged at ERROR and reported once, and nothing was warmed or queued
    (logged,) = errors(caplog, "rejected", says)
    assert getattr(logged, "run_id", None) == result["run_id"]
    (report,) = world.reports_of(result["run_id"])
    assert [(i.outcome, i.reason_code) for i in report.items] == [(Outcome.SKIPPED, REASON_CODE)]
    assert world.receive() == []


NOT_JSON = "warm this one too please {"
WRONG_SHAPE = json.dumps({"image": "nginx:1.27", "priority": "high"})


def test_malformed_sqs_messages_fail_alone_and_end_in_the_dead_letter_queue(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a planned run with one job, and on the same queue: a body that is not JSON, a JSON body that is not a
    # warm job, and a well-formed job of a run the ledger does not know
    caplog.set_level(logging.INFO)
    image = world.sb.push_image(unique("sqs/app"), "1.0", layer_sizes=(512,))
    world.configure([f"{image.repository}:1.0"])
    summary = world.plan()
    sqs = boto3.client("sqs")
    queue = world.stack.physical["WarmQueue"]
    (job,) = world.receive()
    stray = json.loads(job["Body"]) | {"run_id": "warm-never-planned", "key": "stray"}
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=job["ReceiptHandle"], VisibilityTimeout=0)
    bad = {sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"] for body in (NOT_JSON, WRONG_SHAPE)}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(stray))
    # When warm_images gets them all in one batch
    batch = world.receive()
    first = world.deliver(batch)
    # Then only the malformed records fail (the batch's other records are not retried with them)
    assert {failure["itemIdentifier"] for failure in first["batchItemFailures"]} == bad
    # And the run is warmed and reported once, accounting for its image; the stray job is dropped with a warning
    report = world.report_of(summary["run_id"])
    assert by_subject(report)[subject(image)].outcome is Outcome.WARMED
    assert accounted(summary, report)
    assert [r for r in caplog.records if "not part of any run" in r.getMessage()]
    # When the failed records come back (their visibility timeout ends) and the event source delivers them until the
    # queue is empty
    world.release(batch, bad)
    world.drain()
    # Then each malformed message was delivered MAX_RECEIVES times, rejected at ERROR each time (by message id,
    # never its body), and now waits in the dead-letter queue; nothing else did, and no second report went out
    for message_id in bad:
        assert len(errors(caplog, message_id, "is not a warm job")) == MAX_RECEIVES
    assert not [r for r in caplog.records if NOT_JSON in r.getMessage() or "priority" in r.getMessage()]
    assert {message["Body"] for message in world.dead_letters()} == {NOT_JSON, WRONG_SHAPE}
    assert world.receive() == []
    assert len(world.reports_of(summary["run_id"])) == 1
