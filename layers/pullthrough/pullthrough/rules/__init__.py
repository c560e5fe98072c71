"""Reconcile the account's ECR pull-through cache rules and repository creation templates with the config.

    desired (config) + actual (ECR, ownership records) --plan()--> Plan --credentials gate--> apply --> validate
    --> Report (SNS) and a "Pullthrough Rules Reconciled" event that starts warming

`plan()` is pure: it compares and decides, and its `Plan` reads as a list of changes a person can check (a dry
run checks and validates but writes none of it). Applying is `reconcile()`: it writes only what the plan says, only
to rules and templates Pullthrough owns (aws/ownership.py says why ownership lives in the ledger table), points a
rule at a secret only after the secret proved itself upstream, survives a concurrent run creating or deleting the
same thing, and then asks ECR to validate every rule that has credentials. A run with nothing to change makes no
write call.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from pullthrough import config as config_module
from pullthrough import credentials, upstreams
from pullthrough.aws import events, ownership, ptc
from pullthrough.aws.ownership import Kind, Owned
from pullthrough.aws.ptc import RuleSpec, Snapshot, TemplateSpec
from pullthrough.errors import AwsAlreadyExists, AwsError, AwsNotFound, EventError, PullthroughError
from pullthrough.observability import logger
from pullthrough.reporting import Details, Outcome, Report, ReportItem, Severity
from pullthrough.reporting import Kind as ReportKind
from pullthrough.reporting.publish import publish

if TYPE_CHECKING:
    from pullthrough.config import Config, Rule, Template
    from pullthrough.env import Settings

__all__ = [
    "Action",
    "DesiredRule",
    "Plan",
    "RuleChange",
    "Summary",
    "TemplateChange",
    "Trigger",
    "TriggerKind",
    "desired_rules",
    "handle",
    "plan",
    "reconcile",
    "template_spec",
]

CONFIG_FILE = "config/pullthrough.yaml"
SECRET_VALUE_SHAPE = '{"username":"<user>","accessToken":"<token>"}'  # noqa: S105 - placeholders, not a value
DELETED_OUTSIDE = "it was deleted outside Pullthrough"


# --- the trigger ---------------------------------------------------------------------------------------------------


class TriggerKind(StrEnum):
    """What started a run."""

    DEPLOY = "deploy"  # this stack's CloudFormation CREATE_COMPLETE / UPDATE_COMPLETE
    SCHEDULE = "schedule"
    DRIFT = "drift"  # a CloudTrail event: someone changed or deleted a rule or template
    MANUAL = "manual"  # a direct invocation, e.g. {"dryRun": true}


_DRIFT_OPERATIONS = {
    "DeletePullThroughCacheRule": (Kind.RULE, "ecrRepositoryPrefix", "deleted"),
    "UpdatePullThroughCacheRule": (Kind.RULE, "ecrRepositoryPrefix", "changed"),
    "DeleteRepositoryCreationTemplate": (Kind.TEMPLATE, "prefix", "deleted"),
    "UpdateRepositoryCreationTemplate": (Kind.TEMPLATE, "prefix", "changed"),
}
_STACK_DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


@dataclass(frozen=True)
class Trigger:
    """The event a run answers, as the report tells it."""

    kind: TriggerKind
    text: str  # "CloudFormation UPDATE_COMPLETE of stack pullthrough-prod"
    dry_run: bool = False
    operation: str | None = None  # CloudTrail eventName
    resource: Kind | None = None  # what the CloudTrail call was about
    prefix: str | None = None  # its rule or template prefix
    actor: str | None = None  # userIdentity.arn (or the closest thing the event has)
    at: str | None = None  # eventTime
    stack: str | None = None  # the stack a CloudFormation event is about

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Trigger:
        """Read an EventBridge event (deploy, schedule, CloudTrail) or a manual one ({} or {"dryRun": true})."""
        if not isinstance(event, Mapping):
            raise EventError(f"the event must be a JSON object, not {type(event).__name__}")
        if "detail-type" not in event:
            return _manual(event)
        from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

        try:
            bridge = EventBridgeModel.model_validate(event)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in error["loc"]) for error in exc.errors())
            raise EventError(f"not an EventBridge event: missing or invalid {fields}") from None
        detail: Mapping[str, Any] = bridge.detail if isinstance(bridge.detail, Mapping) else {}
        if bridge.detail_type == "CloudFormation Stack Status Change":
            return _deploy(detail)
        if bridge.detail_type == "Scheduled Event":
            rule = bridge.resources[0].rsplit("/", 1)[-1] if bridge.resources else None
            return cls(TriggerKind.SCHEDULE, f"schedule ({rule})" if rule else "schedule")
        if bridge.detail_type == "AWS API Call via CloudTrail":
            return _cloudtrail(detail)
        raise EventError(
            f"detail-type {bridge.detail_type!r} is not one reconcile_rules handles; expected CloudFormation Stack "
            "Status Change, Scheduled Event or AWS API Call via CloudTrail (check the function's EventBridge rules)"
        )

    def drift(self, kind: Kind, prefix: str) -> str | None:
        """Who changed the resource and when ("deleted outside Pullthrough by <arn> at <time>"), if the trigger says."""
        if self.kind is not TriggerKind.DRIFT or self.resource is not kind or self.prefix != prefix:
            return None
        verb = _DRIFT_OPERATIONS[self.operation or ""][2]
        return f"{verb} outside Pullthrough by {self.actor or 'an unknown principal'} at {self.at or 'an unknown time'}"

    def made_by(self, function_name: str | None) -> bool:
        """Whether the CloudTrail call was made by the function itself (its role session is named after it)."""
        if self.kind is not TriggerKind.DRIFT or not function_name or not self.actor:
            return False
        return ":assumed-role/" in self.actor and self.actor.endswith(f"/{function_name}")


def _manual(event: Mapping[str, Any]) -> Trigger:
    unknown = sorted(set(event) - {"dryRun"})
    if unknown:
        raise EventError(
            f"manual event field(s) {', '.join(unknown)} not understood; send {{}} to reconcile or "
            '{"dryRun": true} to plan and report without writing'
        )
    dry_run = event.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise EventError(f"event field dryRun must be true or false, not {dry_run!r}")
    return Trigger(TriggerKind.MANUAL, "manual invocation", dry_run=dry_run)


def _deploy(detail: Mapping[str, Any]) -> Trigger:
    status_details = detail.get("status-details")
    status = status_details.get("status") if isinstance(status_details, Mapping) else None
    stack_id = detail.get("stack-id")
    if not isinstance(status, str) or not isinstance(stack_id, str):
        raise EventError("CloudFormation event without detail.stack-id and detail.status-details.status")
    # arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
    parts = stack_id.split(":", 5)[-1].split("/")
    stack = parts[1] if len(parts) > 1 else stack_id
    if status not in _STACK_DONE:
        raise EventError(f"CloudFormation status {status} of stack {stack} is not a finished create or update")
    return Trigger(TriggerKind.DEPLOY, f"CloudFormation {status} of stack {stack}", stack=stack)


def _cloudtrail(detail: Mapping[str, Any]) -> Trigger:
    operation = detail.get("eventName")
    if not isinstance(operation, str) or operation not in _DRIFT_OPERATIONS:
        raise EventError(
            f"CloudTrail eventName {operation!r} is not one reconcile_rules repairs; expected "
            f"{', '.join(_DRIFT_OPERATIONS)}"
        )
    kind, key, _ = _DRIFT_OPERATIONS[operation]
    parameters = detail.get("requestParameters")
    prefix = parameters.get(key) if isinstance(parameters, Mapping) else None
    prefix = ptc.normalise_prefix(prefix) if isinstance(prefix, str) and prefix else None
    identity = detail.get("userIdentity")
    actor = None
    if isinstance(identity, Mapping):
        actor = identity.get("arn") or identity.get("invokedBy") or identity.get("principalId") or identity.get("type")
    at = detail.get("eventTime")
    text = f"{operation}{' ' + prefix if prefix else ''} by {actor or 'an unknown principal'} at {at or '?'}"
    if detail.get("errorCode"):
        text += f" (the call failed: {detail['errorCode']})"
    return Trigger(
        TriggerKind.DRIFT,
        text,
        operation=operation,
        resource=kind,
        prefix=prefix,
        actor=str(actor) if actor else None,
        at=str(at) if at else None,
    )


# --- desired state -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredRule:
    """A config rule in ECR's terms, its secret resolved to an ARN (None: no secret, or the secret was not found)."""

    spec: RuleSpec
    upstream: upstreams.Upstream
    secret: str | None = None
    allow_replace: bool = False
    template: TemplateSpec | None = None
    template_blocked: str | None = None  # why the template cannot be written as configured (its role is unknown)


