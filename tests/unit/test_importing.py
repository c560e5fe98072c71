"""One image's import through ECR (pullthrough/importing.py) against a fake ECR and a fake clock: nothing sleeps.

The fake answers as the sandbox's ECR does: the trigger imports the manifest (and an index's children), a layer is
imported only once GetDownloadUrlForLayer asks for it, and then shows AVAILABLE after a number of checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from pullthrough.aws.ecr import ImageFailure, Images, StoredManifest
from pullthrough.errors import AwsAccessDenied, AwsError, AwsThrottled, RegistryUnavailable
from pullthrough.registry import manifests
from pullthrough.registry.client import Manifest
from pullthrough.warm.importing import (
    Archived,
    ImageRefusal,
    Import,
    Incomplete,
    Landed,
    Mismatch,
    NoPlatform,
    Progress,
    Refused,
    Wait,
    Waiting,
)
from tests.unit.test_planning import digest_of, image_manifest, index_manifest

REPO = "docker-hub/library/app"
T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)


class Clock:
    """Monotonic seconds and wall time that move only when the code under test sleeps."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.seconds += seconds


@dataclass
class FakeEcr:
    """ECR as an import sees it; `checks_to_import`: checks before an asked-for layer is AVAILABLE (None: never)."""

    manifests: dict[str, bytes] = field(default_factory=dict)  # reference (tag or digest) -> body
    layers: dict[str, str] = field(default_factory=dict)  # digest -> AVAILABLE | UNAVAILABLE | ARCHIVED
    checks_to_import: int | None = 1
    pulled_only: bool = False  # a layer is imported only when downloaded (the other reading of AWS's docs)
    refusals: dict[str, ImageFailure] = field(default_factory=dict)
    layer_errors: dict[str, AwsError] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    _countdown: dict[str, int] = field(default_factory=dict)

    def serve(self, reference: str, body: bytes) -> str:
        digest = manifests.sha256_digest(body)
        self.manifests[reference] = self.manifests[digest] = body
        return digest

    def _manifest(self, body: bytes) -> Manifest:
        kind = manifests.media_type_of(body, None)
        return Manifest(manifests.sha256_digest(body), kind, len(body), None, body)

    def trigger(self, repository: str, tag: str) -> Manifest:
        self.calls.append(("trigger", tag))
        return self._manifest(self.manifests[tag])

    def images(self, repository: str, references: Sequence[str]) -> Images:
        self.calls.append(("images", tuple(references)))
        found, failures = {}, {}
        for ref in references:
            if ref in self.refusals:
                failures[ref] = self.refusals[ref]
            elif ref in self.manifests:
                body = self.manifests[ref]
                found[ref] = StoredManifest(manifests.sha256_digest(body), manifests.media_type_of(body, None), body)
        return Images(found, failures)

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]:
        self.calls.append(("states", tuple(digests)))
        for digest in list(self._countdown):
            self._countdown[digest] -= 1
            if self._countdown[digest] <= 0:
                self.layers[digest] = "AVAILABLE"
                del self._countdown[digest]
        return {d: self.layers.get(d, "MISSING") for d in digests}

    def request_layer(self, repository: str, digest: str) -> str:
        self.calls.append(("request", digest))
        if digest in self.layer_errors:
            raise self.layer_errors[digest]
        if not self.pulled_only:
            self._start(digest)
        return f"https://upstream.example/{digest}"

    def download(self, repository: str, digest: str) -> int:
        self.calls.append(("download", digest))
        self._start(digest)
        return 100

    def _start(self, digest: str) -> None:
        if self.layers.get(digest) in ("AVAILABLE", "UNAVAILABLE"):
            return
        self.layers[digest] = "UNAVAILABLE"
        if self.checks_to_import is not None:
            self._countdown[digest] = self.checks_to_import

    def asked(self, kind: str) -> list[object]:
        return [what for called, what in self.calls if called == kind]


def importer(ecr: FakeEcr, clock: Clock, **overrides: object) -> Import:
    values: dict[str, object] = {
        "ecr": ecr,
        "repository": REPO,
        "tag": "1",
        "platforms": ("linux/amd64", "linux/arm64"),
        "pinned": None,
        "wait": Wait(poll=60, download_after=900, give_up_after=3600),
        "trigger": True,
        "now": clock.now,
        "clock": clock.monotonic,
        "sleep": clock.sleep,
    }
    values.update(overrides)
    return Import(**values)  # type: ignore[arg-type]


