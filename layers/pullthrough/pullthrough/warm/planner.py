"""Planning a warm run: which image tags, what ECR already holds, and what fits the upstream's pull budget.

    expand     the warm list (or a manual selection): plain tags; tag patterns and latest-N by semantic version
               over the upstream's tags/list; default and per-image platforms (selection.py)
    decide     ECR first (DescribeImages; for what it holds, BatchGetImage and BatchCheckLayerAvailability), then a
               HEAD upstream, which Docker Hub does not count as a pull: already cached, moved, absent, or failed
               (decisions.py, verification.py)
    budget     a share of the remaining pulls the upstream reported on those HEADs; ECR's import of an index costs
               the index and every manifest it lists (ECR pulls them all, whatever platforms are wanted), learned
               from earlier imports or estimated from the index's size (cost.py); what does not fit is deferred
               (fitting.py, budget.py)
    open       the run in the ledger (every image, decided or pending) and its jobs on the warm queue (opening.py)

This module is the orchestration only: the Planner runs those stages in order, and `handle` (plan_warming), `preview`
(`pullthrough plan`) and `run_here` (`pullthrough warm`) run a Planner. Planning never GETs a manifest upstream
itself. `handle` first closes and reports any earlier run that can no longer complete (jobs in the dead-letter queue).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from pullthrough import config as config_module
from pullthrough import sources
from pullthrough.aws import ecr as aws_ecr
from pullthrough.aws.ledger import Verified
from pullthrough.config import Config, Rule
from pullthrough.env import PlanEnv, Settings, SettingsError
from pullthrough.errors import AwsError, PullthroughError
from pullthrough.observability import logger
from pullthrough.reporting.model import Report
from pullthrough.sources import ecs as ecs_source
from pullthrough.versions import Version, latest_versions
from pullthrough.warm.budget import Budget
from pullthrough.warm.cost import children_known, estimate_children
from pullthrough.warm.decisions import Decider
from pullthrough.warm.dry_run import dry_run_report
from pullthrough.warm.fitting import Fitting
from pullthrough.warm.ledger import ledger_for
from pullthrough.warm.members import MemberRuns, hub_config, plan_members
from pullthrough.warm.opening import ledger_entries, open_run, queue_jobs, remember, report_whole_run
from pullthrough.warm.overlap import InFlight, RunsAround, in_flight, in_flight_notes, leave_in_flight
from pullthrough.warm.plan import Candidate, Decided, Expanded, Plan, Wanted
from pullthrough.warm.ports import Allowances, AwsEcr, EcrTags, EcrView, Memory, Upstream, UpstreamFor
from pullthrough.warm.request import WarmRequest
from pullthrough.warm.run import RunHeader, WarmRun, account_of, notes_with_moved_tag, publish, warm_report
from pullthrough.warm.selection import Selection, TagChoice, choose_tags, select_tags
from pullthrough.warm.shards import Opening, handle_shards, is_shard_batch, open_sharded, split
from pullthrough.warm.upstream_clients import kept_upstream_client
from pullthrough.warm.warmer import Warmer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Concurrent ECR and upstream calls while deciding; HEADs are free on Docker Hub but not unlimited. One HEAD per tag
# is most of a large plan's time against a real upstream (tens of milliseconds each), so they overlap this much.
PLAN_WORKERS = 16


@dataclass
class Planner:
    """Expands a request into candidates, decides each one, and fits the jobs into the budget."""

    config: Config
    ecr: EcrView
    upstream_for: UpstreamFor
    memory: Memory | None = None
    allowances: Allowances | None = None  # None: this run's own share, shared with no other run (the CLI, tests)
    in_flight: Mapping[str, InFlight] = field(default_factory=dict)  # images (by key) open runs are warming
    keeps_clients: bool = False  # the clients outlive the plan (kept_upstream_client): not closed at its end
    ecs: sources.EcsReader | None = None  # reads the ecs sources (plan time); None: they yield nothing
    workers: int = PLAN_WORKERS
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _clients: dict[str, Upstream | PullthroughError | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _learned: list[Verified] = field(default_factory=list)

    def plan(self, request: WarmRequest, run_id: str) -> Plan:
        """The whole plan for one run."""
        try:
            expanded = self.expand(request)
        except BaseException:
            self._close()
            raise
        return self.decide(expanded, run_id)

    def expand(self, request: WarmRequest) -> Expanded:
        """The image tags the request names, less those open runs are warming; decides nothing upstream or in ECR."""
        selection = Selection(self.config, self._upstream, self.ecs)
        targets, decided = selection.targets(request)
        candidates = leave_in_flight(selection.expand(targets, decided), self.in_flight, decided)
        return Expanded(candidates, decided, selection.notes + in_flight_notes(self.in_flight, decided))

    def decide(self, expanded: Expanded, run_id: str, drawer: str | None = None) -> Plan:
        """Decide the expanded candidates, fit their jobs into the budget (drawing as `drawer`: a plan shard's draw
        id, the run id by default) and close the clients."""
        budget = Budget(self.config.warm.budget_share)
        decided = list(expanded.decided)
        remembered: dict[tuple[str, str], Verified] = {}
        try:
            candidates = expanded.candidates
            remembered = self._recall(candidates)
            decider = Decider(
                self.ecr, self._upstream, budget, remembered, children_known(remembered), self.clock, self._learned
            )
            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                outcomes = decider.decide_all(candidates, pool)
        finally:
            self._close()
        wanted: list[Wanted] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Wanted):
                wanted.append(replace(outcome, order=index))
            else:
                decided.append(outcome)
        jobs, deferred, notes = Fitting(self.config, self.allowances, self.clock).draw(wanted, budget, run_id, drawer)
        notes = list(expanded.notes) + notes
        decided.extend(deferred)
        refreshing = any(j.action == "refresh" for j in jobs)
        notes = notes_with_moved_tag(notes, [d.item for d in decided], refreshing=refreshing)
        verified = remembering(self._learned, remembered)
        return Plan(run_id=run_id, jobs=tuple(jobs), decided=tuple(decided), notes=tuple(notes), verified=verified)

    def candidates(self, request: WarmRequest) -> tuple[list[Candidate], list[Decided]]:
        """The image tags the request names (tag patterns and latest-N expanded upstream), and the targets that
        failed to expand; decides nothing (`pullthrough status` looks at each itself). Closes its clients."""
        selection = Selection(self.config, self._upstream, self.ecs)
        try:
            targets, decided = selection.targets(request)
            return selection.expand(targets, decided), decided
        finally:
            self._close()

    def _upstream(self, rule: Rule) -> Upstream | None:
        """The rule's upstream client, made once per plan (a failure to make it is raised on every ask)."""
        with self._lock:
            if rule.prefix not in self._clients:
                try:
                    self._clients[rule.prefix] = self.upstream_for(rule)
                except PullthroughError as exc:
                    self._clients[rule.prefix] = exc
            found = self._clients[rule.prefix]
        if isinstance(found, PullthroughError):
            raise found
        return found

    def _close(self) -> None:
        if self.keeps_clients:
            return
        for client in self._clients.values():
            if client is not None and not isinstance(client, PullthroughError):
                client.close()

    def _recall(self, candidates: list[Candidate]) -> dict[tuple[str, str], Verified]:
        """What earlier runs verified of these tags; nothing when the memory cannot be read (all is verified then)."""
        if self.memory is None or not candidates:
            return {}
        try:
            return self.memory.remembered([(c.repository, c.tag) for c in candidates])
        except AwsError as exc:
            logger.warning(
                "earlier verifications could not be read: verifying every cached image", extra={"error": str(exc)}
            )
            return {}


