"""The `pullthrough` command: operator tasks that need a person at a terminal.

    pullthrough credentials set docker-hub           # token from a hidden prompt (or stdin), tested, then stored
    pullthrough credentials check [docker-hub]       # validity and remaining pull budget of each rule's secret

Each command family registers itself in COMMANDS (`add_<family>_commands(subparsers)`); a new family is one
function and one list entry. Commands get an `Io` (streams and the hidden prompt) so tests drive them without a
terminal. A token is read, tested and stored; it is never printed, logged or put in an error.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from pullthrough import config as config_module
from pullthrough import credentials, rotation
from pullthrough.aws.secrets import CANDIDATE, SecretInfo
from pullthrough.config import Config, Rule
from pullthrough.credentials import CredentialCheck
from pullthrough.errors import AwsAlreadyExists, AwsError, AwsNotFound, PullthroughError, SecretError
from pullthrough.observability import logger
from pullthrough.registry import Credentials
from pullthrough.settings import Settings

DEFAULT_CONFIG = "config/pullthrough.yaml"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class Io:
    """Where a command reads and writes; the real terminal by default."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    getpass: Callable[[str], str] = getpass.getpass
    prompt: Callable[[str], str] = input

    def interactive(self) -> bool:
        """True when stdin is a terminal (then a token is asked for with a hidden prompt)."""
        return bool(getattr(self.stdin, "isatty", lambda: False)())

    def say(self, text: str) -> None:
        print(text, file=self.stdout)

    def warn(self, text: str) -> None:
        print(text, file=self.stderr)


Handler = Callable[[argparse.Namespace, Io], int]


# --- credentials ---------------------------------------------------------------------------------------------------


def add_credentials_commands(commands: Any) -> None:
    """`pullthrough credentials set|check`."""
    family = commands.add_parser("credentials", help="store, test and check upstream credentials secrets")
    actions = family.add_subparsers(dest="action", required=True, metavar="ACTION")

    set_ = actions.add_parser(
        "set",
        help="test a new token upstream, then store it (create the secret, or stage it and rotate)",
        description=(
            "Asks for the token without echoing it, or reads it from stdin when stdin is not a terminal "
            "(pullthrough credentials set RULE < token-file). Tests it upstream first; nothing is stored when it "
            f"fails. An existing secret gets the value under the staging label {CANDIDATE}, then a rotation copies "
            "it to AWSPENDING, tests it and promotes it."
        ),
    )
    set_.add_argument("rule", help="the rule's prefix in the config, e.g. docker-hub")
    set_.add_argument("--username", help="upstream user name (default: the secret's current one, or asked)")
    set_.add_argument("--expires", type=date.fromisoformat, help="the token's expiry date (YYYY-MM-DD), if any")
    set_.add_argument(
        "--via",
        choices=("auto", "lambda", "local"),
        default="auto",
        help="promote through the secret's rotation function (lambda), in this process (local), or lambda when "
        "the secret has one (auto, the default)",
    )
    set_.add_argument("--rotation-function", help="ARN of the rotation function to attach (with --via lambda)")
    set_.add_argument("--check-only", action="store_true", help="test the token upstream and store nothing")
    set_.add_argument(
        "--stage-only",
        action="store_true",
        help=f"stage the value under {CANDIDATE} and start no rotation: the secret's next rotation takes it",
    )
    _common(set_)
    set_.set_defaults(handler=credentials_set)

    check = actions.add_parser("check", help="check each rule's secret upstream: validity and pull budget")
    check.add_argument("rule", nargs="?", help="only this rule (prefix); default: every rule with credentials")
    _common(check)
    check.set_defaults(handler=credentials_check)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help=f"the config document (default: {DEFAULT_CONFIG} if present, else PULLTHROUGH_CONFIG)"
    )
    parser.add_argument("--timeout", type=float, default=credentials.CHECK_TIMEOUT, help="seconds per upstream call")


def credentials_set(args: argparse.Namespace, io: Io) -> int:
    """Test a token upstream, then create the secret or stage the value as AWSPENDING and rotate to it."""
    from pullthrough.aws import secrets

    settings, config = _environment(args)
    rule = _rule(config, args.rule)
    name = rule.secret_name
    if name is None:
        raise PullthroughError(f"rule {rule.prefix} ({rule.entry.title}) takes no credentials; nothing to set")
    existing = _existing(name, settings)
    username = args.username or _current_username(name, existing, settings) or _ask_username(io, rule)
    token = _read_token(io, rule)
    credentials.refuse_swapped(name, username, token)
    check = credentials.check_credentials(
        name,
        Credentials(username, token),
        rule.entry,
        rule.upstream_url,
        settings,
        rule=rule.prefix,
        timeout=args.timeout,
    )
    io.say(f"{rule.prefix}: {_verdict(check)}")
    if not check.valid:
        io.warn(f"nothing stored. Fix: {check.fix}")
        return EXIT_FAILED
    if args.check_only:
        io.say("--check-only: nothing stored")
        return EXIT_OK
    value = credentials.credentials_value(Credentials(username, token))
    if existing is None:
        tags = {credentials.EXPIRES_TAG: args.expires.isoformat()} if args.expires else {}
        arn = secrets.create(
            name,
            value,
            description=f"Upstream credentials of ECR pull-through cache rule {rule.prefix} (pullthrough)",
            tags=tags,
            region=settings.region,
        )
        io.say(f"created secret {name} ({arn})")
        io.say("ECR uses it once the rule points at it: deploy, or wait for the next reconcile")
        return EXIT_OK
    return _stage_and_rotate(args, io, settings, existing, value)


