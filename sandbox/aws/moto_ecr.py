"""moto's ECR, extended with what moto 5.2.5 lacks: pull-through cache rules and repository creation templates, and
registry policies of the V2 scope (sandbox.aws.moto_ecr_registry_policy).

`install()` adds the operations to moto's ECR response class, where moto dispatches a JSON action by its snake-case
name (CreatePullThroughCacheRule -> create_pull_through_cache_rule), so boto3 under `mock_aws()` (or a moto server)
calls them exactly as against AWS. It also makes DescribeImages, ListImages, BatchGetImage, BatchDeleteImage,
BatchCheckLayerAvailability and GetDownloadUrlForLayer answer for repositories under a rule from the sandbox's
registry model (`set_registry`, `sandbox.aws.moto_ecr_images`).

GetAuthorizationToken answers as ECR does: "An authorization token represents your IAM authentication credentials
and can be used to access any Amazon ECR registry that your IAM principal has access to. The authorization token is
valid for 12 hours." (botocore's ECR model). moto's token names no one and expired in 2015; the sandbox's names the
principal that asked (sandbox.aws.iam), so the registry endpoint authorizes a pull as that principal.

The sandbox's ECR registry endpoint uses the hooks below (`find_rule`, `rule_secret`, `ensure_cache_repository`),
and maps upstream hosts to loopback URLs with `set_upstream_endpoints` for ValidatePullThroughCacheRule.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from moto.core.responses import ActionResult
from moto.ecr.models import ECRBackend
from moto.ecr.responses import ECRResponse

from sandbox.aws import iam, iam_assumed
from sandbox.aws import moto_ecr_images as images
from sandbox.aws import moto_ecr_registry_policy as registry_policy
from sandbox.aws import moto_ecr_rules as rules
from sandbox.aws import moto_ecr_templates as templates
from sandbox.aws.moto_ecr_state import LOCK, backend, now, prefix_key, state
from sandbox.registries.ecr_registry import EcrRegistry

__all__ = [
    "ensure_cache_repository",
    "find_rule",
    "install",
    "rule_secret",
    "set_registry",
    "set_upstream_endpoints",
]

_Operation = Callable[[ECRBackend, dict[str, Any]], dict[str, Any]]
_ImageOperation = Callable[[ECRBackend, dict[str, Any], images.CacheView], dict[str, Any]]

_ADDED: dict[str, _Operation] = {
    "create_pull_through_cache_rule": rules.create,
    "describe_pull_through_cache_rules": rules.describe,
    "update_pull_through_cache_rule": rules.update,
    "delete_pull_through_cache_rule": rules.delete,
    "validate_pull_through_cache_rule": rules.validate,
    "create_repository_creation_template": templates.create,
    "describe_repository_creation_templates": templates.describe,
    "update_repository_creation_template": templates.update,
    "delete_repository_creation_template": templates.delete,
    # moto refuses registry policies beyond the V1 scope; ECR's default V2 scope takes every ECR action.
    "put_registry_policy": registry_policy.put,
}
_FROM_REGISTRY: dict[str, _ImageOperation] = {
    "describe_images": images.describe_images,
    "list_images": images.list_images,
    "batch_get_image": images.batch_get_image,
    "batch_check_layer_availability": images.batch_check_layer_availability,
    "get_download_url_for_layer": images.get_download_url_for_layer,
    "batch_delete_image": images.batch_delete_image,
}
_MOTO_OWN: dict[str, Callable[[ECRResponse], Any]] = {}
_INSTALLED_FLAG = "_pullthrough_installed"


def install() -> None:
    """Extend moto's ECR; safe to call any number of times."""
    with LOCK:
        if getattr(ECRResponse, _INSTALLED_FLAG, False):
            return
        for name, operation in _ADDED.items():
            setattr(ECRResponse, name, _added(operation))
        for name, image_operation in _FROM_REGISTRY.items():
            _MOTO_OWN[name] = getattr(ECRResponse, name)
            setattr(ECRResponse, name, _from_registry(name, image_operation))
        ECRResponse.get_authorization_token = _authorization_token
        setattr(ECRResponse, _INSTALLED_FLAG, True)


def set_upstream_endpoints(endpoints: Mapping[str, str]) -> None:
    """Where ValidatePullThroughCacheRule reaches each upstream host: {"registry-1.docker.io": "http://127.0.0.1:P"}.

    Replaces the previous mapping; a host left out is unreachable, as any host is from the sandbox.
    """
    with LOCK:
        rules.UPSTREAM_ENDPOINTS.clear()
        rules.UPSTREAM_ENDPOINTS.update({host: url.rstrip("/") for host, url in endpoints.items()})


def set_registry(account_id: str, region: str, registry: EcrRegistry | None) -> None:
    """Answer the image operations of this registry's cache repositories from the sandbox's model (None: moto's)."""
    images.set_registry(account_id, region, registry)


def find_rule(account_id: str, region: str, repository_path: str) -> dict[str, Any] | None:
    """The rule a repository path falls under (longest whole-component prefix, else a ROOT rule), Describe-shaped."""
    rule = rules.find(backend(account_id, region), repository_path)
    return rule.describe() if rule is not None else None


def rule_secret(account_id: str, region: str, prefix: str) -> tuple[str, str] | None:
    """(username, accessToken) of the AWSCURRENT value of the rule's secret; None without a rule or a usable secret."""
    ecr = backend(account_id, region)
    with LOCK:
        rule = state(ecr).rules.get(prefix_key(prefix))
    if rule is None or rule.credential_arn is None:
        return None
    try:
        return rules.read_credentials(account_id, region, rule.credential_arn)
    except rules.SecretProblem:
        return None


def ensure_cache_repository(account_id: str, region: str, name: str) -> None:
    """Create the cache repository as a pull through a rule does, applying its creation template; no-op if it exists."""
    templates.ensure_repository(backend(account_id, region), name)


# --- response methods ------------------------------------------------------------------------------------------------


def _params(response: ECRResponse) -> dict[str, Any]:
    try:
        data = json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _added(operation: _Operation) -> Callable[[ECRResponse], ActionResult]:
    def respond(self: ECRResponse) -> ActionResult:
        return ActionResult(operation(self.ecr_backend, _params(self)))

    respond.__name__ = operation.__name__
    return respond


def _from_registry(name: str, operation: _ImageOperation) -> Callable[[ECRResponse], Any]:
    def respond(self: ECRResponse) -> Any:
        params = _params(self)
        cache = images.view(self.ecr_backend, params.get("repositoryName"))
        if cache is None:
            return _MOTO_OWN[name](self)
        return ActionResult(operation(self.ecr_backend, params, cache))

    respond.__name__ = name
    return respond


def _authorization_token(self: ECRResponse) -> ActionResult:
    """GetAuthorizationToken: per registry, `AWS:<password>` base64-encoded, valid 12 hours, naming the caller."""
    registries = _params(self).get("registryIds") or [self.current_account]
    # a function's call with keys it assumed is the assumed role's (sandbox/aws/iam_assumed.py), in this region
    assumed = iam_assumed.principal_of_request(self.headers)
    principal = dataclasses.replace(assumed, region=self.region) if assumed is not None else iam.current()
    data = [
        {
            "authorizationToken": base64.b64encode(f"AWS:{iam.registry_token(registry, principal)}".encode()).decode(),
            "expiresAt": now() + timedelta(hours=12),
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
        }
        for registry in registries
    ]
    return ActionResult({"authorizationData": data})
