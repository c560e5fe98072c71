"""The credentials gate: a rule is pointed at a secret only after the secret proved itself upstream.

Separate from apply because it is a promise of its own (docs/CONTRACTS.md): a token that does not work upstream
never reaches ECR, where a rule with bad credentials would fail every pull through it. One check per secret,
upstream and URL per run, however many rules share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pullthrough.credentials.check import check_secret
from pullthrough.credentials.verdict import CredentialCheck
from pullthrough.env import Settings
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.rules.diff import Action, RuleChange
from pullthrough.rules.result import Result

__all__ = ["SECRET_VALUE_SHAPE", "CredentialsGate"]

SECRET_VALUE_SHAPE = '{"username":"<user>","accessToken":"<token>"}'  # noqa: S105 - placeholders, not a value
VERB = {Action.CREATE: "creates", Action.UPDATE: "re-points", Action.REPLACE: "replaces"}


@dataclass
class CredentialsGate:
    """The secrets a run proved (or could not), asked once each."""

    settings: Settings
    _checks: dict[tuple[str, str, str], CredentialCheck] = field(default_factory=dict)

    def check(self, change: RuleChange) -> Result | None:
        """None when the change may go ahead; else why it is skipped and what to do."""
        want = change.desired
        if not change.sets_credentials or want is None or want.secret is None:
            return None
        key = (want.secret, want.upstream.key, want.spec.upstream_url)
        if key not in self._checks:
            self._checks[key] = check_secret(
                want.secret, want.upstream, want.spec.upstream_url, self.settings, rule=change.prefix
            )
        check = self._checks[key]
        if check.valid and want.spec.credential_arn is not None:
            return None
        if check.valid:
            return Result(
                Outcome.SKIPPED,
                reason=f"secret {want.secret} was created while this run was planning",
                fix=f"nothing to do: the next reconcile {VERB[change.action]} the rule",
                code="secret_new",
                exists=change.actual is not None,
            )
        return self._skipped(change, check)

    def _skipped(self, change: RuleChange, check: CredentialCheck) -> Result:
        verb = VERB[change.action]
        if check.status == "missing" and check.reason_code == "missing":
            fix = (
                f"create it, then the next reconcile {verb} the rule: aws secretsmanager create-secret --name "
                f"{check.secret} --region {self.settings.region} --secret-string '{SECRET_VALUE_SHAPE}' (or run "
                f"`pullthrough credentials set {change.prefix}`, which tests the token upstream first)"
            )
        else:
            fix = f"{check.fix}; then the next reconcile {verb} the rule"
        what = {Action.CREATE: "not created", Action.UPDATE: "not re-pointed", Action.REPLACE: "not replaced"}
        detail = check.reason_code if check.reason_code in ("deleted", "no_value", "wrong_region") else check.status
        return Result(
            Outcome.SKIPPED,
            reason=f"{what[change.action]}: {check.message}",
            fix=fix,
            code=f"secret_{detail}",
            exists=change.actual is not None,
        )
