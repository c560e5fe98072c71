"""Pruning: delete the cached images nobody pulled for `prune.unused_for_days`, under the rules' prefixes only.

Why not an ECR lifecycle policy: ECR's `sinceImagePulled` count type exists only paired with the archive storage
class. AWS closed aws/containers-roadmap #921 ("add sinceImagePulled countType") on 2025-11-20 saying it was
"implemented ... paired with our new archival storage class", users there report that a `sinceImagePulled` rule
with action `expire` is refused by the API and the console, and #2728 ("Support lifecycle policy for image deletion
not just transitioning to archive", for pull-through caches) is open. Archived images still cost storage (with a
90-day minimum) and cannot be pulled until restored. No lifecycle rule could spare the images the warm list names
either. So Pullthrough deletes them itself, with BatchDeleteImage.

What counts as use: `lastRecordedPullTime` (botocore's ImageDetail: refreshed "at least once every 24 hours", so a
day's slack), or `imagePushedAt` (the import) for an image never pulled. BatchGetImage refreshes that time
(containers-roadmap #2390, reproduced there with the CLI), so pruning reads a manifest only of an index it is about
to delete: reading any other would keep it alive.

What is never deleted: anything outside the rules' prefixes (a ROOT rule's repositories carry upstream names that
cannot be told from the account's own, so they are left alone); an image a warm-list entry or `prune.keep` names
(tag patterns and latest-N evaluated on the tags ECR holds); a platform image whose index stays (it is deleted only
with its index, after it, and only when it is itself unused; a repository left without any index also loses its
unused untagged images).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pullthrough.env import Settings
from pullthrough.observability import logger
from pullthrough.prune.keeping import WHOLE_REPOSITORY, named_by_sources, protected
from pullthrough.reference import ROOT_PREFIX
from pullthrough.reporting import Details, Kind, Outcome, Report, ReportItem, Severity

if TYPE_CHECKING:
    from pullthrough.aws.ecr import Deleted, EcrImage, StoredManifest
    from pullthrough.config import Config, Rule
    from pullthrough.sources import EcsReader

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


class Ecr(Protocol):
    """The ECR calls pruning makes (pullthrough.aws.ecr and pullthrough.aws.repositories in a function)."""

    def repositories(self, prefixes: Sequence[str]) -> list[str]: ...

    def images(self, repository: str) -> list[EcrImage]: ...

    def manifests(self, repository: str, digests: Sequence[str]) -> dict[str, StoredManifest]: ...

    def delete(self, repository: str, digests: Sequence[str]) -> Deleted: ...


@dataclass(frozen=True)
class Candidate:
    """An image pruning looked at: unused since `last_used`, and why it stays when it does."""

    repository: str
    image: EcrImage
    last_used: datetime
    kept_by: str | None = None  # the reason it stays: the warm list, prune.keep, an index

    @property
    def subject(self) -> str:
        tags = self.image.tags
        return f"{self.repository}:{tags[0]}" if tags else f"{self.repository}@{self.image.digest}"

    @property
    def is_index(self) -> bool:
        return self.image.media_type in INDEX_TYPES


@dataclass
class Plan:
    """What one run deletes (oldest first, within the cap), keeps although unused, and leaves for the next run."""

    delete: list[Candidate] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    deferred: list[Candidate] = field(default_factory=list)
    # per repository: the untagged images that may go with an index deleted there (read when it is deleted)
    untagged: dict[str, list[Candidate]] = field(default_factory=dict)
    fresh: int = 0  # images used within the window: not listed
    notes: list[str] = field(default_factory=list)


# --- the plan (pure) -------------------------------------------------------------------------------------------------


def last_used(image: EcrImage) -> datetime | None:
    """lastRecordedPullTime, or the import time (imagePushedAt) of an image never pulled."""
    return image.last_pulled or image.pushed_at


def plan(
    held: Mapping[str, Sequence[EcrImage]],
    kept: Mapping[str, Mapping[str, str]],
    *,
    now: datetime,
    unused_for_days: int,
    max_deletions: int,
) -> Plan:
    """Decide, from what DescribeImages said, which images go: unused, unnamed, oldest first, at most the cap."""
    cutoff = now - timedelta(days=unused_for_days)
    result = Plan()
    stale: list[Candidate] = []
    for repository in sorted(held):
        images = held[repository]
        needs = kept.get(repository, {})
        for image in images:
            used = last_used(image)
            if used is None or used >= cutoff:
                result.fresh += 1
                continue
            candidate = Candidate(repository, image, used)
            reason = needs.get(WHOLE_REPOSITORY) or next((needs[t] for t in image.tags if t in needs), None)
            if reason is not None:
                result.kept.append(_keep(candidate, reason))
            elif image.tags or candidate.is_index:
                stale.append(candidate)  # an untagged index is a tag's old image: nothing names it any more
            else:
                result.untagged.setdefault(repository, []).append(candidate)
    stale.sort(key=lambda c: (c.last_used, c.repository, c.image.digest))
    result.delete, result.deferred = stale[:max_deletions], stale[max_deletions:]
    for repository, untagged in result.untagged.items():
        if not _keeps_an_index(held[repository], result.delete):
            room = max_deletions - len(result.delete)
            untagged.sort(key=lambda c: (c.last_used, c.image.digest))
            result.delete += untagged[:room]
            result.deferred += untagged[room:]
            result.untagged[repository] = []
    return result


def _keep(candidate: Candidate, reason: str) -> Candidate:
    return Candidate(candidate.repository, candidate.image, candidate.last_used, reason)


def _keeps_an_index(images: Sequence[EcrImage], deleted: Iterable[Candidate]) -> bool:
    """Whether an index of the repository stays after this run (one that may list its untagged images)."""
    going = {c.image.digest for c in deleted}
    return any(image.media_type in INDEX_TYPES and image.digest not in going for image in images)


# --- the run ---------------------------------------------------------------------------------------------------------


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


# --- the handler's work ----------------------------------------------------------------------------------------------


def managed_prefixes(config: Config) -> tuple[list[str], list[str]]:
    """The rule prefixes pruning works under, and the notes for those it leaves alone (a ROOT rule)."""
    prefixes = [rule.prefix for rule in config.rules if rule.prefix != ROOT_PREFIX]
    notes = [
        f"rule {rule.prefix}: its cache repositories are named after the upstream's own, so they cannot be told "
        "from the account's other repositories; prune leaves them alone"
        for rule in config.rules
        if rule.prefix == ROOT_PREFIX
    ]
    return prefixes, notes


def run(
    config: Config,
    ecr: Ecr,
    *,
    now: datetime,
    run_id: str,
    trigger: str,
    settings: Settings,
    account: str,
    ecs: EcsReader | None = None,
) -> Report:
    """One prune run over the config's prefixes: list, decide, delete (or, dry, list what would go), report.

    `ecs` reads the task definitions an ecs source names (`planning.ecs_reader`); without it such a run deletes
    nothing."""
    if config.prune is None:
        raise ValueError("the config has no prune section")
    prune = config.prune
    prefixes, notes = managed_prefixes(config)
    named, unreadable = named_by_sources(config, ecs) if config.warm.sources else ([], None)
    if unreadable is not None:
        # Never delete what a source might still name: the run looks at nothing and says why.
        refusal = ReportItem(
            subject="warm.sources",
            outcome=Outcome.SKIPPED,
            reason=f"nothing was pruned: {unreadable}",
            fix="fix the sources the reason names (or remove them); prune runs again on its schedule",
        )
        return _report(
            config, [refusal], [], now=now, run_id=run_id, trigger=trigger, settings=settings, account=account
        )
    held = {name: ecr.images(name) for name in ecr.repositories(prefixes)}
    decided = plan(
        held,
        protected(config, held, named),
        now=now,
        unused_for_days=prune.unused_for_days,
        max_deletions=prune.max_deletions,
    )
    outcome = execute(decided, ecr, _rule_of(config.rules), dry_run=prune.dry_run)
    notes += outcome.notes
    notes.append(
        f"{decided.fresh:,} image(s) in {len(held):,} repositories were pulled within {prune.unused_for_days} day(s) "
        "(ECR's lastRecordedPullTime, refreshed about once a day) and stay; sizes are DescribeImages' "
        "imageSizeInBytes, and layers other images share are not freed"
    )
    logger.info("prune decided", extra={"delete": len(decided.delete), "kept": len(decided.kept)})
    return _report(
        config, outcome.items, notes, now=now, run_id=run_id, trigger=trigger, settings=settings, account=account
    )


def _report(
    config: Config,
    items: Sequence[ReportItem],
    notes: Sequence[str],
    *,
    now: datetime,
    run_id: str,
    trigger: str,
    settings: Settings,
    account: str,
) -> Report:
    """The run's one report, whichever way the run ended."""
    return Report(
        kind=Kind.PRUNE,
        stack=config.stack,
        region=settings.region,
        account=account,
        run_id=run_id,
        trigger=trigger,
        started=now,
        finished=datetime.now(UTC),
        dry_run=config.prune.dry_run if config.prune else True,
        items=tuple(items),
        notes=tuple(notes[:50]),
    )


