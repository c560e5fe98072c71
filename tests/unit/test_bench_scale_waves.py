"""The scale benchmark's "as Lambda runs it": shards in waves of the PlanWarmingShards mapping's MaximumConcurrency."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.harness import RegistryCalls
from bench.scale import QUEUE_HOP_SECONDS, Plan


def plan(shards: list[float], concurrency: int) -> Plan:
    data = {
        "coordinator": {"seconds": 1.0},
        "shards": [{"seconds": s} for s in shards],
        "shard_concurrency": concurrency,
    }
    return Plan(1_000, data, RegistryCalls(Counter(), Counter(), Counter()))


def test_shards_run_in_waves_of_the_mappings_maximum_concurrency() -> None:
    # Given five shards and a mapping that runs two at a time
    timed = plan([2.0, 3.0, 1.0, 5.0, 1.0], concurrency=2)
    # Then they run in three waves, in the order sent, each as long as its slowest shard and a hop
    assert timed.waves == [[2.0, 3.0], [1.0, 5.0], [1.0]]
    assert timed.lambda_seconds == pytest.approx(1.0 + 3.0 + 5.0 + 1.0 + 3 * QUEUE_HOP_SECONDS)


def test_a_plan_without_shards_is_its_coordinator_alone() -> None:
    assert plan([], concurrency=4).lambda_seconds == pytest.approx(1.0)


def test_lambda_starts_five_batches_at_once_and_adds_more_as_the_seconds_pass() -> None:
    # Given twelve shards of a second each and a mapping allowing ten at once
    timed = plan([1.0] * 12, concurrency=10)
    # Then the first wave is Lambda's five; 1.1 s later the poller runs five more a second (10, the cap): the last 7
    assert [len(wave) for wave in timed.waves] == [5, 7]
