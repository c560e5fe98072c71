"""Bad input never crashes: the config loader and the reference parser answer anything with a PullthroughError that
says where and why, and a token pasted into the config never appears in that answer.

This extends the fuzzing of test_config.py (values swapped under a few top-level keys, short arbitrary text) and
test_reference.py (references built from the grammar round-trip): mutations at every depth of the example document,
line-level edits, YAML's own features, text drawn from the characters that matter to each grammar, and non-text
input. The loader's bounds (nesting, alias expansion, number length) and the places a message could quote a pasted
token back each have a test of their own.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pullthrough.config import Config, parse
from pullthrough.errors import ConfigError, InvalidReference, PullthroughError
from pullthrough.reference import (
    NAME_MAX,
    TAG_MAX,
    ImageReference,
    cache_repository,
    image_uri,
    validate_digest,
    validate_tag,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TEXT = (ROOT / "config" / "pullthrough.yaml").read_text(encoding="utf-8")
EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_TEXT)
SOURCE = "bad.yaml"
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(text: str) -> Config | ConfigError:
    """parse()'s Config or ConfigError; any other exception propagates and fails the test."""
    try:
        return parse(text, source=SOURCE)
    except ConfigError as error:
        return error


def assert_located(result: Config | ConfigError) -> None:
    """A Config, or a ConfigError whose every problem says where (in this file), what was found and what is wrong."""
    if isinstance(result, Config):
        return
    assert isinstance(result, PullthroughError)
    assert result.problems, "a ConfigError with no problem"
    for problem in result.problems:
        assert problem.location.startswith(f"{SOURCE}:") or problem.location == SOURCE, problem
        assert problem.message.strip(), problem
        assert isinstance(problem.value, str), problem
        assert len(problem.value) <= 60 + 2, problem  # shortened: a pasted blob is never echoed whole
    assert all(problem.location in str(result) for problem in result.problems)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a YAML document: mapping keys and list indexes, at every depth."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


EXAMPLE_PATHS = paths(EXAMPLE)


def replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any, *, delete: bool = False) -> dict[str, Any]:
    """A copy of `document` with the node at `path` replaced by `value` (or removed)."""
    copied = copy.deepcopy(document)
    node = copied
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return copied


# --- the config: any document ---------------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "ROOT", "docker-hub", "ecr-pullthroughcache/x", "linux/arm64", "rate(1 hour)", "0"])
    | st.dates()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(path=st.sampled_from(EXAMPLE_PATHS), value=_values, delete=st.booleans())
