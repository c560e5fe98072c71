"""The config document (config/pullthrough.yaml): its model, its loading, and the JSON Schema editors use.

`load(path)` and `parse(text, source=...)` return a `Config` or raise `ConfigError` carrying every problem found,
each with its location (`config/pullthrough.yaml: rules[2].credentials`), the offending value (never a token)
and what would be valid. Checks that span the document (each image resolves to exactly one rule, prefixes are
unique and do not nest) run even when parts of the document are broken, so one round of fixes is enough.

`python -m pullthrough.config --schema` prints the JSON Schema; `--check FILE` prints the explanation or the
problems. This module is imported in every Lambda cold start: it must stay free of boto3.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    JsonValue,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from pullthrough import tag_patterns, upstreams
from pullthrough.config import safe_yaml
from pullthrough.errors import ConfigError, InvalidReference, Problem
from pullthrough.reference import (
    ROOT_PREFIX,
    ImageReference,
    cache_repository,
    upstream_for,
    validate_tag,
)
from pullthrough.sources.model import SOURCE_KINDS, Source

if TYPE_CHECKING:
    from pullthrough import sources

__all__ = [
    "CREATE_ROLE",
    "SECRET_PREFIX",
    "Config",
    "Encryption",
    "Imports",
    "Lifecycle",
    "Notifications",
    "Prune",
    "Rule",
    "RuleCredentials",
    "Template",
    "Warm",
    "WarmImage",
    "WarmTarget",
    "load",
    "parse",
    "policy_text",
    "schema_text",
]

ADMIN_SECRET_PREFIX = "pullthrough/"  # noqa: S105 - a secret name prefix, not a password
SECRET_PREFIX = "ecr-pullthroughcache/"  # noqa: S105 - a secret name prefix, not a password
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The ECR API's ecrRepositoryPrefix / upstreamRepositoryPrefix pattern, without the optional trailing "/"
# (ECR always assumes one; refusing it keeps prefixes comparable).
_REPO_PREFIX = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_SECRET_NAME = r"[A-Za-z0-9/_+=.@-]+"  # noqa: S105 - the characters of a secret name
_ROLE_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"
_KMS_KEY_ARN = r"arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-z0-9-]+"
_HUB_NAMESPACE = r"[a-z0-9]{4,30}"
_EXCLUSION_FILTER = r"[0-9a-zA-Z._*-]{1,128}"
_STACK = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
# Lower-case GOOS / GOARCH values: catches "linux/amd46" before a run silently warms nothing.
_OSES = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
    "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows",
})  # fmt: skip
_ARCHES = frozenset({
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64",
    "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm",
})  # fmt: skip
_UPSTREAM_KEYS: list[JsonValue] = [*sorted(upstreams.CATALOGUE)]
_TOKEN_PREFIXES = ("dckr_pat_", "dckr_oat_", "ghp_", "gho_", "ghu_", "ghs_", "github_pat_", "glpat-", "AKIA", "ASIA")


# --- schema hints: JSON Schema keywords for editors; validation (and its messages) stays in the validators --------


@dataclass(frozen=True)
class _Hint:
    keywords: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(dict(self.keywords))
        return schema


def _hint(**keywords: Any) -> _Hint:
    return _Hint(tuple(keywords.items()))


@dataclass(frozen=True)
class _OrString:
    """Documents the short string form a BeforeValidator expands into the object form."""

    description: str
    pattern: str | None = None

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        inner = handler(core_schema)
        short: dict[str, Any] = {"type": "string", "description": self.description}
        if self.pattern:
            short["pattern"] = self.pattern
        alternatives = inner["anyOf"] if set(inner) == {"anyOf"} else [inner]
        return {"anyOf": [short, *alternatives]}


# --- field validators --------------------------------------------------------------------------------------------


def _repo_prefix(value: str, what: str) -> str:
    bare = value.rstrip("/")
    if bare != ROOT_PREFIX and not re.fullmatch(_REPO_PREFIX, bare):
        raise ValueError(
            f"{what} must be lower-case letters and digits in '/'-separated parts, joined by '.', '_', '__' "
            "or dashes, like docker-hub or cache/ghcr"
        )
    if bare != value:
        raise ValueError(f"drop the trailing '/': ECR always adds one (write {bare!r})")
    if not 2 <= len(value) <= 30:
        raise ValueError(f"{what} must be 2 to 30 characters (ECR's limit), not {len(value)}")
    return value


def _secret_name(value: str) -> str:
    if value.startswith("arn:"):
        raise ValueError("give the secret's name (ecr-pullthroughcache/...), not its ARN")
    if not value.startswith(SECRET_PREFIX) or len(value) == len(SECRET_PREFIX):
        raise ValueError(
            f"ECR only reads secrets whose name starts with {SECRET_PREFIX}; name it like {SECRET_PREFIX}docker-hub"
        )
    if len(value) > 512 or not re.fullmatch(_SECRET_NAME, value):
        raise ValueError("a secret name is at most 512 of the characters A-Z a-z 0-9 / _ + = . @ -")
    return value


def _image_reference(value: Any) -> ImageReference:
    if isinstance(value, ImageReference):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an image reference such as nginx:1.27 or ghcr.io/org/app:v1")
    try:
        return ImageReference.parse(value)
    except InvalidReference as exc:
        if _hide_tokens(value) != value:
            # The parser's reason quotes the text back (lower-cased): say what it is instead.
            raise ValueError(
                "this looks like an access token, not an image reference; a token belongs in the rule's "
                "credentials secret, never in this file"
            ) from None
        raise ValueError(exc.reason) from None


def _tag(value: str) -> str:
    try:
        return validate_tag(value)
    except InvalidReference as exc:
        raise ValueError(exc.reason) from None


def _platform(value: str) -> str:
    parts = value.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ValueError("a platform is os/arch or os/arch/variant, like linux/amd64 or linux/arm/v7")
    os_name, arch = parts[0], parts[1]
    if os_name not in _OSES:
        raise ValueError(f"unknown os {os_name!r}{_did_you_mean(os_name, _OSES)}; e.g. linux or windows")
    if arch not in _ARCHES:
        raise ValueError(f"unknown architecture {arch!r}{_did_you_mean(arch, _ARCHES)}; e.g. amd64 or arm64")
    if len(parts) == 3 and not re.fullmatch(r"[a-z0-9]+", parts[2]):
        raise ValueError(f"variant {parts[2]!r} must be lower-case letters and digits, like v7 or v8")
    return value


def _schedule(value: str) -> str:
    rate = re.fullmatch(r"rate\((\d+) ([a-z]+)\)", value)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1:
            raise ValueError("a rate must be at least 1, like rate(6 hours)")
        singular = unit.rstrip("s")
        if singular not in ("minute", "hour", "day"):
            raise ValueError(f"unknown rate unit {unit!r}; use minutes, hours or days")
        expected = singular if count == 1 else singular + "s"
        if unit != expected:
            raise ValueError(f"write rate({count} {expected}): EventBridge wants the singular only for 1")
        return value
    cron = re.fullmatch(r"cron\((.*)\)", value)
    if cron:
        fields = cron.group(1).split()
        if len(fields) != 6:
            raise ValueError(
                f"a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), "
                f"not {len(fields)}, like cron(0 3 * * ? *)"
            )
        if not all(re.fullmatch(r"[0-9A-Za-z*?,/#-]+", f) for f in fields):
            raise ValueError("cron fields hold only digits, names, and * ? , / - L W #")
        if (fields[2] == "?") == (fields[4] == "?"):
            raise ValueError("exactly one of day-of-month (3rd field) and day-of-week (5th field) must be ?")
        return value
    if value.startswith("at("):
        raise ValueError("a one-time at() schedule warms once; use rate(...) or cron(...)")
    raise ValueError("must be rate(N unit) or cron(6 fields), like rate(6 hours) or cron(0 3 * * ? *)")


_DURATION_UNITS = {"second": 1, "minute": 60, "hour": 3600}


def _duration(value: Any) -> Any:
    """`90 seconds`, `15 minutes`, `1 hour` (or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 15 minutes or 1 hour, not true or false")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]+)\s*", value)
    unit = match.group(2).rstrip("s") if match else ""
    if match is None or unit not in _DURATION_UNITS:
        raise ValueError("must be a duration such as 30 seconds, 15 minutes or 1 hour")
    return int(match.group(1)) * _DURATION_UNITS[unit]


