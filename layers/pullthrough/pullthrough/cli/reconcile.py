"""`pullthrough reconcile [--dry-run]`: reconcile ECR's rules and templates with the config, from here.

The same run as the deployed reconcile_rules function (rules.reconcile: plan, credentials gate, apply, validate,
the event that starts warming), made with the operator's AWS credentials. It records ownership in the stack's
ledger table, so it refuses to write without one: rules it created unrecorded would count as foreign afterwards.
The report is printed, not published to SNS.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from pullthrough import rules
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Command, Io, dry_run_option, emit, environment
from pullthrough.cli.deployment import deployed
from pullthrough.cli.documents import ChangeDoc, ReconcileDocument, dump
from pullthrough.errors import PullthroughError
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Status
from pullthrough.rules import Plan


def add_reconcile_commands(commands: Any) -> None:
    """`pullthrough reconcile [--dry-run]`."""
    Command(
        "reconcile",
        reconcile_command,
        help="create, update, replace or delete ECR's rules and templates to match the config, from here",
        description=(
            "Runs the reconcile the deployed stack runs after a deploy, with your AWS credentials: rules and "
            "repository creation templates Pullthrough owns are made to match the config (ownership is read from and "
            "recorded in the stack's ledger table), each secret is tested upstream before a rule points at it, and "
            "ECR validates every rule with credentials. --dry-run plans, checks and validates, and writes nothing."
        ),
        options=(dry_run_option("plan, check and validate; write nothing"),),
        stack=True,
    ).register(commands)


def reconcile_command(args: argparse.Namespace, io: Io) -> int:
    """Reconcile (or plan, with --dry-run) and print each rule's and template's outcome; 1 when any needs action."""
    settings, config = environment(args)
    settings, notes = deployed(settings, args)
    if not args.dry_run and not settings.ledger_table:
        raise PullthroughError(
            f"{notes[0]}. Without it ownership cannot be recorded: rules created now would count as not "
            "Pullthrough's afterwards. Use --dry-run to see the plan"
        )
    settings = settings.model_copy(update={"dry_run": args.dry_run})
    verb = "planning (dry run)" if args.dry_run else "reconciling"
    io.progress(f"{verb} {len(config.rules)} rule(s) against ECR in {settings.region}...")
    trigger = rules.Trigger(rules.TriggerKind.MANUAL, "pullthrough reconcile (CLI)", dry_run=args.dry_run)
    report, plan = rules.reconcile(config, settings, trigger)
    changes = rule_changes(plan, report)
    writes = sum(1 for change in changes if change.writes)
    code = findings(report) or (EXIT_FINDINGS if args.dry_run and writes else EXIT_OK)
    document = ReconcileDocument(dry_run=args.dry_run, rules=changes, changes=writes, report=report, exit_code=code)
    emit(io, args, dump(document), reconcile_lines(plan, report, notes))
    return code


def findings(report: Report) -> int:
    """EXIT_FINDINGS when any item needs the reader (failed, invalid, conflict, skipped), else EXIT_OK."""
    return EXIT_FINDINGS if report.status is not Status.OK else EXIT_OK


def rule_changes(plan: Plan, report: Report) -> list[ChangeDoc]:
    """The plan's changes with the report's verdict on each (outcome, validation, fix)."""
    items = {item.subject: item for item in report.items}
    documents = []
    for change in plan.changes():
        item = items.get(f"{change.kind.value} {change.prefix}")
        documents.append(
            ChangeDoc(
                kind="rule" if change.kind.value == "rule" else "template",
                prefix=change.prefix,
                action=change.action.value,
                writes=change.action.writes,
                differences=list(change.differences),
                reason=change.reason or None,
                outcome=item.outcome.value if item else None,
                valid=item.details.valid if item else None,
                fix=item.fix if item else None,
            )
        )
    return documents


def rules_lines(plan: Plan, report: Report) -> Iterator[str]:
    """One line per rule and template (the plan's own wording), then the report's verdict where it adds one."""
    items = {item.subject: item for item in report.items}
    for change in plan.changes():
        item = items.get(f"{change.kind.value} {change.prefix}")
        yield f"  {change.line()}"
        if item is None:
            continue
        if item.details.valid is not None:
            yield f"      ECR validation: {'valid' if item.details.valid else 'INVALID'}"
        if item.severity.value != "ok":
            yield f"      {item.outcome.label}: {item.reason}" if item.reason else f"      {item.outcome.label}"
            if item.fix:
                yield f"      fix: {item.fix}"


def reconcile_lines(plan: Plan, report: Report, notes: list[str]) -> Iterator[str]:
    yield report.headline()
    yield from rules_lines(plan, report)
    for note in [*notes, *report.notes]:
        yield f"note: {note}"