def test_any_node_of_the_example_replaced_or_removed_gives_located_problems(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    # Given the example document with one node, at any depth, replaced by anything or removed
    document = replaced(EXAMPLE, path, value, delete=delete)
    # When it is parsed, Then the answer is a Config or problems that each say where and what
    assert_located(outcome(yaml.safe_dump(document, allow_unicode=True)))


_EXAMPLE_LINES = EXAMPLE_TEXT.splitlines()
_edit = st.tuples(
    st.sampled_from(["delete", "duplicate", "indent", "dedent", "insert"]),
    st.integers(min_value=0, max_value=len(_EXAMPLE_LINES) - 1),
    st.text(alphabet=":-[]{}&*!|>'\"#%@`?, \tabc0", max_size=6),
)


@FUZZ
@given(edits=st.lists(_edit, min_size=1, max_size=4))
def test_line_edits_of_the_example_give_located_problems(edits: list[tuple[str, int, str]]) -> None:
    # Given the example text after a few slips of the hand: lines lost, doubled, shifted, or YAML syntax typed in
    lines = list(_EXAMPLE_LINES)
    for kind, index, text in edits:
        index = min(index, len(lines) - 1)
        if kind == "delete" and len(lines) > 1:
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "indent":
            lines[index] = "  " + lines[index]
        elif kind == "dedent":
            lines[index] = lines[index][2:]
        else:
            lines[index] = lines[index][: len(lines[index]) // 2] + text + lines[index][len(lines[index]) // 2 :]
    # When it is parsed, Then the answer is a Config or located problems, never a traceback
    assert_located(outcome("\n".join(lines) + "\n"))


@FUZZ
@given(text=st.text(alphabet="versionrulesprefixupstream:-[]{}&*!|>'\"#%@`?,.~ \t\n01", max_size=120))
def test_yaml_syntax_soup_gives_located_problems(text: str) -> None:
    # Given text made of YAML's own syntax characters and the config's words (anchors, tags, flow collections...)
    # When it is parsed, Then the answer is located problems, never a traceback
    assert_located(outcome(text))


HOSTILE_DOCUMENTS = {
    "a Python object tag": "version: 1\nrules: !!python/object/apply:os.system [ls]\n",
    "binary data": "version: !!binary aGVsbG8=\nrules: []\n",
    "a set": "version: 1\nrules: !!set {a, b}\n",
    "an unhashable key": "version: 1\n? [a, b]\n: 1\n",
    "an integer key": "1: 2\nversion: 1\n",
    "a null key": "~: 2\nversion: 1\n",
    "a binary key": "? !!binary aGVsbG8=\n: 1\n",
    "two documents": "version: 1\n---\nversion: 1\n",
    "a byte order mark": "\ufeffversion: 1\n",
    "a NUL character": "version: 1\x00\n",
    "a lone surrogate": "version: '\ud800'\n",
    "infinity": "version: .inf\n",
    "not a number": "version: .nan\n",
    "a date for a number": "version: 2024-01-01\nrules: []\n",
    "a merge key": "base: &b {prefix: x}\nversion: 1\nrules: [{<<: *b, upstream: quay}]\n",
    "tabs for indentation": "version: 1\nrules:\n\t- prefix: quay\n",
    "CRLF line ends": "version: 1\r\nrules:\r\n  - {prefix: quay, upstream: quay}\r\n",
    "nesting 150 deep": "version: 1\nrules: " + "[" * 150 + "]" * 150 + "\n",
    "a 200 kB scalar": "version: 1\nstack: " + "x" * 200_000 + "\n",
    "a key 10 kB long": "version: 1\n" + "k" * 10_000 + ": 1\n",
    "only a comment": "# nothing here\n",
    "empty": "",
}


@pytest.mark.parametrize("text", HOSTILE_DOCUMENTS.values(), ids=HOSTILE_DOCUMENTS.keys())
def test_hostile_yaml_gives_a_config_or_located_problems(text: str) -> None:
    # Given a document using YAML's corners, When it is parsed, Then the answer is a Config (CRLF, a BOM, a merge
    # key are fine) or problems that say where, never a traceback
    assert_located(outcome(text))


def billion_laughs(levels: int, width: int = 10) -> str:
    lines = ["version: 1", "a0: &a0 [lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"rules: *a{levels}"]) + "\n"


# Once crashes (RecursionError, ValueError) or minutes of work: now refused while loading, at the line that says why.
BOUNDED_DOCUMENTS = {
    "nesting 1000 deep": ("version: 1\nrules: " + "[" * 1000 + "]" * 1000 + "\n", "nested more than"),
    "an integer of 5000 digits": ("version: " + "9" * 5000 + "\n", "a number 5000 characters long"),
    "a hex integer of 6000 digits": ("version: 0x" + "f" * 6000 + "\n", "a number 6002 characters long"),
    "an anchor inside itself": ("version: 1\nrules: &a [*a]\n", "alias *a is inside its own anchor &a"),
    "a merge key inside itself": ("version: 1\nrules: &a {<<: *a}\n", "alias *a is inside its own anchor &a"),
    "a chain of aliases nesting deep": (
        "version: 1\na0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 40)) + "rules: *a39\n",
        "levels deep once expanded",
    ),
    "an impossible date": ("version: 2024-13-45\n", "cannot read this value as a date"),
    "text tagged as a number": ("version: !!int abc\n", "cannot read this value as a whole number"),
    "text tagged as a date": ("version: !!timestamp soon\n", "cannot read this value as a date"),
    "text tagged as a boolean": ("version: !!bool maybe\n", "cannot read this value as true or false"),
}


@pytest.mark.parametrize(("text", "why"), BOUNDED_DOCUMENTS.values(), ids=BOUNDED_DOCUMENTS.keys())
def test_documents_past_the_loaders_bounds_are_refused_at_their_line(text: str, why: str) -> None:
    # Given a document too deep, recursive, or with a value its YAML tag cannot hold
    # When it is parsed
    result = outcome(text)
    # Then it is refused with a located problem that says why, never a traceback
    assert isinstance(result, ConfigError)
    assert_located(result)
    assert any(why in problem.message and " line " in problem.location for problem in result.problems), result


def test_exponential_aliases_are_refused_by_name() -> None:
    # Given 6 levels of 10 aliases (a million items once expanded; validating them would take minutes)
    result = outcome(billion_laughs(6))
    # Then the document is refused for its aliases while loading, at the alias that went past the bound
    assert isinstance(result, ConfigError)
    assert_located(result)
    [problem] = result.problems
    assert "aliases expand to more than" in problem.message
    assert problem.location.startswith(f"{SOURCE}: line ")


def test_a_few_aliases_and_merge_keys_still_load() -> None:
    # Given a document sharing one rule's fields through an anchor and merge keys, the way YAML users do
    text = """version: 1
rules:
  - &hub {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}
  - {<<: *hub, prefix: quay, upstream: quay, credentials: null}
warm:
  platforms: &both [linux/amd64, linux/arm64]
  images:
    - {image: nginx:1.27, platforms: *both}
    - {image: quay.io/org/app:v1, platforms: *both}
"""
    # When it is parsed, Then it is a Config: the bounds leave room for ordinary use
    result = outcome(text)
    assert isinstance(result, Config), result
    assert [rule.prefix for rule in result.rules] == ["docker-hub", "quay"]
    assert result.warm.images[1].platforms == ("linux/amd64", "linux/arm64")


# --- the config: a token pasted anywhere never comes back -----------------------------------------------------------


def fresh_token() -> str:
    # Deliberately not a canary: these tests assert the absence themselves.
    return "dckr_pat_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def leaked(token: str, result: Config | ConfigError) -> bool:
    return isinstance(result, ConfigError) and token.lower() in str(result).lower()


def _is_image(path: tuple[Any, ...]) -> bool:
    return path[:2] == ("warm", "images") and (len(path) == 3 or path[3:] == ("image",))


@pytest.mark.parametrize("path", [p for p in EXAMPLE_PATHS if not _is_image(p)], ids=str)
def test_a_token_pasted_as_any_value_is_never_shown(path: tuple[Any, ...]) -> None:
    # Given the example with a token pasted in place of one of its values, at any depth
    token = fresh_token()
    result = outcome(yaml.safe_dump(replaced(EXAMPLE, path, token)))
    # Then the answer never contains it (in any case)
    assert not leaked(token, result)


TOKEN_PLACES = {
    "as an image reference": lambda token: yaml.safe_dump(replaced(EXAMPLE, ("warm", "images", 0), token)),
    "as a mapping key": lambda token: f"version: 1\nrules: []\n{token}:\n",
    "as a nested mapping key": lambda token: f"version: 1\nrules: [{{prefix: quay, {token}: 1}}]\n",
    "inside a longer value": lambda token: f"version: 1\n  rules {token}\n",
    "after a colon": lambda token: f"version: 1\nrules: []\nstack: 'user:{token}'\n",
    "as a platform's architecture": lambda token: f"version: 1\nrules: []\nwarm: {{platforms: [linux/{token}]}}\n",
    "as a rule pin": lambda token: f"version: 1\nrules: []\nwarm: {{images: [{{image: 'nginx:1', rule: {token}}}]}}\n",
    "as an alias name": lambda token: f"version: 1\nrules: *{token}\n",
    "as a duplicate key": lambda token: f"version: 1\nrules: []\n{token}: 1\n{token}: 2\n",
}


@pytest.mark.parametrize("build", TOKEN_PLACES.values(), ids=TOKEN_PLACES.keys())
def test_a_token_pasted_where_a_message_would_quote_it_is_never_shown(build: Any) -> None:
    # Given a token pasted where a message, a location or a YAML error quotes the text back (sometimes lower-cased)
    token = fresh_token()
    # When it is parsed, Then the problems never contain it, in any case
    result = outcome(build(token))
    assert isinstance(result, ConfigError)
    assert not leaked(token, result)
    assert "<hidden" in str(result)


BASE64_PLACES = [
    "version: 1\nrules: []\nstack: '{}'\n",
    "version: 1\nrules: []\nstack: 'user:{}'\n",
    "version: 1\nrules: []\nwarm: {{images: ['ghcr.io/org/app:{}']}}\n",
    "version: 1\nrules: [{{prefix: ghcr, upstream: github-container-registry, credentials: 'x {}'}}]\n",
]


@FUZZ
@given(raw=st.binary(min_size=24, max_size=45), place=st.sampled_from(BASE64_PLACES))
def test_a_base64_secret_pasted_anywhere_is_never_shown(raw: bytes, place: str) -> None:
    # Given a secret in the shape of an AWS secret key or an Azure password (base64: / + = inside), pasted alone, after
    # a colon, as a tag, or after a word
    secret = base64.b64encode(raw).decode()
    assume(any(c.islower() for c in secret) and any(c.isupper() for c in secret) and any(c.isdigit() for c in secret))
    # When it is parsed, Then the problems (if any: a stack name may be valid base64) never contain it
    assert not leaked(secret, outcome(place.format(secret)))


# --- image references -----------------------------------------------------------------------------------------------

_REFERENCE_ALPHABET = "abcxyz019ABZ._-/:@[]+ "
_reference_text = st.text(alphabet=_REFERENCE_ALPHABET, max_size=80) | st.text(max_size=40)
_long_reference = st.builds(
    lambda a, b, tag: f"{a}/{b}:{tag}",
    st.text(alphabet="abc.", min_size=100, max_size=200),
    st.text(alphabet="abc/", min_size=100, max_size=200),
    st.text(alphabet="aB0_.-", min_size=120, max_size=140),
)


def attempt(function: Any, *args: Any) -> Any:
    """The function's result or the InvalidReference it raised; any other exception fails the test."""
    try:
        return function(*args)
    except InvalidReference as error:
        return error


def parsed(text: Any) -> ImageReference | InvalidReference:
    """ImageReference.parse's result or its InvalidReference."""
    result: ImageReference | InvalidReference = attempt(ImageReference.parse, text)
    return result


@settings(max_examples=400, deadline=None)
@given(text=_reference_text | _long_reference)
def test_any_text_is_a_reference_or_a_reason(text: str) -> None:
    # Given any text, mostly from the characters the grammar cares about
    result = parsed(text)
    if isinstance(result, InvalidReference):
        # Then a refusal is a PullthroughError with the text and a reason
        assert isinstance(result, PullthroughError)
        assert result.reason.strip()
        assert result.text == text
        return
    # Or the reference is normalised and within the grammar's limits, and normalising again changes nothing
    assert ImageReference.parse(str(result)) == result
    assert result.path == result.path.lower()
    assert len(result.name) <= NAME_MAX
    assert result.tag is None or len(result.tag) <= TAG_MAX
    assert result.digest is None or re.fullmatch(r"sha(256|384|512):[0-9a-f]+", result.digest)
    assert not any(ch.isspace() for ch in str(result))


@settings(max_examples=60, deadline=None)
@given(value=st.none() | st.integers() | st.binary(max_size=8) | st.lists(st.text(max_size=3), max_size=2))
def test_anything_but_text_is_refused_with_a_reason(value: Any) -> None:
    result = parsed(value)
    assert isinstance(result, InvalidReference)
    assert "expected a string" in result.reason


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abcXYZ019_.-:+ ", max_size=140))
def test_tags_and_digests_are_valid_or_refused_with_a_reason(text: str) -> None:
    for check in (validate_tag, validate_digest):
        result = attempt(check, text)
        # Then the text comes back unchanged, or is refused with a reason
        assert result == text or (isinstance(result, InvalidReference) and result.reason.strip())


@settings(max_examples=150, deadline=None)
@given(
    reference=st.sampled_from(["nginx:1", "ghcr.io/org/app:v1", "quay.io/a/b@sha256:" + "a" * 64]),
    prefix=st.text(alphabet="abc/-_.ROT ", max_size=40),
    upstream_prefix=st.none() | st.text(alphabet="abc/org-", max_size=20),
    host=st.text(alphabet="abc.:/019", max_size=30),
    tag=st.none() | st.text(alphabet="aB0_.-: ", max_size=10),
)
def test_cache_paths_and_uris_are_built_or_refused_with_a_reason(
    reference: str, prefix: str, upstream_prefix: str | None, host: str, tag: str | None
) -> None:
    # Given a reference and arbitrary prefixes, hosts and tags
    ref = ImageReference.parse(reference)
    # When its cache repository and URI are built, Then each is a string or an InvalidReference with a reason
    repository = attempt(cache_repository, ref, prefix, upstream_prefix)
    if isinstance(repository, InvalidReference):
        assert repository.reason.strip()
        return
    assume(repository)
    uri = attempt(image_uri, host, repository, tag)
    if isinstance(uri, InvalidReference):
        assert uri.reason.strip()
    else:
        assert uri.endswith(repository + (f":{tag}" if tag else ""))
