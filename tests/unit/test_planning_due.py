"""A repeat run HEADs a tag only when its ECR copy is due for ECR's daily re-check (pullthrough/warm/decisions.py):
ECR re-checks a cached tag upstream at most once per 24 hours (containers-roadmap #2254), so a HEAD sooner than a
day after Pullthrough's last look at the tag finds nothing ECR would act on. The last look is kept in the verified
memory (`Verified.looked`); a pinned digest ECR holds is never HEADed. And the HEADs of a Docker Hub plan share one
token request per up to 50 repositories (`RegistryClient.authorize_pulls`); other upstreams ask per repository.

The fakes are test_planning's; the memory is a dictionary fed with each plan's `verified`, as plan_warming writes
them to the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pullthrough.aws.ledger import Verified
from pullthrough.errors import RegistryRateLimited
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.decisions import ECR_RECHECK, LOOK_SLACK, SHARED_TOKEN_NAMES, token_batches
from pullthrough.warm.plan import Plan
from pullthrough.warm.planner import Planner, WarmRequest
from tests.unit.test_planning import RUN, FakeEcr, FakeUpstream, config_with, image_manifest

START = datetime(2026, 12, 7, 0, 0, 40, tzinfo=UTC)  # the first run reaches the tags 40 s into its invocation
SIX_HOURS = timedelta(hours=6)


@dataclass
class Ledger:
    """The verified memory: what each plan hands back is remembered, as plan_warming's `remember` does."""

    known: dict[tuple[str, str], Verified] = field(default_factory=dict)

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        return {key: self.known[key] for key in keys if key in self.known}

    def plan(self, config: Any, ecr: FakeEcr, upstream: FakeUpstream, now: datetime) -> Plan:
        plan = Planner(config, ecr, lambda rule: upstream, memory=self, workers=4, clock=lambda: now).plan(
            WarmRequest(trigger="schedule"), RUN
        )
        self.known.update((v.key, v) for v in plan.verified)
        return plan


@dataclass
class SharingUpstream(FakeUpstream):
    """FakeUpstream that also takes one token request for several repositories (RegistryClient.authorize_pulls)."""

    shared: list[tuple[str, ...]] = field(default_factory=list)

    def authorize_pulls(self, repositories: Sequence[str]) -> int:
        self.shared.append(tuple(repositories))
        return 1


def held(ecr: FakeEcr, upstream: FakeUpstream, tags: Sequence[str], repository: str = "app") -> dict[str, str]:
    """Complete single-platform images ECR holds and the upstream serves at the same digest: tag -> digest."""
    digests = {}
    for tag in tags:
        digest, body, blobs = image_manifest(f"{repository}{tag}")
        ecr.hold(f"docker-hub/library/{repository}", tag, digest, body, blobs)
        upstream.serve(f"library/{repository}", tag, digest)
        digests[tag] = digest
    return digests


def heads(upstream: FakeUpstream) -> int:
    found = sum(1 for call in upstream.calls if call[0] == "HEAD")
    upstream.calls.clear()
    return found


def test_a_six_hourly_schedule_heads_a_held_tag_once_a_day() -> None:
    # Given four tags ECR holds complete, planned every six hours; each later run reaches the tags sooner into its
    # invocation than the first did (schedule jitter)
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    held(ecr, upstream, ["1", "2", "3", "4"])
    config = config_with([{"image": "app", "tags": ["1", "2", "3", "4"], "platforms": ["linux/amd64"]}])
    counted, asked = [], []
    for run in range(9):
        ecr.asked.clear()
        plan = ledger.plan(config, ecr, upstream, START + run * SIX_HOURS - timedelta(seconds=35 * bool(run)))
        assert {d.item.outcome for d in plan.decided} == {Outcome.ALREADY_CACHED}
        counted.append(heads(upstream))
        asked.append(sorted({kind for kind, _ in ecr.asked}))
    # Then the tags are HEADed in the first run and again each time a day has passed, never in between: a quarter
    # of a HEAD per image per run over the day's four runs
    assert counted == [4, 0, 0, 0, 4, 0, 0, 0, 4]
    assert sum(counted[1:5]) / (4 * 4) == 0.25
    # And after the first run ECR is only asked which digest each tag has: its copy is recalled, not read again
    assert asked[1:] == [["describe"]] * 8