def test_a_single_image_is_triggered_its_missing_layers_asked_for_and_waited_for() -> None:
    # Given ECR that will import each layer a couple of checks after it is asked for
    ecr, clock = FakeEcr(checks_to_import=2), Clock()
    digest, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    # When the image is looked at
    result = importer(ecr, clock).look(None, seconds_left=None)
    # Then one manifest GET triggered ECR, every layer ECR lacked was asked for once, and ECR was waited for
    assert isinstance(result, Landed)
    assert ecr.asked("trigger") == ["1"]
    assert ecr.asked("request") == blobs
    assert ecr.asked("download") == []
    assert (result.digest, result.size, result.children) == (digest, 210, 0)
    # And only the manifest passed through the function; the import cost one upstream pull
    assert (result.progress.moved, result.progress.spent) == (len(body), 1)
    assert clock.slept


def test_layers_are_checked_after_ecr_had_time_to_import_then_less_and_less_often() -> None:
    # Given ECR that holds each asked-for layer only at the sixth check after it was asked for
    ecr, clock = FakeEcr(checks_to_import=6), Clock()
    _, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    # When the image is looked at
    result = importer(ecr, clock).look(None, seconds_left=None)
    # Then the first check after asking came half a second later, and the pause doubled up to five seconds
    assert isinstance(result, Landed)
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    # And every check was one BatchCheckLayerAvailability for all the image's layers: the first, and one per pause
    assert ecr.asked("states") == [tuple(blobs)] * 7


def test_an_index_costs_every_manifest_it_lists_and_only_the_wanted_platforms_layers_are_asked_for() -> None:
    # Given an index of three platforms of which two are wanted
    ecr, clock = FakeEcr(), Clock()
    children = {}
    for platform, name in (("linux/amd64", "amd"), ("linux/arm64/v8", "arm"), ("linux/s390x", "s390x")):
        digest, body, blobs = image_manifest(name)
        ecr.serve(digest, body)
        children[platform] = (digest, blobs)
    _, top_body = index_manifest({p: d for p, (d, _) in children.items()})
    top = ecr.serve("1", top_body)
    # When it is looked at
    result = importer(ecr, clock).look(None, seconds_left=None)
    # Then ECR's import is charged the index and all three manifests (the ECR guide: it pulls them all)
    assert isinstance(result, Landed)
    assert (result.digest, result.children, result.progress.spent) == (top, 3, 4)
    # And the wanted platforms' manifests were read from ECR, and only their layers asked for
    assert ecr.asked("images") == [(children["linux/amd64"][0], children["linux/arm64/v8"][0])]
    wanted = children["linux/amd64"][1] + children["linux/arm64/v8"][1]
    assert sorted(ecr.asked("request")) == sorted(wanted)  # type: ignore[type-var]
    assert result.platforms == ("linux/amd64", "linux/arm64")


def test_an_index_without_a_wanted_platform_names_what_it_offers() -> None:
    ecr, clock = FakeEcr(), Clock()
    _, top_body = index_manifest({"linux/s390x": digest_of("s390x")})
    ecr.serve("1", top_body)
    result = importer(ecr, clock).look(None, seconds_left=None)
    assert isinstance(result, NoPlatform)
    assert result.offered == ("linux/s390x",)
    assert ecr.asked("request") == []


def test_an_import_slower_than_one_look_hands_the_job_back_and_the_next_look_goes_on_without_a_new_trigger() -> None:
    # Given ECR that has not imported the layers by the end of the invocation's look
    ecr, clock = FakeEcr(checks_to_import=None), Clock()
    _, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    look = importer(ecr, clock, wait=Wait(poll=10, download_after=900, give_up_after=3600))
    # When it is looked at with 40 s of the invocation left (25 to wait, 15 kept back)
    first = look.look(None, seconds_left=40.0)
    # Then the look waited its poll (10 s), no longer, and hands the job back for 30 s, the layers still missing
    assert isinstance(first, Waiting)
    assert sum(clock.slept) == pytest.approx(10.0)
    assert (first.delay, first.missing, first.progress.looks) == (30, tuple(blobs), 2)
    # And when it is looked at again, ECR is not triggered again, and the next delay doubles
    second = look.look(first.progress, seconds_left=None)
    assert isinstance(second, Waiting)
    assert ecr.asked("trigger") == ["1"]
    assert second.delay == 60
    assert second.progress.spent == first.progress.spent == 1
    # And with a longer poll, a look stops 15 s before the invocation's end
    short, fresh = Clock(), FakeEcr(checks_to_import=None)
    fresh.serve("1", body)
    importer(fresh, short, wait=Wait(poll=60, download_after=900, give_up_after=3600)).look(None, seconds_left=40.0)
    assert sum(short.slept) == pytest.approx(25.0)


