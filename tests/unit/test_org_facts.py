"""pullthrough/org_facts.py: what the StackSet and the member template take from the organization section."""

from __future__ import annotations

import pytest

from pullthrough import config, facts
from pullthrough.errors import ConfigError
from pullthrough.org_facts import ORG_MEMBER_SLOTS, ORG_PREFIX_SLOTS, OrgFacts, check_deployment, derive_org

RULES = """version: 1
rules:
  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub,
     template: {tag_mutability: IMMUTABLE}}
  - {prefix: quay, upstream: quay, template: {tag_mutability: IMMUTABLE}}
  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}
"""
ORG = """organization:
  id: o-a1b2c3d4e5
  hub: {account: "111122223333", region: us-east-1}
  cache: [docker-hub, quay]
  members:
    - {name: both, organizational_units: [ou-ab12-11111111], accounts: ["444455556666"], regions: [eu-west-1],
       warm: [docker.io/library/nginx:1.27, quay.io/prometheus/prometheus:v3.0.0]}
    - {name: units, organizational_units: [ou-ab12-22222222], regions: [eu-west-1, us-west-2]}
    - {name: accounts, accounts: ["555566667777"], regions: [us-west-2]}
"""
HUB_HERE = {"Account": "111122223333", "Region": "us-east-1", "OrganizationId": "o-a1b2c3d4e5"}


def test_members_become_stackset_groups_whose_targets_are_never_empty() -> None:
    # Given a member with units and accounts, one with units only, one with accounts only
    org = derive_org(config.parse(RULES + ORG))

    # When its attributes are read with the stack's OrgRootId
    data = org.attributes("r-ab12")

    # Then the hub, the cached prefixes padded to the member template's slots and the agreed settings are there
    assert data["OrgHub"] == "111122223333,us-east-1"
    assert data["OrgPrefixes"].split(",") == ["docker-hub;IMMUTABLE;0;0", "quay;IMMUTABLE;0;0"] + [";MUTABLE;0;0"] * (
        ORG_PREFIX_SLOTS - 2
    )
    # And each member's targets: UNION of both; the units but the hub (DIFFERENCE); the accounts through the root
    assert data["OrgMember1"] == "both;2;UNION;ou-ab12-11111111;444455556666;eu-west-1"
    assert data["OrgMember2"] == "units;0;DIFFERENCE;ou-ab12-22222222;111122223333;eu-west-1,us-west-2"
    assert data["OrgMember3"] == "accounts;0;INTERSECTION;r-ab12;555566667777;us-west-2"
    # And the unused slots are there, empty, so every !GetAtt the template reads has an answer
    assert [data[f"OrgMember{n}"] for n in range(4, ORG_MEMBER_SLOTS + 1)] == [";0;NONE;;;"] * 3


def test_without_an_organization_the_facts_are_empty_and_only_orgmembers_0_deploys() -> None:
    # Given a config without an organization section
    org = derive_org(config.parse(RULES))
    assert org == OrgFacts()

    # Then OrgMembers 0 deploys, and any other count fails naming the parameter and the fix
    check_deployment(org, {"OrgMembers": "0"})
    with pytest.raises(ConfigError) as failed:
        check_deployment(org, {"OrgMembers": "2"})
    assert "stack parameter OrgMembers" in str(failed.value)
    assert "deploy with OrgMembers=0, or add the organization section" in str(failed.value)


def test_the_deployment_must_be_the_hubs_and_count_its_members() -> None:
    org = derive_org(config.parse(RULES + ORG))
    check_deployment(org, {"OrgMembers": "3", "OrgRootId": "r-ab12", **HUB_HERE})

    # A wrong count, another account or region, and a missing root each fail with their own fix
    with pytest.raises(ConfigError) as failed:
        check_deployment(
            org, {"OrgMembers": "2", "Account": "999999999999", "Region": "us-east-1", "OrganizationId": "o-a1b2c3d4e5"}
        )
    reason = str(failed.value)
    assert "--parameter-overrides OrgMembers=3" in reason
    assert "organization.hub" in reason
    assert "this stack deploys in 999999999999 us-east-1" in reason
    assert "OrgRootId=r-xxxx" in reason
    assert "members accounts list accounts without organizational_units" in reason


