"""The hub's side of warming the organisation's members (pullthrough/warm/members.py, warm/warmer.py, aws/clients.py):
whom it plans (accounts x regions, units through the StackSet's instances, an instance not CURRENT failed with its
fix), the jobs' target, a refused warm role failing with the role and the fix, an image the member holds left alone,
and the assumed keys reused until shortly before they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pullthrough import config as config_module
from pullthrough.aws import clients
from pullthrough.aws import ecr as ecr_adapter
from pullthrough.aws.ecr import EcrImage
from pullthrough.aws.ledger import RunNotifications, RunTarget
from pullthrough.aws.stacksets import StackInstance
from pullthrough.env import HubSettings, Settings
from pullthrough.errors import AwsAccessDenied
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm import run as run_module
from pullthrough.warm.importing import Wait
from pullthrough.warm.members import hub_config, member_config, member_plan, member_request, member_targets
from pullthrough.warm.planner import Planner
from pullthrough.warm.request import WarmRequest
from pullthrough.warm.run import RunHeader, warm_report
from pullthrough.warm.warmer import Warmer

HUB = "111122223333"
A, B, C = "444455556666", "555566667777", "666677778888"
UNIT = "ou-ab12-11111111"
STACK_SET = "pullthrough-members-dev"
CONFIG = f"""version: 1
rules:
  - {{prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}}
organization:
  id: o-a1b2c3d4e5
  hub: {{account: "{HUB}", region: us-east-1}}
  members:
    - {{name: listed, accounts: ["{A}"], regions: [eu-west-1, us-west-2], warm: [docker.io/library/nginx:1.27]}}
    - {{name: unit, organizational_units: [{UNIT}], regions: [eu-west-1], warm: [docker.io/library/redis:7]}}
    - {{name: quiet, accounts: ["{C}"], regions: [eu-west-1]}}
