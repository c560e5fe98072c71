"""What happened to one rule or template in a run (`Result`), as the gate, apply and the ownership records say it.

Separate because four parts of a run write to it (the credentials gate, apply, the ownership records, the race
settling) and the report reads it: each imports this small module, not one another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pullthrough.reporting.vocabulary import Outcome, Severity

__all__ = ["Result", "join"]


@dataclass
class Result:
    """What happened to one rule or template."""

    outcome: Outcome
    reason: str | None = None
    fix: str | None = None
    code: str | None = None
    exists: bool = False  # the rule is in the account after the run (and can be validated)
    severity: Severity | None = None


def join(*parts: str | None) -> str:
    """The parts that say something, joined as one reason."""
    return "; ".join(part for part in parts if part)
