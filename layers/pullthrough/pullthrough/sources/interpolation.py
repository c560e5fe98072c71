"""Compose's variable interpolation (compose-spec, "Interpolation") and its .env file format.

`${VAR}` and `$VAR`; `${VAR:-default}` (unset or empty) and `${VAR-default}` (unset); `${VAR:?error}` and
`${VAR?error}` (required); `${VAR:+replacement}` and `${VAR+replacement}`; `$$` is a literal `$`. A default or
replacement may itself hold `${...}`. An unset variable without a default is the empty string, as in Compose (which
warns): `unset` names each, so a reference broken by one says which variable to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Interpolated", "InterpolationError", "interpolate", "parse_env_file"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A required variable is unset (or empty), or a `${` is never closed; the message says which and the fix."""


@dataclass
class Interpolated:
    """The text with every variable substituted, and the names of the unset ones read as empty."""

    value: str
    unset: list[str] = field(default_factory=list)


def interpolate(text: str, variables: Mapping[str, str]) -> Interpolated:
    """`text` with Compose's substitutions applied from `variables`; InterpolationError for a required one."""
    out: list[str] = []
    unset: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char != "$" or at + 1 == len(text):
            out.append(char)
            at += 1
            continue
        following = text[at + 1]
        if following == "$":
            out.append("$")
            at += 2
        elif following == "{":
            end = _closing(text, at + 2)
            out.append(_braced(text[at + 2 : end], variables, unset))
            at = end + 1
        elif (name := _NAME.match(text, at + 1)) is not None:
            out.append(_lookup(name.group(), variables, unset))
            at = name.end()
        else:
            out.append(char)
            at += 1
    return Interpolated("".join(out), unset)


def _closing(text: str, start: int) -> int:
    """The index of the `}` that closes the `${` opened just before `start` (nested `${...}` counted)."""
    depth = 1
    at = start
    while at < len(text):
        if text.startswith("${", at):
            depth += 1
            at += 2
            continue
        if text[at] == "}":
            depth -= 1
            if depth == 0:
                return at
        at += 1
    raise InterpolationError(f"'${{' without its closing '}}' in {text!r}; close it, or write $$ for a literal $")


def _braced(body: str, variables: Mapping[str, str], unset: list[str]) -> str:
    name = _NAME.match(body)
    if name is None:
        raise InterpolationError(f"'${{{body}}}' names no variable; a name is letters, digits and _, like ${{TAG}}")
    rest = body[name.end() :]
    if not rest:
        return _lookup(name.group(), variables, unset)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"'${{{body}}}': unknown operator after {name.group()}; use :- - :? ? :+ or +")
    value = variables.get(name.group())
    argument = rest[len(operator) :]
    present = value is not None and (value != "" or not operator.startswith(":"))
    if operator.endswith("-"):
        return value if present and value is not None else interpolate(argument, variables).value
    if operator.endswith("+"):
        return interpolate(argument, variables).value if present else ""
    if not present:
        reason = interpolate(argument, variables).value or "required"
        empty = "unset or empty" if operator == ":?" else "unset"
        raise InterpolationError(
            f"variable {name.group()} is {empty} ({reason}); set it in the .env file or in the source's variables"
        )
    return value or ""


def _lookup(name: str, variables: Mapping[str, str], unset: list[str]) -> str:
    if name not in variables:
        unset.append(name)
        return ""
    return variables[name]


def parse_env_file(text: str, variables: Mapping[str, str]) -> dict[str, str]:
    """The variables a .env file sets (Compose's format: KEY=VALUE, `export`, quotes, # comments).

    Unquoted and double-quoted values are interpolated from `variables` and the lines above; single-quoted ones
    are literal. Lines that set nothing (blank, comments, a bare name) are skipped, as Compose skips them.
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = entry.removeprefix("export ").lstrip()
        key, equals, raw = entry.partition("=")
        key = key.strip()
        if not equals or not _NAME.fullmatch(key):
            continue
        scope = {**found, **variables}
        found[key] = _env_value(raw.strip(), scope)
    return found


def _env_value(raw: str, scope: Mapping[str, str]) -> str:
    if raw[:1] == "'" and raw.count("'") >= 2:
        return raw[1 : raw.index("'", 1)]
    if raw[:1] == '"' and '"' in raw[1:]:
        inner = raw[1 : _end_quote(raw)]
        inner = inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return interpolate(inner, scope).value
    value = re.split(r"\s+#", raw, maxsplit=1)[0].strip()  # an inline comment needs a space before the #
    return interpolate(value, scope).value


def _end_quote(raw: str) -> int:
    at = 1
    while at < len(raw):
        if raw[at] == "\\":
            at += 2
            continue
        if raw[at] == '"':
            return at
        at += 1
    return len(raw)
