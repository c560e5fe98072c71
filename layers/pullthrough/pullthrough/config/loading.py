"""Loading the config: the file read, its YAML parsed by the hardened loader, the model validated, the document
checked as a whole, and every problem gathered into one ConfigError with the document's tokens hidden.

The one way in for every reader of the config (functions, CLI, tests): `load(path)` or `parse(text, source=...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pullthrough import safe_yaml
from pullthrough.config.checks import document_checks
from pullthrough.config.document import Config
from pullthrough.config.problems import translate
from pullthrough.config.redaction import hide_tokens, show, tokens_in, without_tokens
from pullthrough.errors import ConfigError, Problem

__all__ = ["load", "parse"]


def load(path: str | Path) -> Config:
    """Read and validate the config file at `path`; ConfigError lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            [Problem(location=str(path), value=str(path), message=f"cannot read the config file: {reason}")]
        ) from None
    config = parse(text, source=str(path))
    config._origin = path
    return config


def parse(text: str, source: str = "<config>") -> Config:
    """Validate a config document given as YAML text; `source` names it in problems."""
    raw = _read_yaml(text, source)
    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems.extend(translate(exc, source, raw))
    problems.extend(document_checks(raw, config, source))
    if problems or config is None:
        raise ConfigError(without_tokens(problems, tokens_in(raw)))
    return config


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = safe_yaml.load_single(text)
    except safe_yaml.YamlProblem as exc:
        where = f"{source}: line {exc.line}, column {exc.column}" if exc.line is not None else source
        value = show(hide_tokens(exc.text)) if exc.line is not None else exc.text
        problem = Problem(location=where, value=value, message=exc.message)
        raise ConfigError(without_tokens([problem], ())) from None
    if raw is None:
        raise ConfigError([Problem(location=source, value="nothing", message="the document is empty")])
    if not isinstance(raw, dict):
        raise ConfigError(
            [
                Problem(
                    location=source, value=show(raw), message="the document must be a mapping (version: 1, rules: ...)"
                )
            ]
        )
    return raw
