"""ECR images and the registry token: what the planner and the warmer ask ECR's control plane.

The data plane (manifests and blobs through `<account>.dkr.ecr.<region>.amazonaws.com`) is `pullthrough.registry`'s;
this module hands it the credentials (`authorization`) and asks ECR what it holds and to import what it lacks:
DescribeImages, BatchGetImage, BatchCheckLayerAvailability and GetDownloadUrlForLayer. An image or repository ECR
does not have is an answer (None, MISSING), not an error: a cache repository only exists after its first pull.

On a pull-through cache repository BatchGetImage fetches from the upstream what ECR lacks, and GetDownloadUrlForLayer
"is called once per image layer that is not already cached" (botocore's ECR model): ECR's own proxy pulls through
these two calls, and so does the warmer, without downloading what they point at.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError, AwsNotFound
from pullthrough.registry import manifests
from pullthrough.registry.auth import Credentials

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, ImageIdentifierTypeDef

# BatchGetImage and BatchCheckLayerAvailability take at most 100 ids per call (the ECR API reference).
BATCH_LIMIT = 100
# DescribeImages lists at most 1,000 images a page.
LIST_PAGE = 1000
# A token lives 12 hours; renewing 5 minutes early keeps one from expiring between the check and the request.
RENEW_BEFORE_SECONDS = 300.0

# BatchCheckLayerAvailability's LayerAvailability values (botocore), and MISSING for a layer ECR has nothing of (the
# call's MissingLayerDigest failure).
AVAILABLE, UNAVAILABLE, ARCHIVED, MISSING = "AVAILABLE", "UNAVAILABLE", "ARCHIVED", "MISSING"

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
    status: str | None = None  # ImageStatus: ACTIVE, ARCHIVED (the archive storage class) or ACTIVATING (restoring)
    # lastRecordedPullTime: botocore's ImageDetail says ECR refreshes it at least once every 24 hours
    last_pulled: datetime | None = None


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


def list_images(repository: str, region: str | None = None) -> list[EcrImage]:
    """Every image of `repository`, tagged or not (DescribeImages, a thousand a page); [] when it does not exist."""
    found: list[EcrImage] = []
    try:
        with aws_call("ecr:DescribeImages", repository):
            pages = (
                _client(region)
                .get_paginator("describe_images")
                .paginate(repositoryName=repository, PaginationConfig={"PageSize": LIST_PAGE})
            )
            for page in pages:
                found.extend(_image(repository, detail) for detail in page.get("imageDetails") or [])
    except AwsNotFound:
        return []
    return found


@dataclass(frozen=True)
class Deleted:
    """What BatchDeleteImage did: the digests it deleted, and why it refused the others (ImageFailureCode, reason)."""

    digests: tuple[str, ...]
    failures: dict[str, tuple[str, str]]


def delete_images(repository: str, digests: Sequence[str], region: str | None = None) -> Deleted:
    """Delete images by digest (with all their tags), 100 a call (BatchDeleteImage's limit in botocore's model)."""
    deleted: list[str] = []
    failures: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(list(digests), BATCH_LIMIT):
        with aws_call("ecr:BatchDeleteImage", repository):
            response = _client(region).batch_delete_image(
                repositoryName=repository, imageIds=[{"imageDigest": digest} for digest in chunk]
            )
        deleted.extend(str(i.get("imageDigest")) for i in response.get("imageIds") or [] if i.get("imageDigest"))
        for failure in response.get("failures") or []:
            digest = str((failure.get("imageId") or {}).get("imageDigest") or "")
            failures[digest] = (str(failure.get("failureCode") or "Unknown"), str(failure.get("failureReason") or ""))
    return Deleted(tuple(dict.fromkeys(deleted)), failures)


def _image(repository: str, detail: ImageDetailTypeDef) -> EcrImage:
    return EcrImage(
        repository=repository,
        digest=detail["imageDigest"],
        tags=tuple(detail.get("imageTags") or ()),
        media_type=detail.get("imageManifestMediaType"),
        size=detail.get("imageSizeInBytes"),
        pushed_at=detail.get("imagePushedAt"),
        status=detail.get("imageStatus"),
        last_pulled=detail.get("lastRecordedPullTime"),
    )


@dataclass(frozen=True)
class ImageFailure:
    """Why BatchGetImage returned no manifest for a reference: botocore's ImageFailureCode and ECR's text."""

    code: str
    reason: str


@dataclass(frozen=True)
class Images:
    """BatchGetImage's answer, keyed by the references asked for (tags or digests)."""

    found: dict[str, StoredManifest]
    failures: dict[str, ImageFailure]


