"""The sandbox's registry half against the real distribution registries: token realm, front, faults, ECR endpoint.

Raw urllib3 on purpose: these tests prove the sandbox, so they must not depend on the library's registry client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from moto import mock_aws

from sandbox import PushedImage, Sandbox
from sandbox.registries.tokens import token_claims
from tests.integration.registry_http import (
    SERVICE,
    basic,
    blob,
    docker_hub_rule,
    ecr_auth,
    http,
    layer_of,
    manifest,
    sha256,
    token,
    unique,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture
def front(sandbox: Sandbox) -> Iterator[Any]:
    """The session sandbox's upstream front; faults never outlive the test that set them."""
    yield sandbox.upstream
    sandbox.upstream.faults.clear()


@pytest.fixture
def aws(sandbox: Sandbox) -> Iterator[tuple[Any, Any]]:
    """moto with the sandbox's ECR extensions: (ecr client, secretsmanager client), fresh state per test."""
    from sandbox.aws import moto_ecr

    with mock_aws():
        moto_ecr.install()
        sandbox.configure_rules()  # another test may have pointed moto_ecr's process-wide hooks elsewhere
        yield (
            boto3.client("ecr", region_name=sandbox.region),
            boto3.client("secretsmanager", region_name=sandbox.region),
        )


