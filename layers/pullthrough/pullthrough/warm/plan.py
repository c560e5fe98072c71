"""What a plan is made of: the image tags to decide about (Candidate), the ones that need a job (Wanted), the outcomes
known at planning time (Decided), and the planned run itself (Plan).

Separate from the planner because selection, decisions, the budget and the ledger all speak these few types; each
stage takes and returns them, and none needs the others' code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pullthrough.aws.ledger import Verified
from pullthrough.config import Rule
from pullthrough.reference import ImageReference, upstream_repository
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.job import WarmJob


@dataclass(frozen=True)
class Candidate:
    """One image tag to decide about."""

    reference: ImageReference  # with its tag, and the pinned digest when the config gives one for this tag
    rule: Rule
    repository: str
    platforms: tuple[str, ...]
    source: str | None = None  # the warm.sources entry naming it; None for warm.images (which wins when both do)

    @property
    def tag(self) -> str:
        return self.reference.tag or ""

    @property
    def key(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def subject(self) -> str:
        return f"{self.reference.name}:{self.tag}"

    @property
    def upstream_repository(self) -> str:
        return upstream_repository(self.reference)


@dataclass(frozen=True)
class Wanted:
    """A candidate that needs a job: ECR lacks it (warm), holds an old digest (refresh) or lacks blobs (complete)."""

    candidate: Candidate
    action: Literal["warm", "refresh", "complete"]
    cost: int
    expected_digest: str | None = None
    previous_digest: str | None = None
    order: int = 0


@dataclass(frozen=True)
class Decided:
    """An outcome known at planning time, under its ledger key."""

    key: str
    item: ReportItem


@dataclass(frozen=True)
class Expanded:
    """What a request names, expanded: the candidates to decide, the targets already decided (failed to expand,
    left to an open run), and the notes expansion wrote."""

    candidates: list[Candidate]
    decided: list[Decided]
    notes: list[str]


@dataclass(frozen=True)
class Plan:
    """A planned run: the jobs to queue and the outcomes already known, under their ledger keys."""

    run_id: str
    jobs: tuple[WarmJob, ...]
    decided: tuple[Decided, ...]
    notes: tuple[str, ...] = ()
    verified: tuple[Verified, ...] = ()  # images this plan verified complete in full, to remember

    @property
    def planned(self) -> int:
        return len(self.jobs) + len(self.decided)


def candidate_details(c: Candidate, **facts: Any) -> Details:
    return Details(rule=c.rule.prefix, upstream=c.rule.upstream, repository=c.repository, source=c.source, **facts)


def decided(
    c: Candidate,
    outcome: Outcome,
    *,
    reason: str | None = None,
    fix: str | None = None,
    reason_code: str | None = None,
    severity: Severity | None = None,
    **facts: Any,
) -> Decided:
    """The candidate's outcome, decided at planning time, with its rule, repository and `facts` as details."""
    extra: dict[str, Any] = {"severity": severity} if severity is not None else {}
    item = ReportItem(
        subject=c.subject,
        outcome=outcome,
        reason=reason,
        fix=fix,
        reason_code=reason_code,
        details=candidate_details(c, **facts),
        **extra,
    )
    return Decided(c.key, item)