def get_manifests(repository: str, references: Sequence[str], region: str | None = None) -> dict[str, StoredManifest]:
    """BatchGetImage: the stored manifests of `references` (tags or digests) that ECR has, keyed by reference."""
    return get_images(repository, references, region).found


def get_images(repository: str, references: Sequence[str], region: str | None = None) -> Images:
    """BatchGetImage with its failures: on a pull-through repository ECR fetches from the upstream what it lacks.

    A repository ECR does not have answers nothing found and no failure; UnableToGetUpstreamImageException (the
    rule's secret) is raised as the AwsError it is.
    """
    found: dict[str, StoredManifest] = {}
    failures: dict[str, ImageFailure] = {}
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
            return Images({}, {})
        for failure in response.get("failures") or []:
            failed_id = failure.get("imageId") or {}
            for ref in (failed_id.get("imageTag"), failed_id.get("imageDigest")):
                if ref in chunk:
                    failures[ref] = ImageFailure(
                        str(failure.get("failureCode") or "Unknown"), str(failure.get("failureReason") or "")
                    )
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
    return Images(found, failures)


def check_layers(repository: str, digests: Iterable[str], region: str | None = None) -> dict[str, bool]:
    """BatchCheckLayerAvailability: digest -> True when ECR holds that blob for the repository."""
    return {digest: state == AVAILABLE for digest, state in layer_states(repository, digests, region).items()}


def layer_states(repository: str, digests: Iterable[str], region: str | None = None) -> dict[str, str]:
    """BatchCheckLayerAvailability: digest -> AVAILABLE, UNAVAILABLE, ARCHIVED, or MISSING (ECR has nothing of it).

    A value outside botocore's enum (a newer ECR) is kept as ECR said it: callers treat anything but AVAILABLE as
    not held.
    """
    wanted = list(dict.fromkeys(digests))
    result = dict.fromkeys(wanted, MISSING)
    for chunk in _chunks(wanted, BATCH_LIMIT):
        try:
            with aws_call("ecr:BatchCheckLayerAvailability", repository):
                response = _client(region).batch_check_layer_availability(repositoryName=repository, layerDigests=chunk)
        except AwsNotFound:
            return result
        for layer in response.get("layers") or []:
            digest = layer.get("layerDigest")
            if digest in result:
                result[digest] = str(layer.get("layerAvailability") or MISSING)
    return result


def request_layer(repository: str, digest: str, region: str | None = None) -> str:
    """GetDownloadUrlForLayer: asks ECR for a layer (it imports one it lacks) and returns the URL it gives.

    The URL is a pre-signed one of ECR's storage for a held layer, or the upstream's during a first pull; the warmer
    downloads it only as a last resort. UnableToGetUpstreamLayerException and the other refusals are AwsErrors.
    """
    with aws_call("ecr:GetDownloadUrlForLayer", f"{repository}@{digest}"):
        response = _client(region).get_download_url_for_layer(repositoryName=repository, layerDigest=digest)
    return str(response.get("downloadUrl") or "")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "ARCHIVED",
    "AVAILABLE",
    "BATCH_LIMIT",
    "MISSING",
    "UNAVAILABLE",
    "Deleted",
    "EcrImage",
    "ImageFailure",
    "Images",
    "StoredManifest",
    "authorization",
    "check_layers",
    "delete_images",
    "describe_image",
    "describe_tags",
    "forget_authorization",
    "get_images",
    "get_manifests",
    "layer_states",
    "list_images",
    "registry_account",
    "request_layer",
]
