"""`pullthrough warm [--image REF] [--dry-run]`: warm the warm list through ECR from here, and print the report."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from pullthrough.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Command,
    Io,
    dry_run_option,
    emit,
    environment,
    image_option,
)
from pullthrough.cli.documents import WarmDocument, dump
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Status
from pullthrough.warm import planner


def add_warm_commands(commands: Any) -> None:
    """`pullthrough warm [--image REF]`."""
    Command(
        "warm",
        warm_command,
        help="warm the warm list (or some images) through ECR from here, and print the report",
        description=(
            "Plans and warms in this process with your AWS credentials: the same decisions (what ECR holds, the "
            "upstream pull budget) and outcomes as a scheduled run, without the queue and the ledger. To start a "
            "run of the deployed stack instead: aws lambda invoke --function-name <the PlanWarmingFunctionName "
            'output> --cli-binary-format raw-in-base64-out --payload \'{"images": ["nginx:1.27"]}\' out.json'
        ),
        options=(
            image_option("warm only this image (repeatable): name:tag, or a name from warm.images for all its tags"),
            dry_run_option("decide and report, pull nothing"),
        ),
    ).register(commands)


def warm_command(args: argparse.Namespace, io: Io) -> int:
    """Warm here and print one line per image; exit 1 when any image failed."""
    settings, config = environment(args)
    request = planner.WarmRequest(trigger="pullthrough warm (CLI)", images=tuple(args.image or ()))
    io.progress("planning the warm run (asks ECR and the upstreams)..." if not args.dry_run else "planning...")
    report = planner.run_here(config, settings, request, dry_run=args.dry_run)
    code = EXIT_FINDINGS if report.status is Status.FAILED else EXIT_OK
    emit(io, args, dump(WarmDocument(report=report, exit_code=code)), report_lines(report))
    return code


def report_lines(report: Report) -> Iterator[str]:
    """The warm report as lines for people: the headline, one line per image, the totals, the notes."""
    yield report.headline()
    for item in report.items:
        yield f"  {item.outcome.label:<14} {item.subject}" + (f": {item.reason}" if item.reason else "")
        if item.fix and item.outcome.severity.value != "ok":
            yield f"  {'':<14} fix: {item.fix}"
    totals = report.totals
    yield f"{totals.bytes_moved} bytes moved, {totals.pulls_spent} upstream pulls spent"
    for note in report.notes:
        yield f"note: {note}"
