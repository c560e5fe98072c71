"""What every `pullthrough` command shares: its streams, its declaration, common options, environment and output.

Every command takes `--config`, `--region`, `--profile` and `--json`. With `--json` a command prints one JSON
document on stdout, `{"schema": "pullthrough/<command>/v1", ...}` (docs/cli/<command>.schema.json); otherwise
lines for people. Progress goes to stderr, never stdout, so `--json` output can be piped as it is.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pullthrough import config as config_module
from pullthrough.aws import clients
from pullthrough.cli.deployment import add_stack_option
from pullthrough.config import Config, Rule
from pullthrough.env import Settings
from pullthrough.errors import PullthroughError

DEFAULT_CONFIG = "config/pullthrough.yaml"
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_FAILED = EXIT_FINDINGS  # the name before the exit codes were documented (docs/cli/README.md)
SCHEMA_VERSION = "v1"


@dataclass
class Io:
    """Where a command reads and writes; the real terminal by default."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    getpass: Callable[[str], str] = getpass.getpass
    prompt: Callable[[str], str] = input
    # Progress lines: None shows them when stderr is a terminal (as git and docker do), so a script's stderr
    # carries only warnings and errors; True or False decides.
    show_progress: bool | None = None

    def interactive(self) -> bool:
        """True when stdin is a terminal (then a token is asked for with a hidden prompt)."""
        return bool(getattr(self.stdin, "isatty", lambda: False)())

    def say(self, text: str) -> None:
        print(text, file=self.stdout)

    def warn(self, text: str) -> None:
        print(text, file=self.stderr)

    def progress(self, text: str) -> None:
        """What a command is doing, for anything that takes more than a second: stderr, never stdout."""
        show = self.show_progress
        if show is None:
            show = bool(getattr(self.stderr, "isatty", lambda: False)())
        if show:
            print(text, file=self.stderr, flush=True)


Handler = Callable[[argparse.Namespace, Io], int]


@dataclass(frozen=True)
class Option:
    """One argument of a command, as `argparse.ArgumentParser.add_argument(*flags, **settings)` takes it."""

    flags: tuple[str, ...]
    settings: Mapping[str, Any]


def option(*flags: str, **settings: Any) -> Option:
    """An argument, written as add_argument's call would be."""
    return Option(flags, settings)


def dry_run_option(help: str) -> Option:
    """`--dry-run`: look, decide and report; change nothing (what it leaves out is the command's to say)."""
    return option("--dry-run", action="store_true", help=help)


def image_option(help: str) -> Option:
    """`--image REF`, repeatable: only these images of the warm list."""
    return option("--image", action="append", metavar="REF", help=help)


def rules_only_option(help: str) -> Option:
    """`--rules-only`: the rules (and templates) only."""
    return option("--rules-only", action="store_true", help=help)


@dataclass(frozen=True)
class Command:
    """A command as its family declares it: what it is called, says and takes, and the function that runs it.

    `register` adds what every command has, so no family repeats it: its own options first, then `--stack` when it
    reads the deployed stack (deployment.py), then the common options, the handler and the --json schema name.
    """

    name: str
    handler: Handler
    help: str
    description: str | None = None
    options: Sequence[Option] = ()
    stack: bool = False
    schema_name: str | None = None  # `<family>-<action>` for a family with actions (credentials-check)

    def register(self, commands: Any) -> argparse.ArgumentParser:
        """Add the command to `commands` (argparse's subparsers) and return its parser."""
        parser: argparse.ArgumentParser = commands.add_parser(self.name, help=self.help, description=self.description)
        for item in self.options:
            parser.add_argument(*item.flags, **item.settings)
        if self.stack:
            add_stack_option(parser)
        add_common_options(parser)
        parser.set_defaults(handler=self.handler)
        if self.schema_name:
            parser.set_defaults(schema_name=self.schema_name)
        return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """`--config`, `--region`, `--profile` and `--json`: every command has them."""
    parser.add_argument(
        "--config", help=f"the config document (default: {DEFAULT_CONFIG} if present, else PULLTHROUGH_CONFIG)"
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1)")
    parser.add_argument("--profile", help="AWS named profile for the credentials (default: boto3's usual chain)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (schema: docs/cli/<command>.schema.json) instead of text",
    )


def environment(args: argparse.Namespace) -> tuple[Settings, Config]:
    """The settings (with --region, --profile applied) and the loaded config (--config, or the default)."""
    settings = Settings.from_env()
    region = getattr(args, "region", None)
    if region:
        settings = settings.model_copy(update={"region": region})
    profile = getattr(args, "profile", None)
    if profile:
        clients.use_profile(profile)
    path = getattr(args, "config", None) or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else settings.config_path)
    settings = settings.model_copy(update={"config_path": path})
    return settings, config_module.load(path)


def emit(io: Io, args: argparse.Namespace, document: Mapping[str, Any], text: Iterable[str]) -> None:
    """With --json, `document` as one JSON document on stdout (schema tagged); otherwise the text lines."""
    if getattr(args, "json", False):
        tagged = {"schema": schema_id(args), **document}
        io.stdout.write(json.dumps(tagged, indent=2, sort_keys=False, default=str) + "\n")
        return
    for line in text:
        io.say(line)


def schema_id(args: argparse.Namespace) -> str:
    """`pullthrough/<command>/v1`; a family with actions is `<family>-<action>` (credentials-check)."""
    name = getattr(args, "schema_name", None) or args.command
    return f"pullthrough/{name}/{SCHEMA_VERSION}"


def find_rule(config: Config, prefix: str) -> Rule:
    """The config's rule with this prefix; an unknown one is a usage error naming the rules there are."""
    for rule in config.rules:
        if rule.prefix == prefix:
            return rule
    known = ", ".join(r.prefix for r in config.rules) or "none"
    raise PullthroughError(f"no rule with prefix {prefix!r} in the config (rules: {known})")