def test_the_hub_is_deployed_with_the_configs_organization_id_and_only_the_hub() -> None:
    # Given the config's organization o-a1b2c3d4e5
    org = derive_org(config.parse(RULES + ORG))
    here = {"OrgMembers": "3", "OrgRootId": "r-ab12", **HUB_HERE}

    # When the stack is deployed without OrganizationId, or with another organisation's, Then it fails with the fix
    for given, shown in (("", "(empty)"), ("o-zzzzzzzzzz", "o-zzzzzzzzzz")):
        with pytest.raises(ConfigError) as failed:
            check_deployment(org, {**here, "OrganizationId": given})
        reason = str(failed.value)
        assert "stack parameter OrganizationId" in reason
        assert shown in reason
        assert "--parameter-overrides OrganizationId=o-a1b2c3d4e5" in reason

    # And a stack whose config has no organization section may not set it (it would gather reports for none)
    with pytest.raises(ConfigError) as failed:
        check_deployment(derive_org(config.parse(RULES)), {"OrgMembers": "0", "OrganizationId": "o-a1b2c3d4e5"})
    assert "deploy with OrganizationId='' (empty), or add the organization section" in str(failed.value)


def test_each_cached_prefix_keeps_its_own_template_settings() -> None:
    # Given cached rules whose templates differ (one with a lifecycle, one with KMS, one with none)
    text = """version: 1
rules:
  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub,
     template: {tag_mutability: IMMUTABLE, lifecycle: {keep_last_tags: 5, expire_untagged_days: 7}}}
  - prefix: quay
    upstream: quay
    template:
      role: create
      encryption: {type: KMS, key: 'arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222'}
  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}
""" + ORG.replace("cache: [docker-hub, quay]", "cache: [docker-hub, quay, ghcr]")

    # When derived, Then each slot carries its rule's mutability and lifecycle numbers (encryption: AES256 in members)
    slots = derive_org(config.parse(text)).attributes()["OrgPrefixes"].split(",")
    assert slots[:3] == ["docker-hub;IMMUTABLE;5;7", "quay;MUTABLE;0;0", "ghcr;MUTABLE;0;0"]


def test_more_members_than_the_stackset_holds_fail() -> None:
    members = "".join(
        f'    - {{name: m{n}, accounts: ["55556666{n:04d}"], regions: [us-west-2]}}\n'
        for n in range(ORG_MEMBER_SLOTS + 1)
    )
    text = RULES + ORG.split("  members:\n")[0] + "  members:\n" + members
    with pytest.raises(ConfigError) as failed:
        derive_org(config.parse(text))
    assert f"at most {ORG_MEMBER_SLOTS} members" in str(failed.value)


def test_a_full_organisation_and_fifty_rules_fit_cloudformations_answer() -> None:
    # Given ECR's 50 rules, ten cached, and six members with long names, units, accounts and four regions each
    rules = "".join(f"  - {{prefix: {'p' * 26}{n:02d}, upstream: quay}}\n" for n in range(50))
    members = "".join(
        f"    - {{name: {'m' * 38}{n:02d}, organizational_units: [ou-ab12-1111111{n}], "
        f'accounts: ["55556666{n:04d}"], regions: [eu-west-1, us-west-2, eu-central-1, ap-southeast-2]}}\n'
        for n in range(ORG_MEMBER_SLOTS)
    )
    cache = ", ".join(f"{'p' * 26}{n:02d}" for n in range(ORG_PREFIX_SLOTS))
    text = (
        f"version: 1\nrules:\n{rules}organization:\n  id: o-a1b2c3d4e5\n"
        f'  hub: {{account: "111122223333", region: us-east-1}}\n  cache: [{cache}]\n  members:\n{members}'
    )

    # When every fact is answered, Then the Data stays well inside the 4096 bytes (the identifiers need the rest)
    data = facts.derive(config.parse(text)).attributes("r-ab12")
    assert len(str(data).encode()) < 3600
