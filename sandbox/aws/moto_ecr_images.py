"""ECR's image operations on pull-through cache repositories, answered from the sandbox's registry model.

moto keeps images it was given with PutImage; a cache repository's images are what ECR imported from the upstream,
which `sandbox.registries.ecr_registry` holds (with their real manifest digests: moto's own digest is not the manifest's
sha256). Repositories outside every rule keep moto's own answers.

Shapes follow botocore's ECR model: BatchGetImage's `failures` (ImageFailureCode), BatchCheckLayerAvailability's
`layerAvailability` (AVAILABLE | UNAVAILABLE | ARCHIVED) and `failures` (LayerFailureCode), GetDownloadUrlForLayer's
`downloadUrl` and its exceptions, DescribeImages' ImageDetail (`lastRecordedPullTime`, `imageStatus`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from moto.ecr.exceptions import ImageNotFoundException, RepositoryNotFoundException
from moto.ecr.models import LAYER_MEDIA_TYPE, ECRBackend

from sandbox.aws import moto_ecr_rules as rules
from sandbox.aws import moto_ecr_templates as templates
from sandbox.aws.moto_ecr_state import (
    LOCK,
    LayerInaccessibleException,
    UnableToGetUpstreamImageException,
    UnableToGetUpstreamLayerException,
    invalid,
    page,
)
from sandbox.registries.ecr_registry import ARCHIVED, EcrRegistry, Manifest, NotHeld, Repository, Route
from sandbox.registries.ecr_upstream import NOT_FOUND, UpstreamFailure

DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_registries: dict[tuple[str, str], EcrRegistry] = {}


def set_registry(account: str, region: str, registry: EcrRegistry | None) -> None:
    """Answer the image operations of this account and region's cache repositories from `registry` (None: moto)."""
    with LOCK:
        if registry is None:
            _registries.pop((account, region), None)
        else:
            _registries[(account, region)] = registry


@dataclass(frozen=True)
class CacheView:
    """A pull-through cache repository and the registry model that holds it."""

    registry: EcrRegistry
    route: Route

    @property
    def name(self) -> str:
        return self.route.repository

    @property
    def held(self) -> Repository | None:
        return self.registry.repository(self.name)


def view(ecr: ECRBackend, repository_name: object) -> CacheView | None:
    """The cache view of a repository under a rule of a registry the sandbox models; None keeps moto's way."""
    registry = _registries.get((ecr.account_id, ecr.region_name))
    if registry is None or not isinstance(repository_name, str):
        return None
    if rules.find(ecr, repository_name) is None:
        return None
    route = registry.rules.route(repository_name)
    return CacheView(registry, route) if route is not None else None


# --- operations ------------------------------------------------------------------------------------------------------


