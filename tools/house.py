"""The house rules of docs/ARCHITECTURE.md, checked: sizes, handler shape, deferred imports, one publish, no copies.

    .venv/bin/python tools/house.py            # every rule; exit 1 with one line per breach
    .venv/bin/python tools/house.py --report   # also the largest modules, classes and functions, for a reader

Run by `make test` (target `house`). Each rule is a reason, not a taste:
- sizes: a library module of at most 450 lines, a class of at most 250, a function of at most 60, so a reader can
  hold one in mind (complexity and argument counts are ruff's C90 and PLR09, in pyproject.toml);
- handlers: functions/*/app.py at most 25 lines, their handler one line, `<feature>.handle(event, context,
  <Function>Env.from_env())`, and every library `handle(event, context, env)` in that order;
- deferred imports (an import inside a function): at most 5, each in an entry module, each with its measured
  reason beside it (ENTRY_MODULES below);
- the warm run's ledger records are read and written only by pullthrough/warm/ (and the adapter itself); the
  organisation's cycle records (aws/ledger/cycles.py) only by pullthrough/org/;
- one call site publishes to SNS (pullthrough/reporting/publish.py);
- no block of 6 or more lines is the same in sandbox/ and tests/ (tests reuse the sandbox's parts).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "layers" / "pullthrough" / "pullthrough"
FUNCTIONS = ROOT / "functions"

MODULE_LINES, CLASS_LINES, FUNCTION_LINES, HANDLER_LINES = 450, 250, 60, 25
MAX_DEFERRED = 5
# Where a deferred import may stand (paths relative to the repository). Each deferral says why beside it.
ENTRY_MODULES = frozenset(
    {
        "layers/pullthrough/pullthrough/aws/clients.py",  # the one gate to boto3 (bench/README.md, cold start)
        "layers/pullthrough/pullthrough/cli/__main__.py",  # a command imports its own family only
    }
) | {f"functions/{p.parent.name}/app.py" for p in FUNCTIONS.glob("*/app.py")}
LEDGER_MODULES = ("pullthrough.aws.ledger",)
LEDGER_OWNERS = ("layers/pullthrough/pullthrough/warm/", "layers/pullthrough/pullthrough/aws/")
# The hub's cycles share the table, not the warm runs' records: their adapter, and whom it belongs to.
CYCLE_MODULE = "pullthrough.aws.ledger.cycles"
CYCLE_OWNERS = ("layers/pullthrough/pullthrough/org/", "layers/pullthrough/pullthrough/aws/")
PUBLISH_OWNER = "layers/pullthrough/pullthrough/reporting/publish.py"
REPEAT_LINES = 6


def python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def span(node: ast.AST) -> int:
    return int(getattr(node, "end_lineno", 0)) - int(getattr(node, "lineno", 0)) + 1


def sizes() -> Iterator[str]:
    for path in python_files(LIBRARY):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MODULE_LINES:
            yield f"{rel(path)}: {lines} lines (a module holds at most {MODULE_LINES}; split it by concern)"
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef) and span(node) > CLASS_LINES:
                yield f"{rel(path)}:{node.lineno}: class {node.name} is {span(node)} lines (at most {CLASS_LINES})"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and span(node) > FUNCTION_LINES:
                yield f"{rel(path)}:{node.lineno}: {node.name}() is {span(node)} lines (at most {FUNCTION_LINES})"


def _is_handle_call(node: ast.AST) -> bool:
    """`<module>.handle(event, context, <Env>.from_env())`."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "handle"):
        return False
    args = node.args
    return (
        len(args) == 3
        and not node.keywords
        and [getattr(a, "id", None) for a in args[:2]] == ["event", "context"]
        and isinstance(args[2], ast.Call)
        and isinstance(args[2].func, ast.Attribute)
        and args[2].func.attr == "from_env"
    )


