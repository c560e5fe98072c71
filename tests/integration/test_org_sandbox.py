"""The sandbox with an organization: a hub registry facing the upstream, members importing from it ECR to ECR.

Hub 111111111111 in us-east-1 (a Docker Hub rule under the test's prefix); members 222222222222 and 333333333333, each
in eu-west-1 and us-west-2, with an ECR to ECR rule under the same prefix to the hub, as the ECR guide's "Setting up
permissions for cross-account ECR to ECR PTC" describes (sandbox/registries/ecr_cross_account.py). Raw urllib3 and
boto3 on purpose: these tests prove the sandbox, so they must not depend on the library.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.aws.moto_ecr_state import backend
from sandbox.org import Organization, OrgSandbox, ecr_host
from tests.integration.registry_http import blob, docker_hub_rule, manifest, unique

pytestmark = pytest.mark.sandbox

HUB = ("111111111111", "us-east-1")
MEMBERS = ("222222222222", "333333333333")
REGIONS = ("eu-west-1", "us-west-2")
EVERY_MEMBER = [(account, region) for account in MEMBERS for region in REGIONS]
ORG = Organization(
    id="o-a1b2c3d4e5",
    root="r-ab12",
    accounts={
        "111111111111": "ou-ab12-hubhubhu",
        "222222222222": "ou-ab12-11111111",
        "333333333333": "ou-ab12-22222222",
    },
)
PTC_SERVICE = "pullthroughcache.ecr.amazonaws.com"
ECR_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": PTC_SERVICE}, "Action": "sts:AssumeRole"}],
}
IMPORT_ACTIONS = ["ecr:BatchGetImage", "ecr:BatchImportUpstreamImage", "ecr:GetDownloadUrlForLayer"]


@pytest.fixture(scope="module")
def osb(docker_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgSandbox]:
    with OrgSandbox(Path(tmp_path_factory.mktemp("org")), ORG, hub=HUB, registries=EVERY_MEMBER) as started:
        yield started


@pytest.fixture
def org(osb: OrgSandbox) -> Iterator[OrgSandbox]:
    """moto with the organization's registries, fresh state per test."""
    with mock_aws():
        osb.configure()
        yield osb
    osb.settle()
    osb.reset_clocks()


def role_name(region: str) -> str:
    return f"pullthrough-org-ptc-{region}"


def role_arn(account: str, region: str) -> str:
    return f"arn:aws:iam::{account}:role/{role_name(region)}"


def member_role(
    org: OrgSandbox,
    where: tuple[str, str],
    *,
    name: str | None = None,
    trust: dict[str, Any] | None = None,
    resource: str | None = None,
    token: bool = True,
) -> str:
    """The member's role of the ECR guide (trust for ECR's pull through cache, the import permissions); its ARN."""
    account, region = where
    iam = org.client("iam", account, region)
    name = name or role_name(region)
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or ECR_TRUST))["Role"]["Arn"]
    hub_repositories = resource or f"arn:aws:ecr:{HUB[1]}:{HUB[0]}:repository/*"
    statements = [{"Effect": "Allow", "Action": IMPORT_ACTIONS, "Resource": hub_repositories}]
    if token:
        statements.append({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"})
    permissions = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="import", PolicyDocument=json.dumps(permissions))
    return arn


def member_rule(org: OrgSandbox, account: str, region: str, prefix: str) -> None:
    org.client("ecr", account, region).create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix,
        upstreamRegistry="ecr",
        upstreamRegistryUrl=ecr_host(*HUB),
        customRoleArn=role_arn(account, region),
        upstreamRepositoryPrefix=prefix,
    )


def hub_policy(org: OrgSandbox, prefix: str, paths: list[str] | None = None) -> None:
    """The hub's registry policy as the shared contract shapes it (Organization.registry_policy_statements)."""
    condition: dict[str, Any] = {"StringEquals": {"aws:PrincipalOrgID": ORG.id}}
    if paths:
        condition["ForAnyValue:StringLike"] = {"aws:PrincipalOrgPaths": paths}
    statement = {
        "Sid": "PullthroughOrgTest",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": sorted(IMPORT_ACTIONS),
        "Resource": f"arn:aws:ecr:{HUB[1]}:{HUB[0]}:repository/{prefix}/*",
        "Condition": condition,
    }
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    try:
        org.client("ecr", *HUB).put_registry_policy(policyText=text)
    except ClientError:
        # moto 5.2.5's PutRegistryPolicy accepts only ecr:CreateRepository and ecr:ReplicateImage (org-config's lane
        # extends it); until then the test stores what PutRegistryPolicy stores, where GetRegistryPolicy reads it.
        backend(*HUB).registry_policy = text


