"""Warming one image (pullthrough/warming.py): the pull through ECR, verification, outcomes and reasons, with fakes.

The fake ECR holds a blob only some polls after it was fetched, as a pull-through cache that stores it in the
background does; time is a fake clock, so no test sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pullthrough import config as config_module
from pullthrough import manifests
from pullthrough.aws.ledger import JobRecord, Recorded, RunState
from pullthrough.errors import (
    ConfigError,
    DigestMismatch,
    InvalidReference,
    PullthroughError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRateLimited,
    RegistryTimeout,
    RegistryUnavailable,
    SecretError,
)
from pullthrough.registry import Manifest
from pullthrough.report import Outcome, ReportItem, Severity
from pullthrough.settings import Settings
from pullthrough.warming import (
    MAX_RECEIVES,
    MOVED_TAG_NOTE,
    Reason,
    WarmJob,
    Worker,
    forget_kept_clients,
    kept_upstream_client,
    reason_of,
    run_report,
    verified_of,
    warm_image,
)
from sandbox.lambdas import sample_event
from sandbox.template import load_template
from tests.unit.test_planning import digest_of, image_manifest, index_manifest

REPO = "docker-hub/library/app"


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeEcrEndpoint:
    """The ECR registry endpoint and its control plane: manifests by reference, blobs stored after some polls."""

    manifests: dict[str, Manifest] = field(default_factory=dict)
    blob_sizes: dict[str, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    polls_until_stored: int = 1
    errors: dict[str, PullthroughError] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    _pending: dict[str, int] = field(default_factory=dict)

    def serve(self, reference: str, body: bytes, *, media_type: str | None = None) -> str:
        digest = manifests.sha256_digest(body)
        kind = media_type or manifests.media_type_of(body, None)
        for ref in (reference, digest):
            self.manifests[ref] = Manifest(digest=digest, media_type=kind, size=len(body), rate_limit=None, body=body)
        return digest

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        self.gets.append(reference)
        if reference in self.errors:
            raise self.errors[reference]
        if reference not in self.manifests:
            raise RegistryNotFound("ECR", repository, f"manifest {reference} not found (MANIFEST_UNKNOWN)", 404)
        return self.manifests[reference]

    def fetch_blob(self, repository: str, digest: str) -> int:
        self.fetched.append(digest)
        self._pending[digest] = self.polls_until_stored
        return self.blob_sizes.get(digest, 100)

    def check_layers(self, repository: str, digests: Sequence[str]) -> dict[str, bool]:
        for digest in list(self._pending):
            self._pending[digest] -= 1
            if self._pending[digest] < 0:
                self.held.add(digest)
                del self._pending[digest]
        return {d: d in self.held for d in digests}


def job(**fields: object) -> WarmJob:
    values: dict[str, object] = {
        "run_id": "warm-1",
        "key": f"{REPO}:1",
        "subject": "docker.io/library/app:1",
        "rule": "docker-hub",
        "upstream": "docker-hub",
        "repository": REPO,
        "upstream_repository": "library/app",
        "tag": "1",
        "platforms": ("linux/amd64", "linux/arm64"),
        "action": "warm",
    }
    values.update(fields)
    return WarmJob.model_validate(values)


def warm(ecr: FakeEcrEndpoint, the_job: WarmJob, clock: Clock | None = None, **kwargs: object) -> ReportItem:
    clock = clock or Clock()
    return warm_image(the_job, ecr, ecr.check_layers, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def test_a_single_platform_image_is_pulled_fetched_where_missing_and_verified() -> None:
    # Given ECR serving a manifest whose config it holds but whose two layers it does not
    ecr = FakeEcrEndpoint()
    _, body, blobs = image_manifest("app")
    digest = ecr.serve("1", body)
    ecr.held.add(blobs[0])
    ecr.blob_sizes = {blobs[1]: 100, blobs[2]: 100}
    clock = Clock()
    # When the image is warmed
    item = warm(ecr, job(), clock)
    # Then only the missing layers were fetched, verified after the cache stored them, and the outcome says so
    assert ecr.fetched == blobs[1:]
    assert item.outcome is Outcome.WARMED
    assert item.severity is Severity.OK
    details = item.details
    assert (details.digest, details.bytes_moved, details.pulls_spent, details.size) == (digest, 200, 1, 210)
    assert (details.rule, details.repository) == ("docker-hub", REPO)
    assert details.seconds == pytest.approx(sum(clock.slept), abs=1e-3)
    assert clock.slept, "verification polled until the blobs were stored"


def test_an_index_gets_each_wanted_platform_and_costs_one_pull_each_plus_the_index() -> None:
    # Given an index of three platforms of which two are wanted
    ecr = FakeEcrEndpoint()
    amd, amd_body, amd_blobs = image_manifest("amd")
    arm, arm_body, arm_blobs = image_manifest("arm")
    s390x, s390x_body, s390x_blobs = image_manifest("s390x")
    for body in (amd_body, arm_body, s390x_body):
        ecr.serve(manifests.sha256_digest(body), body)
    _, top_body = index_manifest({"linux/amd64": amd, "linux/arm64/v8": arm, "linux/s390x": s390x})
    top = ecr.serve("1", top_body)
    # When it is warmed
    item = warm(ecr, job())
    # Then the index and the two wanted manifests were pulled, and only their blobs fetched
    assert ecr.gets == ["1", amd, arm]
    assert sorted(ecr.fetched) == sorted(amd_blobs + arm_blobs)
    assert not set(s390x_blobs) & set(ecr.fetched)
    assert (item.outcome, item.details.digest, item.details.pulls_spent) == (Outcome.WARMED, top, 3)
    assert item.details.platforms == ("linux/amd64", "linux/arm64")


def test_a_missing_wanted_platform_warms_the_rest_with_a_warning() -> None:
    ecr = FakeEcrEndpoint()
    amd, amd_body, _ = image_manifest("amd")
    ecr.serve(amd, amd_body)
    _, top_body = index_manifest({"linux/amd64": amd})
    ecr.serve("1", top_body)
    item = warm(ecr, job())
    assert (item.outcome, item.severity) == (Outcome.WARMED, Severity.WARNING)
    assert item.reason == "the image has no linux/arm64; warmed linux/amd64"


def test_an_index_without_any_wanted_platform_fails_and_names_what_it_offers() -> None:
    ecr = FakeEcrEndpoint()
    _, top_body = index_manifest({"linux/s390x": digest_of("s390x")})
    ecr.serve("1", top_body)
    item = warm(ecr, job())
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "no_platform")
    assert "offers linux/s390x" in (item.reason or "")


def test_blobs_that_never_show_up_in_ecr_fail_as_a_timeout_at_the_deadline() -> None:
    # Given a cache that never stores what is fetched through it
    ecr = FakeEcrEndpoint(polls_until_stored=10_000)
    _, body, _ = image_manifest("app")
    ecr.serve("1", body)
    clock = Clock()
    # When the image is warmed with a 5 s verification deadline
    item = warm(ecr, job(), clock, verify_seconds=5.0)
    # Then it fails as a timeout once the deadline passed, and the poll never slept past it
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "timeout")
    assert "still lacks 3 of the 3 blobs" in (item.reason or "")
    assert 5.0 <= sum(clock.slept) <= 5.0 + 1e-6


def test_a_moved_tag_that_ecr_now_serves_is_refreshed_with_the_previous_digest() -> None:
    ecr = FakeEcrEndpoint()
    _, body, blobs = image_manifest("new")
    new = ecr.serve("1", body)
    ecr.held.update(blobs)
    item = warm(ecr, job(action="refresh", previous_digest=digest_of("old"), expected_digest=new))
    assert (item.outcome, item.reason_code) == (Outcome.REFRESHED, "tag_moved")
    assert (item.details.digest, item.details.previous_digest, item.details.pulls_spent) == (new, digest_of("old"), 1)
    assert ecr.fetched == []


def test_a_moved_tag_ecr_still_serves_the_old_way_is_already_cached_with_a_warning_and_no_pull() -> None:
    ecr = FakeEcrEndpoint()
    _, body, blobs = image_manifest("old")
    old = ecr.serve("1", body)
    ecr.held.update(blobs)
    item = warm(ecr, job(action="refresh", previous_digest=old, expected_digest=digest_of("new")))
    assert (item.outcome, item.severity, item.reason_code) == (Outcome.ALREADY_CACHED, Severity.WARNING, "tag_moved")
    assert "at most once a day" in (item.reason or "")
    assert item.details.pulls_spent == 0


def test_completing_an_image_ecr_already_lists_costs_no_pull() -> None:
    ecr = FakeEcrEndpoint()
    _, body, _ = image_manifest("app")
    digest = ecr.serve("1", body)
    item = warm(ecr, job(action="complete", previous_digest=digest, expected_digest=digest))
    assert (item.outcome, item.details.pulls_spent, item.details.bytes_moved) == (Outcome.WARMED, 0, 300)


def test_a_tag_pinned_to_another_digest_fails_as_a_mismatch() -> None:
    ecr = FakeEcrEndpoint()
    _, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    ecr.held.update(blobs)
    item = warm(ecr, job(pinned=digest_of("pinned")))
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "digest_mismatch")


def test_no_rule_for_the_prefix_is_named_as_such_without_asking_the_upstream() -> None:
    # Given an ECR endpoint that knows no repository under the prefix (no pull-through cache rule)
    ecr = FakeEcrEndpoint()
    ecr.errors["1"] = RegistryNotFound(
        "ECR", REPO, "manifest 1 not found (NAME_UNKNOWN: repository does not exist)", 404
    )
    asked: list[bool] = []

    def diagnose() -> PullthroughError | None:
        asked.append(True)
        return None

    # When the image is warmed
    item = warm(ecr, job(), diagnose=diagnose)
    # Then it fails for want of the rule, and the fix says how to create it
    assert (item.outcome, item.reason_code, asked) == (Outcome.FAILED, "no_rule", [])
    assert "pullthrough reconcile" in (item.fix or "")


@pytest.mark.parametrize(
    ("upstream", "reason"),
    [
        (RegistryRateLimited("registry-1.docker.io", "library/app", "rate limited"), "rate_limited"),
        (RegistryAuthError("registry-1.docker.io", "library/app", "refused", 401), "auth"),
        (RegistryUnavailable("registry-1.docker.io", "library/app", "cannot connect"), "upstream_down"),
        (RegistryTimeout("registry-1.docker.io", "library/app", "no answer within 10s"), "timeout"),
        (None, "upstream_down"),
    ],
)
def test_an_ecr_failure_is_explained_by_a_free_head_upstream(upstream: PullthroughError | None, reason: str) -> None:
    # Given ECR answering 500 because its upstream pull failed
    ecr = FakeEcrEndpoint()
    ecr.errors["1"] = RegistryUnavailable("ECR", REPO, "manifest 1: server error, still after retrying", 500)
    # When the image is warmed and the upstream's own HEAD says why (or that it is fine)
    item = warm(ecr, job(), diagnose=lambda: upstream)
    # Then the outcome carries the upstream's reason, and ECR's words stay in the text
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, reason)
    assert "server error" in (item.reason or "")


def test_an_upstream_refusing_the_rules_credentials_names_the_secret_to_fix() -> None:
    ecr = FakeEcrEndpoint()
    ecr.errors["1"] = RegistryNotFound("ECR", REPO, "manifest 1 not found (MANIFEST_UNKNOWN)", 404)
    refused = RegistryAuthError("registry-1.docker.io", "library/app", "the token realm refused user 'u'", 401)
    item = warm(ecr, job(secret="ecr-pullthroughcache/docker-hub"), diagnose=lambda: refused)
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "auth")
    assert "secret ecr-pullthroughcache/docker-hub" in (item.fix or "")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RegistryNotFound("r", "x", "m", 404), Reason.UNKNOWN_TAG),
        (RegistryAuthError("r", "x", "m", 401), Reason.AUTH),
        (SecretError("ecr-pullthroughcache/x", "missing"), Reason.AUTH),
        (RegistryRateLimited("r", "x", "m"), Reason.RATE_LIMITED),
        (RegistryUnavailable("r", "x", "m"), Reason.UPSTREAM_DOWN),
        (RegistryTimeout("r", "x", "m"), Reason.TIMEOUT),
        (DigestMismatch("r", "x", "m", 200), Reason.DIGEST_MISMATCH),
        (RegistryError("r", "x", "m", 403), Reason.AUTH),
        (RegistryError("r", "x", "m", 429), Reason.RATE_LIMITED),
        (RegistryError("r", "x", "m", 502), Reason.UPSTREAM_DOWN),
        (RegistryError("r", "x", "m", 400), Reason.ERROR),
        (ConfigError([]), Reason.NO_RULE),
        (InvalidReference("x", "bad"), Reason.INVALID_REFERENCE),
    ],
)
def test_every_error_maps_to_its_reason(error: PullthroughError, reason: Reason) -> None:
    assert reason_of(error) is reason


def test_the_sample_sqs_batch_carries_valid_jobs() -> None:
    # Given the sample SQS event, Then every record's body is a warm job that survives a round trip
    for record in sample_event("warm_images", "batch")["Records"]:
        parsed = WarmJob.model_validate_json(record["body"])
        assert WarmJob.model_validate_json(parsed.model_dump_json()) == parsed
        assert parsed.key == f"{parsed.repository}:{parsed.tag}"


def test_the_report_of_a_closed_run_fails_what_never_finished_and_explains_moved_tags() -> None:
    # Given a run closed with one refreshed job and one job that never reported back
    refreshed = ReportItem(subject="docker.io/library/a:1", outcome=Outcome.REFRESHED, reason_code="tag_moved")
    state = RunState(
        run_id="warm-1",
        planned=2,
        done=1,
        counts={"refreshed": 1},
        status="closed",
        trigger="schedule",
        stack="prod",
        started=datetime(2026, 11, 23, 10, tzinfo=UTC),
        deadline=datetime(2026, 11, 23, 13, tzinfo=UTC),
    )
    jobs = [
        JobRecord("docker-hub/library/a:1", refreshed.subject, "done", "refreshed", refreshed.model_dump_json()),
        JobRecord("docker-hub/library/b:1", "docker.io/library/b:1", "pending", None, None),
    ]
    # When its report is built
    report = run_report(state, jobs, Settings(ACCOUNT_ID="123456789012", AWS_REGION="eu-west-1"))
    # Then both images are accounted for, the lost one as not finished, and the notes explain
    assert report.total == state.planned
    assert {i.subject: (i.outcome, i.reason_code) for i in report.items} == {
        "docker.io/library/a:1": (Outcome.REFRESHED, "tag_moved"),
        "docker.io/library/b:1": (Outcome.FAILED, "not_finished"),
    }
    assert MOVED_TAG_NOTE in report.notes
    assert any("never reported back" in note for note in report.notes)
    assert (report.account, report.region, report.stack) == ("123456789012", "eu-west-1", "prod")


def test_max_receives_and_the_queue_timeouts_match_template_yaml() -> None:
    # Given the deployed queue and function, Then the code's last-delivery rule and AWS's timeout advice hold
    resources = load_template()["Resources"]
    queue = resources["WarmQueue"]["Properties"]
    function = resources["WarmImagesFunction"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    (mapping,) = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["FunctionName"] == {"Ref": "WarmImagesFunction"}
    ]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["WarmQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WarmMaxConcurrency"}


def test_a_job_message_names_no_secret() -> None:
    # Given a job as the planner sends it, Then it carries names and digests only
    text = job(expected_digest=digest_of("x"), cost=3, pulls_remaining=10).model_dump_json()
    assert set(json.loads(text)) >= {"run_id", "key", "repository", "tag", "platforms", "action"}
    assert "token" not in text.lower()
    assert "password" not in text.lower()


@dataclass
class FakeLedger:
    """The ledger calls a worker makes, for one pending job."""

    status: str = "pending"
    recorded: list[tuple[str, str, str]] = field(default_factory=list)

    def job(self, run_id: str, key: str) -> JobRecord:
        return JobRecord(key, "docker.io/library/app:1", self.status, None, None)

    def record(self, run_id: str, key: str, outcome: str, report_item: str, **_: int) -> Recorded:
        self.recorded.append((run_id, key, outcome))
        return Recorded.RECORDED

    def run(self, run_id: str) -> None:
        return None


def sqs_record(body: str, receive_count: int) -> SQSRecord:
    return SQSRecord({"messageId": "m-1", "body": body, "attributes": {"ApproximateReceiveCount": str(receive_count)}})


def test_an_unexpected_error_goes_back_to_the_queue_but_becomes_an_outcome_on_the_last_delivery() -> None:
    # Given a worker whose warm step breaks in a way nobody planned for
    ledger = FakeLedger()
    worker = Worker(Settings(), ledger=ledger)  # type: ignore[arg-type]

    def broken(_: WarmJob) -> ReportItem:
        raise RuntimeError("boom")

    worker.warm = broken  # type: ignore[method-assign]
    body = job().model_dump_json()
    # When it is delivered before the last time, Then the error propagates (SQS will deliver it again)
    with pytest.raises(RuntimeError):
        worker.process(sqs_record(body, MAX_RECEIVES - 1))
    assert ledger.recorded == []
    # When it is delivered the last time, Then it is recorded as failed, so the run can still complete
    worker.process(sqs_record(body, MAX_RECEIVES))
    assert ledger.recorded == [("warm-1", f"{REPO}:1", "failed")]


def test_a_redelivered_job_is_not_warmed_again() -> None:
    ledger = FakeLedger(status="done")
    worker = Worker(Settings(), ledger=ledger)  # type: ignore[arg-type]
    worker.warm = lambda _: pytest.fail("a recorded job must not be warmed again")  # type: ignore[method-assign]
    worker.process(sqs_record(job().model_dump_json(), 1))
    assert ledger.recorded == []


# --- what a job leaves verified, and the upstream clients a container keeps ----------------------------------------


def test_a_job_that_left_its_image_complete_is_remembered_with_its_platforms() -> None:
    ecr = FakeEcrEndpoint()
    amd, amd_body, _ = image_manifest("amd")
    ecr.serve(amd, amd_body)
    _, top_body = index_manifest({"linux/amd64": amd})
    top = ecr.serve("1", top_body)
    item = warm(ecr, job())
    assert item.outcome is Outcome.WARMED
    found = verified_of(job(), item)
    assert found is not None
    assert (found.repository, found.tag, found.digest) == (REPO, "1", top)
    assert (found.wanted, found.platforms, found.absent) == (
        ("linux/amd64", "linux/arm64"),
        ("linux/amd64",),
        ("linux/arm64",),
    )
    assert found.size == item.details.size


def test_a_failed_or_unverified_outcome_is_not_remembered() -> None:
    failed = ReportItem(subject="s", outcome=Outcome.FAILED, reason="timeout: ...")
    assert verified_of(job(), failed) is None
    assert verified_of(job(), ReportItem(subject="s", outcome=Outcome.WARMED)) is None  # no digest, no size


def test_a_container_keeps_an_upstream_client_until_its_secret_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a rule whose secret holds one token, then another (a rotation)
    values = iter(
        ['{"username": "u", "accessToken": "first"}'] * 2 + ['{"username": "u", "accessToken": "second"}'] * 2
    )
    monkeypatch.setattr("pullthrough.aws.secrets.get_value", lambda name, region=None: next(values))
    config = config_module.parse(
        "version: 1\nstack: t\nrules:\n  - {prefix: docker-hub, upstream: docker-hub, "
        "credentials: ecr-pullthroughcache/docker-hub}\n"
    )
    rule = config.rules[0]
    settings = Settings()
    # When clients are asked for three times
    first = kept_upstream_client(rule, settings, connections=4)
    again = kept_upstream_client(rule, settings, connections=4)
    rotated = kept_upstream_client(rule, settings, connections=4)
    # Then the second call reuses the first client (its tokens), and the rotated secret gets a new one
    assert first is again
    assert rotated is not first
    assert rotated is not None
    assert rotated.credentials is not None
    assert rotated.credentials.password == "second"
    # And forgetting them (a new sandbox, a test) starts afresh
    forget_kept_clients()
    assert kept_upstream_client(rule, settings, connections=4) is not rotated
