"""Reports across the organisation (pullthrough/org/): the cycle a run belongs to, the member's event (its shape and
its fit under PutEvents' 256 KB), who the hub waits for, and the hub's gathering: a report counted once, a cycle
closed and reported once, a member that did not report named after the deadline.

The hub's ledger is moto's DynamoDB (the table's key schema as template.yaml's LedgerTable); SNS is replaced by a
recorder of the reports `publish` was given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullthrough import config as config_module
from pullthrough.aws.ledger.cycles import Cycles, MemberReport, Recorded
from pullthrough.aws.stacksets import StackInstance
from pullthrough.env import GatherEnv, HubSettings, hub_settings
from pullthrough.errors import AwsError, EventError
from pullthrough.org import gather
from pullthrough.org.cycles import cycle_id, cycle_of, deadline_of
from pullthrough.org.event import DETAIL_TYPE, MAX_DETAIL_BYTES, SOURCE, HubEvent, detail_for
from pullthrough.org.expected import Expected, expected
from pullthrough.reporting import publish as publish_module
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome, Status
from tests.fake_aws import fake_aws

HUB = "111122223333"
A, B = "444455556666", "777788889999"
REGIONS = ("eu-west-1", "us-west-2")
T0 = datetime(2026, 12, 7, 6, 0, 12, tzinfo=UTC)  # a run started 12 s into the 06:00 slot of rate(6 hours)
TABLE = "ledger"
CONFIG = f"""version: 1
stack: org
rules:
  - {{prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}}
warm:
  schedule: rate(6 hours)
organization:
  id: o-a1b2c3d4e5
  hub: {{account: "{HUB}", region: us-east-1}}
  members:
    - name: prod
      accounts: ["{A}", "{B}"]
      regions: [eu-west-1, us-west-2]
      warm: [docker.io/library/nginx:1.27]
"""


def config_of(text: str = CONFIG) -> config_module.Config:
    return config_module.parse(text)


def warm_report(account: str, region: str, *, failed: int = 0, warmed: int = 2, run: str = "") -> Report:
    items = [ReportItem(subject=f"docker.io/library/app{i}:1", outcome=Outcome.WARMED) for i in range(warmed)]
    items += [
        ReportItem(
            subject=f"docker.io/library/bad{i}:1",
            outcome=Outcome.FAILED,
            reason="ECR refused the import: UpstreamAccessDenied (role pullthrough-org-ptc-eu-west-1)",
            fix="give the member role ecr:BatchImportUpstreamImage on the hub's repositories",
            reason_code="UpstreamAccessDenied",
        )
        for i in range(failed)
    ]
    return Report(
        kind=Kind.WARM,
        stack="org",
        region=region,
        account=account,
        run_id=run or f"warm-{account}-{region}",
        trigger="schedule",
        started=T0,
        items=tuple(items),
    )


def envelope(report: Report, *, sender: str | None = None, member: str = "prod") -> dict[str, Any]:
    """The event as the hub's queue receives it: EventBridge's envelope around the member's detail."""
    detail = json.loads(detail_for(report, member=member, schedule="rate(6 hours)"))
    return {"source": SOURCE, "detail-type": DETAIL_TYPE, "account": sender or report.account, "detail": detail}


# --- the cycle -----------------------------------------------------------------------------------------------------


def test_a_rate_cycle_is_the_slot_the_run_started_in() -> None:
    assert cycle_id(cycle_of(T0, "rate(6 hours)")) == "2026-12-07T06:00:00Z"
    assert cycle_id(cycle_of(T0 + timedelta(hours=5, minutes=59), "rate(6 hours)")) == "2026-12-07T06:00:00Z"
    assert cycle_id(cycle_of(T0 + timedelta(hours=6), "rate(6 hours)")) == "2026-12-07T12:00:00Z"
    assert cycle_id(cycle_of(T0, "rate(1 day)")) == "2026-12-07T00:00:00Z"
    assert deadline_of(cycle_of(T0, "rate(6 hours)"), "rate(6 hours)") == datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_a_cron_cycle_is_the_latest_slot_at_or_before_the_start() -> None:
    assert cycle_id(cycle_of(T0, "cron(30 3,15 * * ? *)")) == "2026-12-07T03:30:00Z"
    assert cycle_id(cycle_of(T0.replace(hour=2), "cron(30 3,15 * * ? *)")) == "2026-12-06T15:30:00Z"
    assert cycle_id(cycle_of(T0, "cron(0 */4 ? * MON-FRI *)")) == "2026-12-07T04:00:00Z"
    # the next slot, at least an hour on
    assert deadline_of(datetime(2026, 12, 7, 3, 30, tzinfo=UTC), "cron(30 3,15 * * ? *)") == datetime(
        2026, 12, 7, 15, 30, tzinfo=UTC
    )
    assert deadline_of(datetime(2026, 12, 7, 3, tzinfo=UTC), "cron(0/5 * * * ? *)") == datetime(
        2026, 12, 7, 4, tzinfo=UTC
    )


