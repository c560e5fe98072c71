"""Rotation strategy `docker-hub-api`: mint the next Docker Hub access token, and revoke the previous one.

createSecret logs in to Hub's API with an admin credential from a separate secret and mints a token; finishSecret,
once the new token is AWSCURRENT, revokes the previous one. Which Hub token is live, which one is pending, when they
expire and how long a new one lives are tags Pullthrough keeps on the secret. Separate from the steps: the only
module that talks to Hub's API, and the only one that holds the admin credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from pullthrough.aws import secrets
from pullthrough.aws.secrets import CURRENT, SecretInfo
from pullthrough.credentials.rotation.event import RotationError, RotationResult
from pullthrough.credentials.rotation.staged import PENDING_EXPIRES_TAG, promote_expiry
from pullthrough.credentials.usage import ADMIN_SECRET_TAG, EXPIRES_TAG, SecretUse
from pullthrough.credentials.value import credentials_value, refuse_swapped
from pullthrough.errors import AwsError, SecretError
from pullthrough.observability import logger
from pullthrough.registry.auth import Credentials
from pullthrough.registry.dockerhub import HUB_HOST, HubApiError, HubClient
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome, Severity

if TYPE_CHECKING:
    from pullthrough.credentials.rotation.steps import Rotation

# Tags Pullthrough keeps on a docker-hub-api secret: which Hub token is live (to revoke it at the next rotation),
# which one is pending, and how long a new one lives (the pending expiry is staged.PENDING_EXPIRES_TAG).
TOKEN_ID_TAG = "pullthrough:hub-token-id"  # noqa: S105 - a tag key
PENDING_TOKEN_ID_TAG = "pullthrough:hub-pending-token-id"  # noqa: S105 - a tag key
TOKEN_DAYS_TAG = "pullthrough:token-days"  # noqa: S105 - a tag key
DEFAULT_TOKEN_DAYS = 90

HubFactory = Callable[[str], HubClient]

# The seams tests replace: Hub's client (one that records its waits instead of sleeping), and the day a token's
# lifetime counts from.
hub_factory: HubFactory = HubClient


def today() -> date:
    """The day a minted token's lifetime counts from."""
    return datetime.now(UTC).date()


