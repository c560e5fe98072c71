"""Every enum value in botocore's models of the ECR operations aws/ptc.py calls is known to the config and the rules.

The operations are read from aws/ptc.py itself (every `_ecr().<operation>(` and paginator), their input and output
shapes are walked in botocore's ECR model, and each enum found must be classified below: how the config takes each
value (accepted by validation, or refused with a message that says why), and how ptc reads it back. An enum botocore
adds, or a value it adds to one, fails here until it is handled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape

from pullthrough import config, upstreams
from pullthrough.aws import ptc
from pullthrough.errors import ConfigError

PTC_SOURCE = Path(ptc.__file__).read_text(encoding="utf-8")
MODEL = botocore.session.get_session().get_service_model("ecr")
KEY = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"


def operations() -> list[str]:
    """The ECR operations aws/ptc.py calls, by their API names."""
    names = set(re.findall(r"_ecr\([a-z]*\)\.(\w+)\(", PTC_SOURCE)) | set(
        re.findall(r'get_paginator\("(\w+)"\)', PTC_SOURCE)
    )
    names.discard("get_paginator")
    by_method = {re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(): name for name in MODEL.operation_names}
    return sorted(by_method[name] for name in names)


def enums(shape: Shape, seen: set[str] | None = None) -> Iterator[Shape]:
    seen = set() if seen is None else seen
    if shape.type_name == "structure":
        if shape.name in seen:
            return
        seen.add(shape.name)
        for member in shape.members.values():
            yield from enums(member, seen)
    elif shape.type_name == "list":
        yield from enums(shape.member, seen)  # type: ignore[attr-defined]
    elif shape.type_name == "map":
        yield from enums(shape.value, seen)  # type: ignore[attr-defined]
    elif getattr(shape, "enum", None):
        yield shape


def model_enums() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in operations():
        operation = MODEL.operation_model(name)
        for shape in (operation.input_shape, operation.output_shape):
            for enum in enums(shape) if shape is not None else ():
                found[enum.name] = list(enum.enum)  # type: ignore[attr-defined]
    return found


def parse_template(**template: Any) -> config.Config:
    document = {"version": 1, "rules": [{"prefix": "quay", "upstream": "quay", "template": template}]}
    return config.parse(json.dumps(document))


def upstream_rule(value: str) -> config.Config:
    """A minimal rule for an upstream registry, with what the catalogue says that upstream needs."""
    entry = upstreams.CATALOGUE[value]
    rule: dict[str, Any] = {"prefix": "p1", "upstream": value}
    if entry.url is None:
        rule["url"] = entry.example_url
    if entry.needs_secret:
        rule["credentials"] = "ecr-pullthroughcache/p1"
    return config.parse(json.dumps({"version": 1, "rules": [rule]}))


def mutability(value: str) -> config.Config:
    exclusions = {"mutability_exclusions": ["latest"]} if value.endswith("_WITH_EXCLUSION") else {}
    return parse_template(tag_mutability=value, **exclusions)


def encryption(value: str) -> config.Config:
    if value == "AES256":
        return parse_template(encryption={"type": value})
    return parse_template(encryption={"type": value, "key": KEY}, role="create")


def applied_for(value: str) -> config.Config:
    return parse_template(applied_for=sorted({"PULL_THROUGH_CACHE", value}))


# How the config takes each value of each enum: a function that parses a config using it (raising ConfigError, with
# its message, for a value the config refuses), and what ptc reads it back as.
CLASSIFIED = {
    "UpstreamRegistry": upstream_rule,
    "ImageTagMutability": mutability,
    "EncryptionType": encryption,
    "RCTAppliedFor": applied_for,
    # The only filter type; ptc writes it for every exclusion (template_params) and nothing in the config chooses it.
    "ImageTagMutabilityExclusionFilterType": None,
}
# Values the config refuses on purpose, each with the words its message must contain.
REFUSED: dict[tuple[str, str], str] = {}


def test_ptc_calls_the_rule_and_template_operations() -> None:
    # Guard: the operation list is read from ptc.py; an empty or wrong parse would make the checks below vacuous.
    assert operations() == sorted(
        [
            "CreatePullThroughCacheRule",
            "CreateRepositoryCreationTemplate",
            "DeletePullThroughCacheRule",
            "DeleteRepositoryCreationTemplate",
            "DescribePullThroughCacheRules",
            "DescribeRepositoryCreationTemplates",
            "UpdatePullThroughCacheRule",
            "UpdateRepositoryCreationTemplate",
            "ValidatePullThroughCacheRule",
        ]
    )


def test_every_enum_of_those_operations_is_classified() -> None:
    assert set(model_enums()) == set(CLASSIFIED), "classify the new enum in CLASSIFIED"


@pytest.mark.parametrize(
    ("enum", "value"),
    [(enum, value) for enum, values in model_enums().items() if CLASSIFIED.get(enum) for value in values],
)
def test_the_config_accepts_each_value_or_refuses_it_saying_why(enum: str, value: str) -> None:
    use = CLASSIFIED[enum]
    assert use is not None
    if (enum, value) in REFUSED:
        with pytest.raises(ConfigError) as refused:
            use(value)
        assert REFUSED[(enum, value)] in str(refused.value)
        return
    parsed = use(value)
    assert parsed.rules  # accepted


def test_the_upstream_catalogue_is_exactly_botocores_enum() -> None:
    # The config offers the catalogue's keys (its JSON Schema enum); ECR names no other upstream registry.
    assert set(upstreams.CATALOGUE) == set(model_enums()["UpstreamRegistry"])


def test_ptc_writes_the_only_exclusion_filter_type_and_reads_every_value_back() -> None:
    spec = ptc.TemplateSpec("p", mutability_exclusions=("latest",), tag_mutability="MUTABLE_WITH_EXCLUSION")
    [written] = ptc.template_params(spec)["imageTagMutabilityExclusionFilters"]
    assert written["filterType"] in model_enums()["ImageTagMutabilityExclusionFilterType"]
    # What ECR answers with each value reads back unchanged: compared with the config, it means the same
    values = model_enums()
    for mutability_value in values["ImageTagMutability"]:
        for encryption_value in values["EncryptionType"]:
            read = ptc._template(
                {
                    "prefix": "p",
                    "appliedFor": values["RCTAppliedFor"],
                    "imageTagMutability": mutability_value,
                    "encryptionConfiguration": {"encryptionType": encryption_value},
                }
            )
            assert (read.tag_mutability, read.encryption_type) == (mutability_value, encryption_value)
            assert set(read.applied_for) == set(values["RCTAppliedFor"])
