"""Mutation testing for the modules that hold Pullthrough's promises: `make mutants` (by hand; not part of `make test`).

Each mutant changes one thing in one function of a promise-holding module: a comparison flipped (`==`/`!=`,
`<`/`<=`, `in`/`not in`, `is`/`is not`), `and`/`or` swapped, a `not` dropped, a constant changed (True/False,
a number +-1), `+`/`-` swapped, a condition negated, or a statement that only calls something removed. Logging calls
and docstrings are left alone (a changed log line breaks no promise).

Every mutant runs in a copy of the repository (the work tree is never touched), with the module's own test selection
(fast unit tests first), stopping at the first failure: a failing or hung run kills the mutant, a green one lets it
survive. The report gives, per module, the mutants, killed and surviving, and for each survivor its place and the
line before and after: a survivor that changes a promise needs a test, a harmless one a reason (docs of the run).

    .venv/bin/python tools/mutants.py                      # every module below
    .venv/bin/python tools/mutants.py redaction registry   # some of them
    .venv/bin/python tools/mutants.py --list registry      # the mutants only, nothing run
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib
import marshal
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "layers/pullthrough/pullthrough"


@dataclass(frozen=True)
class Target:
    """A module, the functions of it that hold the promise (empty: all), and the tests that guard them."""

    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()


LEDGER_TESTS = (
    "tests/integration/test_ledger.py",
    "tests/unit/test_warming_unit.py",
    "tests/unit/test_planning.py",
    "tests/unit/test_planning_batches.py",
    "tests/unit/test_warming_batch.py",
)
WARMING_TESTS = (
    "tests/unit/test_warming_unit.py",
    "tests/unit/test_warming_closing.py",
    "tests/unit/test_warming_batch.py",
    "tests/unit/test_importing.py",
)
TARGETS: dict[str, Target] = {
    "redaction": Target(
        f"{LIBRARY}/redaction.py", ("tests/unit/test_redaction.py", "tests/unit/test_credentials_unit.py")
    ),
    # The registry client's promises, one target per module of pullthrough/registry/ that holds some of them.
    "registry": Target(
        f"{LIBRARY}/registry/transport.py",
        (
            "tests/unit/test_registry_unit.py",
            "tests/integration/test_registry_auth.py",
            "tests/integration/test_registry.py",
            "tests/integration/test_registry_tokens.py",
        ),
        ("send", "_retry_answer", "_connection_error", "_wait", "_backoff_for", "backoff_delay"),
    ),
    "registry-failures": Target(
        f"{LIBRARY}/registry/failures.py",
        (
            "tests/unit/test_registry_unit.py",
            "tests/integration/test_registry_auth.py",
            "tests/integration/test_registry.py",
            "tests/integration/test_registry_tokens.py",
        ),
        ("fail", "_refused", "detail", "_messages"),
    ),
    "registry-auth": Target(
        f"{LIBRARY}/registry/auth.py",
        (
            "tests/unit/test_registry_unit.py",
            "tests/integration/test_registry_auth.py",
            "tests/integration/test_registry.py",
            "tests/integration/test_registry_tokens.py",
        ),
        ("_request_token", "_realm_refused", "renew", "__post_init__"),
    ),
    "registry-headers": Target(
        f"{LIBRARY}/registry/headers.py",
        (
            "tests/unit/test_registry_unit.py",
            "tests/integration/test_registry_auth.py",
            "tests/integration/test_registry.py",
            "tests/integration/test_registry_tokens.py",
        ),
        ("parse_retry_after",),
    ),
    # What keeps a token out of config problems: the redaction (config/redaction.py) and the fields it guards.
    "config-secrets": Target(
        f"{LIBRARY}/config/redaction.py",
        ("tests/unit/test_bad_input.py", "tests/unit/test_config.py"),
        ("looks_secret", "hide_tokens", "_hide_in", "_candidates", "redact", "tokens_in", "without_tokens"),
    ),
    "config-fields": Target(
        f"{LIBRARY}/config/fields.py",
        ("tests/unit/test_tag_patterns.py", "tests/unit/test_bad_input.py", "tests/unit/test_config.py"),
        ("secret_name", "tag_pattern"),
    ),
    "tag-patterns": Target(f"{LIBRARY}/tag_patterns.py", ("tests/unit/test_tag_patterns.py",)),
    "credentials-secrets": Target(
        f"{LIBRARY}/credentials/value.py",
        ("tests/unit/test_credentials_unit.py", "tests/integration/test_registry_auth.py"),
        ("parse_value", "refuse_swapped"),
    ),
    "credentials-upstream": Target(
        f"{LIBRARY}/credentials/upstream.py",
        ("tests/unit/test_credentials_unit.py", "tests/integration/test_registry_auth.py"),
        ("check_credentials", "_scrub"),
    ),
    "ownership": Target(
        f"{LIBRARY}/aws/ownership.py",
        (
            "tests/integration/test_ownership.py",
            "tests/unit/test_rules.py",
            "tests/integration/test_reconcile_rules.py",
        ),
    ),
    # rules/: the one generic diff (what Pullthrough may change: only what it owns), apply (writes, records,
    # forgets, settles a race once), the ownership records (never forgotten in a dry run), and the dry run itself.
    "rules": Target(
        f"{LIBRARY}/rules/apply.py",
        ("tests/unit/test_rules.py", "tests/integration/test_reconcile_rules.py"),
        ("apply", "_apply", "_without_writing", "_write", "_settle", "_look_again", "_left_alone"),
    ),
    "rules-diff": Target(
        f"{LIBRARY}/rules/diff.py",
        ("tests/unit/test_rules.py", "tests/integration/test_reconcile_rules.py"),
        ("plan_rule", "plan_template", "decide", "_differing", "compare_rules", "compare_templates"),
    ),
    # The ownership promise of rules/ alone: records read, written, forgotten (never in a dry run), the race check.
    "rules-ownership": Target(
        f"{LIBRARY}/rules/records.py",
        ("tests/unit/test_rules.py", "tests/integration/test_reconcile_rules.py"),
    ),
    "rules-run": Target(
        f"{LIBRARY}/rules/reconcile.py",
        ("tests/unit/test_rules.py", "tests/integration/test_reconcile_rules.py"),
        ("dry_run",),
    ),
    # The ledger: one adapter per kind of item (aws/ledger/), each held to the same tests.
    "ledger": Target(f"{LIBRARY}/aws/ledger/jobs.py", LEDGER_TESTS),
    "ledger-runs": Target(f"{LIBRARY}/aws/ledger/runs.py", LEDGER_TESTS),
    "ledger-items": Target(f"{LIBRARY}/aws/ledger/items.py", LEDGER_TESTS),
    "ledger-table": Target(f"{LIBRARY}/aws/ledger/table.py", LEDGER_TESTS),
    "ledger-memory": Target(f"{LIBRARY}/aws/ledger/verified.py", LEDGER_TESTS),
    "ledger-allowances": Target(f"{LIBRARY}/aws/ledger/allowances.py", LEDGER_TESTS),
    "rotation": Target(
        f"{LIBRARY}/credentials/rotation/steps.py",
        ("tests/unit/test_rotation_unit.py", "tests/integration/test_rotation.py"),
    ),
    "rotation-staged": Target(
        f"{LIBRARY}/credentials/rotation/staged.py",
        ("tests/unit/test_rotation_unit.py", "tests/integration/test_rotation.py"),
    ),
    # The warm side: the import through ECR, the worker's outcomes and run closing, the budget runs share.
    "importing": Target(
        f"{LIBRARY}/warm/importing.py", ("tests/unit/test_importing.py", "tests/unit/test_warming_unit.py")
    ),
    "warming": Target(
        f"{LIBRARY}/warm/worker.py",
        WARMING_TESTS,
        ("finish_run", "_warm_and_record", "_warming", "look_again", "process"),
    ),
    "warmer": Target(f"{LIBRARY}/warm/warmer.py", WARMING_TESTS, ("warm_image",)),
    "warming-results": Target(
        f"{LIBRARY}/warm/results.py",
        WARMING_TESTS,
        ("outcome_of", "_landed", "_incomplete", "last_delivery", "verified_of"),
    ),
    "warming-refusals": Target(
        f"{LIBRARY}/warm/refusals.py", WARMING_TESTS, ("explain", "aws_refusal", "trigger_refusal", "ecr_says")
    ),
    "warm-run": Target(f"{LIBRARY}/warm/run.py", WARMING_TESTS, ("close", "record", "run_report", "_item_of")),
    "budget": Target(
        f"{LIBRARY}/warm/budget.py",
        ("tests/unit/test_budget.py", "tests/unit/test_planning.py", "tests/integration/test_ledger.py"),
    ),
    # Planning's promises, where they live since the split: fitting jobs into the budget (fitting.py), the runs
    # open at once (overlap.py), what an import costs upstream (cost.py), the first look at ECR (decisions.py).
    "planning-budget": Target(
        f"{LIBRARY}/warm/fitting.py",
        ("tests/unit/test_planning.py", "tests/unit/test_budget.py", "tests/unit/test_planning_memory.py"),
        ("draw", "fit", "_deferral", "_sharing_notes"),
    ),
    "planning-overlap": Target(
        f"{LIBRARY}/warm/overlap.py",
        ("tests/unit/test_planning.py", "tests/unit/test_budget.py", "tests/unit/test_planning_memory.py"),
        ("leave_in_flight", "in_flight_notes"),
    ),
    "planning-cost": Target(
        f"{LIBRARY}/warm/cost.py",
        ("tests/unit/test_planning.py", "tests/unit/test_budget.py", "tests/unit/test_planning_memory.py"),
    ),
    "planning-decisions": Target(
        f"{LIBRARY}/warm/decisions.py",
        ("tests/unit/test_planning.py", "tests/unit/test_budget.py", "tests/unit/test_planning_memory.py"),
        ("_first_look", "_held", "_absent"),
    ),
}
DEFAULT = (
    "redaction",
    "registry",
    "registry-failures",
    "registry-auth",
    "registry-headers",
    "config-secrets",
    "config-fields",
    "tag-patterns",
    "credentials-secrets",
    "credentials-upstream",
    "ownership",
    "rules",
    "rules-diff",
    "rules-ownership",
    "rules-run",
    "ledger",
    "ledger-runs",
    "ledger-items",
    "ledger-table",
    "ledger-memory",
    "ledger-allowances",
    "rotation",
    "rotation-staged",
    "importing",
    "warming",
    "warmer",
    "warming-results",
    "warming-refusals",
    "warm-run",
    "budget",
    "planning-budget",
    "planning-overlap",
    "planning-cost",
    "planning-decisions",
)


@dataclass(frozen=True)
class Mutant:
    """One change: where, what the line was, and what it becomes."""

    module: str
    function: str
    line: int
    start: int  # offsets into the module's source
    end: int
    replacement: str
    before: str
    after: str

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]

    def where(self, path: str) -> str:
        return f"{path}:{self.line} ({self.function})"


# --- finding mutants ------------------------------------------------------------------------------------------------

_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _LOG_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ("logger", "log", "logging")
    )


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str, module: str, functions: tuple[str, ...]) -> None:
        self.source = source
        self.module = module
        self.functions = functions
        self.offsets = [0]
        for line in source.splitlines(keepends=True):
            self.offsets.append(self.offsets[-1] + len(line))
        self.stack: list[str] = []
        self.found: list[Mutant] = []

    # where we are
    def _inside(self) -> bool:
        return bool(self.stack) and (not self.functions or any(name in self.functions for name in self.stack))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        # Annotations are not evaluated (from __future__ import annotations) and docstrings promise nothing.
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        for statement in body:
            self.visit(statement)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stack.append(node.name)
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.visit(statement)
        self.stack.pop()

    def visit_Call(self, node: ast.Call) -> None:
        if _is_log_call(node):
            return  # a log line is no promise
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # message texts: changing them breaks no promise worth a mutant each

    # mutations
    def visit_Compare(self, node: ast.Compare) -> None:
        if self._inside():
            for index, op in enumerate(node.ops):
                flipped = _FLIPS.get(type(op))
                if flipped is not None:
                    mutated = copy.deepcopy(node)
                    mutated.ops[index] = flipped()
                    self._replace(node, ast.unparse(mutated))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        if self._inside():
            mutated = copy.deepcopy(node)
            mutated.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            self._replace(node, ast.unparse(mutated))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if self._inside() and isinstance(node.op, ast.Not):
            self._replace(node, f"({ast.unparse(node.operand)})")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swaps: dict[type[ast.operator], ast.operator] = {ast.Add: ast.Sub(), ast.Sub: ast.Add()}
        if self._inside() and type(node.op) in swaps and not _is_text(node):
            mutated = copy.deepcopy(node)
            mutated.op = swaps[type(node.op)]
            self._replace(node, ast.unparse(mutated))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not self._inside():
            return
        if node.value is True or node.value is False:
            self._replace(node, repr(not node.value))
        elif isinstance(node.value, int) and not isinstance(node.value, bool):
            self._replace(node, repr(node.value + 1))
            if node.value != 0:
                self._replace(node, repr(node.value - 1))

    def visit_If(self, node: ast.If) -> None:
        if self._inside() and not isinstance(node.test, ast.Compare | ast.BoolOp | ast.UnaryOp):
            self._replace(node.test, f"not ({ast.unparse(node.test)})")
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if self._inside() and isinstance(node.value, ast.Call) and not _is_log_call(node.value):
            self._replace(node, "pass")
        self.generic_visit(node)

    def _replace(self, node: ast.AST, replacement: str) -> None:
        start = self.offsets[node.lineno - 1] + _byte_to_char(self.source, node.lineno, node.col_offset)
        end_line = node.end_lineno or node.lineno
        end = self.offsets[end_line - 1] + _byte_to_char(self.source, end_line, node.end_col_offset or 0)
        if "\n" in replacement:
            return
        line_start = self.offsets[node.lineno - 1]
        line_end = self.source.find("\n", end)
        before = self.source[line_start : line_end if line_end != -1 else len(self.source)]
        after_text = self.source[:start] + replacement + self.source[end:]
        after = after_text[line_start : after_text.find("\n", start + len(replacement))]
        self.found.append(
            Mutant(self.module, ".".join(self.stack), node.lineno, start, end, replacement, before, after)
        )


def _is_text(node: ast.BinOp) -> bool:
    return any(
        isinstance(side, ast.JoinedStr) or (isinstance(side, ast.Constant) and isinstance(side.value, str))
        for side in (node.left, node.right)
    )


def _byte_to_char(source: str, line: int, column: int) -> int:
    text = source.splitlines(keepends=True)[line - 1]
    return len(text.encode()[:column].decode(errors="ignore"))


def mutants_of(name: str, target: Target) -> list[Mutant]:
    source = (ROOT / target.path).read_text(encoding="utf-8")
    finder = _Finder(source, name, target.functions)
    finder.visit(ast.parse(source))
    unique: dict[tuple[int, int, str], Mutant] = {}
    for mutant in finder.found:
        unique.setdefault((mutant.start, mutant.end, mutant.replacement), mutant)
    return sorted(unique.values(), key=lambda m: (m.start, m.replacement))


# --- running them ---------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # killed | survived | timeout
    seconds: float


@dataclass
class Summary:
    name: str
    target: Target
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.verdict == verdict)


def _copy_repository(into: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            destination = into / name.decode()
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _pytest(workdir: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float]:
    environment = {
        **os.environ,
        # The copy's library first, ahead of the editable install of the work tree's.
        "PYTHONPATH": f"{workdir / 'layers/pullthrough'}{os.pathsep}{workdir}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "CI": "false",
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-o", "log_level=WARNING", *tests]
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, cwd=workdir, env=environment, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    return ("survived" if result.returncode == 0 else "killed"), time.monotonic() - started


# --- in-process runs: fork a warmed-up process, swap the mutated functions' code, run pytest in the child ----------
#
# Starting pytest in a fresh interpreter costs seconds of imports (boto3, moto, Powertools, pydantic) per mutant.
# Here the parent imports all of that once; each mutant runs in a forked child that replaces the `__code__` of the
# functions the mutation changed (so every reference to them, imported by name or not, runs the mutant) and calls
# pytest.main. A mutant whose functions cannot be swapped that way runs in a copy of the repository instead. Tests
# that start another Python (the CLI, the canary's own runs) see the files on disk, unmutated: they cannot kill.


_UNSWAPPABLE, _CHILD_ERROR = 97, 98
ERRORS = Path(tempfile.gettempdir()) / "pullthrough-mutants-errors.log"


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield constant
            yield from _code_objects(constant)


def _functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    """The module's functions and methods by qualified name (through lru_cache, property, static/classmethod)."""
    found: dict[str, types.FunctionType] = {}
    pending: list[object] = list(vars(module).values())
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, property):
            pending += [item.fget, item.fset, item.fdel]
        elif isinstance(item, staticmethod | classmethod):
            pending.append(item.__func__)
        elif isinstance(item, types.FunctionType):
            if item.__module__ == module.__name__:
                found[item.__qualname__] = item
        elif hasattr(item, "__wrapped__"):
            pending.append(item.__wrapped__)
        elif isinstance(item, type) and item.__module__ == module.__name__:
            pending += [*vars(item).values(), *_validators(item)]
    return found


