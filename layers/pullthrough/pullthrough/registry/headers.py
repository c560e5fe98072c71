"""What a registry's answer headers say, parsed (pure): WWW-Authenticate, rate limits, Retry-After, Link.

Separate from the client so each reading can be tested on header text alone, and so the Docker Hub API client
(`dockerhub.py`) reads Retry-After the same way without a registry client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Scheme = Literal["none", "basic", "bearer"]


@dataclass(frozen=True)
class RateLimit:
    """What a registry said about its pull budget (Docker Hub's `ratelimit-*` headers); None where it said nothing."""

    limit: int | None
    remaining: int | None
    window_seconds: int | None
    source: str | None


@dataclass(frozen=True)
class Challenge:
    """How a registry wants to be authenticated, from the WWW-Authenticate header of a 401."""

    scheme: Scheme
    realm: str | None = None
    service: str | None = None
    scope: str | None = None
    error: str | None = None


# --- WWW-Authenticate ----------------------------------------------------------------------------------------------

_TOKEN_CHARS = re.compile(r"[^\s,=\"]+")


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """Every Basic or Bearer challenge in one or more WWW-Authenticate values (RFC 9110 syntax, quoted params)."""
    texts = [values] if isinstance(values, str) else list(values)
    challenges: list[Challenge] = []
    for text in texts:
        for scheme, params in _challenges(text):
            if scheme in ("basic", "bearer"):
                challenges.append(
                    Challenge(
                        scheme="basic" if scheme == "basic" else "bearer",
                        realm=params.get("realm"),
                        service=params.get("service"),
                        scope=params.get("scope"),
                        error=params.get("error"),
                    ),
                )
    return challenges


def _challenges(text: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        match = _TOKEN_CHARS.match(text, i)
        if match is None:
            i += 1
            continue
        token, i = match.group(), match.end()
        j = i
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "=" and found:
            value, i = _param_value(text, j + 1)
            found[-1][1][token.lower()] = value
        elif j < n and text[j] == "=":
            # A parameter before any scheme: malformed, skip its value.
            _, i = _param_value(text, j + 1)
        else:
            found.append((token.lower(), {}))
    return found


def _param_value(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == '"':
        out: list[str] = []
        i += 1
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                i += 1
            out.append(text[i])
            i += 1
        return "".join(out), i + 1
    start = i
    while i < n and text[i] not in " \t,":
        i += 1
    return text[start:i], i


def choose_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge a client should answer: Bearer when offered (it carries the scope), else Basic."""
    ordered = sorted(challenges, key=lambda c: c.scheme != "bearer")
    return ordered[0] if ordered else None


# --- rate limits and Retry-After -----------------------------------------------------------------------------------


def _quota(value: str | None) -> tuple[int | None, int | None]:
    """`100;w=21600` (Docker Hub) or `100, 100;w=21600` (IETF draft) -> (100, 21600)."""
    if not value:
        return None, None
    amount: int | None = None
    window: int | None = None
    for item in value.split(","):
        parts = [p.strip() for p in item.split(";")]
        if amount is None and parts[0].isdigit():
            amount = int(parts[0])
        for param in parts[1:]:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "w" and raw.strip().isdigit() and window is None:
                window = int(raw.strip())
    return amount, window


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The registry's `ratelimit-limit`, `ratelimit-remaining` and `docker-ratelimit-source`, or None if absent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    limit, limit_window = _quota(lowered.get("ratelimit-limit"))
    remaining, remaining_window = _quota(lowered.get("ratelimit-remaining"))
    source = lowered.get("docker-ratelimit-source") or None
    if limit is None and remaining is None and source is None:
        return None
    return RateLimit(limit=limit, remaining=remaining, window_seconds=limit_window or remaining_window, source=source)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- Link, Content-Type, Content-Length ----------------------------------------------------------------------------

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_REL_NEXT = re.compile(r"""rel\s*=\s*"?([^";]*)"?""", re.IGNORECASE)


def parse_next_link(value: str | None) -> str | None:
    """The target of the `rel="next"` entry of a Link header, as written (often relative)."""
    if not value:
        return None
    for target, params in _LINK.findall(value):
        rel = _REL_NEXT.search(params)
        if rel and "next" in rel.group(1).lower().split():
            return str(target)
    return None


def content_type(value: str | None) -> str:
    """The media type of a Content-Type value, without its parameters."""
    return (value or "").split(";", 1)[0].strip()


def content_length(value: str | None) -> int:
    """A Content-Length value as bytes; 0 when absent or unreadable."""
    try:
        return int(value) if value else 0
    except ValueError:
        return 0
