"""The ownership records as a run uses them: read once, written after a create, read again in a race, forgotten.

Pullthrough changes only the rules and templates it created (aws/ownership.py says why ownership lives in the
ledger table). Separate from apply because this is the ownership promise in one place: a dry run forgets nothing,
a failed record is said in the report (until it is written the resource counts as not owned), and a function
without a ledger table says that it cannot know what it owns.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullthrough.aws import ownership
from pullthrough.aws.ownership import Kind, Owned
from pullthrough.errors import AwsError
from pullthrough.observability import logger
from pullthrough.reporting.vocabulary import Severity
from pullthrough.rules.diff import Change
from pullthrough.rules.result import Result, join

__all__ = ["Records"]


@dataclass
class Records:
    """A run's view of the ownership records (`table` None: none configured)."""

    table: str | None
    stack_name: str
    dry_run: bool
    notes: list[str]  # the run's report notes, shared

    def owned(self) -> Owned:
        """What Pullthrough owns, as the run starts."""
        if not self.table:
            self.notes.append(
                "No ledger table is configured (LEDGER_TABLE), so ownership cannot be recorded or read: missing "
                "rules and templates are created, but every existing one counts as not created by Pullthrough and "
                "is never changed or deleted."
            )
            return Owned()
        return ownership.owned(self.table)

    def record(self, kind: Kind, prefix: str, result: Result) -> None:
        """Record a rule or template the run created as Pullthrough's; a failure is said in its result."""
        if not self.table:
            return
        try:
            ownership.record(self.table, kind, prefix, self.stack_name)
        except AwsError as exc:
            result.reason = join(
                result.reason, f"recording it as Pullthrough's failed ({exc}): until it is, it counts as not owned"
            )
            result.severity = Severity.WARNING

    def still_owned(self, kind: Kind, change: Change) -> bool:
        """Ownership read again: a concurrent run that created the resource may have recorded it meanwhile."""
        if change.owned or not self.table:
            return change.owned
        try:
            return ownership.owned(self.table).has(kind, change.prefix)
        except AwsError:
            return False

    def forget(self, kind: Kind, prefix: str) -> None:
        """Remove the record of something gone from the account (never in a dry run)."""
        if not self.table or self.dry_run:
            return
        try:
            ownership.forget(self.table, kind, prefix)
        except AwsError as exc:
            logger.warning(f"{kind.value} {prefix}: its ownership record could not be removed: {exc}")
            return
        self.notes.append(f"Forgot the ownership record of {kind.value} {prefix}: it is gone from the account.")
