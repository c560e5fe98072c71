"""The four steps of one rotation (`Rotation`), and the rotation function's `handle`.

Every step starts with the same checks (the version exists, is AWSPENDING; an AWSCURRENT version means the work is
done) and is safe to run twice. What differs between strategies (how the new value comes to be, what follows its
promotion) lives in staged.py and docker_hub_api.py; the skeleton here does not change with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pullthrough.aws import secrets
from pullthrough.aws.secrets import CURRENT, PENDING, SecretInfo
from pullthrough.config import SECRET_PREFIX, Config
from pullthrough.credentials.check import check_secret, check_version
from pullthrough.credentials.report import ReportRun, publish, revalidate
from pullthrough.credentials.rotation.docker_hub_api import DockerHubApi
from pullthrough.credentials.rotation.event import STRATEGIES, RotationError, RotationEvent, RotationResult
from pullthrough.credentials.rotation.staged import Staged, clear_candidate
from pullthrough.credentials.usage import (
    ROTATION_TAG,
    SecretUse,
    Target,
    config_rules,
    distinct,
    ecr_rules,
    load_config,
    secret_use,
)
from pullthrough.credentials.value import secret_name
from pullthrough.credentials.verdict import set_command
from pullthrough.env import RotateEnv, Settings
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class RotationStrategy(Protocol):
    """How a strategy makes the new value (createSecret) and what follows its promotion (finishSecret)."""

    def create(self, info: SecretInfo, use: SecretUse) -> RotationResult: ...

    def after_promotion(self, info: SecretInfo, use: SecretUse) -> list[ReportItem]: ...


# credentials.rotation (the config) or the tag pullthrough:rotation names one of these; event.STRATEGIES lists them.
_STRATEGIES: dict[str, Callable[[Rotation], RotationStrategy]] = {"staged": Staged, "docker-hub-api": DockerHubApi}


def handle(event: Mapping[str, Any], context: LambdaContext, env: RotateEnv) -> dict[str, Any]:
    """rotate_credentials: run one rotation step; raises (after reporting) when the step must not succeed."""
    return run_step(event, env, log_group=context.log_group_name).model_dump(mode="json")


def run_step(event: Mapping[str, Any], settings: Settings, *, log_group: str | None = None) -> RotationResult:
    """One step, as the rotation function runs it and `credentials set --via local` runs each in turn."""
    return Rotation(RotationEvent.parse(event), settings, log_group=log_group).run()


class Rotation:
    """One step of one rotation; `run()` does the pre-flight checks, the step, and the report on failure."""

    def __init__(self, event: RotationEvent, settings: Settings, *, log_group: str | None = None) -> None:
        self.event = event
        self.settings = settings
        self.log_group = log_group
        self.started = datetime.now(UTC)
        # One id for every step of a rotation: the report's Logs Insights query then shows the whole rotation.
        self.run_id = f"rotation-{event.token}"
        self.name = secret_name(event.secret_id)
        self._config: Config | None = None
        self._config_loaded = False

    # --- the steps -----------------------------------------------------------------------------------------------

    def run(self) -> RotationResult:
        """Pre-flight checks, then the step; a RotationError is reported and raised again."""
        logger.append_keys(run_id=self.run_id, secret=self.name, step=self.event.step)
        try:
            return self._checked_step()
        except RotationError as exc:
            self._report_failure(exc)
            raise
        except AwsError as exc:
            error = self.error(
                str(exc), "retry; if it persists, check the role's Secrets Manager permissions", exc.code
            )
            self._report_failure(error)
            raise error from exc

    def _checked_step(self) -> RotationResult:
        """The checks every step starts with, then the step Secrets Manager asked for."""
        self._check_region()
        # The event's SecretId (an ARN) names the secret: a secret outside the prefix is refused before any
        # call, since the role may not even describe it (template.yaml) and AWS would answer AccessDenied.
        self._check_prefix(self.name)
        info = secrets.describe(self.event.secret_id, region=self.settings.region)
        self.name = info.name
        self._check_prefix(info.name)
        stages = info.stages_of(self.event.token)
        if stages is None:
            raise self.error(
                f"version {self.event.token} has no staging label: it is not a version being rotated",
                "start the rotation again (aws secretsmanager rotate-secret) or stage a value with "
                f"{set_command(self.rule_hint())}",
                "unknown_version",
            )
        if CURRENT in stages:
            logger.info("version is already AWSCURRENT: nothing to do", extra={"token": self.event.token})
            if self.event.step == "finishSecret":
                # A finish that promoted, then failed before taking the label off, is finished by its retry.
                clear_candidate(self.event.secret_id, self._value(info, CURRENT), self.settings.region)
            return self.result("already_current", f"version {self.event.token} is already AWSCURRENT")
        if PENDING not in stages:
            raise self.error(
                f"version {self.event.token} is not AWSPENDING (it has {', '.join(stages) or 'no stage'})",
                "start the rotation again; Secrets Manager labels the version it rotates to AWSPENDING",
                "not_pending",
            )
        step = {
            "createSecret": self.create_secret,
            "setSecret": self.set_secret,
            "testSecret": self.test_secret,
            "finishSecret": self.finish_secret,
        }[self.event.step]
        return step(info)

    def create_secret(self, info: SecretInfo) -> RotationResult:
        """Put the new value at AWSPENDING on the rotation's version (or find it already there)."""
        secrets.get_value(info.arn, CURRENT, region=self.settings.region)  # a rotation needs a current value
        if secrets.has_value(info.arn, self.event.token, PENDING, region=self.settings.region):
            logger.info("the pending value is in place", extra={"token": self.event.token})
            return self.result("kept", "the value staged at AWSPENDING on this version is kept for testing")
        use = self._use(info, with_ecr=False)
        strategy = _STRATEGIES.get(use.rotation)
        if strategy is None:
            raise self.error(
                f"unknown rotation strategy {use.rotation!r}",
                f"set credentials.rotation (or the tag {ROTATION_TAG}) to one of {', '.join(STRATEGIES)}",
                "strategy",
            )
        return strategy(self).create(info, use)

    def set_secret(self, info: SecretInfo) -> RotationResult:
        """Nothing to set: the upstream issued the token, so it works there already."""
        logger.info("setSecret: the upstream issued the token; nothing to configure")
        return self.result("nothing_to_set", "the upstream already knows the token it issued")

    def test_secret(self, info: SecretInfo) -> RotationResult:
        """Prove the AWSPENDING value against every upstream the secret is used for; refuse it otherwise."""
        use = self._use(info, with_ecr=True)
        self._prove_pending(info, use)
        return self.result("tested", f"the pending value is valid on {len(distinct(use.targets))} upstream(s)")

    def finish_secret(self, info: SecretInfo) -> RotationResult:
        """Promote the tested version to AWSCURRENT, then revoke the old Hub token, re-validate the rules, report."""
        use = self._use(info, with_ecr=True)
        # Proved once more right before it goes live: a finish called without a passing test must not promote.
        self._prove_pending(info, use)
        current = info.version_with(CURRENT)
        promoted = self._value(info)
        secrets.move_stage(info.arn, CURRENT, self.event.token, current, region=self.settings.region)
        logger.info("promoted to AWSCURRENT", extra={"token": self.event.token, "previous": current})
        clear_candidate(self.event.secret_id, promoted, self.settings.region)
        first = use.targets[0] if use.targets else None
        items = [
            ReportItem(
                subject=f"secret {self.name}",
                outcome=Outcome.ROTATED,
                reason=f"version {self.event.token} is AWSCURRENT now (it was {current or 'none'})",
                details=Details(
                    secret=self.name, rule=first.rule if first else None, upstream=first.upstream.key if first else None
                ),
            )
        ]
        # An unknown strategy never got past createSecret; its finish only moves the expiry, as staged does.
        strategy = (_STRATEGIES.get(use.rotation) or Staged)(self)
        items.extend(strategy.after_promotion(info, use))
        for target in distinct(use.targets):
            check = check_secret(info.arn, target.upstream, target.url, self.settings, rule=target.rule)
            items.append(check.report_item(upstream=target.upstream.key, rule=target.rule))
        items.extend(revalidate(use.ecr_rules, self.name))
        self._publish(items)
        return self.result("promoted", f"version {self.event.token} is AWSCURRENT; the rules were re-validated")

    def _prove_pending(self, info: SecretInfo, use: SecretUse) -> None:
        if not use.targets:
            raise self.error(
                "no rule in the config or in ECR uses this secret, so there is no upstream to test the new value "
                "against",
                f"name the secret in a rule's credentials in {self.settings.config_path} and deploy, then rotate",
                "unused",
            )
        for target in distinct(use.targets):
            result = check_version(info.arn, target, self.settings, stage=PENDING, version_id=self.event.token)
            if not result.valid:
                verb = "could not be tested" if result.status == "unreachable" else "was refused"
                if result.status in ("invalid", "malformed"):
                    # Refused for good: a later rotation must not try the same candidate again.
                    clear_candidate(self.event.secret_id, self._value(info), self.settings.region)
                raise self.error(
                    f"the pending value {verb}: {result.message}",
                    f"nothing broke: AWSCURRENT still holds the previous value. {result.fix[:1].upper()}"
                    f"{result.fix[1:]}, then rotate again",
                    result.reason_code or result.status,
                    target=target,
                )
            logger.info(
                "the pending value is valid upstream",
                extra={"upstream": target.upstream.key, "rule": target.rule, "verdict": result.message},
            )

    # --- pieces the steps and the strategies share -------------------------------------------------------------------

    def put_pending(self, arn: str, value: str) -> None:
        """Store `value` as this rotation's AWSPENDING version (the event's token, RotateSecret's own request token)."""
        secrets.put_value(
            arn,
            value,
            (PENDING,),
            token=self.event.token,
            region=self.settings.region,
            rotation_token=self.event.rotation_token,
        )

    def rule_hint(self, use: SecretUse | None = None) -> str | None:
        """The rule a fix names: the secret's first target's, or the config's first rule using the secret."""
        if use is not None:
            return use.targets[0].rule if use.targets else None
        rules = config_rules(self._config_now(), self.name)
        return rules[0].prefix if rules else None

    def error(self, message: str, fix: str, code: str = "rotation", *, target: Target | None = None) -> RotationError:
        """The RotationError of this step (raised by the caller)."""
        return RotationError(self.name, self.event.step, message, fix, code, target)

    def result(self, action: str, message: str) -> RotationResult:
        """What this step did."""
        return RotationResult(
            secret=self.name,
            step=self.event.step,
            token=self.event.token,
            action=action,
            message=message,
            run_id=self.run_id,
        )

    def _value(self, info: SecretInfo, stage: str = PENDING) -> str | None:
        """The value of the rotation's version at `stage`, or None when it cannot be read (for housekeeping only)."""
        try:
            return secrets.get_value(info.arn, stage, self.event.token, region=self.settings.region)
        except AwsError:
            return None

    def _check_region(self) -> None:
        region = secrets.region_of(self.event.secret_id)
        if region is not None and region != self.settings.region:
            raise self.error(
                f"the secret is in region {region}, but this function and the ECR registry it serves are in "
                f"{self.settings.region}; ECR reads credentials only from its own region",
                f"create the secret in {self.settings.region} and rotate it there",
                "wrong_region",
            )

    def _check_prefix(self, name: str) -> None:
        if not name.startswith(SECRET_PREFIX):
            raise self.error(
                f"ECR pull-through cache reads only secrets named {SECRET_PREFIX}..., so this function rotates only "
                "those",
                f"keep the credentials in a secret named {SECRET_PREFIX}<name> and rotate that one",
                "wrong_prefix",
            )

    def _config_now(self) -> Config | None:
        if not self._config_loaded:
            self._config = load_config(self.settings)
            self._config_loaded = True
        return self._config

    def _use(self, info: SecretInfo, *, with_ecr: bool) -> SecretUse:
        rules: tuple[Any, ...] = ()
        if with_ecr:
            rules, problem = ecr_rules()
            if problem is not None:
                logger.warning("ECR rules unknown", extra={"reason": problem.reason})
        return secret_use(info.name, self._config_now(), info.tags, ecr_rules=rules)

    def _report_failure(self, error: RotationError) -> None:
        logger.error(
            "rotation step failed",
            extra={"reason": error.reason, "fix": error.fix, "reason_code": error.code, "token": self.event.token},
        )
        self._publish(_failure_items(error, self.event.secret_id, self.settings))

    def _publish(self, items: list[ReportItem]) -> None:
        trigger = f"Secrets Manager rotation of {self.name} ({self.event.step})"
        publish(items, self.settings, self._config_now(), ReportRun(self.run_id, trigger, self.started, self.log_group))


def _failure_items(error: RotationError, secret_id: str, settings: Settings) -> list[ReportItem]:
    """The refused step as a report line, and, when a value failed upstream, what ECR uses right now."""
    target = error.target
    items = [
        ReportItem(
            subject=f"secret {error.secret} (AWSPENDING)",
            outcome=Outcome.ROTATION_FAILED,
            reason=f"{error.step}: {error.reason}",
            fix=error.fix,
            reason_code=error.code[:64],
            details=Details(
                secret=error.secret,
                rule=target.rule if target else None,
                upstream=target.upstream.key if target else None,
                valid=False if error.code == "auth" else None,
            ),
        )
    ]
    if target is not None:
        # Reassure (or alarm) the reader about what ECR uses right now.
        current = check_secret(secret_id, target.upstream, target.url, settings, rule=target.rule)
        items.append(current.report_item(upstream=target.upstream.key, rule=target.rule))
    return items