TEMPLATE_ROLE_UNKNOWN = (
    "the template asks for role: create, but this function does not know the role the stack deploys "
    "(TEMPLATE_ROLE_ARN is not set)"
)


def template_spec(prefix: str, template: Template, created_role_arn: str | None = None) -> TemplateSpec:
    """The repository creation template a config rule asks for (the rule's prefix, the config's appliedFor).

    `created_role_arn` is the repository creation role the stack deploys (template.yaml, TEMPLATE_ROLE_ARN), passed
    as customRoleArn to a template with role: create.
    """
    encryption = template.encryption
    role = template.custom_role_arn or (created_role_arn if template.role == config_module.CREATE_ROLE else None)
    return TemplateSpec(
        prefix=prefix,
        applied_for=tuple(template.applied_for),
        description=template.description or None,
        encryption_type=encryption.type,
        kms_key=encryption.key,
        tag_mutability=template.tag_mutability,
        mutability_exclusions=tuple(sorted(template.mutability_exclusions or ())),
        lifecycle_policy=template.lifecycle.policy_text() if template.lifecycle else None,
        repository_policy=config_module.policy_text(template.repository_policy) if template.repository_policy else None,
        resource_tags=tuple(sorted(template.tags.items())),
        custom_role_arn=role,
    )


def desired_rule(rule: Rule, secret_arn: str | None, template_role_arn: str | None = None) -> DesiredRule:
    """One config rule as ECR would hold it (`template_role_arn`: the role the stack deploys for role: create)."""
    template = rule.template
    blocked = None
    if template is not None and template.role == config_module.CREATE_ROLE and not template_role_arn:
        blocked = TEMPLATE_ROLE_UNKNOWN
    return DesiredRule(
        spec=RuleSpec(
            prefix=rule.prefix,
            upstream_registry=rule.upstream,
            upstream_url=rule.upstream_url,
            credential_arn=secret_arn if rule.secret_name else None,
            custom_role_arn=rule.custom_role_arn,
            upstream_prefix=ptc.upstream_prefix_of(rule.upstream_prefix),
        ),
        upstream=rule.entry,
        secret=rule.secret_name,
        allow_replace=rule.allow_replace,
        template=template_spec(rule.prefix, template, template_role_arn) if template else None,
        template_blocked=blocked,
    )


def desired_rules(
    config: Config, secret_arns: Mapping[str, str | None], template_role_arn: str | None = None
) -> tuple[DesiredRule, ...]:
    """Every config rule as ECR would hold it; `secret_arns` maps secret names to ARNs (None: not found)."""
    return tuple(
        desired_rule(rule, secret_arns.get(rule.secret_name or ""), template_role_arn) for rule in config.rules
    )


# --- the plan ------------------------------------------------------------------------------------------------------