@pytest.fixture
def prefix(org: OrgSandbox) -> str:
    """A Docker Hub rule at the hub and an ECR to ECR rule with its role in every member registry; the prefix."""
    name = unique("hub")
    user, password = next(iter(org.hub.users.items()))
    docker_hub_rule((org.client("ecr", *HUB), org.client("secretsmanager", *HUB)), name, user, password)
    for account, region in EVERY_MEMBER:
        member_role(org, (account, region))
        member_rule(org, account, region, name)
    return name


def pulls(org: OrgSandbox) -> int:
    return org.upstream.counters[("GET", "manifest")]


def pull(org: OrgSandbox, account: str, region: str, repository: str, tag: str) -> Any:
    return manifest(org.endpoint(account, region).url, repository, tag, org.ecr_auth(account, region))


def batch_get(org: OrgSandbox, account: str, region: str, repository: str, tag: str) -> dict[str, Any]:
    """BatchGetImage in the member's registry, after a pull through its endpoint (which creates the repository, as
    a first pull through a rule does; BatchGetImage on a repository that does not exist yet is RepositoryNotFound)."""
    pull(org, account, region, repository, tag)
    ecr = org.client("ecr", account, region)
    answer: dict[str, Any] = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    return answer


def refusal(org: OrgSandbox, account: str, region: str, repository: str, tag: str = "1") -> dict[str, Any]:
    """The one failure of BatchGetImage for the tag, after the registry endpoint refused the pull with 403 DENIED."""
    refused = pull(org, account, region, repository, tag)
    assert refused.status == 403, refused.data
    answer = batch_get(org, account, region, repository, tag)
    assert answer["images"] == []
    [failure] = answer["failures"]
    assert failure["failureCode"] == "UpstreamAccessDenied"
    return dict(failure)


# --- refused before the hub's policy, served after -----------------------------------------------------------------


def test_members_are_refused_before_the_hub_policy_allows_the_organization_and_served_after(
    org: OrgSandbox, prefix: str
) -> None:
    image = org.hub.push_image(unique("library/app"), "1")
    repository = f"{prefix}/{image.repository}"

    for account, region in EVERY_MEMBER:
        failure = refusal(org, account, region, repository)
        assert role_arn(account, region) in failure["failureReason"]
        assert "no resource-based policy allows the ecr:BatchGetImage action" in failure["failureReason"]

    hub_policy(org, prefix)

    for account, region in EVERY_MEMBER:
        response = pull(org, account, region, repository, "1")
        assert response.status == 200, response.data
        assert response.headers["Docker-Content-Digest"] == image.digest
        assert org.registry(account, region).repository(repository) is not None
    assert org.registry(*HUB).repository(f"{prefix}/{image.repository}") is not None


def test_the_hub_policy_admits_only_the_organization_paths_it_names(org: OrgSandbox, prefix: str) -> None:
    image = org.hub.push_image(unique("library/app"), "1")
    repository = f"{prefix}/{image.repository}"
    hub_policy(org, prefix, paths=[f"{ORG.id}/r-ab12/ou-ab12-11111111/*"])

    assert pull(org, "222222222222", "eu-west-1", repository, "1").status == 200
    refused = refusal(org, "333333333333", "eu-west-1", repository)
    assert "resource-based policy" in refused["failureReason"]


def test_an_account_outside_the_organization_is_refused_by_the_hub_policy(org: OrgSandbox, prefix: str) -> None:
    outsider = ("444444444444", "eu-west-1")
    org.add_registry(*outsider)
    member_role(org, outsider)
    member_rule(org, *outsider, prefix)
    hub_policy(org, prefix)
    image = org.hub.push_image(unique("library/app"), "1")

    failure = refusal(org, *outsider, f"{prefix}/{image.repository}")
    assert "no resource-based policy allows" in failure["failureReason"]


# --- the member's role ---------------------------------------------------------------------------------------------


def test_a_role_whose_trust_does_not_admit_ecr_fails_the_import_with_upstream_access_denied_naming_the_role(
    org: OrgSandbox, prefix: str
) -> None:
    account, region = "333333333333", "eu-west-1"
    ecr = org.client("ecr", account, region)
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    # The role of the guide's permissions, trusted by Lambda instead of ECR's pull through cache.
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    wrong_arn = member_role(org, (account, region), name=f"{prefix}-wrong", trust=lambda_trust)
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix,
        upstreamRegistry="ecr",
        upstreamRegistryUrl=ecr_host(*HUB),
        customRoleArn=wrong_arn,
        upstreamRepositoryPrefix=prefix,
    )
    hub_policy(org, prefix)
    image = org.hub.push_image(unique("library/app"), "1")
    repository = f"{prefix}/{image.repository}"

    failure = refusal(org, account, region, repository)
    assert wrong_arn in failure["failureReason"]
    assert "trust policy" in failure["failureReason"]
    validated = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    assert validated["isValid"] is False
    assert wrong_arn in validated["failure"]
    # The other members are not affected by one member's role.
    assert pull(org, "222222222222", region, repository, "1").status == 200
    assert org.client("ecr", "222222222222", region).validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)[
        "isValid"
    ]


