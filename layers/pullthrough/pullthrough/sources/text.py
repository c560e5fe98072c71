"""The text source: one image reference a line; `#` starts a comment, blank lines are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pullthrough.errors import Problem
from pullthrough.sources.files import read_text
from pullthrough.sources.model import TextSource
from pullthrough.sources.resolving import Yielded, resolve

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["read"]


def read(source: TextSource, config: Config, base: Path) -> tuple[list[Yielded], list[Problem]]:
    """Every reference the files list, and a problem for each line that cannot be warmed."""
    found: list[Yielded] = []
    problems: list[Problem] = []
    for name in source.files:
        file = read_text(base, name, source=source.label)
        if file.problem is not None:
            problems.append(file.problem)
        for number, line in enumerate((file.text or "").splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            place = f"{name}:{number}"
            resolved = resolve(entry, config)
            if resolved.reference is not None:
                found.append(Yielded(str(resolved.reference), source.label, place))
            else:
                problems.append(Problem(location=place, value=entry, message=str(resolved.problem)))
    return found, problems
