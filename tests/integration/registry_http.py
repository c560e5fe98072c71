"""Raw HTTP helpers for the tests that prove the sandbox: urllib3 on purpose, never the library's registry client.

Digests, media types and the token service are the sandbox's own (sandbox/registries/images.py,
sandbox/registries/tokens.py).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3
import urllib3

from sandbox import PushedImage, Sandbox
from sandbox.registries.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, sha256_digest
from sandbox.registries.tokens import DEFAULT_SERVICE

ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
SERVICE = DEFAULT_SERVICE
sha256 = sha256_digest  # what the tests call it
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def token(sb: Sandbox, repository: str, credentials: tuple[str, str] | None = None) -> str:
    """A pull token for `repository` from the upstream's realm (anonymous without credentials)."""
    headers = basic(*credentials) if credentials else {}
    url = f"{sb.upstream_url}/token?service={SERVICE}&scope=repository:{repository}:pull"
    response = http.request("GET", url, headers=headers)
    assert response.status == 200, response.data
    value: str = response.json()["token"]
    return value


def manifest(
    base_url: str, repository: str, reference: str, headers: dict[str, str], method: str = "GET"
) -> urllib3.BaseHTTPResponse:
    return http.request(
        method, f"{base_url}/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT, **headers}
    )


def blob(base_url: str, repository: str, digest: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    """A blob GET that follows redirects as registry clients do (Docker Hub and ECR send blobs to their storage)."""
    return http.request(
        "GET",
        f"{base_url}/v2/{repository}/blobs/{digest}",
        headers=headers,
        retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=3),
    )


def layer_of(image: PushedImage) -> str:
    """The first layer of a single-platform image."""
    return image.blobs[image.digest][1]


def ecr_auth(sb: Sandbox) -> dict[str, str]:
    """The header a client builds from moto's GetAuthorizationToken, decoded the documented way."""
    data = boto3.client("ecr", region_name=sb.region).get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return basic(user, password)


def docker_hub_rule(aws: tuple[Any, Any], prefix: str, user: str, password: str) -> str:
    """A Docker Hub rule under `prefix` whose secret holds user/password; returns the secret's ARN."""
    ecr, secrets = aws
    arn: str = secrets.create_secret(
        Name=f"ecr-pullthroughcache/{prefix}", SecretString=json.dumps({"username": user, "accessToken": password})
    )["ARN"]
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix,
        upstreamRegistryUrl="registry-1.docker.io",
        upstreamRegistry="docker-hub",
        credentialArn=arn,
    )
    return arn
