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
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pullthrough import credentials
from pullthrough.aws import secrets
from pullthrough.aws.secrets import CANDIDATE, CURRENT, PENDING, SecretInfo
from pullthrough.config import SECRET_PREFIX, Config
from pullthrough.credentials import SecretUse, Target
from pullthrough.env import Settings
from pullthrough.errors import AwsError, EventError, PullthroughError, SecretError
from pullthrough.observability import logger
from pullthrough.registry import Credentials
from pullthrough.registry.dockerhub import HUB_HOST, HubApiError, HubClient
from pullthrough.reporting import Details, Outcome, ReportItem, Severity

Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
Strategy = Literal["staged", "docker-hub-api"]
STRATEGIES: tuple[str, ...] = ("staged", "docker-hub-api")

# Tags Pullthrough keeps on a docker-hub-api secret: which Hub token is live (to revoke it at the next rotation),
# which one is pending, when they expire, and how long a new one lives.
TOKEN_ID_TAG = "pullthrough:hub-token-id"  # noqa: S105 - a tag key
PENDING_TOKEN_ID_TAG = "pullthrough:hub-pending-token-id"  # noqa: S105 - a tag key
PENDING_EXPIRES_TAG = "pullthrough:pending-expires"
TOKEN_DAYS_TAG = "pullthrough:token-days"  # noqa: S105 - a tag key
DEFAULT_TOKEN_DAYS = 90

HubFactory = Callable[[str], HubClient]


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

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

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

    model_config = ConfigDict(frozen=True)

    secret: str
    step: Step
    token: str
    action: str  # "created", "kept", "nothing_to_set", "tested", "promoted", "already_current", ...
    message: str
    run_id: str


def handle(
    event: Mapping[str, Any],
    settings: Settings,
    *,
    log_group: str | None = None,
    hub_factory: HubFactory = HubClient,
    today: date | None = None,
) -> RotationResult:
    """rotate_credentials: run one rotation step; raises (after reporting) when the step must not succeed."""
    rotation = RotationEvent.parse(event)
    return Rotation(rotation, settings, log_group=log_group, hub_factory=hub_factory, today=today).run()


