"""Repository creation templates for moto's ECR backend, and the cache repositories made from them.

A template's settings are applied when ECR creates a repository on the user's behalf (here: the first pull through
a rule). The template with the longest prefix covering the repository wins; `ROOT` covers every repository that no
other template does. Only templates whose appliedFor names the scenario apply.

Limits and enums are botocore's ECR model (CreateRepositoryCreationTemplateRequest); the rule that resource tags and a
KMS key need a repository creation role (customRoleArn) is AWS's ECR guide ("Create an IAM role for repository
creation templates": the role is for "a repository creation template that is using repository tags or KMS").
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.ecr.exceptions import InvalidParameterException, ValidationException
from moto.ecr.models import ECRBackend, RepoTagMutability
from moto.ecr.policy_validation import EcrLifecyclePolicyValidator
from moto.iam.exceptions import MalformedPolicyDocument
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from sandbox.aws.moto_ecr_rules import ROLE_ARN_PATTERN
from sandbox.aws.moto_ecr_state import (
    LOCK,
    TemplateAlreadyExistsException,
    TemplateNotFoundException,
    check_prefix,
    invalid,
    most_specific,
    now,
    page,
    prefix_key,
    state,
)

APPLIED_FOR = ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH")
ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")
KMS_KEY_PATTERN = r"^$|arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[a-z0-9-]+"
EXCLUSION_FILTER_PATTERN = r"^[0-9a-zA-Z._*-]{1,128}$"
PREFIX_LENGTH = {"min_length": 1, "max_length": 256}
# botocore's ECR model: RepositoryTemplateDescription max 256, RepositoryPolicyText max 10240,
# LifecyclePolicyTextForRepositoryCreationTemplate max 30720, CustomRoleArn max 2048.
DESCRIPTION_MAX = 256
REPOSITORY_POLICY_MAX = 10240
LIFECYCLE_POLICY_MAX = 30720
ROLE_ARN_MAX = 2048


@dataclass
class Template:
    """One repository creation template."""

    prefix: str
    applied_for: list[str]
    description: str | None = None
    encryption: dict[str, str] | None = None
    resource_tags: list[dict[str, str]] | None = None
    image_tag_mutability: str = RepoTagMutability.MUTABLE.value
    exclusion_filters: list[dict[str, str]] | None = None
    repository_policy: str | None = None
    lifecycle_policy: str | None = None
    custom_role_arn: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return prefix_key(self.prefix)

    def describe(self) -> dict[str, Any]:
        """The RepositoryCreationTemplate shape."""
        shape = {
            "prefix": self.prefix,
            "description": self.description,
            "encryptionConfiguration": self.encryption or {"encryptionType": "AES256"},
            "resourceTags": self.resource_tags or [],
            "imageTagMutability": self.image_tag_mutability,
            "imageTagMutabilityExclusionFilters": self.exclusion_filters,
            "repositoryPolicy": self.repository_policy,
            "lifecyclePolicy": self.lifecycle_policy,
            "appliedFor": self.applied_for,
            "customRoleArn": self.custom_role_arn,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        return copy.deepcopy({k: v for k, v in shape.items() if v is not None})


# --- operations ------------------------------------------------------------------------------------------------------


def create(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """CreateRepositoryCreationTemplate."""
    prefix = check_prefix("prefix", params.get("prefix"), **PREFIX_LENGTH)
    if "appliedFor" not in params:
        raise ValidationException(
            "1 validation error detected: Value null at 'appliedFor' failed to satisfy constraint: "
            "Member must not be null"
        )
    template = Template(prefix=prefix, applied_for=[])
    _apply(ecr, template, params)
    _check_role_for_tags_and_kms(template)
    with LOCK:
        templates = state(ecr).templates
        if template.key in templates:
            raise TemplateAlreadyExistsException(
                f"The repository creation template with the prefix '{prefix}' already exists in the registry with "
                f"id '{ecr.account_id}'. Specify a unique prefix or update that template."
            )
        template.created_at = template.updated_at = now()
        templates[template.key] = template
    return {"registryId": ecr.account_id, "repositoryCreationTemplate": template.describe()}


def describe(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """DescribeRepositoryCreationTemplates: all templates or those of the given prefixes, a page at a time."""
    wanted = params.get("prefixes")
    with LOCK:
        templates = list(state(ecr).templates.values())
    if wanted:
        keys = {prefix_key(check_prefix("prefixes", p, **PREFIX_LENGTH)) for p in wanted}
        templates = [t for t in templates if t.key in keys]
    chunk, token = page(templates, lambda t: t.key, params.get("maxResults"), params.get("nextToken"))
    result: dict[str, Any] = {
        "registryId": ecr.account_id,
        "repositoryCreationTemplates": [t.describe() for t in chunk],
    }
    if token:
        result["nextToken"] = token
    return result


def update(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateRepositoryCreationTemplate: the fields given replace the template's; the others stay."""
    prefix = check_prefix("prefix", params.get("prefix"), **PREFIX_LENGTH)
    with LOCK:
        current = get(ecr, prefix_key(prefix))
        changed = copy.deepcopy(current)
        _apply(ecr, changed, params)
        _check_role_for_tags_and_kms(changed)  # the template as it would be after the update
        changed.updated_at = now()
        state(ecr).templates[changed.key] = changed
    return {"registryId": ecr.account_id, "repositoryCreationTemplate": changed.describe()}


