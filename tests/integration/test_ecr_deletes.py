# ruff: noqa: F811 - the shared fixtures (aws, hub) are parameters by name
"""The sandbox's ECR deletes images and records pulls as AWS documents (sandbox/aws/moto_ecr_images.py names sources).

Raw boto3 and urllib3 on purpose, like test_ecr_model.py: these tests prove the sandbox, not the library.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import Sandbox
from tests.integration.registry_http import ecr_auth, manifest, unique
from tests.integration.test_ecr_model import aws, hub  # noqa: F401 - the fixtures, shared by name

pytestmark = pytest.mark.sandbox


def held(ecr: Any, repository: str) -> dict[str, list[str]]:
    return {
        d["imageDigest"]: d.get("imageTags", []) for d in ecr.describe_images(repositoryName=repository)["imageDetails"]
    }


def test_batch_delete_image_by_digest_removes_the_image_and_its_tags_and_fails_what_it_lacks(
    sandbox: Sandbox,
    aws: tuple[Any, Any],
    hub: str,
) -> None:
    # Given an image pulled through the cache, and another tag of the repository
    image = sandbox.push_image(unique("team/deleted"), "1")
    other = sandbox.push_image(image.repository, "2", seed=2)
    repository = f"{hub}/{image.repository}"
    for tag in ("1", "2"):
        manifest(sandbox.ecr_url, repository, tag, ecr_auth(sandbox))
    missing = "sha256:" + "0" * 64
    # When it is deleted by digest, with a digest ECR does not hold
    answer = aws[0].batch_delete_image(
        repositoryName=repository, imageIds=[{"imageDigest": image.digest}, {"imageDigest": missing}]
    )
    # Then the image and its tag are gone (botocore: "the image (and all of its tags)"), the unknown id failed
    assert answer["imageIds"] == [{"imageDigest": image.digest}]
    assert [(f["imageId"], f["failureCode"]) for f in answer["failures"]] == [
        ({"imageDigest": missing}, "ImageNotFound")
    ]
    assert held(aws[0], repository) == {other.digest: ["2"]}


def test_a_platform_image_its_index_lists_is_not_deleted_before_the_index(
    sandbox: Sandbox,
    aws: tuple[Any, Any],
    hub: str,
) -> None:
    # Given a multi-platform image in the cache
    image = sandbox.push_image(unique("team/multi"), "1", platforms=("linux/amd64", "linux/arm64"))
    repository = f"{hub}/{image.repository}"
    manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    sandbox.registry.settle()
    child = image.platforms["linux/arm64"]
    # When a platform image is deleted while the index stays, Then ECR refuses (ImageReferencedByManifestList)
    refused = aws[0].batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": child}])
    assert [f["failureCode"] for f in refused["failures"]] == ["ImageReferencedByManifestList"]
    # When the index goes first, Then the platform images can follow
    aws[0].batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": image.digest}])
    followed = aws[0].batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": child}])
    assert followed["failures"] == []
    assert child not in held(aws[0], repository)


def test_batch_get_image_by_digest_counts_as_a_pull(sandbox: Sandbox, aws: tuple[Any, Any], hub: str) -> None:
    # Given an image pulled through the cache a day and a half ago
    image = sandbox.push_image(unique("team/read"), "1")
    repository = f"{hub}/{image.repository}"
    manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    before = aws[0].describe_images(repositoryName=repository)["imageDetails"][0]["lastRecordedPullTime"]
    sandbox.registry.clock.advance(hours=36)
    # When its manifest is read by digest through the control plane
    aws[0].batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": image.digest}])
    # Then lastRecordedPullTime moved (containers-roadmap #2390): reading a manifest keeps an image "in use"
    after = aws[0].describe_images(repositoryName=repository)["imageDetails"][0]["lastRecordedPullTime"]
    assert after > before
