"""Planning a warm run: which image tags, what ECR already holds, and what fits the upstream's pull budget.

    expand     the warm list (or a manual selection): plain tags; tag patterns and latest-N by semantic version
               over the upstream's tags/list; default and per-image platforms
    decide     ECR first (DescribeImages; for what it holds, BatchGetImage and BatchCheckLayerAvailability), then a
               HEAD upstream, which Docker Hub does not count as a pull: already cached, moved, absent, or failed
    budget     a share of the remaining pulls the upstream reported on those HEADs; ECR's import of an index costs
               the index and every manifest it lists (ECR pulls them all, whatever platforms are wanted), learned
               from earlier imports or estimated from the index's size; what does not fit is deferred
    open       the run in the ledger (every image, decided or pending) and its jobs on the warm queue

Planning never GETs a manifest upstream itself. `handle` is plan_warming's logic; it first closes and reports any
earlier run that can no longer complete (jobs in the dead-letter queue).
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from pullthrough import config as config_module
from pullthrough import sources, versions
from pullthrough.config import Config, Rule, WarmImage, WarmTarget
from pullthrough.env import Settings, SettingsError
from pullthrough.errors import (
    AwsError,
    ConfigError,
    EventError,
    InvalidManifest,
    InvalidReference,
    PullthroughError,
    RegistryError,
)
from pullthrough.observability import logger
from pullthrough.reference import ImageReference, upstream_repository
from pullthrough.registry import ManifestHead, manifests
from pullthrough.reporting import Details, Kind, Outcome, Report, ReportItem, Severity
from pullthrough.sources import ecs as ecs_source
from pullthrough.sources.model import EcsSource
from pullthrough.versions import Version, latest_versions
from pullthrough.warm.budget import Budget, Shared, allowance_key
from pullthrough.warm.importing import ARCHIVED, AVAILABLE, Wait
from pullthrough.warm.worker import (
    MOVED_TAG_NOTE,
    TAG_MOVED,
    Reason,
    WarmJob,
    Worker,
    account_of,
    failure,
    fix_for,
    kept_upstream_client,
    ledger_for,
    publish,
    report_run,
    run_report,
)

if TYPE_CHECKING:
    from pullthrough.aws.ecr import EcrImage, StoredManifest
    from pullthrough.aws.ledger import JobEntry, Ledger, Verified

# A run still open this long after it started (plus the longest an import may be waited for) has jobs that will not
# come back (dead-letter queue): each job is delivered up to MAX_RECEIVES (3) times, each delivery hidden for the
# queue's visibility timeout (30 minutes).
STALE_AFTER = timedelta(hours=3)
# ...plus the time a long queue takes to drain at the event source's lowest concurrency (2), one job at a time.
DRAIN_SECONDS_PER_JOB = 15.0
# Concurrent ECR and upstream calls while deciding; HEADs are free on Docker Hub but not unlimited. One HEAD per tag
# is most of a large plan's time against a real upstream (tens of milliseconds each), so they overlap this much.
PLAN_WORKERS = 16
# Repositories decided at once; each one's tags share the PLAN_WORKERS pool for their HEADs.
REPOSITORY_WORKERS = 8
# Draws from a shared pull allowance that another planner's write may overtake before this planner gives up.
DRAW_ATTEMPTS = 5

RECONCILED_DETAIL_TYPE = "Pullthrough Rules Reconciled"


# --- tags ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagChoice:
    """The tags of one warm-list entry, and a note when latest-N had to leave tags out (report notes)."""

    tags: list[str]
    note: str | None = None


def choose_tags(image: WarmImage, upstream_tags: Sequence[str] | None) -> TagChoice:
    """The tags of one warm-list entry: its named tags, then what its pattern and latest-N pick from the upstream's."""
    chosen = list(image.fixed_tags)
    note = None
    if upstream_tags is not None and (image.tag_pattern is not None or image.latest is not None):
        matching = [tag for tag in upstream_tags if image.matches(tag)]
        if image.latest is not None:
            picked = versions.latest(matching, image.latest, families=image.tag_pattern is not None)
            note = picked.note(_selection_text(image))
            found = picked.tags
        else:
            found = versions.highest_first(matching)
        chosen += [tag for tag in found if tag not in chosen]
    return TagChoice(chosen, note)


def select_tags(image: WarmImage, upstream_tags: Sequence[str] | None) -> list[str]:
    """The tags `choose_tags` picks, without its note."""
    return choose_tags(image, upstream_tags).tags


def _target_details(target: WarmTarget) -> Details:
    rule = target.rule
    return Details(rule=rule.prefix, upstream=rule.upstream, repository=target.cache_repository, source=target.source)


def _candidate_details(c: Candidate, **facts: Any) -> Details:
    return Details(rule=c.rule.prefix, upstream=c.rule.upstream, repository=c.repository, source=c.source, **facts)


def _source_problems(reading: sources.Reading) -> list[Decided]:
    """A failed item for each reference a source names that cannot be warmed (the file, the place and the fix)."""
    decided = []
    for index, problem in enumerate(reading.problems):
        item = ReportItem(
            subject=problem.value,
            outcome=Outcome.FAILED,
            reason=f"{problem.location}: {problem.message}",
            fix=ecs_source.fix_for(problem)
            or f"fix {problem.location.split(' ', 1)[0]} (or the config's warm.sources entry) as the reason says",
            reason_code="source",
            details=Details(source=problem.source if isinstance(problem, sources.SourceProblem) else None),
        )
        decided.append(Decided(f"source#{index}", item))
    return decided


def _selection_text(image: WarmImage) -> str:
    parts = []
    if image.tag_pattern is not None:
        parts.append(f"tags matching {image.tag_pattern}")
    if image.latest is not None:
        parts.append(f"latest {image.latest}")
    return f"{image.image.name} ({', '.join(parts)})"


# --- what triggered the run ----------------------------------------------------------------------------------------


