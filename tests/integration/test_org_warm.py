"""The hub plans and warms its members' warm lists: plan_warming (its schedule) plans one run per member account and
region, SQS carries the jobs, warm_images (through the stack's mapping, IAM evaluated per function) assumes the
member's warm role and imports through the member's ECR, which imports from the hub: the upstream counts each image
once for the whole organisation. Each member run's report goes to the hub's bus, and gather_reports publishes one
organisation report for the cycle. A member whose role is wrong fails with its own reason and fix.

The organisation of the sandbox (sandbox.org): hub 111111111111 in us-east-1 (the management account, directly under
the root), members 222222222222 and 333333333333 in two units, each in eu-west-1 and us-west-2. The hub's stack
(template.yaml) deploys with the config's organization section; its StackSet deploys templates/member.yaml into the
four member registries (sandbox.aws.stackset, through OrganizationAccountAccessRole as osb.client does); the member
template's rule imports from the hub with the member role it creates, and its warm role
(pullthrough-org-warm-<region>) is what the hub's warm_images assumes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto import mock_aws

from pullthrough import config as config_module
from pullthrough.aws import ecr as ecr_adapter
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from sandbox.aws.stackset import OrganizationModel, activate_organizations_access, deploy_stackset
from sandbox.org import Organization, OrgSandbox
from sandbox.registries.images import PushedImage
from sandbox.stack import Stack
from tests.integration.org_support import hub_bus, moto_sns_messages
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


@dataclass
class World:
    """One organisation deployed for the module (the hub's stack, its bus, the StackSet's member stacks), its cached
    prefix, and where each test writes its config."""

    org: OrgSandbox
    stack: Stack
    prefix: str
    workdir: Path

    def warm(self, images: list[PushedImage]) -> None:
        """The members' warm list is `images`: the config edited, then `sam deploy` (the stack's facts follow)."""
        path = self.workdir / f"{unique('config')}.yaml"
        path.write_text(yaml.safe_dump(document(self.prefix, [f"docker.io/{i.repository}:1" for i in images])))
        self.stack.extra_env["PULLTHROUGH_CONFIG"] = str(path)
        self.stack.update()


@pytest.fixture(scope="module")
def world(osb: OrgSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Deployed once per module: each test warms its own images through it (a deploy is most of a test's time)."""
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": HUB[1],
        "POWERTOOLS_METRICS_NAMESPACE": "Pullthrough",
    }
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in environment.items():
            patch.setenv(name, value)
        osb.configure()
        activate_organizations_access(HUB[0])
        ecr_adapter.forget_authorization()  # a registry token names the principal of an earlier module's moto
        workdir = Path(tmp_path_factory.mktemp("org-config"))
        prefix = unique("hub")
        stack = deploy_organisation(osb, workdir, prefix, ["docker.io/library/placeholder:1"])
        yield World(osb, stack, prefix, workdir)
        osb.settle()
        osb.reset_clocks()


def document(prefix: str, warm: list[str]) -> dict[str, Any]:
    return {
        "version": 1,
        "stack": "org",
        "rules": [{"prefix": prefix, "upstream": "docker-hub", "credentials": f"ecr-pullthroughcache/{prefix}"}],
        "warm": {"schedule": "rate(6 hours)"},
        "notifications": {"success": "full"},  # every report with its JSON, read back below
        "organization": {
            "id": ORG.id,
            "hub": {"account": HUB[0], "region": HUB[1]},
            "cache": [prefix],
            "members": [{"name": "fleet", "accounts": list(MEMBERS), "regions": list(REGIONS), "warm": warm}],
        },
    }


def deploy_organisation(org: OrgSandbox, tmp_path: Path, prefix: str, warm: list[str]) -> Stack:
    """The hub's rule and registry policy, its stack (gathering the organisation's reports on its bus), and the
    StackSet's member stacks."""
    user, password = next(iter(org.hub.users.items()))
    docker_hub_rule((org.client("ecr", *HUB), org.client("secretsmanager", *HUB)), prefix, user, password)
    path = tmp_path / "pullthrough.yaml"
    path.write_text(yaml.safe_dump(document(prefix, warm)))
    parsed = config_module.load(path)
    assert parsed.organization is not None
    policy = {"Version": "2012-10-17", "Statement": parsed.organization.registry_policy_statements(parsed)}
    org.client("ecr", *HUB).put_registry_policy(policyText=json.dumps(policy))
    environment = {
        **org.env(*HUB),
        "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(org.upstream_endpoints()),  # the members' registries too
        "PULLTHROUGH_CONFIG": str(path),
    }
    stack = Stack(
        account=HUB[0],
        region=HUB[1],
        parameters={"OrgMembers": "1", "OrgRootId": ORG.root, "OrganizationId": ORG.id},
        extra_env=environment,
    ).deploy()
    deployed = deploy_stackset(
        stack,
        OrganizationModel.of(ORG.root, ORG.accounts, management=HUB[0]),
        root=ROOT,
        clients=lambda service, account, region: org.client(service, account, region),
    )
    assert sorted(deployed.stacks) == sorted(EVERY_MEMBER)
    hub_bus(stack, org.client("events", *HUB))
    return stack


