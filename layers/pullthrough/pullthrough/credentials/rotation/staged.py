"""Rotation strategy `staged` (the default): the value to rotate to is one an operator or pipeline staged.

createSecret copies the value staged under Pullthrough's own label PULLTHROUGH_CANDIDATE (`pullthrough credentials
set`) to AWSPENDING on the rotation's version, and refuses clearly when nothing is staged. The candidate is not
staged as AWSPENDING itself: botocore's RotateSecret refuses while AWSPENDING is on a version other than
AWSCURRENT's, so that would block the rotation meant to test it. The label comes off once the value was promoted or
refused (`clear_candidate`), and the expiry the CLI noted moves to the live token (`promote_expiry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pullthrough.aws import secrets
from pullthrough.aws.secrets import CANDIDATE, SecretInfo
from pullthrough.credentials.rotation.event import RotationResult
from pullthrough.credentials.usage import EXPIRES_TAG, SecretUse
from pullthrough.credentials.verdict import set_command
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.reporting.items import ReportItem

if TYPE_CHECKING:
    from pullthrough.credentials.rotation.steps import Rotation

# The expiry of the token at AWSPENDING, noted by `credentials set --expires` or a mint; EXPIRES_TAG once promoted.
PENDING_EXPIRES_TAG = "pullthrough:pending-expires"


class Staged:
    """createSecret copies the staged candidate to AWSPENDING; finishSecret moves its noted expiry along."""

    def __init__(self, rotation: Rotation) -> None:
        self.rotation = rotation

    def create(self, info: SecretInfo, use: SecretUse) -> RotationResult:
        """Copy the value staged under PULLTHROUGH_CANDIDATE to AWSPENDING on the rotation's version."""
        rotation = self.rotation
        candidate = info.version_with(CANDIDATE)
        if candidate is None:
            raise rotation.error(
                f"nothing is staged: rotation strategy staged tests and promotes a value staged under the label "
                f"{CANDIDATE}, and no version of the secret has it",
                f"stage the new token with {set_command(rotation.rule_hint(use))} (it stages it under {CANDIDATE} "
                "and starts the rotation), or use rotation: docker-hub-api to mint tokens automatically",
                "nothing_staged",
            )
        value = secrets.get_value(info.arn, CANDIDATE, candidate, region=rotation.settings.region)
        if value is None:
            raise rotation.error(
                f"the value staged under {CANDIDATE} (version {candidate}) is binary; ECR reads a SecretString",
                f"stage it again with {set_command(rotation.rule_hint(use))}",
                "malformed",
            )
        rotation.put_pending(info.arn, value)
        logger.info("the staged candidate is AWSPENDING", extra={"token": rotation.event.token, "candidate": candidate})
        return rotation.result(
            "copied", f"the value staged under {CANDIDATE} (version {candidate}) is AWSPENDING, to be tested"
        )

    def after_promotion(self, info: SecretInfo, use: SecretUse) -> list[ReportItem]:
        """The pending expiry becomes the live token's; nothing here can fail the rotation's report."""
        promote_expiry(info, self.rotation.settings.region)
        return []


def promote_expiry(info: SecretInfo, region: str) -> None:
    """Move the expiry noted for the pending token to the tag the checks read for AWSCURRENT."""
    expires = info.tags.get(PENDING_EXPIRES_TAG)
    if expires:
        secrets.tag(info.arn, {EXPIRES_TAG: expires}, region=region)
        secrets.untag(info.arn, (PENDING_EXPIRES_TAG,), region=region)


def clear_candidate(secret_id: str, value: str | None, region: str) -> None:
    """Take PULLTHROUGH_CANDIDATE off the staged value once it was promoted or refused, if it is that value (a
    candidate staged since then stays for the next rotation). Never fails the step: the label is housekeeping."""
    if value is None:
        return
    try:
        info = secrets.describe(secret_id, region=region)
        candidate = info.version_with(CANDIDATE)
        if candidate is None:
            return
        if secrets.get_value(info.arn, CANDIDATE, candidate, region=region) != value:
            logger.info("a newer candidate is staged: it stays for the next rotation", extra={"candidate": candidate})
            return
        secrets.move_stage(info.arn, CANDIDATE, None, candidate, region=region)
        logger.info(f"took {CANDIDATE} off the staged value", extra={"candidate": candidate})
    except AwsError as exc:
        logger.warning(f"{CANDIDATE} could not be taken off the staged value", extra={"error": str(exc)})
