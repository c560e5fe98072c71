"""Planning recalls what earlier runs verified (pullthrough/warm/decisions.py, the ledger's VERIFIED# items): an
image ECR still holds at the remembered digest, for the same platforms, is already cached without reading its
manifests and blobs again; anything else is verified in full, and what is verified in full is handed back to be
remembered.

The fakes are test_planning's; the memory is a dictionary standing in for the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pullthrough.aws.ledger import Verified
from pullthrough.errors import AwsError
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.planner import Plan, Planner, WarmRequest, remembering
from tests.unit.test_planning import RUN, FakeEcr, FakeUpstream, config_with, image_manifest, index_manifest

REPOSITORY = "docker-hub/library/app"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BOTH = ("linux/amd64", "linux/arm64")


@dataclass
class FakeMemory:
    """The ledger's memory of verified images; records the keys it was asked for."""

    known: dict[tuple[str, str], Verified] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)
    fails: bool = False

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        self.asked.extend(keys)
        if self.fails:
            raise AwsError("dynamodb:BatchGetItem", "ledger", "ProvisionedThroughputExceededException", "slow down")
        return {key: self.known[key] for key in keys if key in self.known}


def held_index(ecr: FakeEcr, upstream: FakeUpstream, tag: str) -> str:
    """A complete two-platform index held by ECR and served upstream at the same digest; its digest."""
    amd, amd_body, amd_blobs = image_manifest(f"amd{tag}")
    arm, arm_body, arm_blobs = image_manifest(f"arm{tag}")
    top, top_body = index_manifest({"linux/amd64": amd, "linux/arm64": arm})
    ecr.hold(REPOSITORY, tag, top, top_body)
    for digest, body, blobs in ((amd, amd_body, amd_blobs), (arm, arm_body, arm_blobs)):
        ecr.stored[digest] = body
        ecr.blobs.update(blobs)
    upstream.serve("library/app", tag, top, "application/vnd.oci.image.index.v1+json")
    return top


def plan_with(
    memory: FakeMemory | None,
    ecr: FakeEcr,
    upstream: FakeUpstream,
    platforms: Sequence[str] = BOTH,
    now: datetime = NOW,
) -> Plan:
    config = config_with([{"image": "app", "tags": ["1"], "platforms": list(platforms)}])
    planner = Planner(config, ecr, lambda rule: upstream, memory=memory, workers=2, clock=lambda: now)
    return planner.plan(WarmRequest(trigger="t"), RUN)


def test_a_full_verification_is_handed_back_to_be_remembered() -> None:
    # Given an index ECR holds complete, and no memory of it
    ecr, upstream, memory = FakeEcr(), FakeUpstream(), FakeMemory()
    top = held_index(ecr, upstream, "1")
    # When it is planned
    plan = plan_with(memory, ecr, upstream)
    # Then it is already cached, verified in full, and the plan hands back what it verified, with the number of
    # manifests its index lists (what ECR's next import of the tag costs upstream) and when it HEADed the tag
    [decided] = plan.decided
    assert decided.item.outcome is Outcome.ALREADY_CACHED
    assert [kind for kind, _ in ecr.asked] == ["describe", "get", "get", "layers"]
    assert memory.asked == [(REPOSITORY, "1")]
    [learned] = plan.verified
    assert learned == Verified(REPOSITORY, "1", top, BOTH, BOTH, (), decided.item.details.size or -1, NOW, 2, NOW)


def test_a_remembered_digest_skips_the_manifests_and_blobs_and_reports_the_same() -> None:
    # Given the same index, verified by an earlier run
    ecr, upstream = FakeEcr(), FakeUpstream()
    held_index(ecr, upstream, "1")
    first = plan_with(FakeMemory(), ecr, upstream)
    memory = FakeMemory({(REPOSITORY, "1"): first.verified[0]})
    ecr.asked.clear()
    # When it is planned again a day later, when the tag is due for ECR's daily re-check
    later = NOW + timedelta(days=1)
    again = plan_with(memory, ecr, upstream, now=later)
    # Then ECR is only asked which digest the tag has, the upstream gets its HEAD (has the tag moved?)
    assert [kind for kind, _ in ecr.asked] == ["describe"]
    assert [call[0] for call in upstream.calls].count("HEAD") == 2
    # And the report item is the one a full verification gives; only the time of the look is new to remember
    assert again.decided[0].item == first.decided[0].item
    assert again.verified == (replace(first.verified[0], looked=later),)


def test_a_memory_of_another_digest_or_other_platforms_is_not_trusted() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    top = held_index(ecr, upstream, "1")
    remembered = plan_with(FakeMemory(), ecr, upstream).verified[0]
    stale = Verified(REPOSITORY, "1", "sha256:" + "0" * 64, *(remembered.wanted, remembered.platforms, (), 1, NOW))
    for memory, platforms in (
        (FakeMemory({(REPOSITORY, "1"): stale}), BOTH),  # ECR's tag has moved on since
        (FakeMemory({(REPOSITORY, "1"): remembered}), ("linux/amd64",)),  # the config now wants other platforms
    ):
        ecr.asked.clear()
        plan = plan_with(memory, ecr, upstream, platforms)
        assert [kind for kind, _ in ecr.asked] == ["describe", "get", "get", "layers"]
        assert plan.decided[0].item.details.digest == top
        assert [v.wanted for v in plan.verified] == [tuple(sorted(platforms))]


