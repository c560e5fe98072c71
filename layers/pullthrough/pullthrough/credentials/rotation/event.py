"""What Secrets Manager sends a rotation function, what one step answers, and how a step refuses.

Separate from the steps so the CLI (`credentials set --via local` runs the steps itself) and the tests read the
same contract without the machinery behind it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pullthrough.credentials.usage import Target
from pullthrough.errors import EventError, PullthroughError

Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
Strategy = Literal["staged", "docker-hub-api"]
STRATEGIES: tuple[str, ...] = ("staged", "docker-hub-api")


class RotationError(PullthroughError):
    """A rotation step cannot go on; Secrets Manager retries it, and AWSCURRENT keeps the previous value."""

    def __init__(
        self, secret: str, step: str, message: str, fix: str, code: str = "rotation", target: Target | None = None
    ) -> None:
        self.secret = secret
        self.step = step
        self.fix = fix
        self.code = code
        self.reason = message
        self.target = target  # the upstream the value failed on, when one did
        super().__init__(f"rotation of secret {secret} ({step}): {message}; fix: {fix}")


class RotationEvent(BaseModel):
    """The event Secrets Manager sends a rotation function."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    step: Step = Field(alias="Step")
    secret_id: str = Field(alias="SecretId", min_length=1)
    token: str = Field(alias="ClientRequestToken", min_length=1)
    rotation_token: str | None = Field(None, alias="RotationToken")

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> RotationEvent:
        """Validate the event; EventError names what is missing or wrong."""
        try:
            return cls.model_validate(event)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise EventError(
                f"not a Secrets Manager rotation event ({problems}); expected Step (createSecret, setSecret, "
                "testSecret or finishSecret), SecretId and ClientRequestToken"
            ) from None


class RotationResult(BaseModel):
    """What one step did, for the step's return value and the logs."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    secret: str
    step: Step
    token: str
    action: str  # "created", "kept", "nothing_to_set", "tested", "promoted", "already_current", ...
    message: str
    run_id: str


def new_token() -> str:
    """A fresh ClientRequestToken (a version id) for a rotation started by Pullthrough itself."""
    return str(uuid.uuid4())
