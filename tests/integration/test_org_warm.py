"""A member's warm run imports from the hub, not from the upstream: the upstream counts each image once for the whole
organisation; and a member whose role is wrong fails with its own reason and fix.

The organisation of the sandbox (sandbox.org): hub 111111111111 in us-east-1 (the management account, directly under
the root), members 222222222222 and 333333333333 in two units, each in eu-west-1 and us-west-2. The hub's stack
(template.yaml) deploys with the config's organization section; its StackSet deploys templates/member.yaml into the
four member registries (sandbox.aws.stackset, through OrganizationAccountAccessRole as osb.client does); the member
template's rule imports from the hub with the member role it creates. A member's warm run is the library's Warmer
(the trigger through the member's ECR endpoint, then ECR's control plane) acting with the member's warm role
(pullthrough-org-warm-<region>, which the StackSet creates for members with a warm list), assumed from the hub.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto import mock_aws

from pullthrough import config as config_module
from pullthrough.aws import ecr as ecr_adapter
from pullthrough.env import Settings
from pullthrough.reporting.items import ReportItem
from pullthrough.warm.job import WarmJob
from pullthrough.warm.warmer import Warmer
from sandbox.aws.accounts import own_environment
from sandbox.aws.stackset import OrganizationModel, activate_organizations_access, deploy_stackset
from sandbox.org import Organization, OrgSandbox
from sandbox.stack import Stack
from tests.integration.registry_http import docker_hub_rule, unique

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
HUB = ("111111111111", "us-east-1")
MEMBERS = ("222222222222", "333333333333")
REGIONS = ("eu-west-1", "us-west-2")
EVERY_MEMBER = [(account, region) for account in MEMBERS for region in REGIONS]
ORG = Organization(
    id="o-a1b2c3d4e5",
    root="r-ab12",
    accounts={HUB[0]: "", MEMBERS[0]: "ou-ab12-11111111", MEMBERS[1]: "ou-ab12-22222222"},
)


@pytest.fixture(scope="module")
def osb(docker_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgSandbox]:
    with OrgSandbox(Path(tmp_path_factory.mktemp("org")), ORG, hub=HUB, registries=EVERY_MEMBER) as started:
        yield started


@pytest.fixture
def org(osb: OrgSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[OrgSandbox]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", HUB[1])
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Pullthrough")
    with mock_aws():
        osb.configure()
        activate_organizations_access(HUB[0])
        yield osb
    osb.settle()
    osb.reset_clocks()


def document(prefix: str, warm: list[str]) -> dict[str, Any]:
    return {
        "version": 1,
        "rules": [{"prefix": prefix, "upstream": "docker-hub", "credentials": f"ecr-pullthroughcache/{prefix}"}],
        "organization": {
            "id": ORG.id,
            "hub": {"account": HUB[0], "region": HUB[1]},
            "cache": [prefix],
            "members": [
                {"name": "fleet", "organizational_units": ["ou-ab12-11111111", "ou-ab12-22222222"],
                 "regions": list(REGIONS), "warm": warm},
            ],
        },
    }  # fmt: skip


def deploy_organisation(org: OrgSandbox, tmp_path: Path, prefix: str, warm: list[str]) -> config_module.Config:
    """The hub's rule and registry policy, its stack, and the StackSet's member stacks; the config."""
    user, password = next(iter(org.hub.users.items()))
    docker_hub_rule((org.client("ecr", *HUB), org.client("secretsmanager", *HUB)), prefix, user, password)
    path = tmp_path / "pullthrough.yaml"
    path.write_text(yaml.safe_dump(document(prefix, warm)))
    parsed = config_module.load(path)
    assert parsed.organization is not None
    policy = {"Version": "2012-10-17", "Statement": parsed.organization.registry_policy_statements(parsed)}
    org.client("ecr", *HUB).put_registry_policy(policyText=json.dumps(policy))
    stack = Stack(
        account=HUB[0],
        region=HUB[1],
        parameters={"OrganizationId": ORG.id, "OrgMembers": "1"},
        extra_env={"PULLTHROUGH_CONFIG": str(path)},
    ).deploy()
    deployed = deploy_stackset(
        stack,
        OrganizationModel.of(ORG.root, ORG.accounts, management=HUB[0]),
        root=ROOT,
        clients=lambda service, account, region: org.client(service, account, region),
    )
    assert sorted(deployed.stacks) == sorted(EVERY_MEMBER)
    return parsed


def job(prefix: str, repository: str) -> WarmJob:
    return WarmJob(
        run_id="org-warm",
        key=f"{prefix}/{repository}:1",
        subject=f"docker.io/{repository}:1",
        rule=prefix,
        upstream="ecr",
        repository=f"{prefix}/{repository}",
        upstream_repository=f"{prefix}/{repository}",
        tag="1",
        platforms=("linux/amd64",),
        action="warm",
    )


def warm_member(org: OrgSandbox, account: str, region: str, jobs: list[WarmJob]) -> list[ReportItem]:
    """The member's warm run: the hub assumes the member's warm role, and the Warmer imports through its ECR."""
    keys = org.client("sts", *HUB).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/pullthrough-org-warm-{region}", RoleSessionName="warm_images"
    )["Credentials"]
    environment = {
        "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
        "AWS_SESSION_TOKEN": keys["SessionToken"],
        "AWS_SECURITY_TOKEN": keys["SessionToken"],
    }
    with pytest.MonkeyPatch.context() as patch, own_environment(account):
        for name, value in environment.items():
            patch.setenv(name, value)
        ecr_adapter.forget_authorization()
        settings = Settings.from_env({**org.env(account, region), "AWS_REGION": region})
        warmer = Warmer(settings)
        try:
            return [warmer.until_done(j, sleep=lambda _: org.settle()) for j in jobs]
        finally:
            warmer.close()
            ecr_adapter.forget_authorization()


def test_members_warm_runs_import_from_the_hub_so_the_upstream_counts_each_image_once(
    org: OrgSandbox, tmp_path: Path
) -> None:
    # Given three images upstream and an organisation whose member warms them in two accounts and two regions
    prefix = unique("hub")
    images = [org.hub.push_image(unique("library/app"), "1") for _ in range(3)]
    deploy_organisation(org, tmp_path, prefix, [f"docker.io/{image.repository}:1" for image in images])
    before = org.upstream.counters[("GET", "manifest")]

    # When every member account and region runs its warm list
    items = {
        (account, region): warm_member(org, account, region, [job(prefix, image.repository) for image in images])
        for account, region in EVERY_MEMBER
    }
    org.settle()

    # Then every image is warm in every member registry
    for where, outcomes in items.items():
        assert [item.outcome for item in outcomes] == ["warmed"] * len(images), (where, outcomes)
        for image in images:
            held = org.registry(*where).repository(f"{prefix}/{image.repository}")
            assert held is not None
            assert image.digest in held.manifests
    # And the upstream served each image once for the whole organisation: 3 pulls, not 3 x 2 accounts x 2 regions
    assert org.upstream.counters[("GET", "manifest")] - before == len(images)


def test_a_member_whose_role_is_wrong_fails_with_its_own_reason_and_fix(org: OrgSandbox, tmp_path: Path) -> None:
    # Given the organisation deployed, and one member's role changed by hand so it no longer reads the hub
    prefix = unique("hub")
    image = org.hub.push_image(unique("library/app"), "1")
    deploy_organisation(org, tmp_path, prefix, [f"docker.io/{image.repository}:1"])
    broken = (MEMBERS[0], "eu-west-1")
    org.client("iam", *broken).delete_role_policy(RoleName="pullthrough-org-ptc-eu-west-1", PolicyName="ImportFromHub")

    # When both accounts warm in eu-west-1
    (failed,) = warm_member(org, *broken, [job(prefix, image.repository)])
    (served,) = warm_member(org, MEMBERS[1], "eu-west-1", [job(prefix, image.repository)])

    # Then the other member is served, and the broken one fails naming its role, what it lacks and how to fix it
    assert served.outcome == "warmed"
    assert failed.outcome == "failed"
    assert failed.reason_code == "auth"
    assert "UpstreamAccessDenied" in failed.reason
    assert "role arn:aws:iam::222222222222:role/pullthrough-org-ptc-eu-west-1" in failed.reason
    # the fix is the role's and the hub's policy, not a secret (an ECR to ECR rule has none)
    assert failed.fix is not None
    assert "pullthroughcache.ecr.amazonaws.com" in failed.fix
    assert "sam deploy" in failed.fix
    assert "secret" not in failed.fix
