"""The `pullthrough` command: operator tasks that need a person at a terminal.

    pullthrough credentials set|check    store, test and check upstream credentials secrets
    pullthrough warm                      warm the warm list through ECR from here
    pullthrough plan                      what a reconcile and a warm run would do now, writing nothing
    pullthrough reconcile [--dry-run]     reconcile rules and templates from here
    pullthrough status                    rules, warm-list images and recent runs as the account has them
    pullthrough urls                      ECR URIs of the warm list and each rule's registry base
    pullthrough pull-config               consumer configuration: .env, registries.conf, containerd, Kyverno, IAM, VPC
    pullthrough images                    what warm.sources yield: each image with its source and place
    pullthrough uninstall [--dry-run]     after `sam delete`: list and remove what Pullthrough owns
    pullthrough org plan|status           the organisation: what each member gets; its StackSet's instances

Each command family is a module with `add_<family>_commands(subparsers)`, registered in COMMANDS: a new family is
one module and one list entry. A family declares each command as a `Command` (common.py: name, handler, help,
its own options), whose `register` adds what every command has. Every command takes --config, --region, --profile
and --json (common.py); exit codes are EXIT_OK (0), EXIT_FINDINGS (1: something to act on, or a step failed) and
EXIT_USAGE (2: bad input or config). Commands get an `Io` (streams and the hidden prompt) so tests drive them
without a terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pullthrough.cli.common import (
    DEFAULT_CONFIG,
    EXIT_FAILED,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    Handler,
    Io,
    add_common_options,
    emit,
    environment,
)
from pullthrough.cli.consume import add_consume_commands
from pullthrough.cli.credentials import add_credentials_commands
from pullthrough.cli.images import add_images_commands
from pullthrough.cli.org import add_org_commands
from pullthrough.cli.plan import add_plan_commands
from pullthrough.cli.prune import add_prune_commands
from pullthrough.cli.reconcile import add_reconcile_commands
from pullthrough.cli.status import add_status_commands
from pullthrough.cli.uninstall import add_uninstall_commands
from pullthrough.cli.warm import add_warm_commands
from pullthrough.errors import AwsAlreadyExists, PullthroughError
from pullthrough.observability import logger

__all__ = [
    "COMMANDS",
    "DEFAULT_CONFIG",
    "EXIT_FAILED",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_USAGE",
    "Io",
    "add_common_options",
    "build_parser",
    "emit",
    "environment",
    "main",
]

# Every family is imported at the top, none lazily: `pullthrough --help` measured 1.1 to 1.3 s of CPU with the families'
# ~35 deferred imports and 1.3 to 1.7 s with none (issue 18, a loaded 2-core machine, `/usr/bin/time`). The
# difference is warm.planner/worker and rules, which plan, warm, status, images, prune and reconcile all share, so
# deferring one family (cli/__main__.py may defer one) would not take it back; config, imported by common.py for
# every command, is most of the rest.
COMMANDS: list[Callable[[Any], None]] = [
    add_credentials_commands,
    add_warm_commands,
    add_plan_commands,
    add_reconcile_commands,
    add_status_commands,
    add_consume_commands,
    add_images_commands,
    add_uninstall_commands,
    add_prune_commands,
    add_org_commands,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command family."""
    parser = argparse.ArgumentParser(
        prog="pullthrough",
        description="Keep ECR pull-through cache configured, authenticated and warm.",
        epilog="exit status: 0 ok, 1 findings (something to act on, or a step failed), 2 usage or config error",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


@contextmanager
def _terminal_output(verbose: bool) -> Iterator[None]:
    """The library logs JSON lines and writes metrics for CloudWatch; at a terminal neither belongs on stdout.

    Both are process-wide, so they are put back afterwards (main() may run inside another program or a test).
    """
    level = logger.log_level
    disabled = os.environ.get(_METRICS_DISABLED)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    os.environ[_METRICS_DISABLED] = "true"
    try:
        yield
    finally:
        logger.setLevel(level)
        if disabled is None:
            os.environ.pop(_METRICS_DISABLED, None)
        else:
            os.environ[_METRICS_DISABLED] = disabled


_METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"


def main(argv: Sequence[str] | None = None, io: Io | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 findings or a failed step, 2 bad input or config)."""
    io = io or Io()
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        with _terminal_output(args.verbose):
            return handler(args, io)
    except AwsAlreadyExists as exc:
        io.warn(f"error: {exc}")
        return EXIT_FINDINGS
    except PullthroughError as exc:
        io.warn(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        io.warn("interrupted: nothing more was stored")
        return EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
