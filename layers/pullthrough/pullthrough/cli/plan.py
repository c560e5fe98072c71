"""`pullthrough plan`: what a reconcile and a warm run would do against the account now, writing nothing.

Rules and templates: the reconcile's own dry run (rules.reconcile with a dry-run trigger: it reads ECR and the
ledger's ownership records, tests secrets upstream and asks ECR to validate, and makes no write call). Images: the
warm planner's preview (planner.preview: ECR, upstream HEADs and tag lists, the ledger read and never written).
Exit 1 when there is something to apply or act on, like `terraform plan -detailed-exitcode`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from pullthrough import rules
from pullthrough.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Command,
    Io,
    emit,
    environment,
    image_option,
    rules_only_option,
)
from pullthrough.cli.deployment import deployed
from pullthrough.cli.documents import PlanDocument, WarmImageDoc, WarmPlanDoc, dump
from pullthrough.cli.reconcile import findings, rule_changes, rules_lines
from pullthrough.reporting.model import Report
from pullthrough.warm import planner

_ACTIONS = {
    "already_cached": "keep",
    "deferred": "defer",
    "failed": "fail",
    "skipped": "skip",
}


def add_plan_commands(commands: Any) -> None:
    """`pullthrough plan [--image REF] [--rules-only]`."""
    Command(
        "plan",
        plan_command,
        help="what a reconcile and a warm run would do now (rules, templates, images, pull cost); writes nothing",
        description=(
            "Compares the config with the account: the rules and repository creation templates a reconcile would "
            "create, update, replace or delete (with the fields that differ), and the images a warm run would warm, "
            "refresh or defer (with the upstream pulls it would spend). Nothing is written: not ECR, not the "
            "ledger, not a queue. Exit status 1 when there is something to apply or act on."
        ),
        options=(
            image_option("plan warming only this image (repeatable), as warm does"),
            rules_only_option("plan the rules and templates only"),
        ),
        stack=True,
    ).register(commands)


def plan_command(args: argparse.Namespace, io: Io) -> int:
    """Plan the reconcile and the warm run; print both; exit 1 when either has work or a problem."""
    settings, config = environment(args)
    settings, notes = deployed(settings, args)
    settings = settings.model_copy(update={"dry_run": True})
    io.progress(f"planning {len(config.rules)} rule(s) against ECR in {settings.region}...")
    trigger = rules.Trigger(rules.TriggerKind.MANUAL, "pullthrough plan (CLI)", dry_run=True)
    rules_report, rules_plan = rules.reconcile(config, settings, trigger)
    changes = rule_changes(rules_plan, rules_report)
    warm: WarmPlanDoc | None = None
    warm_report: Report | None = None
    if not args.rules_only:
        io.progress("planning the warm run (ECR, upstream HEADs)...")
        request = planner.WarmRequest(trigger="pullthrough plan (CLI)", images=tuple(args.image or ()))
        warm_plan, warm_report = planner.preview(config, settings, request)
        warm = warm_document(warm_plan, warm_report)
    pending = sum(1 for c in changes if c.writes) + (
        sum(1 for image in warm.images if image.action in ("warm", "refresh", "complete")) if warm else 0
    )
    trouble = findings(rules_report) or (findings(warm_report) if warm_report else EXIT_OK)
    code = EXIT_FINDINGS if pending or trouble else EXIT_OK
    document = PlanDocument(
        stack=config.stack,
        region=settings.region,
        account=rules_report.account,
        rules=changes,
        warm=warm,
        changes=pending,
        notes=[*notes, *rules_report.notes],
        exit_code=code,
    )
    lines = plan_lines(rules_plan, rules_report, warm, pending, document.notes)
    emit(io, args, dump(document), lines)
    return code


def warm_document(plan: planner.Plan, report: Report) -> WarmPlanDoc:
    """Each image the warm run would look at: jobs with their action and cost, then the decided ones."""
    jobs = {job.subject: job for job in plan.jobs}
    images = []
    for item in report.items:
        job = jobs.get(item.subject)
        details = item.details
        images.append(
            WarmImageDoc(
                subject=item.subject,
                action=job.action if job else _ACTIONS.get(item.outcome.value, "skip"),
                outcome=item.outcome.value,
                cost=job.cost if job else 0,
                repository=details.repository,
                digest=details.digest,
                previous_digest=details.previous_digest,
                platforms=list(details.platforms or ()),
                reason=item.reason,
                fix=item.fix,
                source=details.source,
            )
        )
    return WarmPlanDoc(images=images, pulls=sum(job.cost for job in plan.jobs), notes=list(report.notes))


def plan_lines(
    rules_plan: Any, rules_report: Report, warm: WarmPlanDoc | None, pending: int, notes: list[str]
) -> Iterator[str]:
    """The plan for people: rules and templates, then images, then what it comes to."""
    writes = [change for change in rules_plan.changes() if change.action.writes]
    yield f"Rules and templates: {len(writes)} to change" + ("" if writes else " (the account matches the config)")
    yield from rules_lines(rules_plan, rules_report)
    if warm is not None:
        todo = [image for image in warm.images if image.action in ("warm", "refresh", "complete")]
        yield f"Images: {len(todo)} to pull through ECR, {warm.pulls} upstream pull(s)"
        for image in warm.images:
            yield f"  {image.action:<8} {image.subject}{_image_detail(image)}"
            if image.fix and image.action in ("fail", "defer", "skip"):
                yield f"  {'':<8} fix: {image.fix}"
        notes = [*notes, *warm.notes]
    for note in notes:
        yield f"note: {note}"
    yield _next_step(len(writes), pending - len(writes))


def _image_detail(image: WarmImageDoc) -> str:
    """A job's cost (and, for a refresh, the digests); a decided image's reason."""
    source = f" [from {image.source}]" if image.source else ""
    if image.action not in ("warm", "refresh", "complete"):
        return source + (f": {image.reason}" if image.reason else "")
    moved = f": {image.previous_digest[:19]} -> {(image.digest or '?')[:19]}" if image.previous_digest else ""
    return f"{source} ({image.cost} pull(s)){moved}"


def _next_step(rule_writes: int, images: int) -> str:
    if not rule_writes and not images:
        return "Nothing to do."
    steps = [
        *([f"pullthrough reconcile ({rule_writes} rule/template change(s))"] if rule_writes else []),
        *([f"pullthrough warm ({images} image(s))"] if images else []),
    ]
    return "To apply: " + "; then ".join(steps)
