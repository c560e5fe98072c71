"""Values a problem shows: shortened, in the YAML flow style the user wrote, and never a token.

A config problem quotes what it found; a token pasted where it does not belong (a url, a tag, a key) must not travel
on into a deploy's failure reason, a log or a terminal. This is the config's own redaction, of the values problems
quote; pullthrough/redaction.py is the log records'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from pullthrough.config.patterns import SECRET_PREFIX, TOKEN_PREFIXES
from pullthrough.errors import Problem

__all__ = ["hide_tokens", "looks_secret", "redact", "show", "tokens_in", "without_tokens"]


def looks_secret(text: str) -> bool:
    """Whether `text` has the shape of an access token (a known prefix, or long mixed-case letters and digits)."""
    if text.startswith(TOKEN_PREFIXES) and len(text) >= 16:
        return True
    if len(text) < 20 or text.startswith((SECRET_PREFIX, "arn:")) or any(c.isspace() or c in ".:" for c in text):
        return False
    return any(c.islower() for c in text) and any(c.isupper() for c in text) and any(c.isdigit() for c in text)


# A word is a run of the characters tokens, hosts and paths are made of (YAML's * & ! and quotes end it). A word, its
# parts between the separators of hosts (. : @) and their pieces between / + = are each checked: a base64 token holds
# / + =, and a token can be pasted after a host or a colon.
_WORD = re.compile(r"[\w+/=.:@-]+")
_PART = re.compile(r"[^.:@]+")
_PIECE = re.compile(r"[^/+=]+")


def hide_tokens(text: str) -> str:
    """`text` with every word, or part of a word, that looks like a token replaced by <hidden>."""
    return _WORD.sub(lambda word: _hide_in(word.group(), (_PART, _PIECE)), text)


def _hide_in(text: str, splits: Sequence[re.Pattern[str]]) -> str:
    if looks_secret(text):
        return "<hidden>"
    if not splits:
        return text
    return splits[0].sub(lambda part: _hide_in(part.group(), splits[1:]), text)


def _candidates(text: str) -> Iterator[str]:
    """Every word of `text`, part of a word and piece of a part: what hide_tokens checks."""
    for word in _WORD.findall(text):
        yield word
        for part in _PART.findall(word):
            yield part
            yield from _PIECE.findall(part)


def redact(value: Any) -> Any:
    """`value` (a string, or a mapping or list of them) with every token hidden."""
    if isinstance(value, str):
        if looks_secret(value):
            return f"<hidden: {len(value)} characters that look like a token>"
        return hide_tokens(value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def tokens_in(raw: Any) -> set[str]:
    """Every word or part of a word in the document's keys and values that looks like a token."""
    found: set[str] = set()
    seen: set[int] = set()  # aliased values are shared: visit each once
    pending = [raw]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            found.update(candidate for candidate in _candidates(node) if looks_secret(candidate))
        elif isinstance(node, dict | list | tuple) and id(node) not in seen:
            seen.add(id(node))
            pending.extend([*node.keys(), *node.values()] if isinstance(node, dict) else node)
    return found


def without_tokens(problems: Iterable[Problem], known: Iterable[str]) -> list[Problem]:
    """The problems with every token of the document hidden, in any case, wherever a message quoted it."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(known, key=len, reverse=True)), re.IGNORECASE)

    def clean(text: str) -> str:
        return hide_tokens(pattern.sub("<hidden>", text) if pattern.pattern else text)

    return [Problem(location=clean(p.location), value=clean(p.value), message=clean(p.message)) for p in problems]


def show(value: Any, limit: int = 60) -> str:
    """`value` as a problem quotes it: in flow style, tokens hidden, at most `limit` characters."""
    text = _flow(redact(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flow(value: Any) -> str:
    """A value in YAML flow style, the way the user wrote it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


_WORDS = {None: "null", True: "true", False: "false"}


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if value is None or isinstance(value, bool):
        return _WORDS[value]
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, int | float) else str(value)
