"""Secrets Manager: read a secret's value at an explicit stage, describe it, stage values, move labels, rotate.

Every read names its stage (or version): moto, and callers racing a rotation, can otherwise get a version that
has just lost AWSCURRENT (FACTS.md). Values go in and out of this module as strings and are never put into an
error message or a log line; errors name the secret and the operation only. botocore logs whole request and response
bodies at DEBUG: `pullthrough.redaction` masks their SecretString and SecretBinary, as it does every secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsNotFound

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
# Pullthrough's own staging label for a value waiting to be rotated in (rotation strategy `staged`). Not AWSPENDING:
# botocore's RotateSecret refuses while AWSPENDING is on a version other than AWSCURRENT's, so a value staged there
# would block the very rotation meant to test it. Custom labels are allowed (up to 20 per version).
CANDIDATE = "PULLTHROUGH_CANDIDATE"


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret and the staging labels it carries."""

    version_id: str
    stages: tuple[str, ...]


@dataclass(frozen=True)
class SecretInfo:
    """What DescribeSecret says about a secret: identity, tags, rotation, and its versions with their stages."""

    arn: str
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    versions: tuple[SecretVersion, ...] = ()
    rotation_enabled: bool = False
    rotation_lambda_arn: str | None = None
    deleted: datetime | None = None
    last_changed: datetime | None = None
    next_rotation: datetime | None = None

    @property
    def region(self) -> str:
        """The region in the secret's ARN."""
        return _arn_part(self.arn, 3)

    @property
    def account(self) -> str:
        """The account in the secret's ARN."""
        return _arn_part(self.arn, 4)

    def version_with(self, stage: str) -> str | None:
        """The id of the version carrying `stage`, or None."""
        for version in self.versions:
            if stage in version.stages:
                return version.version_id
        return None

    def stages_of(self, version_id: str) -> tuple[str, ...] | None:
        """The stages of one version; None when the secret has no such version (with a label)."""
        for version in self.versions:
            if version.version_id == version_id:
                return version.stages
        return None


def _client(region: str | None) -> SecretsManagerClient:
    return clients.client("secretsmanager", region)


def _arn_part(arn: str, index: int) -> str:
    parts = arn.split(":")
    return parts[index] if len(parts) > index else ""


def region_of(secret_id: str) -> str | None:
    """The region of a secret ARN (a secret is called in its own region); None for a plain name."""
    if secret_id.startswith("arn:"):
        return _arn_part(secret_id, 3) or None
    return None


def describe(secret_id: str, region: str | None = None) -> SecretInfo:
    """DescribeSecret: tags, versions with their stages, rotation; AwsNotFound when there is no such secret."""
    with aws_call("secretsmanager:DescribeSecret", secret_id):
        response = _client(region or region_of(secret_id)).describe_secret(SecretId=secret_id)
    stages: dict[str, list[str]] = response.get("VersionIdsToStages", {})
    return SecretInfo(
        arn=response["ARN"],
        name=response["Name"],
        tags={tag["Key"]: tag["Value"] for tag in response.get("Tags", []) if "Key" in tag and "Value" in tag},
        versions=tuple(SecretVersion(version, tuple(labels)) for version, labels in stages.items()),
        rotation_enabled=bool(response.get("RotationEnabled")),
        rotation_lambda_arn=response.get("RotationLambdaARN") or None,
        deleted=response.get("DeletedDate"),
        last_changed=response.get("LastChangedDate"),
        next_rotation=response.get("NextRotationDate"),
    )


def get_value(
    secret_id: str, stage: str = CURRENT, version_id: str | None = None, region: str | None = None
) -> str | None:
    """The SecretString of the version at `stage` (and `version_id` when given); None when it holds no string.

    AwsNotFound when the secret, the stage or the version (or its value: an empty rotation placeholder) is missing.
    """
    params: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
    if version_id is not None:
        params["VersionId"] = version_id
    where = f"{secret_id} ({stage}{', version ' + version_id if version_id else ''})"
    with aws_call("secretsmanager:GetSecretValue", where):
        response = _client(region or region_of(secret_id)).get_secret_value(**params)
    value = response.get("SecretString")
    return value if isinstance(value, str) else None


def has_value(secret_id: str, version_id: str, stage: str = PENDING, region: str | None = None) -> bool:
    """Whether the version carries a value at `stage` (a rotation's placeholder version has none yet)."""
    try:
        return get_value(secret_id, stage, version_id, region) is not None
    except AwsNotFound:
        return False


