"""The JSON Schema editors read (config/pullthrough.schema.json): its dialect, and the hints fields attach to it.

A hint only adds JSON Schema keywords (a pattern, examples, the short string form of a section) for an editor to
complete and flag as one types; validation, and its messages, stay in the validators. `Config.dump_schema()` builds
the schema, `schema_text()` (pullthrough.config.command) prints it as committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = ["SCHEMA_DIALECT", "Hint", "OrString", "hint"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Hint:
    """JSON Schema keywords added to a field's schema."""

    keywords: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(dict(self.keywords))
        return schema


def hint(**keywords: Any) -> Hint:
    """A Hint with these keywords."""
    return Hint(tuple(keywords.items()))


@dataclass(frozen=True)
class OrString:
    """Documents the short string form a BeforeValidator expands into the object form."""

    description: str
    pattern: str | None = None

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        inner = handler(core_schema)
        short: dict[str, Any] = {"type": "string", "description": self.description}
        if self.pattern:
            short["pattern"] = self.pattern
        alternatives = inner["anyOf"] if set(inner) == {"anyOf"} else [inner]
        return {"anyOf": [short, *alternatives]}
