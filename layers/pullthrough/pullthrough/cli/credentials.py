"""`pullthrough credentials set|check`: store, test and check upstream credentials secrets.

    pullthrough credentials set docker-hub           # token from a hidden prompt (or stdin), tested, then stored
    pullthrough credentials check [docker-hub]       # validity and remaining pull budget of each rule's secret

A token is read, tested and stored; it is never printed, logged or put in an error (nor in --json output).
"""

from __future__ import annotations

import argparse
import dataclasses
import io as std_io
from datetime import date
from typing import Any

from pullthrough.aws import secrets
from pullthrough.aws.secrets import CANDIDATE, SecretInfo
from pullthrough.cli.common import EXIT_FAILED, EXIT_OK, Command, Io, emit, environment, find_rule, option
from pullthrough.cli.documents import CredentialCheckDoc, CredentialsCheckDocument, CredentialsSetDocument, dump
from pullthrough.config import Rule
from pullthrough.credentials import rotation
from pullthrough.credentials.check import check_secret
from pullthrough.credentials.upstream import CHECK_TIMEOUT, check_credentials
from pullthrough.credentials.usage import EXPIRES_TAG, Target
from pullthrough.credentials.value import credentials_value, parse_value, refuse_swapped
from pullthrough.credentials.verdict import CredentialCheck
from pullthrough.env import Settings
from pullthrough.errors import AwsError, AwsNotFound, PullthroughError, SecretError
from pullthrough.registry.auth import Credentials

# --- credentials ---------------------------------------------------------------------------------------------------


def add_credentials_commands(commands: Any) -> None:
    """`pullthrough credentials set|check`."""
    family = commands.add_parser("credentials", help="store, test and check upstream credentials secrets")
    actions = family.add_subparsers(dest="action", required=True, metavar="ACTION")
    Command(
        "set",
        credentials_set,
        help="test a new token upstream, then store it (create the secret, or stage it and rotate)",
        description=(
            "Asks for the token without echoing it, or reads it from stdin when stdin is not a terminal "
            "(pullthrough credentials set RULE < token-file). Tests it upstream first; nothing is stored when it "
            f"fails. An existing secret gets the value under the staging label {CANDIDATE}, then a rotation copies "
            "it to AWSPENDING, tests it and promotes it."
        ),
        options=(
            option("rule", help="the rule's prefix in the config, e.g. docker-hub"),
            option("--username", help="upstream user name (default: the secret's current one, or asked)"),
            option("--expires", type=date.fromisoformat, help="the token's expiry date (YYYY-MM-DD), if any"),
            option(
                "--via",
                choices=("auto", "lambda", "local"),
                default="auto",
                help="promote through the secret's rotation function (lambda), in this process (local), or lambda "
                "when the secret has one (auto, the default)",
            ),
            option("--rotation-function", help="ARN of the rotation function to attach (with --via lambda)"),
            option("--check-only", action="store_true", help="test the token upstream and store nothing"),
            option(
                "--stage-only",
                action="store_true",
                help=f"stage the value under {CANDIDATE} and start no rotation: the secret's next rotation takes it",
            ),
            TIMEOUT_OPTION,
        ),
        schema_name="credentials-set",
    ).register(actions)
    Command(
        "check",
        credentials_check,
        help="check each rule's secret upstream: validity and pull budget",
        options=(
            option("rule", nargs="?", help="only this rule (prefix); default: every rule with credentials"),
            TIMEOUT_OPTION,
        ),
        schema_name="credentials-check",
    ).register(actions)


TIMEOUT_OPTION = option("--timeout", type=float, default=CHECK_TIMEOUT, help="seconds per upstream call")


def credentials_set(args: argparse.Namespace, io: Io) -> int:
    """Test a token upstream, then create the secret or stage the value as AWSPENDING and rotate to it."""
    if not args.json:
        return _set(args, io, {})
    lines = std_io.StringIO()
    found: dict[str, Any] = {}
    code = _set(args, dataclasses.replace(io, stdout=lines), found)
    check: CredentialCheck | None = found.get("check")
    document = CredentialsSetDocument(
        rule=args.rule,
        secret=check.secret if check else None,
        check=check_document(args.rule, check) if check else None,
        stored=found.get("stored"),
        lines=lines.getvalue().splitlines(),
        exit_code=code,
    )
    emit(io, args, dump(document), ())
    return code


