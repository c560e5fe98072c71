"""`pullthrough prune [--dry-run]`: prune the cache from here, with the config's prune section, and print the report.

The same run as the deployed prune_images function (pullthrough.prune.run): cached images under the rules'
prefixes that nobody pulled for `prune.unused_for_days` and nothing names are deleted, at most `max_deletions`, the
oldest first. `prune.dry_run` (the default) or --dry-run only lists them, with sizes. The report is printed, not
published to SNS.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pullthrough import prune
from pullthrough.aws import ecr
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Command, Io, dry_run_option, emit, environment
from pullthrough.cli.documents import PruneDocument, dump
from pullthrough.errors import PullthroughError
from pullthrough.reporting.facts import human_bytes
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Status
from pullthrough.sources import ecs as ecs_source


def add_prune_commands(commands: Any) -> None:
    """`pullthrough prune [--dry-run]`."""
    Command(
        "prune",
        prune_command,
        help="delete cached images nobody pulled for prune.unused_for_days (or, dry, list them), from here",
        description=(
            "Runs the prune the deployed stack runs on prune.schedule, with your AWS credentials: images under the "
            "rules' prefixes unpulled for prune.unused_for_days, and named by no warm-list entry, warm.sources file "
            "or prune.keep, are deleted (at most prune.max_deletions, the oldest first). prune.dry_run (the default) "
            "or --dry-run lists them with their sizes and deletes nothing."
        ),
        options=(dry_run_option("list what would be deleted; delete nothing"),),
    ).register(commands)


def prune_command(args: argparse.Namespace, io: Io) -> int:
    """Prune (or list, dry) and print one line per image; exit 1 when a deletion failed or nothing could be read."""
    settings, config = environment(args)
    if config.prune is None:
        raise PullthroughError(
            "the config has no prune section, so nothing is ever pruned; add one, e.g. prune: {unused_for_days: 30} "
            "(a dry run until you set dry_run: false)"
        )
    if args.dry_run:
        config = config.model_copy(update={"prune": config.prune.model_copy(update={"dry_run": True})})
    dry = config.prune is not None and config.prune.dry_run
    io.progress(f"{'listing (dry run)' if dry else 'pruning'} unused images under the rules' prefixes...")
    now = datetime.now(UTC)
    info = prune.RunInfo.starting(
        now, "pullthrough prune (CLI)", settings.region, ecr.registry_account(settings.region)
    )
    report = prune.run(config, prune.AwsEcr(settings.region), info, ecs=ecs_source.reader_in(config, settings.region))
    code = EXIT_FINDINGS if report.status is not Status.OK else EXIT_OK
    emit(io, args, dump(PruneDocument(dry_run=report.dry_run, report=report, exit_code=code)), prune_lines(report))
    return code


def prune_lines(report: Report) -> Iterator[str]:
    """The prune report as lines for people: the headline, one line per image, what goes in bytes, the notes."""
    yield report.headline()
    for item in report.items:
        size = f" ({human_bytes(item.details.size)})" if item.details.size else ""
        yield f"  {item.outcome.label:<12} {item.subject}{size}" + (f": {item.reason}" if item.reason else "")
    freed = human_bytes(report.totals.bytes_freed or 0)
    yield f"{freed} {'would be freed' if report.dry_run else 'freed'}"
    for note in report.notes:
        yield f"note: {note}"