class WarmRequest(BaseModel):
    """What to warm and why: every listed image, the images of some rules, or a manual selection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger: str
    images: tuple[str, ...] = ()  # manual: only these references
    rules: tuple[str, ...] | None = None  # rules reconciled: only images cached through these prefixes (None: all)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WarmRequest:
        """Read the Scheduler payload, the "Pullthrough Rules Reconciled" event, or a manual `{"images": [...]}`."""
        if not isinstance(event, dict):
            raise EventError(f"plan_warming takes a JSON object, not {type(event).__name__}")
        detail_type = event.get("detail-type")
        if detail_type == RECONCILED_DETAIL_TYPE:
            detail = event.get("detail") or {}
            if not isinstance(detail, dict):
                raise EventError('a "Pullthrough Rules Reconciled" event\'s detail must be an object with "rules"')
            rules = detail.get("rules")
            if rules is not None and (not isinstance(rules, list) or not all(isinstance(r, str) for r in rules)):
                raise EventError('a "Pullthrough Rules Reconciled" event\'s detail.rules must be a list of prefixes')
            run = detail.get("run_id")
            # An empty list means no rule is ready: their images would only fail, so none is planned.
            return cls(
                trigger=f"rules reconciled (run {run})" if run else "rules reconciled",
                rules=tuple(rules) if rules is not None else None,
            )
        if detail_type == "Scheduled Event":
            resources = event.get("resources") or []
            if not isinstance(resources, list):
                raise EventError('a "Scheduled Event"\'s resources must be a list of rule ARNs')
            names = ", ".join(str(arn).rsplit("/", 1)[-1] for arn in resources)
            return cls(trigger=f"EventBridge schedule ({names or 'rule'})")
        if event.get("trigger") == "schedule":
            schedule = str(event.get("schedule_arn") or "schedule").rsplit("/", 1)[-1]
            when = event.get("scheduled_time")
            return cls(trigger=f"EventBridge Scheduler ({schedule}{', ' + str(when) if when else ''})")
        unknown = set(event) - {"images", "trigger"}
        if unknown:
            raise EventError(
                f"plan_warming does not understand the keys {', '.join(sorted(unknown))}; "
                'invoke it with {"images": ["nginx:1.27", ...]} or {} for the whole warm list'
            )
        images = event.get("images") or []
        if not isinstance(images, list) or not all(isinstance(image, str) and image for image in images):
            raise EventError('"images" must be a list of image references, like ["nginx:1.27"]')
        trigger = event.get("trigger")
        return cls(trigger=str(trigger) if trigger else "manual invoke", images=tuple(images))


# --- candidates and decisions ----------------------------------------------------------------------------------------


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
class _Check:
    """ECR holds the tag at `digest`: whether it is complete is verified with the rest of its repository."""

    digest: str
    note: str | None = None


class Upstream(Protocol):
    """What planning asks an upstream registry (RegistryClient): HEADs and tag lists, never a manifest GET."""

    def head_manifest(self, repository: str, reference: str) -> ManifestHead: ...

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]: ...

    def close(self) -> None: ...


class EcrView(Protocol):
    """What planning asks ECR's control plane (pullthrough.aws.ecr)."""

    def describe_image(self, repository: str, tag: str) -> EcrImage | None: ...

    def get_manifests(self, repository: str, references: Sequence[str]) -> dict[str, StoredManifest]: ...

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]: ...


class Memory(Protocol):
    """What earlier runs verified complete in ECR (the ledger's VERIFIED# items)."""

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]: ...


class Allowances(Protocol):
    """The pull allowances open runs share (the ledger's BUDGET# items, budget.py)."""

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]: ...

    def draw(self, allowance: Shared) -> bool: ...


@dataclass(frozen=True)
class InFlight:
    """A run still open: the images it is warming are left to it (its report gives their outcome)."""

    run_id: str
    trigger: str
    started: datetime


@runtime_checkable
class EcrTags(Protocol):
    """An EcrView that also tells, in one go, which of several tags of a repository ECR holds."""

    def describe_images(self, repository: str, tags: Sequence[str]) -> dict[str, EcrImage]: ...


@dataclass(frozen=True)
class AwsEcr:
    """EcrView (and EcrTags) over the ECR API in one region."""

    region: str | None = None

    def describe_image(self, repository: str, tag: str) -> EcrImage | None:
        from pullthrough.aws import ecr

        return ecr.describe_image(repository, tag, self.region)

    def describe_images(self, repository: str, tags: Sequence[str]) -> dict[str, EcrImage]:
        from pullthrough.aws import ecr

        return ecr.describe_tags(repository, tags, self.region)

    def get_manifests(self, repository: str, references: Sequence[str]) -> dict[str, StoredManifest]:
        from pullthrough.aws import ecr

        return ecr.get_manifests(repository, references, self.region)

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]:
        from pullthrough.aws import ecr

        return ecr.layer_states(repository, digests, self.region)


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


UpstreamFor = Callable[[Rule], Upstream | None]