class AwsEcr:
    """The Ecr calls against AWS (pullthrough.aws: the only package that imports boto3)."""

    def __init__(self, region: str | None = None) -> None:
        self.region = region

    def repositories(self, prefixes: Sequence[str]) -> list[str]:
        from pullthrough.aws import repositories

        return [found.name for found in repositories.under(prefixes, self.region)]

    def images(self, repository: str) -> list[EcrImage]:
        from pullthrough.aws import ecr

        return ecr.list_images(repository, self.region)

    def manifests(self, repository: str, digests: Sequence[str]) -> dict[str, StoredManifest]:
        from pullthrough.aws import ecr

        return ecr.get_manifests(repository, digests, self.region)

    def delete(self, repository: str, digests: Sequence[str]) -> Deleted:
        from pullthrough.aws import ecr

        return ecr.delete_images(repository, digests, self.region)


def handle(event: Any, settings: Settings, ecr: Ecr | None = None) -> dict[str, Any]:
    """prune_images: on its schedule (or invoked by hand, `{"dry_run": true}` to only look), prune and report once."""
    from pullthrough import config as config_module
    from pullthrough.warm import planner as planning
    from pullthrough.warm import worker as warming

    now = datetime.now(UTC)
    run_id = f"prune-{now:%Y-%m-%dT%H-%M-%SZ}"
    logger.append_keys(run_id=run_id)
    config = config_module.load(settings.config_path)
    if config.prune is None:
        logger.info("the config has no prune section: nothing is ever deleted")
        return {"run_id": run_id, "pruned": 0, "disabled": True}
    forced_dry = isinstance(event, dict) and event.get("dry_run") is True
    if forced_dry or settings.dry_run:
        config = config.model_copy(update={"prune": config.prune.model_copy(update={"dry_run": True})})
    report = run(
        config,
        ecr or AwsEcr(settings.region),
        now=now,
        run_id=run_id,
        trigger=_trigger(event),
        settings=settings,
        account=warming.account_of(settings),
        ecs=planning.ecs_reader(config, settings),
    )
    warming.publish(report, config, settings)
    counts = {outcome.value: count for outcome, count in report.counts.items()}
    return {
        "run_id": run_id,
        "dry_run": report.dry_run,
        "counts": counts,
        "bytes_freed": report.totals.bytes_freed or 0,
    }


def _trigger(event: Any) -> str:
    if isinstance(event, dict) and event.get("trigger") == "schedule":
        return f"schedule ({event.get('scheduled_time') or 'prune.schedule'})"
    return "invoked by hand"


def _rule_of(rules: Sequence[Rule]) -> Callable[[str], str | None]:
    def rule(repository: str) -> str | None:
        return next((r.prefix for r in rules if repository.startswith(r.prefix + "/")), None)

    return rule


__all__ = [
    "INDEX_TYPES",
    "AwsEcr",
    "Candidate",
    "Ecr",
    "Outcomes",
    "Plan",
    "execute",
    "handle",
    "last_used",
    "managed_prefixes",
    "plan",
    "run",
]
