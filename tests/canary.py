"""Secrets canary: a token that must never come out of Pullthrough, and a guard that fails the test run if it does.

Tests put `CANARY_TOKEN` (or a fresh `canary_token()`) into every credential they create; `canary_secret(...)`
creates an `ecr-pullthroughcache/` secret holding one in moto. The guard, a pytest plugin registered from
tests/conftest.py, watches everything a secret could leak into during the whole run:

- every log record that reaches the root logger, with every logger a secret could reach at DEBUG for the whole
  run (`DEBUG_LOGGERS`: botocore's and urllib3's wire logs, Powertools with POWERTOOLS_LOG_LEVEL=DEBUG, the
  library), and what Pullthrough's Powertools logger is asked to log at DEBUG even when its level drops it;
- every test's captured stdout, stderr and log sections; a failure text is masked, and blamed only when the test
  would otherwise not fail (an xfail), since a traceback quotes the test's own source and its values;
- the text of every `PullthroughError` created, caught or not;
- every report rendered for SNS (`Report.message`, `Report.to_json`), and every message published to SNS, sent to
  SQS or put on EventBridge in moto.

What it looks for: the canary marker (any case, so a lower-cased token is caught too), plus every secret value a
test stored in moto's Secrets Manager (accessToken / password fields), every token the `sandbox` fixture's upstream
accepts, and anything passed to `watch()`; each in every form it travels in (`forms`: as written, URL-encoded, and
base64 at the three alignments, so inside `Basic base64(user:token)` too).

A leak fails the test during which it happened (setup, call or teardown), with the secret masked in every section
of the report. A leak outside any test (at collection) fails the session. Under pytest-xdist each worker guards its
own tests, its reports reach the controller already failed and masked, and leaks outside tests travel to the
controller in `workeroutput`.

Never put the marker in a secret's name, a test id or a parameter id: names are not secret, and the guard would say
they leaked.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

__all__ = [
    "CANARY_MARKER",
    "CANARY_TOKEN",
    "CANARY_USER",
    "CanarySecret",
    "Guard",
    "Leak",
    "canary_secret",
    "canary_token",
    "session_guard",
    "watch",
    "watch_credentials",
]

# Split in two so that a traceback quoting this line does not itself look like a leak.
CANARY_MARKER = "canary" + "Q7xZ"
# A Docker Hub personal access token's shape (dckr_pat_ and URL-safe characters), so validators accept it.
CANARY_TOKEN = f"dckr_pat_{CANARY_MARKER}-fixed-never-logged-0"
CANARY_USER = "canary-bot"

# Values shorter than this are not watched: they would match ordinary words.
_MIN_WATCHED = 12
# Encoded forms shorter than this are not looked for (the marker's base64 at an alignment is about 12 characters).
_MIN_FORM = 8
# JSON fields of a secret value that hold the secret part (ECR reads username / accessToken; admin secrets hold
# username / password).
_SECRET_FIELDS = ("accessToken", "password", "token", "access_token")
_EXCERPT = 32
# What a token, its base64 and its URL encoding are made of: a marker found inside is widened over these.
_TOKEN_CHAR = re.compile(r"[\w\-+/=%]")
_MASK = "<secret>"

# Values registered for the whole session, whichever Guard is active (the module outlives the plugin's configure).
_WATCHED: set[str] = set()


def forms(value: str) -> set[str]:
    """`value` as written, URL-encoded, and the part of its base64 that survives any embedding (three alignments,
    standard and URL-safe alphabets): inside `Basic base64(user:token)` a token shows only in that form.

    Written here, not imported from pullthrough.redaction: the guard must not share a blind spot with what it checks.
    """
    found = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value, safe="")}
    raw = value.encode()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw).decode()
        # Base64 characters whose 6 bits all come from the value: the same whatever surrounds it.
        stable = encoded[(8 * shift + 5) // 6 : 8 * (shift + len(raw)) // 6]
        found |= {stable, stable.replace("+", "-").replace("/", "_")}
    return {form for form in found if len(form) >= _MIN_FORM}


def canary_token(label: str = "") -> str:
    """A fresh Docker Hub-shaped token that carries the canary marker; `label` helps tell tokens apart."""
    tag = re.sub(r"[^A-Za-z0-9]", "", label)[:16]
    return f"dckr_pat_{CANARY_MARKER}{tag}-{secrets.token_urlsafe(12)}"


def watch(*values: str) -> None:
    """Make the guard look for `values` too (e.g. a token created outside moto and without the marker)."""
    for value in values:
        if isinstance(value, str) and len(value) >= _MIN_WATCHED:
            _WATCHED.add(value)


def watch_credentials(username: str, token: str) -> None:
    """Watch a token and the HTTP Basic form of the username / token pair (an Authorization header)."""
    watch(token, base64.b64encode(f"{username}:{token}".encode()).decode())


@dataclass(frozen=True)
class CanarySecret:
    """A credentials secret created in moto whose token is a canary."""

    name: str
    arn: str
    username: str
    token: str

    def value(self) -> dict[str, str]:
        """The secret's JSON value as ECR reads it."""
        return {"username": self.username, "accessToken": self.token}