@dataclass
class Planner:
    """Expands a request into candidates, decides each one, and fits the jobs into the budget."""

    config: Config
    ecr: EcrView
    upstream_for: UpstreamFor
    memory: Memory | None = None
    allowances: Allowances | None = None  # None: this run's own share, shared with no other run (the CLI, tests)
    in_flight: Mapping[str, InFlight] = field(default_factory=dict)  # images (by key) open runs are warming
    keeps_clients: bool = False  # the clients outlive the plan (kept_upstream_client): not closed at its end
    ecs: sources.EcsReader | None = None  # reads the ecs sources (plan time); None: they yield nothing
    workers: int = PLAN_WORKERS
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _clients: dict[str, Upstream | PullthroughError | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _learned: list[Verified] = field(default_factory=list)
    _children: dict[tuple[str, str | None], int] = field(default_factory=dict)
    _notes: list[str] = field(default_factory=list)  # what expanding the warm list could not decide

    def plan(self, request: WarmRequest, run_id: str) -> Plan:
        """The whole plan for one run."""
        budget = Budget(self.config.warm.budget_share)
        self._notes = []
        try:
            targets, decided = self._targets(request)
            candidates = self._leave_in_flight(self._expand(targets, decided), decided)
            remembered = self._recall(candidates)
            self._children = _children_known(remembered)
            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                outcomes = self._decide_all(candidates, budget, pool, remembered)
        finally:
            self._close()
        wanted: list[Wanted] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Wanted):
                wanted.append(replace(outcome, order=index))
            else:
                decided.append(outcome)
        jobs, deferred, notes = self._draw(wanted, budget, run_id)
        notes = self._notes + self._in_flight_notes(decided) + notes
        decided.extend(deferred)
        if any(d.item.reason_code == TAG_MOVED for d in decided) or any(j.action == "refresh" for j in jobs):
            notes.append(MOVED_TAG_NOTE)
        return Plan(
            run_id=run_id, jobs=tuple(jobs), decided=tuple(decided), notes=tuple(notes), verified=tuple(self._learned)
        )

    def candidates(self, request: WarmRequest) -> tuple[list[Candidate], list[Decided]]:
        """The image tags the request names (tag patterns and latest-N expanded upstream), and the targets that
        failed to expand; decides nothing (`pullthrough status` looks at each itself). Closes its clients."""
        try:
            targets, decided = self._targets(request)
            return self._expand(targets, decided), decided
        finally:
            self._close()

    # --- expansion ---------------------------------------------------------------------------------------------

    def _targets(self, request: WarmRequest) -> tuple[list[WarmTarget], list[Decided]]:
        config = self.config
        reading = sources.read(config, ecs=self.ecs)
        every = config.targets(reading)
        self._notes.extend(text for text in map(str, reading.notes) if text not in self._notes)
        if not request.images:
            wanted = [t for t in every if request.rules is None or t.rule.prefix in request.rules]
            return wanted, _source_problems(reading) if request.rules is None else []
        targets: list[WarmTarget] = []
        decided: list[Decided] = []
        for index, text in enumerate(request.images):
            try:
                reference = ImageReference.parse(text)
                listed = [t for t in every if t.image.image.name == reference.name]
                if reference.tag is None:
                    if not listed:
                        hint = f"give a tag ({text}:<tag>): the image is not in warm.images, so no tag is known"
                        raise InvalidReference(text, hint)
                    targets.extend(listed)
                    continue
                base = listed[0] if listed else None
                image = WarmImage(
                    image=reference,
                    platforms=base.image.platforms if base else None,
                    rule=base.image.rule if base else None,
                )
                rule = config.rule_for(reference, image.rule)
                targets.append(
                    WarmTarget(image, rule, rule.cache_repository(reference), image.platforms or config.warm.platforms)
                )
            except (InvalidReference, ConfigError, ValidationError) as exc:
                error = exc if isinstance(exc, PullthroughError) else InvalidReference(text, str(exc))
                found = failure(error, image=text)
                decided.append(
                    Decided(
                        f"request#{index}",
                        ReportItem(
                            subject=text,
                            outcome=Outcome.FAILED,
                            reason=found.text,
                            fix=found.fix,
                            reason_code=found.reason.value,
                        ),
                    )
                )
        return targets, decided

    def _expand(self, targets: list[WarmTarget], decided: list[Decided]) -> list[Candidate]:
        by_key: dict[str, Candidate] = {}
        for target in targets:
            image = target.image
            upstream_tags: list[str] | None = None
            if image.tag_pattern is not None or image.latest is not None:
                try:
                    client = self._upstream(target.rule)
                    if client is None:
                        raise RegistryError(
                            target.rule.upstream_url, None, "Pullthrough cannot list this upstream's tags (IAM)"
                        )
                    upstream_tags = client.list_tags(upstream_repository(image.image))
                except PullthroughError as exc:
                    decided.append(self._expansion_failed(target, exc))
                    upstream_tags = None
            choice = choose_tags(image, upstream_tags)
            tags = choice.tags
            if choice.note is not None:
                self._notes.append(choice.note)
            if not tags and upstream_tags is not None:
                decided.append(self._nothing_matches(target, len(upstream_tags)))
            for tag in tags:
                digest = image.image.digest if tag == image.image.tag else None
                candidate = Candidate(
                    ImageReference(image.image.domain, image.image.path, tag, digest),
                    target.rule,
                    target.cache_repository,
                    tuple(target.platforms),
                    target.source,
                )
                known = by_key.get(candidate.key)
                if known is None:
                    by_key[candidate.key] = candidate
                else:
                    # Two entries name the same tag: warm it once, for every platform either wants.
                    platforms = tuple(dict.fromkeys(known.platforms + candidate.platforms))
                    by_key[candidate.key] = Candidate(
                        known.reference if known.reference.digest else candidate.reference,
                        known.rule,
                        known.repository,
                        platforms,
                        known.source,
                    )
        return list(by_key.values())

    def _selection(self, target: WarmTarget) -> str:
        return _selection_text(target.image)

    def _expansion_failed(self, target: WarmTarget, error: PullthroughError) -> Decided:
        subject = self._selection(target)
        found = failure(error, image=subject, rule=target.rule.prefix, secret=target.rule.secret_name)
        item = ReportItem(
            subject=subject,
            outcome=Outcome.FAILED,
            reason=f"{found.text} (listing the upstream's tags)",
            fix=found.fix,
            reason_code=found.reason.value,
            details=_target_details(target),
        )
        return Decided(f"{target.cache_repository}#{subject}", item)

    def _nothing_matches(self, target: WarmTarget, listed: int) -> Decided:
        subject = self._selection(target)
        item = ReportItem(
            subject=subject,
            outcome=Outcome.FAILED,
            reason=f"unknown tag: none of the upstream's {listed} tags is selected",
            fix=fix_for(Reason.UNKNOWN_TAG, image=subject),
            reason_code=Reason.UNKNOWN_TAG.value,
            details=_target_details(target),
        )
        return Decided(f"{target.cache_repository}#{subject}", item)

    # --- decisions ---------------------------------------------------------------------------------------------

    def _upstream(self, rule: Rule) -> Upstream | None:
        with self._lock:
            if rule.prefix not in self._clients:
                try:
                    self._clients[rule.prefix] = self.upstream_for(rule)
                except PullthroughError as exc:
                    self._clients[rule.prefix] = exc
            found = self._clients[rule.prefix]
        if isinstance(found, PullthroughError):
            raise found
        return found

    def _close(self) -> None:
        if self.keeps_clients:
            return
        for client in self._clients.values():
            if client is not None and not isinstance(client, PullthroughError):
                client.close()

    def _recall(self, candidates: list[Candidate]) -> dict[tuple[str, str], Verified]:
        """What earlier runs verified of these tags; nothing when the memory cannot be read (all is verified then)."""
        if self.memory is None or not candidates:
            return {}
        try:
            return self.memory.remembered([(c.repository, c.tag) for c in candidates])
        except AwsError as exc:
            logger.warning(
                "earlier verifications could not be read: verifying every cached image", extra={"error": str(exc)}
            )
            return {}

    def _decide_all(
        self,
        candidates: list[Candidate],
        budget: Budget,
        pool: ThreadPoolExecutor,
        remembered: dict[tuple[str, str], Verified],
    ) -> list[Decided | Wanted]:
        """Every candidate's decision, in order, with ECR asked per repository rather than per tag.

        Per repository, three steps: the tags ECR holds (one DescribeImages), a HEAD upstream per tag (on `pool`, so
        a repository's tags overlap), then, for what ECR holds, its manifests and blobs (one BatchGetImage per level
        and one BatchCheckLayerAvailability), unless an earlier run verified that very digest for these platforms.
        Repositories go REPOSITORY_WORKERS at a time, so one's ECR calls overlap another's HEADs. A large warm list
        is mostly many tags of fewer repositories, and ECR's API rate limits count calls, not tags.
        """
        by_repository: dict[str, list[tuple[int, Candidate]]] = {}
        for index, c in enumerate(candidates):
            by_repository.setdefault(c.repository, []).append((index, c))

        def repository(item: tuple[str, list[tuple[int, Candidate]]]) -> list[tuple[int, Decided | Wanted]]:
            name, indexed = item
            # The HEADs go out while ECR is asked (a pinned tag ECR already holds at its digest needs none).
            heads = {i: pool.submit(self._head, c) for i, c in indexed if c.reference.digest is None}
            held = self._held_tags(name, [c for _, c in indexed])
            first = [self._first_look(c, held, budget, heads.get(i)) for i, c in indexed]
            checks = []
            verified: dict[int, Decided | Wanted] = {}
            for (i, c), look in zip(indexed, first, strict=True):
                if not isinstance(look, _Check):
                    continue
                known = remembered.get((c.repository, c.tag))
                if known is not None and known.matches(look.digest, c.platforms):
                    verified[i] = self._already_cached(
                        c, known.digest, known.platforms, known.absent, known.size, budget, look.note
                    )
                else:
                    checks.append((i, c, look))
            if checks:
                verified.update(self._verify_repository(name, checks, budget))
            return [
                (i, verified[i] if isinstance(look, _Check) else look)
                for (i, _), look in zip(indexed, first, strict=True)
            ]

        outcomes: dict[int, Decided | Wanted] = {}
        with ThreadPoolExecutor(max_workers=REPOSITORY_WORKERS) as repositories:
            for results in repositories.map(repository, by_repository.items()):
                outcomes.update(results)
        return [outcomes[index] for index in range(len(candidates))]

    def _held_tags(self, repository: str, candidates: list[Candidate]) -> dict[str, EcrImage] | AwsError:
        """Which of these tags ECR holds in the repository (an AWS error fails only this repository's images)."""
        tags = list(dict.fromkeys(c.tag for c in candidates))
        try:
            if len(tags) > 1 and isinstance(self.ecr, EcrTags):
                return self.ecr.describe_images(repository, tags)
            return {tag: image for tag in tags if (image := self.ecr.describe_image(repository, tag)) is not None}
        except AwsError as exc:
            return exc

    def _aws_failed(self, c: Candidate, exc: AwsError) -> Decided:
        """An AWS error on this image's own ECR calls fails this image only, not the whole run."""
        logger.warning("ECR could not be asked about an image", extra={"subject": c.subject, "error": str(exc)})
        found = failure(exc, image=c.subject, rule=c.rule.prefix, secret=c.rule.secret_name)
        return self._decided(c, Outcome.FAILED, reason=found.text, fix=found.fix, reason_code=found.reason.value)

    def _head(self, c: Candidate) -> ManifestHead | PullthroughError | None:
        """The upstream's HEAD of the tag; None when Pullthrough may not ask this upstream."""
        try:
            client = self._upstream(c.rule)
            return client.head_manifest(c.upstream_repository, c.tag) if client is not None else None
        except PullthroughError as exc:
            return exc

    def _first_look(
        self,
        c: Candidate,
        tags: dict[str, EcrImage] | AwsError,
        budget: Budget,
        asked: Future[ManifestHead | PullthroughError | None] | None,
    ) -> Decided | Wanted | _Check:
        """What ECR's tag and the upstream's HEAD (`asked`, or asked now) decide; `_Check`: ECR's copy to verify."""
        if isinstance(tags, AwsError):
            return self._aws_failed(c, tags)
        held = tags.get(c.tag)
        pinned = c.reference.digest
        if held is not None and held.status in ("ARCHIVED", "ACTIVATING"):
            # botocore's ImageStatus: an archived (or restoring) image is not pulled until it is restored.
            return self._archived(c, held.digest, held.status)
        if held is not None and pinned is not None and held.digest == pinned:
            return _Check(held.digest)
        looked = asked.result() if asked is not None else self._head(c)
        head = looked if not isinstance(looked, PullthroughError) else None
        problem = looked if isinstance(looked, PullthroughError) else None
        if head is not None:
            budget.observe(allowance_key(c.rule), head.rate_limit)
        if held is not None:
            if head is None or head.digest == held.digest:
                note = f"the upstream could not be asked whether the tag moved: {problem}" if problem else None
                return _Check(held.digest, note)
            if pinned is not None and head.digest != pinned:
                return self._mismatch(c, head.digest, pinned, held.digest)
            return Wanted(c, "refresh", self._cost(c, head), expected_digest=head.digest, previous_digest=held.digest)
        if problem is not None:
            found = failure(problem, image=c.subject, rule=c.rule.prefix, secret=c.rule.secret_name)
            return self._decided(c, Outcome.FAILED, reason=found.text, fix=found.fix, reason_code=found.reason.value)
        if head is not None and pinned is not None and head.digest != pinned:
            return self._mismatch(c, head.digest, pinned, None)
        return Wanted(c, "warm", self._cost(c, head) if head else 0, expected_digest=head.digest if head else None)

    def _cost(self, c: Candidate, head: ManifestHead) -> int:
        """Upstream pulls ECR's import of the tag costs: the index and every manifest it lists (the ECR guide: all of
        them are pulled; Docker Hub counts a pull for each), or one for a single manifest."""
        if head.media_type not in manifests.INDEX_TYPES:
            return 1
        known = self._children.get((c.repository, head.digest)) or self._children.get((c.repository, None))
        return 1 + (known or estimate_children(head.size, len(c.platforms)))

    def _verify_repository(
        self, repository: str, checks: list[tuple[int, Candidate, _Check]], budget: Budget
    ) -> list[tuple[int, Decided | Wanted]]:
        """Verify ECR's copies of one repository's tags: their manifests, their platforms' manifests, their blobs."""
        try:
            tops = self.ecr.get_manifests(repository, list(dict.fromkeys(check.digest for _, _, check in checks)))
            wanted_children: list[str] = []
            for _, c, check in checks:
                top = tops.get(check.digest)
                try:
                    parsed = top.parsed() if top is not None else None
                except InvalidManifest:
                    continue
                if isinstance(parsed, manifests.Index):
                    wanted_children += [e.digest for p in c.platforms if (e := parsed.entry_for(p)) is not None]
            children = (
                self.ecr.get_manifests(repository, list(dict.fromkeys(wanted_children))) if wanted_children else {}
            )
            blobs: list[str] = []
            for stored in [*tops.values(), *children.values()]:
                try:
                    parsed = stored.parsed()
                except InvalidManifest:
                    continue
                if isinstance(parsed, manifests.ImageManifest):
                    blobs += [blob.digest for blob in parsed.blobs]
            held = self.ecr.layer_states(repository, list(dict.fromkeys(blobs))) if blobs else {}
        except AwsError as exc:
            return [(index, self._aws_failed(c, exc)) for index, c, _ in checks]
        return [
            (index, self._cached_or_complete(c, check.digest, budget, tops, children, held, note=check.note))
            for index, c, check in checks
        ]

    def _cached_or_complete(
        self,
        c: Candidate,
        digest: str,
        budget: Budget,
        tops: dict[str, StoredManifest],
        children: dict[str, StoredManifest],
        held: dict[str, str],
        note: str | None = None,
    ) -> Decided | Wanted:
        """already_cached when ECR holds every wanted platform's manifest, config and layers; else a complete job."""
        try:
            top = tops.get(digest)
            if top is None:
                return Wanted(c, "complete", 0, expected_digest=digest, previous_digest=digest)
            parsed = top.parsed()
            images: list[manifests.ImageManifest] = []
            platforms: list[str] = []
            absent: list[str] = []
            if isinstance(parsed, manifests.Index):
                entries = {}
                for platform in c.platforms:
                    entry = parsed.entry_for(platform)
                    if entry is None:
                        absent.append(platform)
                    else:
                        entries[platform] = entry.digest
                missing = [p for p, d in entries.items() if d not in children]
                if missing:
                    return Wanted(c, "complete", len(missing), expected_digest=digest, previous_digest=digest)
                for platform, child_digest in entries.items():
                    child = children[child_digest].parsed()
                    if isinstance(child, manifests.ImageManifest):
                        images.append(child)
                        platforms.append(platform)
            else:
                images.append(parsed)
        except InvalidManifest:
            return Wanted(c, "complete", 0, expected_digest=digest, previous_digest=digest)
        sizes = {blob.digest: blob.size for image in images for blob in image.blobs}
        archived = [d for d in sizes if held.get(d) == ARCHIVED]
        if archived:
            return self._archived(c, digest, f"{len(archived)} layer(s) ARCHIVED")
        if not all(held.get(d) == AVAILABLE for d in sizes):
            return Wanted(c, "complete", 0, expected_digest=digest, previous_digest=digest)
        size = sum(sizes.values())
        listed = len(parsed.entries) if isinstance(parsed, manifests.Index) else 0
        self._learn(c, digest, tuple(platforms), tuple(absent), size, listed)
        return self._already_cached(c, digest, tuple(platforms), tuple(absent), size, budget, note)

    def _archived(self, c: Candidate, digest: str, said: str) -> Decided:
        """ECR holds the image in its archive storage class: a warning with the restore fix, not a new pull."""
        return self._decided(
            c,
            Outcome.ALREADY_CACHED,
            reason=f"archived: ECR holds the image in its archive storage class ({said}); pulls fail until restored",
            fix=fix_for(Reason.ARCHIVED, image=c.subject, repository=c.repository, digest=digest),
            reason_code=Reason.ARCHIVED.value,
            severity=Severity.WARNING,
            digest=digest,
        )

    def _already_cached(
        self,
        c: Candidate,
        digest: str,
        platforms: tuple[str, ...],
        absent: tuple[str, ...],
        size: int,
        budget: Budget,
        note: str | None,
    ) -> Decided:
        warnings = [note] if note else []
        if absent:
            warnings.append(f"the image has no {', '.join(absent)}")
        return self._decided(
            c,
            Outcome.ALREADY_CACHED,
            reason="; ".join(warnings) or None,
            severity=Severity.WARNING if warnings else Severity.OK,
            digest=digest,
            platforms=platforms or None,
            size=size,
            pulls_remaining=budget.remaining(allowance_key(c.rule)),
        )

    def _learn(
        self, c: Candidate, digest: str, platforms: tuple[str, ...], absent: tuple[str, ...], size: int, children: int
    ) -> None:
        from pullthrough.aws.ledger import Verified

        wanted = tuple(sorted(c.platforms))
        found = Verified(c.repository, c.tag, digest, wanted, platforms, absent, size, self.clock(), children)
        with self._lock:
            self._learned.append(found)

    def _mismatch(self, c: Candidate, upstream: str, pinned: str, held: str | None) -> Decided:
        in_ecr = f"; ECR holds {held}" if held else ""
        return self._decided(
            c,
            Outcome.FAILED,
            reason=f"digest mismatch: the upstream tag points at {upstream}, not the pinned {pinned}{in_ecr}",
            fix=fix_for(Reason.DIGEST_MISMATCH, image=c.subject),
            reason_code=Reason.DIGEST_MISMATCH.value,
            digest=upstream,
        )

    def _decided(
        self,
        c: Candidate,
        outcome: Outcome,
        *,
        reason: str | None = None,
        fix: str | None = None,
        reason_code: str | None = None,
        severity: Severity | None = None,
        **facts: Any,
    ) -> Decided:
        extra: dict[str, Any] = {"severity": severity} if severity is not None else {}
        item = ReportItem(
            subject=c.subject,
            outcome=outcome,
            reason=reason,
            fix=fix,
            reason_code=reason_code,
            details=_candidate_details(c, **facts),
            **extra,
        )
        return Decided(c.key, item)

    # --- runs open at the same time ----------------------------------------------------------------------------

    def _leave_in_flight(self, candidates: list[Candidate], decided: list[Decided]) -> list[Candidate]:
        """The candidates no open run is warming; each one that is becomes `skipped`, naming the run."""
        left = []
        for c in candidates:
            holder = self.in_flight.get(c.key)
            if holder is None:
                left.append(c)
                continue
            decided.append(
                self._decided(
                    c,
                    Outcome.SKIPPED,
                    reason=f"run {holder.run_id} ({holder.trigger}) is warming it; its report gives the outcome",
                    fix=fix_for(Reason.IN_FLIGHT, image=c.subject),
                    reason_code=Reason.IN_FLIGHT.value,
                    severity=Severity.OK,
                )
            )
        return left

    def _in_flight_notes(self, decided: list[Decided]) -> list[str]:
        runs: dict[str, int] = {}
        for d in decided:
            if d.item.reason_code == Reason.IN_FLIGHT.value:
                holder = self.in_flight[d.key]
                runs[holder.run_id] = runs.get(holder.run_id, 0) + 1
        return [
            f"{count} image(s) skipped: run {run_id} is still open and warming them (its report gives their "
            "outcome); this run plans only what no open run holds, so no image is imported twice and neither "
            "run waits for the other"
            for run_id, count in sorted(runs.items())
        ]

    # --- the budget --------------------------------------------------------------------------------------------

    def _draw(
        self, wanted: list[Wanted], budget: Budget, run_id: str
    ) -> tuple[list[WarmJob], list[Decided], list[str]]:
        """Fit the jobs into the budget and draw what they cost from the allowances open runs share: a draw another
        planner overtook is fitted again on what that planner left."""
        for _ in range(DRAW_ATTEMPTS):
            if self.allowances is not None:
                budget.share_with(run_id, self.allowances.shared(budget.limited()) if budget.limited() else {})
            jobs, deferred, notes = self._fit(wanted, budget, run_id)
            if self.allowances is None or all(self.allowances.draw(a) for a in budget.drawn(self.clock())):
                return jobs, deferred, _sharing_notes(budget) + notes
        raise AwsError(
            "dynamodb:PutItem",
            "the ledger's shared pull allowances",
            "ConditionalCheckFailedException",
            f"other planners changed the allowance {DRAW_ATTEMPTS} times while this run drew from it; start the run "
            "again",
        )

    def _fit(self, wanted: list[Wanted], budget: Budget, run_id: str) -> tuple[list[WarmJob], list[Decided], list[str]]:
        """Jobs in order of need (absent, then incomplete, then moved); what the budget cannot pay is deferred."""
        priority = {"warm": 0, "complete": 1, "refresh": 2}
        imports = self.config.warm.imports
        wait = Wait(imports.poll, imports.download_after, imports.give_up_after, imports.download)
        jobs: list[WarmJob] = []
        deferred: list[Decided] = []
        for want in sorted(wanted, key=lambda w: (priority[w.action], w.order)):
            c = want.candidate
            key = allowance_key(c.rule)
            if not budget.take(key, want.cost):
                remaining = budget.remaining(key)
                item = ReportItem(
                    subject=c.subject,
                    outcome=Outcome.DEFERRED,
                    reason=_deferral(budget, key, c.rule.entry.title, want.cost),
                    fix=fix_for(Reason.BUDGET, image=c.subject),
                    reason_code=Reason.BUDGET.value,
                    details=_candidate_details(c, digest=want.expected_digest, pulls_remaining=remaining),
                )
                deferred.append(Decided(c.key, item))
                continue
            jobs.append(
                WarmJob(
                    run_id=run_id,
                    key=c.key,
                    subject=c.subject,
                    rule=c.rule.prefix,
                    secret=c.rule.secret_name,
                    upstream=c.rule.upstream,
                    repository=c.repository,
                    upstream_repository=c.upstream_repository,
                    tag=c.tag,
                    pinned=c.reference.digest,
                    platforms=c.platforms,
                    action=want.action,
                    expected_digest=want.expected_digest,
                    previous_digest=want.previous_digest,
                    cost=want.cost,
                    pulls_remaining=budget.left(key),
                    wait=wait,
                    source=c.source,
                )
            )
        notes: list[str] = []
        if deferred:
            rules = sorted({d.item.details.rule or "" for d in deferred})
            notes.append(
                f"{len(deferred)} image(s) deferred: this run spent its share ({self.config.warm.budget_share:.0%}) "
                f"of the remaining pulls of rule(s) {', '.join(rules)}; the next run warms them first, since what "
                "this run warmed costs no pulls then."
            )
        return jobs, deferred, notes


