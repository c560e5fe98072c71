"""The config document (config/pullthrough.yaml): its model, its loading, and the JSON Schema editors use.

`load(path)` and `parse(text, source=...)` return a `Config` or raise `ConfigError` carrying every problem found,
each with its location (`config/pullthrough.yaml: rules[2].credentials`), the offending value (never a token)
and what would be valid. Checks that span the document (each image resolves to exactly one rule, prefixes are
unique and do not nest) run even when parts of the document are broken, so one round of fixes is enough.

`python -m pullthrough.config --schema` prints the JSON Schema; `--check FILE` prints the explanation or the
problems. This package is imported in every Lambda cold start: it must stay free of boto3.

Its modules, each one concern (the public API is re-exported here, so `from pullthrough.config import Config`):
- the model: `document` (Config, Notifications), `rules` (Rule, RuleCredentials), `templates` (Template and its
  Encryption, Lifecycle), `warm` (Warm, WarmImage, Imports, WarmTarget), `prune` (Prune); built from `fields` (the
  field types and validators), `patterns` (the shapes of names and ARNs) and `schema` (the JSON Schema hints);
- `resolution`: which rule caches an image, or what to fix;
- `loading` (load, parse), `problems` (pydantic's errors in the config's words), `redaction` (values a problem
  shows, never a token), `checks` (across the document);
- `command`: `python -m pullthrough.config` (main, schema_text), imported by __main__ only: it reads the sources too,
  which no function needs at import.
- `source_entries`: the `warm.sources` entries (compose, kubernetes, text, ecs), read by pullthrough.sources.
The YAML itself is read by pullthrough.safe_yaml, which the warm.sources readers (pullthrough.sources) share.
"""

from __future__ import annotations

from pullthrough.config.document import Config, Notifications
from pullthrough.config.loading import load, parse
from pullthrough.config.patterns import ADMIN_SECRET_PREFIX, SECRET_PREFIX
from pullthrough.config.prune import Prune
from pullthrough.config.rules import Rule, RuleCredentials
from pullthrough.config.schema import SCHEMA_DIALECT
from pullthrough.config.templates import CREATE_ROLE, Encryption, Lifecycle, Template, policy_text
from pullthrough.config.warm import Imports, Warm, WarmImage, WarmTarget

__all__ = [
    "ADMIN_SECRET_PREFIX",
    "CREATE_ROLE",
    "SCHEMA_DIALECT",
    "SECRET_PREFIX",
    "Config",
    "Encryption",
    "Imports",
    "Lifecycle",
    "Notifications",
    "Prune",
    "Rule",
    "RuleCredentials",
    "Template",
    "Warm",
    "WarmImage",
    "WarmTarget",
    "load",
    "parse",
    "policy_text",
]