def remembering(learned: Sequence[Verified], remembered: Mapping[tuple[str, str], Verified]) -> tuple[Verified, ...]:
    """What to remember: the memory is written a repository at a time (aws/ledger/verified.py), so each repository
    this plan learned something of keeps the tags it recalled, with what it learned in their place."""
    repositories = {v.repository for v in learned}
    new = {v.key for v in learned}
    kept = [v for key, v in remembered.items() if v.repository in repositories and key not in new]
    return (*learned, *kept)


# --- plan_warming ----------------------------------------------------------------------------------------------------


class RunSummary(BaseModel):
    """What plan_warming did: the run it opened, and the earlier runs it closed."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    trigger: str
    planned: int
    queued: int
    decided: dict[str, int]
    closed_runs: tuple[str, ...] = ()
    dry_run: bool = False
    shards: int = 0  # plan shards sent (0: planned here, in one invocation)
    member_runs: tuple[str, ...] = ()  # the organisation's members' runs, one per account and region (members.py)


def new_run_id(now: datetime) -> str:
    """`warm-2026-11-23T10-00-00Z-1a2b3c`: sortable, readable, unique."""
    return f"warm-{now.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}-{secrets.token_hex(3)}"


def planner_for(config: Config, settings: Settings, around: RunsAround | None = None) -> Planner:
    """A Planner against ECR and the upstreams the settings point at (what `around` tells of other runs: what
    earlier ones verified, what open runs hold and drew)."""
    around = around or RunsAround()
    return Planner(
        config,
        AwsEcr(settings.region),
        lambda rule: kept_upstream_client(rule, settings, connections=PLAN_WORKERS),
        memory=around.memory,
        allowances=around.allowances,
        in_flight=around.in_flight,
        keeps_clients=True,
        ecs=ecs_source.reader_in(config, settings.region),
    )


def make_plan(
    config: Config, settings: Settings, request: WarmRequest, run_id: str, around: RunsAround | None = None
) -> Plan:
    """Plan one run, every shard in this process (the CLI, a dry run)."""
    return planner_for(config, settings, around).plan(request, run_id)


def handle(event: dict[str, Any], context: LambdaContext, env: PlanEnv) -> dict[str, Any]:
    """plan_warming: close runs that cannot complete, plan a new run, record it in the ledger and queue its jobs; or,
    invoked by the PlanShards queue, plan the shards of a run (shards.py).

    A run with nothing to queue is reported here, from the plan; the ledger keeps its META only (closed, reported).
    A list of more than SHARD_REPOSITORIES repositories is opened here and planned in shards.
    """
    if is_shard_batch(event):
        return handle_shards(event, env, planner_for)
    config = hub_config(config_module.load(env.config_path))  # the members' images are the hub's too
    request = WarmRequest.from_event(event)
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    logger.append_keys(run_id=run_id)
    account_of(env)  # fails before any work when reports could not name the account
    if env.dry_run:
        # What a run would do now: around the open runs and within what they drew, drawing nothing itself.
        looked = ledger_for(env) if env.ledger_table else None
        plan = make_plan(config, env, request, run_id, RunsAround.looking(looked, recall=False))
        publish(dry_run_report(plan, config, env, request.trigger, started), config.notifications, env)
        return _summary(plan, request, queued=0, dry_run=True)
    if not env.queue_url:
        raise SettingsError("WARM_QUEUE_URL is not set: it names the warm job queue (template.yaml: WarmQueue)")
    ledger = ledger_for(env)
    run = WarmRun(ledger, env, lambda: config)
    closed = tuple(run.sweep(started))
    summary = _plan_own(config, env, run, request, run_id, started)
    members = MemberRuns(env, run, request, started, lambda member: planner_for(member, env), new_run_id)
    member_runs = tuple(plan_members(config, members))
    return {**summary, "closed_runs": list(closed), "member_runs": list(member_runs)}


def _plan_own(
    config: Config, env: PlanEnv, run: WarmRun, request: WarmRequest, run_id: str, started: datetime
) -> dict[str, Any]:
    """The hub's own run (its warm list): opened in shards, or planned here and queued, or reported whole."""
    planner = planner_for(config, env, RunsAround.of(run.ledger))
    expanded = planner.expand(request)
    shards = split(expanded.candidates)
    if len(shards) > 1:
        sent = open_sharded(run, env, config, Opening(run_id, request.trigger, started, expanded), shards)
        logger.info("warm run opened in shards", extra={"shards": sent, "trigger": request.trigger})
        planned = len(expanded.decided) + len(expanded.candidates)
        summary = RunSummary(run_id=run_id, trigger=request.trigger, planned=planned, queued=0, decided={})
        return summary.model_copy(update={"shards": sent}).model_dump(mode="json")
    plan = planner.decide(expanded, run_id)
    remember(run.ledger, plan.verified)
    queued = 0
    if plan.jobs:
        open_run(run, plan, config, request.trigger, started)
        queued = queue_jobs(env.queue_url, plan)
    else:
        report_whole_run(run, plan, config, request.trigger, started)
    logger.info(
        "warm run planned" if plan.jobs else "warm run planned: nothing to queue",
        extra={"planned": plan.planned, "queued": queued, "trigger": request.trigger},
    )
    return _summary(plan, request, queued=queued)


