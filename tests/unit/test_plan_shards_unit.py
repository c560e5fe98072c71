"""Plan shards without AWS: how a list is cut into shards, and a shard's message, both ways and within SQS's size."""

from __future__ import annotations

from pullthrough.reference import ImageReference
from pullthrough.warm import fitting, shards
from pullthrough.warm.plan import Candidate
from sandbox.template import load_template
from tests.unit.test_planning import config_with

SQS_MAX_BYTES = 256 * 1024  # SendMessage's MessageBody limit (the SQS API reference, "Quotas related to messages")


def candidates(repositories: int, tags: int) -> list[Candidate]:
    config = config_with([{"image": "acme/app:1.0"}])
    rule = config.rules[0]
    found = []
    for r in range(repositories):
        for t in range(tags):
            reference = ImageReference("docker.io", f"acme/app-{r:05d}", f"1.{t}.0-some-longer-tag", None)
            found.append(Candidate(reference, rule, f"{rule.prefix}/acme/app-{r:05d}", ("linux/amd64", "linux/arm64")))
    return found


def test_a_list_is_cut_into_shards_of_whole_repositories_up_to_the_limits() -> None:
    # Given 250 repositories of ten tags, and one of 1,500 tags
    found = candidates(250, 10) + [
        Candidate(ImageReference("docker.io", "acme/big", f"{t}", None), c.rule, "big", c.platforms)
        for t, c in zip(range(1500), [candidates(1, 1)[0]] * 1500, strict=True)
    ]
    # When it is cut into shards
    cut = shards.split(found)
    # Then each shard holds whole repositories, at most SHARD_REPOSITORIES of them and SHARD_IMAGES images, except
    # a repository larger than that, which is a shard of its own
    assert [len({c.repository for c in shard}) for shard in cut] == [100, 100, 50, 1]
    assert [len(shard) for shard in cut] == [1000, 1000, 500, 1500]
    # And repositories of twenty tags are cut at SHARD_IMAGES before SHARD_REPOSITORIES
    assert [len(shard) for shard in shards.split(candidates(60, 20))] == [1000, 200]
    assert [c.key for shard in cut for c in shard] == [c.key for c in found]


def test_a_list_within_the_limits_is_one_shard() -> None:
    assert len(shards.split(candidates(shards.SHARD_REPOSITORIES, 10))) == 1
    assert len(shards.split(candidates(shards.SHARD_REPOSITORIES + 1, 1))) == 2


def test_a_full_shards_message_fits_sqs_and_reads_back_as_the_same_candidates() -> None:
    # Given a full shard (SHARD_IMAGES candidates, two platforms each, long-ish names)
    config = config_with([{"image": "acme/app:1.0"}])
    found = candidates(100, 10)
    # When it is written as a PlanShards message and read back
    body = shards.ShardMessage.of("warm-1", 2, found).model_dump_json()
    back = shards.ShardMessage.model_validate_json(body)
    # Then it fits one SQS message, and holds the same candidates
    assert len(body.encode()) < SQS_MAX_BYTES
    assert (back.run_id, back.index) == ("warm-1", 2)
    assert back.candidates(config) == found


def test_a_wave_of_shards_can_all_draw_from_the_shared_allowance() -> None:
    # Given the shards Lambda decides at once (template.yaml's PlanWarmingShards mapping)
    mapping = load_template()["Resources"]["PlanWarmingShards"]["Properties"]
    at_once = mapping["ScalingConfig"]["MaximumConcurrency"]
    # Then a shard tries its draw at least as often as siblings can overtake it (warm/shards.py says why)
    assert at_once <= fitting.DRAW_ATTEMPTS
