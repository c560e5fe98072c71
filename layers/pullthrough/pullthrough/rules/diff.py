"""The plan: one generic diff decides, for every rule and every template, what the run does with it (pure).

    wanted? exists? owned? what differs (differences.py) --decide()--> create, update, replace, delete, keep,
    conflict, foreign (not Pullthrough's: reported, never touched), forget (a record of something gone)

Rules and templates differ only in their fields and in why an update cannot apply a difference (a rule field ECR
cannot update unless the rule allows replacement; a template field an update cannot clear): `Comparison` carries
that, and `decide` is the one place the ownership promise is kept: only what Pullthrough owns is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from pullthrough.aws.ownership import Kind, Owned
from pullthrough.aws.ptc import RuleSpec, Snapshot, TemplateSpec
from pullthrough.rules.desired import DesiredRule
from pullthrough.rules.differences import rule_differences, template_differences, template_settings

__all__ = [
    "DELETED_OUTSIDE",
    "Action",
    "Change",
    "Comparison",
    "Decision",
    "Plan",
    "RuleChange",
    "TemplateChange",
    "decide",
    "plan",
    "plan_rule",
    "plan_template",
]

DELETED_OUTSIDE = "it was deleted outside Pullthrough"
CREATED_OUTSIDE = "created outside Pullthrough"


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


# --- the one diff --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """What differs between the config's rule or template and the account's, and whether an update can apply it."""

    differences: tuple[str, ...] = ()
    replace_reason: str | None = None  # why only a delete and create applies the differences (None: an update can)
    replace_refused: str | None = None  # why that replacement may not happen (None: it may)


@dataclass(frozen=True)
class Decision:
    """What to do with one rule or template, and why."""

    action: Action
    differences: tuple[str, ...] = ()
    reason: str = ""


Want = TypeVar("Want")
Have = TypeVar("Have")


def decide(
    want: Want | None, have: Have | None, owned: bool, compare: Callable[[Want, Have], Comparison]
) -> Decision | None:
    """The decision for one prefix, rule or template alike (None when there is nothing to say about it)."""
    if have is None:
        if want is not None:
            return Decision(Action.CREATE, reason=DELETED_OUTSIDE if owned else "")
        return Decision(Action.FORGET) if owned else None
    if want is None:
        if owned:
            return Decision(Action.DELETE, reason="no longer in the config")
        return Decision(Action.FOREIGN, reason=CREATED_OUTSIDE)
    return _differing(compare(want, have), owned)


def _differing(found: Comparison, owned: bool) -> Decision:
    """Configured and in the account: keep, update, replace, or leave alone when it is not Pullthrough's to change."""
    if not owned:
        if found.differences:
            return Decision(Action.CONFLICT, found.differences, f"{CREATED_OUTSIDE} and different from the config")
        return Decision(Action.FOREIGN, reason=CREATED_OUTSIDE)
    if not found.differences:
        return Decision(Action.KEEP)
    if found.replace_reason is None:
        return Decision(Action.UPDATE, found.differences)
    if found.replace_refused is not None:
        return Decision(Action.CONFLICT, found.differences, found.replace_refused)
    return Decision(Action.REPLACE, found.differences, found.replace_reason)


def compare_rules(want: DesiredRule, have: RuleSpec) -> Comparison:
    """A rule's differences: a field ECR cannot update needs a replacement, which the rule must allow."""
    immutable, mutable = rule_differences(want, have)
    if not immutable:
        return Comparison(tuple(mutable))
    refused = None if want.allow_replace else "ECR cannot update these fields and the rule does not allow replacement"
    return Comparison((*immutable, *mutable), "ECR cannot update these fields", refused)


def compare_templates(want: TemplateSpec, have: TemplateSpec) -> Comparison:
    """A template's differences: a field the config removes needs a replacement (an update cannot clear it)."""
    differences, clears = template_differences(want, have)
    return Comparison(tuple(differences), "an update cannot remove " + ", ".join(clears) if clears else None)


def plan_rule(prefix: str, want: DesiredRule | None, have: RuleSpec | None, owned: bool) -> RuleChange | None:
    """The change for one rule prefix (None when there is nothing to say about it)."""
    decision = decide(want, have, owned, compare_rules)
    if decision is None:
        return None
    action = decision.action
    sets_credentials = want is not None and bool(want.secret) and action in (Action.CREATE, Action.REPLACE)
    if want is not None and want.secret and action is Action.UPDATE and have is not None:
        sets_credentials = want.spec.credential_arn != have.credential_arn
    return RuleChange(
        prefix, action, want, have, owned, decision.differences, decision.reason, sets_credentials=sets_credentials
    )


def plan_template(
    prefix: str, want: TemplateSpec | None, have: TemplateSpec | None, owned: bool
) -> TemplateChange | None:
    """The change for one template prefix (None when there is nothing to say about it)."""
    decision = decide(want, have, owned, compare_templates)
    if decision is None:
        return None
    differences = decision.differences
    if decision.action is Action.CREATE and want is not None:
        differences = template_settings(want)  # what it sets, as there is nothing to differ from
    return TemplateChange(prefix, decision.action, want, have, owned, differences, decision.reason)


# --- the plan of a run ---------------------------------------------------------------------------------------------


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