class Action(StrEnum):
    """What the plan does with one rule or template."""

    CREATE = "create"
    UPDATE = "update"  # rule: UpdatePullThroughCacheRule (credentials); template: UpdateRepositoryCreationTemplate
    REPLACE = "replace"  # delete and create: a rule field ECR cannot update, or a template field it cannot clear
    DELETE = "delete"  # owned, and no longer in the config
    KEEP = "keep"  # as the config says
    CONFLICT = "conflict"  # differs, and Pullthrough may not change it (not owned, or replacing is not allowed)
    FOREIGN = "foreign"  # not owned: reported, never touched
    FORGET = "forget"  # an ownership record of something gone and no longer configured
    BLOCKED = "blocked"  # configured, but cannot be written as configured (a template's role is unknown)

    @property
    def writes(self) -> bool:
        """Whether the action changes ECR."""
        return self in _WRITES


_WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE})


@dataclass(frozen=True)
class RuleChange:
    """The plan for one pull-through cache rule."""

    prefix: str
    action: Action
    desired: DesiredRule | None = None
    actual: RuleSpec | None = None
    owned: bool = False
    differences: tuple[str, ...] = ()  # "credentialArn: <now> -> <wanted>"
    reason: str = ""
    sets_credentials: bool = False  # the write points the rule at the configured secret: the gate applies

    kind = Kind.RULE

    def line(self) -> str:
        """The change in one line, for people: "create rule docker-hub: Docker Hub (registry-1.docker.io), ..."."""
        text = f"{self.action.value} rule {self.prefix}"
        if self.desired is not None and self.action in (Action.CREATE, Action.REPLACE):
            spec = self.desired.spec
            text += f": {self.desired.upstream.title} ({spec.upstream_url})"
            if self.desired.secret:
                text += f", secret {self.desired.secret}"
        details = "; ".join(part for part in (self.reason, "; ".join(self.differences)) if part)
        return text + (f" ({details})" if details else "")


@dataclass(frozen=True)
class TemplateChange:
    """The plan for one repository creation template."""

    prefix: str
    action: Action
    desired: TemplateSpec | None = None
    actual: TemplateSpec | None = None
    owned: bool = False
    differences: tuple[str, ...] = ()
    reason: str = ""

    kind = Kind.TEMPLATE

    def line(self) -> str:
        """The change in one line, for people."""
        details = "; ".join(part for part in (self.reason, "; ".join(self.differences)) if part)
        return f"{self.action.value} template {self.prefix}" + (f" ({details})" if details else "")


Change = RuleChange | TemplateChange


@dataclass(frozen=True)
class Plan:
    """Every rule and template the run looks at, and what it does with each."""

    rules: tuple[RuleChange, ...] = ()
    templates: tuple[TemplateChange, ...] = ()

    def changes(self) -> list[Change]:
        """Every rule's and template's change, rules first."""
        return [*self.rules, *self.templates]

    def writes(self) -> list[Change]:
        """The changes that write to ECR."""
        return [change for change in self.changes() if change.action.writes]

    def lines(self) -> list[str]:
        """The plan as a person reads it, one line per rule and template."""
        return [change.line() for change in self.changes()]


def plan(desired: Sequence[DesiredRule], actual: Snapshot, owned: Owned) -> Plan:
    """Compare the config with the account and decide, for every rule and template, what to do (pure)."""
    wanted_rules = {rule.spec.prefix: rule for rule in desired}
    have_rules = {rule.prefix: rule for rule in actual.rules}
    rules = [
        plan_rule(prefix, wanted_rules.get(prefix), have_rules.get(prefix), owned.has(Kind.RULE, prefix))
        for prefix in _ordered(wanted_rules, have_rules, owned.rules)
    ]
    wanted_templates = {rule.spec.prefix: rule.template for rule in desired if rule.template is not None}
    blocked = {rule.spec.prefix: rule.template_blocked for rule in desired if rule.template_blocked}
    have_templates = {template.prefix: template for template in actual.templates}
    templates = tuple(
        TemplateChange(
            prefix,
            Action.BLOCKED,
            wanted_templates.get(prefix),
            have_templates.get(prefix),
            owned.has(Kind.TEMPLATE, prefix),
            reason=blocked[prefix],
        )
        if prefix in blocked
        else plan_template(
            prefix, wanted_templates.get(prefix), have_templates.get(prefix), owned.has(Kind.TEMPLATE, prefix)
        )
        for prefix in _ordered(wanted_templates, have_templates, owned.templates)
    )
    return Plan(
        tuple(change for change in rules if change is not None),
        tuple(change for change in templates if change is not None),
    )


def _ordered(wanted: Mapping[str, object], have: Mapping[str, object], owned: Iterable[str]) -> list[str]:
    # The config's order first, then what only the account or the ledger knows, sorted: reports read stably.
    extra = sorted((set(have) | set(owned)) - set(wanted))
    return [*wanted, *extra]


def plan_rule(prefix: str, want: DesiredRule | None, have: RuleSpec | None, owned: bool) -> RuleChange | None:
    """The change for one rule prefix (None when there is nothing to say about it)."""
    if want is not None and have is None:
        reason = DELETED_OUTSIDE if owned else ""
        return RuleChange(prefix, Action.CREATE, want, None, owned, reason=reason, sets_credentials=bool(want.secret))
    if want is None and have is None:
        return RuleChange(prefix, Action.FORGET, owned=True) if owned else None
    if want is None:
        assert have is not None
        if owned:
            return RuleChange(prefix, Action.DELETE, None, have, owned, reason="no longer in the config")
        return RuleChange(prefix, Action.FOREIGN, None, have, owned, reason="created outside Pullthrough")
    assert have is not None
    immutable, mutable = rule_differences(want, have)
    if not owned:
        if immutable or mutable:
            return RuleChange(
                prefix,
                Action.CONFLICT,
                want,
                have,
                owned,
                (*immutable, *mutable),
                "created outside Pullthrough and different from the config",
            )
        return RuleChange(prefix, Action.FOREIGN, want, have, owned, reason="created outside Pullthrough")
    if immutable:
        if want.allow_replace:
            return RuleChange(
                prefix,
                Action.REPLACE,
                want,
                have,
                owned,
                (*immutable, *mutable),
                "ECR cannot update these fields",
                sets_credentials=bool(want.secret),
            )
        return RuleChange(
            prefix,
            Action.CONFLICT,
            want,
            have,
            owned,
            (*immutable, *mutable),
            "ECR cannot update these fields and the rule does not allow replacement",
        )
    if mutable:
        sets = bool(want.secret) and want.spec.credential_arn != have.credential_arn
        return RuleChange(prefix, Action.UPDATE, want, have, owned, tuple(mutable), sets_credentials=sets)
    return RuleChange(prefix, Action.KEEP, want, have, owned)


