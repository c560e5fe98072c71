"""Secrets Manager rotation of upstream credentials: the four-step contract, and a new token never goes live untested.

Secrets Manager calls the rotation function once per step with the version it is rotating to (the token), and with
a RotationToken when it rotates through an assumed role or across accounts (passed on to PutSecretValue, the one
operation whose model takes it):
- createSecret puts the new value at AWSPENDING on that version. Strategy `staged` (the default) copies the value an
  operator or pipeline staged under Pullthrough's own label PULLTHROUGH_CANDIDATE (`pullthrough credentials set`),
  and refuses clearly when nothing is staged; a value already at AWSPENDING on the version is kept. The candidate is
  not staged as AWSPENDING itself: botocore's RotateSecret refuses while AWSPENDING is on a version other than
  AWSCURRENT's, so that would block the rotation meant to test it. `docker-hub-api` mints a new Docker Hub access
  token through Hub's API with an admin credential from a separate secret.
- setSecret has nothing to do: the upstream issued the token, so it already works there.
- testSecret proves AWSPENDING against the upstream; a failure stops the rotation and AWSCURRENT keeps the old,
  working value. A value the upstream refused loses its PULLTHROUGH_CANDIDATE label, so no later rotation tries it
  again; one that could not be tested (the upstream unreachable) keeps it.
- finishSecret moves AWSCURRENT to the new version, takes PULLTHROUGH_CANDIDATE off the value it promoted (a newer
  candidate staged meanwhile keeps it), revokes the previous Hub token (docker-hub-api), re-validates every ECR rule
  that uses the secret, and reports.

Every step starts with the same checks (the version exists, is AWSPENDING; an AWSCURRENT version means the work is
done) and is safe to run twice. Failures are logged, reported and raised, so Secrets Manager retries.

The package: event.py (the event, the step's result, RotationError), steps.py (the skeleton: `Rotation`, `handle`),
staged.py and docker_hub_api.py (the two strategies).
"""

from pullthrough.credentials.rotation.docker_hub_api import (
    DEFAULT_TOKEN_DAYS,
    PENDING_TOKEN_ID_TAG,
    TOKEN_DAYS_TAG,
    TOKEN_ID_TAG,
    DockerHubApi,
    HubFactory,
)
from pullthrough.credentials.rotation.event import (
    STRATEGIES,
    RotationError,
    RotationEvent,
    RotationResult,
    Step,
    Strategy,
    new_token,
)
from pullthrough.credentials.rotation.staged import PENDING_EXPIRES_TAG, Staged
from pullthrough.credentials.rotation.steps import Rotation, RotationStrategy, handle, run_step

__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "PENDING_EXPIRES_TAG",
    "PENDING_TOKEN_ID_TAG",
    "STRATEGIES",
    "TOKEN_DAYS_TAG",
    "TOKEN_ID_TAG",
    "DockerHubApi",
    "HubFactory",
    "Rotation",
    "RotationError",
    "RotationEvent",
    "RotationResult",
    "RotationStrategy",
    "Staged",
    "Step",
    "Strategy",
    "handle",
    "new_token",
    "run_step",
]
