"""Prove a credentials secret: what ECR itself would trip over first, then its value against the upstream.

In order: the secret exists in the registry's account and region, its name starts with `ecr-pullthroughcache/`, its
value is JSON with `username` and `accessToken`; then upstream.py authenticates with it. The result names the secret
and says why and what to do; it never carries the token. Each refusal on the way is one small function raising
`_Refused` with its verdict, so the order of the checks reads top to bottom in `check_version`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullthrough.aws import secrets
from pullthrough.aws.secrets import SecretInfo
from pullthrough.config import SECRET_PREFIX
from pullthrough.credentials.upstream import CHECK_TIMEOUT, check_credentials
from pullthrough.credentials.usage import Target
from pullthrough.credentials.value import parse_value, secret_name
from pullthrough.credentials.verdict import CredentialCheck, Status, set_command
from pullthrough.env import Settings
from pullthrough.errors import AwsAccessDenied, AwsError, AwsNotFound, SecretError
from pullthrough.registry.auth import Credentials
from pullthrough.upstreams import Upstream


def check_secret(
    secret_name_or_arn: str,
    upstream: Upstream,
    url: str,
    settings: Settings,
    *,
    rule: str | None = None,
    timeout: float = CHECK_TIMEOUT,
) -> CredentialCheck:
    """Check a credentials secret's AWSCURRENT value the way ECR would use it, then prove it upstream at `url`.

    `url` is the rule's upstream registry host (`registry-1.docker.io`). AWS errors other than a missing secret
    become an `unreachable` verdict. `check_version` checks another version (a rotation tests AWSPENDING).
    """
    return check_version(secret_name_or_arn, Target(upstream, url, rule), settings, timeout=timeout)


def check_version(
    secret_name_or_arn: str,
    target: Target,
    settings: Settings,
    *,
    stage: str = "AWSCURRENT",
    version_id: str | None = None,
    timeout: float = CHECK_TIMEOUT,
) -> CredentialCheck:
    """Check the version of a secret at `stage` (and `version_id`, if given) for `target`, as `check_secret` does."""
    lookup = _Lookup(secret_name_or_arn, settings, stage, version_id, target.rule)
    try:
        lookup.refuse_misplaced()
        credentials = lookup.credentials(lookup.value(lookup.describe()))
    except _Refused as refused:
        return refused.check
    return check_credentials(lookup.name, credentials, target, settings, stage=stage, timeout=timeout)


class _Refused(Exception):
    """The secret failed a check before the upstream could be asked; `check` says why and what to do."""

    def __init__(self, check: CredentialCheck) -> None:
        super().__init__(check.message)
        self.check = check


@dataclass(frozen=True)
class _Lookup:
    """One version of one secret being read as ECR would read it; each step raises `_Refused` with the verdict."""

    secret_id: str
    settings: Settings
    stage: str
    version_id: str | None
    rule: str | None

    @property
    def name(self) -> str:
        return secret_name(self.secret_id)

    @property
    def where(self) -> str:
        return f"account {self.settings.account_id or '(this account)'}, region {self.settings.region}"

    def refused(self, status: Status, message: str, fix: str, code: str) -> _Refused:
        check = CredentialCheck(
            secret=self.name, status=status, message=message, fix=fix, reason_code=code, stage=self.stage
        )
        return _Refused(check)

    def refused_by_aws(self, exc: AwsError) -> _Refused:
        fix = (
            "grant secretsmanager:DescribeSecret and GetSecretValue on the secret (and kms:Decrypt on its key) to the "
            "role"
            if isinstance(exc, AwsAccessDenied)
            else "retry; if it persists, check the secret in the Secrets Manager console"
        )
        return self.refused("unreachable", f"secret {self.name}: {exc}", fix, exc.code)

    def refuse_misplaced(self) -> None:
        """A name outside the prefix, or an ARN in another account or region: ECR would never read it."""
        name, settings = self.name, self.settings
        if not name.startswith(SECRET_PREFIX):
            raise self.refused(
                "wrong_prefix",
                f"secret {name}: ECR pull-through cache only reads secrets whose name starts with {SECRET_PREFIX}",
                f"create it as {SECRET_PREFIX}{name.rsplit('/', 1)[-1]} (a secret cannot be renamed) and point the "
                "rule at it in config/pullthrough.yaml",
                "wrong_prefix",
            )
        if not self.secret_id.startswith("arn:"):
            return
        arn_region = secrets.region_of(self.secret_id)
        arn_account = self.secret_id.split(":")[4] if self.secret_id.count(":") >= 6 else ""
        if arn_region != settings.region or (settings.account_id and arn_account != settings.account_id):
            raise self.refused(
                "missing",
                f"secret {name} is in account {arn_account}, region {arn_region}, but ECR reads credentials only "
                f"from its own account and region ({self.where})",
                f"create the secret in {settings.region} with {set_command(self.rule)} and use that one",
                "wrong_region",
            )

    def describe(self) -> SecretInfo:
        """The secret, if it exists and is not scheduled for deletion."""
        name = self.name
        try:
            info = secrets.describe(self.secret_id, region=self.settings.region)
        except AwsNotFound:
            raise self.refused(
                "missing",
                f"secret {name} does not exist in {self.where}",
                f"create it with {set_command(self.rule)} (ECR reads the secret from its own account and region)",
                "missing",
            ) from None
        except AwsError as exc:
            raise self.refused_by_aws(exc) from None
        if info.deleted is not None:
            raise self.refused(
                "missing",
                f"secret {name} is scheduled for deletion (since {info.deleted:%Y-%m-%d}); ECR cannot read it",
                f"restore it (aws secretsmanager restore-secret --secret-id {name}) or create a new one with "
                f"{set_command(self.rule)}",
                "deleted",
            )
        return info

    def value(self, info: SecretInfo) -> str | None:
        """The value at the stage (and version) asked for."""
        try:
            return secrets.get_value(info.arn, self.stage, self.version_id, region=self.settings.region)
        except AwsNotFound:
            version = f" version {self.version_id}" if self.version_id else ""
            raise self.refused(
                "missing",
                f"secret {self.name} has no value at {self.stage}{version}",
                f"store the credentials with {set_command(self.rule)}",
                "no_value",
            ) from None
        except AwsError as exc:
            raise self.refused_by_aws(exc) from None

    def credentials(self, value: str | None) -> Credentials:
        """The username and token in the value, in the shape ECR reads."""
        try:
            return parse_value(self.name, value)
        except SecretError as exc:
            raise self.refused(
                "malformed",
                str(exc),
                f"replace the value with {set_command(self.rule)}, which writes the right shape",
                "malformed",
            ) from None