def rule_differences(want: DesiredRule, have: RuleSpec) -> tuple[list[str], list[str]]:
    """What differs: (fields ECR cannot update, fields UpdatePullThroughCacheRule can change)."""
    spec = want.spec
    immutable: list[str] = []
    mutable: list[str] = []
    if have.upstream_registry and have.upstream_registry != spec.upstream_registry:
        immutable.append(f"upstreamRegistry: {have.upstream_registry} -> {spec.upstream_registry}")
    if have.upstream_url != spec.upstream_url:
        immutable.append(f"upstreamRegistryUrl: {have.upstream_url} -> {spec.upstream_url}")
    if have.upstream_prefix != spec.upstream_prefix:
        immutable.append(f"upstreamRepositoryPrefix: {have.upstream_prefix} -> {spec.upstream_prefix}")
    if want.secret is None:
        if have.credential_arn is not None:
            immutable.append(f"credentialArn: {have.credential_arn} -> none (ECR cannot take a rule's secret away)")
    elif spec.credential_arn is None:
        mutable.append(f"credentialArn: {have.credential_arn or 'none'} -> secret {want.secret} (not found)")
    elif spec.credential_arn != have.credential_arn:
        mutable.append(f"credentialArn: {have.credential_arn or 'none'} -> {spec.credential_arn}")
    if spec.custom_role_arn is None:
        if have.custom_role_arn is not None:
            immutable.append(f"customRoleArn: {have.custom_role_arn} -> none (ECR cannot take a rule's role away)")
    elif spec.custom_role_arn != have.custom_role_arn:
        mutable.append(f"customRoleArn: {have.custom_role_arn or 'none'} -> {spec.custom_role_arn}")
    return immutable, mutable


def plan_template(
    prefix: str, want: TemplateSpec | None, have: TemplateSpec | None, owned: bool
) -> TemplateChange | None:
    """The change for one template prefix (None when there is nothing to say about it)."""
    if want is not None and have is None:
        reason = DELETED_OUTSIDE if owned else ""
        return TemplateChange(prefix, Action.CREATE, want, None, owned, template_settings(want), reason)
    if want is None and have is None:
        return TemplateChange(prefix, Action.FORGET, owned=True) if owned else None
    if want is None:
        assert have is not None
        if owned:
            return TemplateChange(prefix, Action.DELETE, None, have, owned, reason="no longer in the config")
        return TemplateChange(prefix, Action.FOREIGN, None, have, owned, reason="created outside Pullthrough")
    assert have is not None
    differences, clears = template_differences(want, have)
    if not owned:
        if differences:
            return TemplateChange(
                prefix,
                Action.CONFLICT,
                want,
                have,
                owned,
                tuple(differences),
                "created outside Pullthrough and different from the config",
            )
        return TemplateChange(prefix, Action.FOREIGN, want, have, owned, reason="created outside Pullthrough")
    if not differences:
        return TemplateChange(prefix, Action.KEEP, want, have, owned)
    if clears:
        reason = "an update cannot remove " + ", ".join(clears)
        return TemplateChange(prefix, Action.REPLACE, want, have, owned, tuple(differences), reason)
    return TemplateChange(prefix, Action.UPDATE, want, have, owned, tuple(differences))


def template_differences(want: TemplateSpec, have: TemplateSpec) -> tuple[list[str], list[str]]:
    """What differs, and which of those fields only a delete and create can remove."""
    differences: list[str] = []
    clears: list[str] = []

    def differ(name: str, now: object, wanted: object) -> None:
        differences.append(f"{name}: {_show(now)} -> {_show(wanted)}")

    if sorted(have.applied_for) != sorted(want.applied_for):
        differ("appliedFor", ",".join(have.applied_for), ",".join(want.applied_for))
    if (have.description or None) != (want.description or None):
        differ("description", have.description, want.description)
    # Without a key in the config, KMS means ECR's managed key, whose ARN the account may report back.
    key_differs = want.kms_key is not None and have.kms_key != want.kms_key
    if have.encryption_type != want.encryption_type or key_differs:
        differ("encryption", _encryption(have), _encryption(want))
    if have.tag_mutability != want.tag_mutability:
        differ("imageTagMutability", have.tag_mutability, want.tag_mutability)
    if sorted(have.mutability_exclusions) != sorted(want.mutability_exclusions):
        differ("exclusionFilters", ",".join(have.mutability_exclusions), ",".join(want.mutability_exclusions))
    if tuple(sorted(have.resource_tags)) != tuple(sorted(want.resource_tags)):
        differ("resourceTags", _tags(have.resource_tags), _tags(want.resource_tags))
    for name, now, wanted in (
        ("lifecyclePolicy", have.lifecycle_policy, want.lifecycle_policy),
        ("repositoryPolicy", have.repository_policy, want.repository_policy),
    ):
        if not ptc.policy_equal(now, wanted):
            differ(name, "set" if now else None, "set" if wanted else None)
            if now and not wanted:
                clears.append(name)
    if (have.custom_role_arn or None) != (want.custom_role_arn or None):
        differ("customRoleArn", have.custom_role_arn, want.custom_role_arn)
        if have.custom_role_arn and not want.custom_role_arn:
            clears.append("customRoleArn")
    return differences, clears


