"""Figures and the one table `make bench` prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict, TypeVar

T = TypeVar("T")


class Columns(TypedDict):
    """A figure's two values: with the network model, and without (empty when the run took only one)."""

    value: str
    loopback: str


def columns(runs: Sequence[T], show: Callable[[T], str]) -> Columns:
    """`show` of the first run (the model's) and of the second (loopback), if any."""
    return Columns(value=show(runs[0]), loopback=show(runs[1]) if len(runs) > 1 else "")


@dataclass(frozen=True)
class Figure:
    """One measured figure: what, the value as text, and the goal it is held to (if any)."""

    section: str
    name: str
    value: str  # with the network model (or the only value, for figures the model does not touch)
    goal: str = ""
    met: bool | None = None  # None: no goal
    loopback: str = ""  # the same figure without the model, when the benchmark took it both ways

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def ratio(value: float) -> str:
    return f"{value:.1f}x"


def size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render(figures: Sequence[Figure]) -> str:
    """The figures as one aligned text table, grouped by section."""
    headers = ("benchmark", "figure", "with the network model", "loopback (no model)", "goal", "")
    rows = [(f.section, f.name, f.value, f.loopback, f.goal, f.verdict) for f in figures]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), line]
    previous = None
    for row in rows:
        shown = ("" if row[0] == previous else row[0], *row[1:])
        if row[0] != previous and previous is not None:
            out.append("")
        previous = row[0]
        out.append("  ".join(str(c).ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return "\n".join(out)