# --- the member's event --------------------------------------------------------------------------------------------


def test_the_event_carries_the_contract_detail() -> None:
    event = HubEvent.from_envelope(envelope(warm_report(A, "eu-west-1", failed=1)))
    assert (event.account, event.region, event.member, event.kind) == (A, "eu-west-1", "prod", Kind.WARM)
    assert event.cycle == "2026-12-07T06:00:00Z"
    assert event.report.counts == {Outcome.FAILED: 1, Outcome.WARMED: 2}
    assert event.trimmed is None


def test_a_member_cannot_report_for_another_account() -> None:
    with pytest.raises(EventError, match=f"account {B} sent a report for account {A}"):
        HubEvent.from_envelope(envelope(warm_report(A, "eu-west-1"), sender=B), hub_account=HUB)


def test_the_hub_may_report_a_members_region_it_warmed() -> None:
    event = HubEvent.from_envelope(envelope(warm_report(A, "eu-west-1"), sender=HUB), hub_account=HUB)
    assert (event.account, event.region) == (A, "eu-west-1")


def test_a_report_too_large_for_one_event_keeps_its_failures_and_counts_the_rest() -> None:
    report = warm_report(A, "eu-west-1", warmed=3000, failed=40)
    assert len(report.to_json().encode()) > MAX_DETAIL_BYTES  # the whole report would not fit
    detail = detail_for(report, member="prod", schedule="rate(6 hours)")
    assert len(detail.encode()) <= MAX_DETAIL_BYTES
    event = HubEvent.model_validate_json(detail)
    assert [i.outcome for i in event.report.items] == [Outcome.FAILED] * 40
    assert event.report.unlisted == {Outcome.WARMED: 3000}
    assert event.report.counts == report.counts
    assert event.trimmed is not None
    assert "40 item(s) kept" in event.trimmed


def test_even_too_many_failures_are_cut_to_fit() -> None:
    report = warm_report(A, "eu-west-1", warmed=0, failed=2500)
    detail = detail_for(report, member="prod", schedule="rate(6 hours)")
    # as many failures as fit: the entry is nearly full, not cut far below the limit
    assert 0.9 * MAX_DETAIL_BYTES < len(detail.encode()) <= MAX_DETAIL_BYTES
    event = HubEvent.model_validate_json(detail)
    assert 0 < len(event.report.items) < 2500
    assert event.report.counts == {Outcome.FAILED: 2500}
    assert event.report.status is Status.FAILED


@dataclass
class Bus:
    """events.put_to_bus as the member calls it; `refuse` makes EventBridge refuse."""

    refuse: bool = False
    put: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, bus: str, detail_type: str, detail: str) -> str:
        if self.refuse:
            raise AwsError("events:PutEvents", bus, "AccessDeniedException", "not authorized")
        self.put.append((bus, detail_type, detail))
        return "event-1"


BUS_ARN = f"arn:aws:events:us-east-1:{HUB}:event-bus/pullthrough-org-dev"


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Bus:
    found = Bus()
    monkeypatch.setattr(publish_module.events, "put_to_bus", found)
    monkeypatch.setattr(publish_module.sns, "publish", lambda *a, **k: "message-1")
    return found


