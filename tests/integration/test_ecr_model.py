"""The sandbox's ECR behaves as AWS documents: what a pull through a rule imports, when, and what each API answers.

Each test names the behaviour of sandbox/registries/ecr_registry.py it proves (and that module names AWS's source for
it). Raw urllib3 and boto3 on purpose: these tests prove the sandbox, so they must not depend on the library.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox import PushedImage, Sandbox
from tests.integration.registry_http import (
    blob,
    docker_hub_rule,
    ecr_auth,
    http,
    manifest,
    sha256,
    unique,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture
def aws(sandbox: Sandbox) -> Iterator[tuple[Any, Any]]:
    """moto with the sandbox's ECR extensions: (ecr client, secretsmanager client), fresh state per test."""
    from sandbox.aws import moto_ecr

    with mock_aws():
        moto_ecr.install()
        sandbox.configure_rules()
        yield (
            boto3.client("ecr", region_name=sandbox.region),
            boto3.client("secretsmanager", region_name=sandbox.region),
        )
    sandbox.registry.imports.clear()
    sandbox.registry.clock.reset()
    sandbox.registry.events.take()
    sandbox.upstream.faults.clear()


@pytest.fixture
def hub(sandbox: Sandbox, aws: tuple[Any, Any]) -> str:
    """A Docker Hub rule with the sandbox user's credentials; its prefix."""
    prefix = unique("hub")
    user, password = next(iter(sandbox.users.items()))
    docker_hub_rule(aws, prefix, user, password)
    return prefix


def pulls(sb: Sandbox) -> int:
    return sb.upstream.counters[("GET", "manifest")]


def multi(sb: Sandbox) -> PushedImage:
    return sb.push_image(unique("team/multi"), "1", platforms=("linux/amd64", "linux/arm64", "linux/s390x"))


def ecr_error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


# --- a pull of a tag ---------------------------------------------------------------------------------------------