def _deferral(budget: Budget, key: str, upstream: str, cost: int) -> str:
    """Why an image did not fit: the allowance, who spent it, and what the image needs."""
    share, spent = f"{budget.share:.0%}", budget.spent(key)
    shared = budget.shared(key)
    if shared is None:
        return (
            f"budget: this run may spend {share} of the {budget.remaining(key)} pulls {upstream} has left "
            f"({budget.allowance(key)}); {spent} are spent and this image needs {cost}"
        )
    holders = ", ".join(f"{draw.run_id} ({draw.pulls})" for draw in shared.holders(budget.run_id))
    return (
        f"budget: the runs open at once may spend {share} of the {shared.base} pulls {upstream} had left when the "
        f"first of them planned; open run(s) {holders} hold {shared.drawn(budget.run_id)}, this run spent {spent} "
        f"and this image needs {cost}"
    )


def _sharing_notes(budget: Budget) -> list[str]:
    """One note per allowance this run shares with another open run."""
    notes = []
    for key in budget.limited():
        shared = budget.shared(key)
        if shared is None:
            continue
        runs = ", ".join(draw.run_id for draw in shared.holders(budget.run_id))
        notes.append(
            f"run(s) {runs} still open: this run drew {budget.spent(key)} pull(s) from the allowance it shares with "
            f"them ({key.split('#', 1)[0]}), {budget.share:.0%} of the {shared.base} pulls left when the first of "
            f"them planned, of which they hold {shared.drawn(budget.run_id)}"
        )
    return notes


