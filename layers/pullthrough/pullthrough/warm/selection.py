"""Selection: what a warm request expands to, the image tags to decide about.

    targets    the warm list's entries (warm.images and what warm.sources read), the rules a reconcile names, or a
               manual selection of references (a failed item for each one that cannot be warmed)
    tags       an entry's named tags, then what its tag pattern and latest-N pick (by semantic version) from the
               upstream's tags/list; a failed item when the list cannot be read or nothing in it is selected
    candidates one per repository and tag, with the platforms every entry naming it wants

Separate from the decisions: it asks the upstream for tag lists only, and ECR nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from pullthrough import sources, versions
from pullthrough.config import Config, Rule, WarmImage, WarmTarget
from pullthrough.errors import ConfigError, InvalidReference, PullthroughError, RegistryError
from pullthrough.reference import ImageReference, upstream_repository
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.sources import ecs as ecs_source
from pullthrough.warm.outcomes import Reason, failure, fix_for
from pullthrough.warm.plan import Candidate, Decided
from pullthrough.warm.ports import Upstream
from pullthrough.warm.request import WarmRequest


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
            note = picked.note(selection_text(image))
            found = picked.tags
        else:
            found = versions.highest_first(matching)
        chosen += [tag for tag in found if tag not in chosen]
    return TagChoice(chosen, note)


def select_tags(image: WarmImage, upstream_tags: Sequence[str] | None) -> list[str]:
    """The tags `choose_tags` picks, without its note."""
    return choose_tags(image, upstream_tags).tags


def selection_text(image: WarmImage) -> str:
    parts = []
    if image.tag_pattern is not None:
        parts.append(f"tags matching {image.tag_pattern}")
    if image.latest is not None:
        parts.append(f"latest {image.latest}")
    return f"{image.image.name} ({', '.join(parts)})"


def _target_details(target: WarmTarget) -> Details:
    rule = target.rule
    return Details(rule=rule.prefix, upstream=rule.upstream, repository=target.cache_repository, source=target.source)


def source_problems(reading: sources.Reading) -> list[Decided]:
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


def merge(by_key: dict[str, Candidate], candidate: Candidate) -> None:
    """Add the candidate; two entries naming the same tag warm it once, for every platform either wants."""
    known = by_key.get(candidate.key)
    if known is None:
        by_key[candidate.key] = candidate
        return
    platforms = tuple(dict.fromkeys(known.platforms + candidate.platforms))
    by_key[candidate.key] = Candidate(
        known.reference if known.reference.digest else candidate.reference,
        known.rule,
        known.repository,
        platforms,
        known.source,
    )


@dataclass
class Selection:
    """Expands a request into candidates; `upstream` gives a rule's upstream client (None: it may not be asked)."""

    config: Config
    upstream: Callable[[Rule], Upstream | None]
    ecs: sources.EcsReader | None = None
    notes: list[str] = field(default_factory=list)  # what expanding the warm list could not decide

    def targets(self, request: WarmRequest) -> tuple[list[WarmTarget], list[Decided]]:
        """The warm-list entries the request names, and a failed item for each reference that cannot be warmed."""
        config = self.config
        reading = sources.read(config, ecs=self.ecs)
        every = config.targets(reading)
        self.notes.extend(text for text in map(str, reading.notes) if text not in self.notes)
        if not request.images:
            wanted = [t for t in every if request.rules is None or t.rule.prefix in request.rules]
            return wanted, source_problems(reading) if request.rules is None else []
        targets: list[WarmTarget] = []
        decided: list[Decided] = []
        for index, text in enumerate(request.images):
            try:
                targets.extend(self._requested(text, every))
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

    def _requested(self, text: str, every: Sequence[WarmTarget]) -> list[WarmTarget]:
        """The targets one manually requested reference names: the listed image's entries, or the tag it gives."""
        config = self.config
        reference = ImageReference.parse(text)
        listed = [t for t in every if t.image.image.name == reference.name]
        if reference.tag is None:
            if not listed:
                hint = f"give a tag ({text}:<tag>): the image is not in warm.images, so no tag is known"
                raise InvalidReference(text, hint)
            return listed
        base = listed[0] if listed else None
        image = WarmImage(
            image=reference,
            platforms=base.image.platforms if base else None,
            rule=base.image.rule if base else None,
        )
        rule = config.rule_for(reference, image.rule)
        return [WarmTarget(image, rule, rule.cache_repository(reference), image.platforms or config.warm.platforms)]

    def expand(self, targets: list[WarmTarget], decided: list[Decided]) -> list[Candidate]:
        """The candidates of these targets (tag patterns and latest-N listed upstream); failures go to `decided`."""
        by_key: dict[str, Candidate] = {}
        for target in targets:
            image = target.image
            upstream_tags = self._upstream_tags(target, decided)
            choice = choose_tags(image, upstream_tags)
            if choice.note is not None:
                self.notes.append(choice.note)
            if not choice.tags and upstream_tags is not None:
                decided.append(self._nothing_matches(target, len(upstream_tags)))
            for tag in choice.tags:
                digest = image.image.digest if tag == image.image.tag else None
                candidate = Candidate(
                    ImageReference(image.image.domain, image.image.path, tag, digest),
                    target.rule,
                    target.cache_repository,
                    tuple(target.platforms),
                    target.source,
                )
                merge(by_key, candidate)
        return list(by_key.values())

    def _upstream_tags(self, target: WarmTarget, decided: list[Decided]) -> list[str] | None:
        """The upstream's tags when the entry selects by pattern or latest-N (None: not needed, or not listed)."""
        image = target.image
        if image.tag_pattern is None and image.latest is None:
            return None
        try:
            client = self.upstream(target.rule)
            if client is None:
                raise RegistryError(
                    target.rule.upstream_url, None, "Pullthrough cannot list this upstream's tags (IAM)"
                )
            return client.list_tags(upstream_repository(image.image))
        except PullthroughError as exc:
            decided.append(self._expansion_failed(target, exc))
            return None

    def _expansion_failed(self, target: WarmTarget, error: PullthroughError) -> Decided:
        subject = selection_text(target.image)
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
        subject = selection_text(target.image)
        item = ReportItem(
            subject=subject,
            outcome=Outcome.FAILED,
            reason=f"unknown tag: none of the upstream's {listed} tags is selected",
            fix=fix_for(Reason.UNKNOWN_TAG, image=subject),
            reason_code=Reason.UNKNOWN_TAG.value,
            details=_target_details(target),
        )
        return Decided(f"{target.cache_repository}#{subject}", item)