def _validators(cls: type) -> list[object]:
    """The functions pydantic keeps for a model's validators and serializers (not in the class's own namespace)."""
    decorators = getattr(cls, "__pydantic_decorators__", None)
    found: list[object] = []
    for group_name in dir(decorators) if decorators is not None else ():
        group = getattr(decorators, group_name, None)
        if not group_name.startswith("_") and isinstance(group, dict):
            found += [getattr(info, "func", None) for info in group.values()]
    return found


def _swap(module: types.ModuleType, original: str, source: str, path: str) -> bool:
    """Give each function of `module` whose code the mutated `source` changes its new code; False if one cannot."""
    new = {code.co_qualname: code for code in _code_objects(compile(source, path, "exec"))}
    old = {code.co_qualname: code for code in _code_objects(compile(original, path, "exec"))}
    functions = _functions(module)
    changed = [name for name, code in new.items() if name in old and marshal.dumps(code) != marshal.dumps(old[name])]
    # A class body's code holds its methods' code: it differs when a method does, and is no function to swap.
    changed = [name for name in changed if name in functions or not any(o.startswith(name + ".") for o in changed)]
    if not changed or any(name not in functions and "<locals>" not in name for name in changed):
        return False
    try:
        for name in changed:
            if "<locals>" not in name:  # a nested function comes with its outer function's new code
                functions[name].__code__ = new[name]
    except ValueError:  # free variables differ: the closure cannot take the new code
        return False
    return True