def canary_secret(
    client: Any,
    name: str = "ecr-pullthroughcache/canary",
    *,
    username: str = CANARY_USER,
    token: str | None = None,
    **create_kwargs: Any,
) -> CanarySecret:
    """Create `name` through a (moto) Secrets Manager client with a canary token; returns its identity and value."""
    token = token or canary_token(name.rsplit("/", 1)[-1])
    watch_credentials(username, token)
    value = json.dumps({"username": username, "accessToken": token})
    arn: str = client.create_secret(Name=name, SecretString=value, **create_kwargs)["ARN"]
    return CanarySecret(name=name, arn=arn, username=username, token=token)


# --- the guard -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    """A secret seen where it must never be: during which test, in what, and the text around it (masked)."""

    test: str
    source: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.test}: canary leaked into {self.source}: ...{self.excerpt}..."


@dataclass
class Guard:
    """Finds watched secrets in text and records where they leaked; `scan` is called by the taps."""

    watched: set[str] = field(default_factory=lambda: _WATCHED)
    marker: str = CANARY_MARKER
    sources: list[Callable[[], Iterable[str]]] = field(default_factory=list)
    current: str = "<outside any test>"
    leaks: list[Leak] = field(default_factory=list)
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)
    _pattern_for: frozenset[str] = field(default_factory=frozenset, repr=False)
    _marker_forms: set[str] = field(default_factory=set, repr=False)
    _heads: frozenset[str] = field(default_factory=frozenset, repr=False)

    def pattern(self) -> re.Pattern[str]:
        """One case-insensitive pattern for every form of the marker and of every watched value.

        Literal alternatives only: `re` then skips ahead to the characters they can start with, so a scan costs
        little per record even with every logger at DEBUG (a pattern starting with a character class would try
        every position, and quadratically so inside long words).
        """
        for source in self.sources:
            # Callers that keep their own secrets (the sandbox's users) are read again at every scan.
            for value in source():
                if isinstance(value, str) and len(value) >= _MIN_WATCHED:
                    self.watched.add(value)
        values = frozenset(self.watched)
        if self._pattern is None or values != self._pattern_for:
            found = forms(self.marker) | {form for value in values for form in forms(value)}
            alternatives = [re.escape(form) for form in sorted(found, key=len, reverse=True)]
            self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)
            self._pattern_for = values
            self._marker_forms = {form.lower() for form in forms(self.marker)}
            self._heads = frozenset(form[:_MIN_FORM].lower() for form in found)
        return self._pattern

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where secrets are in `text`: a marker form is widened to the whole token around it."""
        pattern = self.pattern()
        lower = text.lower()
        # Every form is at least _MIN_FORM characters: a text none of whose windows of that length begins a form is
        # clean, and telling so costs one set per record (the pattern alone would try every form at every position).
        if len(lower) == len(text) and self._heads.isdisjoint(
            lower[at : at + _MIN_FORM] for at in range(len(lower) - _MIN_FORM + 1)
        ):
            return []
        found: list[tuple[int, int]] = []
        for match in pattern.finditer(text):
            start, end = match.span()
            if match.group().lower() in self._marker_forms:
                while start > 0 and _TOKEN_CHAR.match(text, start - 1):
                    start -= 1
                while end < len(text) and _TOKEN_CHAR.match(text, end):
                    end += 1
            if found and start <= found[-1][1]:
                found[-1] = (found[-1][0], max(end, found[-1][1]))
            else:
                found.append((start, end))
        return found

    def mask(self, text: str) -> str:
        """`text` with every watched secret replaced by <secret>."""
        return self._masked(text)[0]

    def find(self, text: str) -> list[str]:
        """Masked excerpts around each secret found in `text` (empty when it is clean)."""
        # Mask first, then cut: a window cut from the raw text could keep part of a token the mask no longer finds.
        masked, spots = self._masked(text)
        return [" ".join(masked[max(at - _EXCERPT, 0) : at + len(_MASK) + _EXCERPT].split()) for at in spots]

    def _masked(self, text: str) -> tuple[str, list[int]]:
        pieces, spots, end, length = [], [], 0, 0
        for start, stop in self.spans(text):
            pieces.append(text[end:start])
            length += start - end
            spots.append(length)
            pieces.append(_MASK)
            length += len(_MASK)
            end = stop
        pieces.append(text[end:])
        return "".join(pieces), spots

    def scan(self, source: str, text: str) -> bool:
        """Record a leak for every secret in `text`; True when there was one."""
        found = self.find(text)
        for excerpt in found:
            leak = Leak(self.current, source, excerpt)
            if leak not in self.leaks:
                self.leaks.append(leak)
        return bool(found)

    def take(self) -> list[Leak]:
        """The leaks recorded so far, forgetting them."""
        taken, self.leaks = self.leaks, []
        return taken


class _LeakHandler(logging.Handler):
    """Scans every record that reaches it, with its extra fields and exception text."""

    # Record attributes every LogRecord has; the rest are `extra=` fields or Powertools keys.
    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def __init__(self, guard: Guard) -> None:
        super().__init__(level=logging.NOTSET)
        self.guard = guard
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        # Powertools adds a filter to root handlers that drops its own records (it prints them itself): this handler
        # must see them anyway, so filters attached by others are ignored.
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: scan the parts
            message = f"{record.msg!r} {record.args!r}"
        extras = {key: value for key, value in vars(record).items() if key not in self._STANDARD}
        parts = [message, repr(extras) if extras else ""]
        if record.exc_info:
            parts.append(self._formatter.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.guard.scan(f"log record of {record.name} ({record.levelname})", "\n".join(parts))


def _tap(undo: list[Callable[[], None]], owner: type, name: str, source: str, guard: Guard, *, result: bool) -> None:
    """Wrap `owner.name` so its arguments (and, with `result`, its return value) are scanned."""
    original = owner.__dict__.get(name)
    if original is None or not callable(original):
        return

    @functools.wraps(original)
    def tapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            guard.scan(source, repr(args) + repr(kwargs))
        returned = original(self, *args, **kwargs)
        if result and returned is not None:
            guard.scan(source, returned if isinstance(returned, str) else repr(returned))
        return returned

    setattr(owner, name, tapped)
    undo.append(lambda: setattr(owner, name, original))


def _register_stored_secrets(undo: list[Callable[[], None]], owner: type, name: str) -> None:
    """Wrap a moto Secrets Manager backend method: the secret values it stores become watched values."""
    original = owner.__dict__.get(name)
    if original is None:
        return

    @functools.wraps(original)
    def registering(self: Any, *args: Any, **kwargs: Any) -> Any:
        text = kwargs.get("secret_string")
        if text is None and len(args) >= 2:
            text = args[1]  # (name or secret_id, secret_string, ...) in every wrapped method
        if isinstance(text, str):
            _watch_secret_string(text)
        return original(self, *args, **kwargs)

    setattr(owner, name, registering)
    undo.append(lambda: setattr(owner, name, original))


def _watch_secret_string(text: str) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        if not any(ch.isspace() for ch in text):
            watch(text)
        return
    if isinstance(value, dict):
        username = value.get("username")
        for key in _SECRET_FIELDS:
            secret = value.get(key)
            if isinstance(secret, str):
                if isinstance(username, str) and username:
                    watch_credentials(username, secret)
                else:
                    watch(secret)


def _tap_exceptions(undo: list[Callable[[], None]], guard: Guard) -> None:
    """Scan the text of every PullthroughError as it is created, whether or not anything ever shows it."""
    try:
        from pullthrough.errors import PullthroughError
    except ImportError:
        return
    had_own = "__init__" in PullthroughError.__dict__
    original = PullthroughError.__dict__.get("__init__")

    def init(self: BaseException, *args: Any, **kwargs: Any) -> None:
        if original is not None:
            original(self, *args, **kwargs)
        else:
            super(PullthroughError, self).__init__(*args, **kwargs)
        with contextlib.suppress(Exception):  # an exception whose __str__ fails is not this guard's business
            guard.scan(f"exception {type(self).__name__}", str(self))

    PullthroughError.__init__ = init  # type: ignore[method-assign]

    def restore() -> None:
        if had_own:
            PullthroughError.__init__ = original  # type: ignore[method-assign]
        else:
            del PullthroughError.__init__

    undo.append(restore)


def _tap_sandbox(undo: list[Callable[[], None]], guard: Guard) -> None:
    """Watch every token a Sandbox's upstream accepts: its users at creation, and every user added later."""
    try:
        from sandbox import Sandbox
    except ImportError:
        return
    init, add_user = Sandbox.__init__, Sandbox.add_user

    @functools.wraps(init)
    def watched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        users = self.users
        # Read again at every scan: the dict is the one the sandbox's token realm checks.
        guard.sources.append(lambda: list(users.values()))

    @functools.wraps(add_user)
    def watched_add_user(self: Any, name: str, token: str) -> None:
        watch_credentials(name, token)
        add_user(self, name, token)

    Sandbox.__init__ = watched_init  # type: ignore[method-assign]
    Sandbox.add_user = watched_add_user  # type: ignore[method-assign]

    def restore() -> None:
        Sandbox.__init__ = init  # type: ignore[method-assign]
        Sandbox.add_user = add_user  # type: ignore[method-assign]

    undo.append(restore)


