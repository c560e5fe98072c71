"""`python -m pullthrough.config`: `--schema` prints the JSON Schema, `--check FILE` the explanation or the problems.

The command of the config alone (no AWS): `make schema` writes config/pullthrough.schema.json with it, and an editor
or a pipeline checks a config with it before a deploy.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pullthrough import sources
from pullthrough.config.document import Config
from pullthrough.config.loading import load
from pullthrough.errors import ConfigError

__all__ = ["main", "schema_text"]


def schema_text() -> str:
    """The JSON Schema as committed in config/pullthrough.schema.json (`make schema` writes it)."""
    return json.dumps(Config.dump_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`--schema` prints the JSON Schema; `--check FILE` prints the explanation, or the problems and exits 1."""
    parser = argparse.ArgumentParser(prog="python -m pullthrough.config", description=main.__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--schema", action="store_true", help="print the config's JSON Schema")
    group.add_argument("--check", metavar="FILE", help="validate FILE and explain what it configures")
    args = parser.parse_args(argv)
    if args.schema:
        sys.stdout.write(schema_text())
        return 0
    try:
        config = load(args.check)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    reading = sources.read(config)
    print("\n".join(config.explain(reading)))
    problems = reading.problems  # what warm.sources name that cannot be warmed
    for problem in problems:
        print(f"warm.sources: {problem}", file=sys.stderr)
    return 1 if problems else 0