# An index never imported before: its manifests are estimated from its size at one per this many bytes. An index entry
# (a descriptor with a platform) is about 200 bytes written compactly and 400 to 700 pretty-printed with BuildKit's
# attestation annotations, as Docker Hub serves them; 250 over-counts most indexes a little and under-counts few.
INDEX_BYTES_PER_MANIFEST = 250


def estimate_children(size: int, platforms: int) -> int:
    """Manifests an index of `size` bytes probably lists: never fewer than the platforms wanted from it."""
    return max(math.ceil(size / INDEX_BYTES_PER_MANIFEST), platforms)


def _children_known(remembered: dict[tuple[str, str], Verified]) -> dict[tuple[str, str | None], int]:
    """What earlier imports showed: manifests listed by (repository, digest), and the most any index of a repository
    listed (repository, None), which prices a new tag of a repository whose platforms rarely change."""
    known: dict[tuple[str, str | None], int] = {}
    for verified in remembered.values():
        if verified.children:
            known[(verified.repository, verified.digest)] = verified.children
            known[(verified.repository, None)] = max(known.get((verified.repository, None), 0), verified.children)
    return known


# --- plan_warming ----------------------------------------------------------------------------------------------------


class RunSummary(BaseModel):
    """What plan_warming did: the run it opened, and the earlier runs it closed."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    trigger: str
    planned: int
    queued: int
    decided: dict[str, int]
    closed_runs: tuple[str, ...] = ()
    dry_run: bool = False


def new_run_id(now: datetime) -> str:
    """`warm-2026-11-23T10-00-00Z-1a2b3c`: sortable, readable, unique."""
    return f"warm-{now.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}-{secrets.token_hex(3)}"


def make_plan(
    config: Config,
    settings: Settings,
    request: WarmRequest,
    run_id: str,
    *,
    ecr: EcrView | None = None,
    upstream_for: UpstreamFor | None = None,
    memory: Memory | None = None,
    allowances: Allowances | None = None,
    in_flight: Mapping[str, InFlight] | None = None,
    ecs: sources.EcsReader | None = None,
) -> Plan:
    """Plan one run against ECR and the upstreams the settings point at (what `memory` recalls, what open runs hold
    and drew)."""
    planner = Planner(
        config,
        ecr if ecr is not None else AwsEcr(settings.region),
        upstream_for
        if upstream_for is not None
        else (lambda rule: kept_upstream_client(rule, settings, connections=PLAN_WORKERS)),
        memory=memory,
        allowances=allowances,
        in_flight=in_flight or {},
        keeps_clients=upstream_for is None,
        ecs=ecs if ecs is not None else ecs_reader(config, settings),
    )
    return planner.plan(request, run_id)


def ecs_reader(config: Config, settings: Settings) -> sources.EcsReader | None:
    """The ecs sources' reader over the ECS adapter in the settings' region; None without an ecs source (no call)."""
    if not any(isinstance(source, EcsSource) for source in config.warm.sources):
        return None
    from pullthrough.aws import ecs

    return ecs_source.reader(config, lambda prefix: ecs.task_definitions(prefix, settings.region))


def handle(event: dict[str, Any], settings: Settings, *, now: datetime | None = None) -> RunSummary:
    """plan_warming: close runs that cannot complete, plan a new run, record it in the ledger and queue its jobs.

    A run with nothing to queue is reported here, from the plan; the ledger keeps its META only (closed, reported).
    """
    config = config_module.load(settings.config_path)
    request = WarmRequest.from_event(event)
    started = now or datetime.now(UTC)
    run_id = new_run_id(started)
    logger.append_keys(run_id=run_id)
    account_of(settings)  # fails before any work when reports could not name the account
    if settings.dry_run:
        # What a run would do now: around the open runs and within what they drew, drawing nothing itself.
        looked = ledger_for(settings) if settings.ledger_table else None
        plan = make_plan(
            config,
            settings,
            request,
            run_id,
            allowances=_Looking(looked) if looked is not None else None,
            in_flight=in_flight(looked) if looked is not None else None,
        )
        publish(dry_run_report(plan, config, settings, request.trigger, started), config, settings)
        return _summary(plan, request, queued=0, dry_run=True)
    if not settings.queue_url:
        raise SettingsError("WARM_QUEUE_URL is not set: it names the warm job queue (template.yaml: WarmQueue)")
    ledger = ledger_for(settings)
    closed = sweep(ledger, config, settings, started)
    plan = make_plan(config, settings, request, run_id, memory=ledger, allowances=ledger, in_flight=in_flight(ledger))
    _remember(ledger, plan.verified)
    if not plan.jobs:
        _report_whole_run(ledger, plan, config, settings, request.trigger, started)
        logger.info(
            "warm run planned: nothing to queue",
            extra={"planned": plan.planned, "queued": 0, "trigger": request.trigger, "closed_runs": closed},
        )
        return _summary(plan, request, queued=0, closed=tuple(closed))
    ledger.open_run(
        run_id,
        trigger=request.trigger,
        stack=config.stack,
        started=started,
        deadline=started
        + STALE_AFTER
        + timedelta(seconds=config.warm.imports.give_up_after + DRAIN_SECONDS_PER_JOB * len(plan.jobs)),
        jobs=ledger_entries(plan),
        notes=plan.notes,
    )
    from pullthrough.aws import queue

    queued = queue.send_batch(settings.queue_url, [job.model_dump_json(exclude_none=True) for job in plan.jobs])
    logger.info(
        "warm run planned",
        extra={"planned": plan.planned, "queued": queued, "trigger": request.trigger, "closed_runs": closed},
    )
    return _summary(plan, request, queued=queued, closed=tuple(closed))


def in_flight(ledger: Ledger) -> dict[str, InFlight]:
    """The images runs still open are warming (their pending jobs), by key: a new run leaves them to those runs."""
    from pullthrough.aws.ledger import PENDING

    held: dict[str, InFlight] = {}
    for state in ledger.open_runs():
        if state.closed:
            continue
        for job in ledger.jobs(state.run_id):
            if job.status == PENDING:
                held.setdefault(job.key, InFlight(state.run_id, state.trigger, state.started))
    return held


@dataclass(frozen=True)
class _Looking:
    """A dry run's view of the shared allowances: it reads them, and draws nothing."""

    ledger: Ledger

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]:
        return self.ledger.shared(keys)

    def draw(self, allowance: Shared) -> bool:
        return True


