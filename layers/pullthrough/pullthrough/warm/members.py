"""The organisation's members' warm lists, planned by the hub: one warm run per member account and region.

The member template creates no functions (a service-managed StackSet takes no SAM transform, so no Lambda code is
packaged for members): the hub's plan_warming plans each member target and its warm_images warms it, acting in the
member through the warm role the StackSet creates there, `pullthrough-org-warm-<region>` (warm/warmer.py). One warmer
in the hub keeps one pull budget and one upstream token for the organisation.

Targets: a member's `accounts` x `regions`, and its organisational units' accounts as the members' StackSet's
instances name them (ListStackInstances, CallAs from the stack's CallAs parameter): an instance is exactly where the
member template, and so the warm role, exists. An instance not CURRENT is still a target: its run fails every image
with the instance's status and the fix, so nothing is skipped silently.

Each target is its own run (its own run id, its own report naming the member's account and region, which goes to
the hub's bus under the member's name), so gather_reports sees one report per (account, region) per cycle, as it
would from a member that ran its own functions.

Planning reads nothing in the member (so the warm role is trusted by warm_images only): warm_images asks the
member's ECR first (DescribeImages) and reports an image the member holds as already cached, with no trigger and so
no pull anywhere. Budget: an image the hub holds costs the organisation no upstream pull when a member imports it; a
member's import of an image the hub does not hold makes the hub's ECR pull it upstream. So the hub's own run warms
every member's image too (`hub_config`): it draws that pull from the shared allowance (or defers it when the
allowance is spent), and the members import from the hub. A member's import that runs before the hub's has finished
may still make the hub's ECR pull it itself: that pull was drawn already by the hub's run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pullthrough.aws.ledger import RunTarget
from pullthrough.aws.stacksets import StackInstance, stack_instances
from pullthrough.config import Config
from pullthrough.config.organization import Member, partition_of, registry_host
from pullthrough.env import PlanEnv
from pullthrough.observability import logger
from pullthrough.org.targets import warm_targets
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.importing import Wait
from pullthrough.warm.job import JobTarget, WarmJob
from pullthrough.warm.opening import open_run, queue_jobs, report_whole_run
from pullthrough.warm.outcomes import Reason
from pullthrough.warm.plan import Candidate, Decided, Expanded, Plan, decided
from pullthrough.warm.request import WarmRequest
from pullthrough.warm.run import WarmRun

WARM_ROLE = "pullthrough-org-warm-{region}"  # tools/member_template.py, WarmRole
CURRENT = "CURRENT"  # a StackSet instance up to date with the StackSet (CloudFormation API Reference, StackInstance)


@dataclass(frozen=True)
class MemberTarget:
    """One member account and region to warm, and why it cannot be (its StackSet instance is not CURRENT)."""

    member: Member
    account: str
    region: str
    problem: str | None = None

    @property
    def run_target(self) -> RunTarget:
        return RunTarget(self.account, self.region, self.member.name)

    def job_target(self) -> JobTarget:
        role = f"arn:{partition_of(self.region)}:iam::{self.account}:role/{WARM_ROLE.format(region=self.region)}"
        return JobTarget(
            account=self.account,
            region=self.region,
            member=self.member.name,
            role=role,
            registry=registry_host(self.account, self.region),
        )


def member_targets(
    config: Config, instances: Callable[[], Sequence[StackInstance]], stack_set: str
) -> tuple[list[MemberTarget], list[str]]:
    """Every member (account, region) with a warm list (org/targets.py), and notes on what could not be found out."""
    targets = warm_targets(config, instances)
    note = targets.not_listed(stack_set, "were not warmed", "plan_warming")
    if note is not None:
        logger.error("members' organisational units not resolved", extra={"error": str(targets.error)})
    found = [MemberTarget(t.member, t.account, t.region, _problem(t.instance, stack_set)) for t in targets.found]
    return found, [note] if note else []


def _problem(instance: StackInstance | None, stack_set: str) -> str | None:
    if instance is None or instance.status == CURRENT:
        return None
    return (
        f"not planned: the members' StackSet {stack_set} instance in account {instance.account}, region "
        f"{instance.region} is {instance.status or 'of unknown status'}, so its warm role may be missing or outdated"
    )


def hub_config(config: Config) -> Config:
    """The hub's own config with the members' warm lists added to its warm list (each entry once): the hub's run
    imports every image a member warms, drawing its upstream pull from the shared allowance, so the members import
    from the hub and the organisation pulls each image upstream once, within one budget."""
    organization = config.organization
    if organization is None:
        return config
    images = list(config.warm.images)
    for member in organization.members:
        images += [entry for entry in member.warm if entry not in images]
    if len(images) == len(config.warm.images):
        return config
    return config.model_copy(update={"warm": config.warm.model_copy(update={"images": tuple(images)})})


def member_config(config: Config, member: Member) -> Config:
    """The config whose warm list is the member's (same rules, platforms and imports; no sources)."""
    warm = config.warm.model_copy(update={"images": member.warm, "sources": ()})
    return config.model_copy(update={"warm": warm})


