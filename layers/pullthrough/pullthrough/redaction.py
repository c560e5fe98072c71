"""Redaction: what counts as a secret in a line of text, and the one place every log record passes to lose it.

Masked as `<redacted>`, whatever logger wrote the line and at whatever level:
- every value `register`ed (the password of every `registry.Credentials` made: secrets read, ECR authorization
  tokens, tokens typed into the CLI; every field of a secret's JSON value but its user name), in the forms it travels
  in: as written (any case), URL-encoded, JSON-escaped, and base64 at each of the three alignments in both
  alphabets, which covers it inside `Basic base64(user:token)` and inside ECR's `base64(AWS:<password>)`;
- the value of a sensitive field, quoted at any depth of JSON escaping (`"SecretString": "{\\"accessToken\\": ...}"`
  in botocore's wire logs), in Secrets Manager payloads, GetAuthorizationToken's `authorizationToken`, headers;
- the credential after `Authorization:` / `Proxy-Authorization:`, `Basic ` and `Bearer `;
- the password of a URL's user info (`https://user:<password>@proxy:3128`), and the query parameters of a token
  realm or presigned URL that carry an identity or a credential (`account`, `X-Amz-Security-Token`, ...);
- strings shaped like the tokens Pullthrough handles (Docker Hub, GitHub and GitLab access tokens, JWTs).

Where it is applied (`install`, called when `pullthrough.observability` is imported, so by every function and the
CLI): a log record factory redacts every record's message, exception text and stack when the record is made, so
the records of botocore, urllib3, Powertools, the library and any other logger are clean before a filter, a handler
or a propagation sees them; a filter on the library's logger and on the root logger's handlers redacts the fields
passed with `extra=`; and `RedactingFormatter`, Powertools' JSON formatter, redacts each finished line (its
appended keys included).

`looks_like_token` is the shape test the credentials check uses to refuse a secret whose fields look swapped, and
`user_label` the way every message names a user: by name unless the name looks like a token.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

MASK = "<redacted>"
# Shorter values are not registered: masking them would mask ordinary words (and no token is this short).
MIN_REGISTERED = 8
# Registered values kept at most (a warm container renews its ECR token every 12 hours); the oldest go first.
MAX_REGISTERED = 512

# Fields whose value is a secret wherever they appear: Secrets Manager payloads, ECR's authorization token, the
# credentials of a secret's JSON value, AWS credentials, HTTP headers. Not `token`: Pullthrough logs the rotation's
# ClientRequestToken (a version id) under that name.
SENSITIVE_FIELDS = (
    "SecretString",
    "SecretBinary",
    "authorizationToken",
    "accessToken",
    "access_token",
    "refresh_token",
    "identitytoken",
    "password",
    "passwd",
    "SecretAccessKey",
    "secret_access_key",
    "aws_secret_access_key",
    "SessionToken",
    "session_token",
    "aws_session_token",
    "X-Amz-Security-Token",
    "Authorization",
    "Proxy-Authorization",
    "X-Registry-Auth",
)
# Query parameters that carry an identity or a credential: a token realm's `account` (the user name, which holds
# the token when a secret's fields are swapped), and the parts of a presigned URL that let anyone use it.
SENSITIVE_QUERY = ("account", "password", "access_token", "X-Amz-Security-Token", "X-Amz-Signature", "X-Amz-Credential")
# Prefixes of the personal access tokens of the upstreams Pullthrough knows.
TOKEN_PREFIXES = ("dckr_pat_", "dckr_oat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-")

_FIELD = re.compile(
    r"(?P<open>\\*[\"'])(?:" + "|".join(re.escape(f) for f in SENSITIVE_FIELDS) + r")(?P=open)\s*[:=]\s*b?",
    re.IGNORECASE,
)
# The same fields as XML elements: STS and the other Query-protocol services answer in XML, and botocore logs the raw
# body at DEBUG (an AssumeRole answer's <SecretAccessKey> and <SessionToken>: STS API Reference, AssumeRole).
_XML_FIELD = re.compile(
    r"<(" + "|".join(re.escape(f) for f in SENSITIVE_FIELDS) + r")>[^<]*</\1>",
    re.IGNORECASE,
)
_QUOTE = re.compile(r"\\*[\"']")
_HEADER = re.compile(
    r"\b((?:proxy-)?authorization|x-registry-auth|x-amz-security-token)(\s*[:=]\s*)"
    r"((?:basic|bearer|digest|aws4-hmac-sha256)\s+)?([^\s'\",;}]+)",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"\b(Basic|Bearer)(\s+)([A-Za-z0-9._~+/-]{8,}=*)")
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]*):([^/\s@'\"]+)@", re.IGNORECASE)
_QUERY = re.compile(r"([?&](?:" + "|".join(re.escape(q) for q in SENSITIVE_QUERY) + r")=)([^&#\s'\"]+)", re.I)
_SHAPES = re.compile(
    r"\b(?:dckr_(?:pat|oat)_[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{16,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_+/=-]+")


# --- what looks like a token --------------------------------------------------------------------------------------


def looks_like_token(text: str) -> bool:
    """Whether `text` has the shape of an access token rather than a user name.

    A known token prefix (dckr_pat_, ghp_, glpat-, ...), a JWT, or a long random-looking string: 32 or more token
    characters without the separators names have (. @ space), drawn from a wider alphabet than hex (entropy above
    4.2 bits a character), so user names, UUIDs, e-mail addresses and hex identities are never taken for one.
    """
    if text.startswith(TOKEN_PREFIXES) and len(text) >= 12:
        return True
    if _JWT.fullmatch(text):
        return True
    if len(text) < 32 or not _TOKEN_CHARS.fullmatch(text):
        return False
    classes = sum(1 for test in (str.islower, str.isupper, str.isdigit) if any(test(ch) for ch in text))
    return classes >= 2 and _entropy(text) > 4.2


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def user_label(username: str) -> str:
    """How a message names a user: `user 'bob'`, or, when the name looks like a token, without quoting it."""
    return "the user named in the secret" if looks_like_token(username) else f"user {username!r}"


# --- registered values ----------------------------------------------------------------------------------------------


class Registry:
    """The secret values seen so far, and one pattern matching each of them in every form it travels in."""

    def __init__(self) -> None:
        self._values: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_REGISTERED or value in self._values:
            return
        with self._lock:
            self._values[value] = None
            while len(self._values) > MAX_REGISTERED:
                self._values.pop(next(iter(self._values)))
            self._pattern = None

    def pattern(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is None and self._values:
            with self._lock:
                forms = {form for value in self._values for form in encoded_forms(value)}
                alternatives = sorted((re.escape(f) for f in forms), key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)
        return pattern


def encoded_forms(value: str) -> set[str]:
    """`value` as written, URL-encoded, JSON-escaped, and the part of its base64 that any embedding keeps."""
    forms = {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]}
    raw = value.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        # Characters 6-bit aligned inside the value's own bits are the same whatever precedes or follows it.
        start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
        stable = encoded[start:end]
        if len(stable) >= MIN_REGISTERED:
            forms.update({stable, stable.replace("+", "-").replace("/", "_")})
    return {form for form in forms if len(form) >= MIN_REGISTERED}


_REGISTRY = Registry()


def register(*values: str) -> None:
    """Mask `values` from now on, wherever and in whatever encoding they appear."""
    for value in values:
        _REGISTRY.add(value)


def register_document(document: Mapping[str, Any]) -> None:
    """Mask every string field of a secret's JSON value; the user name only when it looks like a token."""
    for key, value in document.items():
        if not isinstance(value, str):
            continue
        if key.lower() in ("username", "user", "login") and not looks_like_token(value):
            continue  # who the token belongs to is not secret, and what a reader checks first
        register(value)


