"""Resource-based and trust policies as the sandbox evaluates them (sandbox/aws/iam_resource.py), and the
organization keys IAM sees for a caller (sandbox/aws/organization.py)."""

from __future__ import annotations

import json

import pytest

from sandbox.aws.iam import Authorization, Role, Statement
from sandbox.aws.iam_conditions import UnsupportedPolicy
from sandbox.aws.iam_resource import Caller, cross_account, decide, parse, principal_matches, trust_allows
from sandbox.aws.organization import Organization

MEMBER, HUB = "222222222222", "111111111111"
ROLE = f"arn:aws:iam::{MEMBER}:role/pullthrough-org-ptc-eu-west-1"
CALLER = Caller(f"arn:aws:sts::{MEMBER}:assumed-role/pullthrough-org-ptc-eu-west-1/s", MEMBER, role_arn=ROLE)
REPOSITORY = f"arn:aws:ecr:us-east-1:{HUB}:repository/docker-hub/library/nginx"
ORG = Organization(
    id="o-a1b2c3d4e5",
    accounts={HUB: "", MEMBER: "ou-ab12-11111111/ou-ab12-22222222"},
)


def request(action: str = "ecr:BatchGetImage", account: str = MEMBER) -> Authorization:
    return Authorization(action, REPOSITORY, ORG.context_of(account))


def policy(principal: object, condition: dict[str, object] | None = None, effect: str = "Allow") -> str:
    statement = {"Effect": effect, "Principal": principal, "Action": "ecr:BatchGetImage", "Resource": REPOSITORY}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Statement": [statement]})


@pytest.mark.parametrize(
    ("principal", "named"),
    [
        ("*", True),
        ({"AWS": "*"}, True),
        ({"AWS": MEMBER}, True),
        ({"AWS": f"arn:aws:iam::{MEMBER}:root"}, True),
        ({"AWS": [f"arn:aws:iam::{HUB}:root", ROLE]}, True),
        ({"AWS": CALLER.arn}, True),
        ({"AWS": f"arn:aws:iam::{HUB}:root"}, False),
        ({"AWS": f"arn:aws:iam::{MEMBER}:role/another"}, False),
        ({"Service": "pullthroughcache.ecr.amazonaws.com"}, False),
    ],
)
def test_the_principal_element_names_accounts_roles_and_sessions(principal: object, named: bool) -> None:
    assert principal_matches(principal, CALLER) is named


def test_a_wildcard_inside_a_principal_arn_and_not_principal_are_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedPolicy):
        principal_matches({"AWS": f"arn:aws:iam::{MEMBER}:role/*"}, CALLER)
    with pytest.raises(UnsupportedPolicy):
        parse("p", json.dumps({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "*"}, "Action": "*"}]}))


def test_the_organization_conditions_read_the_callers_account() -> None:
    by_org = policy({"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": ORG.id}})
    assert decide(parse("p", by_org), CALLER, request()).allowed
    outsider = Caller("arn:aws:sts::444444444444:assumed-role/r/s", "444444444444", role_arn="x")
    assert not decide(parse("p", by_org), outsider, request(account="444444444444")).allowed
    by_path = policy({"AWS": "*"}, {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/*/ou-ab12-2*"}})
    assert decide(parse("p", by_path), CALLER, request()).allowed
    assert not decide(parse("p", by_path), CALLER, request(account=HUB)).allowed


def test_across_accounts_both_the_identity_and_the_resource_policy_must_allow() -> None:
    allowing = Role("r", (Statement.parse("i", 0, {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}),))
    nothing = Role("r", ())
    resource = parse("p", policy({"AWS": MEMBER}))
    assert cross_account(allowing, resource, CALLER, HUB, request())[1] == ""
    assert cross_account(allowing, (), CALLER, HUB, request())[1] == "resource"
    assert cross_account(nothing, resource, CALLER, HUB, request())[1] == "identity"
    denying = parse("p", policy({"AWS": "*"}, effect="Deny"))
    assert cross_account(allowing, resource + denying, CALLER, HUB, request())[1] == "resource"
    # In the caller's own account either policy is enough.
    assert cross_account(allowing, (), CALLER, MEMBER, request())[1] == ""
    assert cross_account(nothing, resource, CALLER, MEMBER, request())[1] == ""


def test_a_trust_policy_admits_the_service_principal_it_names_under_its_conditions() -> None:
    service = "pullthroughcache.ecr.amazonaws.com"
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    assert trust_allows(json.dumps(trust), service, {"aws:SourceAccount": MEMBER})
    assert not trust_allows(json.dumps(trust), "lambda.amazonaws.com", {})
    trust["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": HUB}}
    assert not trust_allows(json.dumps(trust), service, {"aws:SourceAccount": MEMBER})
    trust["Statement"][0]["Condition"] = {"ArnLike": {"aws:SourceArn": "arn:aws:ecr:*"}}
    assert not trust_allows(json.dumps(trust), service, {"aws:SourceAccount": MEMBER})  # ECR's SourceArn: not set


def test_an_accounts_org_path_runs_from_the_organization_through_its_units() -> None:
    assert ORG.path_of(MEMBER) == "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/"
    assert ORG.path_of(HUB) == "o-a1b2c3d4e5/r-ab12/"
    assert ORG.path_of("444444444444") is None
    assert ORG.context_of("444444444444") == {"aws:principalaccount": "444444444444"}
    assert ORG.accounts_in("ou-ab12-11111111") == [MEMBER]
    assert ORG.accounts_in("r-ab12") == [HUB, MEMBER]
    assert ORG.ou_of(HUB) == "r-ab12"
    with pytest.raises(ValueError, match="organization id"):
        Organization(id="org-1")
    with pytest.raises(ValueError, match="OU"):
        Organization(id="o-a1b2c3d4e5", accounts={MEMBER: "ou-1"})
