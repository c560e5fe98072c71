"""Planning a warm run (pullthrough/warm/: planner, selection, decisions, fitting): tags, versions, ECR-first
decisions and the budget, with fakes.

The fake upstream has no manifest GET at all: planning that tried one would fail here, not only cost a pull.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from pullthrough import config as config_module
from pullthrough.aws.ecr import EcrImage, StoredManifest
from pullthrough.errors import (
    AwsError,
    EventError,
    PullthroughError,
    RegistryAuthError,
    RegistryNotFound,
    RegistryRateLimited,
)
from pullthrough.registry import manifests
from pullthrough.registry.client import ManifestHead
from pullthrough.registry.headers import RateLimit
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.budget import Draw, Shared
from pullthrough.warm.planner import InFlight, Planner, WarmRequest, select_tags
from pullthrough.warm.worker import MOVED_TAG_NOTE
from sandbox.lambdas import sample_event

RUN = "warm-2026-11-23T10-00-00Z-abcdef"


def digest_of(text: str) -> str:
    return manifests.sha256_digest(text.encode())


def image_manifest(name: str, layers: int = 2) -> tuple[str, bytes, list[str]]:
    """An OCI image manifest for `name`: (digest, body, [config and layer digests])."""
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": digest_of(name + "-config"),
        "size": 10,
    }
    blobs = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(f"{name}-{i}"), "size": 100}
        for i in range(layers)
    ]
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST, "config": config, "layers": blobs}
    ).encode()
    return manifests.sha256_digest(body), body, [config["digest"]] + [b["digest"] for b in blobs]


def index_manifest(children: dict[str, str]) -> tuple[str, bytes]:
    """An OCI index of platform -> child manifest digest."""
    entries = []
    for platform, child in children.items():
        os_name, arch, *variant = platform.split("/")
        entries.append(
            {
                "mediaType": manifests.OCI_MANIFEST,
                "digest": child,
                "size": 300,
                "platform": {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})},
            }
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": entries}).encode()
    return manifests.sha256_digest(body), body


@dataclass
class FakeEcr:
    """ECR's control plane: tags, stored manifests, held blobs; records what it was asked."""

    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    stored: dict[str, bytes] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)
    asked: list[tuple[str, Any]] = field(default_factory=list)

    def hold(self, repository: str, tag: str, digest: str, body: bytes, blobs: Sequence[str] = ()) -> None:
        self.tags[(repository, tag)] = digest
        self.stored[digest] = body
        self.blobs.update(blobs)

    def describe_image(self, repository: str, tag: str) -> EcrImage | None:
        self.asked.append(("describe", (repository, tag)))
        digest = self.tags.get((repository, tag))
        return EcrImage(repository, digest, (tag,)) if digest else None

    def get_manifests(self, repository: str, references: Sequence[str]) -> dict[str, StoredManifest]:
        self.asked.append(("get", tuple(references)))
        found = {}
        for ref in references:
            digest = ref if manifests.is_digest(ref) else self.tags.get((repository, ref))
            if digest in self.stored:
                body = self.stored[digest]
                found[ref] = StoredManifest(digest, manifests.media_type_of(body, None), body)
        return found

    archived: set[str] = field(default_factory=set)

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]:
        self.asked.append(("layers", tuple(digests)))
        return {d: "ARCHIVED" if d in self.archived else "AVAILABLE" if d in self.blobs else "MISSING" for d in digests}


