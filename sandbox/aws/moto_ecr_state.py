"""State and shared rules of the ECR operations the sandbox adds to moto: errors, prefixes, pagination.

The state lives on moto's own ECR backend object (one per account and region), so `mock_aws()` and moto's
reset wipe it together with the repositories it belongs to.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from moto.core.exceptions import ServiceException
from moto.ecr.exceptions import InvalidParameterException, ValidationException
from moto.ecr.models import ECRBackend, ecr_backends

# The botocore ECR model's pattern for PullThroughCacheRuleRepositoryPrefix and Prefix (templates); botocore does
# not check patterns on the client, so the service must.
PREFIX_PATTERN = r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
ROOT = "ROOT"
MAX_RESULTS_DEFAULT = 100
MAX_RESULTS_LIMIT = 1000

# One lock for every change to the added state: the sandbox's ECR endpoint calls the hooks from its own threads.
LOCK = threading.RLock()


# --- errors: the model's exception names ---------------------------------------------------------------------------


class PullThroughCacheRuleAlreadyExistsException(ServiceException):
    code = "PullThroughCacheRuleAlreadyExistsException"


class PullThroughCacheRuleNotFoundException(ServiceException):
    code = "PullThroughCacheRuleNotFoundException"


class UnsupportedUpstreamRegistryException(ServiceException):
    code = "UnsupportedUpstreamRegistryException"


class SecretNotFoundException(ServiceException):
    code = "SecretNotFoundException"


class UnableToAccessSecretException(ServiceException):
    code = "UnableToAccessSecretException"


class TemplateAlreadyExistsException(ServiceException):
    code = "TemplateAlreadyExistsException"


class TemplateNotFoundException(ServiceException):
    code = "TemplateNotFoundException"


class UnableToGetUpstreamImageException(ServiceException):
    code = "UnableToGetUpstreamImageException"


class UnableToGetUpstreamLayerException(ServiceException):
    code = "UnableToGetUpstreamLayerException"


class LayerInaccessibleException(ServiceException):
    code = "LayerInaccessibleException"


class QuotaExceededException(ServiceException):
    """LimitExceededException with a message about the quota that was hit (moto's own names image scans)."""

    code = "LimitExceededException"


def invalid(parameter: str, constraint: str) -> InvalidParameterException:
    """ECR's wording for a parameter that breaks a rule: "Invalid parameter at '<name>' failed to satisfy ..."."""
    return InvalidParameterException(f"Invalid parameter at '{parameter}' failed to satisfy constraint: '{constraint}'")


# --- state -----------------------------------------------------------------------------------------------------------


@dataclass
class PtcState:
    """The pull-through cache rules and repository creation templates of one registry (account and region)."""

    rules: dict[str, Any] = field(default_factory=dict)  # normalised prefix -> moto_ecr_rules.Rule
    templates: dict[str, Any] = field(default_factory=dict)  # normalised prefix -> moto_ecr_templates.Template


_STATE_ATTRIBUTE = "_pullthrough_ptc_state"


def backend(account_id: str, region: str) -> ECRBackend:
    """moto's ECR backend of one account and region."""
    return ecr_backends[account_id][region]


def state(ecr: ECRBackend) -> PtcState:
    """The added state of a backend, created on first use (moto's reset replaces the backend's attributes)."""
    with LOCK:
        found = ecr.__dict__.get(_STATE_ATTRIBUTE)
        if found is None:
            found = PtcState()
            ecr.__dict__[_STATE_ATTRIBUTE] = found
        return found


def now() -> datetime:
    return datetime.now(UTC)


def check_registry_id(ecr: ECRBackend, registry_id: str | None) -> str:
    """The registry the request is about: only the caller's own registry exists in the sandbox."""
    if registry_id is None:
        return ecr.account_id
    if not re.fullmatch(r"[0-9]{12}", registry_id):
        raise invalid("registryId", "must satisfy regular expression '[0-9]{12}'")
    if registry_id != ecr.account_id:
        raise invalid("registryId", f"registry {registry_id} is not the registry of account {ecr.account_id}")
    return registry_id


# --- prefixes --------------------------------------------------------------------------------------------------------


def check_prefix(parameter: str, value: object, *, min_length: int, max_length: int) -> str:
    """A rule or template prefix, checked against the model's length and pattern."""
    if not isinstance(value, str) or not value:
        raise ValidationException(f"1 validation error detected: Value at '{parameter}' must not be null")
    if not min_length <= len(value) <= max_length:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{parameter}' failed to satisfy constraint: "
            f"Member must have length between {min_length} and {max_length}"
        )
    if not re.fullmatch(PREFIX_PATTERN, value):
        raise invalid(parameter, f"must satisfy regular expression '{PREFIX_PATTERN}'")
    return value


def prefix_key(prefix: str) -> str:
    """AWS assumes a `/` after every prefix: `ecr-public/` and `ecr-public` are the same prefix."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def covers(key: str, repository_name: str) -> bool:
    """Whether a (normalised) prefix applies to a repository: whole leading components, or ROOT for all."""
    return key == ROOT or repository_name.startswith(key + "/")


def most_specific(keys: Sequence[str], repository_name: str) -> str | None:
    """The longest prefix covering the repository; ROOT only when no other prefix does."""
    matching = [k for k in keys if covers(k, repository_name)]
    if not matching:
        return None
    return max(matching, key=lambda k: -1 if k == ROOT else len(k))


# --- pagination ------------------------------------------------------------------------------------------------------

T = TypeVar("T")


def max_results(value: object) -> int:
    """maxResults as the model bounds it (1 to 1000); 100 when absent, as AWS documents."""
    if value is None:
        return MAX_RESULTS_DEFAULT
    if not isinstance(value, int) or not 1 <= value <= MAX_RESULTS_LIMIT:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value between 1 and {MAX_RESULTS_LIMIT}"
        )
    return value


def page(items: Sequence[T], key: Callable[[T], str], limit: object, next_token: object) -> tuple[list[T], str | None]:
    """One page of items in key order, and the token of the next page (None on the last page).

    The token names the last key returned, so a page stays right when items are added or deleted in between.
    """
    size = max_results(limit)
    ordered = sorted(items, key=key)
    if next_token is not None:
        after = _decode_token(next_token)
        ordered = [item for item in ordered if key(item) > after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return chunk, (_encode_token(key(chunk[-1])) if more and chunk else None)


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _decode_token(token: object) -> str:
    after: object = None
    if isinstance(token, str):
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode())).get("after")
        except (binascii.Error, ValueError, AttributeError):
            after = None
    if not isinstance(after, str):
        raise invalid("nextToken", "the pagination token is invalid; pass the nextToken of the previous page")
    return after
