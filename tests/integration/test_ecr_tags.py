"""`pullthrough.aws.ecr.describe_tags` against moto: which of several tags a repository holds, in as few calls."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import boto3
import pytest

from pullthrough.aws import ecr
from tests.fake_aws import fake_aws

REGION = "us-east-1"


@pytest.fixture
def registry() -> Iterator[object]:
    with fake_aws(REGION):
        client = boto3.client("ecr", region_name=REGION)
        client.create_repository(repositoryName="cache/app")
        for tag in ("1.0", "1.1", "2.0"):
            layer = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": layer, "size": 1},
                "layers": [
                    {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 1}
                ],
            }
            client.put_image(repositoryName="cache/app", imageManifest=json.dumps(manifest), imageTag=tag)
        yield client


def test_several_tags_are_found_in_one_listing_and_absent_ones_left_out(registry: object) -> None:
    # Given a repository holding 1.0, 1.1 and 2.0
    # When three tags are asked for, one of which it lacks
    found = ecr.describe_tags("cache/app", ["1.0", "2.0", "9.9"], REGION)
    # Then the two it holds come back, by tag, with their digests
    assert sorted(found) == ["1.0", "2.0"]
    assert all(image.digest.startswith("sha256:") and image.repository == "cache/app" for image in found.values())


def test_one_tag_is_described_by_its_id(registry: object) -> None:
    assert list(ecr.describe_tags("cache/app", ["1.1"], REGION)) == ["1.1"]
    assert ecr.describe_tags("cache/app", ["9.9"], REGION) == {}


def test_a_repository_that_does_not_exist_holds_nothing(registry: object) -> None:
    # A cache repository exists only after its first pull: asking before is an answer, not an error
    assert ecr.describe_tags("cache/never-pulled", ["1.0", "2.0"], REGION) == {}