def handlers() -> Iterator[str]:
    for path in sorted(FUNCTIONS.glob("*/app.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > HANDLER_LINES:
            yield f"{rel(path)}: {lines} lines (a handler file holds at most {HANDLER_LINES})"
        found = [n for n in parse(path).body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
        body = found[0].body if found else []
        if len(body) != 1 or not isinstance(body[0], ast.Return) or not _is_handle_call(body[0].value):
            yield f"{rel(path)}: lambda_handler must be `return <feature>.handle(event, context, <Env>.from_env())`"
    for path in python_files(LIBRARY):
        for node in parse(path).body:
            if isinstance(node, ast.FunctionDef) and node.name == "handle":
                names = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
                if names != ["event", "context", "env"]:
                    yield f"{rel(path)}:{node.lineno}: handle({', '.join(names)}): one signature, (event, context, env)"


def deferred_imports() -> Iterator[str]:
    found: list[str] = []
    for path in python_files(LIBRARY, FUNCTIONS):
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        where = f"{rel(path)}:{inner.lineno}"
                        found.append(where)
                        if rel(path) not in ENTRY_MODULES:
                            yield f"{where}: an import inside a function outside the entry modules (tools/house.py)"
    if len(set(found)) > MAX_DEFERRED:
        yield f"{len(set(found))} deferred imports (at most {MAX_DEFERRED}): {', '.join(sorted(set(found)))}"


def _imports(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def ledger_records() -> Iterator[str]:
    for path in python_files(LIBRARY):
        if rel(path).startswith(LEDGER_OWNERS):
            continue
        for name in _imports(parse(path)):
            if name.startswith(CYCLE_MODULE):
                if not rel(path).startswith(CYCLE_OWNERS):
                    yield f"{rel(path)}: imports {name}; only pullthrough/org/ reads or writes the hub's cycles"
                    break
                continue
            org_reaching = name.startswith(LEDGER_MODULES[0] + ".") and rel(path).startswith(CYCLE_OWNERS)
            if name in LEDGER_MODULES or org_reaching:
                yield f"{rel(path)}: imports {name}; only pullthrough/warm/ reads or writes the warm run's records"
                break


def publishes() -> Iterator[str]:
    sites = []
    for path in python_files(LIBRARY):
        if rel(path).startswith("layers/pullthrough/pullthrough/aws/"):
            continue  # the adapter's own client call
        for node in ast.walk(parse(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "publish"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "sns"
            ):
                sites.append(f"{rel(path)}:{node.lineno}")
    if len(sites) != 1 or not sites[0].startswith(PUBLISH_OWNER):
        yield f"sns.publish is called at {sites or 'no place'}: one call site, in {PUBLISH_OWNER}"


def _windows(path: Path) -> Iterator[tuple[tuple[str, ...], int]]:
    lines = [(n, line.strip()) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
    code = [(n, text) for n, text in lines if text and not text.startswith(("#", '"""', "from ", "import "))]
    for i in range(len(code) - REPEAT_LINES + 1):
        window = tuple(text for _, text in code[i : i + REPEAT_LINES])
        if sum(len(text) > 3 for text in window) == REPEAT_LINES:  # six lines of code, not six closing brackets
            yield window, code[i][0]


def repeats() -> Iterator[str]:
    sandbox: dict[tuple[str, ...], str] = {}
    for path in python_files(ROOT / "sandbox"):
        for window, line in _windows(path):
            sandbox.setdefault(window, f"{rel(path)}:{line}")
    seen: dict[str, set[str]] = defaultdict(set)
    for path in python_files(ROOT / "tests"):
        for window, line in _windows(path):
            if window in sandbox and sandbox[window] not in seen[rel(path)]:
                seen[rel(path)].add(sandbox[window])
                yield f"{rel(path)}:{line} repeats {sandbox[window]} ({REPEAT_LINES}+ lines): reuse the sandbox's"


RULES = {
    "sizes": sizes,
    "handlers": handlers,
    "deferred imports": deferred_imports,
    "ledger records": ledger_records,
    "publish": publishes,
    "repeats": repeats,
}


def largest(n: int = 8) -> list[str]:
    rows = []
    for path in python_files(LIBRARY):
        rows.append((len(path.read_text(encoding="utf-8").splitlines()), f"module {rel(path)}"))
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                rows.append((span(node), f"{kind} {rel(path)}:{node.lineno} {node.name}"))
    return [f"{lines:5d}  {what}" for lines, what in sorted(rows, reverse=True)[:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="also print the largest modules, classes, functions")
    parser.add_argument("rules", nargs="*", choices=[[], *RULES], help="some rules only (default: all)")
    args = parser.parse_args(argv)
    breaches = [line for name, rule in RULES.items() if not args.rules or name in args.rules for line in rule()]
    for line in breaches:
        print(line)
    if args.report:
        print("\n".join(["largest:", *largest()]))
    print(f"house rules: {len(breaches)} breach(es)" if breaches else "house rules: kept", file=sys.stderr)
    return 1 if breaches else 0


if __name__ == "__main__":
    raise SystemExit(main())