def _remember(ledger: Ledger, verified: Sequence[Verified]) -> None:
    """Remember what the plan verified in full; a failure costs the next run a full verification, nothing more."""
    if not verified:
        return
    try:
        ledger.remember(verified)
    except AwsError as exc:
        logger.warning("verified images could not be remembered", extra={"images": len(verified), "error": str(exc)})


def _report_whole_run(
    ledger: Ledger, plan: Plan, config: Config, settings: Settings, trigger: str, started: datetime
) -> None:
    """Report a run the planner decided whole, as its ledger items would report it, then write its closed META."""
    from pullthrough.aws.ledger import JobRecord, RunState

    entries = sorted(ledger_entries(plan), key=lambda entry: entry.key)
    state = RunState(
        run_id=plan.run_id,
        planned=len(entries),
        done=len(entries),
        counts={},
        status="closed",
        trigger=trigger,
        stack=config.stack,
        started=started,
        deadline=started,
        notes=plan.notes,
    )
    records = [JobRecord(e.key, e.subject, e.status, e.outcome, e.report_item) for e in entries]
    publish(run_report(state, records, settings), config, settings)
    ledger.reported_run(
        plan.run_id, trigger=trigger, stack=config.stack, started=started, jobs=entries, notes=plan.notes
    )


def preview(config: Config, settings: Settings, request: WarmRequest) -> tuple[Plan, Report]:
    """What a warm run would do now, writing nothing (`pullthrough plan`): with a ledger (settings.ledger_table) it
    recalls verified images, leaves images open runs are warming to them and reads, never draws, their allowances."""
    if not settings.account_id:
        from pullthrough.aws import ecr

        settings = settings.model_copy(update={"account_id": ecr.registry_account(settings.region)})
    started = datetime.now(UTC)
    looked = ledger_for(settings) if settings.ledger_table else None
    plan = make_plan(
        config,
        settings,
        request,
        new_run_id(started),
        memory=looked,
        allowances=_Looking(looked) if looked is not None else None,
        in_flight=in_flight(looked) if looked is not None else None,
    )
    return plan, dry_run_report(plan, config, settings, request.trigger, started)


