"""templates/member.yaml and the StackSet in template.yaml that deploys it (README, "Organisation")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from samcli.commands._utils.template import _update_relative_paths

from pullthrough.org_facts import ORG_MEMBER_SLOTS, ORG_PREFIX_SLOTS
from tests.template.cfn import REPO_ROOT, resources_of_type

MEMBER = REPO_ROOT / "templates" / "member.yaml"
BIN = Path(sys.executable).parent
# AWS's ECR guide, "Setting up permissions for cross-account ECR to ECR PTC": the downstream role's permissions.
GUIDE_ACTIONS = {
    "ecr:GetDownloadUrlForLayer", "ecr:GetAuthorizationToken", "ecr:BatchImportUpstreamImage", "ecr:BatchGetImage",
    "ecr:GetImageCopyStatus", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
    "ecr:PutImage",
}  # fmt: skip
HUB_READS = {"ecr:BatchGetImage", "ecr:BatchImportUpstreamImage", "ecr:GetDownloadUrlForLayer"}


@pytest.fixture(scope="module")
def member() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MEMBER.read_text())
    return loaded


def statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]}


def test_the_member_template_is_what_its_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, "tools/member_template.py", "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_member_template_is_plain_cloudformation_without_macros(member: dict[str, Any]) -> None:
    # A service-managed StackSet takes no macro (botocore's CloudFormation model, CreateStackSet Capabilities), and
    # `sam package` uploads the StackSet's template as it is
    assert "Transform" not in member
    assert "Fn::ForEach" not in MEMBER.read_text()


def test_the_member_role_has_the_guides_actions_each_on_its_own_side(member: dict[str, Any]) -> None:
    role = member["Resources"]["MemberRole"]
    assert role["Properties"]["RoleName"] == {"Fn::Sub": "pullthrough-org-ptc-${AWS::Region}"}
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pullthroughcache.ecr.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    found = statements(role)
    granted = {a for s in found.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert granted == GUIDE_ACTIONS
    # Only GetAuthorizationToken on "*" (the IAM service reference gives it no other resource)
    assert found["RegistryToken"] == {
        "Sid": "RegistryToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*",
    }  # fmt: skip
    assert set(found["ReadHubRepositories"]["Action"]) == HUB_READS
    hub = yaml.safe_dump(found["ReadHubRepositories"]["Resource"])
    own = yaml.safe_dump(found["WriteCacheRepositories"]["Resource"])
    assert "${HubRegion}:${HubAccount}:repository/${Prefix1}/*" in hub
    assert "AWS::AccountId" not in hub
    assert "${AWS::Region}:${AWS::AccountId}:repository/${Prefix1}/*" in own
    assert "HubAccount" not in own
    assert len(found["ReadHubRepositories"]["Resource"]) == ORG_PREFIX_SLOTS


def test_each_prefix_slot_has_its_rule_and_template(member: dict[str, Any]) -> None:
    rules = resources_of_type(member, "AWS::ECR::PullThroughCacheRule")
    templates = resources_of_type(member, "AWS::ECR::RepositoryCreationTemplate")
    assert len(rules) == len(templates) == ORG_PREFIX_SLOTS
    for n in range(1, ORG_PREFIX_SLOTS + 1):
        rule = rules[f"Rule{n}"]
        assert rule["Condition"] == templates[f"Template{n}"]["Condition"] == f"HasPrefix{n}"
        assert rule["Properties"] == {
            "EcrRepositoryPrefix": {"Ref": f"Prefix{n}"},
            "UpstreamRegistry": "ecr",
            "UpstreamRegistryUrl": {"Fn::Sub": "${HubAccount}.dkr.ecr.${HubRegion}.${AWS::URLSuffix}"},
            "UpstreamRepositoryPrefix": {"Ref": f"Prefix{n}"},
            "CustomRoleArn": {"Fn::GetAtt": ["MemberRole", "Arn"]},
        }
        assert templates[f"Template{n}"]["Properties"]["AppliedFor"] == ["PULL_THROUGH_CACHE"]


def test_the_stackset_is_service_managed_auto_deployed_and_takes_every_member_slot(template: dict[str, Any]) -> None:
    (stackset,) = resources_of_type(template, "AWS::CloudFormation::StackSet").values()
    props = stackset["Properties"]
    assert stackset["Condition"] == "HasOrganization"
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["CallAs"] == {"Ref": "CallAs"}
    assert props["TemplateURL"] == "templates/member.yaml"
    assert template["Parameters"]["CallAs"]["AllowedValues"] == ["SELF", "DELEGATED_ADMIN"]
    groups = props["StackInstancesGroup"]
    assert len(groups) == ORG_MEMBER_SLOTS == template["Parameters"]["OrgMembers"]["MaxValue"]
    for n, group in enumerate(groups, start=1):
        text = json.dumps(group)
        assert f'["ConfigFacts", "OrgMember{n}"]' in text
        assert all(f'"OrgMember{m}"' not in text for m in range(1, ORG_MEMBER_SLOTS + 1) if m != n)
        if n > 1:
            assert group["Fn::If"][0] == f"HasMember{n}"


def test_the_stackset_gives_every_member_parameter_without_a_default(
    template: dict[str, Any], member: dict[str, Any]
) -> None:
    (stackset,) = resources_of_type(template, "AWS::CloudFormation::StackSet").values()
    given = {p["ParameterKey"] for p in stackset["Properties"]["Parameters"]}
    assert given <= set(member["Parameters"])
    assert {name for name, p in member["Parameters"].items() if "Default" not in p} <= given
    assert {f"Prefix{n}" for n in range(1, ORG_PREFIX_SLOTS + 1)} <= given


@pytest.mark.parametrize("linter", ["cfn-lint", "sam"])
def test_the_member_template_lints_clean(linter: str) -> None:
    command = (
        [str(BIN / "cfn-lint"), str(MEMBER)]
        if linter == "cfn-lint"
        else [str(BIN / "sam"), "validate", "--lint", "--template", str(MEMBER), "--region", "us-east-1"]
    )
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=None)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_build_keeps_the_member_template_reachable(template: dict[str, Any], tmp_path: Path) -> None:
    # `sam build` writes the template under .aws-sam/build and rewrites the local paths of the resources SAM CLI lists
    # (samcli.lib.utils.resources.RESOURCES_WITH_LOCAL_PATHS has AWS::CloudFormation::StackSet's TemplateURL), so
    # `sam deploy` finds templates/member.yaml and uploads it
    (logical_id, _), *_ = resources_of_type(template, "AWS::CloudFormation::StackSet").items()
    built = tmp_path / ".aws-sam" / "build"
    built.mkdir(parents=True)
    moved = _update_relative_paths(json.loads(json.dumps(template)), str(REPO_ROOT), str(built))
    url = moved["Resources"][logical_id]["Properties"]["TemplateURL"]
    assert (built / url).resolve() == MEMBER.resolve()
