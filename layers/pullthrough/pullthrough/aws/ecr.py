"""ECR images and the registry token: what the warmer asks ECR's control plane.

The data plane (manifests and blobs through `<account>.dkr.ecr.<region>.amazonaws.com`) is `pullthrough.registry`'s;
this module hands it the credentials (`authorization`) and answers what ECR holds: DescribeImages, BatchGetImage and
BatchCheckLayerAvailability. An image or repository ECR does not have is an answer (None, False), not an error:
a cache repository only exists after its first pull.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pullthrough import manifests
from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError, AwsNotFound
from pullthrough.registry import Credentials

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, ImageIdentifierTypeDef

# BatchGetImage and BatchCheckLayerAvailability take at most 100 ids per call (the ECR API reference).
BATCH_LIMIT = 100
# DescribeImages lists at most 1,000 images a page.
LIST_PAGE = 1000
# A token lives 12 hours; renewing 5 minutes early keeps one from expiring between the check and the request.
RENEW_BEFORE_SECONDS = 300.0

_lock = threading.Lock()
_tokens: dict[tuple[str, str | None], tuple[Credentials, float]] = {}


@dataclass(frozen=True)
class EcrImage:
    """What DescribeImages says about one image of a repository."""

    repository: str
    digest: str
    tags: tuple[str, ...] = ()
    media_type: str | None = None
    size: int | None = None
    pushed_at: datetime | None = None


@dataclass(frozen=True)
class StoredManifest:
    """A manifest as ECR stores it (BatchGetImage): its digest, media type and exact bytes."""

    digest: str
    media_type: str
    body: bytes = field(repr=False)

    def parsed(self) -> manifests.Index | manifests.ImageManifest:
        """The body as an Index or an ImageManifest."""
        return manifests.parse(self.body, self.media_type)


def _client(region: str | None) -> ECRClient:
    return clients.client("ecr", region)


def authorization(registry_url: str, region: str | None = None, *, clock: Any = time.monotonic) -> Credentials:
    """Credentials for the ECR registry endpoint (`AWS` and a 12-hour token), cached until shortly before expiry."""
    key = (registry_url, region)
    with _lock:
        cached = _tokens.get(key)
    if cached is not None and cached[1] > clock():
        return cached[0]
    with aws_call("ecr:GetAuthorizationToken", registry_url):
        response = _client(region).get_authorization_token()
    data = response.get("authorizationData") or []
    if not data:
        raise AwsError("ecr:GetAuthorizationToken", registry_url, "NoAuthorizationData", "ECR returned no token")
    entry = data[0]
    user, _, password = base64.b64decode(entry["authorizationToken"]).decode().partition(":")
    credentials = Credentials(username=user, password=password)
    expires_at = entry.get("expiresAt")
    lifetime = (expires_at.timestamp() - time.time()) if isinstance(expires_at, datetime) else 12 * 3600.0
    with _lock:
        _tokens[key] = (credentials, clock() + max(lifetime - RENEW_BEFORE_SECONDS, 0.0))
    return credentials


def registry_account(region: str | None = None) -> str:
    """The account of the caller's private registry, from GetAuthorizationToken's proxy endpoint (no other IAM)."""
    with aws_call("ecr:GetAuthorizationToken", "registry"):
        response = _client(region).get_authorization_token()
    for entry in response.get("authorizationData") or []:
        host = str(entry.get("proxyEndpoint") or "").split("://", 1)[-1]
        account = host.split(".", 1)[0]
        if account.isdigit() and len(account) == 12:
            return account
    raise AwsError("ecr:GetAuthorizationToken", "registry", "NoProxyEndpoint", "ECR named no registry endpoint")


def forget_authorization() -> None:
    """Drop every cached token (tests; or after the endpoint refused one)."""
    with _lock:
        _tokens.clear()


def describe_image(repository: str, tag: str, region: str | None = None) -> EcrImage | None:
    """The image `repository:tag` in ECR, or None when the repository or the tag does not exist."""
    try:
        with aws_call("ecr:DescribeImages", f"{repository}:{tag}"):
            response = _client(region).describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except AwsNotFound:
        return None
    details = response.get("imageDetails") or []
    return _image(repository, details[0]) if details else None


def describe_tags(repository: str, tags: Sequence[str], region: str | None = None) -> dict[str, EcrImage]:
    """The images ECR holds for `tags` in `repository`, by tag (a tag it lacks is left out).

    One call for one tag; for several, the repository's tagged images are listed (a thousand a page) rather than
    asked for by id: DescribeImages fails the whole call when one of the ids it is given is missing.
    """
    wanted = set(tags)
    if len(wanted) == 1:
        (tag,) = wanted
        image = describe_image(repository, tag, region)
        return {tag: image} if image is not None else {}
    found: dict[str, EcrImage] = {}
    token: str | None = None
    while True:
        try:
            with aws_call("ecr:DescribeImages", repository):
                if token:
                    response = _client(region).describe_images(
                        repositoryName=repository, filter={"tagStatus": "TAGGED"}, maxResults=LIST_PAGE, nextToken=token
                    )
                else:
                    response = _client(region).describe_images(
                        repositoryName=repository, filter={"tagStatus": "TAGGED"}, maxResults=LIST_PAGE
                    )
        except AwsNotFound:
            return {}
        for detail in response.get("imageDetails") or []:
            for tag in detail.get("imageTags") or ():
                if tag in wanted:
                    found[tag] = _image(repository, detail)
        token = response.get("nextToken")
        if not token or len(found) == len(wanted):
            return found


def _image(repository: str, detail: ImageDetailTypeDef) -> EcrImage:
    return EcrImage(
        repository=repository,
        digest=detail["imageDigest"],
        tags=tuple(detail.get("imageTags") or ()),
        media_type=detail.get("imageManifestMediaType"),
        size=detail.get("imageSizeInBytes"),
        pushed_at=detail.get("imagePushedAt"),
    )


def get_manifests(repository: str, references: Sequence[str], region: str | None = None) -> dict[str, StoredManifest]:
    """BatchGetImage: the stored manifests of `references` (tags or digests) that ECR has, keyed by reference."""
    found: dict[str, StoredManifest] = {}
    for chunk in _chunks(list(dict.fromkeys(references)), BATCH_LIMIT):
        ids: list[ImageIdentifierTypeDef] = [
            {"imageDigest": ref} if manifests.is_digest(ref) else {"imageTag": ref} for ref in chunk
        ]
        try:
            with aws_call("ecr:BatchGetImage", repository):
                response = _client(region).batch_get_image(
                    repositoryName=repository, imageIds=ids, acceptedMediaTypes=list(manifests.ACCEPT)
                )
        except AwsNotFound:
            return {}
        for image in response.get("images") or []:
            image_id = image.get("imageId") or {}
            body = image.get("imageManifest")
            digest = image_id.get("imageDigest")
            if body is None or digest is None:
                continue
            raw = body.encode()
            stored = StoredManifest(
                digest=digest,
                media_type=image.get("imageManifestMediaType") or manifests.media_type_of(raw, None),
                body=raw,
            )
            for ref in (image_id.get("imageTag"), digest):
                if ref in chunk:
                    found[ref] = stored
    return found


def check_layers(repository: str, digests: Iterable[str], region: str | None = None) -> dict[str, bool]:
    """BatchCheckLayerAvailability: digest -> True when ECR holds that blob for the repository."""
    wanted = list(dict.fromkeys(digests))
    result = dict.fromkeys(wanted, False)
    for chunk in _chunks(wanted, BATCH_LIMIT):
        try:
            with aws_call("ecr:BatchCheckLayerAvailability", repository):
                response = _client(region).batch_check_layer_availability(repositoryName=repository, layerDigests=chunk)
        except AwsNotFound:
            return result
        for layer in response.get("layers") or []:
            digest = layer.get("layerDigest")
            if digest in result:
                result[digest] = layer.get("layerAvailability") == "AVAILABLE"
    return result


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "BATCH_LIMIT",
    "EcrImage",
    "StoredManifest",
    "authorization",
    "check_layers",
    "describe_image",
    "describe_tags",
    "forget_authorization",
    "get_manifests",
    "registry_account",
]