def _install(guard: Guard) -> list[Callable[[], None]]:
    """Install every tap; returns the callables that remove them."""
    undo: list[Callable[[], None]] = []
    handler = _LeakHandler(guard)
    logging.getLogger().addHandler(handler)
    undo.append(lambda: logging.getLogger().removeHandler(handler))
    _tap_exceptions(undo, guard)
    _tap_sandbox(undo, guard)
    with contextlib.suppress(ImportError):
        from aws_lambda_powertools.logging.logger import Logger

        _tap(undo, Logger, "debug", "a Powertools debug() call", guard, result=False)
    with contextlib.suppress(ImportError):
        from pullthrough.reporting.model import Report

        _tap(undo, Report, "message", "a report's SNS message", guard, result=True)
        _tap(undo, Report, "to_json", "a report's JSON", guard, result=True)
    with contextlib.suppress(ImportError):
        from moto.sns.models import SNSBackend

        _tap(undo, SNSBackend, "publish", "an SNS message", guard, result=False)
        _tap(undo, SNSBackend, "publish_batch", "an SNS message", guard, result=False)
    with contextlib.suppress(ImportError):
        from moto.sqs.models import SQSBackend

        _tap(undo, SQSBackend, "send_message", "an SQS message", guard, result=False)
        _tap(undo, SQSBackend, "send_message_batch", "an SQS message", guard, result=False)
    with contextlib.suppress(ImportError):
        from moto.events.models import EventsBackend

        _tap(undo, EventsBackend, "put_events", "an EventBridge event", guard, result=False)
    with contextlib.suppress(ImportError):
        from moto.secretsmanager.models import SecretsManagerBackend

        for name in ("create_secret", "put_secret_value", "update_secret"):
            _register_stored_secrets(undo, SecretsManagerBackend, name)
    return undo


