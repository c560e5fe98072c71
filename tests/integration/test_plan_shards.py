"""Warm runs planned in shards (warm/shards.py), end to end on the sandbox: plan_warming opens the run and sends one
PlanShards message per shard; the sandbox drains that queue into plan_warming as template.yaml's PlanWarmingShards
mapping does, then the warm queue into warm_images. Every image ends in exactly one outcome, and the run in one report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from pullthrough.aws.ledger import Ledger
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm import opening, shards
from sandbox import Sandbox
from tests.integration.warm_support import WarmHarness, unique

pytestmark = pytest.mark.sandbox


class Sharded(WarmHarness):
    HUB, GHCR = "shards-hub", "shards-ghcr"
    STACK_LABEL = "shards"
    LAYERS = (300,)
    BUDGET_SHARE = 0.9


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sharded]:
    with Sharded.deployed(sandbox, tmp_path_factory.mktemp("shards")) as deployed_world:
        yield deployed_world


def plan_all(world: Sharded) -> tuple[dict[str, Any], Report]:
    """Plan, drain the shards into plan_warming, then the jobs into warm_images; the summary and the one report."""
    summary = world.plan()
    world.stack.drain("PlanWarmingFunction")
    world.drain()
    return summary, world.report_of(summary["run_id"])


def ledger_of(world: Sharded) -> Ledger:
    return Ledger(world.stack.physical["LedgerTable"])


def test_a_list_of_250_repositories_is_planned_in_shards_each_image_once_in_one_report(world: Sharded) -> None:
    # Given 250 repositories of one tag: three pushed upstream, the rest absent there
    ns = unique("wide")
    names = [f"{ns}/app-{i:03d}" for i in range(250)]
    pushed = {names[i] for i in (0, 120, 249)}
    for name in pushed:
        world.push(name)
    world.configure([f"{name}:1.0" for name in names])
    # When the schedule plans it and the shard and warm queues are drained
    summary, report = plan_all(world)
    # Then the run was planned in shards of at most SHARD_REPOSITORIES repositories (three of 100)
    cut = -(-250 // shards.SHARD_REPOSITORIES)
    assert summary["shards"] == cut > 1
    state = ledger_of(world).run(summary["run_id"])
    assert state is not None
    assert (state.planned, state.done, state.shards, state.shards_done) == (250, 250, cut, cut)
    # And every image has exactly one outcome in the one report: the pushed ones warmed, the others failed upstream
    subjects = Counter(item.subject for item in report.items)
    assert len(subjects) == 250
    assert set(subjects.values()) == {1}
    warmed = {i.subject.split("/", 1)[1].rsplit(":", 1)[0] for i in report.items if i.outcome is Outcome.WARMED}
    assert warmed == pushed
    assert Counter(item.outcome for item in report.items) == {Outcome.WARMED: 3, Outcome.FAILED: 247}


def test_a_shard_that_fails_once_is_delivered_again_and_its_images_counted_once(
    world: Sharded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three shards of two repositories, one pushed upstream (a job) and one absent (decided at plan time)
    monkeypatch.setattr(shards, "SHARD_REPOSITORIES", 2)
    ns = unique("again")
    images = [world.push(f"{ns}/app-{i}") for i in range(3)]
    absent = [f"{ns}/gone-{i}" for i in range(3)]
    listed = [name for image, gone in zip(images, absent, strict=True) for name in (image.repository, gone)]
    world.configure([f"{name}:1.0" for name in listed])
    # ...and the first shard's jobs failing to queue once, after its items were written and counted
    real = opening.queue_jobs
    failed: list[int] = []

    def queue_once(url: str, plan: Any) -> int:
        if not failed:
            failed.append(len(plan.jobs))
            raise RuntimeError("the queue refused, once")
        return real(url, plan)

    monkeypatch.setattr(opening, "queue_jobs", queue_once)
    # When the run is planned and drained
    summary, report = plan_all(world)
    # Then the failed shard ran again, and each image was counted once: done == planned, one outcome each
    assert len(failed) == 1
    assert summary["shards"] == 3
    state = ledger_of(world).run(summary["run_id"])
    assert state is not None
    assert (state.planned, state.done, state.shards_done) == (6, 6, 3)
    assert state.counts == {"warmed": 3, "failed": 3}
    assert sorted(item.subject for item in report.items) == sorted(f"docker.io/{name}:1.0" for name in listed)
    assert len(world.reports_of(summary["run_id"])) == 1


def test_shards_draw_from_one_shared_allowance_and_cannot_overdraw_it(
    world: Sharded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three repositories in three shards and a share leaving room for 2.5 pulls of what the user has left
    monkeypatch.setattr(shards, "SHARD_REPOSITORIES", 1)
    ns = unique("budget")
    images = [world.push(f"{ns}/app-{i}") for i in range(3)]
    remaining = world.sb.upstream.user_limit - world.sb.upstream.pulls[world.user]
    world.configure([f"{image.repository}:1.0" for image in images], budget_share=round(2.5 / remaining, 6))
    before = world.pulls()
    # When the run is planned in its three shards and drained
    summary, report = plan_all(world)
    # Then the shards between them warmed what the one allowance pays for (2), and deferred the third
    assert summary["shards"] == 3
    assert Counter(item.outcome for item in report.items) == {Outcome.WARMED: 2, Outcome.DEFERRED: 1}
    assert world.pulls() - before == 2


def test_a_shard_in_the_dead_letter_queue_leaves_its_images_failed_as_not_planned_in_the_one_report(
    world: Sharded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a list in two shards of which the second fails on every delivery
    monkeypatch.setattr(shards, "SHARD_REPOSITORIES", 1)
    ns = unique("lost")
    kept, lost = world.push(f"{ns}/kept"), world.push(f"{ns}/lost")
    world.configure([f"{kept.repository}:1.0", f"{lost.repository}:1.0"])
    real = shards.plan_shard

    def failing(message: shards.ShardMessage, *args: Any) -> int:
        if message.index == 1:
            raise RuntimeError("this shard always fails")
        return real(message, *args)

    monkeypatch.setattr(shards, "plan_shard", failing)
    summary = world.plan()
    world.stack.drain("PlanWarmingFunction")
    world.drain()
    # ...so the run stays open, with no report, until its deadline passes
    assert world.reports_of(summary["run_id"]) == []
    boto3.client("dynamodb").update_item(
        TableName=world.stack.physical["LedgerTable"],
        Key={"pk": {"S": f"RUN#{summary['run_id']}"}, "sk": {"S": "META"}},
        UpdateExpression="SET deadline = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    # When the next planner run sweeps
    world.configure([])
    following = world.plan()
    # Then it closes the run and reports it once: the lost shard's image failed as not planned, with a fix
    assert summary["run_id"] in following["closed_runs"]
    items = {item.subject: item for item in world.report_of(summary["run_id"]).items}
    assert items[f"docker.io/{kept.repository}:1.0"].outcome is Outcome.WARMED
    failed = items[f"docker.io/{lost.repository}:1.0"]
    assert failed.outcome is Outcome.FAILED
    assert "plan shard" in (failed.reason or "")
    assert "PlanShards dead-letter queue" in (failed.fix or "")
    dead = boto3.client("sqs").receive_message(QueueUrl=world.stack.physical["PlanShardsDeadLetterQueue"])
    assert len(dead.get("Messages", [])) == 1


def test_a_sharded_run_with_nothing_to_queue_is_reported_once_by_its_last_shard_even_delivered_again(
    world: Sharded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three repositories absent upstream, in three shards (nothing to queue: the last shard closes the run)
    monkeypatch.setattr(shards, "SHARD_REPOSITORIES", 1)
    ns = unique("absent")
    world.configure([f"{ns}/app-{i}:1.0" for i in range(3)])
    # ...and the shard that closes the run failing once after it closed and reported it (SQS delivers it again)
    real = shards.plan_shard
    again: list[int] = []

    def fail_after_closing(message: shards.ShardMessage, *args: Any) -> int:
        queued = real(message, *args)
        state = ledger_of(world).run(message.run_id)
        if state is not None and state.closed and not again:
            again.append(message.index)
            raise RuntimeError("failed after closing the run")
        return queued

    monkeypatch.setattr(shards, "plan_shard", fail_after_closing)
    # When the run is planned and its shards drained
    summary, report = plan_all(world)
    # Then the closing shard ran twice, and the run was reported once, each image failed once
    assert len(again) == 1
    assert summary["shards"] == 3
    assert len(world.reports_of(summary["run_id"])) == 1
    assert Counter(item.outcome for item in report.items) == {Outcome.FAILED: 3}
