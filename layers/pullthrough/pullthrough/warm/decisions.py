"""Decisions, ECR first: for each candidate, what ECR holds and the upstream's free HEAD say the run must do.

    tokens       for an upstream whose realm grants several scopes in one token (Docker Hub), one token request per
                 up to 50 repositories whose tags will be HEADed; other upstreams ask per repository as they go
    first look   ECR's tag (one DescribeImages per repository) and a HEAD upstream, which Docker Hub does not count
                 as a pull: archived, a pinned digest the upstream no longer serves, absent (warm), moved (refresh),
                 failed, or held at the upstream's digest (to verify). A tag ECR holds is HEADed only when it is due
                 for ECR's daily re-check (ECR_RECHECK, LOOK_SLACK); a pinned digest ECR holds, never
    verify       for what ECR holds, its manifests and blobs (verification.py), unless an earlier run verified that
                 very digest for these platforms: already cached, or incomplete (complete)

Planning never GETs a manifest upstream itself. Separate from selection (what to decide about) and the budget (what
fits): this module holds every rule that turns an answer of ECR or the upstream into an outcome or a job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pullthrough.aws.ecr import EcrImage
from pullthrough.aws.ledger import Verified
from pullthrough.config import Rule
from pullthrough.errors import AwsError, PullthroughError
from pullthrough.observability import logger
from pullthrough.registry.client import ManifestHead
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.budget import Budget, allowance_key
from pullthrough.warm.cost import Known, import_cost
from pullthrough.warm.importing import ARCHIVED, AVAILABLE
from pullthrough.warm.outcomes import Reason, failure, fix_for
from pullthrough.warm.plan import Candidate, Decided, Wanted, decided
from pullthrough.warm.ports import EcrTags, EcrView, SharedTokens, Upstream
from pullthrough.warm.verification import Fetched, fetch, read_copy

# Repositories decided at once; each one's tags share the planner's pool for their HEADs.
REPOSITORY_WORKERS = 8
# ECR re-checks a cached tag upstream at most once per 24 hours, and cannot be made to sooner (FACTS.md;
# aws/containers-roadmap#2254). A HEAD sooner than that after the last look finds nothing ECR would act on yet, so a
# tag ECR holds is HEADed only once Pullthrough's last look at it upstream (a HEAD, or an import or refresh it
# triggered: the ledger's verified memory keeps the time) is this old, less LOOK_SLACK.
ECR_RECHECK = timedelta(hours=24)
# Schedule jitter. A look is recorded when it happens, some way into its run: a HEAD up to one plan_warming invocation
# in (its timeout is 300 s, a shard's queue hop adds seconds), an import when its job is first received. The run 24 h
# later can reach the tag sooner into its own invocation; without slack the tag would wait a whole schedule period
# more (6 h by default). 30 minutes covers those delays and is small beside any sensible schedule period, so a tag
# is never looked at more than half an hour before its day is up.
LOOK_SLACK = timedelta(minutes=30)
# Characters of repository names one shared token may cover, besides the upstream's count (upstreams.py). The realm
# signs each scope into the token's `access` claim (about 45 characters of JSON besides the name), and every HEAD
# carries the token: 1,500 characters of names keep a 50-scope token near 6 KB, under the 8 KB a request header
# line may take in common HTTP front ends (nginx's default large_client_header_buffers).
SHARED_TOKEN_NAMES = 1500

Outcomes = Decided | Wanted
Head = ManifestHead | PullthroughError | None


@dataclass(frozen=True)
class Check:
    """ECR holds the tag at `digest`: whether it is complete is verified with the rest of its repository."""

    digest: str
    note: str | None = None
    looked: datetime | None = None  # when this run HEADed the tag upstream (None: it did not, or the HEAD failed)


def aws_failed(c: Candidate, exc: AwsError) -> Decided:
    """An AWS error on this image's own ECR calls fails this image only, not the whole run."""
    logger.warning("ECR could not be asked about an image", extra={"subject": c.subject, "error": str(exc)})
    found = failure(exc, image=c.subject, rule=c.rule.prefix, secret=c.rule.secret_name)
    return decided(c, Outcome.FAILED, reason=found.text, fix=found.fix, reason_code=found.reason.value)