Seconds = Annotated[
    int,
    BeforeValidator(_duration),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+ ?[a-z]+$"}]}),
]


def _tag_pattern(value: str) -> str:
    # Compiled here so a pattern the planner's matcher cannot run in bounded time is refused before any AWS call.
    try:
        tag_patterns.compile_pattern(value)
    except tag_patterns.PatternError as exc:
        raise ValueError(str(exc)) from None
    return value


def _aws_tag_text(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"a tag {what} is at most {limit} characters, not {len(value)}")
    if not all(ch.isalnum() or ch.isspace() or ch in "_.:/=+-@" for ch in value):
        raise ValueError(f"a tag {what} holds only letters, digits, spaces and _ . : / = + - @")
    return value


def _success_mode(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false.
    return "off" if value is False else value


def _credentials_form(value: Any) -> Any:
    return {"secret": value} if isinstance(value, str) else value


def _image_form(value: Any) -> Any:
    return {"image": value} if isinstance(value, str) else value


ImageRef = Annotated[
    ImageReference,
    PlainValidator(_image_reference),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An image reference: [registry/]repository[:tag][@digest]; docker.io when no registry.",
            "examples": ["nginx:1.27", "olakego/source-mysql:v0.1.8", "ghcr.io/org/app:v1"],
        }
    ),
]
Tag = Annotated[str, AfterValidator(_tag), _hint(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Platform = Annotated[
    str, AfterValidator(_platform), _hint(pattern=r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$", examples=["linux/amd64"])
]
ExclusionFilter = Annotated[
    str,
    AfterValidator(lambda v: _match(v, _EXCLUSION_FILTER, "a filter is 1 to 128 of 0-9 a-z A-Z . _ * -")),
    _hint(pattern=f"^{_EXCLUSION_FILTER}$"),
]


def _match(value: str, pattern: str, message: str) -> str:
    if not re.fullmatch(pattern, value):
        raise ValueError(message)
    return value


# --- the model ---------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleCredentials(_Model):
    """The Secrets Manager secret ECR uses to authenticate to the upstream, and how Pullthrough looks after it."""

    secret: Annotated[str, AfterValidator(_secret_name)] = Field(
        description=(
            f"Name of the secret (not its ARN). ECR only reads secrets named {SECRET_PREFIX}...; the value is JSON "
            '{"username": ..., "accessToken": ...}.'
        ),
        json_schema_extra={"pattern": f"^{re.escape(SECRET_PREFIX)}{_SECRET_NAME}$"},
    )
    rotation: Literal["staged", "docker-hub-api"] = Field(
        "staged",
        description=(
            "staged: a person or pipeline puts a new value as AWSPENDING; Pullthrough tests it against the "
            "upstream before it becomes AWSCURRENT. docker-hub-api: Pullthrough creates the new Docker Hub access "
            "token itself through the Hub API, with the admin credentials in admin_secret."
        ),
    )
    admin_secret: str | None = Field(
        None,
        validate_default=True,
        description=(
            "For rotation docker-hub-api: name of a separate secret holding Docker Hub admin credentials "
            f"(username, password). It must not be under {SECRET_PREFIX}, so ECR never reads it."
        ),
    )
    organization: Annotated[
        str | None,
        AfterValidator(
            lambda v: (
                v
                if v is None
                else _match(v, _HUB_NAMESPACE, "a Docker Hub organization is 4 to 30 lower-case letters and digits")
            )
        ),
    ] = Field(None, description="Docker Hub organization, when the token is an organization access token.")
    expires: date | None = Field(
        None, description="When the token expires (YYYY-MM-DD), if known: reports warn ahead of it."
    )
    warn_days: int = Field(14, ge=1, le=365, description="How many days before `expires` reports start warning.")

    @field_validator("admin_secret")
    @classmethod
    def _admin_secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        rotation = info.data.get("rotation")
        if value is None:
            if rotation == "docker-hub-api":
                raise ValueError(
                    "rotation docker-hub-api needs admin_secret: the name of a secret with Docker Hub admin "
                    "credentials, e.g. pullthrough/docker-hub-admin"
                )
            return None
        if rotation != "docker-hub-api":
            raise ValueError("admin_secret is only used by rotation: docker-hub-api; remove it")
        if value.startswith(SECRET_PREFIX):
            raise ValueError(
                f"admin credentials must not live under {SECRET_PREFIX} (ECR can read those); "
                "use e.g. pullthrough/docker-hub-admin"
            )
        if value.startswith("arn:"):
            raise ValueError("give the secret's name, not its ARN")
        if not value.startswith(ADMIN_SECRET_PREFIX):
            # The rotation function's role may read admin secrets under pullthrough/ only (template.yaml).
            raise ValueError(
                f"admin credentials must live under {ADMIN_SECRET_PREFIX}, the only admin secrets the rotation "
                "function may read; use e.g. pullthrough/docker-hub-admin"
            )
        if len(value) > 512 or not re.fullmatch(_SECRET_NAME, value):
            raise ValueError("a secret name is at most 512 of the characters A-Z a-z 0-9 / _ + = . @ -")
        return value


class Encryption(_Model):
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
        json_schema_extra={"pattern": f"^{_KMS_KEY_ARN}$"},
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
        if not re.fullmatch(_KMS_KEY_ARN, value):
            raise ValueError("must be a KMS key ARN: arn:aws:kms:<region>:<account>:key/<key id>")
        return value


class Lifecycle(_Model):
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


class Template(_Model):
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
        json_schema_extra={"pattern": f"^{_ROLE_ARN}$"},
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
        Annotated[str, AfterValidator(lambda v: _aws_tag_text(v, "key", 128))],
        Annotated[str, AfterValidator(lambda v: _aws_tag_text(v, "value", 256))],
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
        if not re.fullmatch(_ROLE_ARN, value):
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


CredentialsField = Annotated[
    RuleCredentials | None,
    BeforeValidator(_credentials_form),
    _OrString(
        f"Short form: just the secret name ({SECRET_PREFIX}...).",
        pattern=f"^{re.escape(SECRET_PREFIX)}{_SECRET_NAME}$",
    ),
]


class Rule(_Model):
    """One ECR pull-through cache rule: which upstream is cached under which prefix, and with which credentials."""

    prefix: str = Field(
        description=(
            "The ECR repository prefix (ecrRepositoryPrefix): images are pulled as <registry>/<prefix>/<path>. "
            "2 to 30 characters; unique; ROOT only for upstream ecr."
        ),
        json_schema_extra={"pattern": f"^({_REPO_PREFIX}|ROOT)$", "minLength": 2, "maxLength": 30},
        examples=["docker-hub", "ghcr"],
    )
    upstream: str = Field(
        description="The upstream registry, as ECR names it (upstreamRegistry).",
        json_schema_extra={"enum": _UPSTREAM_KEYS},
    )
    url: str | None = Field(
        None,
        validate_default=True,
        description=(
            "The upstream registry URL, only for upstreams without a fixed one: azure-container-registry "
            "(<name>.azurecr.io) and ecr (<account>.dkr.ecr.<region>.amazonaws.com)."
        ),
    )
    credentials: CredentialsField = Field(
        None,
        validate_default=True,
        description=(
            "Required for upstreams that need a secret (docker-hub, github-container-registry, "
            "gitlab-container-registry, azure-container-registry, chainguard); not allowed for the others."
        ),
    )
    custom_role_arn: str | None = Field(
        None,
        description="For upstream ecr in another account: the IAM role (in this account) ECR assumes to pull.",
        json_schema_extra={"pattern": f"^{_ROLE_ARN}$"},
    )
    upstream_prefix: str | None = Field(
        None,
        description=(
            "For upstream ecr: the upstream repository prefix (upstreamRepositoryPrefix). Only upstream "
            "repositories under it are cached, and the cache name drops it: prefix my-app with upstream_prefix "
            "upstream-app caches upstream-app/image1 as my-app/image1."
        ),
    )
    allow_replace: bool = Field(
        False,
        description=(
            "Whether reconcile may delete and recreate this rule when a field ECR cannot update "
            "(upstream, url, upstream_prefix) differs. Cached repositories stay; pulls fail in between."
        ),
    )
    template: Template | None = Field(
        None, description="How ECR creates the cache repositories of this rule (a repository-creation template)."
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _repo_prefix(value, "a prefix")

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str) -> str:
        if value not in upstreams.CATALOGUE:
            raise ValueError(
                f"unknown upstream{_did_you_mean(value, upstreams.CATALOGUE)}; "
                f"valid: {', '.join(sorted(upstreams.CATALOGUE))}"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        entry = _entry(info)
        if entry is None:
            return value
        if entry.url is not None:
            if value is not None and value != entry.url:
                raise ValueError(f"{entry.key} is always {entry.url}; remove url")
            return None
        if value is None:
            raise ValueError(f"upstream {entry.key} needs url: its registry host, like {entry.example_url}")
        if not entry.matches_url(value):
            raise ValueError(f"not a {entry.title} host; expected the form {entry.example_url}")
        return value

    @field_validator("credentials")
    @classmethod
    def _credentials(cls, value: RuleCredentials | None, info: ValidationInfo) -> RuleCredentials | None:
        entry = _entry(info)
        if entry is None:
            return value
        if entry.needs_secret and value is None:
            raise ValueError(
                f"upstream {entry.key} needs credentials: a Secrets Manager secret named "
                f"{SECRET_PREFIX}... holding username and accessToken"
            )
        if not entry.needs_secret and value is not None:
            reason = (
                "ECR authenticates with its own IAM role" if entry.auth is upstreams.Auth.IAM_ROLE else "it is public"
            )
            raise ValueError(f"upstream {entry.key} takes no credentials ({reason}); remove credentials")
        if value is not None and entry.key != "docker-hub":
            if value.rotation == "docker-hub-api":
                raise ValueError(f"rotation: docker-hub-api only works with upstream docker-hub, not {entry.key}")
            if value.organization is not None:
                raise ValueError(f"organization is a Docker Hub setting; upstream {entry.key} does not use it")
        return value

    @field_validator("custom_role_arn")
    @classmethod
    def _role(cls, value: str | None, info: ValidationInfo) -> str | None:
        entry = _entry(info)
        if value is not None and entry is not None and entry.key != "ecr":
            raise ValueError(f"custom_role_arn is only for upstream ecr, not {entry.key}; remove it")
        if value is not None and not re.fullmatch(_ROLE_ARN, value):
            raise ValueError("must be an IAM role ARN: arn:aws:iam::<account>:role/<name>")
        return value

    @field_validator("upstream_prefix")
    @classmethod
    def _upstream_prefix(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        entry = _entry(info)
        if entry is not None and entry.key != "ecr":
            raise ValueError(
                f"ECR supports an upstream repository prefix only for upstream ecr (ECR to ECR), not {entry.key}"
            )
        if info.data.get("prefix") == ROOT_PREFIX:
            raise ValueError("ECR allows an upstream prefix only when the rule's prefix is not ROOT")
        return _repo_prefix(value, "an upstream prefix")

    @model_validator(mode="after")
    def _root(self) -> Rule:
        if self.prefix == ROOT_PREFIX and self.upstream != "ecr":
            raise ValueError(f"prefix ROOT is only for upstream ecr (ECR to ECR); give {self.upstream} a prefix")
        return self

    @property
    def entry(self) -> upstreams.Upstream:
        """The catalogue entry of this rule's upstream."""
        return upstreams.CATALOGUE[self.upstream]

    @property
    def upstream_url(self) -> str:
        """upstreamRegistryUrl as ECR wants it."""
        return self.url or self.entry.url or ""

    @property
    def secret_name(self) -> str | None:
        """The credentials secret's name, or None for an upstream without one."""
        return self.credentials.secret if self.credentials else None

    def caches(self, ref: ImageReference) -> bool:
        """Whether this rule caches `ref` (its registry and, with an upstream prefix, its path)."""
        upstream = upstream_for(ref)
        if upstream is None or upstream.key != self.upstream:
            return False
        if self.url is not None and ref.domain.lower() != self.url:
            return False
        return self.upstream_prefix is None or ref.path.startswith(self.upstream_prefix + "/")

    def cache_repository(self, ref: ImageReference) -> str:
        """The ECR repository this rule caches `ref` in."""
        return cache_repository(ref, self.prefix, self.upstream_prefix)


class WarmImage(_Model):
    """An image to keep warm, and which of its tags."""

    image: ImageRef = Field(
        description=(
            "The image, e.g. olakego/source-mysql or ghcr.io/org/app. A tag here (nginx:1.27) is warmed too; "
            "name:tag@digest also verifies that the tag still has that digest."
        )
    )
    tags: tuple[Tag, ...] | None = Field(None, min_length=1, description="Tags to warm.")
    tag_pattern: Annotated[str | None, AfterValidator(lambda v: v if v is None else _tag_pattern(v))] = Field(
        None,
        description=(
            r"A Python regular expression a tag must match in full, e.g. ^v0\.1\.\d+$; matched in linear time, "
            "so backreferences, lookarounds and (a+)+-style nesting are refused."
        ),
    )
    # Strict: pydantic would read `latest: true` as 1.
    latest: Annotated[int, Strict()] | None = Field(
        None,
        ge=1,
        le=100,
        description=(
            "Warm the N highest versions (1.27.3, 1.2.3.4, 2024.01.15): of the plain tags, or with tag_pattern of "
            "each suffix family it matches (1.27.3-alpine orders among -alpine tags). Tags it cannot order are "
            "named in the report."
        ),
    )
    platforms: tuple[Platform, ...] | None = Field(
        None, min_length=1, description="Platforms for this image; warm.platforms when left out."
    )
    rule: str | None = Field(
        None, description="The prefix of the rule to cache this image through, when several rules could."
    )

    @model_validator(mode="after")
    def _selects_something(self) -> WarmImage:
        # The hints show the image at hand, written as its author would write it (nginx, ghcr.io/org/app).
        name = ImageReference(self.image.domain, self.image.path).familiar
        if self.image.tag is None and self.image.digest is not None:
            raise ValueError(
                f"ECR does not cache an image first pulled by digest; give the tag too ({name}:<tag>@sha256:...)"
            )
        if self.image.tag is None and not self.tags and self.tag_pattern is None and self.latest is None:
            raise ValueError(
                f"nothing to warm: give a tag ({name}:<tag>) or, in the object form, tags, tag_pattern or "
                f"latest ({{image: {name}, latest: 3}})"
            )
        return self

    def matches(self, tag: str) -> bool:
        """Whether `tag` matches tag_pattern in full (True when there is no pattern)."""
        return self.tag_pattern is None or tag_patterns.compile_pattern(self.tag_pattern).fullmatch(tag)

    @property
    def fixed_tags(self) -> tuple[str, ...]:
        """The tags named outright: the reference's own tag, then `tags`, without repeats."""
        named = ([self.image.tag] if self.image.tag else []) + list(self.tags or ())
        return tuple(dict.fromkeys(named))


WarmImageField = Annotated[
    WarmImage,
    BeforeValidator(_image_form),
    _OrString("Short form: an image reference with a tag, e.g. docker.io/library/nginx:1.27."),
]


class Imports(_Model):
    """How warm_images waits for ECR to import an image's layers (ECR imports them itself; nothing is copied)."""

    poll: Seconds = Field(
        60,
        ge=1,
        le=600,
        description=(
            "How long one warm_images invocation waits for ECR (checking with backoff) before the job goes back to "
            "the queue to look again later, e.g. 60 seconds. The function's remaining time caps it."
        ),
    )
    download_after: Seconds = Field(
        900,
        ge=0,
        description=(
            "Layers ECR still lacks this long into the import are downloaded once through ECR's own URL (a last "
            "resort: it moves bytes through the function), e.g. 15 minutes."
        ),
    )
    give_up_after: Seconds = Field(
        3600,
        ge=1,
        le=7200,
        description="After this long the image fails as import_incomplete, naming the layers ECR lacks, e.g. 1 hour.",
    )
    download: bool = Field(True, description="false: never download a layer through the function; wait for ECR only.")

    @model_validator(mode="after")
    def _ordered(self) -> Imports:
        if self.give_up_after < self.poll:
            raise ValueError(
                f"give_up_after ({self.give_up_after} s) must be at least poll ({self.poll} s): "
                "a job looks at least once before it gives up"
            )
        return self


class Warm(_Model):
    """Which images Pullthrough keeps warm in the cache, and how often."""

    schedule: Annotated[str, AfterValidator(_schedule)] = Field(
        "rate(6 hours)",
        description="EventBridge Scheduler expression: rate(N minutes|hours|days) or cron(6 fields).",
        examples=["rate(6 hours)", "cron(0 3 * * ? *)"],
    )
    platforms: tuple[Platform, ...] = Field(
        ("linux/amd64",),
        min_length=1,
        description=(
            "Default platforms to verify: os/arch[/variant]. ECR imports every platform of a multi-arch image (and "
            "the upstream counts a pull for each); these choose which ones Pullthrough checks are complete."
        ),
    )
    budget_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description=(
            "Share (0 < x <= 1) of an upstream's remaining pull allowance that a warm run may spend; runs open at "
            "the same time share one such allowance."
        ),
    )
    images: tuple[WarmImageField, ...] = Field((), description="The images to keep warm.")
    sources: tuple[Source, ...] = Field(
        (),
        description=(
            "Files (compose, kubernetes or helm template output, text) and ECS task definitions whose images are "
            "warmed too, each attributed to its source; warm.images wins for an image both name."
        ),
    )
    imports: Imports = Field(
        default_factory=lambda: Imports(),
        description="How long to wait for ECR's import of an image, and when to download a layer as a last resort.",
    )


class Notifications(_Model):
    """What the SNS reports say."""

    success: Annotated[Literal["full", "summary", "off"], BeforeValidator(_success_mode)] = Field(
        "summary",
        description="For a run without trouble: full (every image), summary (counts), or off (no report).",
    )
    subject_prefix: str | None = Field(
        None,
        max_length=40,
        description="Replaces the word pullthrough after the status in every report subject, e.g. [ACME].",
    )

    @field_validator("subject_prefix")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be one line of printable characters")
        return value


class Prune(_Model):
    """Deleting cached images nobody pulled for a while, under the rules' prefixes only (functions/prune_images).

    Done by Pullthrough rather than an ECR lifecycle policy: ECR's `sinceImagePulled` count type only transitions
    images to the archive storage class, it does not expire them (containers-roadmap #921, closed 2025-11-20 by AWS
    with "paired with our new archival storage class"; #2728, open, asks for expiry), and no lifecycle rule can spare
    the images the warm list still names.
    """

    schedule: Annotated[str, AfterValidator(_schedule)] = Field(
        "rate(1 day)",
        description="EventBridge Scheduler expression: rate(N minutes|hours|days) or cron(6 fields).",
        examples=["rate(1 day)", "cron(0 4 ? * SUN *)"],
    )
    # Strict: pydantic would read `unused_for_days: true` as 1.
    unused_for_days: Annotated[int, Strict()] = Field(
        ge=1,
        le=3650,
        description=(
            "Delete a cached image nobody pulled for this many days (ECR's lastRecordedPullTime, which ECR refreshes "
            "about once a day; the import time when it was never pulled), e.g. 30."
        ),
    )
    dry_run: bool = Field(
        True, description="true (the default): only report what would be deleted, with sizes; false: delete it."
    )
    max_deletions: Annotated[int, Strict()] = Field(
        100, ge=1, le=10000, description="At most this many images deleted per run, the oldest first."
    )
    keep: tuple[ImageRef, ...] = Field(
        (),
        description=(
            "Images never deleted besides the warm list: name:tag keeps that tag, a name without a tag keeps every "
            "image of its cache repository."
        ),
    )


@dataclass(frozen=True)
class WarmTarget:
    """A warm image resolved against the rules: what the planner needs to expand and warm it."""

    image: WarmImage
    rule: Rule
    cache_repository: str
    platforms: tuple[str, ...]
    source: str | None = None  # the warm.sources entry that names the image; None for warm.images
    place: str | None = None  # where in that source: file:line, or file → service / workload → container


class Config(_Model):
    """Pullthrough's configuration: ECR pull-through cache rules, images to keep warm, and reports."""

    model_config = ConfigDict(title="Pullthrough configuration")

    version: Literal[1] = Field(description="The version of this document's format; write version: 1.")
    stack: Annotated[str, AfterValidator(lambda v: _match(v, _STACK, "1 to 64 letters, digits, '.', '_' or '-'"))] = (
        Field("pullthrough", description="A label for this installation, used in reports.")
    )
    rules: tuple[Rule, ...] = Field(description="The pull-through cache rules Pullthrough creates and keeps in shape.")
    warm: Warm = Field(default_factory=Warm, description="The images to keep warm.")
    notifications: Notifications = Field(default_factory=Notifications, description="What reports contain.")
    prune: Prune | None = Field(
        None, description="Delete cached images nobody pulled for a while; left out, nothing is ever deleted."
    )
    _origin: Path | None = PrivateAttr(None)  # the file load() read: warm.sources paths are relative to its folder

    @property
    def origin(self) -> Path | None:
        """The config file this was loaded from (None for a parsed text): source file paths are relative to it."""
        return self._origin

    def rule_for(self, ref: ImageReference | str, pin: str | None = None) -> Rule:
        """The one rule that caches `ref` (the rule with prefix `pin` when given); ConfigError says what to fix."""
        reference = ref if isinstance(ref, ImageReference) else ImageReference.parse(ref)
        rule = _resolve(reference, pin, list(enumerate(self.rules)), set(), set())
        if not isinstance(rule, Rule):
            message = rule or "no rule caches this image"
            raise ConfigError([Problem(location=str(reference), value=str(reference), message=message)])
        return rule

    def targets(self, reading: sources.Reading | None = None) -> list[WarmTarget]:
        """Every warm image with its rule, cache repository and platforms; then each reference warm.sources name
        (`reading`, else the files read now; ecs sources only through a given reading) that warm.images does not."""
        result = []
        for image in self.warm.images:
            rule = self.rule_for(image.image, image.rule)
            result.append(
                WarmTarget(image, rule, rule.cache_repository(image.image), image.platforms or self.warm.platforms)
            )
        if reading is None:
            if not self.warm.sources:
                return result
            from pullthrough import sources as source_files

            reading = source_files.read(self)
        return result + self._source_targets(reading)

    def _source_targets(self, reading: sources.Reading) -> list[WarmTarget]:
        """The sources' references as targets; warm.images wins: its tags are not repeated, its settings apply."""
        listed: dict[str, WarmImage] = {}
        for image in self.warm.images:
            listed.setdefault(image.image.name, image)
        result = []
        for item in reading.unique():
            ref = ImageReference.parse(item.reference)
            entry = listed.get(ref.name)
            if entry is not None and ref.tag in entry.fixed_tags:
                continue
            image = WarmImage(
                image=ref, platforms=entry.platforms if entry else None, rule=entry.rule if entry else None
            )
            rule = self.rule_for(ref, image.rule)
            platforms = image.platforms or self.warm.platforms
            result.append(WarmTarget(image, rule, rule.cache_repository(ref), platforms, item.source, item.place))
        return result

    def explain(self) -> list[str]:
        """Human-readable lines: each rule with its upstream, auth and template; each image with its cache name."""
        warm = self.warm
        lines = [
            f"stack {self.stack}: {len(self.rules)} rule(s), {len(warm.images)} image(s) warmed on {warm.schedule} "
            f"for {', '.join(warm.platforms)}, spending at most {warm.budget_share:.0%} of an upstream's "
            "remaining pulls per run",
        ]
        for rule in self.rules:
            lines.append(
                f"rule {rule.prefix}: {rule.entry.title} ({rule.upstream_url}"
                + (f", only {rule.upstream_prefix}/..." if rule.upstream_prefix else "")
                + f") cached as {'<path>' if rule.prefix == ROOT_PREFIX else rule.prefix + '/<path>'}"
            )
            lines.append(f"  auth: {_explain_auth(rule)}")
            lines.append(f"  template: {_explain_template(rule.template)}")
            if rule.allow_replace:
                lines.append("  reconcile may delete and recreate this rule when an immutable field changes")
        for target in self.targets():
            image = target.image
            selected = list(image.fixed_tags)
            if image.latest is not None:
                matching = f" matching {image.tag_pattern}" if image.tag_pattern is not None else ""
                selected.append(f"the latest {image.latest} version(s){matching}")
            elif image.tag_pattern is not None:
                selected.append(f"every tag matching {image.tag_pattern}")
            lines.append(
                f"image {image.image.name} -> {target.cache_repository} (rule {target.rule.prefix}): "
                f"{'; '.join(selected)}; {', '.join(target.platforms)}"
                + (f"; digest must stay {image.image.digest}" if image.image.digest else "")
                + (f"; from {target.source} ({target.place})" if target.source else "")
            )
        if self.prune is not None:
            prune = self.prune
            lines.append(
                f"prune on {prune.schedule}: images under the rules' prefixes unpulled for {prune.unused_for_days} "
                f"day(s), at most {prune.max_deletions} a run"
                + (", dry run (reported, not deleted)" if prune.dry_run else ", deleted")
                + (f"; also kept: {', '.join(str(ref) for ref in prune.keep)}" if prune.keep else "")
            )
        # The word Report.subject puts after the status when no prefix is set: say what subscribers will see.
        subject = self.notifications.subject_prefix or "pullthrough (the default)"
        lines.append(f"reports: success {self.notifications.success}; subject prefix {subject}")
        return lines

    @classmethod
    def dump_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the document, for editors (config/pullthrough.schema.json)."""
        schema = cls.model_json_schema()
        return {"$schema": SCHEMA_DIALECT, **schema}


def _explain_auth(rule: Rule) -> str:
    creds = rule.credentials
    if creds is None:
        if rule.entry.auth is upstreams.Auth.IAM_ROLE:
            return f"IAM role {rule.custom_role_arn}" if rule.custom_role_arn else "ECR's service-linked role"
        return "none (public upstream)"
    text = f"secret {creds.secret}, rotation {creds.rotation}"
    if creds.admin_secret:
        text += f" (admin credentials in {creds.admin_secret})"
    if creds.organization:
        text += f", organization {creds.organization}"
    if creds.expires:
        text += f", expires {creds.expires.isoformat()} (warn {creds.warn_days} days ahead)"
    return text


def _explain_template(template: Template | None) -> str:
    if template is None:
        return "none (ECR defaults: MUTABLE, AES256)"
    parts: list[str] = [template.tag_mutability]
    if template.mutability_exclusions:
        parts[0] += f" except {', '.join(template.mutability_exclusions)}"
    encryption = template.encryption
    parts.append(encryption.type + (f" with {encryption.key}" if encryption.key else ""))
    if template.lifecycle and template.lifecycle.keep_last_tags:
        parts.append(f"keep the last {template.lifecycle.keep_last_tags} tagged images")
    if template.lifecycle and template.lifecycle.expire_untagged_days:
        parts.append(f"expire untagged images after {template.lifecycle.expire_untagged_days} days")
    if template.tags:
        parts.append("tags " + ", ".join(f"{k}={v}" for k, v in sorted(template.tags.items())))
    if template.repository_policy:
        parts.append("a repository policy")
    if template.role == CREATE_ROLE:
        parts.append("applied through the role Pullthrough deploys")
    elif template.custom_role_arn:
        parts.append(f"applied through role {template.custom_role_arn}")
    if template.applied_for != ("PULL_THROUGH_CACHE",):
        parts.append("for " + ", ".join(template.applied_for))
    return ", ".join(parts)


def _entry(info: ValidationInfo) -> upstreams.Upstream | None:
    key = info.data.get("upstream")
    return upstreams.CATALOGUE.get(key) if isinstance(key, str) else None


# --- loading -----------------------------------------------------------------------------------------------------


def load(path: str | Path) -> Config:
    """Read and validate the config file at `path`; ConfigError lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            [Problem(location=str(path), value=str(path), message=f"cannot read the config file: {reason}")]
        ) from None
    config = parse(text, source=str(path))
    config._origin = path
    return config


def parse(text: str, source: str = "<config>") -> Config:
    """Validate a config document given as YAML text; `source` names it in problems."""
    raw = _read_yaml(text, source)
    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_translate(exc, source, raw))
    problems.extend(_document_checks(raw, config, source))
    if problems or config is None:
        raise ConfigError(_without_tokens(problems, _tokens_in(raw)))
    return config


def schema_text() -> str:
    """The JSON Schema as committed in config/pullthrough.schema.json (`make schema` writes it)."""
    return json.dumps(Config.dump_schema(), indent=2, ensure_ascii=False) + "\n"


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = safe_yaml.load_single(text)
    except safe_yaml.YamlProblem as exc:
        where = f"{source}: line {exc.line}, column {exc.column}" if exc.line is not None else source
        value = _show(_hide_tokens(exc.text)) if exc.line is not None else exc.text
        problem = Problem(location=where, value=value, message=exc.message)
        raise ConfigError(_without_tokens([problem], ())) from None
    if raw is None:
        raise ConfigError([Problem(location=source, value="nothing", message="the document is empty")])
    if not isinstance(raw, dict):
        raise ConfigError(
            [
                Problem(
                    location=source, value=_show(raw), message="the document must be a mapping (version: 1, rules: ...)"
                )
            ]
        )
    return raw


# --- problems from pydantic --------------------------------------------------------------------------------------


def _translate(exc: ValidationError, source: str, raw: Any) -> list[Problem]:
    errors = exc.errors(include_url=False)
    inner = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
    problems = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in inner:
            continue  # pydantic counts only the valid items; the broken ones are reported already
        if loc and loc[-1] in ("secret", "image") and isinstance(_raw_at(raw, loc[:-1]), str):
            loc = loc[:-1]  # the short string form: point at the string the user wrote
        shown_loc = _without_kind(loc)
        found, value = _raw_lookup(raw, shown_loc)
        absent = error["type"] == "missing" or (not found and error["input"] is None)
        shown = "nothing" if absent else _show(value if found else error["input"])
        message = _message(error, loc)
        problems.append(Problem(location=f"{source}: {_format_loc(shown_loc)}", value=shown, message=message))
    return problems


def _without_kind(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """`loc` without the kind pydantic puts after a warm.sources item (the user wrote no such key)."""
    for at in range(len(loc) - 2):
        if loc[at] == "sources" and isinstance(loc[at + 1], int) and loc[at + 2] in SOURCE_KINDS:
            return loc[: at + 2] + loc[at + 3 :]
    return loc


def _kind_message(tag: Any) -> str:
    """A warm.sources item without a kind, or with one that does not exist."""
    kinds = ", ".join(SOURCE_KINDS)
    if tag is None:
        return f"kind is required: one of {kinds} (e.g. kind: compose, files: [docker-compose.yml])"
    return f"unknown kind {tag!r}{_did_you_mean(str(tag), SOURCE_KINDS)}; valid: {kinds}"


def _message(error: Any, loc: tuple[Any, ...]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error["input"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _kind_message(ctx.get("tag"))
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        description = _description(loc)
        return "required" + (f": {description[:1].lower()}{description[1:]}" if description else "")
    if kind == "extra_forbidden":
        fields = _fields_at(loc[:-1])
        return f"unknown field{_did_you_mean(str(loc[-1]), fields)}; valid here: {', '.join(fields)}"
    if kind == "literal_error":
        if loc == ("version",):
            return "this Pullthrough reads version: 1"
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        return f"must be one of {expected}" + (_did_you_mean(str(value), choices) if isinstance(value, str) else "")
    if kind == "string_type":
        if isinstance(value, bool):
            return "YAML read this as true/false (yes, no, on, off); write it in quotes to keep it text"
        if isinstance(value, int | float):
            return 'YAML read this as a number; write it in quotes (e.g. "1.10") to keep it text'
        return "must be text"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        if isinstance(value, bool):
            return "YAML read this as true/false; write a whole number, e.g. 3"
        return "must be a whole number"
    if kind in ("float_type", "float_parsing", "finite_number"):
        percent = _percentage(value)
        if percent is not None:
            return f"write a share between 0 and 1, not a percentage: {value.strip()} is {percent}"
        return "must be a number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("list_type", "tuple_type"):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        fields = _fields_at(loc)
        return "must be a mapping" + (f" with fields {', '.join(fields)}" if fields else "")
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"):
        return "must be a date written YYYY-MM-DD"
    bounds = {
        "greater_than": "must be greater than {gt}",
        "greater_than_equal": "must be at least {ge}",
        "less_than": "must be less than {lt}",
        "less_than_equal": "must be at most {le}",
        "too_short": "must have at least {min_length} item(s)",
        "too_long": "must have at most {max_length} item(s)",
        "string_too_short": "must be at least {min_length} character(s)",
        "string_too_long": "must be at most {max_length} characters",
    }
    if (
        kind == "less_than_equal"
        and loc[-1:] == ("budget_share",)
        and isinstance(value, int | float)
        and 2 <= value <= 100
    ):
        return f"must be at most 1 (a share, not a percentage: for {_number(value)}% write {_number(value / 100)})"
    if kind in bounds:
        return bounds[kind].format(**{k: _number(v) for k, v in ctx.items()})
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _percentage(value: Any) -> float | None:
    """`50%` as 0.5; None for anything else."""
    if not isinstance(value, str) or not value.strip().endswith("%"):
        return None
    try:
        return float(value.strip()[:-1]) / 100
    except ValueError:
        return None


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _format_loc(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, str):
            part = _hide_tokens(part)  # an unknown key is shown as written, unless it is a pasted token
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            text += ("." if text else "") + str(part)
        else:
            text += f"[{json.dumps(str(part))}]"
    return text or "(document)"


def _raw_lookup(raw: Any, loc: Sequence[Any]) -> tuple[bool, Any]:
    node = raw
    for part in loc:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        else:
            return False, None
    return True, node


def _raw_at(raw: Any, loc: Sequence[Any]) -> Any:
    return _raw_lookup(raw, loc)[1]


def _strip(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (Union, type(int | None)) and len(args) == 1:
            tp = args[0]
            continue
        return tp


def _kind_of(model: type[BaseModel]) -> tuple[Any, ...]:
    """The values a model's `kind` field admits (its Literal's arguments); () without such a field."""
    field = model.model_fields.get("kind")
    return get_args(field.annotation) if field is not None else ()


def _type_at(loc: Sequence[Any]) -> Any:
    tp: Any = Config
    for part in loc:
        tp = _strip(tp)
        members = [m for m in get_args(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
        if members and isinstance(part, str):  # a discriminated union: pydantic's loc names the member's kind
            chosen = [m for m in members if _kind_of(m) == (part,)]
            if chosen:
                tp = chosen[0]
                continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return _strip(tp)


def _fields_at(loc: Sequence[Any]) -> list[str]:
    tp = _type_at(loc)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _description(loc: Sequence[Any]) -> str:
    parent = _type_at(loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)) or not isinstance(loc[-1], str):
        return ""
    field = parent.model_fields.get(loc[-1])
    return (field.description or "") if field else ""


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- values shown in problems: shortened, and never a token ------------------------------------------------------


def _looks_secret(text: str) -> bool:
    if text.startswith(_TOKEN_PREFIXES) and len(text) >= 16:
        return True
    if len(text) < 20 or text.startswith((SECRET_PREFIX, "arn:")) or any(c.isspace() or c in ".:" for c in text):
        return False
    return any(c.islower() for c in text) and any(c.isupper() for c in text) and any(c.isdigit() for c in text)


# A word is a run of the characters tokens, hosts and paths are made of (YAML's * & ! and quotes end it). A word, its
# parts between the separators of hosts (. : @) and their pieces between / + = are each checked: a base64 token holds
# / + =, and a token can be pasted after a host or a colon.
_WORD = re.compile(r"[\w+/=.:@-]+")
_PART = re.compile(r"[^.:@]+")
_PIECE = re.compile(r"[^/+=]+")


def _hide_tokens(text: str) -> str:
    """`text` with every word, or part of a word, that looks like a token replaced by <hidden>."""
    return _WORD.sub(lambda word: _hide_in(word.group(), (_PART, _PIECE)), text)


def _hide_in(text: str, splits: Sequence[re.Pattern[str]]) -> str:
    if _looks_secret(text):
        return "<hidden>"
    if not splits:
        return text
    return splits[0].sub(lambda part: _hide_in(part.group(), splits[1:]), text)


def _candidates(text: str) -> Iterator[str]:
    """Every word of `text`, part of a word and piece of a part: what _hide_tokens checks."""
    for word in _WORD.findall(text):
        yield word
        for part in _PART.findall(word):
            yield part
            yield from _PIECE.findall(part)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        if _looks_secret(value):
            return f"<hidden: {len(value)} characters that look like a token>"
        return _hide_tokens(value)
    if isinstance(value, dict):
        return {_redact(k): _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _tokens_in(raw: Any) -> set[str]:
    """Every word or part of a word in the document's keys and values that looks like a token."""
    found: set[str] = set()
    seen: set[int] = set()  # aliased values are shared: visit each once
    pending = [raw]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            found.update(candidate for candidate in _candidates(node) if _looks_secret(candidate))
        elif isinstance(node, dict | list | tuple) and id(node) not in seen:
            seen.add(id(node))
            pending.extend([*node.keys(), *node.values()] if isinstance(node, dict) else node)
    return found


def _without_tokens(problems: Iterable[Problem], known: Iterable[str]) -> list[Problem]:
    """The problems with every token of the document hidden, in any case, wherever a message quoted it."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(known, key=len, reverse=True)), re.IGNORECASE)

    def clean(text: str) -> str:
        return _hide_tokens(pattern.sub("<hidden>", text) if pattern.pattern else text)

    return [Problem(location=clean(p.location), value=clean(p.value), message=clean(p.message)) for p in problems]


def _show(value: Any, limit: int = 60) -> str:
    text = _flow(_redact(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flow(value: Any) -> str:
    """A value in YAML flow style, the way the user wrote it."""
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, int | float) else str(value)


# --- checks across the document ----------------------------------------------------------------------------------


def _document_checks(raw: dict[str, Any], config: Config | None, source: str) -> list[Problem]:
    """Prefix clashes and image resolution, on whatever parts of the document are valid on their own."""
    broken_upstreams: set[str] = set()
    broken_prefixes: set[str] = set()
    raw_rules = raw.get("rules")
    if config is not None:
        rules = list(enumerate(config.rules))
        images = list(enumerate(config.warm.images))
        prefixes = [(index, rule.prefix) for index, rule in rules]
    else:
        if not isinstance(raw_rules, list):
            return []  # already reported; image resolution would only add noise
        rules, prefixes = [], []
        for index, item in enumerate(raw_rules):
            try:
                rule = Rule.model_validate(item)
            except ValidationError:
                if isinstance(item, dict):
                    broken_upstreams.update(_meant_upstreams(item.get("upstream")))
                    broken_prefixes.add(str(item.get("prefix")))
                    raw_prefix = item.get("prefix")
                    if isinstance(raw_prefix, str):
                        with contextlib.suppress(ValueError):  # a bad prefix is reported already
                            prefixes.append((index, _repo_prefix(raw_prefix, "a prefix")))
                continue
            rules.append((index, rule))
            prefixes.append((index, rule.prefix))
        images = []
        raw_images = _raw_at(raw, ("warm", "images"))
        for index, item in enumerate(raw_images if isinstance(raw_images, list) else []):
            with contextlib.suppress(ValidationError):  # reported by the full validation already
                images.append((index, _IMAGE_ADAPTER.validate_python(item)))

    problems: list[Problem] = []

    def problem(loc: tuple[Any, ...], value: Any, message: str) -> None:
        problems.append(Problem(location=f"{source}: {_format_loc(loc)}", value=_show(value), message=message))

    first_with: dict[str, int] = {}
    for index, prefix in prefixes:
        if prefix in first_with:
            problem(
                ("rules", index, "prefix"),
                prefix,
                f"duplicate: rules[{first_with[prefix]}] already uses this prefix; each rule needs its own",
            )
            continue
        first_with[prefix] = index
    for index, prefix in prefixes:
        for other_index, other in prefixes:
            if other != ROOT_PREFIX and prefix.startswith(other + "/"):
                problem(
                    ("rules", index, "prefix"),
                    prefix,
                    f"nests inside rules[{other_index}].prefix {other!r}: a repository "
                    f"{prefix}/... would match both rules; use prefixes that do not contain one another",
                )

    seen: dict[tuple[str, tuple[str, ...], str | None, int | None], int] = {}
    # One cause, one problem: every image a missing or unsupported upstream strands is named in the first's problem.
    stranded: dict[str, tuple[int, list[str]]] = {}
    for index, image in images:
        key = (str(image.image), image.tags or (), image.tag_pattern, image.latest)
        if key in seen:
            problem(("warm", "images", index), str(image.image), f"listed twice: same as warm.images[{seen[key]}]")
        seen.setdefault(key, index)
        resolved = _resolve(image.image, image.rule, rules, broken_upstreams, broken_prefixes)
        if resolved is None:
            continue
        if isinstance(resolved, str):
            if resolved in stranded:
                stranded[resolved][1].append(f"warm.images[{index}]")
                continue
            loc = ("warm", "images", index, "rule") if image.rule else ("warm", "images", index)
            problem(loc, image.rule or str(image.image), resolved)
            stranded[resolved] = (len(problems) - 1, [])
            continue
        try:
            resolved.cache_repository(image.image)
        except InvalidReference as exc:
            problem(("warm", "images", index), str(image.image), exc.reason)
    if config is not None and config.prune is not None:
        for index, ref in enumerate(config.prune.keep):
            kept = _resolve(ref, None, rules, broken_upstreams, broken_prefixes)
            if isinstance(kept, str):
                message = f"{kept}; prune only ever deletes under the rules' prefixes"
                problem(("prune", "keep", index), str(ref), message)
    for position, others in stranded.values():
        if others:
            first = problems[position]
            problems[position] = replace(first, message=f"{first.message}; the same for {_listing(others)}")
    return problems


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _meant_upstreams(value: Any) -> set[str]:
    """The upstream a broken rule names, and the catalogue entry a misspelt one most likely means.

    Images from that upstream wait for the rule's own problem to be fixed instead of each reporting a missing rule.
    """
    text = str(value)
    return {text, *difflib.get_close_matches(text, list(upstreams.CATALOGUE), n=1, cutoff=0.6)}


_IMAGE_ADAPTER: TypeAdapter[WarmImage] = TypeAdapter(WarmImageField)


def _resolve(
    ref: ImageReference,
    pin: str | None,
    rules: Sequence[tuple[int, Rule]],
    broken_upstreams: set[str],
    broken_prefixes: set[str],
) -> Rule | str | None:
    """The rule that caches `ref`, a message saying what to fix, or None when a broken rule may be the answer."""
    upstream = upstream_for(ref)
    if upstream is None:
        supported = sorted(u.domains[0] for u in upstreams.CATALOGUE.values() if u.domains)
        return (
            f"ECR pull-through cache cannot cache images from {ref.domain}; it caches {', '.join(supported)}, "
            "<name>.azurecr.io and <account>.dkr.ecr.<region>.amazonaws.com"
        )
    if pin is not None:
        pinned = next((rule for _, rule in rules if rule.prefix == pin), None)
        if pinned is None:
            if pin in broken_prefixes:
                return None
            return f"no rule has prefix {pin!r}; prefixes: {', '.join(rule.prefix for _, rule in rules) or 'none'}"
        candidates = [rule for _, rule in rules if rule.caches(ref)]
        if not pinned.caches(ref):
            hint = f"; rule {candidates[0].prefix!r} does" if len(candidates) == 1 else ""
            return f"rule {pin!r} does not cache {ref.domain}/{ref.path}: it {_scope(pinned)}{hint}"
        return pinned
    candidates = [rule for _, rule in rules if rule.caches(ref)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = [repr(rule.prefix) for rule in candidates]
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        return (
            f"ambiguous: rules {listed} {'both' if len(names) == 2 else 'all'} cache {ref.domain} images; "
            "set rule: to one of them"
        )
    if upstream.key in broken_upstreams:
        return None
    message = f"no rule caches {ref.domain} images; add a rule with upstream: {upstream.key}"
    if upstream.url is None:
        message += f" and url: {ref.domain.lower()}"
    near = [rule for _, rule in rules if rule.upstream == upstream.key]
    if near:
        message += " (" + "; ".join(f"rule {rule.prefix!r} {_scope(rule)}" for rule in near) + ")"
    return message


def _scope(rule: Rule) -> str:
    scope = f"caches {rule.entry.title} ({rule.upstream_url})"
    return scope + (f" under {rule.upstream_prefix}/ only" if rule.upstream_prefix else "")


# --- command line ------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`--schema` prints the JSON Schema; `--check FILE` prints the explanation, or the problems and exits 1."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pullthrough.config", description=main.__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", action="store_true", help="print the config's JSON Schema")
    group.add_argument("--check", metavar="FILE", help="validate FILE and explain what it configures")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(schema_text())
        return 0
    try:
        config = load(args.check)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print("\n".join(config.explain()))
    from pullthrough import sources as source_files

    problems = source_files.read(config).problems  # what warm.sources name that cannot be warmed
    for problem in problems:
        print(f"warm.sources: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