@pytest.fixture
def own_sandbox(docker_registry: str, aws: tuple[Any, Any], tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox of this test's own, for tests that take the upstream down or stop everything.

    After `aws`, so moto's hooks point at this sandbox while it runs (and back at the session's after).
    """
    with Sandbox(tmp_path / "sandbox") as started:
        yield started


# --- token realm -----------------------------------------------------------------------------------------------------


def test_anonymous_token_pulls_a_public_repository(sandbox: Sandbox) -> None:
    # Given a public image upstream
    image = sandbox.push_image(unique("library/public"), "1.0")
    # When an anonymous client asks the realm for pull and uses the token
    granted = token(sandbox, image.repository)
    response = manifest(sandbox.upstream_url, image.repository, "1.0", {"Authorization": f"Bearer {granted}"})
    # Then the token grants pull only, and the manifest is served
    assert token_claims(granted)["access"] == [{"type": "repository", "name": image.repository, "actions": ["pull"]}]
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == image.digest


def test_private_repository_needs_credentials(sandbox: Sandbox) -> None:
    # Given an image under private/
    image = sandbox.push_image(unique("private/app"), "v1")
    user, password = next(iter(sandbox.users.items()))
    # When fetched with an anonymous token, then with a token for valid credentials
    anonymous = manifest(
        sandbox.upstream_url, image.repository, "v1", {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    )
    granted = token(sandbox, image.repository, (user, password))
    authenticated = manifest(sandbox.upstream_url, image.repository, "v1", {"Authorization": f"Bearer {granted}"})
    # Then the anonymous pull is refused and the authenticated one served
    assert anonymous.status == 401
    assert authenticated.status == 200
    assert token_claims(granted)["sub"] == user


def test_wrong_credentials_get_401_from_the_realm_like_docker_hub(sandbox: Sandbox) -> None:
    # Given a known user with a wrong token, and an unknown user
    user = next(iter(sandbox.users))
    url = f"{sandbox.upstream_url}/token?service={SERVICE}&scope=repository:library/x:pull"
    # When each asks the realm for a token, even for a public repository
    wrong = http.request("GET", url, headers=basic(user, "not-the-token"))
    unknown = http.request("GET", url, headers=basic("nobody", "x"))
    # Then both get auth.docker.io's 401
    assert (wrong.status, unknown.status) == (401, 401)
    assert wrong.json() == {"details": "incorrect username or password"}


def test_removed_user_is_refused(sandbox: Sandbox) -> None:
    # Given a user whose token is revoked
    sandbox.add_user("revoked-user", "tok-1")
    sandbox.remove_user("revoked-user")
    # When it asks for a token
    response = http.request(
        "GET", f"{sandbox.upstream_url}/token?service={SERVICE}", headers=basic("revoked-user", "tok-1")
    )
    # Then the realm refuses it
    assert response.status == 401


# --- push and pull through the front -------------------------------------------------------------------------------


@pytest.mark.parametrize(("media", "index_type"), [("oci", "oci.image.index"), ("docker", "manifest.list")])
def test_pushed_multi_arch_image_pulls_through_the_front(sandbox: Sandbox, media: str, index_type: str) -> None:
    # Given a two-platform image with two layers per platform
    image = sandbox.push_image(
        unique("team/multi"), "2.0", platforms=("linux/amd64", "linux/arm64/v8"), layer_sizes=(3000, 700), media=media
    )
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    # When the index, each platform's manifest and every blob are pulled through the front
    index = manifest(sandbox.upstream_url, image.repository, "2.0", auth)
    entries = {
        "/".join(filter(None, (e["platform"]["os"], e["platform"]["architecture"], e["platform"].get("variant")))): e[
            "digest"
        ]
        for e in index.json()["manifests"]
    }
    pulled = 0
    for digest, blobs in image.blobs.items():
        body = manifest(sandbox.upstream_url, image.repository, digest, auth)
        assert sha256(body.data) == digest
        assert [body.json()["config"]["digest"]] + [layer["digest"] for layer in body.json()["layers"]] == blobs
        for digest_of_blob in blobs:
            data = blob(sandbox.upstream_url, image.repository, digest_of_blob, auth).data
            assert sha256(data) == digest_of_blob
            pulled += len(data)
    # Then digests, platforms, media types and the total size all match what push_image reported
    assert index.status == 200
    assert index.headers["Docker-Content-Digest"] == image.digest == sha256(index.data)
    assert index_type in image.media_type
    assert entries == image.platforms
    assert pulled == image.total_size > 2 * (3000 + 700)  # layers plus two config blobs


def test_single_platform_push_is_deterministic(sandbox: Sandbox) -> None:
    # Given the same image pushed twice, and once more with another seed
    repository = unique("library/single")
    first = sandbox.push_image(repository, "1", layer_sizes=(100,), media="docker")
    again = sandbox.push_image(repository, "1", layer_sizes=(100,), media="docker")
    moved = sandbox.push_image(repository, "1", layer_sizes=(100,), media="docker", seed=1)
    # Then the same input gives the same digest, a new seed moves the tag
    assert isinstance(first, PushedImage)
    assert first == again
    assert moved.digest != first.digest
    assert first.platforms == {"linux/amd64": first.digest}
    assert first.media_type == "application/vnd.docker.distribution.manifest.v2+json"


# --- rate limits and counters --------------------------------------------------------------------------------------


def test_manifest_get_is_counted_and_head_is_free(sandbox: Sandbox, front: Any) -> None:
    # Given a user of its own (its own rate-limit bucket) and an image
    user, password = unique("counted"), unique("counted-token")
    sandbox.add_user(user, password)
    image = sandbox.push_image(unique("library/counted"), "1")
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository, (user, password))}"}
    before = front.counters.copy()
    # When it sends a HEAD then a GET on the manifest
    head = manifest(sandbox.upstream_url, image.repository, "1", auth, method="HEAD")
    get = manifest(sandbox.upstream_url, image.repository, "1", auth)
    # Then both carry Hub's headers, only the GET spent a pull, and the counters saw one of each
    limit = front.user_limit
    assert head.headers["ratelimit-limit"] == f"{limit};w=21600"
    assert head.headers["ratelimit-remaining"] == f"{limit};w=21600"
    assert get.headers["ratelimit-remaining"] == f"{limit - 1};w=21600"
    assert get.headers["docker-ratelimit-source"] == user
    assert front.pulls[user] == 1
    assert front.counters[("HEAD", "manifest")] - before[("HEAD", "manifest")] == 1
    assert front.counters[("GET", "manifest")] - before[("GET", "manifest")] == 1


def test_pulls_beyond_the_limit_get_429(sandbox: Sandbox, front: Any) -> None:
    # Given a user one pull away from its limit
    user, password = unique("limited"), unique("limited-token")
    sandbox.add_user(user, password)
    image = sandbox.push_image(unique("library/limited"), "1")
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository, (user, password))}"}
    saved = front.user_limit
    front.user_limit = 1
    try:
        # When it pulls twice
        first = manifest(sandbox.upstream_url, image.repository, "1", auth)
        second = manifest(sandbox.upstream_url, image.repository, "1", auth)
        head = manifest(sandbox.upstream_url, image.repository, "1", auth, method="HEAD")
    finally:
        front.user_limit = saved
    # Then the second GET is Hub's TOOMANYREQUESTS, and a HEAD still answers
    assert first.status == 200
    assert second.status == 429
    assert second.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert second.headers["ratelimit-remaining"] == "0;w=21600"
    assert head.status == 200


# --- faults --------------------------------------------------------------------------------------------------------


def test_injected_429_applies_to_the_next_request_only(sandbox: Sandbox, front: Any) -> None:
    # Given a 429 with Retry-After injected for one manifest request
    image = sandbox.push_image(unique("library/faulty"), "1")
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    fault = front.faults.too_many_requests(retry_after=1, path=f"^/v2/{image.repository}/manifests/")
    # When two manifest requests follow
    first = manifest(sandbox.upstream_url, image.repository, "1", auth)
    second = manifest(sandbox.upstream_url, image.repository, "1", auth)
    # Then only the first saw the fault
    assert (first.status, first.headers.get("Retry-After")) == (429, "1")
    assert second.status == 200
    assert fault.hits == 1
    assert front.faults.active == []


def test_cleared_fault_stops_applying(sandbox: Sandbox, front: Any) -> None:
    # Given a 503 on every blob request until cleared
    image = sandbox.push_image(unique("library/cleared"), "1")
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    url = f"{sandbox.upstream_url}/v2/{image.repository}/blobs/{layer_of(image)}"
    front.faults.status(503, path=f"^/v2/{image.repository}/blobs/", times=None)
    # When a blob is fetched twice, the faults cleared, then once more
    during = [http.request("GET", url, headers=auth).status for _ in range(2)]
    front.faults.clear()
    after = blob(sandbox.upstream_url, image.repository, layer_of(image), auth)
    # Then the fault held until cleared
    assert during == [503, 503]
    assert after.status == 200


@pytest.mark.parametrize("action", ["reset", "truncate"])
def test_cut_body_faults_break_the_download(sandbox: Sandbox, front: Any, action: str) -> None:
    # Given a blob and a fault that cuts its body where the bytes flow: the storage Docker Hub redirects to
    image = sandbox.push_image(unique("library/cut"), "1", layer_sizes=(200_000,))
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    layer = layer_of(image)
    getattr(front.faults, action)(path=f"^/cdn/{image.repository}/blobs/")
    # When the client downloads it, then again
    with pytest.raises(urllib3.exceptions.MaxRetryError) as broken:
        blob(sandbox.upstream_url, image.repository, layer, auth)
    assert isinstance(broken.value.reason, urllib3.exceptions.ProtocolError)  # the body broke, not the redirect
    whole = blob(sandbox.upstream_url, image.repository, layer, auth)
    # Then the first download failed mid-body and the next one is complete
    assert sha256(whole.data) == layer


def test_a_blob_is_redirected_to_a_signed_storage_url_like_docker_hubs(sandbox: Sandbox) -> None:
    # Given an image, and an anonymous pull token for it
    image = sandbox.push_image(unique("library/cdn"), "1")
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    # When a blob is asked for
    first = http.request("GET", f"{sandbox.upstream_url}/v2/{image.repository}/blobs/{layer_of(image)}", headers=auth)
    location = first.headers["Location"]
    # Then the answer is a redirect to a signed URL that serves the blob without the registry's token
    assert first.status == 307
    assert "/cdn/" in location
    assert "signature=" in location
    assert sha256(http.request("GET", location).data) == layer_of(image)
    # And a URL whose signature was tampered with is refused, as a storage bucket would
    assert http.request("GET", location.replace("signature=", "signature=0")).status == 403
    # And the registry's own refusals are not redirected
    assert http.request("GET", f"{sandbox.upstream_url}/v2/{image.repository}/blobs/{layer_of(image)}").status == 401


def test_corrupt_fault_breaks_the_manifest_digest(sandbox: Sandbox, front: Any) -> None:
    # Given a manifest corruption fault
    image = sandbox.push_image(unique("library/corrupt"), "1")
    auth = {"Authorization": f"Bearer {token(sandbox, image.repository)}"}
    front.faults.corrupt(path=f"^/v2/{image.repository}/manifests/")
    # When the manifest is fetched
    response = manifest(sandbox.upstream_url, image.repository, "1", auth)
    # Then it is still JSON of the same length, but no longer hashes to its digest
    assert response.status == 200
    assert len(response.data) == int(response.headers["Content-Length"])
    assert json.loads(response.data)["schemaVersion"] == 2
    assert sha256(response.data) != response.headers["Docker-Content-Digest"] == image.digest


def test_delay_fault_slows_one_request(sandbox: Sandbox, front: Any) -> None:
    # Given a 0.3 s delay on the next tags request of a repository
    repository = unique("library/slow")
    front.faults.delay(0.3, path=f"^/v2/{repository}/tags/list")
    # When its tags are listed
    started = time.monotonic()
    slow = http.request("GET", f"{sandbox.upstream_url}/v2/{repository}/tags/list")
    slow_seconds = time.monotonic() - started
    # Then the registry's answer came, late
    assert slow.status == 401
    assert slow_seconds >= 0.3


def test_token_realm_faults(sandbox: Sandbox, front: Any) -> None:
    # Given the realm made to fail with 500, then to stall
    repository = unique("library/realm")
    url = f"{sandbox.upstream_url}/token?service={SERVICE}&scope=repository:{repository}:pull"
    front.faults.token_status(500, repository=repository)
    failed = http.request("GET", url)
    front.faults.token_stall(repository=repository)
    # When a client with a short timeout asks, then the faults are cleared
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http.request("GET", url, timeout=urllib3.Timeout(connect=1.0, read=0.3))
    front.faults.clear()
    recovered = http.request("GET", url)
    # Then the realm failed, stalled, and serves again
    assert failed.status == 500
    assert recovered.status == 200


# --- the ECR endpoint ----------------------------------------------------------------------------------------------


def test_ecr_endpoint_demands_the_authorization_token(sandbox: Sandbox, aws: tuple[Any, Any]) -> None:
    # Given the ECR endpoint and moto's authorization token
    good = ecr_auth(sandbox)
    # When /v2/ is called without auth, with a wrong password, and with the token
    none = http.request("GET", f"{sandbox.ecr_url}/v2/")
    wrong = http.request("GET", f"{sandbox.ecr_url}/v2/", headers=basic("AWS", "wrong"))
    right = http.request("GET", f"{sandbox.ecr_url}/v2/", headers=good)
    # Then only the token gets in, and the challenge is ECR's
    assert none.status == 401
    assert none.headers["Www-Authenticate"] == (
        f'Basic realm="https://{sandbox.account}.dkr.ecr.{sandbox.region}.amazonaws.com/",service="ecr.amazonaws.com"'
    )
    assert wrong.status == 401
    assert right.status == 200


def test_stop_leaves_no_process_behind(own_sandbox: Sandbox, aws: tuple[Any, Any]) -> None:
    # Given a sandbox with its upstream registry and ECR's storage registry running, and an image pulled through ECR
    sb = own_sandbox
    user, password = next(iter(sb.users.items()))
    docker_hub_rule(aws, "hub", user, password)
    sb.push_image("library/stopping", "1")
    assert manifest(sb.ecr_url, "hub/library/stopping", "1", ecr_auth(sb)).status == 200
    pids = list(sb.started_pids)
    ecr_url, upstream_url = sb.ecr_url, sb.upstream_url
    # When it stops
    sb.stop()
    # Then every process it started is gone and its ports refuse connections
    assert len(pids) == 2
    assert sb.live_pids() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for url in (ecr_url, upstream_url):
        with pytest.raises(urllib3.exceptions.NewConnectionError):
            http.request("GET", f"{url}/v2/")


_CHILD = """
import json, sys, threading
from sandbox import Sandbox

