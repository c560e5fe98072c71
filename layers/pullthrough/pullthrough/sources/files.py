"""Reading a source's files: text in, or the problem naming the file and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pullthrough.errors import Problem

__all__ = ["FileText", "read_text"]

_MAX_BYTES = 5_000_000  # a rendered chart of a few hundred workloads is well under this; more is a wrong file


@dataclass(frozen=True)
class FileText:
    """A source file's text (None when unreadable) with the problem that says why."""

    name: str  # as the config names it, relative to the config file
    text: str | None
    problem: Problem | None = None


def read_text(base: Path, name: str, *, source: str) -> FileText:
    """The text of `name` (relative to `base`), or a problem naming the file, the reason and the fix."""
    path = base / name
    reason: str | None = None
    try:
        if path.stat().st_size > _MAX_BYTES:
            reason = f"larger than {_MAX_BYTES // 1_000_000} MB; name the files that hold images, not an archive"
        else:
            return FileText(name, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        reason = (
            f"no such file next to the config ({path}); file paths are relative to the config file, "
            "so put it in config/ (or a folder under it) or fix the path"
        )
    except IsADirectoryError:
        reason = "a folder, not a file; name each file it holds"
    except UnicodeDecodeError:
        reason = "not UTF-8 text; save it as UTF-8"
    except OSError as exc:
        reason = f"cannot read it ({exc.strerror or type(exc).__name__}); check its permissions"
    problem = Problem(location=f"{name} (source {source})", value=name, message=reason)
    return FileText(name, None, problem)
