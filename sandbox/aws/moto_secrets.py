"""Secrets Manager's RotateSecret and UpdateSecretVersionStage as AWS documents them, for moto's backend.

moto 5.2.5 diverges from botocore's Secrets Manager model where Pullthrough's rotation depends on it:
- RotateSecret: botocore's documentation says "If the AWSPENDING staging label is present but not attached to the
  same version as AWSCURRENT, then any later invocation of RotateSecret assumes that a previous rotation request is
  still in progress and returns an error." moto refuses the opposite case (AWSPENDING on the AWSCURRENT version,
  which is allowed) and lets the documented one through, replacing the pending version. Here the documented case is
  refused with InvalidRequestException "A previous rotation isn't complete. That rotation will be reattempted." (the
  message users quote from AWS: hashicorp/terraform-provider-aws#35023, aws/aws-cdk#28539), and the rotation in
  progress is queued again, as the message says.
- ClientRequestToken: "Secrets Manager uses this value to prevent the accidental creation of duplicate versions if
  there are failures and retries during a rotation" (botocore). A retry with the token of the rotation in progress is
  answered with that rotation, not refused and not started twice. A token already used by another version is refused:
  AWS is silent on this case for RotateSecret; the sandbox takes the demanding reading (PutSecretValue's rule).
- The rotation function: moto looks it up in its own Lambda backend and, when found, runs it in Docker (FACTS.md: it
  swallows the failure and leaves the secret half rotated); without a function it moves AWSCURRENT to an empty
  version. Here RotateSecret needs a rotation function, given or already configured (InvalidRequestException
  otherwise: AWS's wording is not documented, this is the sandbox's), that a deployed `sandbox.stack.Stack` defines;
  it creates the AWSPENDING version, answers with its VersionId (moto answers the current one) and queues the four
  steps. RotateSecret is asynchronous (botocore: "Configures and starts the asynchronous process"): `Stack.rotate()`
  runs what is queued, step by step, as Secrets Manager invokes the function, stopping at a step that fails.
- RotateImmediately false: botocore says Secrets Manager "tests the rotation configuration by running the testSecret
  step ... This test creates an AWSPENDING version of the secret and then removes it": queued as testSecret alone on
  a version holding the current value, whose AWSPENDING label is removed afterwards.
- UpdateSecretVersionStage: botocore's RemoveFromVersionId: "If the staging label you are trying to attach to one
  version is already attached to a different version, then you must include this parameter ... If the label is
  attached and you either do not specify this parameter, or the version ID does not match, then the operation fails."
  moto enforces it for AWSCURRENT only, and attaches a label twice to a version that has it.

State lives on moto's backend objects, so moto's reset clears it with the secrets it belongs to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.secretsmanager.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
    SecretNotFoundException,
)
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend, secretsmanager_backends

__all__ = ["Rotation", "StepOutcome", "install", "register_functions", "run_rotations"]

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
IN_PROGRESS = "A previous rotation isn't complete. That rotation will be reattempted."
_STATE = "_pullthrough_rotation"
_INSTALLED = "_pullthrough_installed"


@dataclass
class Rotation:
    """A rotation Secrets Manager has started and will invoke the function for."""

    secret_arn: str
    token: str
    function_arn: str
    steps: tuple[str, ...] = STEPS
    rotation_token: str | None = None  # sent when the function acts through an assumed role or across accounts
    test_only: bool = False  # RotateImmediately false: the AWSPENDING version is removed after testSecret


@dataclass
class StepOutcome:
    """One step as Secrets Manager saw it: the function's answer, or the error it raised."""

    secret_arn: str
    token: str
    step: str
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _State:
    functions: set[str] = field(default_factory=set)  # rotation functions a deployed stack defines
    queued: list[Rotation] = field(default_factory=list)


def _state(backend: SecretsManagerBackend) -> _State:
    state: _State | None = getattr(backend, _STATE, None)
    if state is None:
        state = _State()
        setattr(backend, _STATE, state)
    return state