def test_the_delay_never_passes_the_next_milestone_nor_sqs_limit() -> None:
    ecr, clock = FakeEcr(checks_to_import=None), Clock()
    _, body, _ = image_manifest("app")
    ecr.serve("1", body)
    wait = Wait(poll=1, download_after=100_000, give_up_after=100_000)
    progress = Progress(T0, manifests.sha256_digest(body), looks=9)
    # A tenth look: 30 s doubled nine times is far past SQS's 15 minutes
    result = importer(ecr, clock, wait=wait).look(progress, seconds_left=None)
    assert isinstance(result, Waiting)
    assert result.delay == 900
    # And with the last resort 20 s away, the next look comes then
    near = Wait(poll=1, download_after=21, give_up_after=100_000)
    result = importer(ecr, Clock(), wait=near).look(Progress(T0, progress.digest, looks=3), seconds_left=None)
    assert isinstance(result, Waiting)
    assert result.delay == 20


def test_the_next_look_comes_no_later_than_giving_up_and_ignores_a_last_resort_switched_off() -> None:
    ecr = FakeEcr(checks_to_import=None)
    _, body, _ = image_manifest("app")
    digest = ecr.serve("1", body)
    progress = Progress(T0, digest, looks=5)  # a sixth look: 30 s doubled five times is 480 s
    # Given 10 s left before giving up, the next look comes then, not in 480 s
    near_the_end, clock = Wait(poll=1, download_after=100_000, give_up_after=600, download=False), Clock()
    clock.seconds = 589.0
    result = importer(ecr, clock, wait=near_the_end).look(progress, seconds_left=None)
    assert isinstance(result, Waiting)
    assert result.delay == 10
    # And a last resort that is off is no milestone: the look is not brought forward to it
    off, clock = Wait(poll=1, download_after=100, give_up_after=3600, download=False), Clock()
    clock.seconds = 49.0
    result = importer(ecr, clock, wait=off).look(progress, seconds_left=None)
    assert isinstance(result, Waiting)
    assert result.delay == 480


def test_layers_ecr_does_not_import_are_downloaded_once_after_download_after() -> None:
    # Given an ECR that imports a layer only when it is pulled, and an import that began 901 s ago
    ecr, clock = FakeEcr(pulled_only=True), Clock()
    digest, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    clock.seconds = 901.0
    progress = Progress(T0, digest, looks=4, moved=len(body), spent=1)
    # When it is looked at again
    result = importer(ecr, clock).look(progress, seconds_left=None)
    # Then each missing layer was downloaded once, and the import landed naming them, with the bytes counted
    assert isinstance(result, Landed)
    assert ecr.asked("download") == blobs
    assert result.progress.downloaded == tuple(blobs)
    assert result.progress.moved == len(body) + 100 * len(blobs)


def test_no_download_when_the_config_switches_the_last_resort_off() -> None:
    ecr, clock = FakeEcr(pulled_only=True), Clock()
    digest, body, _ = image_manifest("app")
    ecr.serve("1", body)
    clock.seconds = 901.0
    wait = Wait(poll=5, download_after=900, give_up_after=3600, download=False)
    result = importer(ecr, clock, wait=wait).look(Progress(T0, digest), seconds_left=None)
    assert isinstance(result, Waiting)
    assert ecr.asked("download") == []


def test_an_import_still_missing_layers_after_give_up_after_is_incomplete_naming_them() -> None:
    ecr, clock = FakeEcr(checks_to_import=None), Clock()
    digest, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    clock.seconds = 3600.0
    wait = Wait(poll=5, download_after=900, give_up_after=3600, download=False)
    result = importer(ecr, clock, wait=wait).look(Progress(T0, digest), seconds_left=None)
    assert isinstance(result, Incomplete)
    assert result.missing == tuple(blobs)
    assert result.waited >= 3600


def test_an_archived_layer_is_reported_not_asked_for_again() -> None:
    ecr, clock = FakeEcr(), Clock()
    digest, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    ecr.layers = {blobs[0]: "ARCHIVED", blobs[1]: "AVAILABLE", blobs[2]: "AVAILABLE"}
    result = importer(ecr, clock).look(None, seconds_left=None)
    assert isinstance(result, Archived)
    assert (result.digest, result.layers) == (digest, (blobs[0],))
    assert ecr.asked("request") == []


def test_a_pinned_tag_ecr_serves_at_another_digest_is_a_mismatch_before_any_layer_is_asked_for() -> None:
    ecr, clock = FakeEcr(), Clock()
    _, body, _ = image_manifest("app")
    served = ecr.serve("1", body)
    result = importer(ecr, clock, pinned=digest_of("pinned")).look(None, seconds_left=None)
    assert isinstance(result, Mismatch)
    assert result.digest == served
    assert ecr.asked("request") == []