def _stage_and_rotate(args: argparse.Namespace, io: Io, settings: Settings, existing: SecretInfo, value: str) -> int:
    from pullthrough.aws import secrets

    staged = rotation.new_token()
    secrets.put_value(existing.arn, value, (CANDIDATE,), token=staged, region=settings.region)
    if args.expires:
        secrets.tag(existing.arn, {rotation.PENDING_EXPIRES_TAG: args.expires.isoformat()}, region=settings.region)
    io.say(f"staged under {CANDIDATE} on {existing.name} (version {staged}); AWSCURRENT is unchanged")
    if args.stage_only:
        io.say(
            "--stage-only: the secret's next rotation (its schedule, or aws secretsmanager rotate-secret --secret-id "
            f"{existing.name}) tests the value and promotes it"
        )
        return EXIT_OK
    version = rotation.new_token()
    via = args.via
    if via == "auto":
        via = "lambda" if existing.rotation_lambda_arn or args.rotation_function else "local"
    if via == "lambda":
        _end_unfinished_rotation(io, settings, existing)
        try:
            secrets.start_rotation(
                existing.arn, token=version, lambda_arn=args.rotation_function, region=settings.region
            )
        except AwsError as exc:
            io.warn(f"Secrets Manager did not start the rotation: {exc}")
            io.warn(f"the value stays staged under {CANDIDATE}; run again with --via local to test and promote it here")
            return EXIT_FAILED
        io.say(
            f"rotation started (version {version}): the rotation function copies the staged value to AWSPENDING, "
            "tests it upstream and promotes it; its report follows"
        )
        return EXIT_OK
    # Here this process does what Secrets Manager and createSecret would: the value at AWSPENDING on the rotation's
    # version (PutSecretValue moves AWSPENDING off any other version), then each step in turn.
    secrets.put_value(existing.arn, value, (secrets.PENDING,), token=version, region=settings.region)
    io.say(f"staged as AWSPENDING on version {version}")
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        event = {"Step": step, "SecretId": existing.arn, "ClientRequestToken": version}
        try:
            result = rotation.handle(event, settings)
        except rotation.RotationError as exc:
            io.warn(f"{step} refused: {exc.reason}")
            io.warn(f"fix: {exc.fix}")
            return EXIT_FAILED
        io.say(f"{step}: {result.message}")
    io.say(f"{existing.name}: the new value is AWSCURRENT")
    return EXIT_OK


def _end_unfinished_rotation(io: Io, settings: Settings, existing: SecretInfo) -> None:
    """Take AWSPENDING off a version that is not AWSCURRENT's: a rotation that failed and never finished.

    While it is there RotateSecret refuses ("A previous rotation isn't complete", botocore: any later RotateSecret
    "assumes that a previous rotation request is still in progress and returns an error"). AWS's CancelRotateSecret
    documentation advises exactly this cleanup; the value on that version never became current.
    """
    from pullthrough.aws import secrets

    pending, current = existing.version_with(secrets.PENDING), existing.version_with(secrets.CURRENT)
    if pending is None or pending == current:
        return
    secrets.move_stage(existing.arn, secrets.PENDING, None, pending, region=settings.region)
    io.say(
        f"a previous rotation did not finish (AWSPENDING was on version {pending}, not on AWSCURRENT's): took "
        "AWSPENDING off it so Secrets Manager can start this one; AWSCURRENT is unchanged"
    )


def credentials_check(args: argparse.Namespace, io: Io) -> int:
    """Check each rule's secret (or one) upstream and print its validity and remaining pull budget."""
    settings, config = _environment(args)
    rules = [_rule(config, args.rule)] if args.rule else [r for r in config.rules if r.secret_name]
    if not rules:
        io.say("no rule in the config uses credentials")
        return EXIT_OK
    worst = EXIT_OK
    for rule in rules:
        name = rule.secret_name
        if name is None:
            io.say(f"{rule.prefix}: {rule.entry.title} takes no credentials")
            continue
        check = credentials.check_secret(
            name, rule.entry, rule.upstream_url, settings, rule=rule.prefix, timeout=args.timeout
        )
        io.say(f"{rule.prefix}: {_verdict(check)}")
        if not check.valid:
            io.say(f"  fix: {check.fix}")
            worst = EXIT_FAILED
    return worst