def install() -> None:
    """Replace moto's RotateSecret and UpdateSecretVersionStage; safe to call any number of times."""
    if getattr(SecretsManagerBackend, _INSTALLED, False):
        return
    original_update = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(
        self: SecretsManagerBackend,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str,
        move_to_version_id: str,
    ) -> tuple[str, str]:
        if secret_id in self.secrets:
            _check_stage_move(self.secrets[secret_id], version_stage, remove_from_version_id, move_to_version_id)
            stages = self.secrets[secret_id].versions.get(move_to_version_id, {}).get("version_stages", [])
            if move_to_version_id and version_stage in stages and not remove_from_version_id:
                return self.secrets[secret_id].arn, self.secrets[secret_id].name  # already there: nothing to move
        return original_update(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)

    SecretsManagerBackend.rotate_secret = _rotate_secret  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    setattr(SecretsManagerBackend, _INSTALLED, True)


def register_functions(account: str, region: str, arns: Iterable[str]) -> None:
    """The rotation functions that exist in this account and region (a Stack's functions, once deployed)."""
    _state(secretsmanager_backends[account][region]).functions.update(arns)


def run_rotations(
    account: str, region: str, invoke: Callable[[str, dict[str, Any]], Any], *, rotation_token: str | None = None
) -> list[StepOutcome]:
    """Invoke the queued rotations' steps in order, as Secrets Manager does; a step that raises ends its rotation.

    `rotation_token`: sent as RotationToken in every event, as Secrets Manager does when the function rotates with an
    assumed role or across accounts.
    """
    backend = secretsmanager_backends[account][region]
    state = _state(backend)
    outcomes: list[StepOutcome] = []
    while state.queued:
        rotation = state.queued.pop(0)
        for step in rotation.steps:
            event = {"Step": step, "SecretId": rotation.secret_arn, "ClientRequestToken": rotation.token}
            token = rotation_token or rotation.rotation_token
            if token:
                event["RotationToken"] = token
            try:
                result = invoke(rotation.function_arn, event)
            except Exception as exc:  # Secrets Manager records any failure of the function
                outcomes.append(StepOutcome(rotation.secret_arn, rotation.token, step, error=exc))
                break
            outcomes.append(StepOutcome(rotation.secret_arn, rotation.token, step, result=result))
        else:
            secret = backend.secrets.get(rotation.secret_arn)
            if secret is not None and not rotation.test_only:
                secret.last_rotation_date = int(time.time())
        if rotation.test_only:
            _remove_pending(backend, rotation)
    return outcomes


# --- RotateSecret ----------------------------------------------------------------------------------------------------


def _rotate_secret(
    self: SecretsManagerBackend,
    secret_id: str,
    client_request_token: str | None = None,
    rotation_lambda_arn: str | None = None,
    rotation_rules: dict[str, Any] | None = None,
    rotate_immediately: bool = True,
) -> str:
    secret = _rotatable(self, secret_id)
    state = _state(self)
    function = _rotation_function(state, secret, rotation_lambda_arn)
    token = client_request_token or _new_token()
    if not 32 <= len(token) <= 64:
        raise InvalidParameterException("ClientRequestToken must be 32-64 characters long.")
    in_progress = _in_progress(secret)
    if in_progress is not None:
        if in_progress != token:
            _queue_again(state, secret, in_progress, function)
            raise InvalidRequestException(IN_PROGRESS)
        # The same request again (a retry): the rotation in progress is the answer, never a second version.
        _queue_again(state, secret, in_progress, function)
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})
    if token in secret.versions:
        raise InvalidRequestException(
            f"You can't use ClientRequestToken {token} because that value is already in use for a version of secret "
            f"{secret.arn}."
        )
    _configure(secret, function, rotation_rules)
    for version in secret.versions.values():
        if PENDING in version["version_stages"]:  # only possible on AWSCURRENT's version here: it moves to the new
            version["version_stages"].remove(PENDING)
    version: dict[str, Any] = {"createdate": int(time.time()), "version_id": token, "version_stages": [PENDING]}
    if not rotate_immediately and secret.secret_string is not None:
        version["secret_string"] = secret.secret_string
    secret.versions[token] = version
    steps = STEPS if rotate_immediately else ("testSecret",)
    state.queued.append(Rotation(secret.arn, token, function, steps, test_only=not rotate_immediately))
    return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})


