"""Warm runs end to end on the sandbox: template.yaml deployed into moto, the real registries, the real handlers.

plan_warming is fired as its schedule, its rule or a manual invoke would; the jobs it queued are received from
moto's queue and handed to warm_images as the SQS event source does (partial batch responses honoured); the
reports are read from a queue subscribed to the report topic. The upstream is the sandbox's Hub-like front (its
counters are what a rate limit would count); ECR is the sandbox's registry model, which imports as ECR documents:
the whole index on a tag pull, each layer once something asks for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullthrough.aws import ecr
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm import upstream_clients
from pullthrough.warm.job import WarmJob
from pullthrough.warm.run import ledger_for
from sandbox import PushedImage, Sandbox
from sandbox.registries import skopeo
from tests.canary import canary_token
from tests.integration.warm_support import WANTED, WarmHarness, unique

pytestmark = pytest.mark.sandbox

HUB, GHCR = "warm-hub", "warm-ghcr"
WRONG_TOKEN = canary_token("wrong")  # what the GHCR rule's secret holds: the upstream refuses it
LAYERS = (1500, 300)  # small: the tests are about the flow, not bandwidth
QUICK = {"poll": 1, "download_after": 600, "give_up_after": 600}  # look once a second; no last resort


class Warm(WarmHarness):
    """This module's stack: its own rule prefixes, half the upstream's budget by default."""

    HUB, GHCR = HUB, GHCR
    STACK_LABEL = "sandbox"
    LAYERS = LAYERS
    BUDGET_SHARE = 0.5


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warm]:
    """template.yaml in moto, two rules (a good Docker Hub user, a GHCR user with a wrong token), a report reader."""
    with Warm.deployed(sandbox, tmp_path_factory.mktemp("warm"), ghcr_token=WRONG_TOKEN) as deployed_world:
        yield deployed_world


@pytest.fixture
def front(world: Warm) -> Iterator[Any]:
    """The upstream front; no fault outlives the test that set it."""
    yield world.sb.upstream
    world.sb.upstream.faults.clear()


@pytest.fixture
def imports(world: Warm) -> Iterator[Any]:
    """ECR's import behaviour; back to imports at once after the test."""
    yield world.sb.registry.imports
    world.sb.registry.imports.clear()


@dataclass
class Catalogue:
    """The warm list of the first run, and what it produced."""

    images: dict[str, PushedImage]
    summary: dict[str, Any]
    report: Report
    pulls: int


@pytest.fixture(scope="module")
def warmed(world: Warm) -> Catalogue:
    """One run over a single-platform image, an OCI multi-arch image and a Docker manifest list."""
    ns = unique("warm")
    images = {
        "single": world.push(f"{ns}/single", platforms=("linux/amd64",)),
        "multi": world.push(f"{ns}/multi", platforms=("linux/amd64", "linux/arm64", "linux/s390x")),
        "list": world.push(f"{ns}/list", platforms=WANTED, media="docker"),
    }
    world.configure([f"{image.repository}:{image.tag}" for image in images.values()])
    before = world.pulls()
    summary, report = world.run()
    return Catalogue(images, summary, report, world.pulls() - before)


def subject(image: PushedImage) -> str:
    return f"docker.io/{image.repository}:{image.tag}"


def by_subject(report: Report) -> dict[str, Any]:
    return {item.subject: item for item in report.items}


def wanted_blobs(image: PushedImage) -> dict[str, list[str]]:
    """Manifest digest -> blobs, for the wanted platforms only."""
    return {
        digest: image.blobs[digest]
        for platform, digest in image.platforms.items()
        if platform.split("/")[:2] in [p.split("/") for p in WANTED]
    } or dict(image.blobs)


def layer_states(repository: str, digests: list[str]) -> dict[str, str]:
    return ecr.layer_states(repository, digests)


# --- a run, offline, and again ---------------------------------------------------------------------------------------


