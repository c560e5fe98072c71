"""`pullthrough uninstall [--dry-run] [--yes]`: remove what Pullthrough owns that `sam delete` leaves behind.

Run it after `sam delete`: while the stack is deployed, its reconcile_rules would put back the rules this removes
(a deleted rule is drift it repairs), so without --dry-run the command refuses until the stack is gone. It lists
first, then asks for the stack's name to be typed (or --yes). What it removes and keeps, and in which order, is
pullthrough/uninstall.py's to decide; this module finds the ledger table, asks, and prints.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pullthrough import uninstall
from pullthrough.aws import ledger_table
from pullthrough.aws import stack as cloudformation
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Command, Io, dry_run_option, emit, environment, option
from pullthrough.cli.deployment import LEDGER_TABLE
from pullthrough.cli.documents import KeptDoc, RemovalDoc, UninstallDocument, dump
from pullthrough.env import Settings
from pullthrough.errors import PullthroughError
from pullthrough.uninstall import DEFAULT_RECOVERY_DAYS, Done, Inventory, Options

# botocore's DeleteSecret: RecoveryWindowInDays "can range from 7 to 30 days".
RECOVERY_DAYS = range(7, 31)


def add_uninstall_commands(commands: Any) -> None:
    """`pullthrough uninstall`."""
    Command(
        "uninstall",
        uninstall_command,
        help="list what Pullthrough owns in the account (after sam delete) and remove it on confirmation",
        description=(
            "Lists what Pullthrough owns that `sam delete` leaves behind: the pull-through cache rules and repository "
            "creation templates it created (its ownership records in the retained ledger table), the cache "
            "repositories under the config's prefixes, the config's ecr-pullthroughcache/ secrets and the ledger "
            "table itself; and what it keeps, with the reason (rules it does not own, secrets a kept rule uses). "
            "Then it removes them, rules first and the ledger last, once the stack's name is typed (or --yes). "
            "Secrets are scheduled for deletion with a recovery window. Exit status 1 when a removal failed."
        ),
        options=(
            dry_run_option("list only; remove nothing"),
            option("--yes", action="store_true", help="remove without asking for the stack's name"),
            option(
                "--ledger-table",
                metavar="NAME",
                help="the retained ledger table (default: LEDGER_TABLE, the stack's LedgerTable, or the one table "
                "named <stack>-LedgerTable-*)",
            ),
            option("--keep-repositories", action="store_true", help="leave the cache repositories"),
            option("--keep-ledger", action="store_true", help="leave the ledger table"),
            option(
                "--recovery-days",
                type=int,
                choices=RECOVERY_DAYS,
                default=DEFAULT_RECOVERY_DAYS,
                metavar="DAYS",
                help=f"secrets stay recoverable this long, 7 to 30 (default {DEFAULT_RECOVERY_DAYS})",
            ),
            option(
                "--force-delete-secrets",
                action="store_true",
                help="delete the secrets at once, with no recovery window",
            ),
        ),
        stack=True,
    ).register(commands)


def uninstall_command(args: argparse.Namespace, io: Io) -> int:
    """List, confirm, remove; 0 when all listed is gone (or a dry run), 1 when a removal failed or was declined."""
    settings, config = environment(args)
    stack = args.stack or settings.stack_name
    if args.json and not (args.dry_run or args.yes):
        raise PullthroughError("--json needs --dry-run or --yes: the confirmation prompt would break the JSON output")
    deployed = _stack_resources(stack, settings)
    if deployed and not args.dry_run:
        raise PullthroughError(
            f"stack {stack} is still deployed in {settings.region}: its reconcile would recreate the rules removed "
            f"now. Run `sam delete --stack-name {stack}` first (or --dry-run to list)"
        )
    table = args.ledger_table or settings.ledger_table or deployed.get(LEDGER_TABLE) or _left_table(stack, settings)
    options = Options(
        keep_repositories=args.keep_repositories,
        keep_ledger=args.keep_ledger,
        recovery_days=args.recovery_days,
        force_delete_secrets=args.force_delete_secrets,
    )
    io.progress(f"reading what Pullthrough owns in {settings.region}...")
    listed = Listed(stack, settings.region, uninstall.survey(config, table, options, settings.region))
    inventory = listed.inventory
    if args.dry_run or not inventory.removals:
        return _report(io, args, listed)
    if not args.yes:
        for line in inventory_lines(inventory):
            io.say(line)
        if not _confirmed(io, stack, len(inventory.removals)):
            io.warn("not confirmed: nothing was removed")
            return _report(io, args, listed, code=EXIT_FINDINGS, quiet=True)
    done = uninstall.remove(inventory, options, settings.region, io.progress)
    return _report(io, args, listed, done)


@dataclass(frozen=True)
class Listed:
    """What uninstall found to remove and keep, and where: the stack the confirmation names, and the region."""

    stack: str
    region: str
    inventory: Inventory


def _stack_resources(stack: str, settings: Settings) -> dict[str, str]:
    return cloudformation.physical_ids(stack, settings.region)


def _left_table(stack: str, settings: Settings) -> str | None:
    found = ledger_table.left_by(stack, settings.region)
    if len(found) > 1:
        raise PullthroughError(
            f"{len(found)} tables are named {stack}-{LEDGER_TABLE}-*: {', '.join(found)}; pass --ledger-table NAME"
        )
    return found[0] if found else None


def _confirmed(io: Io, stack: str, count: int) -> bool:
    question = f"Type the stack name ({stack}) to remove the {count} item(s) above: "
    if io.interactive():
        answer = io.prompt(question)
    else:
        io.warn(question)
        answer = io.stdin.readline()
    return answer.strip() == stack


def _report(
    io: Io,
    args: argparse.Namespace,
    listed: Listed,
    removed: Sequence[Done] | None = None,
    *,
    code: int | None = None,
    quiet: bool = False,
) -> int:
    """Print (or emit as JSON) what was listed and, once confirmed, what became of each removal; the exit code."""
    inventory, done, confirmed = listed.inventory, removed or (), removed is not None
    if code is None:
        code = EXIT_FINDINGS if any(d.status in ("failed", "skipped") for d in done) else EXIT_OK
    outcome = {id(d.removal): d for d in done}
    removals = []
    for removal in inventory.removals:
        found = outcome.get(id(removal))
        status, reason = (found.status, found.reason or None) if found else ("planned", None)
        removals.append(
            RemovalDoc(kind=removal.kind.value, name=removal.name, detail=removal.detail, status=status, reason=reason)
        )
    document = UninstallDocument(
        dry_run=args.dry_run,
        confirmed=confirmed,
        stack=listed.stack,
        region=listed.region,
        ledger_table=inventory.ledger_table,
        remove=removals,
        keep=[KeptDoc(kind=k.kind.value, name=k.name, reason=k.reason) for k in inventory.kept],
        notes=list(inventory.notes),
        exit_code=code,
    )
    text = [] if quiet else (done_lines(done) if done else inventory_lines(inventory))
    emit(io, args, dump(document), text)
    return code


def inventory_lines(inventory: Inventory) -> Iterator[str]:
    """What would be removed, in order, then what is kept and why, then the notes."""
    if inventory.removals:
        yield f"Pullthrough owns {len(inventory.removals)} item(s), removed in this order:"
        for removal in inventory.removals:
            yield f"  {removal.kind.value:<12} {removal.name}" + (f"  ({removal.detail})" if removal.detail else "")
    else:
        yield "Nothing of Pullthrough's to remove here."
    if inventory.kept:
        yield f"Kept ({len(inventory.kept)}):"
        for kept in inventory.kept:
            yield f"  {kept.kind.value:<12} {kept.name}: {kept.reason}"
    for note in inventory.notes:
        yield f"note: {note}"


def done_lines(done: Sequence[Done]) -> Iterator[str]:
    """One line per removal with what became of it, then a count."""
    for item in done:
        reason = f": {item.reason}" if item.reason else ""
        yield f"  {item.status:<8} {item.removal.kind.value:<12} {item.removal.name}{reason}"
    removed = sum(1 for item in done if item.status in ("removed", "gone"))
    yield f"{removed} of {len(done)} removed"