def member_request(request: WarmRequest) -> WarmRequest:
    """The member's request: its whole warm list (within the reconciled rules, when the trigger names them)."""
    return WarmRequest(trigger=request.trigger, rules=request.rules)


def member_plan(target: MemberTarget, expanded: Expanded, run_id: str, stack_set: str, wait: Wait) -> Plan:
    """The member run's plan: a job per expanded image, or each image failed with the instance's status and fix."""
    decided_now = list(expanded.decided)
    jobs: list[WarmJob] = []
    where = target.job_target()
    for candidate in expanded.candidates:
        if target.problem is not None:
            decided_now.append(_not_planned(candidate, target.problem, stack_set))
        else:
            jobs.append(_job(candidate, run_id, where, wait))
    return Plan(run_id=run_id, jobs=tuple(jobs), decided=tuple(decided_now), notes=tuple(expanded.notes))


def _not_planned(candidate: Candidate, problem: str, stack_set: str) -> Decided:
    fix = (
        f"check the instance: aws cloudformation list-stack-instances --stack-set-name {stack_set}; deploy or update "
        "the StackSet with `sam deploy` of the hub (it updates every instance); the next run warms the image"
    )
    return decided(candidate, Outcome.FAILED, reason=problem, fix=fix, reason_code=Reason.AUTH.value)


def _job(candidate: Candidate, run_id: str, target: JobTarget, wait: Wait) -> WarmJob:
    """The member's job: its ECR imports from the hub's registry (the member template's rule, same prefix)."""
    return WarmJob(
        run_id=run_id,
        key=candidate.key,
        subject=candidate.subject,
        rule=candidate.rule.prefix,
        upstream="ecr",
        repository=candidate.repository,
        upstream_repository=candidate.repository,
        tag=candidate.tag,
        pinned=candidate.reference.digest,
        platforms=candidate.platforms,
        action="warm",
        wait=wait,
        source=candidate.source,
        target=target,
    )


class Expands(Protocol):
    """What plan_members asks of a Planner: expand a request over a config's warm list."""

    def expand(self, request: WarmRequest) -> Expanded: ...


@dataclass(frozen=True)
class MemberRuns:
    """How plan_warming plans the members: its env, the run object, the request and when it started."""

    env: PlanEnv
    run: WarmRun
    request: WarmRequest
    started: datetime
    planner: Callable[[Config], Expands]  # a Planner over a config (the member's warm list)
    run_id: Callable[[datetime], str]


def plan_members(config: Config, how: MemberRuns) -> list[str]:
    """Open (or report whole) one run per member target of the config; their run ids. A manual request (images)
    is the hub's own; so is a dry run."""
    if how.request.images or config.organization is None or how.env.dry_run:
        return []
    env = how.env
    stack_set = env.stack_set()
    targets, notes = member_targets(
        config, lambda: stack_instances(stack_set, env.region, env.stack_set_call_as), stack_set
    )
    imports = config.warm.imports
    wait = Wait(imports.poll, imports.download_after, imports.give_up_after, imports.download)
    expanded: dict[str, Expanded] = {}
    runs: list[str] = []
    for target in targets:
        name = target.member.name
        if name not in expanded:
            expanded[name] = how.planner(member_config(config, target.member)).expand(member_request(how.request))
        plan = member_plan(target, expanded[name], how.run_id(how.started), stack_set, wait)
        trigger = f"{how.request.trigger}; member {name}"
        if plan.jobs:
            open_run(how.run, plan, config, trigger, how.started, target.run_target)
            queue_jobs(env.queue_url, plan)
        else:
            report_whole_run(how.run, plan, config, trigger, how.started, target.run_target)
        runs.append(plan.run_id)
    logger.info("members' warm runs planned", extra={"member_runs": runs, "notes": notes})
    return runs


__all__ = [
    "WARM_ROLE",
    "MemberRuns",
    "MemberTarget",
    "hub_config",
    "member_config",
    "member_plan",
    "member_request",
    "member_targets",
    "plan_members",
]
