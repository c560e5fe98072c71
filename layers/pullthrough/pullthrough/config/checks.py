"""Checks across the document: prefixes unique and not nested, each warm image resolving to exactly one rule, each
kept image under a rule, the organization against the rules (pullthrough.config.organization_checks); run on
whatever parts of the document are valid on their own.

pydantic validates one section at a time and stops at the first broken one; these checks run even when parts of the
document are broken, so one round of fixes is enough. An image whose rule is itself broken waits for that rule's
problem instead of adding a second one.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from pullthrough import upstreams
from pullthrough.config import fields
from pullthrough.config.organization import Organization
from pullthrough.config.organization_checks import check_organization
from pullthrough.config.problems import format_loc, raw_at
from pullthrough.config.redaction import show
from pullthrough.config.resolution import resolve
from pullthrough.config.rules import Rule
from pullthrough.config.warm import WarmImage, WarmImageField
from pullthrough.errors import InvalidReference, Problem
from pullthrough.reference import ROOT_PREFIX, ImageReference

if TYPE_CHECKING:
    from pullthrough.config.document import Config

__all__ = ["document_checks"]

_IMAGE_ADAPTER: TypeAdapter[WarmImage] = TypeAdapter(WarmImageField)


@dataclass
class _Parts:
    """What of the document is valid on its own, each with its index; and the upstreams and prefixes broken rules
    name (an image that may be theirs waits for the rule's own problem)."""

    rules: list[tuple[int, Rule]] = field(default_factory=list)
    prefixes: list[tuple[int, str]] = field(default_factory=list)
    images: list[tuple[int, WarmImage]] = field(default_factory=list)
    broken_upstreams: set[str] = field(default_factory=set)
    broken_prefixes: set[str] = field(default_factory=set)
    organization: Organization | None = None

    def resolve(self, ref: ImageReference, pin: str | None) -> Rule | str | None:
        """The rule of `ref` among the valid rules, what to fix, or None when a broken rule may be the answer."""
        return resolve(ref, pin, self.rules, self.broken_upstreams, self.broken_prefixes)


def document_checks(raw: dict[str, Any], config: Config | None, source: str) -> list[Problem]:
    """Prefix clashes and image resolution, on whatever parts of the document are valid on their own."""
    if config is not None:
        parts = _Parts(
            rules=list(enumerate(config.rules)),
            prefixes=[(index, rule.prefix) for index, rule in enumerate(config.rules)],
            images=list(enumerate(config.warm.images)),
            organization=config.organization,
        )
    elif isinstance(raw.get("rules"), list):
        parts = _valid_parts(raw)
    else:
        return []  # already reported; image resolution would only add noise
    checker = _Checker(source, parts)
    checker.check_prefixes()
    for index, image in parts.images:
        checker.check_image(index, image)
    if config is not None and config.prune is not None:
        checker.check_keep(config.prune.keep)
    if parts.organization is not None:
        broken = (parts.broken_upstreams, parts.broken_prefixes)
        check_organization(parts.organization, parts.rules, broken, checker.problem)
    return checker.finished()


def _valid_parts(raw: dict[str, Any]) -> _Parts:
    parts = _Parts()
    for index, item in enumerate(raw["rules"]):
        try:
            rule = Rule.model_validate(item)
        except ValidationError:
            if isinstance(item, dict):
                _note_broken(parts, index, item)
            continue
        parts.rules.append((index, rule))
        parts.prefixes.append((index, rule.prefix))
    raw_images = raw_at(raw, ("warm", "images"))
    for index, item in enumerate(raw_images if isinstance(raw_images, list) else []):
        with contextlib.suppress(ValidationError):  # reported by the full validation already
            parts.images.append((index, _IMAGE_ADAPTER.validate_python(item)))
    if isinstance(raw.get("organization"), dict):
        with contextlib.suppress(ValidationError):  # reported by the full validation already
            parts.organization = Organization.model_validate(raw["organization"])
    return parts


def _note_broken(parts: _Parts, index: int, item: dict[str, Any]) -> None:
    parts.broken_upstreams.update(_meant_upstreams(item.get("upstream")))
    parts.broken_prefixes.add(str(item.get("prefix")))
    raw_prefix = item.get("prefix")
    if isinstance(raw_prefix, str):
        with contextlib.suppress(ValueError):  # a bad prefix is reported already
            parts.prefixes.append((index, fields.repo_prefix(raw_prefix, "a prefix")))


@dataclass
class _Checker:
    source: str
    parts: _Parts
    problems: list[Problem] = field(default_factory=list)
    seen: dict[tuple[str, tuple[str, ...], str | None, int | None], int] = field(default_factory=dict)
    # One cause, one problem: every image a missing or unsupported upstream strands is named in the first's problem.
    stranded: dict[str, tuple[int, list[str]]] = field(default_factory=dict)

    def problem(self, loc: tuple[Any, ...], value: Any, message: str) -> None:
        self.problems.append(Problem(location=f"{self.source}: {format_loc(loc)}", value=show(value), message=message))

    def check_prefixes(self) -> None:
        prefixes = self.parts.prefixes
        first_with: dict[str, int] = {}
        for index, prefix in prefixes:
            if prefix in first_with:
                self.problem(
                    ("rules", index, "prefix"),
                    prefix,
                    f"duplicate: rules[{first_with[prefix]}] already uses this prefix; each rule needs its own",
                )
                continue
            first_with[prefix] = index
        for index, prefix in prefixes:
            for other_index, other in prefixes:
                if other != ROOT_PREFIX and prefix.startswith(other + "/"):
                    self.problem(
                        ("rules", index, "prefix"),
                        prefix,
                        f"nests inside rules[{other_index}].prefix {other!r}: a repository "
                        f"{prefix}/... would match both rules; use prefixes that do not contain one another",
                    )

    def check_image(self, index: int, image: WarmImage) -> None:
        key = (str(image.image), image.tags or (), image.tag_pattern, image.latest)
        if key in self.seen:
            self.problem(
                ("warm", "images", index), str(image.image), f"listed twice: same as warm.images[{self.seen[key]}]"
            )
        self.seen.setdefault(key, index)
        resolved = self.parts.resolve(image.image, image.rule)
        if resolved is None:
            return
        if isinstance(resolved, str):
            self._stranded(index, image, resolved)
            return
        try:
            resolved.cache_repository(image.image)
        except InvalidReference as exc:
            self.problem(("warm", "images", index), str(image.image), exc.reason)

    def _stranded(self, index: int, image: WarmImage, message: str) -> None:
        if message in self.stranded:
            self.stranded[message][1].append(f"warm.images[{index}]")
            return
        loc = ("warm", "images", index, "rule") if image.rule else ("warm", "images", index)
        self.problem(loc, image.rule or str(image.image), message)
        self.stranded[message] = (len(self.problems) - 1, [])

    def check_keep(self, keep: Sequence[ImageReference]) -> None:
        for index, ref in enumerate(keep):
            kept = self.parts.resolve(ref, None)
            if isinstance(kept, str):
                message = f"{kept}; prune only ever deletes under the rules' prefixes"
                self.problem(("prune", "keep", index), str(ref), message)

    def finished(self) -> list[Problem]:
        """The problems, each stranding problem naming the other images it strands."""
        problems = list(self.problems)
        for position, others in self.stranded.values():
            if others:
                first = problems[position]
                problems[position] = replace(first, message=f"{first.message}; the same for {_listing(others)}")
        return problems


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _meant_upstreams(value: Any) -> set[str]:
    """The upstream a broken rule names, and the catalogue entry a misspelt one most likely means.

    Images from that upstream wait for the rule's own problem to be fixed instead of each reporting a missing rule.
    """
    text = str(value)
    return {text, *difflib.get_close_matches(text, list(upstreams.CATALOGUE), n=1, cutoff=0.6)}
