"""Template helpers for the tests: the loader lives in sandbox/template.py (the event router reads it too)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sandbox.template import REPO_ROOT, TEMPLATE_PATH, load_template

__all__ = [
    "CONFIG_FACTS",
    "REPO_ROOT",
    "TEMPLATE_PATH",
    "config_facts",
    "load_template",
    "referenced_names",
    "resources_of_type",
]

CONFIG_FACTS = "ConfigFacts"  # the custom resource whose attributes carry what the template needs from the config

# `${Name}` and `${Name.Attribute}` in a Sub string; `${!Literal}` is an escape, not a reference.
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}.]+)(?:\.[^}]+)?\}")


def config_facts(config_text: str | None = None) -> dict[str, str]:
    """What ConfigFacts answers for a config document (the repository's config/pullthrough.yaml by default): the
    values `!GetAtt ConfigFacts.<name>` stands for once deployed, computed by the function that answers it."""
    from pullthrough import config, facts

    parsed = (
        config.parse(config_text) if config_text is not None else config.load(REPO_ROOT / "config/pullthrough.yaml")
    )
    return facts.derive(parsed).attributes()


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