# --- redaction of text ----------------------------------------------------------------------------------------------


def redact(text: str) -> str:
    """`text` with every secret described in this module's docstring replaced by <redacted>."""
    if not text:
        return text
    pattern = _REGISTRY.pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _redact_fields(text)
    text = _XML_FIELD.sub(lambda m: f"<{m.group(1)}>{MASK}</{m.group(1)}>", text)
    text = _HEADER.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or "") + MASK, text)
    text = _SCHEME.sub(_scheme, text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _QUERY.sub(lambda m: m.group(1) + MASK, text)
    return _SHAPES.sub(MASK, text)


def _scheme(match: re.Match[str]) -> str:
    credential = match.group(3)
    if credential.isalpha() and credential.islower():
        return match.group(0)  # a word ("Bearer challenge"), not a credential
    return match.group(1) + match.group(2) + MASK


def _redact_fields(text: str) -> str:
    """The value of each sensitive field masked, the way it is quoted at its depth of JSON escaping."""
    out: list[str] = []
    at = 0
    while (match := _FIELD.search(text, at)) is not None:
        start = match.end()
        out.append(text[at:start])
        opener = _QUOTE.match(text, start)
        if opener is None:
            # An unquoted value (a number, a bytes object's repr): up to the next separator.
            end = start
            while end < len(text) and text[end] not in ",}]\n":
                end += 1
            out.append(MASK)
            at = end
            continue
        quote_text = opener.group()
        close = _closing(text, opener.end(), quote_text)
        out.append(quote_text + MASK + (quote_text if close < len(text) else ""))
        at = close + len(quote_text) if close < len(text) else len(text)
    out.append(text[at:])
    return "".join(out)


def _closing(text: str, start: int, quote_text: str) -> int:
    """Where the quote closing a value opened with `quote_text` is: the same quote, escaped exactly as deep.

    A quote nested one level deeper carries more backslashes, so JSON inside a JSON string inside a bytes repr
    closes where it should. No closing quote: the value runs to the end of the text (masked whole).
    """
    depth, char = len(quote_text) - 1, quote_text[-1]
    at = start
    while (found := text.find(char, at)) != -1:
        slashes = 0
        while found - slashes - 1 >= start and text[found - slashes - 1] == "\\":
            slashes += 1
        if slashes == depth:
            return found - depth
        at = found + 1
    return len(text)


def redact_value(value: Any) -> Any:
    """A logged value with its text redacted, keeping its shape (mappings and lists stay what they are)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value


# --- logging ------------------------------------------------------------------------------------------------------

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_FORMATTER = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Redact a record in place: its message (arguments merged in), exception and stack text."""
    if isinstance(record.msg, Mapping) and not record.args:
        record.msg = redact_value(record.msg)  # Powertools logs a mapping as a JSON object: keep it one
    else:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging reports that itself, as is
            return
        record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        text = _FORMATTER.formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_text = clean  # what every logging.Formatter prints instead of formatting exc_info again
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """Redacts what the record factory cannot see: the fields a record was given with `extra=`."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str | Mapping | list | tuple):
                setattr(record, key, redact_value(value))
        return True


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with each finished line redacted (its appended keys and exception included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


FILTER = RedactingFilter()
_MARK = "_pullthrough_redacts"


def install(*loggers: logging.Logger | str) -> None:
    """Redact every log record of this process from now on; idempotent. `loggers` also get the extras filter."""
    previous = logging.getLogRecordFactory()
    if not getattr(previous, _MARK, False):
        factory = _factory(previous)
        setattr(factory, _MARK, previous)
        logging.setLogRecordFactory(factory)
    for handler in logging.getLogger().handlers:
        if FILTER not in handler.filters:
            handler.addFilter(FILTER)
    for target in loggers:
        named = logging.getLogger(target) if isinstance(target, str) else target
        if FILTER not in named.filters:
            named.addFilter(FILTER)


def uninstall() -> None:
    """Undo `install`'s record factory and root handler filters (for tests of what would leak without it)."""
    factory = logging.getLogRecordFactory()
    previous = getattr(factory, _MARK, None)
    if callable(previous):
        logging.setLogRecordFactory(previous)
    for handler in logging.getLogger().handlers:
        handler.removeFilter(FILTER)


def _factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    return make


__all__ = [
    "FILTER",
    "MASK",
    "RedactingFilter",
    "RedactingFormatter",
    "encoded_forms",
    "install",
    "looks_like_token",
    "redact",
    "redact_record",
    "redact_value",
    "register",
    "register_document",
    "uninstall",
    "user_label",
]