# --- the pytest plugin ---------------------------------------------------------------------------------------------

_GUARD = pytest.StashKey[Guard]()
_UNDO = pytest.StashKey[list[Callable[[], None]]]()
_ORPHANS = pytest.StashKey[list[dict[str, str]]]()
_WORKER_KEY = "canary_leaks"


def session_guard(config: pytest.Config) -> Guard:
    """The guard of this test session (tests of the guard itself use it to see what it watches)."""
    return config.stash[_GUARD]


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


# Every logger a secret could reach, at DEBUG for the whole run: botocore and urllib3 log requests and responses
# there, Powertools (POWERTOOLS_LOG_LEVEL, read when the library's Logger is made) and the library their details.
DEBUG_LOGGERS = ("botocore", "boto3", "urllib3", "pullthrough")


def log_everything() -> None:
    """Put every logger a secret could reach at DEBUG (again: a test, or the CLI, may have quietened one)."""
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_configure(config: pytest.Config) -> None:
    os.environ["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    log_everything()
    guard = Guard()
    config.stash[_GUARD] = guard
    config.stash[_ORPHANS] = []
    # The controller of an xdist run runs no test: its workers install their own taps.
    config.stash[_UNDO] = [] if _is_xdist_controller(config) else _install(guard)


def pytest_unconfigure(config: pytest.Config) -> None:
    for undo in reversed(config.stash.get(_UNDO, [])):
        undo()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    guard = item.config.stash[_GUARD]
    _keep_orphans(item.config, guard.take())
    log_everything()
    guard.current = item.nodeid
    try:
        return (yield)
    finally:
        guard.current = "<outside any test>"


# tryfirst makes this the outermost wrapper: it sees the report after the skipping plugin turned a failure into an
# xfail, so a leak in an xfail test still fails it.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    guard = item.config.stash[_GUARD]
    if _is_xdist_controller(item.config):
        return report
    # A report carries the sections of the phases before it too: scan only this phase's own.
    for title, content in report.sections:
        if title.endswith(f" {call.when}"):
            guard.scan(title.lower(), content)
    failure = report.longreprtext if report.longrepr is not None else ""
    secret_in_failure = bool(failure) and bool(guard.find(failure))
    if secret_in_failure and not report.failed:
        guard.scan("the failure report", failure)  # an xfail's expected failure must not carry a secret either
    leaks = guard.take()
    if not leaks and not secret_in_failure:
        return report
    # The secret must not reach the terminal, a JUnit file or the controller through the report itself.
    report.sections = [(title, guard.mask(content)) for title, content in report.sections]
    if not leaks:
        # The test failed on its own, and its traceback quoted a secret (often a value in the test's own source):
        # masked, not blamed on the code under test.
        report.longrepr = guard.mask(failure) + "\n(secrets in this report were masked by tests/canary.py)"
        return report
    lines = [f"the canary (a secret) leaked during {call.when}; fix the code that wrote it:"]
    lines += [f"  - {leak.source}: ...{leak.excerpt}..." for leak in leaks]
    if failure:
        lines += ["", "the test's own outcome (secrets masked):", guard.mask(failure)]
    report.outcome = "failed"
    report.longrepr = "\n".join(lines)
    if hasattr(report, "wasxfail"):
        del report.wasxfail
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect the leaks a worker saw outside its tests."""
    output = getattr(node, "workeroutput", None) or {}
    node.config.stash[_ORPHANS].extend(output.get(_WORKER_KEY, []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    _keep_orphans(config, config.stash[_GUARD].take())
    orphans = config.stash[_ORPHANS]
    if hasattr(config, "workerinput"):
        config.workeroutput[_WORKER_KEY] = orphans  # type: ignore[attr-defined]
    elif orphans and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    orphans = config.stash[_ORPHANS]
    if orphans and not hasattr(config, "workerinput"):
        terminalreporter.section("canary: secrets leaked outside any test", sep="=", red=True)
        for leak in orphans:
            terminalreporter.line(str(Leak(**leak)))


def _keep_orphans(config: pytest.Config, leaks: list[Leak]) -> None:
    config.stash[_ORPHANS].extend(asdict(leak) for leak in leaks)