def test_a_run_imports_through_ecr_moving_only_manifests_and_reports_once(world: Warm, warmed: Catalogue) -> None:
    # Given the first run over three images (see `warmed`)
    report, images = warmed.report, warmed.images
    items = by_subject(report)
    # Then every image is warmed, every planned image is accounted for, and the run was reported once
    assert warmed.summary["planned"] == warmed.summary["queued"] == 3
    assert {s: i.outcome for s, i in items.items()} == {subject(i): Outcome.WARMED for i in images.values()}
    assert report.total == warmed.summary["planned"]
    # And ECR's import of an index cost the index and every manifest it lists, whatever was wanted: the upstream
    # counted exactly what the report says was spent
    assert [items[subject(images[k])].details.pulls_spent for k in ("single", "multi", "list")] == [1, 4, 3]
    assert report.totals.pulls_spent == warmed.pulls == 8
    assert items[subject(images["multi"])].details.index_manifests == 3
    assert items[subject(images["multi"])].details.platforms == WANTED
    # And only the top manifest of each image passed through the function: no layer did
    for key, image in images.items():
        held = world.sb.registry.repository(f"{HUB}/{image.repository}")
        assert held is not None
        assert items[subject(image)].details.bytes_moved == len(held.manifests[image.digest].body), key


def test_ecr_holds_every_manifest_of_the_index_and_the_layers_of_the_wanted_platforms(
    world: Warm, warmed: Catalogue
) -> None:
    # Given the multi-arch image warmed for linux/amd64 and linux/arm64 only
    image = warmed.images["multi"]
    repository = f"{HUB}/{image.repository}"
    # When ECR is asked what it holds
    described = boto3.client("ecr").describe_images(repositoryName=repository)["imageDetails"]
    # Then it imported the index and all three image manifests, s390x included (as ECR pulls a whole index)
    assert {d["imageDigest"] for d in described} == {image.digest, *image.platforms.values()}
    # And it holds every config and layer of the wanted platforms, none of the platform nobody asked for
    wanted = [d for digests in wanted_blobs(image).values() for d in digests]
    assert set(layer_states(repository, wanted).values()) == {"AVAILABLE"}
    unwanted = image.blobs[image.platforms["linux/s390x"]]
    assert set(layer_states(repository, unwanted).values()) == {"MISSING"}


def test_warmed_images_pull_with_skopeo_with_the_upstream_stopped(
    world: Warm, warmed: Catalogue, tmp_path: Path
) -> None:
    # Given the warmed images, and the upstream taken down
    world.sb.stop_upstream()
    try:
        # When a real client pulls them through the ECR endpoint: every platform of the images whose platforms are all
        # wanted, and each wanted platform of the one with a platform nobody asked for
        pulls = {
            key: skopeo.copy(world.sb.ecr_url, world.sb.ecr_password, f"{HUB}/{i.repository}:1.0", tmp_path / key)
            for key, i in warmed.images.items()
            if key != "multi"
        }
        multi = f"{HUB}/{warmed.images['multi'].repository}:1.0"
        for platform in WANTED:
            pulls[platform] = skopeo.copy(
                world.sb.ecr_url,
                world.sb.ecr_password,
                multi,
                tmp_path / platform.replace("/", "-"),
                multi_arch="system",
                platform=platform,
            )
        # Then every pull succeeds offline
        assert {key: (pulled.ok, pulled.stderr) for key, pulled in pulls.items()} == {key: (True, "") for key in pulls}
        # And the platform nobody asked for is not there: its manifest is, its layers were never imported
        unwanted = skopeo.copy(
            world.sb.ecr_url,
            world.sb.ecr_password,
            multi,
            tmp_path / "s390x",
            multi_arch="system",
            platform="linux/s390x",
        )
        assert not unwanted.ok
    finally:
        world.sb.start_upstream()


