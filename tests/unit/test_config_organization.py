"""The `organization` section: what it derives (member rules, the hub's registry policy statements, the member role)
and every problem it can have, each with its location, value and fix."""

from __future__ import annotations

import pytest

from pullthrough.config import parse
from pullthrough.config.organization import (
    ORG_ACTIONS,
    MemberRule,
    member_role_name,
    partition_of,
    registry_host,
    statement_sid,
)
from pullthrough.errors import ConfigError

RULES = """version: 1
rules:
  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}
  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}
  - {prefix: quay, upstream: quay, template: {tag_mutability: IMMUTABLE}}
"""
ORG = """organization:
  id: o-a1b2c3d4e5
  hub: {account: "111122223333", region: us-east-1}
  cache: [docker-hub, quay]
  members:
    - name: prod-eu
      organizational_units: [ou-ab12-11111111]
      accounts: ["444455556666"]
      regions: [eu-west-1, us-west-2]
      warm: [docker.io/library/nginx:1.27]
"""
HUB_URL = "111122223333.dkr.ecr.us-east-1.amazonaws.com"


def problems_of(text: str) -> list[str]:
    """The problems parse() reports for `text`, without the source name in front."""
    with pytest.raises(ConfigError) as caught:
        parse(text, source="cfg.yaml")
    return [str(p).removeprefix("cfg.yaml: ") for p in caught.value.problems]


def test_each_member_account_and_region_gets_one_ecr_to_ecr_rule_per_cached_prefix() -> None:
    config = parse(RULES + ORG)
    assert config.organization is not None
    rules = config.organization.member_rules(config)
    # 2 targets (an account, an OU) x 2 regions x 2 cached prefixes
    assert len(rules) == 8
    quay = config.rules[2]
    assert rules[2] == MemberRule(
        member="prod-eu",
        account="444455556666",
        organizational_unit=None,
        region="us-west-2",
        ecr_repository_prefix="docker-hub",
        upstream_registry_url=HUB_URL,
        upstream_repository_prefix="docker-hub",
        custom_role_arn="arn:aws:iam::444455556666:role/pullthrough-org-ptc-us-west-2",
        template=None,
    )
    assert rules[3].ecr_repository_prefix == "quay"
    assert rules[3].template == quay.template
    assert all(rule.upstream_registry == "ecr" for rule in rules)
    # an organisational unit's accounts are known when the StackSet deploys: the ARN names the account as CFN would
    unit = rules[4]
    assert (unit.account, unit.organizational_unit) == (None, "ou-ab12-11111111")
    assert unit.custom_role_arn == "arn:aws:iam::${AWS::AccountId}:role/pullthrough-org-ptc-eu-west-1"
    resolved = unit.for_account("777788889999")
    assert resolved.custom_role_arn == "arn:aws:iam::777788889999:role/pullthrough-org-ptc-eu-west-1"
    with pytest.raises(ValueError, match="for_account"):
        unit.as_rule()
    # and the rule is one the config itself accepts: upstream ecr at the hub, upstream prefix, custom role
    rule = resolved.as_rule()
    assert (rule.prefix, rule.upstream, rule.url, rule.upstream_prefix) == ("docker-hub", "ecr", HUB_URL, "docker-hub")
    assert rule.custom_role_arn == resolved.custom_role_arn


