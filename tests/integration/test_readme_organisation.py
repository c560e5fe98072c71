"""README's "Organisation" section followed end to end on the sandbox: its commands run, in order, against moto's
AWS Organizations and the sandbox's CloudFormation and StackSets, with its config section.

The organisation is moto's: the management account (moto's default, where the hub's stack deploys) with a unit of two
accounts and one account directly under the root. The README's placeholders (its organisation, root, unit and
accounts) become moto's ids. `aws ...` lines run as the boto3 call of the same name (`--query` through JMESPath, as the
CLI does); `aws cloudformation activate-organizations-access` and `list-stack-instances` are the sandbox's StackSets
(moto has neither); `sam build && sam deploy --parameter-overrides ...` deploys template.yaml (sandbox.stack) with
those parameters, then its StackSet (sandbox.aws.stackset).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jmespath
import pytest
import yaml

from pullthrough import cli
from sandbox.aws.stackset import Deployed, activate_organizations_access, deploy_stackset, organization_from_moto
from sandbox.stack import Stack
from tests.fake_aws import fake_aws

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
REGION = "us-east-1"
MANAGEMENT = "123456789012"  # moto's default account: the hub's stack's
RULES = [{"prefix": "docker-hub", "upstream": "docker-hub", "credentials": "ecr-pullthroughcache/docker-hub"}]


def section() -> str:
    return README.read_text(encoding="utf-8").split("## Organisation\n", 1)[1].split("\n## ", 1)[0]


def commands(text: str) -> list[str]:
    lines = [line for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S) for line in block.splitlines()]
    return [line.split("  #", 1)[0].strip() for line in lines if line.strip()]


@pytest.fixture
def organisation() -> Iterator[dict[str, str]]:
    """moto's organisation; the README's placeholders mapped to its ids."""
    with fake_aws(REGION, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
        org = boto3.client("organizations", region_name=REGION)
        org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        root = org.list_roots()["Roots"][0]["Id"]
        unit = org.create_organizational_unit(ParentId=root, Name="fleet")["OrganizationalUnit"]["Id"]

        def account(name: str, parent: str) -> str:
            status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
            created: str = status["AccountId"]
            org.move_account(AccountId=created, SourceParentId=root, DestinationParentId=parent)
            return created

        yield {
            "o-a1b2c3d4e5": org_id,
            "r-ab12": root,
            "ou-ab12-11111111": unit,
            "fleet-1": account("fleet-1", unit),
            "fleet-2": account("fleet-2", unit),
            "444455556666": account("payments", root),
            "111122223333": MANAGEMENT,
        }


def placed(text: str, ids: dict[str, str]) -> str:
    for placeholder, value in ids.items():
        text = text.replace(placeholder, value)
    return text


class Runner:
    """Runs the section's commands on the sandbox, keeping what they return."""

    def __init__(self, config: Path, ids: dict[str, str]) -> None:
        self.config, self.ids = config, ids
        self.outputs: list[Any] = []
        self.deployed: Deployed | None = None

    def run(self, line: str) -> None:
        argv = shlex.split(line)
        if argv[:2] == ["sam", "build"]:
            self.deploy(argv[argv.index("--parameter-overrides") + 1 :])
        elif argv[:3] == ["aws", "cloudformation", "activate-organizations-access"]:
            activate_organizations_access(MANAGEMENT)
        elif argv[:3] == ["aws", "cloudformation", "list-stack-instances"]:
            assert self.deployed is not None, "list-stack-instances before the deploy"
            self.outputs.append([(i.account, i.region) for i in self.deployed.instances])
        elif argv[:2] == ["aws", "organizations"]:
            self.outputs.append(self.organizations(argv[2], argv[3:]))
        elif argv[:3] == ["pullthrough", "org", "plan"]:
            argv[argv.index("--config") + 1] = str(self.config)
            self.outputs.append(cli.main(argv[1:]))
        else:
            pytest.fail(f"the README's Organisation section runs `{line}`, which this test cannot follow")

    def organizations(self, operation: str, options: list[str]) -> Any:
        if operation == "register-delegated-administrator":
            return None  # only for a delegated administrator hub; this hub is the management account (CallAs=SELF)
        pairs = dict(zip(options[::2], options[1::2], strict=True))
        query, pairs = pairs.pop("--query", None), {k: v for k, v in pairs.items() if k != "--output"}
        kwargs = {"".join(p.capitalize() for p in k[2:].split("-")): v for k, v in pairs.items()}
        answer = getattr(boto3.client("organizations", region_name=REGION), operation.replace("-", "_"))(**kwargs)
        return jmespath.search(query, answer) if query else answer

    def deploy(self, overrides: list[str]) -> None:
        parameters = dict(item.split("=", 1) for item in overrides)
        stack = Stack(account=MANAGEMENT, region=REGION, parameters=parameters, extra_env=self.env())
        self.deployed = deploy_stackset(stack.deploy(), organization_from_moto(REGION), root=ROOT)

    def env(self) -> dict[str, str]:
        return {"PULLTHROUGH_CONFIG": str(self.config)}


def test_the_readmes_organisation_section_deploys_every_member_account_and_region(
    organisation: dict[str, str], tmp_path: Path
) -> None:
    # Given the section's config (its placeholders moto's ids) beside a Docker Hub rule
    text = placed(section(), organisation)
    (config_block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    config = tmp_path / "pullthrough.yaml"
    config.write_text(yaml.safe_dump({"version": 1, "rules": RULES, **yaml.safe_load(config_block)}))

    # When its commands run in order
    runner = Runner(config, organisation)
    for line in commands(text):
        runner.run(line)

    # Then list-roots gave the root the deploy command names
    assert runner.outputs[1] == organisation["r-ab12"]
    # And org plan ran before the deploy: exit 1, the hub's policy not written yet (the deploy's reconcile writes it)
    assert runner.outputs[2] == 1
    # And the StackSet made one stack instance per member account and region: the unit's two accounts in two
    # regions, the account listed alone in one; none in the management account
    expected = [(organisation[a], r) for a in ("fleet-1", "fleet-2") for r in ("eu-west-1", "us-west-2")]
    expected.append((organisation["444455556666"], "eu-west-1"))
    assert sorted(runner.outputs[-1]) == sorted(expected)
    assert runner.deployed is not None
    member = runner.deployed.stacks[(organisation["fleet-1"], "eu-west-1")]
    assert {"MemberRole", "Rule1", "Template1", "WarmRole"} <= set(member.created)
    assert "WarmRole" not in runner.deployed.stacks[(organisation["444455556666"], "eu-west-1")].created