def test_publish_puts_the_report_on_the_hub_bus_after_sns(bus: Bus) -> None:
    hub = HubSettings(HUB_EVENT_BUS_ARN=BUS_ARN, PULLTHROUGH_MEMBER="prod")
    assert publish_module.publish(warm_report(A, "eu-west-1"), "arn:aws:sns:eu-west-1:1:t", hub=hub) == "message-1"
    assert [(b, t) for b, t, _ in bus.put] == [(BUS_ARN, DETAIL_TYPE)]
    assert json.loads(bus.put[0][2])["member"] == "prod"


def test_publish_puts_nothing_without_a_hub(bus: Bus) -> None:
    publish_module.publish(warm_report(A, "eu-west-1"), "arn:aws:sns:eu-west-1:1:t", hub=HubSettings())
    assert bus.put == []


def test_a_dry_run_puts_nothing_on_the_hub_bus(bus: Bus) -> None:
    report = warm_report(A, "eu-west-1").model_copy(update={"dry_run": True})
    publish_module.publish(report, "arn:aws:sns:eu-west-1:1:t", hub=HubSettings(HUB_EVENT_BUS_ARN=BUS_ARN))
    assert bus.put == []


def test_the_hub_settings_follow_the_environment_read_once_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_EVENT_BUS_ARN", BUS_ARN)
    assert hub_settings() is hub_settings()
    assert hub_settings().hub_event_bus_arn == BUS_ARN
    monkeypatch.delenv("HUB_EVENT_BUS_ARN")
    assert hub_settings().hub_event_bus_arn is None


def test_a_refused_event_is_counted_and_the_run_stands(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    bus.refuse = True
    counted: list[int] = []
    monkeypatch.setattr(publish_module, "record_hub_report_not_sent", lambda: counted.append(1))
    hub = HubSettings(HUB_EVENT_BUS_ARN=BUS_ARN)
    assert publish_module.publish(warm_report(A, "eu-west-1"), "arn:aws:sns:eu-west-1:1:t", hub=hub) == "message-1"
    assert counted == [1]


def test_the_hub_reads_the_bus_from_the_environment() -> None:
    assert HubSettings.from_env({"HUB_EVENT_BUS_ARN": BUS_ARN, "OTHER": "x"}).hub_event_bus_arn == BUS_ARN
    assert HubSettings.from_env({}).hub_event_bus_arn is None


# --- whom the hub waits for ----------------------------------------------------------------------------------------

OU_CONFIG = CONFIG.replace(f'accounts: ["{A}", "{B}"]', "organizational_units: [ou-ab12-11111111]") + (
    """    - name: idle
      accounts: ["222233334444"]
      regions: [eu-west-1]
"""
)


def test_listed_accounts_are_expected_in_each_region_of_a_member_with_a_warm_list() -> None:
    found = expected(config_of(), lambda: [], "pullthrough-members-dev")
    assert set(found.members) == {(a, r) for a in (A, B) for r in REGIONS}


def test_ou_members_come_from_the_stackset_and_members_without_a_warm_list_are_not_waited_for() -> None:
    instances = [
        StackInstance(A, "eu-west-1", "CURRENT", organizational_unit="ou-ab12-11111111"),
        StackInstance(
            A, "ap-south-1", "CURRENT", organizational_unit="ou-ab12-11111111"
        ),  # not one of the member's regions
        StackInstance(B, "us-west-2", "CURRENT", organizational_unit="ou-ab12-99999999"),  # another OU's
        StackInstance(
            "222233334444", "eu-west-1", "CURRENT", organizational_unit=None
        ),  # the idle member: no warm list
    ]
    found = expected(config_of(OU_CONFIG), lambda: instances, "pullthrough-members-dev")
    assert found.members == {(A, "eu-west-1"): "prod"}


def test_an_unlisted_stackset_is_said_with_the_fix() -> None:
    def refused() -> list[StackInstance]:
        raise AwsError("cloudformation:ListStackInstances", "StackSet x", "AccessDenied", "not authorized")

    found = expected(config_of(OU_CONFIG), refused, "pullthrough-members-dev")
    assert found.members == {}
    assert "cloudformation:ListStackInstances on pullthrough-members-dev" in found.notes[0]


# --- the hub's gathering -------------------------------------------------------------------------------------------


@pytest.fixture
def ledger() -> Iterator[Cycles]:
    with fake_aws("us-east-1"):
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Cycles.in_table(TABLE)


@dataclass
class Hub:
    """gather_reports over moto's table, with the config, the members expected and the reports it published."""

    gatherer: gather.Gatherer
    published: list[Report]
    now: list[datetime]


@pytest.fixture
def hub(ledger: Cycles, monkeypatch: pytest.MonkeyPatch) -> Hub:
    published: list[Report] = []
    monkeypatch.setattr(gather, "publish", lambda report, *a, **k: published.append(report))
    env = GatherEnv.model_validate(
        {"ACCOUNT_ID": HUB, "REPORT_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t", "LEDGER_TABLE": TABLE}
    )
    config = config_of()
    now = [T0]
    gatherer = gather.Gatherer(
        ledger, env, lambda: config, lambda c: expected(c, lambda: [], env.stack_set()), lambda: now[0]
    )
    return Hub(gatherer, published, now)


def sqs_batch(*envelopes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"messageId": f"m{i}", "body": json.dumps(e)} for i, e in enumerate(envelopes)]