@dataclass
class FakeUpstream:
    """An upstream registry that answers HEADs and tag lists only."""

    heads: dict[tuple[str, str], ManifestHead | PullthroughError] = field(default_factory=dict)
    tag_lists: dict[str, list[str] | PullthroughError] = field(default_factory=dict)
    remaining: int | None = None
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    closed: bool = False

    def serve(self, repository: str, tag: str, digest: str, media_type: str = manifests.OCI_MANIFEST) -> None:
        self.heads[(repository, tag)] = ManifestHead(digest, media_type, 500, None)

    def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        self.calls.append(("HEAD", repository, reference))
        found = self.heads.get((repository, reference))
        if found is None:
            raise RegistryNotFound("registry-1.docker.io", repository, f"manifest {reference} not found", 404)
        if isinstance(found, PullthroughError):
            raise found
        rate = RateLimit(200, self.remaining, 21600, "user") if self.remaining is not None else None
        return ManifestHead(found.digest, found.media_type, found.size, rate)

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]:
        self.calls.append(("GET", repository, "tags/list"))
        found = self.tag_lists.get(repository, [])
        if isinstance(found, PullthroughError):
            raise found
        return list(found)

    def close(self) -> None:
        self.closed = True


CONFIG = """
version: 1
stack: test
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials: ecr-pullthroughcache/docker-hub
  - prefix: quay
    upstream: quay
warm:
  platforms: [linux/amd64, linux/arm64]
  budget_share: 0.5
  images: {images}
"""


def config_with(images: list[Any], budget_share: float = 0.5) -> config_module.Config:
    text = CONFIG.format(images=json.dumps(images)).replace("budget_share: 0.5", f"budget_share: {budget_share}")
    return config_module.parse(text)


def planner(config: config_module.Config, ecr: FakeEcr, upstream: FakeUpstream | None) -> Planner:
    return Planner(config, ecr, lambda rule: upstream, workers=2)


def outcomes(plan: Any) -> dict[str, tuple[Outcome, str | None]]:
    return {d.item.subject: (d.item.outcome, d.item.reason_code) for d in plan.decided}


# --- versions and tags -------------------------------------------------------------------------------------------


def test_select_tags_joins_named_tags_with_pattern_and_latest() -> None:
    # Given an entry naming a tag and asking for the latest 2 versions matching a pattern
    image = config_with([{"image": "acme/app:v0.9.0", "tag_pattern": r"^v1\.\d+\.\d+$", "latest": 2}]).warm.images[0]
    upstream = ["v1.0.0", "v1.2.0", "v1.1.5", "v2.0.0", "main", "v0.9.0"]
    # When its tags are selected
    tags = select_tags(image, upstream)
    # Then the named tag comes first, then the two highest matching versions
    assert tags == ["v0.9.0", "v1.2.0", "v1.1.5"]


def test_select_tags_without_latest_takes_every_match_highest_first() -> None:
    image = config_with([{"image": "nginx", "tag_pattern": r"^1\.2[67]\.\d+$"}]).warm.images[0]
    assert select_tags(image, ["1.26.0", "1.27.2", "1.28.0", "1.27.10", "mainline"]) == ["1.27.10", "1.27.2", "1.26.0"]


# --- the request -------------------------------------------------------------------------------------------------


