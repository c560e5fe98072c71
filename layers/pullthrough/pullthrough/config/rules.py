"""A pull-through cache rule: which upstream is cached under which prefix, with which credentials and template.

The rule knows which images it caches (`caches`) and where (`cache_repository`); which rule an image resolves to
among several is pullthrough.config.resolution's.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, ValidationInfo, field_validator, model_validator

from pullthrough import upstreams
from pullthrough.config import fields
from pullthrough.config.fields import Model, did_you_mean
from pullthrough.config.patterns import (
    ADMIN_SECRET_PREFIX,
    HUB_NAMESPACE,
    REPO_PREFIX,
    ROLE_ARN,
    SECRET_NAME,
    SECRET_PREFIX,
)
from pullthrough.config.schema import OrString
from pullthrough.config.templates import Template
from pullthrough.reference import ROOT_PREFIX, ImageReference, cache_repository, upstream_for

__all__ = ["CredentialsField", "Rule", "RuleCredentials"]

_UPSTREAM_KEYS: list[JsonValue] = [*sorted(upstreams.CATALOGUE)]


class RuleCredentials(Model):
    """The Secrets Manager secret ECR uses to authenticate to the upstream, and how Pullthrough looks after it."""

    secret: Annotated[str, AfterValidator(fields.secret_name)] = Field(
        description=(
            f"Name of the secret (not its ARN). ECR only reads secrets named {SECRET_PREFIX}...; the value is JSON "
            '{"username": ..., "accessToken": ...}.'
        ),
        json_schema_extra={"pattern": f"^{re.escape(SECRET_PREFIX)}{SECRET_NAME}$"},
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
                else fields.must_match(
                    v, HUB_NAMESPACE, "a Docker Hub organization is 4 to 30 lower-case letters and digits"
                )
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
        if len(value) > 512 or not re.fullmatch(SECRET_NAME, value):
            raise ValueError("a secret name is at most 512 of the characters A-Z a-z 0-9 / _ + = . @ -")
        return value


CredentialsField = Annotated[
    RuleCredentials | None,
    BeforeValidator(fields.credentials_form),
    OrString(
        f"Short form: just the secret name ({SECRET_PREFIX}...).",
        pattern=f"^{re.escape(SECRET_PREFIX)}{SECRET_NAME}$",
    ),
]


class Rule(Model):
    """One ECR pull-through cache rule: which upstream is cached under which prefix, and with which credentials."""

    prefix: str = Field(
        description=(
            "The ECR repository prefix (ecrRepositoryPrefix): images are pulled as <registry>/<prefix>/<path>. "
            "2 to 30 characters; unique; ROOT only for upstream ecr."
        ),
        json_schema_extra={"pattern": f"^({REPO_PREFIX}|ROOT)$", "minLength": 2, "maxLength": 30},
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
        json_schema_extra={"pattern": f"^{ROLE_ARN}$"},
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
        return fields.repo_prefix(value, "a prefix")

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str) -> str:
        if value not in upstreams.CATALOGUE:
            raise ValueError(
                f"unknown upstream{did_you_mean(value, upstreams.CATALOGUE)}; "
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
        if value is not None and not re.fullmatch(ROLE_ARN, value):
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
        return fields.repo_prefix(value, "an upstream prefix")

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


def _entry(info: ValidationInfo) -> upstreams.Upstream | None:
    key = info.data.get("upstream")
    return upstreams.CATALOGUE.get(key) if isinstance(key, str) else None
