"""Deleting what a prune plan says (or, dry, listing it): an index before its platform images, one item per image.

Separate from the decisions (pure) and the run (config, report): this is the part that talks to ECR, in the order
ECR requires, and turns what ECR answered into report items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pullthrough.prune.decisions import Candidate, Plan
from pullthrough.prune.ecr import Ecr
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome, Severity


@dataclass(frozen=True)
class Outcomes:
    """What deleting the plan did: report items and the notes that go with them."""

    items: list[ReportItem]
    notes: list[str]


def execute(plan_: Plan, ecr: Ecr, rules: Callable[[str], str | None], *, dry_run: bool) -> Outcomes:
    """Delete what the plan says (nothing in a dry run); one item per image, its platform images counted with it."""
    items: list[ReportItem] = []
    notes: list[str] = []
    by_repository: dict[str, list[Candidate]] = {}
    for candidate in plan_.delete:
        by_repository.setdefault(candidate.repository, []).append(candidate)
    for repository, candidates in by_repository.items():
        rule = rules(repository)
        if dry_run:
            items += [_item(c, Outcome.WOULD_PRUNE, rule, _dry_reason(c)) for c in candidates]
            continue
        items += _delete_repository(repository, candidates, plan_.untagged.get(repository, []), ecr, rule)
    for candidate in plan_.kept:
        items.append(_item(candidate, Outcome.KEPT, rules(candidate.repository), candidate.kept_by))
    for candidate in plan_.deferred:
        reason = "max_deletions reached this run: it goes on a later run, the oldest first"
        items.append(_item(candidate, Outcome.DEFERRED, rules(candidate.repository), reason, severity=Severity.OK))
    return Outcomes(items, notes)


def _delete_repository(
    repository: str, candidates: list[Candidate], untagged: list[Candidate], ecr: Ecr, rule: str | None
) -> list[ReportItem]:
    """Tagged images and indexes first, then in a second call the unused untagged images: those of the deleted
    indexes, and the loose ones of a repository left without an index (ECR refuses to delete a manifest an index
    still lists: botocore's ImageFailureCode ImageReferencedByManifestList)."""
    first = [c for c in candidates if c.image.tags or c.is_index]
    loose = [c for c in candidates if not (c.image.tags or c.is_index)]
    # Read only what is about to go: BatchGetImage refreshes lastRecordedPullTime (containers-roadmap #2390).
    indexes = [c.image.digest for c in first if c.is_index]
    listed = ecr.manifests(repository, indexes) if indexes else {}
    spare = {c.image.digest: c for c in [*untagged, *loose]}
    children = {
        digest: [spare.pop(e.digest) for e in getattr(stored.parsed(), "entries", []) if e.digest in spare]
        for digest, stored in listed.items()
    }
    deleted = ecr.delete(repository, [c.image.digest for c in first])
    stays = [d for d in children if d not in deleted.digests]
    following = [child for d in children if d in deleted.digests for child in children[d]]
    following += [c for c in loose if c.image.digest in spare]
    after = ecr.delete(repository, [c.image.digest for c in following]) if following else None
    gone = set(after.digests) if after is not None else set()
    items = []
    for candidate in first:
        digest = candidate.image.digest
        if digest in deleted.digests:
            went = [c for c in children.get(digest, []) if c.image.digest in gone]
            size = (candidate.image.size or 0) if not went else sum(c.image.size or 0 for c in went)
            reason = _reason(candidate) + (f"; {len(went)} platform image(s) with it" if went else "")
            items.append(_item(candidate, Outcome.PRUNED, rule, reason, size=size))
        else:
            code, text = deleted.failures.get(digest, ("Unknown", "ECR did not say"))
            items.append(_failed(candidate, rule, code, text))
    for candidate in loose:
        if candidate.image.digest in gone:
            items.append(_item(candidate, Outcome.PRUNED, rule, _reason(candidate)))
        elif any(candidate in children[d] for d in stays):
            items.append(_item(candidate, Outcome.KEPT, rule, "the index that lists it could not be deleted"))
        elif after is not None:
            code, text = after.failures.get(candidate.image.digest, ("Unknown", "ECR did not say"))
            items.append(_failed(candidate, rule, code, text))
    return items


def _reason(candidate: Candidate) -> str:
    when = f"{candidate.last_used.astimezone(UTC):%Y-%m-%d}"
    if candidate.image.last_pulled is None:
        return f"never pulled since ECR imported it on {when}"
    return f"last pulled {when}"


def _dry_reason(candidate: Candidate) -> str:
    reason = _reason(candidate)
    return reason + ("; an index: its unused platform images would go with it" if candidate.is_index else "")


def _item(
    candidate: Candidate,
    outcome: Outcome,
    rule: str | None,
    reason: str | None,
    *,
    size: int | None = None,
    severity: Severity | None = None,
) -> ReportItem:
    details = Details(
        rule=rule,
        repository=candidate.repository,
        digest=candidate.image.digest,
        size=size if size is not None else candidate.image.size,
    )
    extra: dict[str, Any] = {"severity": severity} if severity is not None else {}
    return ReportItem(subject=candidate.subject, outcome=outcome, reason=reason, details=details, **extra)


def _failed(candidate: Candidate, rule: str | None, code: str, text: str) -> ReportItem:
    return ReportItem(
        subject=candidate.subject,
        outcome=Outcome.FAILED,
        reason=f"ECR refused to delete it: {code}: {text}",
        fix="the next prune run tries again; check the function's ecr:BatchDeleteImage grant if ECR says AccessDenied",
        reason_code=code[:64],
        details=Details(rule=rule, repository=candidate.repository, digest=candidate.image.digest),
    )


__all__ = ["Outcomes", "execute"]
