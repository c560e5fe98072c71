"""IAM's matching rules: action and resource wildcards, and the condition operators Pullthrough's policies use.

Sources, each rule below names which:
- IAM User Guide, "IAM JSON policy elements: Action" / "Resource" (wildcards, case rules),
- IAM User Guide, "IAM JSON policy elements: Condition operators" (String*, Arn*, Bool, Null, ...IfExists),
- IAM User Guide, "Set operators for multivalued context keys" (ForAllValues:, ForAnyValue:),
- IAM User Guide, "Condition element": several operators, and several keys in one operator, must all hold; several
  values for one key are alternatives.
An operator the sandbox does not implement raises instead of guessing: a policy the sandbox cannot read is a bug to
fix here, not an Allow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

# A request's context: key (lower case, IAM keys are case-insensitive) -> one value or several (multivalued keys,
# such as dynamodb:LeadingKeys).
Context = Mapping[str, str | Sequence[str]]


class UnsupportedPolicy(ValueError):
    """A policy uses an element the sandbox does not evaluate (so it must not pretend to)."""


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # "*" matches any run of characters (none included), "?" exactly one; everything else is literal.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """StringLike: the whole value matches the pattern's `*` and `?` wildcards."""
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variables are not evaluated by the sandbox: {pattern}")
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """IAM "Action": `service:Name`, wildcards allowed, case-insensitive (actions are not case-sensitive)."""
    return like(pattern, action, ignore_case=True)


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own, case-sensitively (wildcards per part).

    The resource part keeps its own colons (`secret:name-AbCdEf`), so both sides are split five times at most.
    """
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return pattern == arn
    return all(like(w, a) for w, a in zip(wanted, actual, strict=True))


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM "Resource": `*` is every resource; an ARN matches part by part (as ArnLike does).

    An action with no resource type is requested on `*`, which only a `*` in the policy matches (the service
    authorization reference: such actions "require that you specify All resources (\\"*\\")").
    """
    if pattern == "*":
        return True
    if resource == "*":
        return False
    return arn_like(pattern, resource)


# --- condition operators ---------------------------------------------------------------------------------------------

_Compare = Callable[[str, str], bool]


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


# operator -> (comparison of one policy value with one context value, negated?)
_OPERATORS: dict[str, tuple[_Compare, bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: like(p, v), False),
    "StringNotLike": (lambda p, v: like(p, v), True),
    "ArnEquals": (arn_like, False),
    "ArnLike": (arn_like, False),
    "ArnNotEquals": (arn_like, True),
    "ArnNotLike": (arn_like, True),
    "Bool": (_bool, False),
}


def condition_holds(operator: str, key: str, policy_values: object, context: Context) -> bool:
    """Whether one `Operator: {key: values}` entry of a Condition block holds for the request's context."""
    values = [str(v) for v in (policy_values if isinstance(policy_values, list) else [policy_values])]
    if any("${" in value for value in values):
        raise UnsupportedPolicy(f"policy variables are not evaluated by the sandbox: {values}")
    name = key.lower()
    present = name in context
    if operator == "Null":
        # "true": the key must be absent; "false": present (IAM User Guide, Null condition operator).
        return all((not present) if value.lower() == "true" else present for value in values)
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedPolicy(f"condition operator {operator} is not evaluated by the sandbox")
    compare, negated = _OPERATORS[base]
    raw = context.get(name)
    found = [raw] if isinstance(raw, str) else list(raw or [])

    def one(value: str) -> bool:
        hit = any(compare(policy, value) for policy in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        # True when every value of the key matches, and when the key is absent or empty (the set operators page
        # warns of exactly this).
        return all(one(value) for value in found)
    if qualifier == "ForAnyValue":
        return any(one(value) for value in found)
    if not present:
        # A missing key: ...IfExists holds; a negated operator holds; any other does not (Condition operators page).
        return if_exists or negated
    if not isinstance(raw, str):
        raise UnsupportedPolicy(f"{key} has several values in this request: use ForAllValues: or ForAnyValue:")
    return one(raw)


def conditions_hold(block: Mapping[str, Mapping[str, object]], context: Context) -> bool:
    """Every operator of a Condition block, and every key under each, must hold (a logical AND)."""
    return all(
        condition_holds(operator, key, values, context)
        for operator, entries in block.items()
        for key, values in entries.items()
    )