def preview(config: Config, settings: Settings, request: WarmRequest) -> tuple[Plan, Report]:
    """What a warm run would do now, writing nothing (`pullthrough plan`): with a ledger (settings.ledger_table) it
    recalls verified images, leaves images open runs are warming to them and reads, never draws, their allowances."""
    settings = _with_account(settings)
    started = datetime.now(UTC)
    looked = ledger_for(settings) if settings.ledger_table else None
    plan = make_plan(config, settings, request, new_run_id(started), RunsAround.looking(looked, recall=True))
    return plan, dry_run_report(plan, config, settings, request.trigger, started)


def run_here(config: Config, settings: Settings, request: WarmRequest, *, dry_run: bool = False) -> Report:
    """Plan and warm in this process, without queue or ledger (the CLI): the same decisions and outcomes, one report."""
    settings = _with_account(settings)
    started = datetime.now(UTC)
    plan = make_plan(config, settings, request, new_run_id(started))
    if dry_run:
        return dry_run_report(plan, config, settings, request.trigger, started)
    worker = Warmer(settings)
    items = [d.item for d in plan.decided]
    try:
        for job in plan.jobs:
            items.append(worker.until_done(job))
            logger.info(f"{job.subject}: {items[-1].outcome.label}", extra=items[-1].to_log())
    finally:
        worker.close()
    return warm_report(RunHeader(plan.run_id, request.trigger, config.stack, started, plan.notes), items, settings)