def test_a_tag_pull_imports_the_index_and_every_manifest_it_lists_not_the_layers(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given a three-platform image upstream
    image = multi(sandbox)
    repository = f"{hub}/{image.repository}"
    before = pulls(sandbox)
    # When a client pulls its tag through the cache (the index only)
    pulled = manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    sandbox.registry.settle()
    # Then ECR created the repository, imported the index and all three manifests (the upstream counted four pulls)
    assert pulled.status == 200
    assert pulled.headers["Docker-Content-Digest"] == image.digest
    described = aws[0].describe_images(repositoryName=repository)["imageDetails"]
    assert {d["imageDigest"] for d in described} == {image.digest, *image.platforms.values()}
    assert pulls(sandbox) - before == 4
    # And no layer: it is imported only when something asks ECR for it
    layers = [d for digests in image.blobs.values() for d in digests]
    found = aws[0].batch_check_layer_availability(repositoryName=repository, layerDigests=layers)
    assert found["layers"] == []
    assert {f["failureCode"] for f in found["failures"]} == {"MissingLayerDigest"}


def test_a_head_of_a_tag_imports_as_a_get_does(sandbox: Sandbox, aws: tuple[Any, Any], hub: str) -> None:
    # Given an image (containerd resolves a tag with a HEAD, then fetches by digest)
    image = sandbox.push_image(unique("team/head"), "1")
    auth = ecr_auth(sandbox)
    # When the tag is resolved with a HEAD, then the manifest fetched by its digest
    head = manifest(sandbox.ecr_url, f"{hub}/{image.repository}", "1", auth, method="HEAD")
    by_digest = manifest(sandbox.ecr_url, f"{hub}/{image.repository}", head.headers["Docker-Content-Digest"], auth)
    # Then both answer: the HEAD imported the manifest
    assert (head.status, by_digest.status) == (200, 200)
    assert sha256(by_digest.data) == image.digest


def test_a_first_pull_by_digest_is_refused(sandbox: Sandbox, aws: tuple[Any, Any], hub: str) -> None:
    # Given an image ECR never pulled
    image = multi(sandbox)
    repository = f"{hub}/{image.repository}"
    auth = ecr_auth(sandbox)
    # When it is pulled by digest, before and after its tag was pulled
    before = manifest(sandbox.ecr_url, repository, image.digest, auth)
    manifest(sandbox.ecr_url, repository, "1", auth)
    after = manifest(sandbox.ecr_url, repository, image.digest, auth)
    child = manifest(sandbox.ecr_url, repository, image.platforms["linux/arm64"], auth)
    # Then the first pull by digest is an unknown manifest (containers-roadmap #2837); later ones are served
    assert before.status == 404
    assert before.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert (after.status, child.status) == (200, 200)


def test_a_cached_tag_is_rechecked_upstream_at_most_once_a_day(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given a tag pulled through the cache, then moved upstream
    name = unique("team/moving")
    first = sandbox.push_image(name, "1", seed=1)
    repository = f"{hub}/{name}"
    auth = ecr_auth(sandbox)
    manifest(sandbox.ecr_url, repository, "1", auth)
    moved = sandbox.push_image(name, "1", seed=2)
    before = (pulls(sandbox), sandbox.upstream.counters[("HEAD", "manifest")])
    # When it is pulled again within the day, and after a day
    same_day = manifest(sandbox.ecr_url, repository, "1", auth)
    asked = (pulls(sandbox), sandbox.upstream.counters[("HEAD", "manifest")])
    sandbox.registry.clock.advance(hours=25)
    next_day = manifest(sandbox.ecr_url, repository, "1", auth)
    # Then ECR served the digest it held without asking the upstream, and the day after it checked and imported
    assert same_day.headers["Docker-Content-Digest"] == first.digest
    assert asked == before
    assert next_day.headers["Docker-Content-Digest"] == moved.digest
    assert pulls(sandbox) == before[0] + 1


def test_a_due_recheck_with_the_upstream_down_serves_the_cached_copy(
    own_sandbox: Sandbox, aws: tuple[Any, Any]
) -> None:
    # Given a tag pulled through the cache, its layer imported, a day passed, and the upstream down
    sb = own_sandbox
    user, password = next(iter(sb.users.items()))
    docker_hub_rule(aws, "hub", user, password)
    image = sb.push_image("library/offline", "1", layer_sizes=(1000,))
    auth = ecr_auth(sb)
    manifest(sb.ecr_url, "hub/library/offline", "1", auth)
    for digest in image.blobs[image.digest]:
        assert blob(sb.ecr_url, "hub/library/offline", digest, auth).status == 200
    sb.registry.settle()
    sb.registry.clock.advance(hours=25)
    sb.registry.events.take()
    sb.stop_upstream()
    # When the image is pulled again
    again = manifest(sb.ecr_url, "hub/library/offline", "1", auth)
    data = [blob(sb.ecr_url, "hub/library/offline", d, auth).data for d in image.blobs[image.digest]]
    # Then ECR serves what it holds, and its event says the sync failed
    assert again.headers["Docker-Content-Digest"] == image.digest
    assert [sha256(d) for d in data] == image.blobs[image.digest]
    (event,) = sb.registry.events.take()
    assert (event["detail"]["sync-status"], event["detail"]["failure-code"]) == ("FAILED", "UpstreamUnavailable")


@pytest.fixture
def own_sandbox(docker_registry: str, aws: tuple[Any, Any], tmp_path: Any) -> Iterator[Sandbox]:
    """A sandbox of this test's own, for tests that take the upstream down (after `aws`: the hooks point here)."""
    with Sandbox(tmp_path / "sandbox") as started:
        yield started


# --- layers ------------------------------------------------------------------------------------------------------


def test_get_download_url_for_layer_imports_a_layer_and_then_points_at_ecrs_storage(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given an image whose tag was pulled (ECR holds its manifest, none of its layers)
    image = sandbox.push_image(unique("team/layers"), "1", layer_sizes=(2048,))
    repository = f"{hub}/{image.repository}"
    manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    layer = image.blobs[image.digest][1]
    # When GetDownloadUrlForLayer is called for the layer, twice
    first = aws[0].get_download_url_for_layer(repositoryName=repository, layerDigest=layer)
    sandbox.registry.settle()
    second = aws[0].get_download_url_for_layer(repositoryName=repository, layerDigest=layer)
    # Then the first answer is the upstream's storage URL while ECR imports it; then ECR holds it, at its own URL
    assert "/cdn/" in first["downloadUrl"]
    assert second["downloadUrl"].startswith(sandbox.ecr_url)
    assert "X-Amz-Signature=" in second["downloadUrl"]
    assert sha256(http.request("GET", second["downloadUrl"]).data) == layer
    (held,) = aws[0].batch_check_layer_availability(repositoryName=repository, layerDigests=[layer])["layers"]
    assert (held["layerAvailability"], held["layerSize"]) == ("AVAILABLE", 2048)
    # And a layer no image of the repository lists is refused as AWS documents
    code, _ = ecr_error(
        lambda: aws[0].get_download_url_for_layer(repositoryName=repository, layerDigest="sha256:" + "0" * 64)
    )
    assert code == "LayerInaccessibleException"


def test_a_layer_being_imported_is_unavailable_then_available(sandbox: Sandbox, aws: tuple[Any, Any], hub: str) -> None:
    # Given an image whose tag was pulled, and ECR's imports held
    image = sandbox.push_image(unique("team/slow"), "1")
    repository = f"{hub}/{image.repository}"
    manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    layer = image.blobs[image.digest][1]
    sandbox.registry.imports.hold()
    # When the layer is asked for, checked, released and checked again
    aws[0].get_download_url_for_layer(repositoryName=repository, layerDigest=layer)
    during = aws[0].batch_check_layer_availability(repositoryName=repository, layerDigests=[layer])["layers"]
    sandbox.registry.imports.release()
    sandbox.registry.settle()
    after = aws[0].batch_check_layer_availability(repositoryName=repository, layerDigests=[layer])["layers"]
    # Then it was UNAVAILABLE while ECR imported it, AVAILABLE after
    assert [x["layerAvailability"] for x in during] == ["UNAVAILABLE"]
    assert [x["layerAvailability"] for x in after] == ["AVAILABLE"]


def test_a_blob_pull_is_redirected_upstream_until_ecr_holds_it(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given an image whose tag was pulled
    image = sandbox.push_image(unique("team/redirect"), "1")
    repository = f"{hub}/{image.repository}"
    auth = ecr_auth(sandbox)
    manifest(sandbox.ecr_url, repository, "1", auth)
    layer = image.blobs[image.digest][1]
    # When a client asks the registry endpoint for a layer, before and after ECR imported it
    first = http.request("GET", f"{sandbox.ecr_url}/v2/{repository}/blobs/{layer}", headers=auth)
    sandbox.registry.settle()
    later = http.request("GET", f"{sandbox.ecr_url}/v2/{repository}/blobs/{layer}", headers=auth)
    # Then the first redirect goes to the upstream's storage (containers-roadmap #939, #2304), the later to ECR's
    assert first.status == later.status == 307
    assert "/cdn/" in first.headers["Location"]
    assert later.headers["Location"].startswith(f"{sandbox.ecr_url}/ecr-layers/")
    # And a pre-signed URL whose signature was changed is refused
    tampered = later.headers["Location"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert http.request("GET", tampered).status == 403


# --- refusals and their codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("403", "UpstreamAccessDenied"),
        ("429", "UpstreamTooManyRequests"),
        ("502", "UpstreamUnavailable"),
        ("reset", "UpstreamUnavailable"),
    ],
)
def test_batch_get_image_fetches_from_the_upstream_and_says_why_it_could_not(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str, fault: str, code: str
) -> None:
    # Given a repository of the rule (a first pull created it), and an image the upstream then refuses to ECR
    image = sandbox.push_image(unique("team/refused"), "1")
    repository = f"{hub}/{image.repository}"
    manifest(sandbox.ecr_url, repository, "0", ecr_auth(sandbox))  # an unknown tag: the repository is created
    path = rf"^/v2/{image.repository}/manifests/"
    if fault == "reset":
        sandbox.upstream.faults.reset(path=path, times=None)
    else:
        sandbox.upstream.faults.status(int(fault), path=path, times=None)
    # When BatchGetImage asks for its tag
    answer = aws[0].batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "1"}])
    # Then the image's failure carries ECR's code for the upstream's answer
    assert answer["images"] == []
    assert [f["failureCode"] for f in answer["failures"]] == [code]
    # And the sync was sent as a FAILED "ECR Pull Through Cache Action" event with that code
    failed = [e for e in sandbox.registry.events.take() if e["detail"].get("image-tag") == "1"]
    assert [e["detail"]["failure-code"] for e in failed] == [code]


