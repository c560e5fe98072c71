"""pullthrough.tag_patterns: tag patterns mean what Python's `re` says, and a match never stalls, whatever the pattern.

Bounded time is shown by the matcher's step count against its bound (linear in the tag), never by a wall clock.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pullthrough.config import WarmImage, parse
from pullthrough.errors import ConfigError
from pullthrough.tag_patterns import MAX_TAG_LENGTH, PatternError, TagPattern, compile_pattern
from pullthrough.warm.planner import select_tags

# --- same meaning as re.fullmatch -----------------------------------------------------------------------------------

ATOMS = ["a", "b", "1", r"\.", "-", ".", "[ab]", "[^a]", r"\d", r"\w", "[0-9.]", "[a-c1-2]", r"\D", r"\W"]
TAG_CHARS = "ab1.-_cA2"


def patterns() -> st.SearchStrategy[str]:
    """Small patterns from atoms, groups, alternation, quantifiers and anchors."""

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "{0,2}", "*?", "+?"])).map(
                lambda p: f"(?:{p[0]}){p[1]}"
            ),
            inner.map(lambda p: f"({p})"),
        )

    core = st.recursive(st.sampled_from(ATOMS), extend, max_leaves=6)
    return st.tuples(st.sampled_from(["", "^"]), core, st.sampled_from(["", "$"])).map("".join)


@settings(max_examples=200, deadline=None)
@given(pattern=patterns(), tags=st.lists(st.text(TAG_CHARS, max_size=8), min_size=1, max_size=6))
def test_a_pattern_matches_exactly_the_tags_re_fullmatch_matches(pattern: str, tags: list[str]) -> None:
    try:
        compiled = compile_pattern(pattern)
    except PatternError:
        return  # refused on purpose (a repeated lone repetition): covered below
    for tag in tags:
        assert compiled.fullmatch(tag) == (re.fullmatch(pattern, tag) is not None), (pattern, tag)


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        (r"^v0\.1\.\d+$", ["v0.1.8", "v0.1.12"], ["v0.1.8-rc1", "v0.1.x", "xv0.1.8"]),
        (r"1\.2[6-9](-alpine)?", ["1.27", "1.29-alpine"], ["1.30", "1.27-slim"]),
        (r"(\d+\.)+\d+", ["1.2", "1.2.3.4"], ["1.", "1..2"]),
        (r"latest|stable", ["latest", "stable"], ["latest2", "stablelatest"]),
        (r"(?x) v \d+  # verbose", ["v1"], ["v"]),
        (r"(?a)\w+", ["v1_2"], ["é1"]),
    ],
)
def test_everyday_patterns(pattern: str, yes: list[str], no: list[str]) -> None:
    compiled = compile_pattern(pattern)
    assert [compiled.fullmatch(tag) for tag in yes] == [True] * len(yes)
    assert [compiled.fullmatch(tag) for tag in no] == [False] * len(no)


# --- bounded ----------------------------------------------------------------------------------------------------------

# Each stalls Python's re on a tag of a few dozen characters; each is accepted (the engine is what bounds it).
CATASTROPHIC_FOR_BACKTRACKING = [r"(a|a)*b", r"(a|aa)+$", r"a*a*a*a*a*a*a*b", r"(\w|\d)+-", r"(.*a){12}"]


@pytest.mark.parametrize("pattern", CATASTROPHIC_FOR_BACKTRACKING)
def test_steps_are_linear_in_the_tag_whatever_the_pattern(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    for length in (16, 32, 64, MAX_TAG_LENGTH):
        # Given the worst tags for a backtracking engine: long runs of what the pattern loops on, then a miss
        for tag in ("a" * length, "a" * (length - 1) + "!"):
            matched, steps = compiled.run(tag)
            # Then the match takes at most the bound, which grows with the tag's length only
            assert steps <= compiled.steps_bound(len(tag)), (pattern, length)
            if length == 16:  # short enough for re to answer too: same verdict
                assert matched == (re.fullmatch(pattern, tag) is not None)


def test_a_tag_longer_than_any_registry_allows_never_matches_and_costs_nothing() -> None:
    matched, steps = compile_pattern(r".*").run("a" * (MAX_TAG_LENGTH + 1))
    assert (matched, steps) == (False, 0)


def test_the_planner_selects_tags_in_bounded_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an image whose pattern stalls a backtracking engine, and an upstream listing the worst tags for it
    image = WarmImage.model_validate({"image": "olakego/source-mysql", "tag_pattern": r"(a|a)*b"})
    upstream = ["a" * n for n in range(1, MAX_TAG_LENGTH + 1)] + ["a" * 40 + "b", "a" * 200 + "b"]
    seen: list[tuple[int, int, int]] = []
    run = TagPattern.run

    def counted(self: TagPattern, tag: str) -> tuple[bool, int]:
        matched, steps = run(self, tag)
        seen.append((len(tag), steps, self.steps_bound(len(tag))))
        return matched, steps

    monkeypatch.setattr(TagPattern, "run", counted)
    # When the planner selects the tags to warm
    chosen = select_tags(image, upstream)
    # Then it picked the one that matches, every tag was matched within its bound, and all of it took fewer steps
    # than re would take on the 40-character tag alone (2**40 paths)
    assert chosen == ["a" * 40 + "b"]
    assert len(seen) == len(upstream)
    assert all(steps <= bound for _, steps, bound in seen)
    assert sum(steps for _, steps, _ in seen) < 2**20


# --- refused, with the fix --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        (r"(a+)+$", "(a+)+ -> a+"),
        (r"^((?:\d*))*$", "keep one quantifier"),
        (r"(a)\1", "backreferences"),
        (r"(?=v)\S+", "lookarounds"),
        (r"v(?!.*-rc)", "negative lookarounds"),
        (r"(?i)v1", "[Vv]1"),
        (r"\bv1", "word boundaries"),
        (r"a{200}", "counts above 128"),
        (r"(?>a+)b", "atomic groups"),
        (r"a++", "possessive"),
        (r"^1.(27", "not a valid Python regular expression"),
        ("a{99999999999}", "not a valid Python regular expression: the repetition number is too large"),
        ("(?:" * 1000 + "a" + ")" * 1000, "nested too deeply"),
        ("x" * 5000, "write a shorter pattern"),
        (r"(\w{100}){100}", "write a shorter pattern"),
    ],
)
def test_what_cannot_run_in_bounded_time_is_refused_with_the_fix(pattern: str, says: str) -> None:
    with pytest.raises(PatternError, match=re.escape(says)):
        compile_pattern(pattern)


def test_the_config_check_refuses_a_catastrophic_pattern_naming_field_value_and_fix() -> None:
    text = (
        "version: 1\nrules:\n  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/hub}\n"
        "warm: {images: [{image: nginx, tag_pattern: '(a+)+$'}]}\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse(text)
    (problem,) = raised.value.problems
    assert problem.location.endswith("warm.images[0].tag_pattern")
    assert problem.value == "'(a+)+$'"
    assert "keep one quantifier, e.g. (a+)+ -> a+" in problem.message