def test_a_role_missing_from_the_member_account_fails_with_upstream_access_denied(org: OrgSandbox, prefix: str) -> None:
    account, region = "222222222222", "us-west-2"
    org.client("iam", account, region).delete_role_policy(RoleName=role_name(region), PolicyName="import")
    org.client("iam", account, region).delete_role(RoleName=role_name(region))
    hub_policy(org, prefix)
    image = org.hub.push_image(unique("library/app"), "1")

    failure = refusal(org, account, region, f"{prefix}/{image.repository}")
    assert (
        f"{role_arn(account, region)} of pull through cache rule {prefix}: the role does not exist"
        in (failure["failureReason"])
    )


def test_the_role_permissions_must_allow_the_import_on_the_hub_repository(org: OrgSandbox, prefix: str) -> None:
    account, region = "222222222222", "eu-west-1"
    iam = org.client("iam", account, region)
    iam.delete_role_policy(RoleName=role_name(region), PolicyName="import")
    iam.delete_role(RoleName=role_name(region))
    elsewhere = f"arn:aws:ecr:{HUB[1]}:{HUB[0]}:repository/other/*"
    member_role(org, (account, region), resource=elsewhere)
    hub_policy(org, prefix)
    image = org.hub.push_image(unique("library/app"), "1")

    failure = refusal(org, account, region, f"{prefix}/{image.repository}")
    assert "no identity-based policy allows the ecr:BatchGetImage action" in failure["failureReason"]
    assert role_arn(account, region) in failure["failureReason"]


def test_a_role_that_may_not_get_an_authorization_token_cannot_import(org: OrgSandbox, prefix: str) -> None:
    account, region = "333333333333", "us-west-2"
    iam = org.client("iam", account, region)
    iam.delete_role_policy(RoleName=role_name(region), PolicyName="import")
    iam.delete_role(RoleName=role_name(region))
    member_role(org, (account, region), token=False)
    hub_policy(org, prefix)
    image = org.hub.push_image(unique("library/app"), "1")

    failure = refusal(org, account, region, f"{prefix}/{image.repository}")
    assert "no identity-based policy allows the ecr:GetAuthorizationToken action" in failure["failureReason"]


def test_the_hub_account_in_another_region_needs_no_registry_policy(org: OrgSandbox, prefix: str) -> None:
    # Within one account an Allow of the identity-based policy is enough (IAM's policy evaluation logic).
    same_account = (HUB[0], "eu-west-1")
    org.add_registry(*same_account)
    member_role(org, same_account)
    member_rule(org, *same_account, prefix)
    image = org.hub.push_image(unique("library/app"), "1")

    assert pull(org, *same_account, f"{prefix}/{image.repository}", "1").status == 200
    assert refusal(org, "222222222222", "eu-west-1", f"{prefix}/{image.repository}")


# --- the upstream counts each image once for the organization -------------------------------------------------------


def test_n_images_pulled_in_every_member_and_region_cost_the_upstream_n_pulls(org: OrgSandbox, prefix: str) -> None:
    hub_policy(org, prefix)
    images = [org.hub.push_image(unique("library/app"), "1") for _ in range(3)]
    before = pulls(org)

    for account, region in EVERY_MEMBER:
        for image in images:
            repository = f"{prefix}/{image.repository}"
            response = pull(org, account, region, repository, "1")
            assert response.status == 200, response.data
            layer = image.blobs[image.digest][1]
            url = org.endpoint(account, region).url
            assert blob(url, repository, layer, org.ecr_auth(account, region)).status == 200
    org.settle()

    assert pulls(org) - before == len(images)  # not len(images) x 4
    for account, region in EVERY_MEMBER:
        for image in images:
            held = org.registry(account, region).repository(f"{prefix}/{image.repository}")
            assert held is not None
            assert image.digest in held.manifests

    # A day later each member re-checks its tags with the hub, and the hub with the upstream: HEADs, no new pull.
    org.advance(hours=25)
    for account, region in EVERY_MEMBER:
        assert pull(org, account, region, f"{prefix}/{images[0].repository}", "1").status == 200
    assert pulls(org) - before == len(images)
