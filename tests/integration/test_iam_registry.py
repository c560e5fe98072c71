"""The ECR registry endpoint authorizes a pull as the principal whose GetAuthorizationToken issued the token.

ECR User Guide, "Private registry authentication" and "IAM permissions required to sync an upstream registry": a
pull needs ecr:BatchGetImage (manifests) and ecr:GetDownloadUrlForLayer (blobs); a first pull through a rule also
ecr:BatchImportUpstreamImage, and ecr:CreateRepository while the repository does not exist. A refusal is ECR's 403
with the registry error code DENIED.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import boto3
import pytest

from pullthrough.errors import RegistryError
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from sandbox import Sandbox
from sandbox.aws import iam, iam_guard, moto_ecr
from sandbox.aws.iam import Principal, Role, Statement
from tests.fake_aws import fake_aws

pytestmark = pytest.mark.sandbox

PREFIX = "registry-iam"
REPOSITORIES = f"arn:aws:ecr:*:*:repository/{PREFIX}/*"


def principal(sb: Sandbox, *actions: str) -> Principal:
    statements = (
        Statement.parse("Inline", 0, {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
        Statement.parse("Inline", 1, {"Effect": "Allow", "Action": list(actions), "Resource": REPOSITORIES}),
    )
    return Principal(Role(f"role-{uuid.uuid4().hex[:6]}", statements), "warm", sb.account, sb.region)


@pytest.fixture(scope="module")
def rule(sandbox: Sandbox) -> Iterator[str]:
    """A docker-hub rule on the sandbox and an image upstream; yields the image's upstream repository."""
    iam_guard.install()
    with fake_aws(sandbox.region):
        moto_ecr.install()
        sandbox.configure_rules()
        user, token = next(iter(sandbox.users.items()))
        arn = boto3.client("secretsmanager").create_secret(
            Name=f"ecr-pullthroughcache/{PREFIX}", SecretString=json.dumps({"username": user, "accessToken": token})
        )["ARN"]
        boto3.client("ecr").create_pull_through_cache_rule(
            ecrRepositoryPrefix=PREFIX,
            upstreamRegistryUrl="registry-1.docker.io",
            upstreamRegistry="docker-hub",
            credentialArn=arn,
        )
        yield sandbox.push_image(f"{PREFIX}-ns/app", "1.0", layer_sizes=(256,)).repository


def client_of(sb: Sandbox, acting: Principal) -> RegistryClient:
    with iam.acting_as(acting):
        data = boto3.client("ecr").get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(data["authorizationToken"]).decode().partition(":")[2]
    return RegistryClient(sb.ecr_url, name="ecr", credentials=Credentials("AWS", password), retries=0)


def test_a_pull_is_the_token_holders_and_a_blob_needs_get_download_url_for_layer(sandbox: Sandbox, rule: str) -> None:
    # Given a function that may import and read manifests, but not download layers
    reader = principal(sandbox, "ecr:BatchGetImage", "ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
    ecr = client_of(sandbox, reader)
    repository = f"{PREFIX}/{rule}"
    # When it pulls the image with the token it was given, Then the manifest comes (and ECR created the repository)
    manifest = ecr.get_manifest(repository, "1.0")
    assert repository in {r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]}
    # But a layer is refused as ECR refuses it: 403 DENIED naming the action and the function's session
    layer = manifest.parsed().blobs[-1].digest  # type: ignore[union-attr]
    with pytest.raises(RegistryError) as refused:
        ecr.fetch_blob(repository, layer)
    assert "DENIED" in str(refused.value) or "403" in str(refused.value)
    assert "ecr:GetDownloadUrlForLayer" in str(refused.value)
    # And the same pull with a token got outside any function is not evaluated
    anyone = RegistryClient(sandbox.ecr_url, name="ecr", credentials=Credentials("AWS", sandbox.ecr_password))
    assert anyone.fetch_blob(repository, layer) > 0


def test_a_first_pull_needs_the_right_to_create_the_repository(sandbox: Sandbox, rule: str) -> None:
    # Given a function that may read and import but not create repositories, and a repository not yet created
    importer = principal(sandbox, "ecr:BatchGetImage", "ecr:BatchImportUpstreamImage", "ecr:GetDownloadUrlForLayer")
    repository = f"{PREFIX}/{rule}-{uuid.uuid4().hex[:4]}"
    # When it pulls through the rule, Then ECR refuses the first pull for the missing ecr:CreateRepository
    with pytest.raises(RegistryError) as refused:
        client_of(sandbox, importer).get_manifest(repository, "1.0")
    assert "ecr:CreateRepository" in str(refused.value)
    # And a function without ecr:BatchImportUpstreamImage may not pull through the rule at all
    with pytest.raises(RegistryError) as refused:
        client_of(sandbox, principal(sandbox, "ecr:BatchGetImage")).get_manifest(f"{PREFIX}/{rule}", "1.0")
    assert "ecr:BatchImportUpstreamImage" in str(refused.value)