class Rotation:
    """One step of one rotation; `run()` does the pre-flight checks, the step, and the report on failure."""

    def __init__(
        self,
        event: RotationEvent,
        settings: Settings,
        *,
        log_group: str | None = None,
        hub_factory: HubFactory = HubClient,
        today: date | None = None,
    ) -> None:
        self.event = event
        self.settings = settings
        self.log_group = log_group
        self.hub_factory = hub_factory
        self.today = today
        self.started = datetime.now(UTC)
        # One id for every step of a rotation: the report's Logs Insights query then shows the whole rotation.
        self.run_id = f"rotation-{event.token}"
        self.name = credentials.secret_name(event.secret_id)
        self._config: Config | None = None
        self._config_loaded = False

    # --- the steps -----------------------------------------------------------------------------------------------

    def run(self) -> RotationResult:
        """Pre-flight checks, then the step; a RotationError is reported and raised again."""
        logger.append_keys(run_id=self.run_id, secret=self.name, step=self.event.step)
        try:
            self._check_region()
            # The event's SecretId (an ARN) names the secret: a secret outside the prefix is refused before any
            # call, since the role may not even describe it (template.yaml) and AWS would answer AccessDenied.
            self._check_prefix(self.name)
            info = self._describe()
            self._check_prefix(info.name)
            stages = info.stages_of(self.event.token)
            if stages is None:
                raise self._error(
                    f"version {self.event.token} has no staging label: it is not a version being rotated",
                    "start the rotation again (aws secretsmanager rotate-secret) or stage a value with "
                    f"{_set_command(self._rule_hint())}",
                    "unknown_version",
                )
            if CURRENT in stages:
                logger.info("version is already AWSCURRENT: nothing to do", extra={"token": self.event.token})
                if self.event.step == "finishSecret":
                    # A finish that promoted, then failed before taking the label off, is finished by its retry.
                    self._clear_candidate(self._value(info, CURRENT))
                return self._result("already_current", f"version {self.event.token} is already AWSCURRENT")
            if PENDING not in stages:
                raise self._error(
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
        except RotationError as exc:
            self._report_failure(exc)
            raise
        except AwsError as exc:
            error = self._error(
                str(exc), "retry; if it persists, check the role's Secrets Manager permissions", exc.code
            )
            self._report_failure(error)
            raise error from exc

    def create_secret(self, info: SecretInfo) -> RotationResult:
        """Put the new value at AWSPENDING on the rotation's version (or find it already there)."""
        secrets.get_value(info.arn, CURRENT, region=self.settings.region)  # a rotation needs a current value
        if secrets.has_value(info.arn, self.event.token, PENDING, region=self.settings.region):
            logger.info("the pending value is in place", extra={"token": self.event.token})
            return self._result("kept", "the value staged at AWSPENDING on this version is kept for testing")
        use = self._use(info, with_ecr=False)
        if use.rotation == "docker-hub-api":
            return self._mint(info, use)
        if use.rotation != "staged":
            raise self._error(
                f"unknown rotation strategy {use.rotation!r}",
                f"set credentials.rotation (or the tag {credentials.ROTATION_TAG}) to one of {', '.join(STRATEGIES)}",
                "strategy",
            )
        candidate = info.version_with(CANDIDATE)
        if candidate is None:
            raise self._error(
                f"nothing is staged: rotation strategy staged tests and promotes a value staged under the label "
                f"{CANDIDATE}, and no version of the secret has it",
                f"stage the new token with {_set_command(self._rule_hint(use))} (it stages it under {CANDIDATE} "
                "and starts the rotation), or use rotation: docker-hub-api to mint tokens automatically",
                "nothing_staged",
            )
        value = secrets.get_value(info.arn, CANDIDATE, candidate, region=self.settings.region)
        if value is None:
            raise self._error(
                f"the value staged under {CANDIDATE} (version {candidate}) is binary; ECR reads a SecretString",
                f"stage it again with {_set_command(self._rule_hint(use))}",
                "malformed",
            )
        self._put_pending(info.arn, value)
        logger.info("the staged candidate is AWSPENDING", extra={"token": self.event.token, "candidate": candidate})
        return self._result(
            "copied", f"the value staged under {CANDIDATE} (version {candidate}) is AWSPENDING, to be tested"
        )

    def set_secret(self, info: SecretInfo) -> RotationResult:
        """Nothing to set: the upstream issued the token, so it works there already."""
        logger.info("setSecret: the upstream issued the token; nothing to configure")
        return self._result("nothing_to_set", "the upstream already knows the token it issued")

    def test_secret(self, info: SecretInfo) -> RotationResult:
        """Prove the AWSPENDING value against every upstream the secret is used for; refuse it otherwise."""
        use = self._use(info, with_ecr=True)
        self._prove_pending(info, use)
        return self._result("tested", f"the pending value is valid on {len(_distinct(use.targets))} upstream(s)")

    def _prove_pending(self, info: SecretInfo, use: SecretUse) -> None:
        if not use.targets:
            raise self._error(
                "no rule in the config or in ECR uses this secret, so there is no upstream to test the new value "
                "against",
                f"name the secret in a rule's credentials in {self.settings.config_path} and deploy, then rotate",
                "unused",
            )
        for target in _distinct(use.targets):
            result = credentials.check_secret(
                info.arn,
                target.upstream,
                target.url,
                self.settings,
                stage=PENDING,
                version_id=self.event.token,
                rule=target.rule,
            )
            if not result.valid:
                verb = "could not be tested" if result.status == "unreachable" else "was refused"
                if result.status in ("invalid", "malformed"):
                    # Refused for good: a later rotation must not try the same candidate again.
                    self._clear_candidate(self._value(info))
                raise self._error(
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

    def finish_secret(self, info: SecretInfo) -> RotationResult:
        """Promote the tested version to AWSCURRENT, then revoke the old Hub token, re-validate the rules, report."""
        use = self._use(info, with_ecr=True)
        # Proved once more right before it goes live: a finish called without a passing test must not promote.
        self._prove_pending(info, use)
        current = info.version_with(CURRENT)
        promoted = self._value(info)
        secrets.move_stage(info.arn, CURRENT, self.event.token, current, region=self.settings.region)
        logger.info("promoted to AWSCURRENT", extra={"token": self.event.token, "previous": current})
        self._clear_candidate(promoted)
        items = [
            ReportItem(
                subject=f"secret {self.name}",
                outcome=Outcome.ROTATED,
                reason=f"version {self.event.token} is AWSCURRENT now (it was {current or 'none'})",
                details=Details(secret=self.name, rule=_first_rule(use), upstream=_first_upstream(use)),
            )
        ]
        items.extend(self._after_promotion(info, use))
        for target in _distinct(use.targets):
            check = credentials.check_secret(info.arn, target.upstream, target.url, self.settings, rule=target.rule)
            items.append(check.report_item(upstream=target.upstream.key, rule=target.rule))
        items.extend(credentials.revalidate(use.ecr_rules, self.name))
        self._publish(items)
        return self._result("promoted", f"version {self.event.token} is AWSCURRENT; the rules were re-validated")

    def _value(self, info: SecretInfo, stage: str = PENDING) -> str | None:
        """The value of the rotation's version at `stage`, or None when it cannot be read (for housekeeping only)."""
        try:
            return secrets.get_value(info.arn, stage, self.event.token, region=self.settings.region)
        except AwsError:
            return None

    def _clear_candidate(self, value: str | None) -> None:
        """Take PULLTHROUGH_CANDIDATE off the staged value once it was promoted or refused, if it is that value (a
        candidate staged since then stays for the next rotation). Never fails the step: the label is housekeeping."""
        if value is None:
            return
        try:
            info = secrets.describe(self.event.secret_id, region=self.settings.region)
            candidate = info.version_with(CANDIDATE)
            if candidate is None:
                return
            if secrets.get_value(info.arn, CANDIDATE, candidate, region=self.settings.region) != value:
                logger.info(
                    "a newer candidate is staged: it stays for the next rotation", extra={"candidate": candidate}
                )
                return
            secrets.move_stage(info.arn, CANDIDATE, None, candidate, region=self.settings.region)
            logger.info(f"took {CANDIDATE} off the staged value", extra={"candidate": candidate})
        except AwsError as exc:
            logger.warning(f"{CANDIDATE} could not be taken off the staged value", extra={"error": str(exc)})

    # --- docker-hub-api --------------------------------------------------------------------------------------------

    def _mint(self, info: SecretInfo, use: SecretUse) -> RotationResult:
        admin = self._admin(use)
        days = _int_tag(info.tags.get(TOKEN_DAYS_TAG), DEFAULT_TOKEN_DAYS)
        expires = datetime.combine(self._today() + timedelta(days=days), datetime.min.time(), tzinfo=UTC)
        hub = self.hub_factory(self.settings.upstream_url(HUB_HOST))
        try:
            hub.login(admin.username, admin.password)
            minted = hub.create_token(
                f"pullthrough {self.name} {self.event.token[:8]}",
                expires_at=expires,
                organization=use.organization,
                description=f"ECR pull-through cache, secret {self.name}; rotated by Pullthrough",
            )
        except HubApiError as exc:
            raise self._error(
                f"Docker Hub did not mint a new token: {exc}",
                f"check the admin secret {use.admin_secret} and Docker Hub's status; AWSCURRENT is unchanged",
                exc.reason,
            ) from None
        # A PAT logs in as its owner; an organization access token logs in as the organization.
        username = use.organization or admin.username
        value = credentials.credentials_value(Credentials(username, minted.token))
        secrets.tag(
            info.arn,
            {PENDING_TOKEN_ID_TAG: minted.id, PENDING_EXPIRES_TAG: f"{expires:%Y-%m-%d}"},
            region=self.settings.region,
        )
        try:
            self._put_pending(info.arn, value)
        except AwsError:
            # Not stored means never usable: take the minted token back rather than leave it live on Docker Hub.
            _revoke_quietly(hub, minted.id, use.organization)
            raise
        logger.info(
            "minted a Docker Hub access token",
            extra={"token_id": minted.id, "username": username, "expires": f"{expires:%Y-%m-%d}"},
        )
        return self._result("created", f"Docker Hub token {minted.id} minted for {username}, expires {expires:%F}")

    def _admin(self, use: SecretUse) -> Credentials:
        if not use.admin_secret:
            raise self._error(
                "rotation docker-hub-api needs the name of a secret with Docker Hub admin credentials",
                f"set credentials.admin_secret in the config (or the tag {credentials.ADMIN_SECRET_TAG})",
                "admin_secret",
            )
        try:
            value = secrets.get_value(use.admin_secret, CURRENT, region=self.settings.region)
        except AwsError as exc:
            raise self._error(
                f"the admin secret {use.admin_secret} cannot be read: {exc}",
                "create it (JSON username and password) and grant the rotation function GetSecretValue on it",
                exc.code,
            ) from None
        try:
            return _admin_credentials(use.admin_secret, value)
        except SecretError as exc:
            raise self._error(
                str(exc), f"store {use.admin_secret} as JSON username and password", "admin_secret"
            ) from None

    def _after_promotion(self, info: SecretInfo, use: SecretUse) -> list[ReportItem]:
        """docker-hub-api: revoke the previous token and move the tags; problems here are warnings, not failures."""
        pending_id = info.tags.get(PENDING_TOKEN_ID_TAG)
        if use.rotation != "docker-hub-api" or not pending_id:
            expires = info.tags.get(PENDING_EXPIRES_TAG)
            if expires:
                secrets.tag(info.arn, {credentials.EXPIRES_TAG: expires}, region=self.settings.region)
                secrets.untag(info.arn, (PENDING_EXPIRES_TAG,), region=self.settings.region)
            return []
        previous = info.tags.get(TOKEN_ID_TAG)
        items: list[ReportItem] = []
        if previous and previous != pending_id:
            try:
                admin = self._admin(use)
                hub = self.hub_factory(self.settings.upstream_url(HUB_HOST))
                hub.login(admin.username, admin.password)
                revoked = hub.revoke_token(previous, organization=use.organization)
                logger.info("revoked the previous Docker Hub token", extra={"token_id": previous, "was": revoked})
            except (HubApiError, RotationError) as exc:
                items.append(
                    ReportItem(
                        subject=f"Docker Hub token {previous}",
                        outcome=Outcome.FAILED,
                        severity=Severity.WARNING,  # the new token is live; the old one merely lingers
                        reason=f"the previous token is still active: {exc}",
                        fix="revoke it in Docker Hub (Account settings > Personal access tokens)",
                        reason_code="revoke_failed",
                        details=Details(secret=self.name),
                    )
                )
        tags = {TOKEN_ID_TAG: pending_id}
        if info.tags.get(PENDING_EXPIRES_TAG):
            tags[credentials.EXPIRES_TAG] = info.tags[PENDING_EXPIRES_TAG]
        secrets.tag(info.arn, tags, region=self.settings.region)
        secrets.untag(info.arn, (PENDING_TOKEN_ID_TAG, PENDING_EXPIRES_TAG), region=self.settings.region)
        return items

    # --- pieces ----------------------------------------------------------------------------------------------------

    def _check_region(self) -> None:
        region = secrets.region_of(self.event.secret_id)
        if region is not None and region != self.settings.region:
            raise self._error(
                f"the secret is in region {region}, but this function and the ECR registry it serves are in "
                f"{self.settings.region}; ECR reads credentials only from its own region",
                f"create the secret in {self.settings.region} and rotate it there",
                "wrong_region",
            )

    def _check_prefix(self, name: str) -> None:
        if not name.startswith(SECRET_PREFIX):
            raise self._error(
                f"ECR pull-through cache reads only secrets named {SECRET_PREFIX}..., so this function rotates only "
                "those",
                f"keep the credentials in a secret named {SECRET_PREFIX}<name> and rotate that one",
                "wrong_prefix",
            )

    def _describe(self) -> SecretInfo:
        info = secrets.describe(self.event.secret_id, region=self.settings.region)
        self.name = info.name
        return info

    def _config_now(self) -> Config | None:
        if not self._config_loaded:
            self._config = credentials.load_config(self.settings)
            self._config_loaded = True
        return self._config

    def _use(self, info: SecretInfo, *, with_ecr: bool) -> SecretUse:
        rules: tuple[Any, ...] = ()
        if with_ecr:
            rules, problem = credentials.ecr_rules()
            if problem is not None:
                logger.warning("ECR rules unknown", extra={"reason": problem.reason})
        return credentials.secret_use(info.name, self._config_now(), info.tags, ecr_rules=rules)

    def _put_pending(self, arn: str, value: str) -> None:
        """Store `value` as this rotation's AWSPENDING version (the event's token, RotateSecret's own request token)."""
        secrets.put_value(
            arn,
            value,
            (PENDING,),
            token=self.event.token,
            region=self.settings.region,
            rotation_token=self.event.rotation_token,
        )

    def _rule_hint(self, use: SecretUse | None = None) -> str | None:
        if use is not None:
            return _first_rule(use)
        rules = credentials.config_rules(self._config_now(), self.name)
        return rules[0].prefix if rules else None

    def _today(self) -> date:
        return self.today or datetime.now(UTC).date()

    def _error(self, message: str, fix: str, code: str = "rotation", *, target: Target | None = None) -> RotationError:
        return RotationError(self.name, self.event.step, message, fix, code, target)

    def _result(self, action: str, message: str) -> RotationResult:
        return RotationResult(
            secret=self.name,
            step=self.event.step,
            token=self.event.token,
            action=action,
            message=message,
            run_id=self.run_id,
        )

    def _report_failure(self, error: RotationError) -> None:
        logger.error(
            "rotation step failed",
            extra={"reason": error.reason, "fix": error.fix, "reason_code": error.code, "token": self.event.token},
        )
        target = error.target
        items = [
            ReportItem(
                subject=f"secret {self.name} (AWSPENDING)",
                outcome=Outcome.ROTATION_FAILED,
                reason=f"{self.event.step}: {error.reason}",
                fix=error.fix,
                reason_code=error.code[:64],
                details=Details(
                    secret=self.name,
                    rule=target.rule if target else None,
                    upstream=target.upstream.key if target else None,
                    valid=False if error.code == "auth" else None,
                ),
            )
        ]
        if target is not None:
            # Reassure (or alarm) the reader about what ECR uses right now.
            current = credentials.check_secret(
                self.event.secret_id, target.upstream, target.url, self.settings, rule=target.rule
            )
            items.append(current.report_item(upstream=target.upstream.key, rule=target.rule))
        self._publish(items)

    def _publish(self, items: list[ReportItem]) -> None:
        credentials.publish(
            items,
            self.settings,
            self._config_now(),
            run_id=self.run_id,
            trigger=f"Secrets Manager rotation of {self.name} ({self.event.step})",
            started=self.started,
            log_group=self.log_group,
        )


# --- helpers -------------------------------------------------------------------------------------------------------


def _set_command(rule: str | None) -> str:
    return f"`pullthrough credentials set {rule or '<rule prefix>'}`"


def _distinct(targets: tuple[Target, ...]) -> list[Target]:
    seen: dict[tuple[str, str], Target] = {}
    for target in targets:
        seen.setdefault((target.upstream.key, target.url), target)
    return list(seen.values())


def _first_rule(use: SecretUse) -> str | None:
    return use.targets[0].rule if use.targets else None


def _first_upstream(use: SecretUse) -> str | None:
    return use.targets[0].upstream.key if use.targets else None


def _int_tag(value: str | None, default: int) -> int:
    try:
        number = int(value) if value else default
    except ValueError:
        return default
    return number if 1 <= number <= 3650 else default


def _admin_credentials(secret: str, value: str | None) -> Credentials:
    """Docker Hub admin credentials: JSON username and password (accessToken accepted too)."""
    import json

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
    credentials.refuse_swapped(secret, username, password)
    return Credentials(username, password)


def _revoke_quietly(hub: HubClient, token_id: str, organization: str | None) -> None:
    try:
        hub.revoke_token(token_id, organization=organization)
    except HubApiError as exc:
        logger.error("a minted token could not be revoked", extra={"token_id": token_id, "error": str(exc)})


def new_token() -> str:
    """A fresh ClientRequestToken (a version id) for a rotation started by Pullthrough itself."""
    return str(uuid.uuid4())
