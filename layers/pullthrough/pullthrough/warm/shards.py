"""Planning a large warm list in shards, by repository, fanned out over plan_warming invocations through SQS.

    coordinator  the invocation the schedule or the "rules reconciled" event starts: expands the list, opens the run
                 (META holds every image in `planned` and the shard count; one SHARD# item per shard names its
                 images), and sends one PlanShards message per shard: its repositories and their candidates
    shard        one SQS record (BatchSize 1): decides its repositories (ECR, HEADs upstream), draws what its jobs
                 cost from the shared allowance as its own drawer (budget.draw_id: two shards cannot spend the same
                 pulls), remembers what it verified, creates each image's item once with its count (Ledger.add_entries),
                 queues its jobs, records itself done, and closes the run when every image has an outcome
    close        exactly once, whoever brings `done` to `planned` (a shard with nothing to queue, or a warm job);
                 a shard that fails every delivery goes to the PlanShards dead-letter queue, and the sweep closes its
                 run at the deadline with the shard's images failed as not planned (run.py, Ledger.jobs)

The numbers, and why (issue 17; measured figures in /work/wt/plan-scale.md):
- SHARD_REPOSITORIES = 100. A shard asks Docker Hub's token realm once per 50 repositories (one token with repeated
  scopes, registry/auth.py), and cannot share a token with another invocation (a token is a secret: never in a
  queue message), so a shard is a multiple of 50 repositories: a smaller one asks more tokens per 50 repositories.
  Where a hop pays (measured in the sandbox, load average 4 to 8; /work/wt/plan-scale.md): a shard costs the
  coordinator (about 0.6 s), one queue hop and about ten fixed AWS calls (run and allowance reads, transactions,
  its secret). A first run of 1,000 images took 12.7 s in one invocation and 0.6 + 10.9 s as two shards of 50
  repositories; but a repeat run (every 6 hours: the common case) costs 0.107 AWS calls per image in one
  invocation against 0.130 as two shards. So a list of up to 100 repositories stays one invocation. Lambda's SQS
  scaling (below) also favours few shards: 10,000 images run as 10 shards in two waves of five (33 s as Lambda
  runs it in the sandbox), where 20 shards of 50 repositories take three waves (5, 10, 5).
- SHARD_IMAGES = 1,000: a message of about 150 KB (SQS takes 256 KiB).
- template.yaml's PlanWarmingShards MaximumConcurrency = 10 (shards decided at once). Lambda starts an SQS event
  source at five concurrent batches and adds up to 300 a minute (Lambda guide, "Configuring scaling behavior for SQS
  event source mappings"), so the first wave is five whatever the cap. What bounds the cap:
  - the shared pull allowance: every shard draws from one BUDGET item with a versioned write (budget.py), and the
    shards of a wave finish deciding at about the same time; a draw overtaken by a sibling is tried again, up to
    fitting.DRAW_ATTEMPTS (10, kept equal to this cap, so a wave's shards can all be overtaken once each and still
    draw). DynamoDB itself takes 1,000 write units a second on one partition (DynamoDB guide, partitions): ten
    small writes are nothing to it; the versions are the bound.
  - the upstream: each shard HEADs with PLAN_WORKERS (16) connections, so at most 160 HEADs are in flight. Docker
    Hub counts no HEAD as a pull, but its abuse rate limit applies to every request, per IPv4 address or IPv6 /64,
    "in the order of thousands of requests per minute" (Docker docs, Docker Hub usage and limits). A first run of
    10,000 images is 10,000 HEADs: from one egress address (a NAT gateway) that is minutes of HEADs at that limit,
    whatever the sharding. A repeat run HEADs only the tags due for ECR's daily re-check.
  - Lambda: each shard is one concurrent execution of the account's (default 1,000) shared with warm_images; 10 is
    far inside it. SQS: 10 messages for 10,000 images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from pullthrough import config as config_module
from pullthrough.aws import queue
from pullthrough.aws.ledger import ShardRecord
from pullthrough.config import Config
from pullthrough.env import PlanEnv
from pullthrough.observability import logger
from pullthrough.reference import ImageReference
from pullthrough.warm import opening as opening_module
from pullthrough.warm.budget import draw_id
from pullthrough.warm.ledger import ledger_for
from pullthrough.warm.opening import DRAIN_SECONDS_PER_JOB, STALE_AFTER, done_entries, ledger_entries, remember
from pullthrough.warm.overlap import RunsAround
from pullthrough.warm.plan import Candidate, Expanded
from pullthrough.warm.run import WarmRun

if TYPE_CHECKING:
    from pullthrough.warm.planner import Planner

# Repositories one plan shard decides (the module's docstring says why 100).
SHARD_REPOSITORIES = 100
# ...and at most this many images, so a shard's SQS message (256 KiB at most) holds its candidates: about 150 bytes
# each. A repository with more tags than this is a shard of its own.
SHARD_IMAGES = 1000
# template.yaml's PlanShardsQueue: each shard is delivered up to this many times, each hidden this long (six times
# PlanWarmingFunction's Timeout), before the dead-letter queue; a sharded run's deadline leaves it all that time.
SHARD_RECEIVES = 3
SHARD_VISIBILITY = timedelta(seconds=1800)

PlannerFor = Callable[[Config, PlanEnv, RunsAround], "Planner"]


def split(candidates: Sequence[Candidate]) -> list[list[Candidate]]:
    """The candidates in shards of whole repositories: up to SHARD_REPOSITORIES and SHARD_IMAGES each, in order."""
    by_repository: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_repository.setdefault(c.repository, []).append(c)
    shards: list[list[Candidate]] = []
    current: list[Candidate] = []
    repositories = 0
    for tags in by_repository.values():
        if current and (repositories >= SHARD_REPOSITORIES or len(current) + len(tags) > SHARD_IMAGES):
            shards.append(current)
            current, repositories = [], 0
        current += tags
        repositories += 1
    if current:
        shards.append(current)
    return shards


class ShardMessage(BaseModel):
    """A PlanShards message: the run, the shard's number, and its candidates (rule prefix, domain, path, tag, pinned
    digest, cache repository, platforms, source), compact so a shard of SHARD_IMAGES fits one SQS message."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    index: int
    images: tuple[tuple[str, str, str, str, str | None, str, tuple[str, ...], str | None], ...]

    @classmethod
    def of(cls, run_id: str, index: int, candidates: Sequence[Candidate]) -> ShardMessage:
        images = tuple(
            (c.rule.prefix, c.reference.domain, c.reference.path, c.tag, c.reference.digest, c.repository, *extra)
            for c in candidates
            for extra in [(c.platforms, c.source)]
        )
        return cls(run_id=run_id, index=index, images=images)

    def candidates(self, config: Config) -> list[Candidate]:
        """The shard's candidates with the rules of `config` (the one the coordinator planned with)."""
        rules = {rule.prefix: rule for rule in config.rules}
        return [
            Candidate(ImageReference(domain, path, tag, digest), rules[prefix], repository, platforms, source)
            for prefix, domain, path, tag, digest, repository, platforms, source in self.images
        ]


