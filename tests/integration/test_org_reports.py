"""Reports across the organisation, end to end in moto with several accounts (sandbox/aws/accounts.py) and the hub's
bus taking other accounts' events as EventBridge does (sandbox/aws/moto_events.py):

two member accounts x two regions publish their warm reports through reporting.publish (their own topic first, then
the hub's bus, as their functions do with HUB_EVENT_BUS_ARN); the hub's rule puts them on gather_reports' queue; the
hub's gather_reports (its handler, with the hub's environment and config) records them in the ledger and publishes
one organisation report per cycle on the hub's topic, read back here from its JSON block.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullthrough.env import GatherEnv, HubSettings
from pullthrough.org import gather
from pullthrough.reporting import publish as publish_module
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome, Status
from sandbox.aws import accounts, moto_events
from sandbox.stack import Stack
from tests.fake_aws import fake_aws
from tests.integration.org_support import hub_bus, moto_sns_messages

HUB = accounts.DEFAULT_ACCOUNT
HUB_REGION = "us-east-1"
A, B = "444455556666", "777788889999"
OUTSIDER = "999900001111"
REGIONS = ("eu-west-1", "us-west-2")
ORG_ID = "o-a1b2c3d4e5"
BUS = "pullthrough-org-dev"
BUS_ARN = f"arn:aws:events:{HUB_REGION}:{HUB}:event-bus/{BUS}"
CONFIG = f"""version: 1
stack: org
rules:
  - {{prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}}
warm:
  schedule: rate(6 hours)
organization:
  id: {ORG_ID}
  hub: {{account: "{HUB}", region: {HUB_REGION}}}
  members:
    - name: prod
      accounts: ["{A}", "{B}"]
      regions: [eu-west-1, us-west-2]
      warm: [docker.io/library/nginx:1.27]
"""


@dataclass
class Hub:
    """The hub's queue (the bus rule's target), its report topic's subscriber queue, and gather_reports' env."""

    queue: str
    reports: str
    env: GatherEnv

    def gather(self) -> list[dict[str, Any]]:
        """Run gather_reports on every message the queue holds, ten at a time, as Lambda's poller would."""
        sqs = boto3.client("sqs", region_name=HUB_REGION)
        answers = []
        while messages := sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", []):
            records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
            answers.append(gather.handle({"Records": records}, None, self.env))
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return answers

    def published(self) -> list[Report]:
        """The hub's reports SNS delivered (raw) to the subscriber queue."""
        sqs = boto3.client("sqs", region_name=HUB_REGION)
        found = sqs.receive_message(QueueUrl=self.reports, MaxNumberOfMessages=10).get("Messages", [])
        return [Report.from_message(m["Body"]) for m in found]


def queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=HUB_REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """The hub as template.yaml deploys it with OrganizationId: the bus and its organisation policy, the rule to the
    queue, the ledger table, the report topic (subscribed by a queue here, to read the reports back)."""
    with fake_aws(HUB_REGION):
        members = {A, B, HUB}
        moto_events.install(lambda account: ORG_ID if account in members else None)
        events = boto3.client("events", region_name=HUB_REGION)
        events.create_event_bus(Name=BUS)
        statement = {
            "Sid": "OrganisationPutsReports",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": BUS_ARN,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
        }
        events.put_permission(EventBusName=BUS, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
        url, arn = queue("org-reports")
        pattern = {"source": ["pullthrough"], "detail-type": ["Pullthrough Report"]}
        events.put_rule(Name="org-reports", EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(Rule="org-reports", EventBusName=BUS, Targets=[{"Id": "org-reports", "Arn": arn}])
        boto3.client("dynamodb", region_name=HUB_REGION).create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = boto3.client("sns", region_name=HUB_REGION)
        topic = sns.create_topic(Name="reports")["TopicArn"]
        reports_url, reports_arn = queue("hub-reports")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=reports_arn, Attributes={"RawMessageDelivery": "true"})
        config = tmp_path / "pullthrough.yaml"
        config.write_text(CONFIG)
        env = GatherEnv.model_validate(
            {
                "ACCOUNT_ID": HUB,
                "AWS_REGION": HUB_REGION,
                "REPORT_TOPIC_ARN": topic,
                "LEDGER_TABLE": "ledger",
                "PULLTHROUGH_CONFIG": str(config),
            }
        )
        yield Hub(url, reports_url, env)


def warm_report(account: str, region: str, started: datetime, *, failed: bool = False) -> Report:
    items = [ReportItem(subject="docker.io/library/nginx:1.27", outcome=Outcome.WARMED)]
    if failed:
        items.append(
            ReportItem(
                subject="docker.io/library/redis:7.4",
                outcome=Outcome.FAILED,
                reason=f"ECR could not import from the hub: UpstreamAccessDenied (role pullthrough-org-ptc-{region})",
                fix=f"check the trust policy of pullthrough-org-ptc-{region} in account {account}",
                reason_code="UpstreamAccessDenied",
            )
        )
    return Report(
        kind=Kind.WARM,
        stack="org",
        region=region,
        account=account,
        run_id=f"warm-{account}-{region}-{started:%H%M}",
        trigger="schedule",
        started=started,
        items=tuple(items),
    )


def member_publishes(account: str, region: str, report: Report, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The member's function publishing its report: in its account (Lambda's credentials), to its own topic, then to
    the hub's bus (HUB_EVENT_BUS_ARN)."""
    with accounts.own_environment(account), monkeypatch.context() as patch:
        for name, value in {**accounts.environment(account, region), "AWS_REGION": region}.items():
            patch.setenv(name, value)
        topic = boto3.client("sns", region_name=region).create_topic(Name="reports")["TopicArn"]
        assert topic.split(":")[4] == account
        hub = HubSettings.model_validate({"HUB_EVENT_BUS_ARN": BUS_ARN, "PULLTHROUGH_MEMBER": "prod"})
        return publish_module.publish(report, topic, hub=hub)


def test_one_hub_report_covers_every_member_run_and_a_duplicate_counts_once(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two member accounts in two regions whose warm runs of this cycle report (one with a failure), one of them
    # delivered twice
    started = datetime.now(UTC)
    runs = [(a, r, warm_report(a, r, started, failed=(a, r) == (B, "eu-west-1"))) for a in (A, B) for r in REGIONS]
    for account, region, report in runs:
        assert member_publishes(account, region, report, monkeypatch) is not None  # its own topic took it
    member_publishes(A, "eu-west-1", runs[0][2], monkeypatch)
    # When the hub gathers what its bus received
    answers = hub.gather()
    # Then each member run is counted once, the duplicate not again
    counted: dict[str, int] = {}
    for answer in answers:
        assert answer["batchItemFailures"] == []
        for key, count in answer["counted"].items():
            counted[key] = counted.get(key, 0) + count
    assert counted == {"recorded": 4, "duplicate": 1}
    # And one organisation report covers every account and region, the failure with its account, region and fix
    [found] = hub.published()
    assert (found.kind, found.status, found.account, found.region) == (Kind.ORG, Status.FAILED, HUB, HUB_REGION)
    members = {(i.details.account, i.details.region) for i in found.items if i.outcome is Outcome.REPORTED}
    assert members == {(a, r) for a in (A, B) for r in REGIONS}
    [failure] = found.problems()
    assert failure.subject == f"{B}/eu-west-1 docker.io/library/redis:7.4"
    assert failure.reason_code == "UpstreamAccessDenied"
    assert failure.fix == f"check the trust policy of pullthrough-org-ptc-eu-west-1 in account {B}"


def test_a_member_that_did_not_report_is_named_after_the_deadline(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cycle two days ago in which three of the four member accounts and regions reported
    started = datetime.now(UTC) - timedelta(days=2)
    for account, region in [(A, "eu-west-1"), (A, "us-west-2"), (B, "us-west-2")]:
        member_publishes(account, region, warm_report(account, region, started), monkeypatch)
    hub.gather()
    assert hub.published() == []  # still waiting for the fourth
    # When the schedule closes the cycles whose deadline passed
    answer = gather.handle({"trigger": "close-cycles"}, None, hub.env)
    # Then the cycle is reported once, naming the member that did not report, with what to check
    assert len(answer["closed"]) == 1
    [found] = hub.published()
    [missing] = found.problems()
    assert (missing.outcome, missing.subject) == (Outcome.MISSING, f"prod {B}/eu-west-1")
    assert missing.fix is not None
    assert f"in account {B}, region eu-west-1" in missing.fix
    assert found.counts == {Outcome.MISSING: 1, Outcome.REPORTED: 3}
    assert gather.handle({"trigger": "close-cycles"}, None, hub.env) == {"closed": []}


def test_an_account_outside_the_organisation_is_refused_and_its_run_stands(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[int] = []
    monkeypatch.setattr(publish_module, "record_hub_report_not_sent", lambda: counted.append(1))
    report = warm_report(OUTSIDER, "eu-west-1", datetime.now(UTC))
    # Its own topic takes the report; the hub's bus policy (aws:PrincipalOrgID) refuses the event
    assert member_publishes(OUTSIDER, "eu-west-1", report, monkeypatch) is not None
    assert counted == [1]
    assert hub.gather() == []


# --- gather_reports as template.yaml deploys it -----------------------------------------------------------------------


def test_the_deployed_hub_gathers_and_reports_with_its_own_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's stack with OrganizationId: gather_reports drained from its queue (OrgReportsQueue) by Lambda's poller
    and closing cycles on its schedule, each call decided by its execution role (IAM enforced by the sandbox), its
    report on the stack's KMS-encrypted topic; the warm functions' HUB_EVENT_BUS_ARN names the hub's own bus."""
    config = tmp_path / "pullthrough.yaml"
    config.write_text(CONFIG)
    with fake_aws(HUB_REGION):
        moto_events.install(lambda account: ORG_ID if account in {A, B, HUB} else None)
        stack = Stack(
            parameters={"OrganizationId": ORG_ID, "OrgMembers": "1", "OrgRootId": "r-ab12"},
            extra_env={"PULLTHROUGH_CONFIG": str(config)},
        ).deploy()
        assert stack.environment("WarmImagesFunction")["HUB_EVENT_BUS_ARN"] == BUS_ARN
        assert stack.environment("PlanWarmingFunction")["HUB_EVENT_BUS_ARN"] == BUS_ARN
        # The bus and its rule as template.yaml declares them (the sandbox's CloudFormation does not create buses)
        assert hub_bus(stack) == BUS
        # Given this cycle's four member runs and an earlier cycle with one member missing
        now, earlier = datetime.now(UTC), datetime.now(UTC) - timedelta(days=2)
        for account in (A, B):
            for region in REGIONS:
                member_publishes(account, region, warm_report(account, region, now), monkeypatch)
                if (account, region) != (B, "us-west-2"):
                    member_publishes(account, region, warm_report(account, region, earlier), monkeypatch)
        # (and an account outside the organisation, which the bus's policy refuses)
        member_publishes(OUTSIDER, "eu-west-1", warm_report(OUTSIDER, "eu-west-1", now), monkeypatch)
        # When Lambda's poller drains the queue and the schedule fires
        assert stack.drain("GatherReportsFunction") == 7
        closed = stack.fire_schedule("GatherReportsFunction")
        # Then both cycles are reported, each once, through the function's own role
        assert len(closed["closed"]) == 1
        subjects = sorted(subject for subject, _ in moto_sns_messages(stack.physical["ReportTopic"]))
        assert subjects == [
            "FAILED pullthrough org org/us-east-1: 1 of 4 missing, 3 reported",
            "OK pullthrough org org/us-east-1: 4 reported",  # notifications.success: summary (the default)
        ]
