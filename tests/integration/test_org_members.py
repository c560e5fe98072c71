"""The hub's StackSet deploys templates/member.yaml into every member account and region, as StackSets would.

template.yaml is deployed into moto (`sandbox.stack.Stack`, ConfigFacts answered by config_facts from a config with
an organization section); `sandbox.aws.stackset.deploy_stackset` then expands MemberStackSet's instance groups
against the sandbox's organisation and deploys the member template in each account and region, through an assumed
role in that account, so each account's IAM and ECR (moto keeps one per account and region) hold what the member
template creates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pullthrough import config as config_module
from sandbox.aws.cloudformation import DeployFailed
from sandbox.aws.stackset import (
    Deployed,
    OrganizationModel,
    activate_organizations_access,
    assumed_clients,
    deploy_stackset,
)
from sandbox.stack import Stack
from tests.fake_aws import fake_aws

ORG_ID = "o-a1b2c3d4e5"

ROOT = Path(__file__).resolve().parents[2]
HUB = "123456789012"  # moto's default account: the stack's own
REGION = "us-east-1"
PROD, DEV_A, DEV_B = "444455556666", "777788889999", "222233334444"
UNIT = "ou-ab12-11111111"
ORG = OrganizationModel(management=HUB, units={UNIT: [DEV_A, DEV_B, HUB], "r-ab12": [PROD, DEV_A, DEV_B, HUB]})


def document(members: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": 1,
        "rules": [
            {"prefix": "docker-hub", "upstream": "docker-hub", "credentials": "ecr-pullthroughcache/docker-hub",
             "template": {"tag_mutability": "IMMUTABLE", "lifecycle": {"expire_untagged_days": 7}}},
            {"prefix": "quay", "upstream": "quay",
             "template": {"tag_mutability": "IMMUTABLE", "lifecycle": {"expire_untagged_days": 7}}},
            {"prefix": "ghcr", "upstream": "github-container-registry", "credentials": "ecr-pullthroughcache/ghcr"},
        ],
        "organization": {
            "id": ORG_ID,
            "hub": {"account": HUB, "region": REGION},
            "cache": ["docker-hub", "quay"],
            "members": members,
        },
    }  # fmt: skip


MEMBERS = [
    {"name": "prod", "accounts": [PROD], "regions": ["eu-west-1", "us-west-2"],
     "warm": ["docker.io/library/nginx:1.27"]},
    {"name": "dev", "organizational_units": [UNIT], "regions": ["eu-west-1"]},
]  # fmt: skip


def hub(tmp_path: Path, members: list[dict[str, Any]], **parameters: Any) -> Stack:
    path = tmp_path / "pullthrough.yaml"
    path.write_text(yaml.safe_dump(document(members)))
    parameters = {"OrganizationId": ORG_ID, **parameters}  # config_facts checks it against organization.id
    stack = Stack(account=HUB, region=REGION, parameters=parameters, extra_env={"PULLTHROUGH_CONFIG": str(path)})
    return stack.deploy()


def deployed(tmp_path: Path, members: list[dict[str, Any]], **parameters: Any) -> tuple[Stack, Deployed]:
    stack = hub(tmp_path, members, **parameters)
    return stack, deploy_stackset(stack, ORG, root=ROOT)


@pytest.fixture
def aws() -> Iterator[None]:
    with fake_aws(REGION, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
        activate_organizations_access(HUB)
        yield


def rules_in(account: str, region: str) -> dict[str, dict[str, Any]]:
    ecr = assumed_clients("ecr", account, region)
    return {r["ecrRepositoryPrefix"]: r for r in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]}


def test_each_member_account_and_region_gets_the_contracts_rules_role_and_templates(aws: None, tmp_path: Path) -> None:
    # Given the hub deployed with two members (an account in two regions; a unit in one) and OrgRootId for the first
    _, result = deployed(tmp_path, MEMBERS, OrgMembers=2, OrgRootId="r-ab12")

    # Then StackSets made one instance per account and region: the unit's accounts but the hub (DIFFERENCE, and the
    # management account never gets one), the listed account through the root (INTERSECTION)
    assert sorted(result.stacks) == sorted(
        [(PROD, "eu-west-1"), (PROD, "us-west-2"), (DEV_A, "eu-west-1"), (DEV_B, "eu-west-1")]
    )
    # And every instance holds exactly the rules the config contract derives (Organization.member_rules)
    parsed = config_module.parse(yaml.safe_dump(document(MEMBERS)))
    assert parsed.organization is not None
    for (account, region), _ in result.stacks.items():
        expected = {
            (
                rule.ecr_repository_prefix,
                rule.upstream_registry_url,
                rule.upstream_repository_prefix,
                rule.for_account(account).custom_role_arn if rule.account is None else rule.custom_role_arn,
            )
            for rule in parsed.organization.member_rules(parsed)
            if rule.region == region and rule.account in (account, None)
        }  # fmt: skip
        got = {
            (p, r["upstreamRegistryUrl"], r["upstreamRepositoryPrefix"], r["customRoleArn"])
            for p, r in rules_in(account, region).items()
        }
        assert got == expected, (account, region)
        assert {r["upstreamRegistry"] for r in rules_in(account, region).values()} == {"ecr"}


def test_the_member_role_is_the_guides_scoped_to_the_cached_prefixes(aws: None, tmp_path: Path) -> None:
    # Given the hub deployed with its members
    _, result = deployed(tmp_path, MEMBERS, OrgMembers=2, OrgRootId="r-ab12")

    # When the prod account's eu-west-1 role is read
    iam = assumed_clients("iam", PROD, "eu-west-1")
    role = iam.get_role(RoleName="pullthrough-org-ptc-eu-west-1")["Role"]
    policy = iam.get_role_policy(RoleName="pullthrough-org-ptc-eu-west-1", PolicyName="ImportFromHub")

    # Then ECR's pull through cache may assume it, and it reads the hub's repositories of the cached prefixes and
    # writes its own, nothing else
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pullthroughcache.ecr.amazonaws.com"}
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["ReadHubRepositories"]["Resource"] == [
        f"arn:aws:ecr:{REGION}:{HUB}:repository/docker-hub/*",
        f"arn:aws:ecr:{REGION}:{HUB}:repository/quay/*",
    ]
    assert statements["WriteCacheRepositories"]["Resource"] == [
        f"arn:aws:ecr:eu-west-1:{PROD}:repository/docker-hub/*",
        f"arn:aws:ecr:eu-west-1:{PROD}:repository/quay/*",
    ]
    # And the repository creation templates carry the cached rules' settings
    ecr = assumed_clients("ecr", PROD, "eu-west-1")
    templates = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert {t["prefix"] for t in templates} == {"docker-hub", "quay"}
    assert {t["imageTagMutability"] for t in templates} == {"IMMUTABLE"}
    assert all(json.loads(t["lifecyclePolicy"])["rules"][0]["selection"]["countNumber"] == 7 for t in templates)
    # And the warm role exists only where the member has a warm list
    assert "WarmRole" in result.stacks[(PROD, "eu-west-1")].created
    assert "WarmRole" not in result.stacks[(DEV_A, "eu-west-1")].created


def test_a_member_count_that_disagrees_with_the_config_fails_the_deploy_naming_the_fix(
    aws: None, tmp_path: Path
) -> None:
    # Given the config's two members and a deploy that says one, When deployed, Then ConfigFacts fails, saying what
    with pytest.raises(DeployFailed) as failed:
        deployed(tmp_path, MEMBERS, OrgMembers=1, OrgRootId="r-ab12")
    assert "OrgMembers" in str(failed.value)
    assert "--parameter-overrides OrgMembers=2" in str(failed.value)


def test_accounts_without_a_unit_need_the_root(aws: None, tmp_path: Path) -> None:
    # Given a member listing an account only and no OrgRootId, When deployed, Then the deploy says how to find it
    with pytest.raises(DeployFailed) as failed:
        deployed(tmp_path, MEMBERS, OrgMembers=2)
    assert "OrgRootId=r-xxxx" in str(failed.value)
    assert "prod" in str(failed.value)


def test_without_an_organization_there_is_no_stackset(aws: None, tmp_path: Path) -> None:
    # Given the shipped shape without an organization section (OrgMembers 0), When deployed, Then no instance exists
    path = tmp_path / "pullthrough.yaml"
    path.write_text("version: 1\nrules:\n  - {prefix: quay, upstream: quay}\n")
    stack = Stack(account=HUB, region=REGION, extra_env={"PULLTHROUGH_CONFIG": str(path)}).deploy()
    assert deploy_stackset(stack, ORG, root=ROOT).instances == []


def test_a_service_managed_stackset_needs_trusted_access_and_the_right_caller(tmp_path: Path) -> None:
    with fake_aws(REGION, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
        # Given the hub deployed as a delegated administrator before trusted access is activated
        stack = hub(tmp_path, MEMBERS, OrgMembers=2, OrgRootId="r-ab12", CallAs="DELEGATED_ADMIN")

        # When StackSets deploys, Then it refuses, naming the command that activates it
        with pytest.raises(DeployFailed) as failed:
            deploy_stackset(stack, ORG, root=ROOT)
        assert "aws cloudformation activate-organizations-access" in str(failed.value)

        # Given it activated, When the hub is not a registered delegated administrator, Then refused with the fix
        activate_organizations_access(HUB)
        with pytest.raises(DeployFailed) as failed:
            deploy_stackset(stack, ORG, root=ROOT)
        assert "aws organizations register-delegated-administrator" in str(failed.value)
