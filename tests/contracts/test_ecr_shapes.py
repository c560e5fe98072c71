"""Every answer the sandbox gives for the ECR operations Pullthrough calls conforms to botocore's output shape.

The operations are driven through boto3 against moto with the sandbox's extensions (sandbox/moto_ecr*.py: pull-through
cache rules, repository creation templates, images answered from the sandbox's registry model, the registry token), so
what is checked is the body that went over the wire, before botocore's parser had a chance to forgive it
(tests/contracts/shapes.py). A refusal must be an error the operation's model lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from sandbox import Sandbox
from sandbox.aws import moto_ecr
from tests.contracts.shapes import problems
from tests.fake_aws import fake_aws

pytestmark = pytest.mark.sandbox

MODEL = botocore.session.get_session().get_service_model("ecr")
# The ECR operations Pullthrough calls (layers/pullthrough/pullthrough/aws/ecr.py and ptc.py), and ListImages, which
# the sandbox answers from its registry model as well.
CALLED = (
    "GetAuthorizationToken",
    "DescribePullThroughCacheRules",
    "CreatePullThroughCacheRule",
    "UpdatePullThroughCacheRule",
    "DeletePullThroughCacheRule",
    "ValidatePullThroughCacheRule",
    "DescribeRepositoryCreationTemplates",
    "CreateRepositoryCreationTemplate",
    "UpdateRepositoryCreationTemplate",
    "DeleteRepositoryCreationTemplate",
    "DescribeImages",
    "ListImages",
    "BatchGetImage",
    "BatchCheckLayerAvailability",
    "GetDownloadUrlForLayer",
)
LIFECYCLE = json.dumps(
    {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}}]}
)  # fmt: skip
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": ["ecr:BatchGetImage"]}]}  # noqa: E501
)  # fmt: skip


@dataclass
class Wire:
    """What went over the wire: (operation, HTTP status, decoded body), and the refusals (operation, error code)."""

    answers: list[tuple[str, int, Any]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def bodies(self, operation: str) -> list[Any]:
        return [body for name, status, body in self.answers if name == operation and status < 300]


@pytest.fixture(scope="module")
def wire(sandbox: Sandbox) -> Iterator[Wire]:
    seen = Wire()
    with fake_aws(sandbox.region):
        moto_ecr.install()
        sandbox.configure_rules()
        ecr = boto3.client("ecr", region_name=sandbox.region)

        def keep(http_response: Any, model: Any, **_: Any) -> None:
            seen.answers.append((model.name, http_response.status_code, json.loads(http_response.content or b"{}")))

        ecr.meta.events.register("after-call.ecr", keep)
        _drive(ecr, sandbox, seen)
        yield seen


def _refused(seen: Wire, operation: str, call: Any) -> None:
    with pytest.raises(ClientError) as refused:
        call()
    seen.errors.append((operation, str(refused.value.response["Error"]["Code"])))


def _drive(ecr: Any, sb: Sandbox, seen: Wire) -> None:
    """Every operation, with the parameters Pullthrough uses and a few that fail."""
    user, token = next(iter(sb.users.items()))
    secret = boto3.client("secretsmanager", region_name=sb.region).create_secret(
        Name="ecr-pullthroughcache/shapes", SecretString=json.dumps({"username": user, "accessToken": token})
    )["ARN"]
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="shapes-hub", upstreamRegistryUrl="registry-1.docker.io", upstreamRegistry="docker-hub",
        credentialArn=secret,
    )  # fmt: skip
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="shapes-quay", upstreamRegistryUrl="quay.io")
    first = ecr.describe_pull_through_cache_rules(maxResults=1)
    ecr.describe_pull_through_cache_rules(maxResults=1, nextToken=first["nextToken"])
    ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["shapes-hub"])
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="shapes-hub", credentialArn=secret)
    ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="shapes-hub")
    ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="shapes-quay")
    template = {
        "prefix": "shapes-hub",
        "description": "shapes",
        "encryptionConfiguration": {"encryptionType": "AES256"},
        "resourceTags": [{"Key": "team", "Value": "platform"}],
        "customRoleArn": "arn:aws:iam::123456789012:role/pullthrough/shapes",
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}],
        "lifecyclePolicy": LIFECYCLE,
        "repositoryPolicy": POLICY,
        "appliedFor": ["PULL_THROUGH_CACHE"],
    }
    ecr.create_repository_creation_template(**template)
    ecr.update_repository_creation_template(**{**template, "description": "shapes, again"})
    ecr.describe_repository_creation_templates()
    ecr.describe_repository_creation_templates(prefixes=["shapes-hub"], maxResults=1)
    # An image pulled through the rule, as a consumer would (its repository is created from the template).
    image = sb.push_image("shapes/app", "1.0", platforms=("linux/amd64", "linux/arm64"), layer_sizes=(256,))
    consumer = RegistryClient(sb.ecr_url, name="ecr", credentials=Credentials("AWS", sb.ecr_password))
    repository = "shapes-hub/shapes/app"
    consumer.get_manifest(repository, "1.0")
    child = image.platforms["linux/amd64"]
    consumer.get_manifest(repository, child)
    for blob in image.blobs[child]:
        consumer.fetch_blob(repository, blob)
    sb.registry.settle()  # ECR imports what the consumer pulled
    other = image.platforms["linux/arm64"]
    ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=image.blobs[other][1])
    sb.registry.settle()
    ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=image.blobs[other][1])
    ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "1.0"}])
    ecr.describe_images(repositoryName=repository, filter={"tagStatus": "TAGGED"}, maxResults=1000)
    ecr.list_images(repositoryName=repository)
    ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageTag": "1.0"}, {"imageDigest": child}, {"imageTag": "missing"}],
        acceptedMediaTypes=["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"],
    )
    ecr.batch_check_layer_availability(
        repositoryName=repository, layerDigests=[*image.blobs[child], *image.blobs[other]]
    )
    ecr.get_authorization_token()
    # Refusals: each must be an error the operation's model lists.
    _refused(
        seen, "DescribeImages", lambda: ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "x"}])
    )
    _refused(seen, "DescribeImages", lambda: ecr.describe_images(repositoryName="shapes-hub/absent"))
    _refused(
        seen,
        "GetDownloadUrlForLayer",
        lambda: ecr.get_download_url_for_layer(repositoryName=repository, layerDigest="sha256:" + "0" * 64),
    )
    _refused(
        seen,
        "BatchGetImage",
        lambda: ecr.batch_get_image(repositoryName="shapes-hub/absent", imageIds=[{"imageTag": "1"}]),
    )
    _refused(
        seen,
        "CreatePullThroughCacheRule",
        lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="shapes-quay", upstreamRegistryUrl="quay.io"),
    )
    _refused(
        seen,
        "DescribePullThroughCacheRules",
        lambda: ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["shapes-none"]),
    )
    _refused(
        seen,
        "UpdatePullThroughCacheRule",
        lambda: ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="shapes-none", credentialArn=secret),
    )
    _refused(
        seen,
        "ValidatePullThroughCacheRule",
        lambda: ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="shapes-none"),
    )
    _refused(seen, "CreateRepositoryCreationTemplate", lambda: ecr.create_repository_creation_template(**template))
    _refused(
        seen, "DeleteRepositoryCreationTemplate", lambda: ecr.delete_repository_creation_template(prefix="shapes-none")
    )
    ecr.delete_repository_creation_template(prefix="shapes-hub")
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="shapes-quay")
    _refused(
        seen,
        "DeletePullThroughCacheRule",
        lambda: ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="shapes-quay"),
    )
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="shapes-hub")


def test_every_operation_pullthrough_calls_was_answered(wire: Wire) -> None:
    # Then each was answered at least once with success, so the checks below cover them all
    assert [operation for operation in CALLED if not wire.bodies(operation)] == []


@pytest.mark.parametrize("operation", CALLED)
def test_each_answer_conforms_to_botocores_output_shape(wire: Wire, operation: str) -> None:
    # Given every successful answer of the operation, Then each body conforms to the operation's output shape
    shape = MODEL.operation_model(operation).output_shape
    found = {i: problems(shape, body) for i, body in enumerate(wire.bodies(operation))}
    assert {i: p for i, p in found.items() if p} == {}


def test_each_refusal_is_an_error_the_operation_models(wire: Wire) -> None:
    # Given every refusal the sandbox answered, Then its code is one of the operation's modelled errors
    unmodelled = []
    for operation, code in wire.errors:
        modelled = {shape.metadata.get("error", {}).get("code", shape.name) for shape in _errors(operation)}
        if code not in modelled:
            unmodelled.append((operation, code, sorted(modelled)))
    assert unmodelled == []
    assert len(wire.errors) == 11


def _errors(operation: str) -> list[Any]:
    return list(MODEL.operation_model(operation).error_shapes)


def test_the_validator_finds_what_aws_would_never_send() -> None:
    # Given answers that break the model in each way the validator checks, Then each is reported
    rules = MODEL.operation_model("DescribePullThroughCacheRules").output_shape
    validate = MODEL.operation_model("ValidatePullThroughCacheRule").output_shape
    layers = MODEL.operation_model("BatchCheckLayerAvailability").output_shape
    token = MODEL.operation_model("GetAuthorizationToken").output_shape
    cases = {
        "unknown member": (rules, {"pullThroughCacheRules": [], "extra": 1}),
        "wrong type": (validate, {"isValid": "true"}),
        "enum": (layers, {"layers": [{"layerAvailability": "MAYBE"}]}),
        "pattern": (rules, {"pullThroughCacheRules": [{"registryId": "12345"}]}),
        "length": (rules, {"pullThroughCacheRules": [{"ecrRepositoryPrefix": "x"}]}),
        "timestamp": (token, {"authorizationData": [{"expiresAt": "2026-01-01T00:00:00Z"}]}),
    }
    for case, (shape, body) in cases.items():
        assert problems(shape, body), case
    assert problems(validate, {"isValid": True, "ecrRepositoryPrefix": "docker-hub", "upstreamRegistryUrl": "x"}) == []