def warm_cycle(org: OrgSandbox, stack: Stack) -> tuple[dict[str, Any], dict[tuple[str, str], Report]]:
    """Fire plan_warming's schedule, let warm_images take the queue; the summary, and each run's report: the
    members' under their (account, region), the hub's own under ("hub", region)."""
    before = len(moto_sns_messages(stack.physical["ReportTopic"]))
    summary = stack.fire_schedule("PlanWarmingFunction")
    stack.drain("WarmImagesFunction")
    org.settle()
    bodies = [body for _, body in moto_sns_messages(stack.physical["ReportTopic"])[before:]]
    reports = [Report.from_message(body) for body in bodies if "PULLTHROUGH REPORT JSON" in body]
    # Exactly one report per run: the hub's own and each member's
    runs = [summary["run_id"], *summary["member_runs"]]
    assert sorted(r.run_id for r in reports if r.run_id in runs) == sorted(runs)
    found = {(r.account, r.region): r for r in reports if r.run_id in summary["member_runs"]}
    found |= {("hub", r.region): r for r in reports if r.run_id == summary["run_id"]}
    return summary, found


def test_the_hub_warms_every_member_and_the_upstream_counts_each_image_once(world: World) -> None:
    # Given three images upstream and an organisation whose member warms them in two accounts and two regions
    org, stack, prefix = world.org, world.stack, world.prefix
    images = [org.hub.push_image(unique("library/app"), "1") for _ in range(3)]
    world.warm(images)
    before = org.upstream.counters[("GET", "manifest")]

    # When the hub's schedule fires and warm_images takes the queue
    summary, reports = warm_cycle(org, stack)

    # Then the hub's own run warmed the members' images first-hand (its pulls drawn from the shared allowance)
    own = reports.pop(("hub", HUB[1]))
    assert sorted(item.outcome for item in own.items) == [Outcome.WARMED] * len(images)
    # And one run per member account and region, each reported once as that account and region
    assert len(summary["member_runs"]) == len(EVERY_MEMBER)
    assert sorted(reports) == sorted(EVERY_MEMBER)
    for where, report in reports.items():
        assert [item.outcome for item in report.items] == [Outcome.WARMED] * len(images), (where, report.items)
        for image in images:
            held = org.registry(*where).repository(f"{prefix}/{image.repository}")
            assert held is not None
            assert image.digest in held.manifests
    # And the upstream served each image once for the whole organisation: 3 pulls, not 3 x 2 accounts x 2 regions
    first = org.upstream.counters[("GET", "manifest")] - before
    assert first == len(images)

    # And gather_reports publishes ONE organisation report covering the four member runs and the hub's own
    stack.drain("GatherReportsFunction")
    org_reports = [s for s, _ in moto_sns_messages(stack.physical["ReportTopic"]) if " org org/" in s]
    assert org_reports == [f"OK pullthrough org org/{HUB[1]}: {len(EVERY_MEMBER) + 1} reported"]

    # When the schedule fires again 25 hours later (ECR's clocks moved)
    org.advance(hours=25)
    _, again = warm_cycle(org, stack)
    again.pop(("hub", HUB[1]))

    # Then every member holds every image already, and the upstream is asked for nothing more
    for where, report in again.items():
        assert [item.outcome for item in report.items] == [Outcome.ALREADY_CACHED] * len(images), where
    assert sorted(again) == sorted(EVERY_MEMBER)
    assert org.upstream.counters[("GET", "manifest")] - before == first
    org.reset_clocks()


def test_a_member_whose_role_is_wrong_fails_with_its_own_reason_and_fix(world: World) -> None:
    # Given the organisation deployed, and one member's role changed by hand so it no longer reads the hub
    org = world.org
    image = org.hub.push_image(unique("library/app"), "1")
    world.warm([image])
    broken = (MEMBERS[0], "eu-west-1")
    iam = org.client("iam", *broken)
    role = {"RoleName": "pullthrough-org-ptc-eu-west-1", "PolicyName": "ImportFromHub"}
    kept = iam.get_role_policy(**role)["PolicyDocument"]
    iam.delete_role_policy(**role)

    # When the hub warms every member
    try:
        _, reports = warm_cycle(org, world.stack)
        reports.pop(("hub", HUB[1]))
    finally:
        iam.put_role_policy(**role, PolicyDocument=json.dumps(kept) if not isinstance(kept, str) else kept)

    # Then the other members are served, and the broken one fails naming its role, what it lacks and how to fix it
    (failed,) = reports[broken].items
    (served,) = reports[(MEMBERS[1], "eu-west-1")].items
    assert served.outcome == Outcome.WARMED
    assert failed.outcome == Outcome.FAILED
    assert failed.reason_code == "auth"
    assert failed.reason is not None
    assert "UpstreamAccessDenied" in failed.reason
    assert "role arn:aws:iam::222222222222:role/pullthrough-org-ptc-eu-west-1" in failed.reason
    # the fix is the role's and the hub's policy, not a secret (an ECR to ECR rule has none)
    assert failed.fix is not None
    assert "pullthroughcache.ecr.amazonaws.com" in failed.fix
    assert "sam deploy" in failed.fix
    assert "secret" not in failed.fix