def test_sample_events_read_as_requests() -> None:
    # Given the sample events of the three triggers
    schedule = WarmRequest.from_event(sample_event("plan_warming", "schedule"))
    reconciled = WarmRequest.from_event(sample_event("plan_warming", "rules_reconciled"))
    manual = WarmRequest.from_event(sample_event("plan_warming", "manual"))
    # Then each says why the run starts and what it covers
    assert schedule.trigger.startswith("EventBridge Scheduler (pullthrough-warm")
    assert (schedule.images, schedule.rules) == ((), None)
    assert reconciled.rules == ("docker-hub", "ghcr", "quay", "k8s", "ecr-public")
    assert "rules-2026-11-23T12-00-00Z-4f2a1c" in reconciled.trigger
    assert manual.images == ("nginx:1.27", "olakego/source-mysql:v0.1.8")
    assert WarmRequest.from_event({}).trigger == "manual invoke"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"imgs": ["nginx:1.27"]}, "does not understand the keys imgs"),
        ({"images": "nginx:1.27"}, '"images" must be a list'),
        ({"images": [""]}, '"images" must be a list'),
        ({"detail-type": "Pullthrough Rules Reconciled", "detail": {"rules": "quay"}}, "detail.rules must be a list"),
    ],
)
def test_malformed_events_are_refused_with_the_fix(event: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        WarmRequest.from_event(event)


# --- decisions ---------------------------------------------------------------------------------------------------


def test_an_image_ecr_lacks_becomes_a_warm_job_costing_one_pull() -> None:
    # Given an image upstream that ECR does not hold
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=100)
    upstream.serve("library/nginx", "1.27", digest_of("nginx"))
    # When the run is planned
    plan = planner(config_with(["nginx:1.27"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then one warm job carries what the job needs, and planning only HEADed upstream
    (job,) = plan.jobs
    assert (job.action, job.cost, job.repository, job.upstream_repository) == (
        "warm",
        1,
        "docker-hub/library/nginx",
        "library/nginx",
    )
    assert (job.expected_digest, job.platforms, job.pulls_remaining) == (
        digest_of("nginx"),
        ("linux/amd64", "linux/arm64"),
        99,
    )
    assert job.subject == "docker.io/library/nginx:1.27"
    assert job.run_id == RUN
    assert upstream.calls == [("HEAD", "library/nginx", "1.27")]
    assert upstream.closed


def test_a_multi_arch_image_costs_its_index_and_one_pull_per_wanted_platform() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=100)
    upstream.serve("olakego/source-mysql", "v0.1.8", digest_of("idx"), manifests.OCI_INDEX)
    plan = planner(config_with(["olakego/source-mysql:v0.1.8"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    assert [job.cost for job in plan.jobs] == [3]


def test_an_image_ecr_holds_completely_is_already_cached_without_a_job() -> None:
    # Given ECR holding a two-platform image (index, both manifests, every blob) that the upstream still serves
    ecr, upstream = FakeEcr(), FakeUpstream()
    amd, amd_body, amd_blobs = image_manifest("amd")
    arm, arm_body, arm_blobs = image_manifest("arm")
    top, top_body = index_manifest({"linux/amd64": amd, "linux/arm64/v8": arm, "linux/s390x": digest_of("s390x")})
    ecr.hold("docker-hub/library/nginx", "1.27", top, top_body)
    ecr.stored[amd], ecr.stored[arm] = amd_body, arm_body
    ecr.blobs.update(amd_blobs + arm_blobs)
    upstream.serve("library/nginx", "1.27", top, manifests.OCI_INDEX)
    # When the run is planned
    plan = planner(config_with(["nginx:1.27"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then it is already cached, with its digest, the wanted platforms and their size; no job, no note
    assert plan.jobs == ()
    (decided,) = plan.decided
    item = decided.item
    assert (item.outcome, item.severity, item.details.digest) == (Outcome.ALREADY_CACHED, Severity.OK, top)
    assert item.details.platforms == ("linux/amd64", "linux/arm64")
    assert item.details.size == 2 * (10 + 2 * 100)
    assert decided.key == "docker-hub/library/nginx:1.27"


def test_an_image_ecr_holds_without_every_blob_is_completed_at_no_pull_cost() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=100)
    digest, body, blobs = image_manifest("half")
    ecr.hold("docker-hub/library/half", "1", digest, body, blobs[:1])
    upstream.serve("library/half", "1", digest)
    plan = planner(config_with(["half:1"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    assert [(job.action, job.cost, job.previous_digest) for job in plan.jobs] == [("complete", 0, digest)]


def test_a_tag_that_moved_upstream_is_a_refresh_job_and_the_run_notes_ecr_rechecks_daily() -> None:
    # Given ECR holding digest A of a tag whose upstream now points at B
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=100)
    old, body, blobs = image_manifest("old")
    ecr.hold("docker-hub/library/postgres", "16", old, body, blobs)
    upstream.serve("library/postgres", "16", digest_of("new"))
    # When the run is planned
    plan = planner(config_with(["postgres:16"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then a refresh job knows both digests, and the notes say ECR re-checks a tag at most once a day
    (job,) = plan.jobs
    assert (job.action, job.previous_digest, job.expected_digest) == ("refresh", old, digest_of("new"))
    assert MOVED_TAG_NOTE in plan.notes
    assert "at most once a day" in MOVED_TAG_NOTE


def test_a_tag_pinned_to_the_digest_ecr_holds_is_not_even_headed_upstream() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    digest, body, blobs = image_manifest("pinned")
    ecr.hold("docker-hub/library/redis", "7.4", digest, body, blobs)
    plan = planner(config_with([f"redis:7.4@{digest}"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    assert outcomes(plan) == {"docker.io/library/redis:7.4": (Outcome.ALREADY_CACHED, None)}
    assert upstream.calls == []


def test_a_pinned_tag_that_moved_upstream_fails_as_a_digest_mismatch_without_a_pull() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    pinned = digest_of("pinned")
    upstream.serve("library/redis", "7.4", digest_of("other"))
    plan = planner(config_with([f"redis:7.4@{pinned}"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    assert outcomes(plan) == {"docker.io/library/redis:7.4": (Outcome.FAILED, "digest_mismatch")}
    assert plan.jobs == ()


def test_a_pinned_tag_ecr_holds_at_an_older_digest_is_refreshed_only_to_the_pinned_one() -> None:
    # Given ECR holding an older digest of a pinned tag
    old, body, blobs = image_manifest("old")
    pinned = digest_of("pinned")
    for upstream_digest, expected in ((pinned, "refresh"), (digest_of("other"), "digest_mismatch")):
        ecr, upstream = FakeEcr(), FakeUpstream()
        ecr.hold("docker-hub/library/redis", "7.4", old, body, blobs)
        upstream.serve("library/redis", "7.4", upstream_digest)
        plan = planner(config_with([f"redis:7.4@{pinned}"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
        # Then it is refreshed when the upstream tag now points at the pinned digest, and a mismatch otherwise
        if expected == "refresh":
            (job,) = plan.jobs
            assert (job.action, job.expected_digest, job.previous_digest) == ("refresh", pinned, old)
        else:
            assert outcomes(plan) == {"docker.io/library/redis:7.4": (Outcome.FAILED, "digest_mismatch")}
            assert plan.jobs == ()


def test_jobs_are_queued_in_order_of_need_absent_then_incomplete_then_moved() -> None:
    # Given, listed in the opposite order: a moved tag, a tag ECR holds without one of its layers, an absent tag
    ecr, upstream = FakeEcr(), FakeUpstream()
    moved, moved_body, moved_blobs = image_manifest("moved")
    ecr.hold("docker-hub/library/moved", "1", moved, moved_body, moved_blobs)
    upstream.serve("library/moved", "1", digest_of("moved-new"))
    partial, partial_body, partial_blobs = image_manifest("partial")
    ecr.hold("docker-hub/library/partial", "1", partial, partial_body, partial_blobs[:-1])
    upstream.serve("library/partial", "1", partial)
    upstream.serve("library/absent", "1", digest_of("absent"))
    # When the run is planned
    plan = planner(config_with(["moved:1", "partial:1", "absent:1"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then the jobs go out absent first, then the incomplete one, then the moved one
    assert [(job.subject.split("/")[-1], job.action) for job in plan.jobs] == [
        ("absent:1", "warm"),
        ("partial:1", "complete"),
        ("moved:1", "refresh"),
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RegistryNotFound("registry-1.docker.io", "library/nope", "manifest 9.9 not found", 404), "unknown_tag"),
        (RegistryAuthError("registry-1.docker.io", "library/nope", "refused", 401), "auth"),
        (RegistryRateLimited("registry-1.docker.io", "library/nope", "rate limited"), "rate_limited"),
    ],
)
def test_an_upstream_refusal_fails_the_image_at_planning(error: PullthroughError, reason: str) -> None:
    # Given an image ECR lacks and an upstream that refuses its HEAD, beside one that works
    ecr, upstream = FakeEcr(), FakeUpstream()
    upstream.heads[("library/nope", "9.9")] = error
    upstream.serve("library/fine", "1", digest_of("fine"))
    # When the run is planned
    plan = planner(config_with(["nope:9.9", "fine:1"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then the refused image fails with its reason and a fix, and the other one is queued as usual
    assert outcomes(plan) == {"docker.io/library/nope:9.9": (Outcome.FAILED, reason)}
    assert plan.decided[0].item.fix
    assert [job.subject for job in plan.jobs] == ["docker.io/library/fine:1"]


def test_an_unreadable_secret_fails_the_rules_images_as_auth_and_names_the_secret() -> None:
    # Given a rule whose secret cannot be read
    from pullthrough.errors import SecretError

    def upstream_for(rule: config_module.Rule) -> FakeUpstream:
        raise SecretError("ecr-pullthroughcache/docker-hub", "cannot be read (ResourceNotFoundException)")

    plan = Planner(config_with(["nginx:1.27"]), FakeEcr(), upstream_for).plan(WarmRequest(trigger="t"), RUN)
    (decided,) = plan.decided
    assert (decided.item.outcome, decided.item.reason_code) == (Outcome.FAILED, "auth")
    assert "ecr-pullthroughcache/docker-hub" in (decided.item.fix or "")


def test_when_the_upstream_cannot_be_asked_a_held_image_stays_cached_with_a_warning() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    digest, body, blobs = image_manifest("held")
    ecr.hold("docker-hub/library/held", "1", digest, body, blobs)
    upstream.heads[("library/held", "1")] = RegistryRateLimited("registry-1.docker.io", "library/held", "429")
    plan = planner(config_with(["held:1"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    (decided,) = plan.decided
    assert (decided.item.outcome, decided.item.severity) == (Outcome.ALREADY_CACHED, Severity.WARNING)
    assert "could not be asked" in (decided.item.reason or "")


def test_the_budget_defers_what_does_not_fit_and_warms_absent_images_before_moved_ones() -> None:
    # Given 7 pulls left upstream and a share of half (3 pulls): a moved tag listed first, then three absent images
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=7)
    old, body, blobs = image_manifest("moved")
    ecr.hold("docker-hub/library/moved", "1", old, body, blobs)
    upstream.serve("library/moved", "1", digest_of("moved-new"))
    for name in ("a", "b", "c"):
        upstream.serve(f"library/{name}", "1", digest_of(name))
    # When the run is planned
    plan = planner(config_with(["moved:1", "a:1", "b:1", "c:1"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then the absent images take the budget first and the moved tag waits, with a note saying why
    assert [job.subject for job in plan.jobs] == [f"docker.io/library/{n}:1" for n in ("a", "b", "c")]
    assert outcomes(plan) == {"docker.io/library/moved:1": (Outcome.DEFERRED, "budget")}
    deferred = plan.decided[0].item
    assert deferred.details.pulls_remaining == 7
    assert any("deferred" in note and "of rule(s) docker-hub" in note for note in plan.notes)
    assert plan.planned == 4


def test_a_smaller_image_still_fits_after_a_bigger_one_did_not() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=4)
    upstream.serve("library/multi", "1", digest_of("multi"), manifests.OCI_INDEX)
    upstream.serve("library/small", "1", digest_of("small"))
    plan = planner(config_with(["multi:1", "small:1"]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    assert [job.subject for job in plan.jobs] == ["docker.io/library/small:1"]
    assert outcomes(plan) == {"docker.io/library/multi:1": (Outcome.DEFERRED, "budget")}


def test_tag_patterns_and_latest_n_expand_over_the_upstreams_tag_list() -> None:
    # Given an entry for the latest 2 v1 releases and an upstream with five tags
    ecr, upstream = FakeEcr(), FakeUpstream()
    upstream.tag_lists["acme/app"] = ["v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0", "latest"]
    for tag in ("v1.1.0", "v1.2.0"):
        upstream.serve("acme/app", tag, digest_of(tag))
    entry = {"image": "acme/app", "tag_pattern": r"^v1\.\d+\.\d+$", "latest": 2}
    # When the run is planned
    plan = planner(config_with([entry]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then exactly those two tags are warm jobs
    assert [job.tag for job in plan.jobs] == ["v1.2.0", "v1.1.0"]


def test_tags_latest_n_cannot_order_become_a_note_of_the_plan() -> None:
    # Given an entry for the latest release of an upstream whose tags include floating ones and an -alpine family
    ecr, upstream = FakeEcr(), FakeUpstream()
    upstream.tag_lists["acme/app"] = ["2024.01.15", "2024.01.09", "latest", "edge", "2024.01.15-alpine"]
    upstream.serve("acme/app", "2024.01.15", digest_of("cal"))
    # When the run is planned
    plan = planner(config_with([{"image": "acme/app", "latest": 1}]), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    # Then the calendar version is picked and the plan's notes say what latest-N left out
    assert [job.tag for job in plan.jobs] == ["2024.01.15"]
    assert plan.notes[0].startswith(
        "docker.io/acme/app (latest 1): 2 tag(s) name no version it can order: latest, edge; "
        "tags with a suffix were left out: -alpine (1)."
    )


def test_a_tag_list_failure_fails_the_entry_once_and_spares_the_others() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    upstream.tag_lists["acme/app"] = RegistryAuthError("registry-1.docker.io", "acme/app", "refused", 401)
    upstream.serve("library/fine", "1", digest_of("fine"))
    plan = planner(config_with([{"image": "acme/app", "latest": 1}, "fine:1"]), ecr, upstream).plan(
        WarmRequest(trigger="t"), RUN
    )
    assert outcomes(plan) == {"docker.io/acme/app (latest 1)": (Outcome.FAILED, "auth")}
    assert [job.tag for job in plan.jobs] == ["1"]


def test_two_entries_for_one_tag_make_one_job_for_every_platform_either_wants() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    upstream.serve("library/nginx", "1.27", digest_of("nginx"), manifests.OCI_INDEX)
    images = [
        {"image": "nginx", "tags": ["1.27"], "platforms": ["linux/amd64"]},
        {"image": "nginx:1.27", "platforms": ["linux/arm64"]},
    ]
    plan = planner(config_with(images), ecr, upstream).plan(WarmRequest(trigger="t"), RUN)
    assert [(job.platforms, job.cost) for job in plan.jobs] == [(("linux/amd64", "linux/arm64"), 3)]


def test_a_manual_request_warms_only_what_it_names_and_fails_what_no_rule_caches() -> None:
    # Given a warm list of two images, and a request naming one of them, an unlisted one and an uncacheable one
    ecr, upstream = FakeEcr(), FakeUpstream()
    for name in ("listed", "other", "extra"):
        upstream.serve(f"library/{name}", "1", digest_of(name))
    config = config_with([{"image": "listed:1", "platforms": ["linux/arm64"]}, "other:1"])
    request = WarmRequest(trigger="manual", images=("listed:1", "extra:1", "example.com/x/y:1", "Not A Ref"))
    # When the run is planned
    plan = planner(config, ecr, upstream).plan(request, RUN)
    # Then only the named images are warmed (a listed one keeps its platforms), the rest fail with reasons
    assert [(job.subject, job.platforms) for job in plan.jobs] == [
        ("docker.io/library/listed:1", ("linux/arm64",)),
        ("docker.io/library/extra:1", ("linux/amd64", "linux/arm64")),
    ]
    assert outcomes(plan) == {
        "example.com/x/y:1": (Outcome.FAILED, "no_rule"),
        "Not A Ref": (Outcome.FAILED, "invalid_reference"),
    }


def test_a_requested_image_without_a_tag_is_told_to_add_one_to_itself() -> None:
    # Given a manual request naming an image without a tag that the warm list does not have
    plan = planner(config_with(["listed:1"]), FakeEcr(), FakeUpstream()).plan(
        WarmRequest(trigger="manual", images=("ghcr.io/acme/tool",)), RUN
    )
    # Then the failure shows that image with a tag to fill in, not a generic example
    (decided,) = plan.decided
    assert decided.item.outcome is Outcome.FAILED
    assert "give a tag (ghcr.io/acme/tool:<tag>)" in (decided.item.reason or "")


def test_a_rules_reconciled_request_plans_only_the_images_of_those_rules() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream()
    upstream.serve("library/nginx", "1", digest_of("nginx"))
    upstream.serve("prometheus/node-exporter", "v1", digest_of("ne"))
    config = config_with(["nginx:1", "quay.io/prometheus/node-exporter:v1"])
    plan = planner(config, ecr, upstream).plan(WarmRequest(trigger="r", rules=("quay",)), RUN)
    assert [job.subject for job in plan.jobs] == ["quay.io/prometheus/node-exporter:v1"]
    # And a reconcile after which no rule is ready plans nothing (its images could only fail)
    event = {"detail-type": "Pullthrough Rules Reconciled", "detail": {"rules": []}}
    assert planner(config, ecr, upstream).plan(WarmRequest.from_event(event), RUN).planned == 0


# --- runs open at the same time --------------------------------------------------------------------------------------

KEY = "registry-1.docker.io#ecr-pullthroughcache/docker-hub"  # the Docker Hub rule's allowance key


@dataclass
class FakeAllowances:
    """The ledger's shared allowances: `overtaken` draws fail once each, after `meanwhile` changes what is stored."""

    stored: dict[str, Shared] = field(default_factory=dict)
    overtaken: int = 0
    meanwhile: Any = None
    drawn: list[Shared] = field(default_factory=list)

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]:
        return {key: self.stored[key] for key in keys if key in self.stored}

    def draw(self, allowance: Shared) -> bool:
        current = self.stored.get(allowance.key)
        if self.overtaken:
            self.overtaken -= 1
            if self.meanwhile:
                self.meanwhile(self)
            return False
        if (current.version if current else 0) != allowance.version:
            return False
        self.stored[allowance.key] = Shared(allowance.key, allowance.base, allowance.draws, allowance.version + 1)
        self.drawn.append(allowance)
        return True


def singles(upstream: FakeUpstream, *names: str) -> list[str]:
    for name in names:
        upstream.serve(f"library/{name}", "1", digest_of(name))
    return [f"{name}:1" for name in names]


def open_run(pulls: int, base: int = 8) -> Shared:
    return Shared(KEY, base, (Draw("warm-open", pulls, datetime.now(UTC)),), version=3)


def test_a_run_planned_while_another_is_open_spends_only_what_the_open_run_left_of_one_allowance() -> None:
    # Given an open run that drew 3 of the 4 pulls (half of 8) the allowance had, and 8 pulls still left upstream
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=8)
    allowances = FakeAllowances({KEY: open_run(3)})
    images = singles(upstream, "a", "b", "c")
    # When another run plans three single images
    plan = Planner(config_with(images), ecr, lambda rule: upstream, allowances=allowances, workers=2).plan(
        WarmRequest(trigger="t"), RUN
    )
    # Then one fits (4 - 3), the others are deferred naming the open run, and the draw is stored beside the open run's
    assert [job.subject for job in plan.jobs] == ["docker.io/library/a:1"]
    deferred = [d.item for d in plan.decided]
    assert [(i.outcome, i.reason_code) for i in deferred] == [(Outcome.DEFERRED, "budget")] * 2
    assert all("warm-open (3)" in (i.reason or "") for i in deferred)
    (stored,) = allowances.drawn
    assert (stored.base, {d.run_id: d.pulls for d in stored.draws}) == (8, {"warm-open": 3, RUN: 1})
    assert any("warm-open" in note and "drew 1 pull" in note for note in plan.notes)


def test_a_run_with_no_other_run_open_starts_a_new_allowance_from_what_the_upstream_reports_now() -> None:
    # Given a stored allowance whose runs have all finished (no draw left) and 6 pulls left upstream
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=6)
    allowances = FakeAllowances({KEY: Shared(KEY, 100, (), version=7)})
    images = singles(upstream, "a", "b", "c", "d")
    plan = Planner(config_with(images), ecr, lambda rule: upstream, allowances=allowances, workers=2).plan(
        WarmRequest(trigger="t"), RUN
    )
    # Then the run spends its own share of the 6 (3), and the allowance starts again at 6 with its draw alone
    assert len(plan.jobs) == 3
    (stored,) = allowances.drawn
    assert (stored.base, stored.version, stored.draws[0].run_id, stored.draws[0].pulls) == (6, 7, RUN, 3)


def test_a_draw_another_planner_overtook_is_fitted_again_on_what_that_planner_left() -> None:
    # Given a planner whose first draw is overtaken by another run drawing 3 of the 4 pulls (half of 8)
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=8)

    def other_run_draws(store: FakeAllowances) -> None:
        store.stored[KEY] = open_run(3)

    allowances = FakeAllowances(overtaken=1, meanwhile=other_run_draws)
    images = singles(upstream, "a", "b", "c")
    plan = Planner(config_with(images), ecr, lambda rule: upstream, allowances=allowances, workers=2).plan(
        WarmRequest(trigger="t"), RUN
    )
    # Then the run ends with what the other run left, not with what it first fitted
    assert [job.subject for job in plan.jobs] == ["docker.io/library/a:1"]
    assert {d.run_id: d.pulls for d in allowances.drawn[-1].draws} == {"warm-open": 3, RUN: 1}


def test_a_planner_overtaken_every_time_fails_the_run_rather_than_overspend() -> None:
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=8)
    allowances = FakeAllowances(overtaken=99)
    planned = Planner(config_with(singles(upstream, "a")), ecr, lambda rule: upstream, allowances=allowances, workers=2)
    with pytest.raises(AwsError, match="start the run again"):
        planned.plan(WarmRequest(trigger="t"), RUN)
    assert allowances.drawn == []


def test_images_an_open_run_is_warming_are_left_to_it_and_cost_nothing() -> None:
    # Given an open run warming a:1 and c:1, and a run planning a:1, b:1 and c:1
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=8)
    images = singles(upstream, "a", "b")
    images += singles(upstream, "c")
    held = {f"docker-hub/library/{name}:1": InFlight("warm-open", "schedule", datetime.now(UTC)) for name in ("a", "c")}
    plan = Planner(config_with(images), ecr, lambda rule: upstream, in_flight=held, workers=2).plan(
        WarmRequest(trigger="manual"), RUN
    )
    # Then a:1 is skipped naming the open run (not an alarm: the open run reports it), and never asked upstream
    skipped, _ = [d.item for d in plan.decided]
    assert (skipped.subject, skipped.outcome, skipped.reason_code, skipped.severity) == (
        "docker.io/library/a:1",
        Outcome.SKIPPED,
        "in_flight",
        Severity.OK,
    )
    assert "warm-open" in (skipped.reason or "")
    assert [job.subject for job in plan.jobs] == ["docker.io/library/b:1"]
    assert ("HEAD", "library/a", "1") not in upstream.calls
    assert any(note.startswith("2 image(s) skipped: run warm-open") for note in plan.notes)