def template_settings(spec: TemplateSpec) -> tuple[str, ...]:
    """What a template sets, briefly: ("MUTABLE", "AES256", "lifecycle policy", "tags team=platform")."""
    settings = [
        spec.tag_mutability + (f" except {','.join(spec.mutability_exclusions)}" if spec.mutability_exclusions else "")
    ]
    settings.append(_encryption(spec))
    if spec.lifecycle_policy:
        settings.append("lifecycle policy")
    if spec.repository_policy:
        settings.append("repository policy")
    if spec.resource_tags:
        settings.append(f"tags {_tags(spec.resource_tags)}")
    return tuple(settings)


def _show(value: object) -> str:
    return "none" if value in (None, "") else str(value)


def _encryption(spec: TemplateSpec) -> str:
    return spec.encryption_type + (f" ({spec.kms_key})" if spec.kms_key else "")


def _tags(tags: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{key}={value}" for key, value in tags) or "none"


# --- applying ------------------------------------------------------------------------------------------------------


class Summary(BaseModel):
    """What the handler returns: the report in brief, and what the run did with it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    status: str
    dry_run: bool
    trigger: str
    headline: str
    counts: dict[str, int] = {}
    items: list[str] = []  # "rule docker-hub: created (...)", one per rule and template
    notes: list[str] = []
    event_id: str | None = None  # the "Pullthrough Rules Reconciled" event, when one was sent
    message_id: str | None = None  # the SNS message of the report, when one was published
    ignored: str | None = None  # why the event was not acted upon


class LambdaContextLike(Protocol):
    """The parts of the Lambda context a run uses."""

    @property
    def function_name(self) -> str: ...

    @property
    def log_group_name(self) -> str: ...


def handle(event: Mapping[str, Any], settings: Settings, context: LambdaContextLike | None = None) -> Summary:
    """Reconcile for one trigger event: plan, apply (unless a dry run), validate, report; returns the summary."""
    logger.remove_keys(["run_id"])  # a warm container's logger still carries the previous run's
    trigger = Trigger.from_event(event)
    if trigger.made_by(context.function_name if context else None):
        # Every write of a run comes back as a CloudTrail event; answering it would only repeat a no-op run.
        logger.info("ignored: a CloudTrail event of this function's own change", extra={"trigger": trigger.text})
        return Summary(
            run_id="-",
            status="OK",
            dry_run=False,
            trigger=trigger.text,
            headline="nothing to do",
            ignored="the change was made by this function itself",
        )
    if trigger.kind is TriggerKind.DEPLOY and trigger.stack and trigger.stack != settings.stack_name:
        return Summary(
            run_id="-",
            status="OK",
            dry_run=False,
            trigger=trigger.text,
            headline="nothing to do",
            ignored=f"the event is about stack {trigger.stack}, not {settings.stack_name}",
        )
    config = config_module.load(settings.config_path)
    run = Run(config, settings, trigger, log_group=context.log_group_name if context else None)
    return run.execute()


def reconcile(
    config: Config, settings: Settings, trigger: Trigger, *, log_group: str | None = None
) -> tuple[Report, Plan]:
    """Plan and (unless a dry run) apply, validate, announce; returns the report (not yet published) and the plan."""
    run = Run(config, settings, trigger, log_group=log_group)
    report = run.reconcile()
    assert run.plan is not None
    return report, run.plan


@dataclass
class _Result:
    """What happened to one rule or template."""

    outcome: Outcome
    reason: str | None = None
    fix: str | None = None
    code: str | None = None
    exists: bool = False  # the rule is in the account after the run (and can be validated)
    severity: Severity | None = None


@dataclass
class Run:
    """One reconcile: its inputs, what it learnt, and what it did."""

    config: Config
    settings: Settings
    trigger: Trigger
    log_group: str | None = None
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)
    wrote: bool = False
    event_id: str | None = None
    _checks: dict[tuple[str, str, str], credentials.CredentialCheck] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        """A dry run plans, checks and validates, and writes nothing."""
        return self.settings.dry_run or self.trigger.dry_run

    @property
    def table(self) -> str | None:
        return self.settings.ledger_table

    # --- the whole run -------------------------------------------------------------------------------------------

    def execute(self) -> Summary:
        """Reconcile, log, count, publish; the summary the handler returns."""
        logger.append_keys(run_id=self.run_id)
        report = self.reconcile()
        message_id = publish(report, self.settings.topic_arn, self.config.notifications)
        return Summary(
            run_id=self.run_id,
            status=report.status.value,
            dry_run=report.dry_run,
            trigger=report.trigger,
            headline=report.headline(self.config.notifications.subject_prefix),
            counts={outcome.value: count for outcome, count in report.counts.items()},
            items=[_item_line(item) for item in report.items],
            notes=list(report.notes),
            event_id=self.event_id,
            message_id=message_id,
        )

    def reconcile(self) -> Report:
        """Read, plan, check credentials, apply, validate, announce; the report of it all."""
        actual = ptc.snapshot()
        account = self.settings.account_id or actual.registry_id
        if not account:
            raise PullthroughError("cannot tell the AWS account: set ACCOUNT_ID (template.yaml sets it in Globals)")
        owned = self._owned()
        desired = desired_rules(self.config, self._secret_arns(), self.settings.template_role_arn)
        self.plan = plan(desired, actual, owned)
        logger.info(
            f"plan: {len(self.plan.writes())} change(s)",
            extra={"plan": self.plan.lines(), "dry_run": self.dry_run},
        )
        results: dict[tuple[Kind, str], _Result | None] = {}
        # Templates first: a pull right after a rule appears should already get the template's settings.
        for change in self._ordered_for_apply(self.plan):
            results[(change.kind, change.prefix)] = self._apply(change)
        items = [self._rule_item(c, results[(Kind.RULE, c.prefix)]) for c in self.plan.rules]
        items += [self._template_item(c, results[(Kind.TEMPLATE, c.prefix)]) for c in self.plan.templates]
        self._announce(desired, results, items)
        return Report(
            kind=ReportKind.RULES,
            stack=self.config.stack,
            region=self.settings.region,
            account=account,
            run_id=self.run_id,
            trigger=self.trigger.text,
            started=self.started,
            dry_run=self.dry_run,
            items=tuple(item for item in items if item is not None),
            notes=tuple(dict.fromkeys(self.notes)),
            log_groups=(self.log_group,) if self.log_group else (),
        )

    @staticmethod
    def _ordered_for_apply(the_plan: Plan) -> list[Change]:
        def stage(change: Change) -> int:
            if change.action is Action.FORGET:
                return 4
            if change.action is Action.DELETE:
                return 2 if isinstance(change, RuleChange) else 3
            return 0 if isinstance(change, TemplateChange) else 1

        return sorted(the_plan.changes(), key=stage)

    # --- reading -------------------------------------------------------------------------------------------------

    def _owned(self) -> Owned:
        if not self.table:
            self.notes.append(
                "No ledger table is configured (LEDGER_TABLE), so ownership cannot be recorded or read: missing "
                "rules and templates are created, but every existing one counts as not created by Pullthrough and "
                "is never changed or deleted."
            )
            return Owned()
        return ownership.owned(self.table)

    def _secret_arns(self) -> dict[str, str | None]:
        from pullthrough.aws import secrets

        arns: dict[str, str | None] = {}
        for name in sorted({rule.secret_name for rule in self.config.rules if rule.secret_name}):
            try:
                info = secrets.describe(name, region=self.settings.region)
            except AwsNotFound:
                arns[name] = None
                continue
            except AwsError as exc:
                # The gate asks again and explains; until then the rule cannot be pointed at this secret.
                logger.warning(f"secret {name}: cannot resolve its ARN: {exc}")
                arns[name] = None
                continue
            arns[name] = info.arn if info.deleted is None else None
        return arns

    # --- the credentials gate ------------------------------------------------------------------------------------

    def _gate(self, change: RuleChange) -> _Result | None:
        """None when the change may go ahead; else why it is skipped and what to do."""
        want = change.desired
        if not change.sets_credentials or want is None or want.secret is None:
            return None
        key = (want.secret, want.upstream.key, want.spec.upstream_url)
        if key not in self._checks:
            self._checks[key] = credentials.check_secret(
                want.secret, want.upstream, want.spec.upstream_url, self.settings, rule=change.prefix
            )
        check = self._checks[key]
        if check.valid and want.spec.credential_arn is not None:
            return None
        if check.valid:
            return _Result(
                Outcome.SKIPPED,
                reason=f"secret {want.secret} was created while this run was planning",
                fix=f"nothing to do: the next reconcile {_VERB[change.action]} the rule",
                code="secret_new",
                exists=change.actual is not None,
            )
        return self._skipped(change, check)

    def _skipped(self, change: RuleChange, check: credentials.CredentialCheck) -> _Result:
        verb = _VERB[change.action]
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
        return _Result(
            Outcome.SKIPPED,
            reason=f"{what[change.action]}: {check.message}",
            fix=fix,
            code=f"secret_{detail}",
            exists=change.actual is not None,
        )

    # --- applying ------------------------------------------------------------------------------------------------

    def _apply(self, change: Change, attempt: int = 0) -> _Result | None:
        if change.action is Action.FORGET:
            self._forget(change.kind, change.prefix)
            return None
        if isinstance(change, RuleChange):
            return self._apply_rule(change, attempt)
        return self._apply_template(change, attempt)

    def _apply_rule(self, change: RuleChange, attempt: int) -> _Result:
        action = change.action
        if action is Action.KEEP:
            return _Result(Outcome.UNCHANGED, exists=True)
        if action is Action.FOREIGN:
            in_config = change.desired is not None
            reason = "created outside Pullthrough; " + (
                "matches the config, left as it is" if in_config else "not in the config: left alone"
            )
            return _Result(Outcome.NOT_OWNED, reason=reason, exists=in_config)
        if action is Action.CONFLICT:
            return self._conflict(change)
        if action in (Action.CREATE, Action.UPDATE, Action.REPLACE):
            skipped = self._gate(change)
            if skipped is not None:
                return skipped
        outcome = _OUTCOME_OF[action]
        if self.dry_run:
            return _Result(outcome, reason=change.reason or None, exists=change.actual is not None)
        try:
            self._write_rule(change)
        except (AwsAlreadyExists, AwsNotFound) as race:
            return self._settle_rule(change, race, attempt)
        except AwsError as exc:
            return _Result(
                Outcome.FAILED,
                reason=f"{change.action.value} failed: {exc}",
                fix=_aws_fix(exc),
                code=exc.code,
                exists=action is not Action.CREATE and change.actual is not None,
            )
        self.wrote = True
        result = _Result(outcome, reason=change.reason or None, exists=action is not Action.DELETE)
        if action in (Action.CREATE, Action.REPLACE) and not change.owned:
            self._record(Kind.RULE, change.prefix, result)
        if action is Action.DELETE:
            self._forget(Kind.RULE, change.prefix)
        return result

    def _write_rule(self, change: RuleChange) -> None:
        want = change.desired
        if change.action is Action.DELETE:
            ptc.delete_rule(change.prefix)
            return
        assert want is not None
        if change.action is Action.UPDATE:
            have = change.actual
            credential = want.spec.credential_arn
            role = want.spec.custom_role_arn
            ptc.update_rule(
                change.prefix,
                credential_arn=credential if have is None or credential != have.credential_arn else None,
                custom_role_arn=role if have is None or role != have.custom_role_arn else None,
            )
            return
        if change.action is Action.REPLACE:
            with contextlib.suppress(AwsNotFound):  # gone already: creating it is all that is left
                ptc.delete_rule(change.prefix)
            try:
                ptc.create_rule(want.spec)
            except (AwsAlreadyExists, AwsNotFound):
                raise
            except AwsError as exc:
                raise AwsError(
                    exc.operation,
                    exc.resource,
                    exc.code,
                    f"the rule was deleted for replacement, but creating it again failed: {exc}; pulls through "
                    f"{change.prefix}/ fail until the next reconcile creates it",
                ) from exc
            return
        ptc.create_rule(want.spec)

    def _settle_rule(self, change: RuleChange, race: AwsError, attempt: int) -> _Result:
        """Another run (or a person) got there between plan and apply: look again and finish the job, once."""
        current = ptc.describe_rule(change.prefix)
        again = plan_rule(change.prefix, change.desired, current, self._still_owned(Kind.RULE, change))
        note = f"changed by someone else between plan and apply ({race.code})"
        if again is None or again.action is Action.FORGET:
            self._forget(Kind.RULE, change.prefix)
            return _Result(Outcome.DELETED, reason=f"{note}: it was gone already")
        if again.action.writes and attempt > 0:
            return _Result(
                Outcome.SKIPPED,
                reason=f"{note}, twice: left for the next run",
                fix="nothing to do if it settles; if it keeps happening, find what else changes this rule",
                code="race",
                exists=current is not None,
            )
        result = self._apply_rule(again, attempt + 1)
        result.reason = _join(note, result.reason)
        return result

    def _conflict(self, change: RuleChange) -> _Result:
        region = self.settings.region
        if not change.owned:
            fix = (
                "Pullthrough changes only rules it created. To hand this one over, delete it (aws ecr "
                f"delete-pull-through-cache-rule --ecr-repository-prefix {change.prefix} --region {region}) and the "
                f"next reconcile creates it from the config; or change rule {change.prefix} in {CONFIG_FILE} to match"
            )
        else:
            fix = (
                f"set allow_replace: true on rule {change.prefix} in {CONFIG_FILE} to let reconcile delete and "
                f"recreate it (pulls through {change.prefix}/ fail for a moment; cached repositories stay), or "
                "change the config back to match"
            )
        return _Result(Outcome.CONFLICT, reason=change.reason, fix=fix, code="conflict", exists=True)

    def _apply_template(self, change: TemplateChange, attempt: int) -> _Result:
        action = change.action
        if action is Action.KEEP:
            return _Result(Outcome.UNCHANGED)
        if action is Action.FOREIGN:
            in_config = change.desired is not None
            reason = "created outside Pullthrough; " + (
                "matches the config, left as it is" if in_config else "not in the config: left alone"
            )
            return _Result(Outcome.NOT_OWNED, reason=reason)
        if action is Action.BLOCKED:
            return _Result(
                Outcome.SKIPPED,
                reason=f"left as it is: {change.reason}",
                fix=(
                    "deploy the stack (template.yaml gives reconcile_rules the role's ARN as TEMPLATE_ROLE_ARN), or "
                    f"give the template custom_role_arn in {CONFIG_FILE}"
                ),
                code="template_role",
            )
        if action is Action.CONFLICT:
            fix = (
                "Pullthrough changes only templates it created. To hand this one over, delete it (aws ecr "
                f"delete-repository-creation-template --prefix {change.prefix} --region {self.settings.region}) and "
                f"the next reconcile creates it from the config; or change the template in {CONFIG_FILE} to match"
            )
            return _Result(Outcome.CONFLICT, reason=change.reason, fix=fix, code="conflict")
        outcome = _OUTCOME_OF[action]
        if self.dry_run:
            return _Result(outcome, reason=change.reason or None)
        try:
            self._write_template(change)
        except (AwsAlreadyExists, AwsNotFound) as race:
            return self._settle_template(change, race, attempt)
        except AwsError as exc:
            return _Result(
                Outcome.FAILED, reason=f"{change.action.value} failed: {exc}", fix=_aws_fix(exc), code=exc.code
            )
        self.wrote = True
        result = _Result(outcome, reason=change.reason or None)
        if action in (Action.CREATE, Action.REPLACE) and not change.owned:
            self._record(Kind.TEMPLATE, change.prefix, result)
        if action is Action.DELETE:
            self._forget(Kind.TEMPLATE, change.prefix)
        if change.desired is not None:
            self.notes.append(
                "ECR applies a repository creation template only when it creates a repository: cache repositories "
                "that exist already keep their settings."
            )
        return result

    def _settle_template(self, change: TemplateChange, race: AwsError, attempt: int) -> _Result:
        """As `_settle_rule`, for a template."""
        current = ptc.describe_template(change.prefix)
        again = plan_template(change.prefix, change.desired, current, self._still_owned(Kind.TEMPLATE, change))
        note = f"changed by someone else between plan and apply ({race.code})"
        if again is None or again.action is Action.FORGET:
            self._forget(Kind.TEMPLATE, change.prefix)
            return _Result(Outcome.DELETED, reason=f"{note}: it was gone already")
        if again.action.writes and attempt > 0:
            return _Result(Outcome.SKIPPED, reason=f"{note}, twice: left for the next run", code="race")
        result = self._apply_template(again, attempt + 1)
        result.reason = _join(note, result.reason)
        return result

    def _write_template(self, change: TemplateChange) -> None:
        if change.action is Action.DELETE:
            ptc.delete_template(change.prefix)
            return
        assert change.desired is not None
        if change.action is Action.UPDATE:
            ptc.update_template(change.desired)
            return
        if change.action is Action.REPLACE:
            with contextlib.suppress(AwsNotFound):
                ptc.delete_template(change.prefix)
        ptc.create_template(change.desired)

    # --- ownership -----------------------------------------------------------------------------------------------

    def _record(self, kind: Kind, prefix: str, result: _Result) -> None:
        if not self.table:
            return
        try:
            ownership.record(self.table, kind, prefix, self.settings.stack_name)
        except AwsError as exc:
            result.reason = _join(
                result.reason, f"recording it as Pullthrough's failed ({exc}): until it is, it counts as not owned"
            )
            result.severity = Severity.WARNING

    def _still_owned(self, kind: Kind, change: Change) -> bool:
        """Ownership read again: a concurrent run that created the resource may have recorded it meanwhile."""
        if change.owned or not self.table:
            return change.owned
        try:
            return ownership.owned(self.table).has(kind, change.prefix)
        except AwsError:
            return False

    def _forget(self, kind: Kind, prefix: str) -> None:
        if not self.table or self.dry_run:
            return
        try:
            ownership.forget(self.table, kind, prefix)
        except AwsError as exc:
            logger.warning(f"{kind.value} {prefix}: its ownership record could not be removed: {exc}")
            return
        self.notes.append(f"Forgot the ownership record of {kind.value} {prefix}: it is gone from the account.")

    # --- validation and the report -------------------------------------------------------------------------------

    def _rule_item(self, change: RuleChange, result: _Result | None) -> ReportItem | None:
        if result is None:
            return None
        want, have = change.desired, change.actual
        secret = want.secret if want else None
        upstream = want.upstream.key if want else (have.upstream_registry if have else None)
        reason = self._with_drift(Kind.RULE, change, result)
        fix, code, severity, outcome = result.fix, result.code, result.severity, result.outcome
        valid: bool | None = None
        if want is not None and want.secret and result.exists and outcome is not Outcome.FAILED:
            valid, failure = self._validate(change.prefix)
            if valid is False:
                problem = f"ECR says the rule is not valid: {failure or 'no reason given'}"
                reason = "; ".join(part for part in (reason, problem) if part)
                fix = fix or (
                    f"store a working token in {want.secret} (`pullthrough credentials set {change.prefix}`, or aws "
                    f"secretsmanager put-secret-value --secret-id {want.secret} --secret-string "
                    f"'{SECRET_VALUE_SHAPE}'), then check with aws ecr validate-pull-through-cache-rule "
                    f"--ecr-repository-prefix {change.prefix} --region {self.settings.region}"
                )
                code = code or "rule_invalid"
                if outcome in (Outcome.UNCHANGED, Outcome.NOT_OWNED):
                    outcome = Outcome.INVALID
                else:
                    severity = Severity.FAILURE
            elif valid is None and failure:
                reason = "; ".join(part for part in (reason, failure) if part)
        item: dict[str, Any] = {
            "subject": f"rule {change.prefix}",
            "outcome": outcome,
            "reason": reason or None,
            "fix": fix,
            "reason_code": code,
            "details": Details(
                rule=change.prefix,
                upstream=upstream,
                secret=secret,
                valid=valid,
                changes=change.differences or None,
            ),
        }
        if severity is not None:
            item["severity"] = severity
        return ReportItem(**item)

    def _template_item(self, change: TemplateChange, result: _Result | None) -> ReportItem | None:
        if result is None:
            return None
        item: dict[str, Any] = {
            "subject": f"template {change.prefix}",
            "outcome": result.outcome,
            "reason": self._with_drift(Kind.TEMPLATE, change, result) or None,
            "fix": result.fix,
            "reason_code": result.code,
            "details": Details(changes=change.differences or None),
        }
        if result.severity is not None:
            item["severity"] = result.severity
        return ReportItem(**item)

    def _with_drift(self, kind: Kind, change: Change, result: _Result) -> str:
        """The item's reason, saying who changed the rule or template outside Pullthrough, when the trigger tells."""
        drift = self.trigger.drift(kind, change.prefix)
        reason = result.reason or ""
        rest = reason.replace(DELETED_OUTSIDE, "").strip("; ")
        if result.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED):
            verb = "recreated" if result.outcome is Outcome.CREATED else "restored"
            if drift:
                return _join(f"{verb}: {drift}", rest)
            if DELETED_OUTSIDE in reason:
                return _join(f"{verb}: {DELETED_OUTSIDE}", rest)
        if drift:
            return _join(reason, f"the trigger: {drift}")
        return reason

    def _validate(self, prefix: str) -> tuple[bool | None, str | None]:
        try:
            answer = ptc.validate_rule(prefix)
        except AwsError as exc:
            return None, f"could not ask ECR to validate the rule: {exc}"
        return answer.is_valid, answer.failure

    # --- the event that starts warming ---------------------------------------------------------------------------

    def _announce(
        self,
        desired: Sequence[DesiredRule],
        results: Mapping[tuple[Kind, str], _Result | None],
        items: Sequence[ReportItem | None],
    ) -> None:
        # A deploy may have changed only the warm list, which rules do not see: it always starts warming.
        if self.dry_run or not (self.wrote or self.trigger.kind is TriggerKind.DEPLOY):
            return
        invalid = {item.details.rule for item in items if item is not None and item.details.valid is False}
        ready = []
        for rule in desired:
            result = results.get((Kind.RULE, rule.spec.prefix))
            if result is not None and result.exists and rule.spec.prefix not in invalid:
                ready.append(rule.spec.prefix)
        try:
            self.event_id = events.put_rules_reconciled(
                self.settings.stack_name, self.run_id, ready, bus=self.settings.event_bus
            )
        except AwsError as exc:
            logger.error(f"the rules-reconciled event could not be sent: {exc}")
            self.notes.append(
                f"The event that starts warming could not be sent ({exc.code}); warming runs on its schedule instead."
            )


_VERB = {Action.CREATE: "creates", Action.UPDATE: "re-points", Action.REPLACE: "replaces"}
_OUTCOME_OF = {
    Action.CREATE: Outcome.CREATED,
    Action.UPDATE: Outcome.UPDATED,
    Action.REPLACE: Outcome.REPLACED,
    Action.DELETE: Outcome.DELETED,
}


def _join(*parts: str | None) -> str:
    return "; ".join(part for part in parts if part)


def _aws_fix(exc: AwsError) -> str:
    if exc.code in ("AccessDeniedException", "AccessDenied") or "AccessDenied" in exc.code:
        return f"grant {exc.operation} to the reconcile function's role in template.yaml"
    return "the next reconcile retries; if it keeps failing, check the rule in the ECR console"


def _item_line(item: ReportItem) -> str:
    text = f"{item.subject}: {item.outcome.label}"
    if item.reason:
        text += f": {item.reason}"
    if item.details.valid is not None:
        text += f" [{'valid' if item.details.valid else 'invalid'}]"
    if item.fix:
        text += f". Fix: {item.fix}"
    return text
