"""Read template.yaml as CloudFormation does: short-form tags (!Ref, !Sub, !GetAtt, ...) become their long forms.

Tests derive names and settings from the template through this module, so tests and infrastructure cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# `${Name}` and `${Name.Attribute}` in a Sub string; `${!Literal}` is an escape, not a reference.
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}.]+)(?:\.[^}]+)?\}")


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic functions."""


def _long_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short form writes `Resource.Attribute`; the long form is a two-item list.
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _long_form)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation / SAM template, keeping the order of its sections and keys."""
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506
    if not isinstance(document, dict):
        raise TypeError(f"{path}: expected a mapping at the top level, got {type(document).__name__}")
    return document


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def referenced_names(node: Any) -> Iterator[str]:
    """Every name a node refers to: `Ref` targets, `Fn::GetAtt` resources and `Fn::Sub` variables."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt" and isinstance(value, list) and value:
                yield str(value[0])
            elif key == "Fn::Sub":
                template_string = value[0] if isinstance(value, list) else value
                if isinstance(template_string, str):
                    bound = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                    yield from (name for name in _SUB_VARIABLE.findall(template_string) if name not in bound)
            yield from referenced_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_names(item)