def _verdict(check: CredentialCheck) -> str:
    head = check.status.upper() if check.status != "valid" else "valid"
    rate = check.rate_limit
    budget = ""
    if check.valid and rate is not None and rate.remaining is not None:
        limit = f"/{rate.limit}" if rate.limit is not None else ""
        window = f" per {rate.window_seconds // 3600}h" if rate.window_seconds else ""
        budget = f" ({rate.remaining}{limit} pulls left{window})"
    return f"{head}{budget}: {check.message}"


def _environment(args: argparse.Namespace) -> tuple[Settings, Config]:
    settings = Settings.from_env()
    path = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else settings.config_path)
    settings = settings.model_copy(update={"config_path": path})
    return settings, config_module.load(path)


def _rule(config: Config, prefix: str) -> Rule:
    for rule in config.rules:
        if rule.prefix == prefix:
            return rule
    known = ", ".join(r.prefix for r in config.rules) or "none"
    raise PullthroughError(f"no rule with prefix {prefix!r} in the config (rules: {known})")


def _existing(name: str, settings: Settings) -> SecretInfo | None:
    from pullthrough.aws import secrets

    try:
        info = secrets.describe(name, region=settings.region)
    except AwsNotFound:
        return None
    if info.deleted is not None:
        raise PullthroughError(
            f"secret {name} is scheduled for deletion: restore it (aws secretsmanager restore-secret --secret-id "
            f"{name}) and run this again"
        )
    return info


def _current_username(name: str, existing: SecretInfo | None, settings: Settings) -> str | None:
    from pullthrough.aws import secrets

    if existing is None:
        return None
    try:
        return credentials.parse_value(name, secrets.get_value(existing.arn, region=settings.region)).username
    except (SecretError, AwsError):
        return None


def _ask_username(io: Io, rule: Rule) -> str:
    if not io.interactive():
        raise PullthroughError(f"no user name for {rule.entry.title}: pass --username")
    username = io.prompt(f"{rule.entry.title} user name: ").strip()
    if not username:
        raise PullthroughError("a user name is required")
    return username


def _read_token(io: Io, rule: Rule) -> str:
    if io.interactive():
        token = io.getpass(f"{rule.entry.title} access token for rule {rule.prefix} (input hidden): ")
    else:
        token = io.stdin.readline()
    token = token.strip()
    if not token:
        raise PullthroughError("no token given: type it at the prompt, or pipe it on stdin")
    return token


# --- warm ------------------------------------------------------------------------------------------------------------


def add_warm_commands(commands: Any) -> None:
    """`pullthrough warm [--image REF]`."""
    warm = commands.add_parser(
        "warm",
        help="warm the warm list (or some images) through ECR from here, and print the report",
        description=(
            "Plans and warms in this process with your AWS credentials: the same decisions (what ECR holds, the "
            "upstream pull budget) and outcomes as a scheduled run, without the queue and the ledger. To start a "
            "run of the deployed stack instead: aws lambda invoke --function-name <the PlanWarmingFunctionName "
            'output> --cli-binary-format raw-in-base64-out --payload \'{"images": ["nginx:1.27"]}\' out.json'
        ),
    )
    warm.add_argument(
        "--image",
        action="append",
        metavar="REF",
        help="warm only this image (repeatable): name:tag, or a name from warm.images for all its tags",
    )
    warm.add_argument("--dry-run", action="store_true", help="decide and report, pull nothing")
    warm.add_argument(
        "--config", help=f"the config document (default: {DEFAULT_CONFIG} if present, else PULLTHROUGH_CONFIG)"
    )
    warm.set_defaults(handler=warm_command)


def warm_command(args: argparse.Namespace, io: Io) -> int:
    """Warm here and print one line per image; exit 1 when any image failed."""
    from pullthrough import planning
    from pullthrough.report import Status

    settings, config = _environment(args)
    request = planning.WarmRequest(trigger="pullthrough warm (CLI)", images=tuple(args.image or ()))
    report = planning.run_here(config, settings, request, dry_run=args.dry_run)
    io.say(report.headline())
    for item in report.items:
        line = f"  {item.outcome.label:<14} {item.subject}" + (f": {item.reason}" if item.reason else "")
        io.say(line)
        if item.fix and item.outcome.severity.value != "ok":
            io.say(f"  {'':<14} fix: {item.fix}")
    totals = report.totals
    io.say(f"{totals.bytes_moved} bytes moved, {totals.pulls_spent} upstream pulls spent")
    for note in report.notes:
        io.say(f"note: {note}")
    return EXIT_FAILED if report.status is Status.FAILED else EXIT_OK


# --- the command -----------------------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [add_credentials_commands, add_warm_commands]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command family."""
    parser = argparse.ArgumentParser(
        prog="pullthrough", description="Keep ECR pull-through cache configured, authenticated and warm."
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
    """Run one command; returns the exit code (0 fine, 1 a check or step failed, 2 bad input)."""
    io = io or Io()
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        with _terminal_output(args.verbose):
            return handler(args, io)
    except AwsAlreadyExists as exc:
        io.warn(f"error: {exc}")
        return EXIT_FAILED
    except PullthroughError as exc:
        io.warn(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        io.warn("interrupted: nothing more was stored")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
