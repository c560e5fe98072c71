"""`pullthrough status`: each rule, each warm-list image and the open or recent runs, as the account has them now.

Reads only (survey.py lists the calls). Exit 1 when anything needs the reader: a rule missing or invalid, a secret
missing or expiring, an image ECR lacks, whose upstream tag moved, or whose last run failed.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pullthrough.cli import survey
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Command, Io, emit, environment, rules_only_option
from pullthrough.cli.deployment import deployed
from pullthrough.cli.documents import ImageStatusDoc, RuleStatusDoc, RunStatusDoc, StatusDocument, dump
from pullthrough.warm.runs_view import RunsView


def add_status_commands(commands: Any) -> None:
    """`pullthrough status [--rules-only]`."""
    Command(
        "status",
        status_command,
        help="each rule (valid, secret, expiry), warm-list image (digests, pulls, last outcome) and recent run",
        description=(
            "Per rule: whether ECR has it and validates it (ValidatePullThroughCacheRule), its secret and the "
            "token's expiry. Per warm-list image: the digest ECR holds and the upstream's (a HEAD, not a pull), when "
            "ECR imported it, lastRecordedPullTime, the platforms the ledger remembers verified, and the last run's "
            f"outcome. Runs open or started in the last {survey.RECENT.days} days, from the ledger. Exit status 1 "
            "when anything needs attention."
        ),
        options=(rules_only_option("the rules only: no image or run is looked at"),),
        stack=True,
    ).register(commands)


def status_command(args: argparse.Namespace, io: Io) -> int:
    """Read and print the status; exit 1 when any rule or image has a problem."""
    settings, config = environment(args)
    settings, notes = deployed(settings, args)
    now = datetime.now(UTC)
    io.progress(f"reading {len(config.rules)} rule(s) from ECR in {settings.region}...")
    rules = survey.rules_status(config, settings, now.date())
    images: list[ImageStatusDoc] = []
    runs: list[RunStatusDoc] = []
    if not args.rules_only:
        ledger = RunsView.of(settings)
        states = survey.runs_status(ledger, now) if ledger else []
        open_ids = ledger.open_run_ids() if ledger else set()
        runs = [survey.run_document(state, open_ids) for state in states]
        images = survey.images_status(config, settings, ledger, states, io.progress)
    problems = sum(len(rule.problems) for rule in rules) + sum(len(image.problems) for image in images)
    code = EXIT_FINDINGS if problems else EXIT_OK
    document = StatusDocument(
        stack=config.stack,
        region=settings.region,
        account=settings.account_id or "",
        rules=rules,
        images=images,
        runs=runs,
        notes=notes,
        exit_code=code,
    )
    emit(io, args, dump(document), status_lines(document, args.rules_only))
    return code


def status_lines(document: StatusDocument, rules_only: bool) -> Iterator[str]:
    """The status for people: a section per rules, images and runs; problems indented under their subject."""
    yield f"Rules ({len(document.rules)}):"
    for rule in document.rules:
        yield f"  {rule.prefix:<20} {_rule_state(rule)}"
        yield from (f"      ! {problem}" for problem in rule.problems)
    if not rules_only:
        yield f"Images ({len(document.images)}):"
        for image in document.images:
            yield f"  {image.subject}: {_image_state(image)}"
            yield from (f"      ! {problem}" for problem in image.problems)
        yield f"Runs ({len(document.runs)}, open or in the last {survey.RECENT.days} days):"
        for run in document.runs:
            counts = ", ".join(f"{count} {outcome.replace('_', ' ')}" for outcome, count in run.counts.items())
            state = "open" if run.open else run.status
            yield f"  {run.run_id} {state} {run.done}/{run.planned} ({counts or 'nothing counted'}): {run.trigger}"
    for note in document.notes:
        yield f"note: {note}"
    problems = sum(len(r.problems) for r in document.rules) + sum(len(i.problems) for i in document.images)
    yield "All good." if not problems else f"{problems} problem(s) need attention."


def _rule_state(rule: RuleStatusDoc) -> str:
    parts = ["in ECR" if rule.in_account else "MISSING from ECR"]
    if rule.valid is not None:
        parts.append("valid" if rule.valid else "INVALID")
    if rule.secret:
        secret = rule.secret if rule.secret_exists else f"{rule.secret} (missing)"
        parts.append(f"secret {secret}")
        if rule.expires:
            parts.append(f"expires {rule.expires} ({rule.days_left} days)")
    return ", ".join(parts)


def _image_state(image: ImageStatusDoc) -> str:
    parts = [f"ECR {_short(image.ecr_digest) or 'lacks it'}"]
    if image.upstream_digest:
        parts.append(f"upstream {_short(image.upstream_digest)}" + (" (current)" if image.current else ""))
    if image.pushed_at:
        parts.append(f"imported {image.pushed_at[:19]}Z")
    if image.last_pulled:
        parts.append(f"last pulled {image.last_pulled[:10]}")
    if image.platforms_verified:
        parts.append(f"verified {','.join(image.platforms_verified)}")
    if image.last_outcome:
        parts.append(f"last run: {image.last_outcome.replace('_', ' ')}")
    return "; ".join(parts)


def _short(digest: str | None) -> str | None:
    return digest[:19] if digest else None
