"""One prune run (list, decide, delete or list dry, report) and the prune_images handler that runs it on schedule.

Separate from the decisions and the deletion: this is where the config, the sources and the report meet; the CLI's
`pullthrough prune` calls `run` with the operator's credentials, the function calls `handle`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pullthrough import config as config_module
from pullthrough.config import Config, Rule
from pullthrough.env import PruneEnv
from pullthrough.observability import logger
from pullthrough.prune.decisions import plan
from pullthrough.prune.deletion import execute
from pullthrough.prune.ecr import AwsEcr, Ecr
from pullthrough.prune.keeping import named_by_sources, protected
from pullthrough.reference import ROOT_PREFIX
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.publish import publish
from pullthrough.reporting.vocabulary import Kind, Outcome
from pullthrough.sources import EcsReader
from pullthrough.sources import ecs as ecs_source


@dataclass(frozen=True)
class RunInfo:
    """What names a prune run in its report: when it started, its id, what started it, where it ran."""

    now: datetime
    run_id: str
    trigger: str
    region: str
    account: str

    @classmethod
    def starting(cls, now: datetime, trigger: str, region: str, account: str) -> RunInfo:
        """A run starting `now`, with the id the function and the CLI both give it (prune-<UTC time>)."""
        return cls(now, f"prune-{now:%Y-%m-%dT%H-%M-%SZ}", trigger, region, account)


def managed_prefixes(config: Config) -> tuple[list[str], list[str]]:
    """The rule prefixes pruning works under, and the notes for those it leaves alone (a ROOT rule)."""
    prefixes = [rule.prefix for rule in config.rules if rule.prefix != ROOT_PREFIX]
    notes = [
        f"rule {rule.prefix}: its cache repositories are named after the upstream's own, so they cannot be told "
        "from the account's other repositories; prune leaves them alone"
        for rule in config.rules
        if rule.prefix == ROOT_PREFIX
    ]
    return prefixes, notes


def run(config: Config, ecr: Ecr, info: RunInfo, *, ecs: EcsReader | None = None) -> Report:
    """One prune run over the config's prefixes: list, decide, delete (or, dry, list what would go), report.

    `ecs` reads the task definitions an ecs source names (`sources.ecs.reader_in`); without it such a run deletes
    nothing."""
    if config.prune is None:
        raise ValueError("the config has no prune section")
    prune = config.prune
    prefixes, notes = managed_prefixes(config)
    named, unreadable = named_by_sources(config, ecs) if config.warm.sources else ([], None)
    if unreadable is not None:
        # Never delete what a source might still name: the run looks at nothing and says why.
        refusal = ReportItem(
            subject="warm.sources",
            outcome=Outcome.SKIPPED,
            reason=f"nothing was pruned: {unreadable}",
            fix="fix the sources the reason names (or remove them); prune runs again on its schedule",
        )
        return _report(config, [refusal], [], info)
    held = {name: ecr.images(name) for name in ecr.repositories(prefixes)}
    decided = plan(
        held,
        protected(config, held, named),
        now=info.now,
        unused_for_days=prune.unused_for_days,
        max_deletions=prune.max_deletions,
    )
    outcome = execute(decided, ecr, _rule_of(config.rules), dry_run=prune.dry_run)
    notes += outcome.notes
    notes.append(
        f"{decided.fresh:,} image(s) in {len(held):,} repositories were pulled within {prune.unused_for_days} day(s) "
        "(ECR's lastRecordedPullTime, refreshed about once a day) and stay; sizes are DescribeImages' "
        "imageSizeInBytes, and layers other images share are not freed"
    )
    logger.info("prune decided", extra={"delete": len(decided.delete), "kept": len(decided.kept)})
    return _report(config, outcome.items, notes, info)


def _report(config: Config, items: Sequence[ReportItem], notes: Sequence[str], info: RunInfo) -> Report:
    """The run's one report, whichever way the run ended."""
    return Report(
        kind=Kind.PRUNE,
        stack=config.stack,
        region=info.region,
        account=info.account,
        run_id=info.run_id,
        trigger=info.trigger,
        started=info.now,
        finished=datetime.now(UTC),
        dry_run=config.prune.dry_run if config.prune else True,
        items=tuple(items),
        notes=tuple(notes[:50]),
    )


def handle(event: Any, context: Any, env: PruneEnv) -> dict[str, Any]:
    """prune_images: on its schedule (or invoked by hand, `{"dry_run": true}` to only look), prune and report once."""
    info = RunInfo.starting(datetime.now(UTC), _trigger(event), env.region, env.account_id)
    logger.append_keys(run_id=info.run_id)
    config = config_module.load(env.config_path)
    if config.prune is None:
        logger.info("the config has no prune section: nothing is ever deleted")
        return {"run_id": info.run_id, "pruned": 0, "disabled": True}
    forced_dry = isinstance(event, dict) and event.get("dry_run") is True
    if forced_dry or env.dry_run:
        config = config.model_copy(update={"prune": config.prune.model_copy(update={"dry_run": True})})
    report = run(config, AwsEcr(env.region), info, ecs=ecs_source.reader_in(config, env.region))
    # Sent as a warm run's report is: an SNS error fails the invocation; successes are not logged one by one.
    publish(report, env.topic_arn, config.notifications, strict=True, log_successes=False)
    counts = {outcome.value: count for outcome, count in report.counts.items()}
    return {
        "run_id": info.run_id,
        "dry_run": report.dry_run,
        "counts": counts,
        "bytes_freed": report.totals.bytes_freed or 0,
    }


def _trigger(event: Any) -> str:
    if isinstance(event, dict) and event.get("trigger") == "schedule":
        return f"schedule ({event.get('scheduled_time') or 'prune.schedule'})"
    return "invoked by hand"


def _rule_of(rules: Sequence[Rule]) -> Callable[[str], str | None]:
    def rule(repository: str) -> str | None:
        return next((r.prefix for r in rules if repository.startswith(r.prefix + "/")), None)

    return rule


__all__ = ["RunInfo", "handle", "managed_prefixes", "run"]