def run_here(config: Config, settings: Settings, request: WarmRequest, *, dry_run: bool = False) -> Report:
    """Plan and warm in this process, without queue or ledger (the CLI): the same decisions and outcomes, one report."""
    if not settings.account_id:
        from pullthrough.aws import ecr

        settings = settings.model_copy(update={"account_id": ecr.registry_account(settings.region)})
    started = datetime.now(UTC)
    plan = make_plan(config, settings, request, new_run_id(started))
    if dry_run:
        return dry_run_report(plan, config, settings, request.trigger, started)
    worker = Worker(settings, config=config)
    items = [d.item for d in plan.decided]
    try:
        for job in plan.jobs:
            items.append(worker.until_done(job))
            logger.info(f"{job.subject}: {items[-1].outcome.label}", extra=items[-1].to_log())
    finally:
        worker.close()
    notes = list(plan.notes)
    if any(item.reason_code == TAG_MOVED for item in items) and MOVED_TAG_NOTE not in notes:
        notes.append(MOVED_TAG_NOTE)
    return Report(
        kind=Kind.WARM,
        stack=config.stack,
        region=settings.region,
        account=account_of(settings),
        run_id=plan.run_id,
        trigger=request.trigger,
        started=started,
        items=tuple(items),
        notes=tuple(notes),
    )


