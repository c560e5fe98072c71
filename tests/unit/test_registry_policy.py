"""The hub's registry policy: Pullthrough's PullthroughOrg* statements follow the config, drift is repaired, and every
other statement is kept as it was; on moto's ECR with the sandbox's registry policy of the V2 scope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pullthrough.aws import registry_policy as adapter
from pullthrough.config import Config, parse
from pullthrough.errors import AwsError
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.rules.registry_policy import desired_statements, plan_policy, reconcile_policy
from sandbox.aws import moto_ecr
from tests.fake_aws import fake_aws

HUB, REGION = "111122223333", "us-east-1"
CONFIG = f"""version: 1
rules:
  - {{prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}}
  - {{prefix: quay, upstream: quay}}
organization:
  id: o-a1b2c3d4e5
  hub: {{account: "{HUB}", region: {REGION}}}
  members:
    - {{name: prod, accounts: ["444455556666"], regions: [eu-west-1]}}
"""
# Someone else's statement: replication from another account, written the way a person would (strings, not lists).
FOREIGN = {
    "Sid": "ReplicationFromProd",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
    "Action": "ecr:ReplicateImage",
    "Resource": f"arn:aws:ecr:{REGION}:{HUB}:repository/*",
}


@pytest.fixture
def ecr() -> Iterator[Any]:
    moto_ecr.install()
    with fake_aws(REGION):
        yield boto3.client("ecr", region_name=REGION)


def config(text: str = CONFIG) -> Config:
    return parse(text)


def current(ecr: Any) -> dict[str, Any] | None:
    try:
        text = ecr.get_registry_policy()["policyText"]
    except ecr.exceptions.RegistryPolicyNotFoundException:
        return None
    document: dict[str, Any] = json.loads(text)
    return document


def put(ecr: Any, *statements: dict[str, Any]) -> None:
    ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def outcomes(items: list[Any]) -> dict[str, Outcome]:
    return {item.subject: item.outcome for item in items}


def test_the_hub_gets_one_statement_per_cached_prefix_beside_what_was_there(ecr: Any) -> None:
    # Given a registry policy someone else wrote
    put(ecr, FOREIGN)
    # When the hub reconciles
    items, notes = reconcile_policy(config(), HUB, REGION, dry_run=False)
    # Then the organisation's statements are added, one per cached prefix, and the foreign one is kept as it was
    assert outcomes(items) == {
        "hub policy PullthroughOrgDockerHub": Outcome.CREATED,
        "hub policy PullthroughOrgQuay": Outcome.CREATED,
    }
    assert notes == []
    document = current(ecr)
    assert document is not None
    assert document["Statement"][0] == FOREIGN
    assert document["Statement"][1:] == config().organization.registry_policy_statements(config())  # type: ignore[union-attr]
    assert items[0].reason == "the organisation may now import docker-hub/* from this registry"
    assert items[0].details.rule == "docker-hub"
    # And a second run changes nothing and writes nothing
    again, _ = reconcile_policy(config(), HUB, REGION, dry_run=False)
    assert set(outcomes(again).values()) == {Outcome.UNCHANGED}


def test_a_statement_changed_by_hand_is_restored_and_the_report_says_what_differed(ecr: Any) -> None:
    reconcile_policy(config(), HUB, REGION, dry_run=False)
    document = current(ecr)
    assert document is not None
    # Given someone widened docker-hub's statement to every action and dropped its condition
    widened = dict(document["Statement"][0], Action="ecr:*")
    del widened["Condition"]
    put(ecr, widened, document["Statement"][1], FOREIGN)
    # When reconcile runs
    items, _ = reconcile_policy(config(), HUB, REGION, dry_run=False)
    # Then the statement is restored, the other two are left alone
    assert outcomes(items) == {
        "hub policy PullthroughOrgDockerHub": Outcome.UPDATED,
        "hub policy PullthroughOrgQuay": Outcome.UNCHANGED,
    }
    assert items[0].reason == "restored: the statement differed from the config (Action, Condition)"
    after = current(ecr)
    assert after is not None
    assert FOREIGN in after["Statement"]
    assert [s for s in after["Statement"] if s.get("Sid") == "PullthroughOrgDockerHub"] == [
        config().organization.registry_policy_statements(config())[0]  # type: ignore[union-attr]
    ]


def test_a_prefix_members_no_longer_cache_loses_its_statement(ecr: Any) -> None:
    reconcile_policy(config(), HUB, REGION, dry_run=False)
    narrowed = config(CONFIG.replace("  hub:", "  cache: [quay]\n  hub:"))
    items, _ = reconcile_policy(narrowed, HUB, REGION, dry_run=False)
    assert outcomes(items) == {
        "hub policy PullthroughOrgQuay": Outcome.UNCHANGED,
        "hub policy PullthroughOrgDockerHub": Outcome.DELETED,
    }
    document = current(ecr)
    assert document is not None
    assert [s["Sid"] for s in document["Statement"]] == ["PullthroughOrgQuay"]


def test_without_an_organization_the_statements_go_and_a_policy_that_was_only_pullthroughs_is_deleted(
    ecr: Any,
) -> None:
    reconcile_policy(config(), HUB, REGION, dry_run=False)
    alone = config(CONFIG.split("organization:")[0])
    items, _ = reconcile_policy(alone, HUB, REGION, dry_run=False)
    assert set(outcomes(items).values()) == {Outcome.DELETED}
    assert current(ecr) is None
    # And with nothing of Pullthrough's left, the next run reports nothing at all
    assert reconcile_policy(alone, HUB, REGION, dry_run=False) == ([], [])


def test_a_policy_with_other_statements_is_kept_when_pullthroughs_go(ecr: Any) -> None:
    put(ecr, FOREIGN)
    reconcile_policy(config(), HUB, REGION, dry_run=False)
    reconcile_policy(config(CONFIG.split("organization:")[0]), HUB, REGION, dry_run=False)
    assert current(ecr) == {"Version": "2012-10-17", "Statement": [FOREIGN]}


def test_outside_the_hub_the_statements_are_removed_and_a_note_says_where_the_hub_is(ecr: Any) -> None:
    # Given statements a hub once wrote here (the hub moved to another region)
    put(ecr, *config().organization.registry_policy_statements(config()))  # type: ignore[union-attr]
    moved = config(
        CONFIG.replace(f"region: {REGION}}}", "region: eu-west-1}").replace(
            "regions: [eu-west-1]", "regions: [us-west-2]"
        )
    )
    # When this (no longer the hub's) region reconciles
    items, notes = reconcile_policy(moved, HUB, REGION, dry_run=False)
    # Then they are removed, and the note names the hub and the fix
    assert set(outcomes(items).values()) == {Outcome.DELETED}
    assert notes == [
        f"organization.hub is {HUB} in eu-west-1, but this stack runs in {HUB}, {REGION}: the hub's registry policy "
        "is reconciled only by the stack in the hub account and region (statements Pullthrough wrote here are "
        "removed); deploy the hub stack there, or correct organization.hub"
    ]
    assert current(ecr) is None


def test_a_dry_run_reports_the_changes_and_writes_nothing(ecr: Any) -> None:
    put(ecr, FOREIGN)
    items, _ = reconcile_policy(config(), HUB, REGION, dry_run=True)
    assert set(outcomes(items).values()) == {Outcome.CREATED}
    assert current(ecr) == {"Version": "2012-10-17", "Statement": [FOREIGN]}


def test_a_refused_write_fails_each_changed_statement_with_the_fix(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: Any, **__: Any) -> None:
        from pullthrough.errors import AwsAccessDenied

        raise AwsAccessDenied("ecr:PutRegistryPolicy", "the registry's policy", "AccessDeniedException", "no")

    monkeypatch.setattr(adapter, "put_policy", refused)
    items, _ = reconcile_policy(config(), HUB, REGION, dry_run=False)
    assert set(outcomes(items).values()) == {Outcome.FAILED}
    assert items[0].fix == (
        'grant ecr:PutRegistryPolicy (Resource "*": the action has no resource type) to the reconcile function\'s '
        "role (template.yaml), then reconcile again"
    )
    assert items[0].reason_code == "AccessDeniedException"


def test_a_policy_over_ecrs_limit_is_not_sent(ecr: Any) -> None:
    # Given other statements that nearly fill ECR's 10,240 characters (compact JSON, as Pullthrough sends it)
    filler: list[dict[str, Any]] = []
    while len(adapter.policy_text({"Version": "2012-10-17", "Statement": filler})) < 9900:
        filler.append(dict(FOREIGN, Sid=f"Other{len(filler)}", Resource=f"arn:aws:ecr:{REGION}:{HUB}:repository/r/*"))
    ecr.put_registry_policy(policyText=adapter.policy_text({"Version": "2012-10-17", "Statement": filler}))
    # When the organisation's statements would push it over
    items, _ = reconcile_policy(config(), HUB, REGION, dry_run=False)
    # Then nothing is sent, and each statement fails with the fix
    assert set(outcomes(items).values()) == {Outcome.FAILED}
    assert items[0].reason_code == "PolicyTooLarge"
    assert items[0].fix == (
        "cache fewer prefixes (organization.cache), or move other statements out of the registry policy"
    )
    assert current(ecr) == {"Version": "2012-10-17", "Statement": filler}


def test_statements_compare_by_meaning() -> None:
    want = config().organization.registry_policy_statements(config())  # type: ignore[union-attr]
    same = [
        dict(
            statement,
            Action=list(reversed(statement["Action"])),
            Resource=[statement["Resource"]],
            Principal="*",
            Condition={"StringEquals": {"aws:PrincipalOrgID": ["o-a1b2c3d4e5"]}},
        )
        for statement in want
    ]
    the_plan = plan_policy(want, {"Version": "2012-10-17", "Statement": same})
    assert not the_plan.writes
    # but a duplicate of one of Pullthrough's Sids is drift
    doubled = plan_policy(want, {"Version": "2012-10-17", "Statement": [*want, want[0]]})
    assert doubled.changes[0].differences == ("Sid PullthroughOrgDockerHub appears 2 times",)
    assert doubled.document is not None
    assert doubled.document["Statement"] == want


def test_a_single_statement_object_and_no_policy_at_all_are_read() -> None:
    want = config().organization.registry_policy_statements(config())  # type: ignore[union-attr]
    the_plan = plan_policy(want, {"Version": "2012-10-17", "Statement": FOREIGN})
    assert the_plan.document == {"Version": "2012-10-17", "Statement": [FOREIGN, *want]}
    assert plan_policy([], None).document is None
    assert not plan_policy([], None).writes
    assert desired_statements(config(), "444455556666", REGION) == (
        [],
        desired_statements(config(), "444455556666", REGION)[1],
    )


def test_a_registry_policy_that_is_not_json_is_an_aws_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Client:
        def get_registry_policy(self) -> dict[str, str]:
            return {"registryId": HUB, "policyText": "not json"}

    monkeypatch.setattr(adapter, "_ecr", lambda region: Client())
    with pytest.raises(AwsError, match="not JSON"):
        adapter.get_policy()


def test_the_sandbox_takes_ecr_actions_only_and_ecrs_size_limit(ecr: Any) -> None:
    # ECR's V2 registry policy scope takes every ECR action, and only those (sandbox/aws/moto_ecr_registry_policy.py)
    statement = dict(FOREIGN, Action=["ecr:BatchImportUpstreamImage", "ecr:BatchGetImage"])
    put(ecr, statement)
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        put(ecr, dict(FOREIGN, Action="s3:GetObject"))
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        put(ecr, *[dict(FOREIGN, Sid=f"S{n}") for n in range(60)])
    assert current(ecr) == {"Version": "2012-10-17", "Statement": [statement]}