def test_a_remembered_image_that_lacks_a_platform_still_says_so() -> None:
    # Given a single-platform index, verified for two platforms (one absent) by an earlier run
    ecr, upstream = FakeEcr(), FakeUpstream()
    amd, amd_body, amd_blobs = image_manifest("amd")
    top, top_body = index_manifest({"linux/amd64": amd})
    ecr.hold(REPOSITORY, "1", top, top_body)
    ecr.stored[amd] = amd_body
    ecr.blobs.update(amd_blobs)
    upstream.serve("library/app", "1", top, "application/vnd.oci.image.index.v1+json")
    first = plan_with(FakeMemory(), ecr, upstream)
    assert first.verified[0].absent == ("linux/arm64",)
    # When it is planned again from memory, Then its item keeps the warning
    again = plan_with(FakeMemory({(REPOSITORY, "1"): first.verified[0]}), ecr, upstream)
    item = again.decided[0].item
    assert item == first.decided[0].item
    assert item.severity is Severity.WARNING
    assert "no linux/arm64" in (item.reason or "")


def test_an_unreadable_memory_costs_a_full_verification_not_the_run() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    held_index(ecr, upstream, "1")
    plan = plan_with(FakeMemory(fails=True), ecr, upstream)
    assert plan.decided[0].item.outcome is Outcome.ALREADY_CACHED
    assert [kind for kind, _ in ecr.asked] == ["describe", "get", "get", "layers"]


def test_images_that_need_a_job_are_not_remembered() -> None:
    # Given one tag ECR lacks and one whose blobs are missing
    ecr, upstream = FakeEcr(), FakeUpstream()
    digest, body, _ = image_manifest("partial")
    ecr.hold(REPOSITORY, "2", digest, body, [])
    upstream.serve("library/app", "2", digest)
    new, _, _ = image_manifest("new")
    upstream.serve("library/app", "1", new)
    config = config_with([{"image": "app", "tags": ["1", "2"]}])
    plan = Planner(config, ecr, lambda rule: upstream, memory=FakeMemory(), workers=2).plan(
        WarmRequest(trigger="t"), RUN
    )
    # Then both are jobs, and nothing is handed back to be remembered
    assert sorted((job.tag, job.action) for job in plan.jobs) == [("1", "warm"), ("2", "complete")]
    assert plan.verified == ()


def test_a_new_index_is_charged_what_earlier_imports_of_its_digest_or_its_repository_showed() -> None:
    # Given two tags of a repository whose earlier imports showed indexes of 3 and of 6 manifests
    ecr, upstream = FakeEcr(), FakeUpstream()
    seen, other = "sha256:" + "3" * 64, "sha256:" + "6" * 64
    memory = FakeMemory(
        {
            (REPOSITORY, "1"): Verified(REPOSITORY, "1", seen, BOTH, BOTH, (), 10, NOW, 3),
            (REPOSITORY, "2"): Verified(REPOSITORY, "2", other, BOTH, BOTH, (), 10, NOW, 6),
        }
    )
    # ...and ECR holding neither: tag 1 points at the digest imported before, tag 2 at an index never seen
    index = "application/vnd.oci.image.index.v1+json"
    upstream.serve("library/app", "1", seen, index)
    upstream.serve("library/app", "2", "sha256:" + "9" * 64, index)
    config = config_with([{"image": "app", "tags": ["1", "2"], "platforms": list(BOTH)}])
    plan = Planner(config, ecr, lambda rule: upstream, memory=memory, workers=2, clock=lambda: NOW).plan(
        WarmRequest(trigger="t"), RUN
    )
    # Then the known digest costs what its import showed, the unknown one the most any index of the repository listed
    assert {job.tag: job.cost for job in plan.jobs} == {"1": 1 + 3, "2": 1 + 6}


def test_what_a_plan_remembers_keeps_the_recalled_tags_of_each_repository_it_writes() -> None:
    # Given an earlier run's memory of two tags of one repository and one of another
    known = Verified(REPOSITORY, "1", "sha256:" + "1" * 64, BOTH, BOTH, (), 10, NOW - timedelta(days=1))
    moved = replace(known, tag="2", digest="sha256:" + "2" * 64)
    other = replace(known, repository="docker-hub/library/other")
    remembered = {v.key: v for v in (known, moved, other)}
    # When a plan verifies the repository's tag 2 again (the memory is written a repository at a time)
    learned = replace(moved, digest="sha256:" + "3" * 64, at=NOW)
    # Then it writes what it learned, keeps tag 1 as recalled, and leaves the other repository's item alone
    assert remembering([learned], remembered) == (learned, known)