def ledger_entries(plan: Plan) -> list[JobEntry]:
    """The plan as ledger items: decided outcomes done, jobs pending."""
    from pullthrough.aws.ledger import DONE, JobEntry

    entries = [
        JobEntry(
            key=d.key,
            subject=d.item.subject,
            status=DONE,
            outcome=d.item.outcome.value,
            report_item=d.item.model_dump_json(exclude_none=True),
        )
        for d in plan.decided
    ]
    entries += [JobEntry(key=job.key, subject=job.subject) for job in plan.jobs]
    return entries


def sweep(ledger: Ledger, config: Config, settings: Settings, now: datetime) -> list[str]:
    """Close and report earlier runs that cannot complete (their deadline passed), or completed unreported."""
    closed: list[str] = []
    for state in ledger.open_runs():
        overdue = now >= state.deadline
        if state.closed:
            if overdue:  # its closer could not publish, and SQS gave up redelivering
                report_run(ledger, state, config, settings)
                closed.append(state.run_id)
        elif (state.complete or overdue) and ledger.close(state.run_id, by="planner"):
            logger.warning(
                "closing a run that cannot complete",
                extra={"closed_run": state.run_id, "planned": state.planned, "done": state.done},
            )
            report_run(ledger, ledger.run(state.run_id) or state, config, settings)
            closed.append(state.run_id)
    return closed


def dry_run_report(plan: Plan, config: Config, settings: Settings, trigger: str, started: datetime) -> Report:
    """What a run would do: the decided outcomes, and each job as the outcome it would aim for."""
    items = [d.item for d in plan.decided]
    for job in plan.jobs:
        outcome = Outcome.REFRESHED if job.action == "refresh" else Outcome.WARMED
        items.append(
            ReportItem(
                subject=job.subject,
                outcome=outcome,
                reason=f"dry run: would pull it through ECR ({job.cost} upstream pull(s) budgeted)",
                details=Details(
                    rule=job.rule,
                    upstream=job.upstream,
                    repository=job.repository,
                    digest=job.expected_digest,
                    previous_digest=job.previous_digest if job.action == "refresh" else None,
                    platforms=job.platforms,
                    pulls_remaining=job.pulls_remaining,
                    source=job.source,
                ),
            )
        )
    return Report(
        kind=Kind.WARM,
        stack=config.stack,
        region=settings.region,
        account=account_of(settings),
        run_id=plan.run_id,
        trigger=trigger,
        started=started,
        dry_run=True,
        items=tuple(items),
        notes=plan.notes,
    )


def _summary(
    plan: Plan, request: WarmRequest, *, queued: int, closed: tuple[str, ...] = (), dry_run: bool = False
) -> RunSummary:
    counts: dict[str, int] = {}
    for decided in plan.decided:
        counts[decided.item.outcome.value] = counts.get(decided.item.outcome.value, 0) + 1
    return RunSummary(
        run_id=plan.run_id,
        trigger=request.trigger,
        planned=plan.planned,
        queued=queued,
        decided=counts,
        closed_runs=closed,
        dry_run=dry_run,
    )


__all__ = [
    "Allowances",
    "AwsEcr",
    "Candidate",
    "Decided",
    "EcrView",
    "InFlight",
    "Memory",
    "Plan",
    "Planner",
    "RunSummary",
    "TagChoice",
    "Upstream",
    "Version",
    "Wanted",
    "WarmRequest",
    "choose_tags",
    "dry_run_report",
    "handle",
    "in_flight",
    "latest_versions",
    "ledger_entries",
    "make_plan",
    "new_run_id",
    "run_here",
    "select_tags",
    "sweep",
]