def test_batch_get_image_without_a_readable_secret_is_unable_to_get_the_upstream_image(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given a rule whose secret's value is no longer {"username", "accessToken"}
    image = sandbox.push_image(unique("team/secretless"), "1")
    repository = f"{hub}/{image.repository}"
    manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    aws[1].put_secret_value(SecretId=f"ecr-pullthroughcache/{hub}", SecretString=json.dumps({"token": "x"}))
    # When BatchGetImage is called
    code, _ = ecr_error(lambda: aws[0].batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "1"}]))
    # Then the whole call fails as botocore's model says a secret problem does
    assert code == "UnableToGetUpstreamImageException"


def test_a_refused_upstream_login_is_denied_by_the_registry_endpoint_in_ecrs_words(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given an image whose repository's token the upstream refuses to ECR
    image = sandbox.push_image(unique("team/denied"), "1")
    sandbox.upstream.faults.token_status(401, repository=image.repository, times=None)
    # When a client pulls it through the cache
    pulled = manifest(sandbox.ecr_url, f"{hub}/{image.repository}", "1", ecr_auth(sandbox))
    # Then ECR says the upstream authentication failed (what docker printed in containers-roadmap #2354)
    assert pulled.status == 403
    assert "authentication to the upstream registry failed" in pulled.json()["errors"][0]["message"]


# --- what ECR records --------------------------------------------------------------------------------------------


def test_each_sync_sends_an_action_event_shaped_as_the_guides_sample(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given an image
    image = sandbox.push_image(unique("team/evented"), "1")
    repository = f"{hub}/{image.repository}"
    sandbox.registry.events.take()
    # When its tag is pulled through the cache
    manifest(sandbox.ecr_url, repository, "1", ecr_auth(sandbox))
    # Then ECR sent one SUCCESS event with the documented fields
    (event,) = sandbox.registry.events.take()
    assert (event["source"], event["detail-type"]) == ("aws.ecr", "ECR Pull Through Cache Action")
    assert event["resources"] == [f"arn:aws:ecr:{sandbox.region}:{sandbox.account}:repository/{repository}"]
    assert event["detail"] == {
        "rule-version": "1",
        "sync-status": "SUCCESS",
        "ecr-repository-prefix": hub,
        "repository-name": repository,
        "upstream-registry-url": "registry-1.docker.io",
        "image-tag": "1",
        "image-digest": image.digest,
    }


def test_last_recorded_pull_time_is_refreshed_at_most_daily(sandbox: Sandbox, aws: tuple[Any, Any], hub: str) -> None:
    # Given an image pulled through the cache
    image = sandbox.push_image(unique("team/pulled"), "1")
    repository = f"{hub}/{image.repository}"
    auth = ecr_auth(sandbox)
    manifest(sandbox.ecr_url, repository, "1", auth)

    def recorded() -> Any:
        (detail,) = aws[0].describe_images(repositoryName=repository, imageIds=[{"imageTag": "1"}])["imageDetails"]
        return detail["lastRecordedPullTime"]

    first = recorded()
    # When it is pulled again an hour later, and again a day later
    sandbox.registry.clock.advance(hours=1)
    manifest(sandbox.ecr_url, repository, "1", auth)
    hour_later = recorded()
    sandbox.registry.clock.advance(hours=24)
    manifest(sandbox.ecr_url, repository, "1", auth)
    day_later = recorded()
    # Then the hour-later pull did not move it (botocore: refreshed "at least once every 24 hours"), the day-later did
    assert hour_later == first
    assert day_later - first >= timedelta(hours=25) - timedelta(seconds=1)


def test_an_archived_image_reports_its_storage_class_and_is_not_served(
    sandbox: Sandbox, aws: tuple[Any, Any], hub: str
) -> None:
    # Given an image pulled through the cache with its layer imported, then archived
    image = sandbox.push_image(unique("team/archived"), "1")
    repository = f"{hub}/{image.repository}"
    auth = ecr_auth(sandbox)
    manifest(sandbox.ecr_url, repository, "1", auth)
    layer = image.blobs[image.digest][1]
    aws[0].get_download_url_for_layer(repositoryName=repository, layerDigest=layer)
    sandbox.registry.settle()
    sandbox.registry.archive(repository, image.digest)
    # When it is described, its layer checked, and pulled
    (detail,) = aws[0].describe_images(repositoryName=repository)["imageDetails"]
    (held,) = aws[0].batch_check_layer_availability(repositoryName=repository, layerDigests=[layer])["layers"]
    pulled = manifest(sandbox.ecr_url, repository, "1", auth)
    # Then ECR says ARCHIVED (botocore's ImageStatus and LayerAvailability) and does not serve it until restored
    assert detail["imageStatus"] == "ARCHIVED"
    assert held["layerAvailability"] == "ARCHIVED"
    assert pulled.status == 403
    sandbox.registry.restore(repository, image.digest)
    assert manifest(sandbox.ecr_url, repository, "1", auth).status == 200


def test_a_rotated_secret_is_used_on_the_next_import(sandbox: Sandbox, aws: tuple[Any, Any]) -> None:
    # Given a rule whose user's token is rotated upstream and in the secret after a first pull
    prefix = unique("rotating")
    user, first_token = unique("rotating-user"), "token-1"
    sandbox.add_user(user, first_token)
    arn = docker_hub_rule(aws, prefix, user, first_token)
    image = sandbox.push_image(unique("private/rotating"), "1")
    auth = ecr_auth(sandbox)
    assert manifest(sandbox.ecr_url, f"{prefix}/{image.repository}", "1", auth).status == 200
    sandbox.add_user(user, "token-2")
    aws[1].put_secret_value(SecretId=arn, SecretString=json.dumps({"username": user, "accessToken": "token-2"}))
    # When a new tag is pulled through the rule
    other = sandbox.push_image(image.repository, "2", seed=2)
    again = manifest(sandbox.ecr_url, f"{prefix}/{image.repository}", "2", auth)
    # Then ECR authenticated upstream with the new token (the secret's AWSCURRENT value is read on every import)
    assert again.status == 200
    assert again.headers["Docker-Content-Digest"] == other.digest


def test_a_path_no_rule_covers_is_an_unknown_repository(sandbox: Sandbox, aws: tuple[Any, Any]) -> None:
    unknown = manifest(sandbox.ecr_url, "nope/team/app", "1", ecr_auth(sandbox))
    assert unknown.status == 404
    assert unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
