"""The words of a report: which run (Kind), its verdict (Status), how much an item needs the reader (Severity), and
what happened to one subject (Outcome).

Separate from the model so the metrics (observability.py) and every run's builder share one vocabulary with the
report, and so the order of outcomes, which every table and summary follows, is declared once.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Kind(StrEnum):
    """Which run produced the report."""

    RULES = "rules"
    CREDENTIALS = "credentials"
    WARM = "warm"
    PULLS = "pulls"  # pulls that failed in ECR, from its "ECR Pull Through Cache Action" events
    PRUNE = "prune"  # cached images nobody pulled for `prune.unused_for_days`, deleted (or, in a dry run, listed)
    ORG = "org"  # the hub's report of one warm cycle across the organisation's member accounts and regions


class Status(StrEnum):
    """The report's verdict: FAILED when any item failed, WARNING when any needs attention, else OK."""

    OK = "OK"
    WARNING = "WARNING"
    FAILED = "FAILED"


class Severity(StrEnum):
    """How much an item needs the reader: ok (nothing to do), warning (look at it), failure (act on it)."""

    OK = "ok"
    WARNING = "warning"
    FAILURE = "failure"


class Outcome(StrEnum):
    """What happened to one subject. The declaration order is the order of every table and summary."""

    # rules and repository-creation templates
    CREATED = "created"
    UPDATED = "updated"
    REPLACED = "replaced"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    NOT_OWNED = "not_owned"  # a rule or template Pullthrough did not create: reported, never touched
    CONFLICT = "conflict"  # config and account disagree on an immutable field and replacement is not allowed
    SKIPPED = "skipped"  # not attempted, e.g. its secret failed the credentials gate
    # credentials
    VALID = "valid"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"  # the upstream could not be asked; validity unknown
    EXPIRING = "expiring"  # valid today, expires within the configured warning window
    ROTATED = "rotated"
    ROTATION_FAILED = "rotation_failed"  # the pending value was refused; AWSCURRENT kept the old one
    # warm
    WARMED = "warmed"
    ALREADY_CACHED = "already_cached"
    REFRESHED = "refreshed"
    DEFERRED = "deferred"  # did not fit this run's share of the upstream pull budget
    FAILED = "failed"
    # prune
    PRUNED = "pruned"  # deleted: nobody pulled it for prune.unused_for_days
    WOULD_PRUNE = "would_prune"  # a dry run's deletion
    KEPT = "kept"  # unpulled as long, but the warm list, prune.keep or an index still needs it
    # org (the hub's report of a warm cycle): one item per member account and region
    REPORTED = "reported"  # the member's warm report reached the hub for the cycle
    MISSING = "missing"  # no report from the member by the cycle's deadline

    @property
    def label(self) -> str:
        """The outcome as words for people ("already cached")."""
        return self.value.replace("_", " ")

    @property
    def severity(self) -> Severity:
        """The severity an item with this outcome has unless its builder says otherwise."""
        return _DEFAULT_SEVERITY.get(self, Severity.OK)


_DEFAULT_SEVERITY: dict[Outcome, Severity] = {
    Outcome.CONFLICT: Severity.WARNING,
    Outcome.SKIPPED: Severity.WARNING,
    Outcome.UNREACHABLE: Severity.WARNING,
    Outcome.EXPIRING: Severity.WARNING,
    Outcome.DEFERRED: Severity.WARNING,
    Outcome.INVALID: Severity.FAILURE,
    Outcome.ROTATION_FAILED: Severity.FAILURE,
    Outcome.FAILED: Severity.FAILURE,
    Outcome.MISSING: Severity.FAILURE,
}
SEVERITY_RANK = {Severity.FAILURE: 0, Severity.WARNING: 1, Severity.OK: 2}
_OUTCOME_RANK = {outcome: index for index, outcome in enumerate(Outcome)}
CHANGE_OUTCOMES = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED, Outcome.DELETED})


def ordered(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Outcomes in table order: problems first (failures, then warnings), then in declaration order."""
    return sorted(set(outcomes), key=lambda o: (SEVERITY_RANK[o.severity], _OUTCOME_RANK[o]))