def test_one_hub_report_when_every_member_reported(hub: Hub) -> None:
    reports = [warm_report(a, r, failed=1 if (a, r) == (B, "us-west-2") else 0) for a in (A, B) for r in REGIONS]
    for report in reports[:3]:
        assert hub.gatherer.take(envelope(report)) is Recorded.RECORDED
        assert hub.published == []  # not every expected member yet
    assert hub.gatherer.take(envelope(reports[3])) is Recorded.RECORDED
    [found] = hub.published
    assert found.kind is Kind.ORG
    assert found.status is Status.FAILED
    assert found.counts == {Outcome.FAILED: 1, Outcome.REPORTED: 4}
    [failure] = found.problems()
    assert failure.subject == f"{B}/us-west-2 docker.io/library/bad0:1"
    assert (failure.details.account, failure.details.region, failure.reason_code) == (
        B,
        "us-west-2",
        "UpstreamAccessDenied",
    )
    assert failure.fix
    assert "ecr:BatchImportUpstreamImage" in failure.fix
    summary = {(i.details.account, i.details.region): i.details.counts for i in found.successes()}
    assert summary[(A, "eu-west-1")] == {Outcome.WARMED: 2}
    assert summary[(B, "us-west-2")] == {Outcome.FAILED: 1, Outcome.WARMED: 2}
    # the cycle is reported and no longer open: the schedule has nothing left to close
    hub.now[0] = T0 + timedelta(days=1)
    assert hub.gatherer.sweep() == []
    assert len(hub.published) == 1


def test_a_duplicate_event_is_counted_once(hub: Hub) -> None:
    report = warm_report(A, "eu-west-1")
    answer = gather.take_batch(hub.gatherer, sqs_batch(envelope(report), envelope(report)))
    assert answer == {"batchItemFailures": [], "counted": {"recorded": 1, "duplicate": 1}}
    assert len(hub.gatherer.cycles.reports("2026-12-07T06:00:00Z")) == 1


def test_a_member_missing_at_the_deadline_is_named_with_the_fix(hub: Hub) -> None:
    for account, region in [(A, "eu-west-1"), (A, "us-west-2"), (B, "eu-west-1")]:
        hub.gatherer.take(envelope(warm_report(account, region)))
    assert hub.gatherer.sweep() == []  # before the deadline: still waiting
    hub.now[0] = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert hub.gatherer.sweep() == ["2026-12-07T06:00:00Z"]
    [found] = hub.published
    [missing] = found.problems()
    assert (missing.outcome, missing.subject) == (Outcome.MISSING, f"prod {B}/us-west-2")
    assert missing.reason
    assert "by its deadline 2026-12-07 12:00 UTC" in missing.reason
    assert missing.fix
    assert "HUB_EVENT_BUS_ARN" in missing.fix
    assert found.counts == {Outcome.MISSING: 1, Outcome.REPORTED: 3}
    # the late report counts for nothing, and nothing is reported twice
    assert hub.gatherer.take(envelope(warm_report(B, "us-west-2"))) is Recorded.CLOSED
    assert hub.gatherer.sweep() == []
    assert len(hub.published) == 1


