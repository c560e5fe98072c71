"""The verdict on one credentials secret (`CredentialCheck`) and its report line.

Separate from the checks that reach it (check.py for the secret itself, upstream.py for the upstream's answer) so
both, the CLI and the rotation share one model and one wording of the fix (`set_command`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pullthrough.registry.headers import RateLimit
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome

Status = Literal["valid", "invalid", "missing", "malformed", "wrong_prefix", "unreachable"]

_OUTCOMES: dict[str, Outcome] = {
    "valid": Outcome.VALID,
    "invalid": Outcome.INVALID,
    "missing": Outcome.INVALID,
    "malformed": Outcome.INVALID,
    "wrong_prefix": Outcome.INVALID,
    "unreachable": Outcome.UNREACHABLE,
}


class CredentialCheck(BaseModel):
    """The verdict on one credentials secret; names the secret, never carries the token."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    secret: str
    status: Status
    message: str
    fix: str
    rate_limit: RateLimit | None = None
    reason_code: str | None = None  # RegistryError.reason ("auth", "timeout", ...) or the secret problem's kind
    username: str | None = None  # the account the token belongs to: not secret, and what a reader checks first
    stage: str = "AWSCURRENT"

    @property
    def valid(self) -> bool:
        """True when the upstream accepted the credentials."""
        return self.status == "valid"

    def report_item(
        self, *, upstream: str | None = None, rule: str | None = None, subject: str | None = None
    ) -> ReportItem:
        """This check as a report line (`secret <name> (<stage>)`), with the pull budget when the upstream told it."""
        remaining = self.rate_limit.remaining if self.rate_limit is not None else None
        return ReportItem(
            subject=subject or f"secret {self.secret} ({self.stage})",
            outcome=_OUTCOMES[self.status],
            reason=None if self.valid else self.message,
            fix=None if self.valid else self.fix,
            reason_code=None if self.valid else self.reason_code or self.status,
            details=Details(
                rule=rule,
                upstream=upstream,
                secret=self.secret,
                pulls_remaining=remaining,
                valid=None if self.status == "unreachable" else self.valid,
            ),
        )


def set_command(rule: str | None) -> str:
    """The CLI command that stores a rule's credentials, as a fix names it."""
    return f"`pullthrough credentials set {rule or '<rule prefix>'}`"