def _with_account(settings: Settings) -> Settings:
    """The settings with the account the CLI's credentials are in, when ACCOUNT_ID does not name it."""
    if settings.account_id:
        return settings
    return settings.model_copy(update={"account_id": aws_ecr.registry_account(settings.region)})


def _summary(
    plan: Plan, request: WarmRequest, *, queued: int, closed: tuple[str, ...] = (), dry_run: bool = False
) -> dict[str, Any]:
    """plan_warming's answer (RunSummary, JSON-ready)."""
    counts: dict[str, int] = {}
    for decided in plan.decided:
        counts[decided.item.outcome.value] = counts.get(decided.item.outcome.value, 0) + 1
    summary = RunSummary(
        run_id=plan.run_id,
        trigger=request.trigger,
        planned=plan.planned,
        queued=queued,
        decided=counts,
        closed_runs=closed,
        dry_run=dry_run,
    )
    return summary.model_dump(mode="json")


# What cli/, prune/, bench/ and tests import from here: the planner's own names, and those of the stages it runs.
__all__ = [
    "Allowances",
    "AwsEcr",
    "Candidate",
    "Decided",
    "EcrTags",
    "EcrView",
    "InFlight",
    "Memory",
    "Plan",
    "Planner",
    "RunSummary",
    "RunsAround",
    "TagChoice",
    "Upstream",
    "Version",
    "Wanted",
    "WarmRequest",
    "choose_tags",
    "dry_run_report",
    "estimate_children",
    "handle",
    "in_flight",
    "latest_versions",
    "ledger_entries",
    "make_plan",
    "new_run_id",
    "planner_for",
    "preview",
    "run_here",
    "select_tags",
]