def test_a_tag_looked_at_just_under_a_day_ago_is_due_and_one_looked_at_sooner_is_not() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    held(ecr, upstream, ["1"])
    config = config_with([{"image": "app", "tags": ["1"], "platforms": ["linux/amd64"]}])
    first = Ledger()
    first.plan(config, ecr, upstream, START)
    heads(upstream)
    for after, expected in (
        (ECR_RECHECK - LOOK_SLACK, 1),
        (ECR_RECHECK - LOOK_SLACK - timedelta(seconds=1), 0),
        (timedelta(hours=1), 0),
    ):
        ledger = Ledger(dict(first.known))
        ledger.plan(config, ecr, upstream, START + after)
        assert heads(upstream) == expected, after


def test_a_moved_tag_is_refreshed_the_first_run_it_is_due() -> None:
    # Given a tag ECR holds, verified and HEADed at the first run
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    old = held(ecr, upstream, ["1"])["1"]
    config = config_with([{"image": "app", "tags": ["1"], "platforms": ["linux/amd64"]}])
    ledger.plan(config, ecr, upstream, START)
    heads(upstream)
    # ...whose upstream tag moves an hour later
    new, _, _ = image_manifest("app1-new")
    upstream.serve("library/app", "1", new)
    plans = [ledger.plan(config, ecr, upstream, START + run * SIX_HOURS) for run in range(1, 5)]
    # Then the runs before the tag is due keep ECR's copy without asking upstream; the first run it is due
    # refreshes it to the upstream's new digest
    assert [[d.item.outcome for d in p.decided] for p in plans[:3]] == [[Outcome.ALREADY_CACHED]] * 3
    assert [p.jobs for p in plans[:3]] == [(), (), ()]
    [job] = plans[3].jobs
    assert (job.action, job.expected_digest, job.previous_digest) == ("refresh", new, old)
    assert heads(upstream) == 1


def test_a_pinned_digest_ecr_holds_is_never_headed() -> None:
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    digest = held(ecr, upstream, ["1"])["1"]
    config = config_with([{"image": f"app:1@{digest}", "platforms": ["linux/amd64"]}])
    for run in range(6):
        plan = ledger.plan(config, ecr, upstream, START + run * SIX_HOURS)
        assert [d.item.outcome for d in plan.decided] == [Outcome.ALREADY_CACHED]
    assert heads(upstream) == 0


def test_a_pinned_tag_ecr_holds_at_another_digest_is_headed_even_when_not_due() -> None:
    # Given a tag HEADed and verified an hour ago, which the config now pins to the digest the upstream moved to
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    old = held(ecr, upstream, ["1"])["1"]
    ledger.plan(config_with([{"image": "app:1", "platforms": ["linux/amd64"]}]), ecr, upstream, START)
    heads(upstream)
    new, _, _ = image_manifest("app1-new")
    upstream.serve("library/app", "1", new)
    pinned = config_with([{"image": f"app:1@{new}", "platforms": ["linux/amd64"]}])
    # When it is planned, Then the HEAD is sent and ECR's copy refreshed to the pinned digest, not kept as it is
    plan = ledger.plan(pinned, ecr, upstream, START + timedelta(hours=1))
    [job] = plan.jobs
    assert (job.action, job.expected_digest, job.previous_digest) == ("refresh", new, old)
    assert heads(upstream) == 1


def test_a_copy_verified_again_keeps_the_time_of_the_last_look() -> None:
    # Given a tag HEADed and verified for one platform, then wanted for two (its memory no longer answers)
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    held(ecr, upstream, ["1"])
    ledger.plan(config_with([{"image": "app", "tags": ["1"], "platforms": ["linux/amd64"]}]), ecr, upstream, START)
    heads(upstream)
    both = config_with([{"image": "app", "tags": ["1"]}])
    # When it is planned six hours later, Then ECR's copy is verified again without a HEAD, and the memory keeps the
    # first run's look, so the tag is HEADed a day after it, not sooner or later
    ecr.asked.clear()
    plan = ledger.plan(both, ecr, upstream, START + SIX_HOURS)
    assert [kind for kind, _ in ecr.asked] == ["describe", "get", "layers"]
    assert [v.looked for v in plan.verified] == [START]
    assert heads(upstream) == 0
    ledger.plan(both, ecr, upstream, START + ECR_RECHECK)
    assert heads(upstream) == 1