def _rotatable(backend: SecretsManagerBackend, secret_id: str) -> FakeSecret:
    """The secret RotateSecret names, when it exists, is a primary and is not marked deleted."""
    if secret_id not in backend.secrets:
        raise SecretNotFoundException()
    secret = backend.secrets[secret_id]
    if not isinstance(secret, FakeSecret):
        raise InvalidRequestException("You can't rotate a replica secret; rotate its primary instead.")
    if secret.is_deleted():
        raise InvalidRequestException(
            "You tried to perform the operation on a secret that's currently marked deleted."  # moto's, and AWS's
        )
    return secret


def _rotation_function(state: _State, secret: FakeSecret, given: str | None) -> str:
    """The rotation function: the request's RotationLambdaARN, else the secret's; one of the stack's functions."""
    function = given or secret.rotation_lambda_arn
    if not function:
        raise InvalidRequestException(
            "No Lambda rotation function ARN is associated with this secret: give RotationLambdaARN."
        )
    if function not in state.functions:
        raise ResourceNotFoundException(f"Resource not found for ARN '{function}'.")  # moto's wording
    return str(function)


def _in_progress(secret: FakeSecret) -> str | None:
    """The version AWSPENDING is on when that is not AWSCURRENT's: a rotation Secrets Manager considers unfinished."""
    for version_id, version in secret.versions.items():
        stages = version["version_stages"]
        if PENDING in stages and CURRENT not in stages:
            return str(version_id)
    return None


def _queue_again(state: _State, secret: FakeSecret, token: str, function: str) -> None:
    if not any(r.secret_arn == secret.arn and r.token == token for r in state.queued):
        state.queued.append(Rotation(secret.arn, token, function))


def _configure(secret: FakeSecret, function: str, rules: dict[str, Any] | None) -> None:
    secret.rotation_requested = True
    secret.rotation_enabled = True  # DescribeSecret's RotationEnabled once a rotation function is configured
    secret.rotation_lambda_arn = function
    if rules and "AutomaticallyAfterDays" in rules:
        days = int(rules["AutomaticallyAfterDays"])
        if not 1 <= days <= 1000:
            raise InvalidParameterException("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
        secret.auto_rotate_after_days = days


def _remove_pending(backend: SecretsManagerBackend, rotation: Rotation) -> None:
    secret = backend.secrets.get(rotation.secret_arn)
    version = secret.versions.get(rotation.token) if secret is not None else None
    if version is not None and PENDING in version["version_stages"]:
        version["version_stages"].remove(PENDING)


def _new_token() -> str:
    import uuid

    return str(uuid.uuid4())


# --- UpdateSecretVersionStage --------------------------------------------------------------------------------------


def _check_stage_move(secret: Any, stage: str, remove_from: str | None, move_to: str | None) -> None:
    if not move_to:
        return
    holder = next((vid for vid, v in secret.versions.items() if stage in v["version_stages"]), None)
    if holder is None or holder == move_to:
        return
    if remove_from != holder:
        # moto's own message for AWSCURRENT, said of any label as botocore's rule is
        raise InvalidParameterException(
            f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version "
            f"{holder}, so you must explicitly reference that version in RemoveFromVersionId."
            if not remove_from
            else f"Staging label {stage} is attached to version {holder}, not to version {remove_from}."
        )