def test_the_cycle_closes_once_whoever_tries(hub: Hub) -> None:
    for account in (A, B):
        for region in REGIONS:
            hub.gatherer.take(envelope(warm_report(account, region)))
    assert len(hub.published) == 1
    # every later attempt, by a redelivered record or by the schedule, finds it closed and reported
    assert hub.gatherer.close_if_complete("2026-12-07T06:00:00Z", by=f"{A}/eu-west-1/warm-{A}-eu-west-1") is None
    hub.now[0] = T0 + timedelta(days=1)
    assert hub.gatherer.sweep() == []
    assert len(hub.published) == 1


def test_a_close_whose_publish_failed_is_published_by_its_redelivery(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise AwsError("sns:Publish", "t", "KMSAccessDenied", "no key")

    reports = [warm_report(a, r) for a in (A, B) for r in REGIONS]
    for report in reports[:3]:
        hub.gatherer.take(envelope(report))
    monkeypatch.setattr(gather, "publish", refused)
    answer = gather.take_batch(hub.gatherer, sqs_batch(envelope(reports[3])))
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m0"}]
    monkeypatch.setattr(gather, "publish", lambda report, *a, **k: hub.published.append(report))
    assert gather.take_batch(hub.gatherer, sqs_batch(envelope(reports[3])))["counted"] == {"duplicate": 1}
    assert len(hub.published) == 1


def test_reports_other_than_warm_are_not_part_of_a_cycle(hub: Hub) -> None:
    rules = warm_report(A, "eu-west-1").model_copy(update={"kind": Kind.RULES})
    assert hub.gatherer.take(envelope(rules)) is None
    assert hub.gatherer.cycles.open_cycles() == []


def test_an_unreadable_event_is_dropped_not_retried(hub: Hub) -> None:
    answer = gather.take_batch(hub.gatherer, [{"messageId": "m0", "body": "{not json"}])
    assert answer == {"batchItemFailures": [], "counted": {"skipped": 1}}


def test_expected_is_empty_without_an_organization() -> None:
    plain = CONFIG.split("organization:")[0]
    assert expected(config_of(plain), lambda: [], "x") == Expected()


def test_two_closers_racing_publish_once(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    for account in (A, B):
        for region in REGIONS:
            hub.gatherer.cycles.record("2026-12-07T06:00:00Z", T0 + timedelta(hours=6), _entry(account, region))
    cycles = hub.gatherer.cycles
    seen_open = cycles.state("2026-12-07T06:00:00Z")
    assert hub.gatherer.close_if_complete("2026-12-07T06:00:00Z", by="first") is not None
    # the second closer read the cycle open before the first closed it
    monkeypatch.setattr(type(cycles), "state", lambda self, cycle: seen_open)
    assert hub.gatherer.close_if_complete("2026-12-07T06:00:00Z", by="second") is None
    assert len(hub.published) == 1


def _entry(account: str, region: str) -> MemberReport:
    report = warm_report(account, region)
    return MemberReport(account, region, report.run_id, "prod", "warm", report.to_json())


def test_a_report_sns_refused_in_strict_mode_goes_nowhere_else(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise AwsError("sns:Publish", "t", "KMSAccessDenied", "no key")

    monkeypatch.setattr(publish_module.sns, "publish", refused)
    hub = HubSettings(HUB_EVENT_BUS_ARN=BUS_ARN)
    with pytest.raises(AwsError):
        publish_module.publish(warm_report(A, "eu-west-1"), "arn:aws:sns:eu-west-1:1:t", strict=True, hub=hub)
    assert bus.put == []  # the run is retried until its own report is sent; the hub's copy follows it


def test_the_sample_events_are_what_gather_reports_takes() -> None:
    samples = Path(__file__).resolve().parents[2] / "events" / "gather_reports"
    batch = json.loads((samples / "member_report.json").read_text())
    [record] = batch["Records"]
    event = HubEvent.from_envelope(json.loads(record["body"]), hub_account=HUB)
    assert (event.kind, event.cycle, event.member) == (Kind.WARM, "2026-12-07T06:00:00Z", "prod-eu")
    assert json.loads((samples / "close_cycles.json").read_text()) == {"trigger": gather.CLOSE_TRIGGER}