def archived(c: Candidate, digest: str, said: str) -> Decided:
    """ECR holds the image in its archive storage class: a warning with the restore fix, not a new pull."""
    return decided(
        c,
        Outcome.ALREADY_CACHED,
        reason=f"archived: ECR holds the image in its archive storage class ({said}); pulls fail until restored",
        fix=fix_for(Reason.ARCHIVED, image=c.subject, repository=c.repository, digest=digest),
        reason_code=Reason.ARCHIVED.value,
        severity=Severity.WARNING,
        digest=digest,
    )


def mismatch(c: Candidate, upstream: str, pinned: str, held: str | None) -> Decided:
    in_ecr = f"; ECR holds {held}" if held else ""
    return decided(
        c,
        Outcome.FAILED,
        reason=f"digest mismatch: the upstream tag points at {upstream}, not the pinned {pinned}{in_ecr}",
        fix=fix_for(Reason.DIGEST_MISMATCH, image=c.subject),
        reason_code=Reason.DIGEST_MISMATCH.value,
        digest=upstream,
    )


def already_cached(c: Candidate, verified: Verified, budget: Budget, note: str | None) -> Decided:
    """ECR holds every wanted platform (as `verified`, now or by an earlier run); a warning for what the image lacks."""
    warnings = [note] if note else []
    if verified.absent:
        warnings.append(f"the image has no {', '.join(verified.absent)}")
    return decided(
        c,
        Outcome.ALREADY_CACHED,
        reason="; ".join(warnings) or None,
        severity=Severity.WARNING if warnings else Severity.OK,
        digest=verified.digest,
        platforms=verified.platforms or None,
        size=verified.size,
        pulls_remaining=budget.remaining(allowance_key(c.rule)),
    )


def token_batches(repositories: list[str], scopes: int) -> list[list[str]]:
    """The repositories in batches of at most `scopes`, and of SHARED_TOKEN_NAMES characters of names."""
    batches: list[list[str]] = []
    batch: list[str] = []
    chars = 0
    for name in repositories:
        if batch and (len(batch) == scopes or chars + len(name) > SHARED_TOKEN_NAMES):
            batches.append(batch)
            batch, chars = [], 0
        batch.append(name)
        chars += len(name)
    return [*batches, batch] if batch else batches