"""


def org_config() -> config_module.Config:
    return config_module.parse(CONFIG)


def instances() -> list[StackInstance]:
    return [
        StackInstance(B, "eu-west-1", "CURRENT", organizational_unit=UNIT),
        StackInstance(C, "eu-west-1", "OUTDATED", organizational_unit=UNIT),
        StackInstance(B, "us-west-2", "CURRENT", organizational_unit=UNIT),  # not one of the unit member's regions
    ]


def test_members_with_a_warm_list_are_planned_in_each_account_and_region() -> None:
    targets, notes = member_targets(org_config(), instances, STACK_SET)
    found = {(t.member.name, t.account, t.region): t.problem for t in targets}
    assert notes == []
    # listed accounts x regions; the unit's accounts as its instances name them, in its regions only; "quiet" has
    # no warm list and is not planned
    assert set(found) == {
        ("listed", A, "eu-west-1"),
        ("listed", A, "us-west-2"),
        ("unit", B, "eu-west-1"),
        ("unit", C, "eu-west-1"),
    }
    assert found[("unit", B, "eu-west-1")] is None
    outdated = found[("unit", C, "eu-west-1")]
    assert outdated is not None
    assert "OUTDATED" in outdated
    assert STACK_SET in outdated


def test_the_hubs_own_run_warms_every_members_image_once_within_the_shared_budget() -> None:
    # Given a hub warming nginx itself, and members warming nginx and redis
    config = config_module.parse(CONFIG.replace("rules:", "warm: {images: [docker.io/library/nginx:1.27]}\nrules:"))
    # When the hub's own run is planned, Then its warm list is its own and the members' images, each once (the hub
    # pulls each upstream once, drawn from the shared allowance; the members import from the hub)
    images = [str(entry.image) for entry in hub_config(config).warm.images]
    assert images == ["docker.io/library/nginx:1.27", "docker.io/library/redis:7"]
    # And a config without an organisation is left as it is
    plain = config_module.parse(CONFIG.split("organization:")[0])
    assert hub_config(plain) is plain


def test_a_stackset_that_cannot_be_listed_is_a_note_with_the_fix() -> None:
    def refused() -> list[StackInstance]:
        raise AwsAccessDenied("cloudformation:ListStackInstances", STACK_SET, "AccessDenied", "no")

    targets, notes = member_targets(org_config(), refused, STACK_SET)
    assert {t.member.name for t in targets} == {"listed"}
    (note,) = notes
    assert "cloudformation:ListStackInstances" in note
    assert UNIT in note


def expanded_for(member: str) -> Any:
    config = org_config()
    assert config.organization is not None
    chosen = next(m for m in config.organization.members if m.name == member)
    planner = Planner(member_config(config, chosen), ecr=None, upstream_for=lambda rule: None)  # type: ignore[arg-type]
    return planner.expand(member_request(WarmRequest(trigger="schedule")))


def test_a_members_jobs_name_its_account_region_warm_role_and_registry() -> None:
    targets, _ = member_targets(org_config(), instances, STACK_SET)
    target = next(t for t in targets if (t.account, t.region) == (A, "eu-west-1"))
    plan = member_plan(target, expanded_for("listed"), "warm-1", STACK_SET, Wait())
    (job,) = plan.jobs
    assert job.subject == "docker.io/library/nginx:1.27"
    assert job.target is not None
    assert job.target.role == f"arn:aws:iam::{A}:role/pullthrough-org-warm-eu-west-1"
    assert job.target.registry == f"{A}.dkr.ecr.eu-west-1.amazonaws.com"
    assert job.target.run_target() == RunTarget(A, "eu-west-1", "listed")
    assert job.repository == "docker-hub/library/nginx"
    assert plan.decided == ()


def test_an_instance_not_current_fails_its_images_with_the_status_and_the_fix() -> None:
    targets, _ = member_targets(org_config(), instances, STACK_SET)
    target = next(t for t in targets if t.account == C)
    plan = member_plan(target, expanded_for("unit"), "warm-2", STACK_SET, Wait())
    assert plan.jobs == ()
    (decided,) = plan.decided
    assert decided.item.outcome is Outcome.FAILED
    assert decided.item.reason is not None
    assert "not planned" in decided.item.reason
    assert decided.item.fix is not None
    assert "sam deploy" in decided.item.fix
    assert "list-stack-instances" in decided.item.fix


def member_job() -> Any:
    targets, _ = member_targets(org_config(), instances, STACK_SET)
    target = next(t for t in targets if (t.account, t.region) == (A, "eu-west-1"))
    (job,) = member_plan(target, expanded_for("listed"), "warm-3", STACK_SET, Wait()).jobs
    return job


def test_a_refused_warm_role_fails_the_image_naming_the_role_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(role: clients.Role) -> Any:
        raise AwsAccessDenied("sts:AssumeRole", role.arn, "AccessDenied", "not authorized to perform sts:AssumeRole")

    monkeypatch.setattr(clients, "acting_as", refused)
    item = Warmer(Settings(account_id=HUB)).warm(member_job())
    assert isinstance(item, ReportItem)
    assert item.outcome is Outcome.FAILED
    assert item.reason_code == "auth"
    assert f"arn:aws:iam::{A}:role/pullthrough-org-warm-eu-west-1" in str(item.reason)
    assert "sam deploy" in str(item.fix)
    assert "list-stack-instances" in str(item.fix)


def test_an_image_the_member_holds_is_already_cached_without_a_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    held = EcrImage(repository="docker-hub/library/nginx", digest="sha256:" + "a" * 64, tags=("1.27",))
    seen: list[clients.Role] = []

    class Acting:
        def __init__(self, role: clients.Role) -> None:
            seen.append(role)

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(clients, "acting_as", Acting)
    monkeypatch.setattr(ecr_adapter, "describe_image", lambda repository, tag, region=None: held)
    item = Warmer(Settings(account_id=HUB)).warm(member_job())
    assert isinstance(item, ReportItem)
    assert item.outcome is Outcome.ALREADY_CACHED
    assert item.details.digest == held.digest
    (role,) = seen
    assert role.arn == f"arn:aws:iam::{A}:role/pullthrough-org-warm-eu-west-1"
    assert role.session_name == "pullthrough-warm-3"


class FakeSts:
    def __init__(self) -> None:
        self.calls = 0

    def assume_role(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        keys = {"AccessKeyId": f"AKIA{self.calls}", "SecretAccessKey": "s", "SessionToken": "t"}
        return {"Credentials": {**keys, "Expiration": datetime.now(UTC) + timedelta(hours=1)}}


def test_assumed_keys_are_reused_until_shortly_before_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    sts = FakeSts()
    monkeypatch.setattr(clients, "client", lambda service, region=None: sts)
    role = clients.Role(f"arn:aws:iam::{A}:role/pullthrough-org-warm-eu-west-1", "pullthrough-warm-4")
    now = [0.0]
    clients.clear()
    try:
        first = clients.session(role, clock=lambda: now[0])
        now[0] = 3600 - clients.RENEW_BEFORE_SECONDS - 1
        assert clients.session(role, clock=lambda: now[0]) is first
        now[0] = 3600 - clients.RENEW_BEFORE_SECONDS + 1
        assert clients.session(role, clock=lambda: now[0]) is not first
        assert sts.calls == 2
    finally:
        clients.clear()


def test_a_member_runs_report_is_the_members_account_region_and_name_on_the_hub_bus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[Report, HubSettings | None]] = []
    monkeypatch.setattr(run_module, "reporting_publish", lambda report, *_, hub=None, **__: sent.append((report, hub)))
    monkeypatch.setenv("HUB_EVENT_BUS_ARN", f"arn:aws:events:us-east-1:{HUB}:event-bus/pullthrough-org-dev")
    target = RunTarget(A, "eu-west-1", "listed")
    header = RunHeader("warm-5", "schedule", "org", datetime(2026, 12, 7, 10, tzinfo=UTC), target=target)
    settings = Settings(account_id=HUB)
    run_module.publish(warm_report(header, [], settings), RunNotifications(), settings, target)
    ((report, hub),) = sent
    assert (report.account, report.region) == (A, "eu-west-1")
    assert hub is not None
    assert hub.member == "listed"
    assert hub.hub_event_bus_arn is not None