def test_the_hub_policy_has_one_statement_per_cached_prefix_and_nothing_more() -> None:
    config = parse(RULES + ORG)
    assert config.organization is not None
    statements = config.organization.registry_policy_statements(config)
    assert statements == [
        {
            "Sid": "PullthroughOrgDockerHub",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["ecr:BatchGetImage", "ecr:BatchImportUpstreamImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/docker-hub/*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        },
        {
            "Sid": "PullthroughOrgQuay",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": list(ORG_ACTIONS),
            "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/quay/*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        },
    ]


def test_paths_narrow_the_policy_to_principals_under_them() -> None:
    text = RULES + ORG.replace(
        "  hub:", "  paths: [o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/, o-a1b2c3d4e5/r-ab12/ou-ab12-22222222/*]\n  hub:"
    )
    config = parse(text)
    assert config.organization is not None
    statement = config.organization.registry_policy_statements(config, partition="aws-cn")[0]
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"},
        "ForAnyValue:StringLike": {
            "aws:PrincipalOrgPaths": [
                "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/",
                "o-a1b2c3d4e5/r-ab12/ou-ab12-22222222/*",
            ]
        },
    }
    assert statement["Resource"].startswith("arn:aws-cn:ecr:us-east-1:")


def test_without_cache_members_cache_every_rule_but_root() -> None:
    text = (
        RULES
        + "  - {prefix: ROOT, upstream: ecr, url: 999988887777.dkr.ecr.eu-west-1.amazonaws.com}\n"
        + ORG.replace("  cache: [docker-hub, quay]\n", "")
    )
    config = parse(text)
    assert config.organization is not None
    assert [rule.prefix for rule in config.organization.cached_rules(config)] == ["docker-hub", "ghcr", "quay"]
    sids = [s["Sid"] for s in config.organization.registry_policy_statements(config)]
    assert sids == ["PullthroughOrgDockerHub", "PullthroughOrgGhcr", "PullthroughOrgQuay"]


def test_the_names_every_lane_shares() -> None:
    assert statement_sid("cache/docker-hub") == "PullthroughOrgCacheDockerHub"
    assert statement_sid("a.b_c__d") == "PullthroughOrgABCD"
    assert member_role_name("eu-west-1") == "pullthrough-org-ptc-eu-west-1"
    assert registry_host("111122223333", "cn-north-1") == "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn"
    assert (partition_of("us-gov-west-1"), partition_of("cn-northwest-1"), partition_of("eu-west-1")) == (
        "aws-us-gov",
        "aws-cn",
        "aws",
    )


BAD = [
    pytest.param(
        ORG.replace("o-a1b2c3d4e5", "o-A1"),
        [
            "organization.id: an organization id is o- and 10 to 32 lower-case letters or digits, like "
            "o-a1b2c3d4e5 (got 'o-A1')"
        ],
        id="org-id",
    ),
    pytest.param(
        ORG.replace('"111122223333"', "11112222333"),
        [
            "organization.hub.account: YAML read this as a number (which drops leading zeros); write the 12 digits "
            'in quotes, like "111122223333" (got 11112222333)'
        ],
        id="account-number",
    ),
    pytest.param(
        ORG.replace('"444455556666"', '"44445555666"'),
        [
            'organization.members[0].accounts[0]: an AWS account id is 12 digits, in quotes: "111122223333" '
            "(got '44445555666')"
        ],
        id="account-digits",
    ),
    pytest.param(
        ORG.replace("region: us-east-1", "region: us-east-9"),
        [
            "organization.hub.region: not a region ECR serves (did you mean 'us-east-2'?); give one like us-east-1 "
            "or eu-west-1 (botocore's endpoint data lists them) (got 'us-east-9')"
        ],
        id="hub-region",
    ),
    pytest.param(
        ORG.replace("eu-west-1, us-west-2", "eu-west-1, eu-west-1"),
        [
            "organization.members[0].regions: region eu-west-1 listed twice; list each once "
            "(got ['eu-west-1', 'eu-west-1'])"
        ],
        id="region-twice",
    ),
    pytest.param(
        ORG.replace("ou-ab12-11111111", "ou-1"),
        [
            "organization.members[0].organizational_units[0]: an organisational unit id is ou-<root part>-<8 to "
            "32>, like ou-ab12-11111111 (got 'ou-1')"
        ],
        id="ou",
    ),
    pytest.param(
        ORG.replace('      organizational_units: [ou-ab12-11111111]\n      accounts: ["444455556666"]\n', ""),
        [
            "organization.members[0]: member 'prod-eu' targets nothing: give accounts (\"444455556666\") and/or "
            "organizational_units (ou-ab12-11111111) (got {name: 'prod-eu', regions: ['eu-west-1', 'us-west-2'], wa...)"
        ],
        id="no-targets",
    ),
    pytest.param(
        ORG.replace("name: prod-eu", "name: Prod EU"),
        ["organization.members[0].name: 1 to 40 lower-case letters, digits or '-' (got 'Prod EU')"],
        id="member-name",
    ),
    pytest.param(
        ORG.replace("  hub:", "  paths: [o-a1b2c3d4e5/ou-1]\n  hub:"),
        [
            "organization.paths[0]: an aws:PrincipalOrgPaths entry is o-<org>/r-<root>/ou-<unit>/ (or o-<org>/* for "
            "everyone) (got 'o-a1b2c3d4e5/ou-1')"
        ],
        id="path-shape",
    ),
    pytest.param(
        ORG.replace("  hub:", "  paths: [o-zzzzzzzzzz/*]\n  hub:"),
        [
            "organization.paths[0]: outside organization o-a1b2c3d4e5: start the path with o-a1b2c3d4e5/ "
            "(got 'o-zzzzzzzzzz/*')"
        ],
        id="path-other-org",
    ),
    pytest.param(
        ORG.replace("cache: [docker-hub, quay]", "cache: [docker-hub, gchr]"),
        [
            "organization.cache[1]: no rule has this prefix (did you mean 'ghcr'?); cache names rules' prefixes: "
            "docker-hub, ghcr, quay (got 'gchr')"
        ],
        id="cache-unknown",
    ),
    pytest.param(
        ORG.replace("cache: [docker-hub, quay]", "cache: []"),
        ["organization.cache: must have at least 1 item(s) (got [])"],
        id="cache-empty",
    ),
    pytest.param(
        ORG.replace('accounts: ["444455556666"]', 'accounts: ["111122223333"]').replace("us-west-2", "us-east-1"),
        [
            "organization.members[0].accounts[0]: the hub account in the hub region us-east-1 holds the rules "
            "members cache from; remove us-east-1 from this member's regions or the hub account from its accounts "
            "(got '111122223333')"
        ],
        id="hub-is-member",
    ),
    pytest.param(
        ORG.replace("us-west-2", "cn-north-1"),
        [
            "organization.members[0].regions[1]: ECR to ECR stays in one partition: the hub's region us-east-1 is "
            "in aws, this one in aws-cn; list regions of aws (got 'cn-north-1')"
        ],
        id="partition",
    ),
    pytest.param(
        ORG + '    - name: prod-us\n      accounts: ["444455556666"]\n      regions: [us-west-2]\n',
        [
            "organization.members[1].accounts[0]: member 'prod-eu' already covers this account in us-west-2: an "
            "account and region belong to one member (got '444455556666')"
        ],
        id="account-twice",
    ),
    pytest.param(
        ORG + '    - name: prod-eu\n      accounts: ["777788889999"]\n      regions: [us-west-2]\n',
        ["organization.members[1].name: duplicate: members[0] has this name; rename one (got 'prod-eu')"],
        id="name-twice",
    ),
    pytest.param(
        ORG.replace("docker.io/library/nginx:1.27", "ghcr.io/org/app:v1"),
        [
            "organization.members[0].warm[0]: its rule 'ghcr' is not cached by members (organization.cache: "
            "docker-hub, quay); add ghcr to organization.cache or warm it in the hub (warm.images) "
            "(got 'ghcr.io/org/app:v1')"
        ],
        id="warm-uncached",
    ),
    pytest.param(
        ORG.replace("docker.io/library/nginx:1.27", "registry.k8s.io/pause:3.10"),
        [
            "organization.members[0].warm[0]: no rule caches registry.k8s.io images; add a rule with upstream: "
            "k8s (got 'registry.k8s.io/pause:3.10')"
        ],
        id="warm-unresolved",
    ),
]


@pytest.mark.parametrize(("org", "expected"), BAD)
def test_a_bad_organization_gets_exactly_these_problems(org: str, expected: list[str]) -> None:
    assert problems_of(RULES + org) == expected


def test_the_cache_must_not_name_root_and_statement_ids_must_differ() -> None:
    text = (
        "version: 1\nrules:\n"
        "  - {prefix: ROOT, upstream: ecr, url: 999988887777.dkr.ecr.eu-west-1.amazonaws.com}\n"
        "  - {prefix: my-app, upstream: quay}\n"
        "  - {prefix: my_app, upstream: ecr, url: 999988887777.dkr.ecr.eu-west-1.amazonaws.com, upstream_prefix: ab}\n"
        + ORG.replace("cache: [docker-hub, quay]", "cache: [ROOT, my-app, my_app]").replace(
            "      warm: [docker.io/library/nginx:1.27]\n", ""
        )
    )
    assert problems_of(text) == [
        "organization.cache[0]: members cannot cache the ROOT rule (ECR refuses an upstream prefix for ROOT); name a "
        "prefixed rule (got 'ROOT')",
        "organization.cache: prefixes 'my-app' and 'my_app' give the same hub policy statement id "
        "PullthroughOrgMyApp: rename one of the rules' prefixes (got 'my_app')",
    ]


def test_organization_problems_come_with_the_rest_of_a_broken_document() -> None:
    # A broken rule elsewhere: the organization is still checked against the rules that are valid
    text = RULES.replace("upstream: quay,", "upstream: quay.io,") + ORG.replace("docker-hub, quay", "docker-hub, gchr")
    problems = problems_of(text)
    assert any(p.startswith("rules[2].upstream: unknown upstream") for p in problems)
    assert any(p.startswith("organization.cache[1]: no rule has this prefix (did you mean 'ghcr'?)") for p in problems)
    # and a cache entry naming the broken rule waits for that rule's own problem
    assert not any("'quay'" in p and p.startswith("organization.cache") for p in problems)


def test_a_document_with_no_rule_to_cache_says_so() -> None:
    text = (
        "version: 1\nrules:\n  - {prefix: ROOT, upstream: ecr, url: 999988887777.dkr.ecr.eu-west-1.amazonaws.com}\n"
        + ORG.replace("  cache: [docker-hub, quay]\n", "").replace("      warm: [docker.io/library/nginx:1.27]\n", "")
    )
    assert problems_of(text)[0].startswith(
        "organization: no rule for members to cache: add a rule with a prefix (not ROOT) to rules"
    )
