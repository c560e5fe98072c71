"""The hub's registry policy, reconciled like the rules: the organisation's statements as the config says, drift
repaired, nothing else in the policy touched.

    config.organization --registry_policy_statements--> desired
    GetRegistryPolicy --------------------------------> current
    plan_policy(desired, current) --> one StatementChange per Pullthrough statement, and the document to put

A statement whose Sid starts with PullthroughOrg is Pullthrough's (pullthrough.config.organization.SID_PREFIX): it is
added, replaced or removed to match the config. Every other statement is kept as it is, in its place. The policy is
deleted (DeleteRegistryPolicy) only when no statement would remain and every statement it had was Pullthrough's.

Only the hub writes its statements: in another account or region (or with no organization in the config) the desired
set is empty, so statements a hub once wrote here are removed, and an organisation dropped from the config loses its
access at the next reconcile. Statements compare by meaning (IAM reads "ecr:X" and ["ecr:X"] alike, and the order of
a list of actions or values does not matter), so a policy another tool re-serialised is not rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pullthrough.aws import registry_policy as adapter
from pullthrough.config.organization import SID_PREFIX, partition_of
from pullthrough.errors import AwsAccessDenied, AwsError
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["PolicyPlan", "StatementChange", "desired_statements", "is_pullthroughs", "plan_policy", "reconcile_policy"]

VERSION = "2012-10-17"
_SCALARS = ("Sid", "Effect", "Version")


@dataclass(frozen=True)
class StatementChange:
    """What happens to one Pullthrough statement: created, updated (drift repaired), deleted or unchanged."""

    sid: str
    outcome: Outcome
    desired: dict[str, Any] | None
    actual: dict[str, Any] | None
    differences: tuple[str, ...] = ()

    @property
    def prefix(self) -> str | None:
        """The cached prefix the statement is for (its Resource's repository/<prefix>/*), when it is desired."""
        resource = str((self.desired or {}).get("Resource", ""))
        return resource.split(":repository/", 1)[1].removesuffix("/*") if ":repository/" in resource else None


@dataclass(frozen=True)
class PolicyPlan:
    """Every Pullthrough statement's change, and the policy to leave: `document`, or none at all (`delete`)."""

    changes: tuple[StatementChange, ...]
    current: dict[str, Any] | None
    document: dict[str, Any] | None

    @property
    def writes(self) -> bool:
        """Whether the policy must be written (or deleted)."""
        return any(change.outcome is not Outcome.UNCHANGED for change in self.changes)

    @property
    def delete(self) -> bool:
        """Whether the policy goes: nothing would remain, and all it had was Pullthrough's."""
        return self.writes and self.document is None


def is_pullthroughs(statement: Any) -> bool:
    """Whether a statement is Pullthrough's: its Sid starts with PullthroughOrg."""
    return isinstance(statement, dict) and str(statement.get("Sid", "")).startswith(SID_PREFIX)


def desired_statements(config: Config, account: str, region: str) -> tuple[list[dict[str, Any]], str | None]:
    """The statements this account and region's policy should hold, and a note when the config's hub is elsewhere."""
    org = config.organization
    if org is None:
        return [], None
    if (org.hub.account, org.hub.region) != (account, region):
        return [], (
            f"organization.hub is {org.hub.account} in {org.hub.region}, but this stack runs in {account}, {region}: "
            "the hub's registry policy is reconciled only by the stack in the hub account and region (statements "
            "Pullthrough wrote here are removed); deploy the hub stack there, or correct organization.hub"
        )
    return org.registry_policy_statements(config, partition_of(region)), None


def statements_of(document: dict[str, Any] | None) -> list[Any]:
    """A policy's statements as a list (IAM allows a single statement object)."""
    if document is None:
        return []
    found = document.get("Statement", [])
    return list(found) if isinstance(found, list) else [found]


def plan_policy(desired: Sequence[dict[str, Any]], current: dict[str, Any] | None) -> PolicyPlan:
    """What to do with each Pullthrough statement of `current` to make them `desired`; the others stay as they are."""
    statements = statements_of(current)
    ours: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        if is_pullthroughs(statement):
            ours.setdefault(str(statement["Sid"]), []).append(statement)
    changes = [_change(want, ours.get(str(want["Sid"]), [])) for want in desired]
    wanted = {str(want["Sid"]) for want in desired}
    changes += [
        StatementChange(sid, Outcome.DELETED, None, found[0]) for sid, found in ours.items() if sid not in wanted
    ]
    kept = [statement for statement in statements if not is_pullthroughs(statement)]
    if not kept and not desired:
        return PolicyPlan(tuple(changes), current, None)
    document: dict[str, Any] = dict(current) if current is not None else {"Version": VERSION}
    document.setdefault("Version", VERSION)
    document["Statement"] = kept + [dict(want) for want in desired]
    return PolicyPlan(tuple(changes), current, document)


def _change(want: dict[str, Any], found: list[dict[str, Any]]) -> StatementChange:
    sid = str(want["Sid"])
    if not found:
        return StatementChange(sid, Outcome.CREATED, want, None)
    differences = tuple(
        key
        for key in sorted(set(want) | set(found[0]))
        if _canonical(want.get(key), key) != _canonical(found[0].get(key), key)
    )
    if len(found) > 1:
        differences += (f"Sid {sid} appears {len(found)} times",)
    outcome = Outcome.UPDATED if differences else Outcome.UNCHANGED
    return StatementChange(sid, outcome, want, found[0], differences)


def _canonical(value: Any, key: str = "") -> Any:
    """A statement's value as IAM reads it: a string where a list may stand is a list of one, lists are sets, and
    a Principal of "*" is {"AWS": "*"} (IAM User Guide, "AWS JSON policy elements: Principal")."""
    if key == "Principal" and value == "*":
        value = {"AWS": "*"}
    if isinstance(value, dict):
        return {name: _canonical(inner, name) for name, inner in sorted(value.items())}
    if isinstance(value, list):
        items = [item if isinstance(item, str) else _canonical(item) for item in value]
        return sorted(set(items)) if all(isinstance(item, str) for item in items) else items
    if isinstance(value, str) and key not in _SCALARS:
        return [value]
    return value


def reconcile_policy(config: Config, account: str, region: str, *, dry_run: bool) -> tuple[list[ReportItem], list[str]]:
    """Bring this registry's Pullthrough statements in line with the config; one report item per statement, and
    notes. A dry run plans and writes nothing."""
    desired, note = desired_statements(config, account, region)
    notes = [note] if note else []
    try:
        current = adapter.get_policy(region)
    except AwsError as exc:
        if not desired:
            return [], [
                *notes,
                f"The registry policy could not be read ({exc.code}): its PullthroughOrg statements were not checked.",
            ]
        return [_failed(str(want["Sid"]), f"reading the registry policy failed: {exc}", exc) for want in desired], notes
    the_plan = plan_policy(desired, current)
    if dry_run or not the_plan.writes:
        return [_item(change) for change in the_plan.changes], notes
    error = _write(the_plan, region)
    if error is not None:
        return [
            _failed(change.sid, f"{change.outcome.label} failed: {error}", error)
            if change.outcome is not Outcome.UNCHANGED
            else _item(change)
            for change in the_plan.changes
        ], notes
    return [_item(change) for change in the_plan.changes], notes


def _write(the_plan: PolicyPlan, region: str) -> AwsError | None:
    try:
        if the_plan.document is None:
            adapter.delete_policy(region)
            return None
        text = adapter.policy_text(the_plan.document)
        if len(text) > adapter.POLICY_TEXT_MAX:
            return AwsError(
                "ecr:PutRegistryPolicy",
                "the registry's policy",
                "PolicyTooLarge",
                f"the policy would be {len(text)} characters, over ECR's {adapter.POLICY_TEXT_MAX}",
            )
        adapter.put_policy(the_plan.document, region)
    except AwsError as exc:
        return exc
    return None


_REASONS = {
    Outcome.CREATED: "the organisation may now import {prefix}/* from this registry",
    Outcome.UPDATED: "restored: the statement differed from the config ({differences})",
    Outcome.DELETED: "no longer in the config (organization.cache, or the organization itself): access withdrawn",
}


def _item(change: StatementChange) -> ReportItem:
    template = _REASONS.get(change.outcome)
    reason = template.format(prefix=change.prefix, differences=", ".join(change.differences)) if template else None
    return ReportItem(
        subject=f"hub policy {change.sid}",
        outcome=change.outcome,
        reason=reason,
        details=Details(rule=change.prefix, changes=change.differences or None),
    )


def _failed(sid: str, reason: str, error: AwsError) -> ReportItem:
    if error.code == "PolicyTooLarge":
        fix = "cache fewer prefixes (organization.cache), or move other statements out of the registry policy"
    elif isinstance(error, AwsAccessDenied):
        fix = (
            f'grant {error.operation} (Resource "*": the action has no resource type) to the reconcile function\'s '
            "role (template.yaml), then reconcile again"
        )
    else:
        fix = (
            "check the registry policy's other statements (aws ecr get-registry-policy), which Pullthrough keeps as "
            "they are, then reconcile again"
        )
    return ReportItem(
        subject=f"hub policy {sid}", outcome=Outcome.FAILED, reason=reason, fix=fix, reason_code=error.code[:64]
    )
