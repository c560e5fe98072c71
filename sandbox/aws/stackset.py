"""CloudFormation StackSets in the sandbox: the hub's MemberStackSet deploys templates/member.yaml into each member
account and region, one stack instance per (account, region), parameters overridden per instance group.

What StackSets does, and where AWS says so:
- AWS::CloudFormation::StackSet's StackInstancesGroup: each group's DeploymentTargets and Regions name its instances,
  its ParameterOverrides replace the StackSet's Parameters of the same key, and only those (CloudFormation User
  Guide, "Override parameter values on stack instances": "You can only override the parameter values that are
  specified in the StackSet").
- DeploymentTargets with service-managed permissions (botocore's CloudFormation model, DeploymentTargets and
  AccountFilterType): the accounts of OrganizationalUnitIds, then Accounts applied by AccountFilterType: NONE (the
  units' accounts), INTERSECTION (only the listed accounts of the units), DIFFERENCE (the units' accounts but the
  listed), UNION (both).
- "StackSets doesn't deploy stack instances to the organization's management account, even if the management account
  is in your organization or in an OU in your organization" (CloudFormation User Guide, StackSets with
  service-managed permissions).
- A stack instance is a stack made in the target account by the execution role StackSets assumes there; here an
  STS AssumeRole into the account (moto keeps one backend per account and region and serves the assumed role's
  credentials in the role's account: moto's documentation, "Multi-Account support").
- A stack's resources: Conditions decide which exist (a resource whose Condition is false is not created);
  `Fn::If` with `AWS::NoValue` removes a property or a list item (CloudFormation User Guide, "Condition functions",
  "Pseudo parameters reference": AWS::NoValue "Removes the corresponding resource property when specified as a
  return value in the Fn::If intrinsic function").
The member template's resource types are created through the same APIs CloudFormation's resource handlers call:
IAM CreateRole and PutRolePolicy, ECR CreatePullThroughCacheRule and CreateRepositoryCreationTemplate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from moto.organizations.models import FakeDelegatedAdministrator, organizations_backends

from sandbox.aws import cloudformation, iam_roles, moto_ecr
from sandbox.aws.intrinsics import Intrinsics

__all__ = [
    "Instance",
    "MemberStack",
    "OrganizationModel",
    "activate_organizations_access",
    "deploy_stackset",
    "install",
    "instances",
    "organization_from_moto",
]

STACKSETS_PRINCIPAL = "member.org.stacksets.cloudformation.amazonaws.com"  # StackSets' delegated admin principal
EXECUTION_ROLE = "stacksets-exec-sandbox"  # service-managed StackSets' role in each member (AWS names it per org)
Clients = Callable[[str, str, str], Any]  # (service, account, region) -> a boto3 client acting in that account


@dataclass(frozen=True)
class OrganizationModel:
    """What AWS Organizations knows that StackSets reads: the management account and each unit's accounts (the root
    r-... counts as a unit: every account), including the accounts of units below it."""

    management: str
    units: Mapping[str, Sequence[str]]

    @classmethod
    def of(cls, root: str, accounts: Mapping[str, str], management: str) -> OrganizationModel:
        """From the sandbox's organisation (sandbox.org.Organization: root, and each account's unit path below it,
        "ou-a/ou-b", "" under the root): a unit holds the accounts of every path through it."""
        units: dict[str, list[str]] = {root: list(accounts)}
        for account, path in accounts.items():
            for unit in [u for u in path.split("/") if u]:
                units.setdefault(unit, []).append(account)
        return cls(management, units)

    def accounts_of(self, unit: str) -> list[str]:
        if unit not in self.units:
            # botocore's CloudFormation model: OrganizationalUnitIds must name units of the organization
            raise cloudformation.DeployFailed(f"StackSet: {unit} is not an organizational unit of the organization")
        return list(self.units[unit])


_TRUSTED = "_sandbox_stacksets_trusted_access"  # kept on moto's Organizations backend: a moto reset forgets it


def install() -> None:
    """moto 5.2.5 refuses StackSets' principal as a delegated administrator's service ("unrecognized service
    principal"); AWS takes it: CloudFormation User Guide, "Register a delegated administrator": aws organizations
    register-delegated-administrator --service-principal=member.org.stacksets.cloudformation.amazonaws.com."""
    if STACKSETS_PRINCIPAL not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
        FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(STACKSETS_PRINCIPAL)


def activate_organizations_access(management: str) -> None:
    """CloudFormation's ActivateOrganizationsAccess (moto 5.2.5 lacks it): "With trusted access between StackSets and
    Organizations activated, the management account has permissions to create and manage StackSets for your
    organization" (CloudFormation API Reference). Until then a service-managed StackSet fails."""
    install()
    setattr(organizations_backends[management]["aws"], _TRUSTED, True)


def organization_from_moto(region: str = "us-east-1") -> OrganizationModel:
    """moto's organisation (AWS Organizations API: ListRoots, ListOrganizationalUnitsForParent,
    ListAccountsForParent), each unit with the accounts below it, the root included."""
    organizations = boto3.client("organizations", region_name=region)
    management = organizations.describe_organization()["Organization"]["MasterAccountId"]
    units: dict[str, list[str]] = {}

    def walk(parent: str) -> list[str]:
        accounts = [a["Id"] for a in organizations.list_accounts_for_parent(ParentId=parent)["Accounts"]]
        for unit in organizations.list_organizational_units_for_parent(ParentId=parent)["OrganizationalUnits"]:
            accounts += walk(unit["Id"])
        units[parent] = accounts
        return accounts

    for root in organizations.list_roots()["Roots"]:
        walk(root["Id"])
    return OrganizationModel(management, units)


def _check_caller(properties: Mapping[str, Any], stack: Any, organization: OrganizationModel) -> None:
    """Who may create a service-managed StackSet: the management account (CallAs SELF) once trusted access is active,
    or a delegated administrator registered for StackSets (CallAs DELEGATED_ADMIN; botocore's CloudFormation model,
    CreateStackSet CallAs: "Your Amazon Web Services account must be registered as a delegated admin in the
    management account")."""
    if not getattr(organizations_backends[organization.management]["aws"], _TRUSTED, False):
        raise cloudformation.DeployFailed(
            "StackSet: trusted access with AWS Organizations is not activated: in the management account run "
            "aws cloudformation activate-organizations-access"
        )
    if properties.get("CallAs", "SELF") == "SELF":
        if stack.account != organization.management:
            raise cloudformation.DeployFailed(
                f"StackSet: CallAs SELF from {stack.account}, which is not the management account: deploy with "
                "CallAs=DELEGATED_ADMIN from a registered delegated administrator"
            )
        return
    delegated = boto3.client("organizations", region_name=stack.region).list_delegated_administrators(
        ServicePrincipal=STACKSETS_PRINCIPAL
    )["DelegatedAdministrators"]
    if stack.account not in {d["Id"] for d in delegated}:
        raise cloudformation.DeployFailed(
            f"StackSet: Account used is not a delegated administrator ({stack.account}): in the management account run "
            f"aws organizations register-delegated-administrator --account-id {stack.account} --service-principal "
            f"{STACKSETS_PRINCIPAL}"
        )


@dataclass(frozen=True)
class Instance:
    """One stack instance: where, and its parameters after overrides."""

    account: str
    region: str
    parameters: dict[str, str]


def instances(properties: Mapping[str, Any], organization: OrganizationModel) -> list[Instance]:
    """The stack instances a resolved AWS::CloudFormation::StackSet's properties name, in group order."""
    base = {p["ParameterKey"]: str(p["ParameterValue"]) for p in properties.get("Parameters") or []}
    result: list[Instance] = []
    for group in [g for g in properties.get("StackInstancesGroup") or [] if g is not None]:
        overrides = {p["ParameterKey"]: str(p["ParameterValue"]) for p in group.get("ParameterOverrides") or []}
        unknown = set(overrides) - set(base)
        if unknown:
            raise cloudformation.DeployFailed(f"StackSet: overrides {sorted(unknown)} are not StackSet parameters")
        for account in _targets(group["DeploymentTargets"], organization):
            result += [Instance(account, region, base | overrides) for region in group["Regions"]]
    return result


def _targets(targets: Mapping[str, Any], organization: OrganizationModel) -> list[str]:
    in_units = [a for unit in targets.get("OrganizationalUnitIds") or [] for a in organization.accounts_of(unit)]
    listed = [str(a) for a in targets.get("Accounts") or []]
    kind = targets.get("AccountFilterType", "NONE")
    chosen = {
        "NONE": in_units,
        "INTERSECTION": [a for a in in_units if a in listed],
        "DIFFERENCE": [a for a in in_units if a not in listed],
        "UNION": in_units + listed,
    }[kind]
    return [a for a in dict.fromkeys(chosen) if a != organization.management]


@dataclass
class MemberStack(Intrinsics):
    """templates/member.yaml deployed in one account and region with an instance's parameters."""

    template: dict[str, Any]
    account: str
    region: str
    parameters: dict[str, Any]
    clients: Clients
    stack_name: str = "StackSet-pullthrough-members"
    physical: dict[str, str] = field(default_factory=dict)
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # logical ids, in creation order

    def deploy(self) -> MemberStack:
        declared = self.template.get("Parameters", {})
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise cloudformation.DeployFailed(f"Parameters: {sorted(unknown)} do not exist in the template")
        defaults = {name: p["Default"] for name, p in declared.items() if "Default" in p}
        missing = set(declared) - set(defaults) - set(self.parameters)
        if missing:
            raise cloudformation.DeployFailed(f"Parameters: {sorted(missing)} must have values")
        self.parameters = {name: str(v) for name, v in (defaults | self.parameters).items()}
        for logical_id, resource in self.template.get("Resources", {}).items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            properties = _without_no_value(self.resolve(resource.get("Properties") or {}))
            self._create(logical_id, str(resource["Type"]), properties)
            self.created.append(logical_id)
        return self

    def _create(self, logical_id: str, kind: str, props: dict[str, Any]) -> None:
        if kind == "AWS::IAM::Role":
            iam = self.clients("iam", self.account, self.region)
            role = iam.create_role(
                RoleName=props["RoleName"],
                AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
                Description=props.get("Description", ""),
                Tags=props.get("Tags", []),
            )["Role"]
            for policy in props.get("Policies", []):
                iam.put_role_policy(
                    RoleName=props["RoleName"],
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(policy["PolicyDocument"]),
                )
            self.physical[logical_id] = role["RoleName"]
            self.physical[f"{logical_id}.Arn"] = role["Arn"]
        elif kind == "AWS::ECR::PullThroughCacheRule":
            self.clients("ecr", self.account, self.region).create_pull_through_cache_rule(
                ecrRepositoryPrefix=props["EcrRepositoryPrefix"],
                upstreamRegistry=props["UpstreamRegistry"],
                upstreamRegistryUrl=props["UpstreamRegistryUrl"],
                upstreamRepositoryPrefix=props["UpstreamRepositoryPrefix"],
                customRoleArn=props["CustomRoleArn"],
            )
        elif kind == "AWS::ECR::RepositoryCreationTemplate":
            options = {"lifecyclePolicy": props["LifecyclePolicy"]} if "LifecyclePolicy" in props else {}
            self.clients("ecr", self.account, self.region).create_repository_creation_template(
                prefix=props["Prefix"],
                description=props.get("Description", ""),
                appliedFor=props["AppliedFor"],
                imageTagMutability=props["ImageTagMutability"],
                encryptionConfiguration={"encryptionType": props["EncryptionConfiguration"]["EncryptionType"]},
                **options,
            )
        else:
            raise cloudformation.DeployFailed(f"{logical_id}: the sandbox cannot create {kind}")


def _without_no_value(node: Any) -> Any:
    """AWS::NoValue resolved (None) removes the property or list item."""
    if isinstance(node, dict):
        return {k: _without_no_value(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_no_value(v) for v in node if v is not None]
    return node


def assumed_clients(service: str, account: str, region: str) -> Any:
    """A client acting in `account`: STS AssumeRole of the StackSets execution role there (moto: multi-account)."""
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{EXECUTION_ROLE}", RoleSessionName="stacksets"
    )["Credentials"]
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


@dataclass(frozen=True)
class Deployed:
    """The StackSet's instances, each with its deployed member stack."""

    instances: list[Instance]
    stacks: dict[tuple[str, str], MemberStack]


def _generated_roles(stack: Any) -> None:
    """`!GetAtt <Function>Role.Arn`: the role SAM generates for a function without a Role (SAM Developer Guide,
    "Generated AWS CloudFormation resources"), named as sandbox/aws/iam_roles.py names it."""
    for logical_id, resource in stack.template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function" and "Role" not in resource.get("Properties", {}):
            role = iam_roles.role_of(stack, logical_id)
            stack.physical[f"{logical_id}Role.Arn"] = f"arn:aws:iam::{stack.account}:role/{role.name}"


def deploy_stackset(
    stack: Any, organization: OrganizationModel, *, root: Path, clients: Clients = assumed_clients
) -> Deployed:
    """Deploy every AWS::CloudFormation::StackSet of a deployed `sandbox.stack.Stack` whose condition holds: its
    TemplateURL read from `root` (the local path `sam deploy` uploads), one MemberStack per instance."""
    stacks: dict[tuple[str, str], MemberStack] = {}
    found: list[Instance] = []
    install()
    moto_ecr.install()  # the member template's rules and templates: moto 5.2.5 lacks them (sandbox/aws/moto_ecr.py)
    _generated_roles(stack)
    for logical_id, resource in stack.template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::CloudFormation::StackSet":
            continue
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        properties = _without_no_value(stack.resolve(resource["Properties"]))
        if properties.get("PermissionModel") == "SERVICE_MANAGED":
            if not properties.get("AutoDeployment"):
                raise cloudformation.DeployFailed(f"{logical_id}: SERVICE_MANAGED needs AutoDeployment")
            _check_caller(properties, stack, organization)
        template = yaml.safe_load((root / str(properties["TemplateURL"])).read_text())
        for instance in instances(properties, organization):
            member = MemberStack(template, instance.account, instance.region, dict(instance.parameters), clients)
            stacks[(instance.account, instance.region)] = member.deploy()
            found.append(instance)
    return Deployed(found, stacks)