def delete(ecr: ECRBackend, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteRepositoryCreationTemplate; repositories already created keep their settings."""
    prefix = check_prefix("prefix", params.get("prefix"), **PREFIX_LENGTH)
    with LOCK:
        template = get(ecr, prefix_key(prefix))
        del state(ecr).templates[template.key]
    return {"registryId": ecr.account_id, "repositoryCreationTemplate": template.describe()}


def get(ecr: ECRBackend, key: str) -> Template:
    """The template of a normalised prefix, or TemplateNotFoundException."""
    template: Template | None = state(ecr).templates.get(key)
    if template is None:
        raise TemplateNotFoundException(
            f"The repository creation template with the prefix '{key}' can't be found in the registry with id "
            f"'{ecr.account_id}'. Verify the registry ID and prefix and try again."
        )
    return template


def for_repository(ecr: ECRBackend, repository_name: str, applied_for: str) -> Template | None:
    """The template that applies when ECR creates this repository for the given scenario."""
    with LOCK:
        candidates = {k: t for k, t in state(ecr).templates.items() if applied_for in t.applied_for}
        key = most_specific(list(candidates), repository_name)
        return copy.deepcopy(candidates[key]) if key is not None else None


def ensure_repository(ecr: ECRBackend, name: str) -> None:
    """Create a cache repository as pull-through cache does, with its template's settings; no-op when it exists."""
    with LOCK:
        if name in ecr.repositories:
            return
        template = for_repository(ecr, name, "PULL_THROUGH_CACHE")
        if template is None:
            ecr.create_repository(name, None, None, None, None, [])  # type: ignore[arg-type]
            return
        ecr.create_repository(
            repository_name=name,
            registry_id=None,
            encryption_config=template.encryption or {"encryptionType": "AES256"},
            image_scan_config=None,
            image_tag_mutability=template.image_tag_mutability,
            tags=template.resource_tags or [],
            image_tag_mutability_exclusion_filters=template.exclusion_filters,  # type: ignore[arg-type]
        )
        if template.lifecycle_policy:
            ecr.put_lifecycle_policy(None, name, template.lifecycle_policy)  # type: ignore[arg-type]
        if template.repository_policy:
            ecr.set_repository_policy(None, name, template.repository_policy)  # type: ignore[arg-type]


# --- checks ----------------------------------------------------------------------------------------------------------


def _apply(ecr: ECRBackend, template: Template, params: dict[str, Any]) -> None:
    """Check every given field and set it on the template (the caller stores the template only when all pass)."""
    if "appliedFor" in params:
        template.applied_for = _applied_for(params["appliedFor"])
    if "description" in params:
        template.description = _limited("description", params["description"], DESCRIPTION_MAX)
    if "encryptionConfiguration" in params:
        template.encryption = _encryption(params["encryptionConfiguration"])
    if "resourceTags" in params:
        template.resource_tags = _tags(params["resourceTags"])
    if "imageTagMutability" in params or "imageTagMutabilityExclusionFilters" in params:
        # One setting in two fields: the filters only mean something with an *_WITH_EXCLUSION mutability.
        template.image_tag_mutability = params.get("imageTagMutability", RepoTagMutability.MUTABLE.value)
        template.exclusion_filters = params.get("imageTagMutabilityExclusionFilters")
        _check_mutability(template.image_tag_mutability, template.exclusion_filters)
    if "repositoryPolicy" in params:
        template.repository_policy = _repository_policy(params["repositoryPolicy"])
    if "lifecyclePolicy" in params:
        template.lifecycle_policy = _lifecycle_policy(params["lifecyclePolicy"])
    if "customRoleArn" in params:
        template.custom_role_arn = _role(ecr, params["customRoleArn"])


def _limited(name: str, value: object, maximum: int) -> str:
    """A string member within its model length (botocore does not check lengths on the client; the service does)."""
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    if len(value) > maximum:
        raise ValidationException(
            f"1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must have length "
            f"less than or equal to {maximum}"
        )
    return value


def _check_role_for_tags_and_kms(template: Template) -> None:
    """Resource tags or KMS encryption without customRoleArn are refused.

    AWS's ECR guide ("Create an IAM role for repository creation templates") makes the role the way ECR applies a
    template's repository tags and KMS key; it does not say whether the API refuses a template without one or the
    repository creation fails later. The sandbox takes the more demanding reading and refuses the template.
    """
    kms = (template.encryption or {}).get("encryptionType", "AES256") != "AES256"
    if (template.resource_tags or kms) and not template.custom_role_arn:
        what = " and ".join(part for part, used in (("resourceTags", template.resource_tags), ("KMS", kms)) if used)
        raise invalid(
            "customRoleArn",
            f"a repository creation template with {what} needs a customRoleArn: ECR assumes that role to apply "
            "repository tags and KMS keys when it creates a repository",
        )


def _applied_for(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValidationException(
            "1 validation error detected: Value at 'appliedFor' failed to satisfy constraint: Member must contain "
            f"at least one of {', '.join(APPLIED_FOR)}"
        )
    for item in value:
        if item not in APPLIED_FOR:
            raise invalid("appliedFor", f"Member must satisfy enum value set: [{', '.join(APPLIED_FOR)}]")
    return list(dict.fromkeys(value))


def _encryption(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or value.get("encryptionType") not in ENCRYPTION_TYPES:
        raise invalid(
            "encryptionConfiguration.encryptionType",
            f"Member must satisfy enum value set: [{', '.join(ENCRYPTION_TYPES)}]",
        )
    kms_key = value.get("kmsKey")
    if kms_key:
        if value["encryptionType"] == "AES256":
            raise invalid(
                "encryptionConfiguration.kmsKey", "a KMS key can only be given with KMS or KMS_DSSE encryption"
            )
        if not re.fullmatch(KMS_KEY_PATTERN, kms_key):
            raise invalid("encryptionConfiguration.kmsKey", f"must satisfy regular expression '{KMS_KEY_PATTERN}'")
        return {"encryptionType": value["encryptionType"], "kmsKey": kms_key}
    return {"encryptionType": value["encryptionType"]}


def _tags(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(
        isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str) for t in value
    ):
        raise invalid("resourceTags", "each tag must have a string Key and Value")
    return [{"Key": t["Key"], "Value": t["Value"]} for t in value]


def _check_mutability(mutability: object, filters: object) -> None:
    if mutability not in {m.value for m in RepoTagMutability}:
        raise invalid(
            "imageTagMutability",
            f"Member must satisfy enum value set: [{', '.join(m.value for m in RepoTagMutability)}]",
        )
    if filters is not None:
        if not isinstance(filters, list) or not 1 <= len(filters) <= 5:
            raise invalid("imageTagMutabilityExclusionFilters", "Member must have length between 1 and 5")
        for f in filters:
            if not isinstance(f, dict) or f.get("filterType") != "WILDCARD":
                raise invalid("imageTagMutabilityExclusionFilters", "filterType must be WILDCARD")
            if not re.fullmatch(EXCLUSION_FILTER_PATTERN, str(f.get("filter", ""))):
                raise invalid(
                    "imageTagMutabilityExclusionFilters",
                    f"filter must satisfy regular expression '{EXCLUSION_FILTER_PATTERN}'",
                )
    ECRBackend.validate_image_tag_mutability_params_compatibility(mutability, filters)


def _repository_policy(text: object) -> str:
    # The same checks moto's SetRepositoryPolicy makes, so a template never yields a repository moto would refuse.
    if not isinstance(text, str):
        raise invalid("repositoryPolicy", "must be a JSON policy document")
    _limited("repositoryPolicy", text, REPOSITORY_POLICY_MAX)
    try:
        validator = IAMPolicyDocumentValidator(text)
        validator._validate_resource_exist = lambda: None  # type: ignore[method-assign]
        validator._validate_version = lambda: None  # type: ignore[method-assign]
        validator._validate_sid_uniqueness = lambda: None  # type: ignore[method-assign]
        validator.validate()
    except MalformedPolicyDocument:
        raise InvalidParameterException(
            "Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: 'Invalid repository policy provided'"
        ) from None
    return text


def _lifecycle_policy(text: object) -> str:
    if not isinstance(text, str):
        raise invalid("lifecyclePolicy", "must be a JSON lifecycle policy")
    _limited("lifecyclePolicy", text, LIFECYCLE_POLICY_MAX)
    EcrLifecyclePolicyValidator(text).validate()
    return text


def _role(ecr: ECRBackend, role_arn: object) -> str:
    _limited("customRoleArn", role_arn, ROLE_ARN_MAX)
    match = re.fullmatch(ROLE_ARN_PATTERN, role_arn) if isinstance(role_arn, str) else None
    if match is None:
        raise invalid("customRoleArn", "must be an IAM role ARN: arn:aws:iam::<account>:role/<name>")
    # botocore's model, customRoleArn: "This role must be in the same account as the registry that you are configuring."
    if match.group(2) != ecr.account_id:
        raise invalid("customRoleArn", f"the role must be in the registry's account {ecr.account_id}")
    return role_arn  # type: ignore[return-value]