def _module_name(path: str) -> str:
    return path.removeprefix("layers/pullthrough/").removesuffix(".py").replace("/", ".")


def _forked_pytest(target: Target, original: str, source: str | None, timeout: float) -> tuple[str, float]:
    """Run the target's tests in a forked child, with `source` (a mutant of the module) swapped in; None: as is."""
    module = importlib.import_module(_module_name(target.path))
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so a hung run is ended with whatever it started
        code = _CHILD_ERROR
        try:
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            if source is not None and not _swap(module, original, source, str(ROOT / target.path)):
                code = _UNSWAPPABLE
            else:
                import pytest

                code = int(pytest.main(["-x", "-q", "-p", "no:xdist", "-o", "log_level=WARNING", *target.tests]))
        except BaseException:
            with open(ERRORS, "a", encoding="utf-8") as log:
                log.write(traceback.format_exc())
        finally:
            os._exit(code)
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - started
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    if code in (_UNSWAPPABLE, _CHILD_ERROR):
        return ("unswappable" if code == _UNSWAPPABLE else "error"), time.monotonic() - started
    return ("survived" if code == 0 else "killed"), time.monotonic() - started


def _warm_up() -> None:
    """Import once, in the parent, what every child would otherwise import again."""
    import boto3  # noqa: F401
    import moto  # noqa: F401
    import pytest  # noqa: F401
    import yaml  # noqa: F401

    sys.path[:0] = [str(ROOT)]
    for name in (
        "pullthrough.config",
        "pullthrough.credentials",
        "pullthrough.rules",
        "pullthrough.warm.worker",
        "pullthrough.credentials.rotation",
        "pullthrough.cli",
        "tests.canary",
        "sandbox",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def run_module_forked(name: str, target: Target) -> Summary:
    summary = Summary(name, target)
    mutants = mutants_of(name, target)
    original = (ROOT / target.path).read_text(encoding="utf-8")
    verdict, clean = _forked_pytest(target, original, None, timeout=1800)
    if verdict != "survived":
        print(f"{name}: the tests fail without any mutant ({verdict}); fix them first", flush=True)
        return summary
    timeout = clean * 3 + 30
    print(f"{name}: {len(mutants)} mutants; the tests take {clean:.0f}s unmutated", flush=True)
    for mutant in mutants:
        verdict, seconds = _forked_pytest(target, original, mutant.apply(original), timeout)
        if verdict == "unswappable":
            verdict, seconds = _isolated(target, mutant, original, timeout)
        print({"killed": ".", "survived": "S", "timeout": "T", "error": "E"}[verdict], end="", flush=True)
        summary.outcomes.append(Outcome(mutant, verdict, seconds))
    print(flush=True)
    return summary


def _isolated(target: Target, mutant: Mutant, original: str, timeout: float) -> tuple[str, float]:
    """One mutant in a copy of the repository, in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as base:
        workdir = Path(base)
        _copy_repository(workdir)
        (workdir / target.path).write_text(mutant.apply(original), encoding="utf-8")
        return _pytest(workdir, target.tests, timeout)


def run_module(name: str, target: Target, jobs: int) -> Summary:
    summary = Summary(name, target)
    mutants = mutants_of(name, target)
    with tempfile.TemporaryDirectory(prefix=f"mutants-{name}-") as base:
        workdirs = []
        for index in range(max(1, jobs)):
            workdir = Path(base) / f"copy{index}"
            _copy_repository(workdir)
            workdirs.append(workdir)
        verdict, clean = _pytest(workdirs[0], target.tests, timeout=1800)
        if verdict != "survived":
            print(f"{name}: the tests fail without any mutant ({verdict}); fix them first", flush=True)
            return summary
        timeout = clean * 3 + 30
        print(f"{name}: {len(mutants)} mutants; the tests take {clean:.0f}s unmutated", flush=True)
        original = (ROOT / target.path).read_text(encoding="utf-8")

        def one(index_and_mutant: tuple[int, Mutant]) -> Outcome:
            index, mutant = index_and_mutant
            workdir = workdirs[index % len(workdirs)]
            path = workdir / target.path
            path.write_text(mutant.apply(original), encoding="utf-8")
            try:
                verdict, seconds = _pytest(workdir, target.tests, timeout)
            finally:
                path.write_text(original, encoding="utf-8")
            mark = {"killed": ".", "survived": "S", "timeout": "T"}[verdict]
            print(mark, end="", flush=True)
            return Outcome(mutant, verdict, seconds)

        # One mutant per copy at a time: each copy's module is mutated in place.
        chunks = [list(enumerate(mutants))[i :: len(workdirs)] for i in range(len(workdirs))]
        with ThreadPoolExecutor(max_workers=len(workdirs)) as pool:
            for outcomes in pool.map(lambda chunk: [one(item) for item in chunk], chunks):
                summary.outcomes.extend(outcomes)
        print(flush=True)
    summary.outcomes.sort(key=lambda outcome: (outcome.mutant.start, outcome.mutant.replacement))
    return summary


def report(summaries: list[Summary]) -> str:
    lines = ["", "module                 mutants  killed  timeout  survived  error"]
    for summary in summaries:
        lines.append(
            f"{summary.name:<22} {len(summary.outcomes):>7} {summary.count('killed'):>7} "
            f"{summary.count('timeout'):>8} {summary.count('survived'):>9} {summary.count('error'):>6}"
        )
    if any(summary.count("error") for summary in summaries):
        lines.append(f"(error: the run itself broke, not a test: see {ERRORS})")
    for summary in summaries:
        survivors = [outcome.mutant for outcome in summary.outcomes if outcome.verdict == "survived"]
        if survivors:
            lines += ["", f"survivors in {summary.target.path}:"]
            for mutant in survivors:
                lines += [
                    f"  {mutant.where(summary.target.path)}",
                    f"    - {mutant.before.strip()}",
                    f"    + {mutant.after.strip()}",
                ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"of {', '.join(TARGETS)} (default: {' '.join(DEFAULT)})")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--jobs", type=int, default=1, help="with --isolated: mutants run at once (a copy each)")
    parser.add_argument(
        "--isolated",
        action="store_true",
        help="every mutant in a copy of the repository and a fresh interpreter (slow)",
    )
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # pytest finds pyproject.toml, conftest.py and the test paths from here
    names = args.modules or list(DEFAULT)
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.list:
        for name in names:
            for mutant in mutants_of(name, TARGETS[name]):
                print(f"{mutant.where(TARGETS[name].path)}: {mutant.before.strip()}  ->  {mutant.after.strip()}")
        return 0
    summaries = []
    forked = not args.isolated and hasattr(os, "fork")
    if forked:
        _warm_up()
    for name in names:
        if forked:
            summaries.append(run_module_forked(name, TARGETS[name]))
        else:
            summaries.append(run_module(name, TARGETS[name], args.jobs))
        print(report(summaries[-1:]), flush=True)  # each module's as soon as it is done; the table again at the end
    print(report(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