def _set(args: argparse.Namespace, io: Io, found: dict[str, Any]) -> int:
    settings, config = environment(args)
    rule = find_rule(config, args.rule)
    name = rule.secret_name
    if name is None:
        raise PullthroughError(f"rule {rule.prefix} ({rule.entry.title}) takes no credentials; nothing to set")
    existing = _existing(name, settings)
    username = args.username or _current_username(name, existing, settings) or _ask_username(io, rule)
    token = _read_token(io, rule)
    refuse_swapped(name, username, token)
    check = check_credentials(
        name,
        Credentials(username, token),
        Target(rule.entry, rule.upstream_url, rule.prefix),
        settings,
        timeout=args.timeout,
    )
    found["check"] = check
    io.say(f"{rule.prefix}: {_verdict(check)}")
    if not check.valid:
        io.warn(f"nothing stored. Fix: {check.fix}")
        return EXIT_FAILED
    if args.check_only:
        io.say("--check-only: nothing stored")
        return EXIT_OK
    value = credentials_value(Credentials(username, token))
    if existing is None:
        tags = {EXPIRES_TAG: args.expires.isoformat()} if args.expires else {}
        arn = secrets.create(
            name,
            value,
            description=f"Upstream credentials of ECR pull-through cache rule {rule.prefix} (pullthrough)",
            tags=tags,
            region=settings.region,
        )
        found["stored"] = "created"
        io.say(f"created secret {name} ({arn})")
        io.say("ECR uses it once the rule points at it: deploy, or wait for the next reconcile")
        return EXIT_OK
    found["stored"] = "staged"
    code = _stage_and_rotate(args, io, settings, existing, value)
    if code == EXIT_OK and not args.stage_only:
        found["stored"] = "rotating" if _via(args, existing) == "lambda" else "current"
    return code


def _stage_and_rotate(args: argparse.Namespace, io: Io, settings: Settings, existing: SecretInfo, value: str) -> int:
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
    via = _via(args, existing)
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
            result = rotation.run_step(event, settings)
        except rotation.RotationError as exc:
            io.warn(f"{step} refused: {exc.reason}")
            io.warn(f"fix: {exc.fix}")
            return EXIT_FAILED
        io.say(f"{step}: {result.message}")
    io.say(f"{existing.name}: the new value is AWSCURRENT")
    return EXIT_OK


def _via(args: argparse.Namespace, existing: SecretInfo) -> str:
    if args.via != "auto":
        return str(args.via)
    return "lambda" if existing.rotation_lambda_arn or args.rotation_function else "local"


def _end_unfinished_rotation(io: Io, settings: Settings, existing: SecretInfo) -> None:
    """Take AWSPENDING off a version that is not AWSCURRENT's: a rotation that failed and never finished.

    While it is there RotateSecret refuses ("A previous rotation isn't complete", botocore: any later RotateSecret
    "assumes that a previous rotation request is still in progress and returns an error"). AWS's CancelRotateSecret
    documentation advises exactly this cleanup; the value on that version never became current.
    """
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
    settings, config = environment(args)
    rules = [find_rule(config, args.rule)] if args.rule else [r for r in config.rules if r.secret_name]
    lines: list[str] = [] if rules else ["no rule in the config uses credentials"]
    checks: list[CredentialCheckDoc] = []
    worst = EXIT_OK
    for rule in rules:
        name = rule.secret_name
        if name is None:
            lines.append(f"{rule.prefix}: {rule.entry.title} takes no credentials")
            continue
        io.progress(f"checking {name} upstream ({rule.entry.title})...")
        check = check_secret(name, rule.entry, rule.upstream_url, settings, rule=rule.prefix, timeout=args.timeout)
        checks.append(check_document(rule.prefix, check))
        lines.append(f"{rule.prefix}: {_verdict(check)}")
        if not check.valid:
            lines.append(f"  fix: {check.fix}")
            worst = EXIT_FAILED
    emit(io, args, dump(CredentialsCheckDocument(rules=checks, exit_code=worst)), lines)
    return worst


def check_document(rule: str, check: CredentialCheck) -> CredentialCheckDoc:
    """One credentials check for --json: the verdict and the pull budget, never the token."""
    rate = check.rate_limit
    return CredentialCheckDoc(
        rule=rule,
        secret=check.secret,
        status=check.status,
        valid=check.valid,
        username=check.username,
        message=check.message,
        fix=None if check.valid else check.fix,
        reason_code=check.reason_code,
        pulls_limit=rate.limit if rate else None,
        pulls_remaining=rate.remaining if rate else None,
        window_seconds=rate.window_seconds if rate else None,
    )


def _verdict(check: CredentialCheck) -> str:
    head = check.status.upper() if check.status != "valid" else "valid"
    rate = check.rate_limit
    budget = ""
    if check.valid and rate is not None and rate.remaining is not None:
        limit = f"/{rate.limit}" if rate.limit is not None else ""
        window = f" per {rate.window_seconds // 3600}h" if rate.window_seconds else ""
        budget = f" ({rate.remaining}{limit} pulls left{window})"
    return f"{head}{budget}: {check.message}"


def _existing(name: str, settings: Settings) -> SecretInfo | None:
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
    if existing is None:
        return None
    try:
        return parse_value(name, secrets.get_value(existing.arn, region=settings.region)).username
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
