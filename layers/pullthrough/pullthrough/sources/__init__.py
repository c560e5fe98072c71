"""`warm.sources`: the image references that files (compose, kubernetes, text) and ECS task definitions name.

`read(config)` returns every reference with the source and the place that named it, and every problem found (an
unreadable file, a digest-only reference, a reference no rule caches), so a warm run warms what it can and reports
the rest. `references(config)` is the strict form: it raises SourceError when any source has a problem (what
pruning wants: never delete what a broken source might still name). ecs sources are read only when `ecs` is given
(plan time, with the AWS adapter); at build time they yield nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pullthrough.config.source_entries import ComposeSource, EcsSource, KubernetesSource, Source, TextSource
from pullthrough.errors import ConfigError, Problem
from pullthrough.sources import compose, kubernetes, text
from pullthrough.sources.resolving import Reading, SourceProblem, Yielded

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["EcsReader", "Reading", "SourceError", "SourceProblem", "Yielded", "read", "references", "source_files"]

# The ecs source's reader, bound to the AWS adapter by the caller (plan time): the source in, what it yields out
# (references, problems, notes: `ecs.reader`; an ECS refusal is a problem of the source, never a failed run).
EcsReader = Callable[[EcsSource], Reading]


class SourceError(ConfigError):
    """A source could not be read in full: carries every problem, each naming the file, the place and the fix."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        self.args = (f"{len(problems)} problem(s) in warm.sources:\n{lines}",)


def read(config: Config, *, ecs: EcsReader | None = None, directory: Path | str | None = None) -> Reading:
    """Every reference the sources name and every problem; file paths are relative to `directory`.

    `directory` defaults to the folder of the file the config was loaded from (the current one for a parsed text).
    """
    base = Path(directory) if directory is not None else config_directory(config)
    reading = Reading()
    for source in config.warm.sources:
        if isinstance(source, EcsSource):
            if ecs is None:
                continue
            found = ecs(source)
        else:
            found = _read_files(source, config, base)
        found.problems = [_attributed(problem, source.label) for problem in found.problems]
        found.notes = [_attributed(note, source.label) for note in found.notes]
        reading.extend(found)
    return reading


def references(config: Config, *, ecs: EcsReader | None = None, directory: Path | str | None = None) -> list[Yielded]:
    """Every reference the sources name; SourceError when any source has a problem."""
    reading = read(config, ecs=ecs, directory=directory)
    if reading.problems:
        raise SourceError(reading.problems)
    return reading.unique()


def source_files(config: Config) -> list[str]:
    """The files the sources read, relative to the config file, each once: what the config layer ships."""
    paths = [path for source in config.warm.sources for path in source.paths]
    return list(dict.fromkeys(paths))


def config_directory(config: Config) -> Path:
    """The folder source paths are relative to: where the config file was loaded from, else the current one."""
    origin = config.origin
    return origin.parent if origin is not None else Path.cwd()


def _attributed(problem: Problem, label: str) -> SourceProblem:
    return SourceProblem(location=problem.location, value=problem.value, message=problem.message, source=label)


def _read_files(source: Source, config: Config, base: Path) -> Reading:
    if isinstance(source, ComposeSource):
        return compose.read(source, config, base)
    if isinstance(source, KubernetesSource):
        return kubernetes.read(source, config, base)
    if isinstance(source, TextSource):
        return text.read(source, config, base)
    return Reading()
