"""Which member accounts and regions run a warm cycle: the members with a warm list, each account in each region.

A member without a warm list has no warm cycle (nothing is warmed there, nothing is reported). The accounts of a
member with one:

- `accounts`: listed in the config, each in each of the member's regions;
- `organizational_units`: the accounts are the organisation's, not the config's: the members' StackSet's instances
  (ListStackInstances on `pullthrough-members-<Stage>`) name them, each (account, region) attributed to the member
  whose OU the instance was deployed for. An instance is exactly where the member template, and so its warm role,
  exists; its status says whether it is up to date.

The hub's planner (warm/members.py) warms these targets and its gatherer (org/expected.py) waits for their reports:
one resolution, so both count the same accounts. The first member naming an (account, region) owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pullthrough.aws.stacksets import StackInstance
from pullthrough.errors import AwsError

if TYPE_CHECKING:  # annotations only: gather_reports' import stays free of the config's models
    from pullthrough.config import Config
    from pullthrough.config.organization import Member


@dataclass(frozen=True)
class Target:
    """One member account and region; `instance` when it came from the StackSet (an organisational unit's)."""

    member: Member
    account: str
    region: str
    instance: StackInstance | None = None


@dataclass(frozen=True)
class Targets:
    """The targets; the units whose accounts are unknown because the StackSet could not be listed, and why."""

    found: tuple[Target, ...]
    unresolved: tuple[str, ...] = ()
    error: AwsError | None = None

    def not_listed(self, stack_set: str, consequence: str, who: str) -> str | None:
        """The note naming what the StackSet's refusal cost (`consequence`) and the fix, or None when it was read."""
        if self.error is None:
            return None
        return (
            f"the members' StackSet {stack_set} could not be listed ({self.error.code}: {self.error.message}), so "
            f"the accounts of {', '.join(self.unresolved)} {consequence}. Fix: give {who} "
            f"cloudformation:ListStackInstances on {stack_set} (template.yaml does when the hub deploys the StackSet), "
            "or list the accounts under the member's `accounts`."
        )


def warm_targets(config: Config, instances: Callable[[], Sequence[StackInstance]]) -> Targets:
    """Every member (account, region) with a warm list: listed accounts x regions, then the StackSet's instances for
    organisational units (`instances` is called only when a member with a warm list names a unit)."""
    organization = config.organization
    members = [member for member in (organization.members if organization else ()) if member.warm]
    found: dict[tuple[str, str], Target] = {}
    for target in (Target(m, account, region) for m in members for account in m.accounts for region in m.regions):
        found.setdefault((target.account, target.region), target)
    by_ou: dict[str, list[Member]] = {}
    for member in members:
        for ou in member.organizational_units:
            by_ou.setdefault(ou, []).append(member)
    if not by_ou:
        return Targets(tuple(found.values()))
    try:
        listed = instances()
    except AwsError as exc:
        return Targets(tuple(found.values()), tuple(sorted(by_ou)), exc)
    for instance in listed:
        for member in by_ou.get(instance.organizational_unit or "", ()):
            if instance.region in member.regions:
                found.setdefault(
                    (instance.account, instance.region), Target(member, instance.account, instance.region, instance)
                )
    return Targets(tuple(found.values()))