def put_value(
    secret_id: str,
    value: str,
    stages: tuple[str, ...] = (PENDING,),
    token: str | None = None,
    region: str | None = None,
    rotation_token: str | None = None,
) -> str:
    """PutSecretValue at `stages`, idempotent by `token` (the version id); returns the version id.

    A stage already on another version moves to this one (PutSecretValue's documented behaviour). `rotation_token` is
    the RotationToken of a rotation event: botocore's model takes it on PutSecretValue, the only operation that does,
    "required for secret rotations using an IAM assumed role or cross-account rotation".
    """
    params: dict[str, Any] = {"SecretId": secret_id, "SecretString": value, "VersionStages": list(stages)}
    if token is not None:
        params["ClientRequestToken"] = token
    if rotation_token is not None:
        params["RotationToken"] = rotation_token
    with aws_call("secretsmanager:PutSecretValue", f"{secret_id} ({', '.join(stages)})"):
        response = _client(region or region_of(secret_id)).put_secret_value(**params)
    return response["VersionId"]


def move_stage(
    secret_id: str,
    stage: str,
    to_version: str | None,
    from_version: str | None = None,
    region: str | None = None,
) -> None:
    """UpdateSecretVersionStage: put `stage` on `to_version`, taking it off `from_version` (None: add / remove only).

    Moving AWSCURRENT makes Secrets Manager move AWSPREVIOUS to the version it left.
    """
    params: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
    if to_version is not None:
        params["MoveToVersionId"] = to_version
    if from_version is not None:
        params["RemoveFromVersionId"] = from_version
    with aws_call("secretsmanager:UpdateSecretVersionStage", f"{secret_id} ({stage})"):
        _client(region or region_of(secret_id)).update_secret_version_stage(**params)


def create(
    name: str,
    value: str,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    token: str | None = None,
    region: str | None = None,
) -> str:
    """CreateSecret with a first (AWSCURRENT) value; returns the secret's ARN; AwsAlreadyExists if it exists."""
    params: dict[str, Any] = {"Name": name, "SecretString": value}
    if description:
        params["Description"] = description
    if tags:
        params["Tags"] = [{"Key": key, "Value": val} for key, val in tags.items()]
    if token is not None:
        params["ClientRequestToken"] = token
    with aws_call("secretsmanager:CreateSecret", name):
        response = _client(region).create_secret(**params)
    return response["ARN"]


def tag(secret_id: str, tags: Mapping[str, str], region: str | None = None) -> None:
    """TagResource: add or overwrite tags (e.g. the Docker Hub token id Pullthrough revokes at the next rotation)."""
    with aws_call("secretsmanager:TagResource", secret_id):
        _client(region or region_of(secret_id)).tag_resource(
            SecretId=secret_id, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
        )


def untag(secret_id: str, keys: tuple[str, ...], region: str | None = None) -> None:
    """UntagResource: drop tags by key (absent keys are fine)."""
    with aws_call("secretsmanager:UntagResource", secret_id):
        _client(region or region_of(secret_id)).untag_resource(SecretId=secret_id, TagKeys=list(keys))


def start_rotation(
    secret_id: str,
    *,
    token: str | None = None,
    lambda_arn: str | None = None,
    schedule: str | None = None,
    region: str | None = None,
) -> str | None:
    """RotateSecret now, with `token` as the new version's id; sets the rotation function and schedule when given.

    Returns the version id Secrets Manager rotates to (None when it does not say).
    """
    params: dict[str, Any] = {"SecretId": secret_id, "RotateImmediately": True}
    if token is not None:
        params["ClientRequestToken"] = token
    if lambda_arn is not None:
        params["RotationLambdaARN"] = lambda_arn
    if schedule is not None:
        params["RotationRules"] = {"ScheduleExpression": schedule}
    with aws_call("secretsmanager:RotateSecret", secret_id):
        response = _client(region or region_of(secret_id)).rotate_secret(**params)
    version = response.get("VersionId")
    return version if isinstance(version, str) else None


def delete(secret_id: str, *, recovery_days: int = 30, force: bool = False, region: str | None = None) -> None:
    """DeleteSecret: scheduled after `recovery_days` (7 to 30; RestoreSecret undoes it until then), or at once.

    botocore's DeleteSecret: RecoveryWindowInDays and ForceDeleteWithoutRecovery cannot be combined; without either,
    Secrets Manager waits 30 days.
    """
    params: dict[str, Any] = {"SecretId": secret_id}
    if force:
        params["ForceDeleteWithoutRecovery"] = True
    else:
        params["RecoveryWindowInDays"] = recovery_days
    with aws_call("secretsmanager:DeleteSecret", secret_id):
        _client(region or region_of(secret_id)).delete_secret(**params)


__all__ = [
    "CANDIDATE",
    "CURRENT",
    "PENDING",
    "PREVIOUS",
    "SecretInfo",
    "SecretVersion",
    "create",
    "delete",
    "describe",
    "get_value",
    "has_value",
    "move_stage",
    "put_value",
    "region_of",
    "start_rotation",
    "tag",
    "untag",
]
