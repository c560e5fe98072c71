"""The config's field types and validators: what a single value must be, and the message when it is not.

Each validator raises ValueError with what would be valid (pydantic turns it into a problem at the value's place);
the checks that span fields or the whole document stay with the models and in pullthrough.config.checks. Models use
these as `fields.schedule`, never by bare name: a class's own field (`schedule`) would shadow the validator when
pydantic reads the annotation.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from pullthrough import tag_patterns
from pullthrough.config.patterns import ARCHES, EXCLUSION_FILTER, OSES, REPO_PREFIX, SECRET_NAME, SECRET_PREFIX
from pullthrough.config.redaction import hide_tokens
from pullthrough.config.schema import hint
from pullthrough.errors import InvalidReference
from pullthrough.reference import ROOT_PREFIX, ImageReference, validate_tag

__all__ = [
    "ExclusionFilter",
    "ImageRef",
    "Model",
    "Platform",
    "Seconds",
    "Tag",
    "did_you_mean",
    "must_match",
]


class Model(BaseModel):
    """A section of the config: unknown fields are refused (a typo is a problem, not a silent default), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def repo_prefix(value: str, what: str) -> str:
    bare = value.rstrip("/")
    if bare != ROOT_PREFIX and not re.fullmatch(REPO_PREFIX, bare):
        raise ValueError(
            f"{what} must be lower-case letters and digits in '/'-separated parts, joined by '.', '_', '__' "
            "or dashes, like docker-hub or cache/ghcr"
        )
    if bare != value:
        raise ValueError(f"drop the trailing '/': ECR always adds one (write {bare!r})")
    if not 2 <= len(value) <= 30:
        raise ValueError(f"{what} must be 2 to 30 characters (ECR's limit), not {len(value)}")
    return value


def secret_name(value: str) -> str:
    if value.startswith("arn:"):
        raise ValueError("give the secret's name (ecr-pullthroughcache/...), not its ARN")
    if not value.startswith(SECRET_PREFIX) or len(value) == len(SECRET_PREFIX):
        raise ValueError(
            f"ECR only reads secrets whose name starts with {SECRET_PREFIX}; name it like {SECRET_PREFIX}docker-hub"
        )
    if len(value) > 512 or not re.fullmatch(SECRET_NAME, value):
        raise ValueError("a secret name is at most 512 of the characters A-Z a-z 0-9 / _ + = . @ -")
    return value


def image_reference(value: Any) -> ImageReference:
    if isinstance(value, ImageReference):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an image reference such as nginx:1.27 or ghcr.io/org/app:v1")
    try:
        return ImageReference.parse(value)
    except InvalidReference as exc:
        if hide_tokens(value) != value:
            # The parser's reason quotes the text back (lower-cased): say what it is instead.
            raise ValueError(
                "this looks like an access token, not an image reference; a token belongs in the rule's "
                "credentials secret, never in this file"
            ) from None
        raise ValueError(exc.reason) from None


def tag(value: str) -> str:
    try:
        return validate_tag(value)
    except InvalidReference as exc:
        raise ValueError(exc.reason) from None


def platform(value: str) -> str:
    parts = value.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise ValueError("a platform is os/arch or os/arch/variant, like linux/amd64 or linux/arm/v7")
    os_name, arch = parts[0], parts[1]
    if os_name not in OSES:
        raise ValueError(f"unknown os {os_name!r}{did_you_mean(os_name, OSES)}; e.g. linux or windows")
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}{did_you_mean(arch, ARCHES)}; e.g. amd64 or arm64")
    if len(parts) == 3 and not re.fullmatch(r"[a-z0-9]+", parts[2]):
        raise ValueError(f"variant {parts[2]!r} must be lower-case letters and digits, like v7 or v8")
    return value


def schedule(value: str) -> str:
    rate = re.fullmatch(r"rate\((\d+) ([a-z]+)\)", value)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1:
            raise ValueError("a rate must be at least 1, like rate(6 hours)")
        singular = unit.rstrip("s")
        if singular not in ("minute", "hour", "day"):
            raise ValueError(f"unknown rate unit {unit!r}; use minutes, hours or days")
        expected = singular if count == 1 else singular + "s"
        if unit != expected:
            raise ValueError(f"write rate({count} {expected}): EventBridge wants the singular only for 1")
        return value
    cron = re.fullmatch(r"cron\((.*)\)", value)
    if cron:
        fields = cron.group(1).split()
        if len(fields) != 6:
            raise ValueError(
                f"a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), "
                f"not {len(fields)}, like cron(0 3 * * ? *)"
            )
        if not all(re.fullmatch(r"[0-9A-Za-z*?,/#-]+", f) for f in fields):
            raise ValueError("cron fields hold only digits, names, and * ? , / - L W #")
        if (fields[2] == "?") == (fields[4] == "?"):
            raise ValueError("exactly one of day-of-month (3rd field) and day-of-week (5th field) must be ?")
        return value
    if value.startswith("at("):
        raise ValueError("a one-time at() schedule warms once; use rate(...) or cron(...)")
    raise ValueError("must be rate(N unit) or cron(6 fields), like rate(6 hours) or cron(0 3 * * ? *)")


_DURATION_UNITS = {"second": 1, "minute": 60, "hour": 3600}


def duration(value: Any) -> Any:
    """`90 seconds`, `15 minutes`, `1 hour` (or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 15 minutes or 1 hour, not true or false")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]+)\s*", value)
    unit = match.group(2).rstrip("s") if match else ""
    if match is None or unit not in _DURATION_UNITS:
        raise ValueError("must be a duration such as 30 seconds, 15 minutes or 1 hour")
    return int(match.group(1)) * _DURATION_UNITS[unit]


Seconds = Annotated[
    int,
    BeforeValidator(duration),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+ ?[a-z]+$"}]}),
]


def tag_pattern(value: str) -> str:
    # Compiled here so a pattern the planner's matcher cannot run in bounded time is refused before any AWS call.
    try:
        tag_patterns.compile_pattern(value)
    except tag_patterns.PatternError as exc:
        raise ValueError(str(exc)) from None
    return value


def aws_tag_text(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"a tag {what} is at most {limit} characters, not {len(value)}")
    if not all(ch.isalnum() or ch.isspace() or ch in "_.:/=+-@" for ch in value):
        raise ValueError(f"a tag {what} holds only letters, digits, spaces and _ . : / = + - @")
    return value


def success_mode(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false.
    return "off" if value is False else value


def credentials_form(value: Any) -> Any:
    return {"secret": value} if isinstance(value, str) else value


def image_form(value: Any) -> Any:
    return {"image": value} if isinstance(value, str) else value


ImageRef = Annotated[
    ImageReference,
    PlainValidator(image_reference),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An image reference: [registry/]repository[:tag][@digest]; docker.io when no registry.",
            "examples": ["nginx:1.27", "olakego/source-mysql:v0.1.8", "ghcr.io/org/app:v1"],
        }
    ),
]
Tag = Annotated[str, AfterValidator(tag), hint(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Platform = Annotated[
    str, AfterValidator(platform), hint(pattern=r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$", examples=["linux/amd64"])
]
ExclusionFilter = Annotated[
    str,
    AfterValidator(lambda v: must_match(v, EXCLUSION_FILTER, "a filter is 1 to 128 of 0-9 a-z A-Z . _ * -")),
    hint(pattern=f"^{EXCLUSION_FILTER}$"),
]


def must_match(value: str, pattern: str, message: str) -> str:
    """`value` when `pattern` matches it in full; else ValueError(`message`)."""
    if not re.fullmatch(pattern, value):
        raise ValueError(message)
    return value
