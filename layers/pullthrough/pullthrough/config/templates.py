"""A rule's repository creation template: how ECR creates the rule's cache repositories (mutability, encryption,
lifecycle, repository policy, tags), and the role ECR needs to apply tags and a KMS key.

Apart from the rule itself because it is a document of its own in ECR (CreateRepositoryCreationTemplate), with
ECR's own limits and its own reconcile (pullthrough.rules diffs templates apart from rules).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from pullthrough.config import fields
from pullthrough.config.fields import ExclusionFilter, Model
from pullthrough.config.patterns import KMS_KEY_ARN, ROLE_ARN

__all__ = ["CREATE_ROLE", "AppliedFor", "Encryption", "Lifecycle", "PolicyDocument", "Template", "policy_text"]


class Encryption(Model):
    """How repositories created from the template are encrypted at rest."""

    type: Literal["AES256", "KMS", "KMS_DSSE"] = Field(
        "AES256", description="AES256 (S3-managed keys), KMS, or KMS_DSSE (dual-layer KMS)."
    )
    key: str | None = Field(
        None,
        validate_default=True,
        description=(
            "For KMS and KMS_DSSE: the full ARN of the KMS key (arn:aws:kms:<region>:<account>:key/<id>), in the "
            "registry's region. Leave out to use the AWS managed key aws/ecr."
        ),
        json_schema_extra={"pattern": f"^{KMS_KEY_ARN}$"},
    )

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        kind = info.data.get("type")
        if kind == "AES256":
            raise ValueError("a key is only used with type KMS or KMS_DSSE; remove it or set type: KMS")
        if ":alias/" in value:
            raise ValueError("repository creation templates need the key's full ARN (...:key/<id>), not an alias")
        if not re.fullmatch(KMS_KEY_ARN, value):
            raise ValueError("must be a KMS key ARN: arn:aws:kms:<region>:<account>:key/<key id>")
        return value


class Lifecycle(Model):
    """A lifecycle policy for cache repositories, so the cache does not grow without bound."""

    keep_last_tags: int | None = Field(
        None, ge=1, le=10000, description="Keep the N most recently pushed tagged images; expire older ones."
    )
    expire_untagged_days: int | None = Field(
        None, ge=1, le=3650, description="Expire untagged images (e.g. replaced by a moved tag) after N days."
    )

    @model_validator(mode="after")
    def _something(self) -> Lifecycle:
        if self.keep_last_tags is None and self.expire_untagged_days is None:
            raise ValueError("set keep_last_tags or expire_untagged_days, or remove lifecycle")
        return self

    def policy_text(self) -> str:
        """The ECR lifecycle policy document, as the JSON text ECR stores."""
        rules: list[dict[str, Any]] = []
        if self.expire_untagged_days is not None:
            rules.append(
                {
                    "rulePriority": len(rules) + 1,
                    "description": f"expire untagged images after {self.expire_untagged_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": self.expire_untagged_days,
                    },
                    "action": {"type": "expire"},
                }
            )
        if self.keep_last_tags is not None:
            rules.append(
                {
                    "rulePriority": len(rules) + 1,
                    "description": f"keep the last {self.keep_last_tags} tagged images",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": self.keep_last_tags,
                    },
                    "action": {"type": "expire"},
                }
            )
        return json.dumps({"rules": rules}, sort_keys=True)


AppliedFor = Literal["PULL_THROUGH_CACHE", "REPLICATION", "CREATE_ON_PUSH"]  # botocore's ECR model: RCTAppliedFor
CREATE_ROLE = "create"
_ROLE_NEEDED = (
    "AWS's ECR guide (Create an IAM role for repository creation templates) says ECR applies resource tags and a KMS "
    "key to the repositories it creates only through a repository creation role (the template's customRoleArn)"
)
_ROLE_FIX = (
    "add role: create (Pullthrough deploys a least-privilege role that ECR assumes) or custom_role_arn: <the ARN of "
    "a role in this account that ECR may assume>"
)
_POLICY_LIMIT = 10240  # botocore's ECR model: RepositoryPolicyText max 10240
PolicyDocument = Annotated[dict[str, Any], WithJsonSchema({"type": "object", "required": ["Statement"]})]


class Template(Model):
    """The repository-creation template of a rule: its prefix is the rule's, and it applies to PULL_THROUGH_CACHE."""

    applied_for: tuple[AppliedFor, ...] = Field(
        ("PULL_THROUGH_CACHE",),
        min_length=1,
        description=(
            "When ECR applies the template (appliedFor): PULL_THROUGH_CACHE (the rule's cache repositories, always "
            "included), REPLICATION and CREATE_ON_PUSH (repositories under the same prefix created those ways)."
        ),
    )
    role: str | None = Field(
        None,
        description=(
            "create: Pullthrough deploys a least-privilege IAM role that ECR assumes to apply this template's tags "
            "and KMS key (needed for either); or give custom_role_arn instead."
        ),
        json_schema_extra={"enum": [CREATE_ROLE]},
    )
    custom_role_arn: str | None = Field(
        None,
        description=(
            "The IAM role (in this account) ECR assumes when it creates a repository from this template "
            "(customRoleArn); needed for tags or a KMS key unless role: create."
        ),
        json_schema_extra={"pattern": f"^{ROLE_ARN}$"},
    )
    tag_mutability: Literal["MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"] = Field(
        "MUTABLE",
        description=(
            "Whether a tag in a cache repository can be overwritten. MUTABLE lets ECR refresh a cached tag when "
            "the upstream moves it; *_WITH_EXCLUSION applies the opposite to tags matching mutability_exclusions."
        ),
    )
    mutability_exclusions: tuple[ExclusionFilter, ...] | None = Field(
        None,
        validate_default=True,
        description="Wildcard filters (1 to 5, e.g. latest, dev-*); required with *_WITH_EXCLUSION, else not allowed.",
    )
    encryption: Encryption = Field(
        default_factory=Encryption,
        validate_default=True,
        description="Encryption at rest; AES256 by default. KMS and KMS_DSSE need role or custom_role_arn.",
    )
    lifecycle: Lifecycle | None = Field(None, description="Optional lifecycle policy for the cache repositories.")
    repository_policy: PolicyDocument | None = Field(
        None,
        description=(
            "A repository policy (an IAM resource policy: Version and Statement, each statement with a Principal) "
            "for the repositories created from the template, written as a YAML mapping or JSON object."
        ),
    )
    tags: dict[
        Annotated[str, AfterValidator(lambda v: fields.aws_tag_text(v, "key", 128))],
        Annotated[str, AfterValidator(lambda v: fields.aws_tag_text(v, "value", 256))],
    ] = Field(
        default_factory=dict,
        description="Resource tags for the created repositories (at most 50); need role or custom_role_arn.",
    )
    description: str | None = Field(None, max_length=256, description="Shown on the template in the ECR console.")

    @field_validator("applied_for")
    @classmethod
    def _applied_for(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "PULL_THROUGH_CACHE" not in value:
            raise ValueError(
                "the template of a rule describes the rule's cache repositories: include PULL_THROUGH_CACHE, "
                "e.g. applied_for: [PULL_THROUGH_CACHE, REPLICATION]"
            )
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed twice; list each scenario once")
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is None or value == CREATE_ROLE:
            return value
        if value.startswith("arn:"):
            raise ValueError("role takes only create; give a role's ARN as custom_role_arn instead")
        raise ValueError(f"role takes only {CREATE_ROLE} (Pullthrough deploys the role); or give custom_role_arn")

    @field_validator("custom_role_arn")
    @classmethod
    def _custom_role(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("role") is not None:
            raise ValueError("give either role: create or custom_role_arn, not both")
        if not re.fullmatch(ROLE_ARN, value):
            raise ValueError("must be an IAM role ARN: arn:aws:iam::<this account>:role/<name>")
        return value

    @field_validator("mutability_exclusions")
    @classmethod
    def _exclusions(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        mutability = info.data.get("tag_mutability")
        if mutability is None:
            return value
        with_exclusion = mutability.endswith("_WITH_EXCLUSION")
        if with_exclusion and not value:
            raise ValueError(f"{mutability} needs 1 to 5 exclusion filters, e.g. [latest, dev-*]")
        if not with_exclusion and value is not None:
            raise ValueError(
                f"exclusions only apply to MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, not {mutability}"
            )
        if value is not None and len(value) > 5:
            raise ValueError(f"at most 5 exclusion filters, not {len(value)}")
        return value

    @field_validator("encryption")
    @classmethod
    def _encryption_role(cls, value: Encryption, info: ValidationInfo) -> Encryption:
        if value.type == "AES256":
            return value
        role, custom = info.data.get("role"), info.data.get("custom_role_arn")
        if role is None and custom is None and _role_fields_valid(info):
            raise ValueError(f"{_ROLE_NEEDED}; encryption {value.type} needs one: {_ROLE_FIX}")
        if role == CREATE_ROLE and value.key is None:
            raise ValueError(
                "with role: create, give encryption.key: the role Pullthrough deploys may use only the KMS keys the "
                "config names (for the AWS managed key aws/ecr, give custom_role_arn of a role you manage instead)"
            )
        return value

    @field_validator("repository_policy")
    @classmethod
    def _repository_policy(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        statements = value.get("Statement")
        if isinstance(statements, dict):
            statements = [statements]
        if not isinstance(statements, list) or not statements:
            raise ValueError("a policy needs a Statement: a list of {Effect, Principal, Action} mappings")
        for index, statement in enumerate(statements):
            where = f"Statement[{index}]"
            if not isinstance(statement, dict):
                raise ValueError(f"{where} must be a mapping with Effect, Principal and Action")
            if statement.get("Effect") not in ("Allow", "Deny"):
                raise ValueError(f"{where}.Effect must be Allow or Deny")
            if "Principal" not in statement and "NotPrincipal" not in statement:
                raise ValueError(f"{where} needs a Principal: a repository policy says who may do what")
            if "Action" not in statement and "NotAction" not in statement:
                raise ValueError(f"{where} needs an Action, e.g. ecr:BatchGetImage")
        size = len(policy_text(value))
        if size > _POLICY_LIMIT:
            raise ValueError(f"the policy is {size} characters as JSON; ECR takes at most {_POLICY_LIMIT}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if len(value) > 50:
            raise ValueError(f"at most 50 tags, not {len(value)}")
        reserved = sorted(k for k in value if k.lower().startswith("aws:"))
        if reserved:
            raise ValueError(f"tag keys starting with aws: are reserved by AWS: {', '.join(reserved)}")
        role_given = info.data.get("role") is not None or info.data.get("custom_role_arn") is not None
        if value and not role_given and _role_fields_valid(info):
            raise ValueError(f"{_ROLE_NEEDED}; these tags need one: {_ROLE_FIX}")
        return value

    @property
    def needs_role(self) -> bool:
        """Whether ECR needs a repository creation role to apply this template (tags or a KMS key)."""
        return bool(self.tags) or self.encryption.type != "AES256"


def _role_fields_valid(info: ValidationInfo) -> bool:
    # A role field that failed its own validation is reported there; asking for a role again would only add noise.
    return "role" in info.data and "custom_role_arn" in info.data


def policy_text(policy: dict[str, Any]) -> str:
    """A policy document as the JSON text ECR stores (keys sorted, so equal policies compare equal)."""
    return json.dumps(policy, sort_keys=True, separators=(",", ":"))