def test_a_tag_ecr_no_longer_holds_is_headed_even_when_not_due() -> None:
    # Given a tag HEADed an hour ago, that ECR has since lost (a lifecycle policy, a prune)
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    digest = held(ecr, upstream, ["1"])["1"]
    config = config_with([{"image": "app", "tags": ["1"], "platforms": ["linux/amd64"]}])
    ledger.plan(config, ecr, upstream, START)
    heads(upstream)
    del ecr.tags[("docker-hub/library/app", "1")]
    # When it is planned again, Then it is HEADed (the budget needs what the import costs) and warmed
    plan = ledger.plan(config, ecr, upstream, START + timedelta(hours=1))
    [job] = plan.jobs
    assert (job.action, job.expected_digest) == ("warm", digest)
    assert heads(upstream) == 1


def test_a_head_that_failed_is_not_remembered_as_a_look() -> None:
    # Given a tag ECR holds whose HEAD fails (the upstream's rate limit)
    ecr, upstream, ledger = FakeEcr(), FakeUpstream(), Ledger()
    held(ecr, upstream, ["1"])
    good = upstream.heads[("library/app", "1")]
    upstream.heads[("library/app", "1")] = RegistryRateLimited("registry-1.docker.io", "library/app", "429", 429)
    config = config_with([{"image": "app", "tags": ["1"], "platforms": ["linux/amd64"]}])
    plan = ledger.plan(config, ecr, upstream, START)
    # Then ECR's copy is verified and remembered, without a look; the next run asks again
    assert [v.looked for v in plan.verified] == [None]
    upstream.heads[("library/app", "1")] = good
    heads(upstream)
    again = ledger.plan(config, ecr, upstream, START + SIX_HOURS)
    assert heads(upstream) == 1
    assert [v.looked for v in again.verified] == [START + SIX_HOURS]


def test_the_heads_of_docker_hub_repositories_share_one_token_request_per_50() -> None:
    # Given 60 Docker Hub repositories of two tags each, and a Quay repository, none of them in ECR
    upstream = SharingUpstream()
    names = [f"app{index:02d}" for index in range(60)]
    for name in names:
        for tag in ("1", "2"):
            upstream.serve(f"library/{name}", tag, image_manifest(f"{name}{tag}")[0])
    upstream.serve("team/tool", "1", image_manifest("tool")[0])
    images = [{"image": name, "tags": ["1", "2"]} for name in names] + [{"image": "quay.io/team/tool:1"}]
    # When they are planned
    plan = Planner(config_with(images), FakeEcr(), lambda rule: upstream, workers=4).plan(WarmRequest(trigger="t"), RUN)
    # Then the Docker Hub repositories' tokens are asked for in two requests, 50 repositories and 10, before any
    # HEAD; Quay's repository gets none (it asks for its own token as it goes)
    assert len(plan.jobs) == 121
    assert sorted(len(batch) for batch in upstream.shared) == [10, 50]
    assert sorted(name for batch in upstream.shared for name in batch) == [f"library/{name}" for name in names]


def test_only_repositories_with_a_tag_to_head_are_in_the_token_request() -> None:
    # Given two repositories ECR holds, one of whose tags was HEADed a day ago and one six hours ago
    ecr, upstream = FakeEcr(), SharingUpstream()
    held(ecr, upstream, ["1"], "old")
    held(ecr, upstream, ["1"], "new")
    config = config_with([{"image": name, "tags": ["1"], "platforms": ["linux/amd64"]} for name in ("old", "new")])
    ledger = Ledger()
    ledger.plan(config, ecr, upstream, START)
    key = ("docker-hub/library/new", "1")
    ledger.known[key] = Verified(**{**ledger.known[key].__dict__, "looked": START + ECR_RECHECK - SIX_HOURS})
    upstream.shared.clear()
    # When they are planned a day after the first run
    ledger.plan(config, ecr, upstream, START + ECR_RECHECK)
    # Then the token request names only the repository that is due
    assert upstream.shared == [("library/old",)]


def test_long_repository_names_share_a_token_with_fewer_others() -> None:
    # Every HEAD carries the shared token, which names each of its repositories: long names make smaller batches
    short = [f"library/app{index:02d}" for index in range(60)]
    assert [len(batch) for batch in token_batches(short, 50)] == [50, 10]
    long = [f"some-organisation/a-rather-long-repository-name-{index:04d}" for index in range(60)]
    batches = token_batches(long, 50)
    assert [name for batch in batches for name in batch] == long
    assert all(sum(map(len, batch)) <= SHARED_TOKEN_NAMES for batch in batches)
    assert [len(batch) for batch in batches] == [28, 28, 4]  # 52 characters each
    assert token_batches(short, 1) == [[name] for name in short]
