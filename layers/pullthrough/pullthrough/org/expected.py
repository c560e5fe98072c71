"""Whom the hub waits for in a warm cycle: every member account and region that runs a warm cycle.

A member runs a planner and a warmer only when its `organization.members` entry has a warm list (the member
template), so only those members report a warm cycle; a member without one has no cycle to report and is not waited
for. Their accounts:

- `accounts`: listed in the config, each expected in each of the member's regions;
- `organizational_units`: the accounts are the organisation's, not the config's: the StackSet's instances
  (ListStackInstances on `pullthrough-members-<Stage>`) name them, each (account, region) attributed to the member
  whose OU the instance was deployed for. When the instances cannot be listed, the hub waits for the listed accounts
  only and its report says that members of those OUs that did not report cannot be named, and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pullthrough.aws.stacksets import StackInstance
from pullthrough.errors import AwsError

if TYPE_CHECKING:
    from pullthrough.config import Config
    from pullthrough.config.organization import Member

Where = tuple[str, str]  # (account, region)


@dataclass(frozen=True)
class Expected:
    """The (account, region) pairs the hub waits for, each with its member's name; and what it could not find out."""

    members: dict[Where, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def missing(self, reported: set[Where]) -> list[Where]:
        """The expected pairs not in `reported`, in order."""
        return sorted(where for where in self.members if where not in reported)

    def complete(self, reported: set[Where]) -> bool:
        """Every expected pair has reported (and at least one is expected)."""
        return bool(self.members) and all(where in reported for where in self.members)


def expected(config: Config, instances: Callable[[], Sequence[StackInstance]], stack_set: str) -> Expected:
    """The members the hub waits for in a cycle: listed accounts x regions, and the StackSet's instances for OUs."""
    organization = config.organization
    if organization is None:
        return Expected()
    members: dict[Where, str] = {}
    by_ou: dict[str, list[Member]] = {}
    for member in organization.members:
        if not member.warm:
            continue  # no warm list: no planner in the member, no cycle to report
        for account in member.accounts:
            for region in member.regions:
                members.setdefault((account, region), member.name)
        for ou in member.organizational_units:
            by_ou.setdefault(ou, []).append(member)
    if not by_ou:
        return Expected(members)
    return _with_instances(members, by_ou, instances, stack_set)


def _with_instances(
    members: dict[Where, str],
    by_ou: dict[str, list[Member]],
    instances: Callable[[], Sequence[StackInstance]],
    stack_set: str,
) -> Expected:
    """`members` and each StackSet instance deployed for a member's OU in one of its regions."""
    try:
        found = instances()
    except AwsError as exc:
        units = ", ".join(sorted(by_ou))
        note = (
            f"the members' StackSet {stack_set} could not be listed ({exc.code}: {exc.message}), so the accounts of "
            f"{units} are known only when they report: one that did not cannot be named here. Fix: give "
            f"gather_reports cloudformation:ListStackInstances on {stack_set} (template.yaml does when the hub deploys "
            "the StackSet), or list the accounts under the member's `accounts`."
        )
        return Expected(members, (note,))
    for instance in found:
        for member in by_ou.get(instance.organizational_unit or "", ()):
            if instance.region in member.regions:
                members.setdefault((instance.account, instance.region), member.name)
    return Expected(members)