def describe_images(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """DescribeImages; an unknown image id raises ImageNotFoundException, as AWS does."""
    registry_id = _check_repository(ecr, params, cache)
    held = cache.held
    images = _images(held)
    image_ids = params.get("imageIds")
    if image_ids:
        selected: list[Manifest] = []
        for image_id in image_ids:
            image = _lookup(held, image_id)
            if image is None:
                raise ImageNotFoundException(_image_id_text(image_id), cache.name, registry_id)
            if image not in selected:
                selected.append(image)
    else:
        selected = _by_tag_status(held, images, (params.get("filter") or {}).get("tagStatus", "ANY"))
    chunk, token = page(selected, lambda i: i.digest, params.get("maxResults"), params.get("nextToken"))
    result: dict[str, Any] = {"imageDetails": [_detail(held, image, cache.name, registry_id) for image in chunk]}
    if token:
        result["nextToken"] = token
    return result


def list_images(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """ListImages: one id per tag, and a digest-only id for an untagged image."""
    _check_repository(ecr, params, cache)
    held = cache.held
    ids: list[dict[str, str]] = []
    for image in _images(held):
        tags = _tags_of(held, image.digest)
        ids.extend({"imageDigest": image.digest, "imageTag": tag} for tag in tags)
        if not tags:
            ids.append({"imageDigest": image.digest})
    chunk, token = page(
        ids, lambda i: f"{i['imageDigest']} {i.get('imageTag', '')}", params.get("maxResults"), params.get("nextToken")
    )
    result: dict[str, Any] = {"imageIds": chunk}
    if token:
        result["nextToken"] = token
    return result


def batch_get_image(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """BatchGetImage: what ECR holds, and on a pull-through repository what it fetches from the upstream now.

    botocore: BatchGetImage can raise UnableToGetUpstreamImageException, "usually caused because of an issue with
    the Secrets Manager secret": raised here when the rule's secret cannot be read. Upstream refusals of one image
    are that image's failure (UpstreamAccessDenied, UpstreamTooManyRequests, UpstreamUnavailable, ImageNotFound).
    """
    registry_id = _check_repository(ecr, params, cache)
    _check_rule_secret(ecr, cache)
    found: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for image_id in params.get("imageIds") or []:
        tag, digest = image_id.get("imageTag"), image_id.get("imageDigest")
        try:
            image = _fetch(cache, tag, digest)
        except _Failure as failure:
            failures.append({"imageId": dict(image_id), "failureCode": failure.code, "failureReason": failure.reason})
            continue
        # A pull, by tag or by digest: containers-roadmap #2390 shows `aws ecr batch-get-image --image-ids
        # imageDigest=...` moving lastRecordedPullTime (ECR's own docs only say it records "the last image pull").
        cache.registry.record_pull(cache.name, image.digest)
        found.append(
            {
                "registryId": registry_id,
                "repositoryName": cache.name,
                "imageId": {"imageDigest": image.digest, **({"imageTag": tag} if tag else {})},
                "imageManifest": image.body.decode(),
                "imageManifestMediaType": image.media_type,
            }
        )
    return {"images": found, "failures": failures}


def batch_check_layer_availability(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """BatchCheckLayerAvailability: AVAILABLE when held, UNAVAILABLE while its import runs, ARCHIVED when archived.

    AWS does not say when a layer is UNAVAILABLE; the sandbox reports it for a layer whose import is under way, and a
    layer ECR has nothing of as a MissingLayerDigest failure.
    """
    _check_repository(ecr, params, cache)
    held = cache.held
    layers: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for digest in params.get("layerDigests") or []:
        if not DIGEST.fullmatch(digest):
            failures.append(
                {"layerDigest": digest, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"}
            )
            continue
        state = held.layer_availability(digest) if held is not None else None
        owner = held.referenced(digest) if held is not None else None
        if state is None or owner is None:
            failures.append(
                {
                    "layerDigest": digest,
                    "failureCode": "MissingLayerDigest",
                    "failureReason": f"Layer digest '{digest}' could not be found",
                }
            )
            continue
        size, media_type = owner.blobs[digest]
        layers.append(
            {
                "layerDigest": digest,
                "layerAvailability": state,
                "layerSize": size,
                "mediaType": media_type or LAYER_MEDIA_TYPE,
            }
        )
    return {"layers": layers, "failures": failures}


def get_download_url_for_layer(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """GetDownloadUrlForLayer: a held layer's pre-signed URL; else the upstream's URL while ECR imports it.

    botocore: "called once per image layer that is not already cached"; "You can only get URLs for image layers that
    are referenced in an image" (LayerInaccessibleException otherwise); an upstream that will not give the layer is
    UnableToGetUpstreamLayerException.
    """
    _check_repository(ecr, params, cache)
    digest = params.get("layerDigest")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise invalid("layerDigest", "must be a digest such as sha256:<64 hex digits>")
    held = cache.held
    if held is not None and held.layer_availability(digest) == ARCHIVED:
        # AWS does not document this case; an archived layer is not served until the image is restored.
        raise LayerInaccessibleException(f"The layer '{digest}' belongs to an archived image; restore the image.")
    try:
        url = cache.registry.request_layer(cache.route, digest, pulled=False)
    except NotHeld:
        raise LayerInaccessibleException(
            f"The specified layer '{digest}' is not available because it is not associated with an image."
        ) from None
    except UpstreamFailure as failure:
        raise UnableToGetUpstreamLayerException(f"{failure.code}: {failure.reason}") from None
    return {"downloadUrl": url, "layerDigest": digest}


# --- internals -------------------------------------------------------------------------------------------------------


class _Failure(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_NOT_FOUND = _Failure("ImageNotFound", "Requested image not found")


def batch_delete_image(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> dict[str, Any]:
    """BatchDeleteImage (botocore's model): by tag, the tag goes (and the image with its last tag); by digest, the
    image with all its tags. An id ECR does not hold fails ImageNotFound; a manifest a held index lists fails
    ImageReferencedByManifestList (an ImageFailureCode of botocore's model; the reason's words are the sandbox's).
    AWS does not say whether deleting an index deletes what it lists: the sandbox keeps them, untagged."""
    _check_repository(ecr, params, cache)
    held = cache.held
    deleted: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for image_id in params.get("imageIds") or []:
        image = _lookup(held, image_id)
        if held is None or image is None:
            failures.append(_delete_failure(image_id, "ImageNotFound", "Requested image not found"))
            continue
        with held.lock:
            if any(image.digest in m.children for m in held.manifests.values() if m.digest != image.digest):
                reason = "Requested image is referenced by a manifest list in the repository"
                failures.append(_delete_failure(image_id, "ImageReferencedByManifestList", reason))
                continue
            tag = image_id.get("imageTag")
            if tag and not image_id.get("imageDigest"):
                held.tags.pop(tag, None)
                gone = not any(digest == image.digest for digest, _ in held.tags.values())
            else:
                for name in [t for t, (digest, _) in held.tags.items() if digest == image.digest]:
                    held.tags.pop(name)
                gone = True
            if gone:
                held.manifests.pop(image.digest, None)
                held.pulled_at.pop(image.digest, None)
                held.archived.discard(image.digest)
        deleted.append({"imageDigest": image.digest, **({"imageTag": tag} if tag else {})})
    return {"imageIds": deleted, "failures": failures}


def _delete_failure(image_id: dict[str, str], code: str, reason: str) -> dict[str, Any]:
    return {"imageId": dict(image_id), "failureCode": code, "failureReason": reason}


def _fetch(cache: CacheView, tag: str | None, digest: str | None) -> Manifest:
    """One image id of BatchGetImage, held or fetched; a _Failure with ECR's code otherwise."""
    if not tag and not digest:
        raise _Failure("MissingDigestAndTag", "Invalid request parameters: image tag and digest cannot both be null")
    if digest and not DIGEST.fullmatch(digest):
        raise _Failure("InvalidImageDigest", "Invalid image digest")
    try:
        if tag:
            image = cache.registry.tag(cache.route, tag)
            if digest and image.digest != digest:
                raise _Failure("ImageTagDoesNotMatchDigest", "Tag does not match digest")
            return image
        assert digest is not None
        return cache.registry.digest(cache.route, digest)
    except NotHeld:
        raise _NOT_FOUND from None
    except UpstreamFailure as failure:
        if failure.code == NOT_FOUND:
            raise _NOT_FOUND from None
        raise _Failure(failure.code, failure.reason) from None


def _check_rule_secret(ecr: ECRBackend, cache: CacheView) -> None:
    rule = rules.find(ecr, cache.name)
    if rule is None or rule.credential_arn is None:
        return
    try:
        rules.read_credentials(ecr.account_id, ecr.region_name, rule.credential_arn)
    except rules.SecretProblem as problem:
        raise UnableToGetUpstreamImageException(str(problem)) from None


def _check_repository(ecr: ECRBackend, params: dict[str, Any], cache: CacheView) -> str:
    """The registry id, after making sure the repository exists.

    A repository the registry model holds but moto does not was pulled through the endpoint before moto was reset:
    ECR would have created it on that pull, so it is created now (with its template) rather than reported missing.
    """
    registry_id = params.get("registryId") or ecr.account_id
    if cache.name not in ecr.repositories and cache.held is not None and cache.held.tags:
        templates.ensure_repository(ecr, cache.name)
    repository = ecr.repositories.get(cache.name)
    if repository is None or repository.registry_id != registry_id:
        raise RepositoryNotFoundException(cache.name, registry_id)
    return str(registry_id)


def _images(held: Repository | None) -> list[Manifest]:
    if held is None:
        return []
    with held.lock:
        return sorted(held.manifests.values(), key=lambda m: m.digest)


def _tags_of(held: Repository | None, digest: str) -> list[str]:
    if held is None:
        return []
    with held.lock:
        return sorted(tag for tag, (pointed, _) in held.tags.items() if pointed == digest)


def _lookup(held: Repository | None, image_id: dict[str, str]) -> Manifest | None:
    tag, digest = image_id.get("imageTag"), image_id.get("imageDigest")
    if held is None or (not tag and not digest):
        return None
    with held.lock:
        if tag:
            pointed = held.tags.get(tag)
            if pointed is None or (digest and pointed[0] != digest):
                return None
            return held.manifests.get(pointed[0])
        return held.manifests.get(str(digest))


def _by_tag_status(held: Repository | None, images: list[Manifest], status: str) -> list[Manifest]:
    if status == "TAGGED":
        return [i for i in images if _tags_of(held, i.digest)]
    if status == "UNTAGGED":
        return [i for i in images if not _tags_of(held, i.digest)]
    return list(images)


def _detail(held: Repository | None, image: Manifest, name: str, registry_id: str) -> dict[str, Any]:
    size = image.size
    if image.is_index and held is not None:
        # AWS: "If the image is a manifest list, this will be the max size of all manifests in the list."
        sizes = [held.manifests[c].size for c in image.children if c in held.manifests]
        size = max(sizes, default=len(image.body))
    archived = held is not None and image.digest in held.archived
    detail: dict[str, Any] = {
        "registryId": registry_id,
        "repositoryName": name,
        "imageDigest": image.digest,
        "imageSizeInBytes": size,
        "imagePushedAt": image.imported_at,
        "imageManifestMediaType": image.media_type,
        "imageStatus": "ARCHIVED" if archived else "ACTIVE",
    }
    tags = _tags_of(held, image.digest)
    if tags:  # AWS leaves imageTags out of untagged images
        detail["imageTags"] = tags
    pulled = held.pulled_at.get(image.digest) if held is not None else None
    if pulled is not None:
        detail["lastRecordedPullTime"] = pulled
    config = _json_config(image)
    if config:
        detail["artifactMediaType"] = config
    return detail


def _json_config(image: Manifest) -> str | None:
    try:
        document = json.loads(image.body)
    except ValueError:
        return None
    config = document.get("config") if isinstance(document, dict) else None
    return str(config["mediaType"]) if isinstance(config, dict) and "mediaType" in config else None


def _image_id_text(image_id: dict[str, str]) -> str:
    return f"{{imageDigest:'{image_id.get('imageDigest') or 'null'}', imageTag:'{image_id.get('imageTag') or 'null'}'}}"
