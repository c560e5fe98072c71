"""Whom the hub waits for in a warm cycle: every member account and region that runs a warm cycle.

They are the members' warm targets (org/targets.py), the same accounts and regions the hub's planner warms. When the
StackSet's instances cannot be listed, the hub waits for the listed accounts only and its report says that members of
those OUs that did not report cannot be named, and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pullthrough.aws.stacksets import StackInstance
from pullthrough.org.targets import warm_targets

if TYPE_CHECKING:
    from pullthrough.config import Config

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
    """The members the hub waits for in a cycle: the members' warm targets (org/targets.py)."""
    if config.organization is None:
        return Expected()
    targets = warm_targets(config, instances)
    members = {(t.account, t.region): t.member.name for t in targets.found}
    note = targets.not_listed(
        stack_set, "are known only when they report: one that did not cannot be named here", "gather_reports"
    )
    return Expected(members, (note,) if note else ())
