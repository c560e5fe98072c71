"""A response body checked against botocore's model of the operation's output: what AWS promises to send.

botocore validates what a client sends, never what it receives, and its parser drops what the model does not name
and reads loosely what it does; so a sandbox answer can parse fine and still be one AWS never sends. This walks the
raw JSON body (the JSON protocol's wire form) against the output shape: required members, no unmodelled member,
types, enum values, min/max (a length for strings, lists and maps, a value for numbers) and patterns (Smithy's
`pattern` trait is not anchored: a value matches when the regex is found in it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.model import MapShape, Shape, StructureShape

_NUMBER = (int, float)


def problems(shape: Shape | None, value: Any, path: str = "$") -> list[str]:
    """Every way `value` (decoded JSON) breaks `shape`; empty when it conforms."""
    if shape is None:
        return [] if value in (None, {}) else [f"{path}: the operation has no output, got {value!r}"]
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, path)  # type: ignore[arg-type]
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: a list, not {type(value).__name__}"]
        member = shape.member  # type: ignore[attr-defined]
        found = [p for i, item in enumerate(value) for p in problems(member, item, f"{path}[{i}]")]
        return found + _bounds(shape, len(value), path, "items")
    if kind == "map":
        return _map(shape, value, path)  # type: ignore[arg-type]
    return _scalar(shape, value, path)


def _structure(shape: StructureShape, value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: an object, not {type(value).__name__}"]
    wire = {member.serialization.get("name", name): (name, member) for name, member in shape.members.items()}
    found = [f"{path}.{key}: not in the model's {shape.name}" for key in value if key not in wire]
    found += [
        f"{path}.{name}: required by {shape.name}, missing" for name in shape.required_members if name not in value
    ]
    for key, item in value.items():
        if key in wire and item is not None:
            found += problems(wire[key][1], item, f"{path}.{key}")
    return found


def _map(shape: MapShape, value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: an object (map), not {type(value).__name__}"]
    found = []
    for key, item in value.items():
        found += problems(shape.key, key, f"{path}<key {key}>")
        found += problems(shape.value, item, f"{path}.{key}")
    return found + _bounds(shape, len(value), path, "entries")


def _scalar(shape: Shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    check = _SCALARS.get(kind)
    if check is None:
        return [f"{path}: the validator does not know shape type {kind}"]
    return check(shape, value, path)


def _text(shape: Shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    if not isinstance(value, str):
        return [f"{path}: a {kind} (JSON string), not {type(value).__name__} {value!r}"]
    found = _bounds(shape, len(value), path, "characters") if kind == "string" else []
    enum = shape.enum if kind == "string" else []  # type: ignore[attr-defined]
    if enum and value not in enum:
        found.append(f"{path}: {value!r} is not one of {shape.name}'s values {sorted(enum)}")
    pattern = shape.metadata.get("pattern")
    if pattern and kind == "string" and re.search(pattern, value) is None:
        found.append(f"{path}: {value!r} does not match {shape.name}'s pattern {pattern}")
    return found


def _integer(shape: Shape, value: Any, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{path}: an integer, not {type(value).__name__} {value!r}"]
    return _bounds(shape, value, path, "")


def _number(shape: Shape, value: Any, path: str) -> list[str]:
    return [] if isinstance(value, _NUMBER) and not isinstance(value, bool) else [f"{path}: a number, not {value!r}"]


def _boolean(shape: Shape, value: Any, path: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{path}: a boolean, not {type(value).__name__} {value!r}"]


def _timestamp(shape: Shape, value: Any, path: str) -> list[str]:
    # The JSON protocol sends epoch seconds unless the shape says otherwise (botocore's JSON parser).
    if shape.serialization.get("timestampFormat", "unixTimestamp") == "unixTimestamp":
        ok = isinstance(value, _NUMBER) and not isinstance(value, bool)
        return [] if ok else [f"{path}: epoch seconds (a number), not {value!r}"]
    return [] if isinstance(value, str) else [f"{path}: a timestamp string, not {value!r}"]


_SCALARS: dict[str, Callable[[Shape, Any, str], list[str]]] = {
    "string": _text,
    "blob": _text,
    "integer": _integer,
    "long": _integer,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
}


def _bounds(shape: Shape, size: int, path: str, unit: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    what = f"{size} {unit}".strip()
    if low is not None and size < low:
        return [f"{path}: {what}, below {shape.name}'s min {low}"]
    if high is not None and size > high:
        return [f"{path}: {what}, above {shape.name}'s max {high}"]
    return []