@dataclass(frozen=True)
class Opening:
    """A sharded run to open: what the coordinator knows when it has expanded the list."""

    run_id: str
    trigger: str
    started: datetime
    expanded: Expanded


def open_sharded(run: WarmRun, env: PlanEnv, config: Config, opening: Opening, shards: list[list[Candidate]]) -> int:
    """Open the run (every image planned, the expansion's outcomes done, one SHARD# item per shard), then send one
    PlanShards message per shard; the number sent."""
    expanded = opening.expanded
    decided = done_entries(expanded.decided)
    images = sum(len(shard) for shard in shards)
    records = [ShardRecord(i, tuple((c.key, c.subject) for c in shard)) for i, shard in enumerate(shards)]
    waits = timedelta(seconds=config.warm.imports.give_up_after + DRAIN_SECONDS_PER_JOB * images)
    run.open(
        opening.run_id,
        trigger=opening.trigger,
        stack=config.stack,
        started=opening.started,
        deadline=opening.started + STALE_AFTER + waits + SHARD_RECEIVES * SHARD_VISIBILITY,
        jobs=decided,
        notes=expanded.notes,
        planned=len(decided) + images,
        shards=records,
    )
    bodies = [ShardMessage.of(opening.run_id, i, shard).model_dump_json() for i, shard in enumerate(shards)]
    return queue.send_batch(env.shards_queue_url, bodies)


def is_shard_batch(event: Any) -> bool:
    """Whether plan_warming was invoked by its PlanShards event source (an SQS batch), not to plan a new run."""
    return isinstance(event, dict) and isinstance(event.get("Records"), list)


def handle_shards(event: dict[str, Any], env: PlanEnv, planner_for: PlannerFor) -> dict[str, Any]:
    """Plan each shard of the batch (BatchSize 1); a failed one is reported back to SQS, which delivers it again and
    after the last delivery moves it to the dead-letter queue."""
    config = config_module.load(env.config_path)
    failures = []
    for record in event["Records"]:
        try:
            plan_shard(ShardMessage.model_validate_json(record["body"]), config, env, planner_for)
        except Exception:  # any failure: the record goes back to the queue, then to its DLQ
            logger.exception("a plan shard failed; SQS delivers it again", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def plan_shard(message: ShardMessage, config: Config, env: PlanEnv, planner_for: PlannerFor) -> int:
    """Decide one shard, write its items once, queue its jobs, record it done; close the run when it completes it.
    The number of jobs queued."""
    ledger = ledger_for(env)
    run = WarmRun(ledger, env, lambda: config)
    logger.append_keys(run_id=message.run_id)  # as the planner does; the shard's number goes in its lines' extra
    state = ledger.run(message.run_id)
    if state is None:
        logger.warning("a plan shard of a run the ledger does not hold: dropped", extra={"shard": message.index})
        return 0
    queued = 0
    if not state.closed:
        planner = planner_for(config, env, RunsAround(memory=ledger, allowances=ledger))
        expanded = Expanded(message.candidates(config), [], [])
        plan = planner.decide(expanded, message.run_id, draw_id(message.run_id, message.index))
        remember(ledger, plan.verified)
        if ledger.add_entries(message.run_id, ledger_entries(plan)):
            queued = opening_module.queue_jobs(env.queue_url, plan)
            ledger.shard_done(message.run_id, message.index, plan.notes)
        logger.info("plan shard decided", extra={"shard": message.index, "planned": plan.planned, "queued": queued})
    run.close(message.run_id, f"shard-{message.index}")
    return queued