def test_a_second_run_spends_no_upstream_manifest_get(world: Warm, warmed: Catalogue) -> None:
    # Given the warmed images, When the same warm list runs again
    before = world.pulls()
    summary, report = world.run()
    # Then nothing is queued, every image is already cached, and the upstream saw no manifest GET at all
    assert (summary["queued"], summary["decided"]) == (0, {"already_cached": 3})
    assert {i.outcome for i in report.items} == {Outcome.ALREADY_CACHED}
    assert world.pulls() == before
    assert report.totals.pulls_spent == 0


# --- failures stay with their image --------------------------------------------------------------------------------


def test_each_failure_ends_in_its_own_outcome_and_spares_the_other_images(
    world: Warm, front: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a good image; a tag the upstream lacks; a private GHCR image whose rule holds a wrong token; an image
    # whose manifests answer 429 whatever the retry; and one so slow every call to it times out
    ns = unique("fail")
    good = world.push(f"{ns}/good")
    unknown = world.push(f"{ns}/unknown")
    private = world.push(f"private/{ns}-app")
    storm = world.push(f"{ns}/storm")
    slow = world.push(f"{ns}/slow")
    world.configure(
        [
            f"{good.repository}:1.0",
            f"{unknown.repository}:9.9",
            f"ghcr.io/{private.repository}:1.0",
            f"{storm.repository}:1.0",
            f"{slow.repository}:1.0",
        ]
    )
    front.faults.too_many_requests(retry_after=0, path=rf"^/v2/{storm.repository}/manifests/", times=None)
    front.faults.delay(3.0, path=rf"^/v2/{slow.repository}/manifests/", times=None)
    monkeypatch.setattr(upstream_clients, "UPSTREAM_TIMEOUT", 1.0)
    before = world.pulls()
    # When the run goes through
    summary, report = world.run()
    # Then each image has its outcome and reason, and the planned count is the sum of the outcomes
    outcomes = {i.subject: (i.outcome, i.reason_code) for i in report.items}
    assert outcomes == {
        subject(good): (Outcome.WARMED, None),
        f"docker.io/{unknown.repository}:9.9": (Outcome.FAILED, "unknown_tag"),
        f"ghcr.io/{private.repository}:1.0": (Outcome.FAILED, "auth"),
        subject(storm): (Outcome.FAILED, "rate_limited"),
        subject(slow): (Outcome.FAILED, "timeout"),
    }
    assert summary["planned"] == report.total == sum(report.counts.values()) == 5
    # And only the good image spent a pull; the failures name a fix and never the token
    assert world.pulls() - before == 1
    failures = [i for i in report.items if i.outcome is Outcome.FAILED]
    assert all(i.fix for i in failures)
    assert WRONG_TOKEN not in report.body()  # the canary guard watches every other channel too
    assert f"ecr-pullthroughcache/{GHCR}" in (by_subject(report)[f"ghcr.io/{private.repository}:1.0"].fix or "")


REFUSALS = {
    # what the upstream answers ECR: the fault, the reason code, and the ECR failure code the reason rests on
    "refused-token": ("token", "auth", "UpstreamAccessDenied"),
    "forbidden": ("403", "auth", "UpstreamAccessDenied"),
    "throttled": ("429", "rate_limited", "UpstreamTooManyRequests"),
    "outage": ("503", "upstream_down", "UpstreamUnavailable"),
    "unreachable": ("reset", "upstream_down", "UpstreamUnavailable"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_an_upstream_refusal_during_the_import_is_reported_with_ecrs_own_code(
    world: Warm, front: Any, case: str
) -> None:
    # Given a run planned while the upstream was fine, and then the upstream refusing ECR's import of one image
    fault, reason, code = REFUSALS[case]
    ns = unique(f"refused-{case}")
    calm, refused = world.push(f"{ns}/calm"), world.push(f"{ns}/refused")
    world.configure([f"{calm.repository}:1.0", f"{refused.repository}:1.0"], imports=QUICK)
    summary = world.plan()
    manifests = rf"^/v2/{refused.repository}/manifests/"
    if fault == "token":
        front.faults.token_status(401, repository=refused.repository, times=None)
    elif fault == "reset":
        front.faults.reset(path=manifests, times=None)
    else:
        front.faults.status(int(fault), path=manifests, times=None)
    # When the jobs are warmed
    world.drain()
    items = by_subject(world.report_of(summary["run_id"]))
    # Then the refused image fails with the reason ECR's failure code stands for, naming that code; the other is warmed
    failed = items[subject(refused)]
    assert (failed.outcome, failed.reason_code) == (Outcome.FAILED, reason)
    assert f"ECR says {code}" in (failed.reason or "")
    assert failed.fix
    assert items[subject(calm)].outcome is Outcome.WARMED


def test_a_layer_the_upstream_will_not_give_fails_with_ecrs_answer(world: Warm, front: Any) -> None:
    # Given a planned image whose layers the upstream then throttles (the manifest still comes)
    image = world.push(unique("layers/throttled"))
    world.configure([f"{image.repository}:1.0"], imports=QUICK)
    summary = world.plan()
    front.faults.too_many_requests(path=rf"^/v2/{image.repository}/blobs/", times=None)
    # When the job is warmed
    world.drain()
    (item,) = world.report_of(summary["run_id"]).items
    # Then GetDownloadUrlForLayer's refusal (UnableToGetUpstreamLayerException) names the reason: the rate limit
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "rate_limited")
    assert "UnableToGetUpstreamLayerException" in (item.reason or "")


def test_the_budget_charges_the_index_and_every_manifest_it_lists(world: Warm) -> None:
    # Given a multi-arch image of three platforms of which two are wanted, and three single ones
    ns = unique("budget")
    multi = world.push(f"{ns}/multi", platforms=("linux/amd64", "linux/arm64", "linux/s390x"))
    singles = [world.push(f"{ns}/single{i}") for i in range(3)]
    remaining = world.sb.upstream.user_limit - world.sb.upstream.pulls[world.user]
    # ...and a share leaving room for 6.5 pulls: an index never seen is charged by its size (about 900 bytes: the index
    # and four manifests, one more than it lists; never less than the index and the wanted platforms)
    world.configure([f"{image.repository}:1.0" for image in [multi, *singles]], budget_share=round(6.5 / remaining, 6))
    before = world.pulls()
    # When the run goes through
    summary, report = world.run()
    # Then the index is charged for all its manifests, not only the wanted ones: it and one single image fit
    outcomes = {i.subject: i.outcome for i in report.items}
    assert outcomes == {
        subject(multi): Outcome.WARMED,
        subject(singles[0]): Outcome.WARMED,
        subject(singles[1]): Outcome.DEFERRED,
        subject(singles[2]): Outcome.DEFERRED,
    }
    # And what ECR's import cost upstream is index + every manifest, exactly what the upstream counted
    assert by_subject(report)[subject(multi)].details.pulls_spent == 1 + 3
    assert world.pulls() - before == report.totals.pulls_spent == 5
    assert summary["decided"] == {"deferred": 2}
    assert any("deferred" in note for note in report.notes)
    # And the next run warms what was deferred, spending nothing on what is cached now
    _, again = world.run()
    assert {i.subject: i.outcome for i in again.items if i.outcome is Outcome.WARMED} == {
        subject(singles[1]): Outcome.WARMED,
        subject(singles[2]): Outcome.WARMED,
    }


def test_a_moved_index_is_charged_what_its_last_import_showed(world: Warm) -> None:
    # Given a warmed multi-arch tag (ECR imported its index of three manifests) that then moves upstream
    name = unique("learned/app")
    world.push(name, platforms=("linux/amd64", "linux/arm64", "linux/s390x"), seed=1)
    world.configure([f"{name}:1.0"])
    world.run()
    world.push(name, platforms=("linux/amd64", "linux/arm64", "linux/s390x"), seed=2)
    world.age(hours=25)  # ECR's daily re-check is due
    # When the next run plans it
    world.plan()
    (job,) = [WarmJob.model_validate_json(m["Body"]) for m in world.receive()]
    # Then it is charged the index and the three manifests the last import showed, not an estimate
    assert (job.action, job.cost) == ("refresh", 4)


def test_a_second_run_recalls_what_the_first_verified_and_keeps_only_its_runs_meta(
    world: Warm, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a multi-arch image and a single one, warmed by a first run
    ns = unique("recall")
    images = [world.push(f"{ns}/multi", platforms=WANTED), world.push(f"{ns}/single")]
    world.configure([f"{image.repository}:1.0" for image in images])
    _, first = world.run()
    assert first.counts == {Outcome.WARMED: 2}
    reads: list[str] = []
    for name in ("get_images", "layer_states"):
        monkeypatch.setattr(ecr, name, _spy(reads, name, getattr(ecr, name)))
    # When the same list runs again
    summary, again = world.run()
    # Then ECR's manifests and blobs are not read again: the warm jobs verified them, and the ledger remembers it
    assert reads == []
    assert again.counts == {Outcome.ALREADY_CACHED: 2}
    warmed = {i.subject: (i.details.digest, i.details.platforms, i.details.size) for i in first.items}
    assert {i.subject: (i.details.digest, i.details.platforms, i.details.size) for i in again.items} == warmed
    # And the run, which queued nothing, was reported by the planner and left its META alone, closed and reported
    assert summary["queued"] == 0
    ledger = ledger_for(_settings(world))
    state = ledger.run(summary["run_id"])
    assert state is not None
    assert (state.status, state.closed_by, state.counts) == ("closed", "planner", {"already_cached": 2})
    assert state.reported_at is not None
    assert ledger.jobs(summary["run_id"]) == []
    assert summary["run_id"] not in {run.run_id for run in ledger.open_runs()}


def _spy(calls: list[str], name: str, function: Any) -> Any:
    def spied(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return function(*args, **kwargs)

    return spied


# --- the run as a whole --------------------------------------------------------------------------------------------


def test_a_run_of_more_jobs_than_one_sqs_batch_completes_and_reports_once(world: Warm) -> None:
    # Given 21 images: three SQS batches of at most ten
    ns = unique("many")
    images = [world.push(f"{ns}/app{i}", layer_sizes=(256,)) for i in range(21)]
    world.configure([f"{image.repository}:1.0" for image in images])
    invocations = len(world.stack.invocations)
    # When the run goes through
    summary = world.plan()
    drained = world.drain()
    # Then warm_images ran once per batch, and exactly one report accounts for every image
    batches = [kind for _, kind in world.stack.invocations[invocations:] if kind == "sqs"]
    assert (summary["queued"], drained, len(batches)) == (21, 21, 3)
    (report,) = world.reports_of(summary["run_id"])
    assert report.counts == {Outcome.WARMED: 21}


def test_a_redelivered_finished_job_changes_nothing(world: Warm) -> None:
    # Given a run whose jobs were received and warmed
    ns = unique("again")
    images = [world.push(f"{ns}/app{i}") for i in range(2)]
    world.configure([f"{image.repository}:1.0" for image in images])
    summary = world.plan()
    messages = world.receive()
    assert world.deliver(messages) == {"batchItemFailures": []}
    before = world.pulls()
    # When SQS delivers the same messages again
    again = world.deliver(messages)
    # Then nothing fails, nothing is pulled, the ledger counts each job once and the run was reported once
    assert again == {"batchItemFailures": []}
    assert world.pulls() == before
    state = ledger_for(_settings(world)).run(summary["run_id"])
    assert state is not None
    assert (state.planned, state.done, state.counts) == (2, 2, {"warmed": 2})
    assert len(world.reports_of(summary["run_id"])) == 1


def test_a_run_with_a_job_in_the_dead_letter_queue_is_closed_and_reported_by_the_next_planner(world: Warm) -> None:
    # Given a run of two jobs of which one is warmed and the other never comes back (it went to the DLQ)
    ns = unique("lost")
    kept, lost = world.push(f"{ns}/kept"), world.push(f"{ns}/lost")
    world.configure([f"{kept.repository}:1.0", f"{lost.repository}:1.0"])
    summary = world.plan()
    messages = world.receive()
    delivered = [m for m in messages if kept.repository in m["Body"]]
    world.deliver(delivered)
    assert world.reports_of(summary["run_id"]) == []
    # ...and its deadline has passed
    _expire(world, summary["run_id"])
    # When the next planner run starts
    following = world.plan()
    # Then it closes the stuck run and reports it once, the lost job as not finished
    assert following["closed_runs"] == [summary["run_id"]]
    report = world.report_of(summary["run_id"])
    assert {i.subject: (i.outcome, i.reason_code) for i in report.items} == {
        subject(kept): (Outcome.WARMED, None),
        subject(lost): (Outcome.FAILED, "not_finished"),
    }
    assert world.plan()["closed_runs"] == []
    world.drain()
    assert len(world.reports_of(summary["run_id"])) == 1


def _settings(world: Warm) -> Any:
    from pullthrough.env import Settings

    return Settings.from_env(world.stack.environment("WarmImagesFunction"))


def _expire(world: Warm, run_id: str) -> None:
    """Move a run's deadline into the past, as three hours passing would."""
    table = world.stack.physical["LedgerTable"]
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET deadline = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )


def test_a_moved_tag_waits_for_ecrs_daily_recheck_then_is_refreshed(world: Warm) -> None:
    # Given a warmed tag that then moves upstream
    name = unique("moving/app")
    first = world.push(name, seed=1)
    world.configure([f"{name}:1.0"])
    world.run()
    moved = world.push(name, seed=2)
    assert moved.digest != first.digest
    # ...and whose import the ledger remembers as a look upstream
    [remembered] = ledger_for(_settings(world)).remembered([(f"{HUB}/{name}", "1.0")]).values()
    assert remembered.looked is not None
    assert remembered.digest == first.digest
    # When the next run goes through within the day ECR imported the tag
    heads = world.sb.upstream.counters[("HEAD", "manifest")]
    _, report = world.run()
    # Then it does not ask the upstream (ECR would not look again yet): ECR's copy is cached, at the digest it holds
    (item,) = report.items
    assert (item.outcome, item.reason_code, item.details.digest) == (Outcome.ALREADY_CACHED, None, first.digest)
    assert world.sb.upstream.counters[("HEAD", "manifest")] == heads
    # And once ECR's re-check is due, the next run HEADs the tag and refreshes it
    world.age(hours=25)
    _, later = world.run()
    (item,) = later.items
    assert (item.outcome, item.details.digest, item.details.previous_digest) == (
        Outcome.REFRESHED,
        moved.digest,
        first.digest,
    )


def test_a_pinned_tag_that_moves_between_plan_and_warm_fails_as_a_mismatch_and_is_never_reported_warmed(
    world: Warm,
) -> None:
    # Given a tag pinned to the digest it has upstream when the run is planned
    name = unique("pinned/app")
    pinned = world.push(name, seed=1)
    world.configure([f"{name}:1.0@{pinned.digest}"])
    summary = world.plan()
    # When the tag moves upstream before warm_images takes the job (ECR imports what the tag points at then)
    moved = world.push(name, seed=2)
    world.drain()
    # Then the image fails as a digest mismatch naming what ECR serves, never warmed
    (item,) = world.report_of(summary["run_id"]).items
    assert (item.outcome, item.reason_code, item.details.digest) == (Outcome.FAILED, "digest_mismatch", moved.digest)
    assert pinned.digest in (item.reason or "")


def test_a_manual_invoke_and_the_rules_reconciled_event_warm_what_they_name(world: Warm) -> None:
    # Given a listed image through each rule (the GHCR rule's token is wrong)
    ns = unique("manual")
    hub, other = world.push(f"{ns}/hub"), world.push(f"{ns}/other")
    world.configure([f"{hub.repository}:1.0", f"ghcr.io/{other.repository}:1.0"])
    # When a manual invoke names the Docker Hub image, and the rules-reconciled event names the GHCR rule only
    manual = world.plan({"images": [f"{hub.repository}:1.0"]})
    world.drain()
    (reconciled,) = world.stack.put_event(
        {"source": "pullthrough", "detail-type": "Pullthrough Rules Reconciled", "detail": {"rules": [GHCR]}}
    )
    # Then each run planned exactly the images it names, and each was reported
    assert (manual["planned"], manual["trigger"]) == (1, "manual invoke")
    assert {i.subject: i.outcome for i in world.report_of(manual["run_id"]).items} == {subject(hub): Outcome.WARMED}
    assert (reconciled["planned"], reconciled["trigger"]) == (1, "rules reconciled")
    items = world.report_of(reconciled["run_id"]).items
    assert [(i.subject, i.reason_code) for i in items] == [(f"ghcr.io/{other.repository}:1.0", "auth")]


def test_the_cli_warms_an_image_from_here_and_prints_its_outcome(
    world: Warm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given an image upstream, the sandbox's endpoints in the environment, and no ACCOUNT_ID (as at a terminal)
    import io

    from pullthrough import cli
    from pullthrough.observability import logger

    image = world.push(unique("cli/app"))
    world.configure([f"{image.repository}:1.0"])
    for key, value in world.sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ACCOUNT_ID", raising=False)
    monkeypatch.chdir(tmp_path)  # no config/pullthrough.yaml here: --config is the one used
    out, err = io.StringIO(), io.StringIO()
    level = logger.log_level
    before = world.pulls()
    # When `pullthrough warm --image REF` runs, then runs again
    try:
        code = cli.main(
            ["warm", "--config", world.stack.extra_env["PULLTHROUGH_CONFIG"], "--image", f"{image.repository}:1.0"],
            cli.Io(stdout=out, stderr=err),
        )
        again = cli.main(
            ["warm", "--config", world.stack.extra_env["PULLTHROUGH_CONFIG"]], cli.Io(stdout=io.StringIO())
        )
    finally:
        logger.setLevel(level)
    # Then it warmed the image in this process (one pull), said so, and a second pass found it cached
    assert (code, again, err.getvalue()) == (0, 0, "")
    text = out.getvalue()
    assert f"warmed         {subject(image)}" in text
    assert "1 upstream pulls spent" in text
    assert world.pulls() - before == 1


def test_a_dry_run_plans_and_reports_but_queues_and_records_nothing(world: Warm) -> None:
    # Given an image ECR lacks, and PULLTHROUGH_DRY_RUN set
    image = world.push(unique("dry/app"))
    world.configure([f"{image.repository}:1.0"])
    world.stack.extra_env["PULLTHROUGH_DRY_RUN"] = "true"
    before = world.pulls()
    try:
        # When the planner runs
        summary = world.plan()
    finally:
        del world.stack.extra_env["PULLTHROUGH_DRY_RUN"]
    # Then its report says what a run would do, and nothing was queued, recorded or pulled
    report = world.report_of(summary["run_id"])
    assert report.dry_run
    assert [(i.subject, i.outcome) for i in report.items] == [(subject(image), Outcome.WARMED)]
    assert (summary["queued"], summary["dry_run"]) == (0, True)
    assert world.receive() == []
    assert ledger_for(_settings(world)).run(summary["run_id"]) is None
    assert world.pulls() == before
