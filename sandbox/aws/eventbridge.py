"""EventBridge's side of the sandbox's routing: event pattern matching and the envelope an event arrives in.

Separate from sandbox/stack.py (which deploys the template and routes by it) because the pattern semantics are
EventBridge's own, documented in the EventBridge User Guide ("Amazon EventBridge event patterns", "Content filtering
in Amazon EventBridge event patterns"), and tested on their own (tests/unit/test_stack_patterns.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge event pattern semantics: every key must match; a list is a set of alternatives."""
    for key, expected in pattern.items():
        present = key in event
        actual = event.get(key)
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if not _any_value(expected, actual, present):
                return False
        elif actual != expected:
            return False
    return True


def _any_value(alternatives: list[Any], actual: Any, present: bool) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    for alt in alternatives:
        if isinstance(alt, dict):
            if "exists" in alt:
                if bool(alt["exists"]) == present:
                    return True
                continue
            if present and any(_filter(alt, v) for v in values):
                return True
        elif present and alt in values:
            return True
    return False


def _prefix(arg: Any, value: Any) -> bool:
    text = value if isinstance(value, str) else None
    if isinstance(arg, dict):
        return text is not None and text.lower().startswith(str(arg["equals-ignore-case"]).lower())
    return text is not None and text.startswith(arg)


def _suffix(arg: Any, value: Any) -> bool:
    return isinstance(value, str) and value.endswith(arg)


def _equals_ignore_case(arg: Any, value: Any) -> bool:
    return isinstance(value, str) and value.lower() == str(arg).lower()


def _wildcard(arg: Any, value: Any) -> bool:
    pattern = ".*".join(re.escape(p) for p in str(arg).split("*"))
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        return not _filter(arg, value)
    return value not in (arg if isinstance(arg, list) else [arg])


_FILTERS: dict[str, Callable[[Any, Any], bool]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
}


def _filter(rule: dict[str, Any], value: Any) -> bool:
    (name, arg), *_ = rule.items()
    if name not in _FILTERS:
        raise ValueError(f"event pattern filter {name!r} is not supported by the sandbox router")
    return _FILTERS[name](arg, value)


def envelope(account: str, region: str) -> dict[str, Any]:
    """The fields EventBridge adds to every event it delivers (a new id, the account, region and time)."""
    return {
        "version": "0",
        "id": os.urandom(16).hex(),
        "account": account,
        "region": region,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [],
    }
