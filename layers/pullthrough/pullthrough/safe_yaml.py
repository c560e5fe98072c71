"""PyYAML's SafeLoader, hardened: duplicate keys refused, nesting and alias expansion bounded, unreadable scalars
reported with their line. Every YAML Pullthrough reads (the config, the compose and Kubernetes files of warm.sources)
goes through here; never yaml.load.

It sits below both of its readers, pullthrough.config and pullthrough.sources: inside config/, every source reader
imported the whole config package, while the config imports the sources (its `warm.sources` models, and the files
they name for `targets()` and `--check`); that circle is what deferred imports used to hide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["MAX_DEPTH", "YamlProblem", "load_all", "load_single"]


@dataclass(frozen=True)
class YamlProblem(Exception):
    """A document the loader refuses: the line (1-based, None when unknown), its text, and what is wrong."""

    line: int | None
    column: int | None
    text: str
    message: str

    def __str__(self) -> str:
        return self.message


# The real document is five levels deep and needs an alias or two at most (a merge key): these bounds only ever
# stop a broken or hostile document, before it costs a RecursionError or minutes of expanding aliases.
MAX_DEPTH = 32
_CONFIG_DEPTH = "the config needs five at most"
_MAX_ALIAS_NODES = 10_000
_MAX_NUMBER_LENGTH = 100
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "timestamp": "a date (a real day, written YYYY-MM-DD)",
    "binary": "base64 data",
}


class _Refused(yaml.MarkedYAMLError):
    """A document the loader will not build (too deep, recursive, aliases without bound, an unreadable value)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(problem=message, problem_mark=mark)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain YAML silently keeps the last one), bounds nesting and alias
    expansion, and reports an unreadable scalar (`!!int abc`, a 5000-digit number) with its line, not a traceback."""

    def __init__(
        self, stream: str, max_depth: int = MAX_DEPTH, expected: str = "the config needs five at most"
    ) -> None:
        super().__init__(stream)
        self._max_depth = max_depth
        self._expected = expected
        self._open: list[str | None] = []  # anchors of the nodes being composed, outermost first
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, depth) once expanded
        self._expanded = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.NodeEvent = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                self._count_alias(event, node)
            return super().compose_node(parent, index)
        if len(self._open) >= self._max_depth:
            raise _Refused(
                f"nested more than {self._max_depth} levels deep; {self._expected} (check the brackets)",
                event.start_mark,
            )
        self._open.append(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.pop()

    def _count_alias(self, event: yaml.AliasEvent, node: yaml.Node) -> None:
        # PyYAML shares an aliased value, but validation and messages walk every copy: count the copies.
        anchor = event.anchor
        if anchor in self._open:
            raise _Refused(
                f"alias *{anchor} is inside its own anchor &{anchor}: a value cannot contain itself",
                event.start_mark,
            )
        nodes, depth = self._measure(node)
        self._expanded += nodes
        if self._expanded > _MAX_ALIAS_NODES:
            raise _Refused(
                f"aliases expand to more than {_MAX_ALIAS_NODES} values (each alias copies its anchor's whole "
                "value); write the repeated parts out or use fewer aliases",
                event.start_mark,
            )
        if len(self._open) + depth > self._max_depth:
            raise _Refused(
                f"alias *{anchor} nests the document more than {self._max_depth} levels deep once expanded",
                event.start_mark,
            )

    def _measure(self, node: yaml.Node) -> tuple[int, int]:
        """How many nodes `node` stands for once its aliases are expanded, and how deep it goes."""
        known = self._measured.get(id(node))
        if known is not None:
            return known
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        # Children that are aliases were measured when composed, and composition is depth-bounded: no deep recursion.
        sizes = [self._measure(child) for child in children]
        measured = (1 + sum(n for n, _ in sizes), 1 + max((d for _, d in sizes), default=0))
        self._measured[id(node)] = measured
        return measured

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        kind = str(node.tag).rsplit(":", 1)[-1]
        if kind == "int" and isinstance(node, yaml.ScalarNode) and len(node.value) > _MAX_NUMBER_LENGTH:
            # Python refuses to print an integer of more than 4300 digits, and no setting needs more than a few.
            message = f"a number {len(node.value)} characters long; no setting needs more than a few digits"
            raise _Refused(message, node.start_mark)
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            # PyYAML's scalar constructors raise these for text their tag cannot hold (!!int abc, 2024-13-45).
            message = f"cannot read this value as {_KINDS.get(kind, kind)}; write it in quotes to keep it text"
            raise _Refused(message, node.start_mark) from None


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_single(text: str, *, max_depth: int = MAX_DEPTH, expected: str = _CONFIG_DEPTH) -> Any:
    """The one document in `text`; YamlProblem when it cannot be read."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text, max_depth, expected)  # the reader refuses control characters already here
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _problem(exc, text) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_all(text: str, *, max_depth: int = MAX_DEPTH, expected: str = "") -> list[Any]:
    """Every document in a multi-document `text` (`---` between them); YamlProblem when one cannot be read."""
    loader: _Loader | None = None
    documents: list[Any] = []
    try:
        loader = _Loader(text, max_depth, expected or "no manifest needs that many")
        while loader.check_data():  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            documents.append(loader.get_data())
    except yaml.YAMLError as exc:
        raise _problem(exc, text) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def _problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return YamlProblem(None, None, "(unreadable)", f"YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    lines = text.splitlines()
    line = lines[mark.line] if mark and mark.line < len(lines) else ""
    message = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
    message = ("YAML: " if isinstance(exc, _Refused) else "YAML syntax: ") + message
    if isinstance(exc, yaml.scanner.ScannerError | yaml.parser.ParserError):
        message += " (check the indentation, and quote values holding : { } [ ] # or ?)"
    return YamlProblem(mark.line + 1 if mark else None, mark.column + 1 if mark else None, line.strip(), message)
