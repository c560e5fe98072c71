"""Problems from pydantic's errors, in the config's words: each at its place (`rules[2].credentials`), with the
value the user wrote (shortened, never a token) and what would be valid.

pydantic's own messages name Python types and its internal locations (a discriminated union's member); a person
editing YAML needs the key they wrote, the closest valid spelling, and why YAML read `off` as false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pullthrough.config.document import Config
from pullthrough.config.fields import did_you_mean
from pullthrough.config.redaction import hide_tokens, show
from pullthrough.config.source_entries import SOURCE_KINDS
from pullthrough.errors import Problem

__all__ = ["format_loc", "raw_at", "raw_lookup", "translate"]


def translate(exc: ValidationError, source: str, raw: Any) -> list[Problem]:
    """Every error of `exc` as a problem of the document `raw` named `source`."""
    errors = exc.errors(include_url=False)
    inner = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
    problems = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in inner:
            continue  # pydantic counts only the valid items; the broken ones are reported already
        if loc and loc[-1] in ("secret", "image") and isinstance(raw_at(raw, loc[:-1]), str):
            loc = loc[:-1]  # the short string form: point at the string the user wrote
        shown_loc = _without_kind(loc)
        found, value = raw_lookup(raw, shown_loc)
        absent = error["type"] == "missing" or (not found and error["input"] is None)
        shown = "nothing" if absent else show(value if found else error["input"])
        message = _message(error, loc)
        problems.append(Problem(location=f"{source}: {format_loc(shown_loc)}", value=shown, message=message))
    return problems


def _without_kind(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """`loc` without the kind pydantic puts after a warm.sources item (the user wrote no such key)."""
    for at in range(len(loc) - 2):
        if loc[at] == "sources" and isinstance(loc[at + 1], int) and loc[at + 2] in SOURCE_KINDS:
            return loc[: at + 2] + loc[at + 3 :]
    return loc


def _kind_message(tag: Any) -> str:
    """A warm.sources item without a kind, or with one that does not exist."""
    kinds = ", ".join(SOURCE_KINDS)
    if tag is None:
        return f"kind is required: one of {kinds} (e.g. kind: compose, files: [docker-compose.yml])"
    return f"unknown kind {tag!r}{did_you_mean(str(tag), SOURCE_KINDS)}; valid: {kinds}"


@dataclass(frozen=True)
class _Error:
    """One pydantic error, as the explanations read it."""

    kind: str
    ctx: dict[str, Any]
    value: Any
    loc: tuple[Any, ...]
    msg: str


def _message(error: Any, loc: tuple[Any, ...]) -> str:
    found = _Error(error["type"], error.get("ctx") or {}, error["input"], loc, str(error["msg"]))
    explain = _EXPLAIN.get(found.kind)
    if explain is not None:
        return explain(found)
    return found.msg[:1].lower() + found.msg[1:]


def _missing(error: _Error) -> str:
    description = _description(error.loc)
    return "required" + (f": {description[:1].lower()}{description[1:]}" if description else "")


def _extra(error: _Error) -> str:
    fields = _fields_at(error.loc[:-1])
    return f"unknown field{did_you_mean(str(error.loc[-1]), fields)}; valid here: {', '.join(fields)}"


def _literal(error: _Error) -> str:
    if error.loc == ("version",):
        return "this Pullthrough reads version: 1"
    expected = str(error.ctx.get("expected", ""))
    choices = re.findall(r"'([^']*)'", expected)
    value = error.value
    return f"must be one of {expected}" + (did_you_mean(str(value), choices) if isinstance(value, str) else "")


def _text(error: _Error) -> str:
    if isinstance(error.value, bool):
        return "YAML read this as true/false (yes, no, on, off); write it in quotes to keep it text"
    if isinstance(error.value, int | float):
        return 'YAML read this as a number; write it in quotes (e.g. "1.10") to keep it text'
    return "must be text"


def _whole_number(error: _Error) -> str:
    if isinstance(error.value, bool):
        return "YAML read this as true/false; write a whole number, e.g. 3"
    return "must be a whole number"


def _number_expected(error: _Error) -> str:
    percent = _percentage(error.value)
    if percent is not None:
        return f"write a share between 0 and 1, not a percentage: {error.value.strip()} is {percent}"
    return "must be a number"


def _mapping(error: _Error) -> str:
    fields = _fields_at(error.loc)
    return "must be a mapping" + (f" with fields {', '.join(fields)}" if fields else "")


_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must be at least {min_length} character(s)",
    "string_too_long": "must be at most {max_length} characters",
}


def _bound(error: _Error) -> str:
    value = error.value
    if (
        error.kind == "less_than_equal"
        and error.loc[-1:] == ("budget_share",)
        and isinstance(value, int | float)
        and 2 <= value <= 100
    ):
        return f"must be at most 1 (a share, not a percentage: for {_number(value)}% write {_number(value / 100)})"
    return _BOUNDS[error.kind].format(**{k: _number(v) for k, v in error.ctx.items()})


# What each kind of pydantic error means in the config's words; another kind keeps pydantic's message.
_EXPLAIN: dict[str, Callable[[_Error], str]] = {
    "union_tag_invalid": lambda error: _kind_message(error.ctx.get("tag")),
    "union_tag_not_found": lambda error: _kind_message(error.ctx.get("tag")),
    "value_error": lambda error: str(error.ctx.get("error", error.msg)),
    "missing": _missing,
    "extra_forbidden": _extra,
    "literal_error": _literal,
    "string_type": _text,
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float"), _whole_number),
    **dict.fromkeys(("float_type", "float_parsing", "finite_number"), _number_expected),
    **dict.fromkeys(("bool_type", "bool_parsing"), lambda _: "must be true or false"),
    **dict.fromkeys(("list_type", "tuple_type"), lambda _: "must be a list"),
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), _mapping),
    **dict.fromkeys(
        ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"),
        lambda _: "must be a date written YYYY-MM-DD",
    ),
    **dict.fromkeys(_BOUNDS, _bound),
}


def _percentage(value: Any) -> float | None:
    """`50%` as 0.5; None for anything else."""
    if not isinstance(value, str) or not value.strip().endswith("%"):
        return None
    try:
        return float(value.strip()[:-1]) / 100
    except ValueError:
        return None


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def format_loc(loc: Sequence[Any]) -> str:
    """A location as the user would write it: `rules[2].credentials`, `warm.images[0]`."""
    text = ""
    for part in loc:
        if isinstance(part, str):
            part = hide_tokens(part)  # an unknown key is shown as written, unless it is a pasted token
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            text += ("." if text else "") + str(part)
        else:
            text += f"[{json.dumps(str(part))}]"
    return text or "(document)"


def raw_lookup(raw: Any, loc: Sequence[Any]) -> tuple[bool, Any]:
    """Whether the document has a value at `loc`, and the value."""
    node = raw
    for part in loc:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        else:
            return False, None
    return True, node


def raw_at(raw: Any, loc: Sequence[Any]) -> Any:
    """The document's value at `loc`, or None."""
    return raw_lookup(raw, loc)[1]


def _strip(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        args = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (Union, type(int | None)) and len(args) == 1:
            tp = args[0]
            continue
        return tp


def _kind_of(model: type[BaseModel]) -> tuple[Any, ...]:
    """The values a model's `kind` field admits (its Literal's arguments); () without such a field."""
    field = model.model_fields.get("kind")
    return get_args(field.annotation) if field is not None else ()


def _type_at(loc: Sequence[Any]) -> Any:
    tp: Any = Config
    for part in loc:
        tp = _strip(tp)
        members = [m for m in get_args(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
        if members and isinstance(part, str):  # a discriminated union: pydantic's loc names the member's kind
            chosen = [m for m in members if _kind_of(m) == (part,)]
            if chosen:
                tp = chosen[0]
                continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return _strip(tp)


def _fields_at(loc: Sequence[Any]) -> list[str]:
    tp = _type_at(loc)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _description(loc: Sequence[Any]) -> str:
    parent = _type_at(loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)) or not isinstance(loc[-1], str):
        return ""
    field = parent.model_fields.get(loc[-1])
    return (field.description or "") if field else ""