class NoRules:  # no moto in this child: the ECR side is not what this test is about
    def route(self, repository): return None
    def credentials(self, route): return None
    def ensure_cache_repository(self, repository): pass
    def configure(self, registry): pass

sb = Sandbox(sys.argv[1], rules=NoRules()).start()
print(json.dumps(sb.started_pids), flush=True)
threading.Event().wait()
"""


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for a reaper (a container's init may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_registries_die_with_the_process_that_started_them(
    docker_registry: str, tmp_path: Path, signum: signal.Signals
) -> None:
    # Given a process that started a sandbox
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    try:
        assert child.stdout is not None
        pids = json.loads(child.stdout.readline())
        assert pids
        assert not any(_gone(pid) for pid in pids)
        # When it is terminated, or killed outright
        child.send_signal(signum)
        child.wait(10)
        # Then its registries go too (SIGTERM: its own cleanup; SIGKILL: the kernel's parent-death signal)
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the process table, bounded by the deadline
        assert [pid for pid in pids if not _gone(pid)] == []
    finally:
        child.kill()
        child.wait()


def test_env_points_the_library_at_the_sandbox(sandbox: Sandbox) -> None:
    # When the environment is read
    env = sandbox.env()
    # Then every host maps to the front and the ECR URL is the endpoint
    assert env["PULLTHROUGH_ECR_REGISTRY_URL"] == sandbox.ecr_url
    assert json.loads(env["PULLTHROUGH_UPSTREAM_ENDPOINTS"]) == dict.fromkeys(sandbox.hosts, sandbox.upstream_url)
