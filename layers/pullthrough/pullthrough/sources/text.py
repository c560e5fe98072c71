"""The text source: one image reference a line; `#` starts a comment, blank lines are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pullthrough.config.source_entries import TextSource
from pullthrough.sources.files import read_text
from pullthrough.sources.resolving import Reading

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["read"]


def read(source: TextSource, config: Config, base: Path) -> Reading:
    """Every reference the files list, and a problem for each line that cannot be warmed."""
    reading = Reading()
    for name in source.files:
        file = read_text(base, name, source=source.label)
        if file.problem is not None:
            reading.problems.append(file.problem)
        for number, line in enumerate((file.text or "").splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                reading.add(entry, config, source=source.label, place=f"{name}:{number}")
    return reading
