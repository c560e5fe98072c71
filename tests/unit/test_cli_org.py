"""`pullthrough org plan` and `pullthrough org status` on moto: what each member target gets, the hub policy's diff,
and each member account and region's stack instance; `--json` valid against docs/cli's schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullthrough import cli
from pullthrough.config import parse
from sandbox.aws import moto_ecr
from tests.fake_aws import fake_aws
from tests.unit.test_cli_json import document
from tests.unit.test_cli_unit import make_io

HUB, REGION, MEMBER = "123456789012", "us-east-1", "444455556666"  # moto's default account is the hub
CONFIG = f"""version: 1
rules:
  - {{prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub,
     template: {{tag_mutability: IMMUTABLE}}}}
  - {{prefix: quay, upstream: quay}}
organization:
  id: o-a1b2c3d4e5
  hub: {{account: "{HUB}", region: {REGION}}}
  members:
    - name: prod
      accounts: ["{MEMBER}"]
      regions: [eu-west-1, us-west-2]
      warm: [nginx:1.27, {{image: quay.io/org/app, latest: 2}}]
    - name: dev
      organizational_units: [ou-ab12-11111111]
      regions: [eu-west-1]
"""
STACK_SET = "pullthrough-members-dev"


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Path]:
    moto_ecr.install()
    with fake_aws(REGION, STAGE="dev"):
        path = tmp_path / "pullthrough.yaml"
        path.write_text(CONFIG, encoding="utf-8")
        yield path


def run(config: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    io = make_io()
    code = cli.main(["org", *args, "--json", "--config", str(config)], io)
    found = document(io, f"org-{args[0]}")
    return code, found, io.stderr.getvalue()  # type: ignore[attr-defined]


def text_of(config: Path, *args: str) -> tuple[int, str]:
    io = make_io()
    code = cli.main(["org", *args, "--config", str(config)], io)
    return code, io.stdout.getvalue()  # type: ignore[attr-defined]


# --- org plan --------------------------------------------------------------------------------------------------------


def test_plan_lists_each_target_and_region_with_rules_role_templates_and_warm_list(aws: Path) -> None:
    code, found, _ = run(aws, "plan")
    assert found["schema"] == "pullthrough/org-plan/v1"
    assert (found["organization"], found["hub"], found["stack_set"]) == (
        "o-a1b2c3d4e5",
        {"account": HUB, "region": REGION},
        STACK_SET,
    )
    where = [(t["member"], t["account"], t["organizational_unit"], t["region"]) for t in found["targets"]]
    assert where == [
        ("prod", MEMBER, None, "eu-west-1"),
        ("prod", MEMBER, None, "us-west-2"),
        ("dev", None, "ou-ab12-11111111", "eu-west-1"),
    ]
    first = found["targets"][0]
    assert first["role_name"] == "pullthrough-org-ptc-eu-west-1"
    assert first["warm"] == ["docker.io/library/nginx:1.27", "quay.io/org/app latest 2"]
    assert first["rules"][0] == {
        "prefix": "docker-hub",
        "upstream_registry": "ecr",
        "upstream_registry_url": f"{HUB}.dkr.ecr.{REGION}.amazonaws.com",
        "upstream_repository_prefix": "docker-hub",
        "custom_role_arn": f"arn:aws:iam::{MEMBER}:role/pullthrough-org-ptc-eu-west-1",
        "template": found["targets"][0]["rules"][0]["template"],
    }
    assert first["rules"][0]["template"]["tag_mutability"] == "IMMUTABLE"
    assert first["rules"][1]["template"] is None
    assert found["targets"][2]["rules"][0]["custom_role_arn"] == (
        "arn:aws:iam::${AWS::AccountId}:role/pullthrough-org-ptc-eu-west-1"
    )
    assert found["targets"][2]["warm"] == []
    # And the hub policy: two statements, both to create (the hub has no policy yet), so exit 1
    config = parse(CONFIG)
    assert config.organization is not None
    assert found["hub_policy"]["statements"] == config.organization.registry_policy_statements(config)
    assert found["hub_policy"]["changes"] == [
        {"sid": "PullthroughOrgDockerHub", "outcome": "created", "differences": []},
        {"sid": "PullthroughOrgQuay", "outcome": "created", "differences": []},
    ]
    assert (code, found["exit_code"], found["notes"]) == (1, 1, [])


def test_plan_shows_drift_and_a_matching_policy_exits_0(aws: Path) -> None:
    config = parse(CONFIG)
    assert config.organization is not None
    statements = config.organization.registry_policy_statements(config)
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    code, found, _ = run(aws, "plan")
    assert code == 0
    assert {c["outcome"] for c in found["hub_policy"]["changes"]} == {"unchanged"}
    assert text_of(aws, "plan")[1].splitlines()[-1] == "The hub policy matches the config."
    # When someone widens a statement
    ecr.put_registry_policy(
        policyText=json.dumps(
            {"Version": "2012-10-17", "Statement": [dict(statements[0], Action="ecr:*"), statements[1]]}
        )
    )
    code, found, _ = run(aws, "plan")
    assert code == 1
    assert found["hub_policy"]["changes"][0] == {
        "sid": "PullthroughOrgDockerHub",
        "outcome": "updated",
        "differences": ["Action"],
    }
    # And the text says the same
    _, text = text_of(aws, "plan")
    assert "  PullthroughOrgDockerHub: updated (Action)" in text
    assert "  prod: 444455556666 in eu-west-1 (role pullthrough-org-ptc-eu-west-1)" in text
    assert f"    rule docker-hub <- {HUB}.dkr.ecr.{REGION}.amazonaws.com/docker-hub, template" in text
    assert "  dev: every account of ou-ab12-11111111 in eu-west-1 (role pullthrough-org-ptc-eu-west-1)" in text


def test_plan_with_another_accounts_credentials_does_not_compare_and_says_why(aws: Path) -> None:
    aws.write_text(CONFIG.replace(f'account: "{HUB}"', 'account: "111122223333"'), encoding="utf-8")
    code, found, _ = run(aws, "plan")
    assert (code, found["hub_policy"]["changes"]) == (0, None)
    assert found["notes"] == [
        f"the credentials are account {HUB}'s, not the hub's (111122223333): the hub's registry policy was not "
        "compared; run with the hub account's credentials (--profile) to see its diff"
    ]
    assert text_of(aws, "plan")[1].splitlines()[-1] == "The hub policy was not compared."


def test_a_config_without_an_organization_is_a_usage_error(aws: Path) -> None:
    aws.write_text(CONFIG.split("organization:")[0], encoding="utf-8")
    io = make_io()
    assert cli.main(["org", "plan", "--config", str(aws)], io) == 2
    assert "the config has no organization section" in io.stderr.getvalue()  # type: ignore[attr-defined]


# --- org status ------------------------------------------------------------------------------------------------------


def stack_set(accounts: list[str], regions: list[str]) -> Any:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    body = {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}}}}
    cloudformation.create_stack_set(StackSetName=STACK_SET, TemplateBody=json.dumps(body))
    cloudformation.create_stack_instances(StackSetName=STACK_SET, Accounts=accounts, Regions=regions)
    return cloudformation


def test_status_shows_each_instance_and_the_missing_ones(aws: Path) -> None:
    # Given the StackSet reached the member account in one of its two regions
    stack_set([MEMBER], ["eu-west-1"])
    code, found, _ = run(aws, "status")
    assert found["schema"] == "pullthrough/org-status/v1"
    rows = [(r["member"], r["account"], r["organizational_unit"], r["region"], r["status"]) for r in found["instances"]]
    assert rows == [
        ("prod", MEMBER, None, "eu-west-1", "CURRENT"),
        ("prod", MEMBER, None, "us-west-2", "MISSING"),
        ("dev", None, "ou-ab12-11111111", "eu-west-1", "MISSING"),
    ]
    healthy = found["instances"][0]
    assert (healthy["detailed_status"], healthy["rules"], healthy["problems"]) == (
        "SUCCEEDED",
        ["docker-hub", "quay"],
        [],
    )
    assert found["instances"][1]["problems"] == [
        "no stack instance: the StackSet has not reached it yet (sam deploy the hub with this config), or it is the "
        "management account, which StackSets never deploys to"
    ]
    assert (code, found["exit_code"], found["call_as"], found["stack_set"]) == (1, 1, "SELF", STACK_SET)


def test_status_with_every_instance_current_exits_0_and_an_unknown_account_is_a_finding(aws: Path) -> None:
    aws.write_text(CONFIG.split("    - name: dev")[0], encoding="utf-8")
    cloudformation = stack_set([MEMBER], ["eu-west-1", "us-west-2"])
    code, found, _ = run(aws, "status")
    assert (code, [r["status"] for r in found["instances"]]) == (0, ["CURRENT", "CURRENT"])
    assert text_of(aws, "status")[1].splitlines()[-1] == "All good."
    # When the StackSet still has an account no member names
    cloudformation.create_stack_instances(StackSetName=STACK_SET, Accounts=["777788889999"], Regions=["eu-west-1"])
    code, found, _ = run(aws, "status")
    stray = found["instances"][-1]
    assert (code, stray["member"], stray["rules"]) == (1, None, [])
    assert stray["problems"][0].startswith("no member of the config targets this account and region")


def test_an_unhealthy_instance_names_its_state_reason_and_fix(aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pullthrough.aws import stacksets

    failed = stacksets.StackInstance(MEMBER, "eu-west-1", "OUTDATED", "FAILED", "Role pullthrough-org-ptc exists")
    asked: list[tuple[Any, ...]] = []
    monkeypatch.setattr(stacksets, "stack_instances", lambda *a: asked.append(a) or [failed])
    code, found, _ = run(aws, "status", "--call-as", "DELEGATED_ADMIN")
    # The StackSet is read in the hub's region, as the delegated administrator
    assert asked == [(STACK_SET, REGION, "DELEGATED_ADMIN")]
    assert found["instances"][0]["problems"] == [
        "stack instance OUTDATED/FAILED: Role pullthrough-org-ptc exists; see the StackSet's last operation in "
        "CloudFormation, fix the cause, then deploy the hub again (sam deploy)"
    ]
    assert code == 1


def test_status_without_the_stack_set_says_how_to_get_one(aws: Path) -> None:
    code, found, _ = run(aws, "status", "--stage", "prod", "--call-as", "DELEGATED_ADMIN")
    assert (code, found["stack_set"], found["call_as"]) == (1, "pullthrough-members-prod", "DELEGATED_ADMIN")
    assert found["notes"] == [
        f"no StackSet pullthrough-members-prod in {REGION} for this account: deploy the hub (sam deploy) with the "
        "organization section, run in the account that deployed it, or pass --call-as DELEGATED_ADMIN from a "
        "delegated administrator, or --stage for another stage"
    ]
    assert {r["status"] for r in found["instances"]} == {"MISSING"}


def test_the_adapter_asks_cloudformation_as_told(aws: Path) -> None:
    from pullthrough.aws import clients, stacksets

    stack_set([MEMBER], ["eu-west-1"])
    sent: list[dict[str, Any]] = []
    boto3.setup_default_session(region_name=REGION)
    clients.clear()
    boto3.DEFAULT_SESSION.events.register(  # type: ignore[union-attr]
        "provide-client-params.cloudformation.ListStackInstances", lambda params, **_: sent.append(dict(params))
    )
    found = stacksets.stack_instances(STACK_SET, REGION, "DELEGATED_ADMIN")
    assert sent == [{"StackSetName": STACK_SET, "CallAs": "DELEGATED_ADMIN"}]
    assert found == [stacksets.StackInstance(MEMBER, "eu-west-1", "CURRENT", "SUCCEEDED")]


def test_status_with_the_hubs_ledger_shows_each_members_latest_warm_report(
    aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from pullthrough.aws.ledger.cycles import Cycles, MemberReport
    from pullthrough.org.cycles import cycle_id, cycle_of

    # Given the hub's ledger with two reports of the member in eu-west-1: one in the previous warm cycle (6 hours, the
    # default schedule), a later one in the current cycle; and one in us-west-2 only in the previous cycle
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("LEDGER_TABLE", "ledger")
    cycles = Cycles.in_table("ledger")
    current = cycle_of(datetime.now(UTC), "rate(6 hours)")
    previous = current - timedelta(hours=6)

    def report(cycle: datetime, region: str, run: str, status: str, counts: dict[str, int]) -> None:
        body = json.dumps({"status": status, "counts": counts, "finished": "2026-12-07T06:05:00+00:00"})
        entry = MemberReport(MEMBER, region, run, "prod", "warm", body)
        cycles.record(cycle_id(cycle), cycle + timedelta(hours=6), entry)

    report(previous, "eu-west-1", "warm-a", "FAILED", {"failed": 1, "warmed": 1})
    report(current, "eu-west-1", "warm-b", "SUCCEEDED", {"warmed": 2})
    report(previous, "us-west-2", "warm-c", "PARTIAL", {"warmed": 1, "not_planned": 1})
    stack_set([MEMBER], ["eu-west-1", "us-west-2"])

    # When the status is asked
    code, found, _ = run(aws, "status")

    # Then each row has its member's latest report: the current cycle's where there is one, else the previous one's
    last = {r["region"]: r["last_report"] for r in found["instances"] if r["account"] == MEMBER}
    assert last["eu-west-1"] == {
        "cycle": cycle_id(current),
        "run_id": "warm-b",
        "status": "SUCCEEDED",
        "counts": {"warmed": 2},
        "finished": "2026-12-07T06:05:00+00:00",
    }
    assert (last["us-west-2"]["cycle"], last["us-west-2"]["status"]) == (cycle_id(previous), "PARTIAL")
    # And a unit without an instance has none; a report is information, never a finding
    assert [r["last_report"] for r in found["instances"] if r["account"] is None] == [None]
    assert code == 1  # the dev unit's instance is missing, as without the ledger
    lines = text_of(aws, "status")[1]
    assert f"last warm report: SUCCEEDED in cycle {cycle_id(current)} (run warm-b): 2 warmed" in lines