def test_a_moved_tag_ecr_still_serves_costs_no_pull() -> None:
    ecr, clock = FakeEcr(), Clock()
    _, body, blobs = image_manifest("old")
    old = ecr.serve("1", body)
    ecr.layers = dict.fromkeys(blobs, "AVAILABLE")
    result = importer(ecr, clock, previous=old).look(None, seconds_left=None)
    assert isinstance(result, Landed)
    assert (result.digest, result.progress.spent) == (old, 0)


def test_completing_an_image_reads_it_from_ecr_without_a_trigger() -> None:
    ecr, clock = FakeEcr(), Clock()
    digest, body, _ = image_manifest("app")
    ecr.serve("1", body)
    result = importer(ecr, clock, trigger=False).look(None, seconds_left=None)
    assert isinstance(result, Landed)
    assert ecr.asked("trigger") == []
    assert (result.progress.spent, result.progress.moved) == (0, 0)
    assert result.digest == digest


def test_ecrs_refusal_of_a_platform_manifest_is_its_own_answer() -> None:
    ecr, clock = FakeEcr(), Clock()
    amd = digest_of("amd")
    _, top_body = index_manifest({"linux/amd64": amd})
    ecr.serve("1", top_body)
    ecr.refusals[amd] = ImageFailure("UpstreamTooManyRequests", "slow down")
    result = importer(ecr, clock).look(None, seconds_left=None)
    assert isinstance(result, Refused)
    assert isinstance(result.error, ImageRefusal)
    assert (result.error.code, result.error.reference) == ("UpstreamTooManyRequests", amd)


def test_ecrs_refusal_of_a_layer_is_decisive_but_a_throttled_call_goes_back_to_the_queue() -> None:
    # Given ECR refusing one layer for good, and (another time) throttling the call
    _, body, blobs = image_manifest("app")
    refused = FakeEcr()
    refused.serve("1", body)
    refused.layer_errors[blobs[1]] = AwsError(
        "ecr:GetDownloadUrlForLayer", REPO, "UnableToGetUpstreamLayerException", "429 from upstream"
    )
    throttled = FakeEcr()
    throttled.serve("1", body)
    throttled.layer_errors[blobs[1]] = AwsThrottled("ecr:GetDownloadUrlForLayer", REPO, "ThrottlingException", "x")
    # When each is looked at
    result = importer(refused, Clock()).look(None, seconds_left=None)
    # Then the refusal is the image's outcome; the throttle propagates, so SQS delivers the job again
    assert isinstance(result, Refused)
    assert isinstance(result.error, AwsError)
    assert result.error.code == "UnableToGetUpstreamLayerException"
    with pytest.raises(AwsThrottled):
        importer(throttled, Clock()).look(None, seconds_left=None)


def test_a_trigger_the_registry_endpoint_refuses_is_handed_back_as_refused() -> None:
    error = RegistryUnavailable("ECR", REPO, "manifest 1: server error", 500)

    class Refusing(FakeEcr):
        def trigger(self, repository: str, tag: str) -> Manifest:
            raise error

    result = importer(Refusing(), Clock()).look(None, seconds_left=None)
    assert isinstance(result, Refused)
    assert result.error is error
    assert result.progress is None


@pytest.mark.parametrize(
    ("error", "decisive"),
    [
        (AwsThrottled("ecr:BatchGetImage", REPO, "ThrottlingException", "slow down"), False),
        (AwsAccessDenied("ecr:BatchGetImage", REPO, "AccessDeniedException", "no"), True),
        (AwsError("ecr:BatchGetImage", REPO, "UnableToGetUpstreamImageException", "401 upstream"), True),
    ],
)
def test_an_aws_error_reading_the_image_from_ecr_fails_it_only_when_it_is_ecrs_answer(
    error: AwsError, decisive: bool
) -> None:
    # Given ECR failing the read of a tag's manifest (no trigger: ECR holds the tag)
    class Failing(FakeEcr):
        def images(self, repository: str, references: Sequence[str]) -> Images:
            raise error

    look = importer(Failing(), Clock(), trigger=False)
    # Then ECR's own answer (or a refusal of access) is the image's outcome; a passing fault goes back to SQS
    if decisive:
        result = look.look(None, seconds_left=None)
        assert isinstance(result, Refused)
        assert result.error is error
    else:
        with pytest.raises(AwsThrottled):
            look.look(None, seconds_left=None)


def test_ecrs_refusal_names_its_code_and_reason() -> None:
    refusal = ImageRefusal("UpstreamAccessDenied", "denied by the upstream", "app:1")
    assert str(refusal) == "ECR could not get app:1: UpstreamAccessDenied: denied by the upstream"