class DockerHubApi:
    """createSecret mints a Hub token; finishSecret revokes the previous one and moves the tags along."""

    def __init__(self, rotation: Rotation) -> None:
        self.rotation = rotation

    def create(self, info: SecretInfo, use: SecretUse) -> RotationResult:
        """Mint a token through Hub's API and store it at AWSPENDING (revoked again if it cannot be stored)."""
        rotation = self.rotation
        admin = self._admin(use)
        days = _int_tag(info.tags.get(TOKEN_DAYS_TAG), DEFAULT_TOKEN_DAYS)
        expires = datetime.combine(today() + timedelta(days=days), datetime.min.time(), tzinfo=UTC)
        hub = hub_factory(rotation.settings.upstream_url(HUB_HOST))
        try:
            hub.login(admin.username, admin.password)
            minted = hub.create_token(
                f"pullthrough {rotation.name} {rotation.event.token[:8]}",
                expires_at=expires,
                organization=use.organization,
                description=f"ECR pull-through cache, secret {rotation.name}; rotated by Pullthrough",
            )
        except HubApiError as exc:
            raise rotation.error(
                f"Docker Hub did not mint a new token: {exc}",
                f"check the admin secret {use.admin_secret} and Docker Hub's status; AWSCURRENT is unchanged",
                exc.reason,
            ) from None
        # A PAT logs in as its owner; an organization access token logs in as the organization.
        username = use.organization or admin.username
        value = credentials_value(Credentials(username, minted.token))
        secrets.tag(
            info.arn,
            {PENDING_TOKEN_ID_TAG: minted.id, PENDING_EXPIRES_TAG: f"{expires:%Y-%m-%d}"},
            region=rotation.settings.region,
        )
        try:
            rotation.put_pending(info.arn, value)
        except AwsError:
            # Not stored means never usable: take the minted token back rather than leave it live on Docker Hub.
            _revoke_quietly(hub, minted.id, use.organization)
            raise
        logger.info(
            "minted a Docker Hub access token",
            extra={"token_id": minted.id, "username": username, "expires": f"{expires:%Y-%m-%d}"},
        )
        return rotation.result("created", f"Docker Hub token {minted.id} minted for {username}, expires {expires:%F}")

    def after_promotion(self, info: SecretInfo, use: SecretUse) -> list[ReportItem]:
        """Revoke the previous token and move the tags; problems here are warnings, not failures."""
        region = self.rotation.settings.region
        pending_id = info.tags.get(PENDING_TOKEN_ID_TAG)
        if not pending_id:
            promote_expiry(info, region)
            return []
        previous = info.tags.get(TOKEN_ID_TAG)
        items: list[ReportItem] = []
        if previous and previous != pending_id:
            items.extend(self._revoke_previous(previous, use))
        tags = {TOKEN_ID_TAG: pending_id}
        if info.tags.get(PENDING_EXPIRES_TAG):
            tags[EXPIRES_TAG] = info.tags[PENDING_EXPIRES_TAG]
        secrets.tag(info.arn, tags, region=region)
        secrets.untag(info.arn, (PENDING_TOKEN_ID_TAG, PENDING_EXPIRES_TAG), region=region)
        return items

    def _revoke_previous(self, previous: str, use: SecretUse) -> list[ReportItem]:
        """Revoke the token that was live; a warning item when it lingers (the new one is live either way)."""
        try:
            admin = self._admin(use)
            hub = hub_factory(self.rotation.settings.upstream_url(HUB_HOST))
            hub.login(admin.username, admin.password)
            revoked = hub.revoke_token(previous, organization=use.organization)
            logger.info("revoked the previous Docker Hub token", extra={"token_id": previous, "was": revoked})
        except (HubApiError, RotationError) as exc:
            return [
                ReportItem(
                    subject=f"Docker Hub token {previous}",
                    outcome=Outcome.FAILED,
                    severity=Severity.WARNING,  # the new token is live; the old one merely lingers
                    reason=f"the previous token is still active: {exc}",
                    fix="revoke it in Docker Hub (Account settings > Personal access tokens)",
                    reason_code="revoke_failed",
                    details=Details(secret=self.rotation.name),
                )
            ]
        return []

    def _admin(self, use: SecretUse) -> Credentials:
        rotation = self.rotation
        if not use.admin_secret:
            raise rotation.error(
                "rotation docker-hub-api needs the name of a secret with Docker Hub admin credentials",
                f"set credentials.admin_secret in the config (or the tag {ADMIN_SECRET_TAG})",
                "admin_secret",
            )
        try:
            value = secrets.get_value(use.admin_secret, CURRENT, region=rotation.settings.region)
        except AwsError as exc:
            raise rotation.error(
                f"the admin secret {use.admin_secret} cannot be read: {exc}",
                "create it (JSON username and password) and grant the rotation function GetSecretValue on it",
                exc.code,
            ) from None
        try:
            return _admin_credentials(use.admin_secret, value)
        except SecretError as exc:
            raise rotation.error(
                str(exc), f"store {use.admin_secret} as JSON username and password", "admin_secret"
            ) from None


def _int_tag(value: str | None, default: int) -> int:
    try:
        number = int(value) if value else default
    except ValueError:
        return default
    return number if 1 <= number <= 3650 else default


def _admin_credentials(secret: str, value: str | None) -> Credentials:
    """Docker Hub admin credentials: JSON username and password (accessToken accepted too)."""
    try:
        document = json.loads(value or "")
    except ValueError:
        raise SecretError(secret, 'its value is not JSON; store {"username": ..., "password": ...}') from None
    if not isinstance(document, dict):
        raise SecretError(secret, 'its value is not a JSON object; store {"username": ..., "password": ...}')
    username = document.get("username")
    password = document.get("password") or document.get("accessToken")
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise SecretError(secret, "needs the string keys username and password (a Docker ID and its password or PAT)")
    refuse_swapped(secret, username, password)
    return Credentials(username, password)


def _revoke_quietly(hub: HubClient, token_id: str, organization: str | None) -> None:
    try:
        hub.revoke_token(token_id, organization=organization)
    except HubApiError as exc:
        logger.error("a minted token could not be revoked", extra={"token_id": token_id, "error": str(exc)})