@dataclass
class Decider:
    """Decides a plan's candidates against ECR and the upstreams (`upstream`: a rule's client, None: not asked)."""

    ecr: EcrView
    upstream: Callable[[Rule], Upstream | None]
    budget: Budget
    remembered: dict[tuple[str, str], Verified]  # what earlier runs verified
    known: Known  # the manifests earlier imports of an index showed (cost.py)
    clock: Callable[[], datetime]
    learned: list[Verified] = field(default_factory=list)  # what this plan verified in full, to remember
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide_all(self, candidates: list[Candidate], pool: ThreadPoolExecutor) -> list[Outcomes]:
        """Every candidate's decision, in order, with ECR asked per repository rather than per tag.

        First, the token requests Docker Hub's HEADs share (`_share_tokens`). Then per repository, three steps: the
        tags ECR holds (one DescribeImages), a HEAD upstream per tag that is due (on `pool`, so a repository's tags
        overlap), then, for what ECR holds, its manifests and blobs (one BatchGetImage per level and one
        BatchCheckLayerAvailability), unless an earlier run verified that very digest for these platforms.
        Repositories go REPOSITORY_WORKERS at a time, so one's ECR calls overlap another's HEADs. A large warm list
        is mostly many tags of fewer repositories, and ECR's API rate limits count calls, not tags.
        """
        now = self.clock()
        by_repository: dict[str, list[tuple[int, Candidate]]] = {}
        for index, c in enumerate(candidates):
            by_repository.setdefault(c.repository, []).append((index, c))
        self._share_tokens([c for c in candidates if self.heads_first(c, now)], pool)

        def repository(item: tuple[str, list[tuple[int, Candidate]]]) -> list[tuple[int, Outcomes]]:
            return self._repository(item[0], item[1], pool)

        outcomes: dict[int, Outcomes] = {}
        with ThreadPoolExecutor(max_workers=REPOSITORY_WORKERS) as repositories:
            for results in repositories.map(repository, by_repository.items()):
                outcomes.update(results)
        return [outcomes[index] for index in range(len(candidates))]

    def due(self, c: Candidate, now: datetime) -> bool:
        """Whether the tag's copy in ECR is due for ECR's daily re-check: no look at it upstream remembered, or the
        last one ECR_RECHECK (less LOOK_SLACK) ago. A pinned tag always is (it is HEADed only when ECR's tag is not
        at the pinned digest)."""
        known = self.remembered.get((c.repository, c.tag))
        if c.reference.digest is not None or known is None or known.looked is None:
            return True
        return now - known.looked >= ECR_RECHECK - LOOK_SLACK

    def heads_first(self, c: Candidate, now: datetime) -> bool:
        """Whether the tag is HEADed while ECR is asked: due and not pinned (a pinned tag ECR holds at its digest
        needs no HEAD; a tag not due needs one only if ECR lacks it, which its DescribeImages tells)."""
        return c.reference.digest is None and self.due(c, now)

    def _share_tokens(self, heading: list[Candidate], pool: ThreadPoolExecutor) -> None:
        """One token request per `token_scopes` repositories of each upstream whose realm grants several scopes in
        one token (upstreams.py: Docker Hub), for the repositories whose tags are HEADed; the HEADs then use it."""
        by_rule: dict[str, tuple[Rule, dict[str, None]]] = {}
        for c in heading:
            if c.rule.entry.token_scopes > 1:
                by_rule.setdefault(c.rule.prefix, (c.rule, {}))[1][c.upstream_repository] = None
        batches = [
            (rule, batch)
            for rule, names in by_rule.values()
            for batch in token_batches(list(names), rule.entry.token_scopes)
        ]
        list(pool.map(lambda batch: self._share(*batch), batches))

    def _share(self, rule: Rule, repositories: list[str]) -> None:
        try:
            client = self.upstream(rule)
            if isinstance(client, SharedTokens):
                client.authorize_pulls(repositories)
        except PullthroughError as exc:
            # Each repository's HEAD asks for its own token then, and fails with the realm's reason if it must.
            logger.info("no shared token: asking per repository", extra={"rule": rule.prefix, "error": str(exc)})

    def _repository(
        self, name: str, indexed: list[tuple[int, Candidate]], pool: ThreadPoolExecutor
    ) -> list[tuple[int, Outcomes]]:
        # The HEADs go out while ECR is asked (a pinned tag ECR already holds at its digest needs none).
        now = self.clock()
        due = {i: self.due(c, now) for i, c in indexed}
        heads = {i: pool.submit(self.head, c) for i, c in indexed if self.heads_first(c, now)}
        held = self._held_tags(name, [c for _, c in indexed])
        first = [self._first_look(c, held, heads.get(i), due=due[i]) for i, c in indexed]
        checks = []
        verified: dict[int, Outcomes] = {}
        for (i, c), look in zip(indexed, first, strict=True):
            if not isinstance(look, Check):
                continue
            known = self.remembered.get((c.repository, c.tag))
            if known is not None and known.matches(look.digest, c.platforms):
                verified[i] = already_cached(c, known, self.budget, look.note)
                if look.looked is not None:
                    self._learn(replace(known, looked=look.looked))  # the look is what the next run reckons from
            else:
                checks.append((i, c, look))
        if checks:
            verified.update(self._verify_repository(name, checks))
        return [
            (i, verified[i] if isinstance(look, Check) else look) for (i, _), look in zip(indexed, first, strict=True)
        ]

    def _held_tags(self, repository: str, candidates: list[Candidate]) -> dict[str, EcrImage] | AwsError:
        """Which of these tags ECR holds in the repository (an AWS error fails only this repository's images)."""
        tags = list(dict.fromkeys(c.tag for c in candidates))
        try:
            if len(tags) > 1 and isinstance(self.ecr, EcrTags):
                return self.ecr.describe_images(repository, tags)
            return {tag: image for tag in tags if (image := self.ecr.describe_image(repository, tag)) is not None}
        except AwsError as exc:
            return exc

    def head(self, c: Candidate) -> Head:
        """The upstream's HEAD of the tag; None when Pullthrough may not ask this upstream."""
        try:
            client = self.upstream(c.rule)
            return client.head_manifest(c.upstream_repository, c.tag) if client is not None else None
        except PullthroughError as exc:
            return exc

    def _first_look(
        self, c: Candidate, tags: dict[str, EcrImage] | AwsError, asked: Future[Head] | None, *, due: bool = True
    ) -> Outcomes | Check:
        """What ECR's tag and the upstream's HEAD (`asked`, or asked now) decide; `Check`: ECR's copy to verify.

        A tag ECR holds that is not `due` is not HEADed: ECR's copy is verified (or recalled) as it is."""
        if isinstance(tags, AwsError):
            return aws_failed(c, tags)
        held = tags.get(c.tag)
        if held is not None and held.status in ("ARCHIVED", "ACTIVATING"):
            # botocore's ImageStatus: an archived (or restoring) image is not pulled until it is restored.
            return archived(c, held.digest, held.status)
        if held is not None and c.reference.digest is not None and held.digest == c.reference.digest:
            return Check(held.digest)
        if held is not None and not due:
            return Check(held.digest)
        looked = asked.result() if asked is not None else self.head(c)
        head = looked if not isinstance(looked, PullthroughError) else None
        problem = looked if isinstance(looked, PullthroughError) else None
        if head is not None:
            self.budget.observe(allowance_key(c.rule), head.rate_limit)
        if held is not None:
            return self._held(c, held.digest, head, problem)
        return self._absent(c, head, problem)

    def _held(
        self, c: Candidate, held: str, head: ManifestHead | None, problem: PullthroughError | None
    ) -> Outcomes | Check:
        """ECR holds the tag at `held`: verify it when the upstream's tag has not moved (or cannot say), or refresh."""
        pinned = c.reference.digest
        if head is None or head.digest == held:
            note = f"the upstream could not be asked whether the tag moved: {problem}" if problem else None
            return Check(held, note, self.clock() if head is not None else None)
        if pinned is not None and head.digest != pinned:
            return mismatch(c, head.digest, pinned, held)
        return Wanted(c, "refresh", self._cost(c, head), expected_digest=head.digest, previous_digest=held)

    def _absent(self, c: Candidate, head: ManifestHead | None, problem: PullthroughError | None) -> Outcomes:
        """ECR lacks the tag: warm it, unless the upstream failed or serves another digest than the pinned one."""
        pinned = c.reference.digest
        if problem is not None:
            found = failure(problem, image=c.subject, rule=c.rule.prefix, secret=c.rule.secret_name)
            return decided(c, Outcome.FAILED, reason=found.text, fix=found.fix, reason_code=found.reason.value)
        if head is not None and pinned is not None and head.digest != pinned:
            return mismatch(c, head.digest, pinned, None)
        return Wanted(c, "warm", self._cost(c, head) if head else 0, expected_digest=head.digest if head else None)

    def _cost(self, c: Candidate, head: ManifestHead) -> int:
        return import_cost(c, head, self.known)

    def _verify_repository(
        self, repository: str, checks: list[tuple[int, Candidate, Check]]
    ) -> list[tuple[int, Outcomes]]:
        """Verify ECR's copies of one repository's tags: their manifests, their platforms' manifests, their blobs."""
        try:
            fetched = fetch(self.ecr, repository, [(c, check.digest) for _, c, check in checks])
        except AwsError as exc:
            return [(index, aws_failed(c, exc)) for index, c, _ in checks]
        return [(index, self._verified(c, check, fetched)) for index, c, check in checks]

    def _verified(self, c: Candidate, check: Check, fetched: Fetched) -> Outcomes:
        """already_cached when ECR holds every wanted platform's manifest, config and layers; else a complete job."""
        digest = check.digest
        incomplete = Wanted(c, "complete", 0, expected_digest=digest, previous_digest=digest)
        copy = read_copy(c, digest, fetched)
        if copy is None:
            return incomplete
        if copy.missing:
            return replace(incomplete, cost=copy.missing)
        sizes = copy.sizes
        held = fetched.held
        in_archive = [d for d in sizes if held.get(d) == ARCHIVED]
        if in_archive:
            return archived(c, digest, f"{len(in_archive)} layer(s) ARCHIVED")
        if not all(held.get(d) == AVAILABLE for d in sizes):
            return incomplete
        wanted = tuple(sorted(c.platforms))
        known = self.remembered.get((c.repository, c.tag))
        found = Verified(
            c.repository,
            c.tag,
            digest,
            wanted,
            copy.platforms,
            copy.absent,
            sum(sizes.values()),
            self.clock(),
            copy.listed,
            check.looked or (known.looked if known is not None else None),
        )
        self._learn(found)
        return already_cached(c, found, self.budget, check.note)

    def _learn(self, verified: Verified) -> None:
        with self._lock:
            self.learned.append(verified)
