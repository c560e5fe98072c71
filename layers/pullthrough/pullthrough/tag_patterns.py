"""Tag patterns (`warm.images[].tag_pattern`): matched against upstream tags in bounded time, whatever the pattern.

Python's `re` backtracks: `(a+)+$` takes about four times longer per two characters of tag (0.39 s at 22, FACTS.md),
so a pattern from the config and a tag an upstream chooses could stall the planner for minutes. Here a pattern is
parsed by Python's own parser (so it means what Python's documentation says), compiled into a small program, and run
as a Thompson NFA simulation (the method of RE2 and Go's regexp): the set of live states advances one character at
a time and visits each state at most once per position, so a match costs at most `steps_bound(len(tag))` steps,
linear in the tag. Tags longer than the distribution spec's 128 characters never match (no registry serves one).

google-re2 gives the same guarantee but has no cp313 manylinux2014_aarch64 wheel, the platform the layer is built
for (its cp313 aarch64 wheels are manylinux_2_28 only).

Refused, with the fix, by `compile_pattern` (and so by the config check): what needs backtracking by its nature
(backreferences, lookarounds, conditionals, atomic groups, possessive quantifiers), word boundaries, the i, m, s and
L flags, and counts above 128; and a repetition of a lone repetition such as `(a+)+`, which means the same as the
inner one and is catastrophic in every backtracking engine the pattern's author may try it with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

# The parser behind `re` (re._parser since Python 3.11): the pattern means exactly what it means to `re`.
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MAX_TAG_LENGTH = 128  # the distribution spec's tag grammar: [\w][\w.-]{0,127}
MAX_COUNT = MAX_TAG_LENGTH
MAX_PROGRAM = 4096  # instructions; a pattern needing more is refused (it would match nothing a tag can be)

_CHAR, _SPLIT, _JUMP, _START, _END, _MATCH = range(6)
_ALLOWED_FLAGS = sre.SRE_FLAG_UNICODE | sre.SRE_FLAG_ASCII | sre.SRE_FLAG_VERBOSE
Predicate = Callable[[str], bool]


class PatternError(ValueError):
    """A tag pattern this matcher does not take; the message says why and what to write instead."""


@dataclass
class TagPattern:
    """A compiled tag pattern: `fullmatch(tag)` in at most `steps_bound(len(tag))` steps."""

    source: str
    _kinds: list[int] = field(default_factory=list, repr=False)
    _first: list[int] = field(default_factory=list, repr=False)
    _second: list[int] = field(default_factory=list, repr=False)
    _tests: list[Predicate | None] = field(default_factory=list, repr=False)

    def fullmatch(self, tag: str) -> bool:
        """Whether the whole of `tag` matches (re.fullmatch's meaning); False for tags past 128 characters."""
        return self.run(tag)[0]

    def run(self, tag: str) -> tuple[bool, int]:
        """`fullmatch`, and the steps it took: never more than `steps_bound(len(tag))`."""
        if len(tag) > MAX_TAG_LENGTH:
            return False, 0
        end = len(tag)
        live, steps = self._closure([0], 0, end)
        for position, char in enumerate(tag):
            advanced = []
            for pc in live:
                steps += 1
                test = self._tests[pc]
                if test is not None and test(char):
                    advanced.append(pc + 1)
            live, taken = self._closure(advanced, position + 1, end)
            steps += taken
            if not live:
                return False, steps
        return any(self._kinds[pc] == _MATCH for pc in live), steps

    def steps_bound(self, length: int) -> int:
        """The most steps a match of a tag of `length` characters can take: each state visited at most twice (once
        in a closure, once reading a character) at each of the `length + 1` positions."""
        return 2 * len(self._kinds) * (length + 1)

    def _closure(self, starts: Sequence[int], position: int, end: int) -> tuple[list[int], int]:
        """The states reachable from `starts` without reading a character (those that read one, and MATCH), and the
        states visited on the way: each at most once."""
        seen: set[int] = set()
        found: list[int] = []
        pending = list(reversed(starts))
        while pending:
            pc = pending.pop()
            if pc in seen:
                continue
            seen.add(pc)
            kind = self._kinds[pc]
            if kind == _SPLIT:
                pending += [self._second[pc], self._first[pc]]
            elif kind == _JUMP:
                pending.append(self._first[pc])
            elif kind == _START:
                if position == 0:
                    pending.append(pc + 1)
            elif kind == _END:
                if position == end:
                    pending.append(pc + 1)
            else:
                found.append(pc)
        return found, len(seen)

    # --- building ------------------------------------------------------------------------------------------------

    def _add(self, kind: int, first: int = -1, second: int = -1, test: Predicate | None = None) -> int:
        if len(self._kinds) >= MAX_PROGRAM:
            raise PatternError(_TOO_LARGE)
        self._kinds.append(kind)
        self._first.append(first)
        self._second.append(second)
        self._tests.append(test)
        return len(self._kinds) - 1


def compile_pattern(source: str) -> TagPattern:
    """A TagPattern for `source`, or PatternError saying what it does not take and what to write instead."""
    return _compiled(source)


@lru_cache(maxsize=256)
def _compiled(source: str) -> TagPattern:
    try:
        parsed = sre_parse.parse(source, 0)
    except (re.error, OverflowError) as exc:
        raise PatternError(f"not a valid Python regular expression: {exc}") from None
    except RecursionError:
        raise PatternError(_TOO_LARGE) from None
    flags = parsed.state.flags
    if flags & ~_ALLOWED_FLAGS:
        raise PatternError(_FLAGS_FIX)
    program = TagPattern(source)
    try:
        _Compiler(program, ascii_only=bool(flags & sre.SRE_FLAG_ASCII)).emit(list(parsed))
    except RecursionError:
        raise PatternError(_TOO_LARGE) from None
    program._add(_MATCH)
    return program


_TOO_LARGE = (
    f"the pattern is too large or nested too deeply for a tag of at most {MAX_TAG_LENGTH} characters (over "
    f"{MAX_PROGRAM} states): write a shorter pattern, with smaller counts and fewer nested groups"
)
_FLAGS_FIX = "flags (?i), (?m), (?s) and (?L) are not supported: spell the cases out instead, e.g. [Vv]1 for (?i)v1"
_REFUSED = {
    "GROUPREF": "backreferences (\\1, (?P=name)) need backtracking: list the tags, or match each part on its own",
    "GROUPREF_EXISTS": "conditionals (?(1)...) need backtracking: write the alternatives out with |",
    "ASSERT": "lookarounds ((?=...), (?<=...)) need backtracking: a tag pattern matches the whole tag anyway, so "
    "write what the tag is, e.g. v\\d+\\.\\d+ instead of (?=v)\\S+",
    "ASSERT_NOT": "negative lookarounds ((?!...), (?<!...)) need backtracking: write the tags you want instead, "
    "e.g. \\d+\\.\\d+\\.\\d+ to leave out -rc tags",
    "ATOMIC_GROUP": "atomic groups (?>...) are not supported: drop the (?> ) around the group",
    "POSSESSIVE_REPEAT": "possessive quantifiers (*+, ++, ?+) are not supported: drop the second +",
}


class _Compiler:
    def __init__(self, program: TagPattern, *, ascii_only: bool) -> None:
        self.program = program
        self.ascii_only = ascii_only

    def emit(self, items: list[tuple[Any, Any]], depth: int = 0) -> None:
        for op, argument in items:
            self.emit_one(op, argument, depth)

    def emit_one(self, op: Any, argument: Any, depth: int) -> None:
        program, name = self.program, str(op)
        if name in _REFUSED:
            raise PatternError(_REFUSED[name])
        test = self.char_test(op, argument)
        if test is not None:
            program._add(_CHAR, test=test)
        elif op is sre.AT:
            program._add(self.anchor(argument))
        elif op is sre.SUBPATTERN:
            _group, add_flags, del_flags, inner = argument
            if (add_flags | del_flags) & ~_ALLOWED_FLAGS:
                raise PatternError(_FLAGS_FIX)
            self.emit(list(inner), depth)
        elif op is sre.BRANCH:
            self.branch(argument[1], depth)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            self.repeat(*argument, depth=depth)
        else:
            raise PatternError(f"{name.lower()} is not supported in a tag pattern")

    def char_test(self, op: Any, argument: Any) -> Predicate | None:
        """The test of an op that matches one character (a literal, its negation, any, a class); None for others."""
        if op is sre.LITERAL:
            return _equal(chr(argument))
        if op is sre.NOT_LITERAL:
            return _not_equal(chr(argument))
        if op is sre.ANY:
            return _not_equal("\n")
        if op is sre.IN:
            return self.char_class(argument)
        return None

    def anchor(self, where: Any) -> int:
        if where in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING):
            return _START
        if where in (sre.AT_END, sre.AT_END_STRING):
            return _END
        raise PatternError(
            "word boundaries (\\b, \\B) are not supported: a tag pattern matches the whole tag, so spell out what "
            "comes before and after"
        )

    def branch(self, alternatives: list[Any], depth: int) -> None:
        program, jumps = self.program, []
        for index, alternative in enumerate(alternatives):
            if index == len(alternatives) - 1:
                self.emit(list(alternative), depth)
                break
            split = program._add(_SPLIT, first=len(program._kinds) + 1)
            self.emit(list(alternative), depth)
            jumps.append(program._add(_JUMP))
            program._second[split] = len(program._kinds)
        for jump in jumps:
            program._first[jump] = len(program._kinds)

    def repeat(self, low: int, high: int, inner: Any, *, depth: int) -> None:
        unbounded = high == sre.MAXREPEAT
        if low > MAX_COUNT or (not unbounded and high > MAX_COUNT):
            raise PatternError(
                f"counts above {MAX_COUNT} are not supported: a tag is at most {MAX_TAG_LENGTH} characters"
            )
        body = list(inner)
        if unbounded and _lone_unbounded_repeat(body):
            raise PatternError(
                "a quantifier on a lone quantified group, like (a+)+ or (a*)*, matches what the inner one alone "
                "matches and stalls backtracking regex engines on a long tag: keep one quantifier, e.g. (a+)+ -> a+"
            )
        program = self.program
        for _ in range(low):
            self.emit(body, depth + 1)
        if unbounded:
            split = program._add(_SPLIT, first=len(program._kinds) + 1)
            self.emit(body, depth + 1)
            program._add(_JUMP, first=split)
            program._second[split] = len(program._kinds)
            return
        splits = []
        for _ in range(high - low):
            splits.append(program._add(_SPLIT, first=len(program._kinds) + 1))
            self.emit(body, depth + 1)
        for split in splits:
            program._second[split] = len(program._kinds)

    def char_class(self, items: list[tuple[Any, Any]]) -> Predicate:
        negate = bool(items) and items[0][0] is sre.NEGATE
        chars: set[str] = set()
        ranges: list[tuple[int, int]] = []
        categories: list[Predicate] = []
        for op, argument in items[1:] if negate else items:
            if op is sre.LITERAL:
                chars.add(chr(argument))
            elif op is sre.RANGE:
                ranges.append(argument)
            elif op is sre.CATEGORY:
                categories.append(self.category(argument))
            else:
                raise PatternError(f"{str(op).lower()} is not supported inside [...] in a tag pattern")

        def test(char: str) -> bool:
            code = ord(char)
            hit = char in chars or any(low <= code <= high for low, high in ranges) or any(c(char) for c in categories)
            return hit != negate

        return test

    def category(self, which: Any) -> Predicate:
        name = str(which).removeprefix("CATEGORY_").removeprefix("UNI_")
        positive = name.removeprefix("NOT_")
        base: Predicate | None = {
            "DIGIT": (lambda c: "0" <= c <= "9") if self.ascii_only else str.isdecimal,
            "WORD": (lambda c: c.isascii() and (c.isalnum() or c == "_"))
            if self.ascii_only
            else (lambda c: c.isalnum() or c == "_"),
            "SPACE": (lambda c: c in " \t\n\r\f\v") if self.ascii_only else str.isspace,
        }.get(positive)
        if base is None:
            raise PatternError(f"the class {name.lower()} is not supported in a tag pattern")
        if name.startswith("NOT_"):
            inner = base
            return lambda c: not inner(c)
        return base


def _lone_unbounded_repeat(items: list[tuple[Any, Any]]) -> bool:
    """Whether `items` are one repetition without an upper bound, in groups or not: `a+` in `(a+)+`, `((?:a*))*`."""
    while len(items) == 1 and items[0][0] is sre.SUBPATTERN:
        items = list(items[0][1][3])
    if len(items) != 1 or items[0][0] not in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        return False
    return bool(items[0][1][1] == sre.MAXREPEAT)


def _equal(expected: str) -> Predicate:
    return lambda char: char == expected


def _not_equal(unexpected: str) -> Predicate:
    return lambda char: char != unexpected


__all__ = ["MAX_TAG_LENGTH", "PatternError", "TagPattern", "compile_pattern"]
