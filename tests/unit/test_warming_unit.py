"""Warming one image (pullthrough/warm/worker.py, results.py, outcomes.py): an import's result as the outcome, the
reason and the fix people read.

The fake ECR and clock are test_importing's; no test sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pullthrough import config as config_module
from pullthrough.aws.ecr import ImageFailure, Images
from pullthrough.aws.ledger import JobRecord, Recorded, RunState
from pullthrough.env import Settings
from pullthrough.errors import (
    AwsAccessDenied,
    AwsError,
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
from pullthrough.registry.client import Manifest
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome, Severity
from pullthrough.warm.importing import Progress, Wait, Waiting, decisive
from pullthrough.warm.results import last_delivery
from pullthrough.warm.worker import (
    MAX_RECEIVES,
    MOVED_TAG_NOTE,
    Clocks,
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
from tests.unit.test_importing import T0, Clock, FakeEcr
from tests.unit.test_planning import digest_of, image_manifest, index_manifest

REPO = "docker-hub/library/app"


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


def warm(ecr: FakeEcr, the_job: WarmJob, clock: Clock | None = None, **kwargs: object) -> ReportItem | Waiting:
    clock = clock or Clock()
    return warm_image(
        the_job,
        ecr,
        clocks=Clocks(now=clock.now, clock=clock.monotonic, sleep=clock.sleep),
        **kwargs,  # type: ignore[arg-type]
    )


def outcome(ecr: FakeEcr, the_job: WarmJob, **kwargs: object) -> ReportItem:
    found = warm(ecr, the_job, **kwargs)
    assert isinstance(found, ReportItem)
    return found


def test_an_imported_image_is_warmed_with_what_it_cost_and_moved() -> None:
    # Given ECR that imports what it is asked for
    ecr = FakeEcr()
    digest, body, _ = image_manifest("app")
    ecr.serve("1", body)
    # When the image is warmed
    item = outcome(ecr, job(pulls_remaining=90))
    # Then the outcome names the digest, the size, the manifest bytes moved and the pull ECR's import cost
    assert (item.outcome, item.severity) == (Outcome.WARMED, Severity.OK)
    details = item.details
    assert (details.digest, details.size, details.bytes_moved, details.pulls_spent) == (digest, 210, len(body), 1)
    assert (details.rule, details.repository, details.pulls_remaining) == ("docker-hub", REPO, 90)


def test_a_missing_wanted_platform_warms_the_rest_with_a_warning() -> None:
    ecr = FakeEcr()
    amd, amd_body, _ = image_manifest("amd")
    ecr.serve(amd, amd_body)
    _, top_body = index_manifest({"linux/amd64": amd})
    ecr.serve("1", top_body)
    item = outcome(ecr, job())
    assert (item.outcome, item.severity) == (Outcome.WARMED, Severity.WARNING)
    assert item.reason == "the image has no linux/arm64; warmed linux/amd64"
    assert item.details.index_manifests == 1


def test_layers_downloaded_as_a_last_resort_are_named_as_a_warning() -> None:
    ecr, clock = FakeEcr(pulled_only=True), Clock()
    digest, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    clock.seconds = 901.0
    the_job = job(progress=Progress(T0, digest, looks=3, moved=len(body), spent=1))
    item = outcome(ecr, the_job, clock=clock)
    assert (item.outcome, item.severity) == (Outcome.WARMED, Severity.WARNING)
    assert item.details.downloaded == tuple(blobs)
    assert all(b in (item.reason or "") for b in blobs)


def test_an_import_still_under_way_is_waiting_not_an_outcome() -> None:
    ecr = FakeEcr(checks_to_import=None)
    _, body, _ = image_manifest("app")
    ecr.serve("1", body)
    waiting = warm(ecr, job(wait=Wait(poll=5)))
    assert isinstance(waiting, Waiting)
    assert waiting.delay == 30


def test_a_moved_tag_that_ecr_now_serves_is_refreshed_with_the_previous_digest() -> None:
    ecr = FakeEcr()
    _, body, _ = image_manifest("new")
    new = ecr.serve("1", body)
    item = outcome(ecr, job(action="refresh", previous_digest=digest_of("old"), expected_digest=new))
    assert (item.outcome, item.reason_code) == (Outcome.REFRESHED, "tag_moved")
    assert (item.details.digest, item.details.previous_digest, item.details.pulls_spent) == (new, digest_of("old"), 1)


def test_a_moved_tag_ecr_still_serves_the_old_way_is_already_cached_with_a_warning_and_no_pull() -> None:
    ecr = FakeEcr()
    _, body, blobs = image_manifest("old")
    old = ecr.serve("1", body)
    ecr.layers = dict.fromkeys(blobs, "AVAILABLE")
    item = outcome(ecr, job(action="refresh", previous_digest=old, expected_digest=digest_of("new")))
    assert (item.outcome, item.severity, item.reason_code) == (Outcome.ALREADY_CACHED, Severity.WARNING, "tag_moved")
    assert "at most once a day" in (item.reason or "")
    assert item.details.pulls_spent == 0


def test_a_tag_pinned_to_another_digest_fails_as_a_mismatch() -> None:
    ecr = FakeEcr()
    _, body, _ = image_manifest("app")
    ecr.serve("1", body)
    item = outcome(ecr, job(pinned=digest_of("pinned")))
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "digest_mismatch")


def test_an_index_without_any_wanted_platform_fails_and_names_what_it_offers() -> None:
    ecr = FakeEcr()
    _, top_body = index_manifest({"linux/s390x": digest_of("s390x")})
    ecr.serve("1", top_body)
    item = outcome(ecr, job())
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "no_platform")
    assert "offers linux/s390x" in (item.reason or "")


def test_an_archived_image_is_a_warning_with_the_restore_command() -> None:
    ecr = FakeEcr()
    digest, body, blobs = image_manifest("app")
    ecr.serve("1", body)
    ecr.layers = dict.fromkeys(blobs, "ARCHIVED")
    item = outcome(ecr, job())
    assert (item.outcome, item.reason_code, item.severity) == (Outcome.ALREADY_CACHED, "archived", Severity.WARNING)
    assert f"--repository-name {REPO} --image-id imageDigest={digest}" in (item.fix or "")
    assert verified_of(job(), item) is None  # an archived image is verified again next time


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("UpstreamAccessDenied", "auth"),
        ("UpstreamTooManyRequests", "rate_limited"),
        ("UpstreamUnavailable", "upstream_down"),
        ("ImageNotFound", "unknown_tag"),
        ("KmsError", "error"),
    ],
)
def test_ecrs_failure_code_for_a_manifest_is_the_reason(code: str, reason: str) -> None:
    # Given a trigger the registry endpoint answered with a server error, and BatchGetImage saying why
    ecr = TriggerRefused(RegistryUnavailable("ECR", REPO, "manifest 1: server error", 500))
    ecr.refusals["1"] = ImageFailure(code, "ECR's words")
    asked: list[bool] = []
    # When the image is warmed
    item = outcome(ecr, job(secret="ecr-pullthroughcache/docker-hub"), diagnose=lambda: asked.append(True))
    # Then the reason is ECR's code, named in the text; the upstream is not asked (ECR said why)
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, reason)
    assert f"ECR says {code}" in (item.reason or "")
    assert asked == []


@dataclass
class TriggerRefused(FakeEcr):
    """An ECR whose registry endpoint refuses the trigger with `error`."""

    error: PullthroughError | None = None

    def __init__(self, error: PullthroughError) -> None:
        super().__init__()
        self.error = error

    def trigger(self, repository: str, tag: str) -> Manifest:
        assert self.error is not None
        raise self.error


def test_no_rule_for_the_prefix_is_named_as_such_without_asking_anyone() -> None:
    ecr = TriggerRefused(RegistryNotFound("ECR", REPO, "manifest 1 not found (NAME_UNKNOWN)", 404))
    asked: list[bool] = []
    item = outcome(ecr, job(), diagnose=lambda: asked.append(True))
    assert (item.outcome, item.reason_code, asked) == (Outcome.FAILED, "no_rule", [])
    assert ecr.asked("images") == []
    assert "pullthrough reconcile" in (item.fix or "")


def test_a_digest_mismatch_at_the_trigger_explains_itself_without_asking_ecr_or_the_upstream() -> None:
    ecr = TriggerRefused(DigestMismatch("ECR", REPO, "manifest 1: digest mismatch"))
    asked: list[bool] = []
    item = outcome(ecr, job(), diagnose=lambda: asked.append(True))
    assert (item.outcome, item.reason_code, asked) == (Outcome.FAILED, "digest_mismatch", [])
    assert ecr.asked("images") == []


def test_an_unreachable_registry_endpoint_is_ecr_unreachable_with_the_endpoints_to_add() -> None:
    ecr = TriggerRefused(RegistryUnavailable("ECR", REPO, "cannot connect (NewConnectionError)"))
    item = outcome(ecr, job())
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "ecr_unreachable")
    assert "com.amazonaws.<region>.ecr.dkr" in (item.fix or "")


def test_a_registry_endpoint_refusing_the_function_itself_is_ecr_denied() -> None:
    ecr = TriggerRefused(RegistryAuthError("ECR", REPO, "manifest 1: DENIED: not authorized", 403))
    item = outcome(ecr, job())
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "ecr_denied")
    assert "ecr:BatchImportUpstreamImage" in (item.fix or "")


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
def test_where_ecr_says_nothing_a_free_head_upstream_explains(upstream: PullthroughError | None, reason: str) -> None:
    # Given ECR answering 500 and BatchGetImage saying nothing about the tag (no failure entry)
    ecr = TriggerRefused(RegistryUnavailable("ECR", REPO, "manifest 1: server error, still after retrying", 500))
    # When the image is warmed and the upstream's own HEAD says why (or that it is fine)
    item = outcome(ecr, job(), diagnose=lambda: upstream)
    # Then the outcome carries the upstream's reason, and ECR's words stay in the text
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, reason)
    assert "server error" in (item.reason or "")


def test_an_upstream_refusing_the_rules_credentials_names_the_secret_to_fix() -> None:
    ecr = TriggerRefused(
        RegistryAuthError("ECR", REPO, "DENIED: The authentication to the upstream registry failed", 403)
    )
    ecr.refusals["1"] = ImageFailure("UpstreamAccessDenied", "denied")
    item = outcome(ecr, job(secret="ecr-pullthroughcache/docker-hub"))
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "auth")
    assert "secret ecr-pullthroughcache/docker-hub" in (item.fix or "")


def test_an_ecr_to_ecr_rule_refused_upstream_names_its_role_not_a_secret() -> None:
    # Given an ECR to ECR rule (upstream ecr: ECR assumes the rule's role, no secret) whose import ECR refused
    ecr = TriggerRefused(RegistryAuthError("ECR", REPO, "DENIED: upstream", 403))
    ecr.refusals["1"] = ImageFailure("UpstreamAccessDenied", "role arn:aws:iam::1:role/r may not")
    item = outcome(ecr, job(upstream="ecr", rule="docker-hub"))
    # Then the fix is the role's trust and permissions and the upstream registry's policy
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "auth")
    assert "pullthroughcache.ecr.amazonaws.com sts:AssumeRole" in (item.fix or "")
    assert "rule docker-hub" in (item.fix or "")
    assert "secret" not in (item.fix or "")


def test_an_incomplete_import_names_what_ecrs_events_reported() -> None:
    ecr, clock = FakeEcr(checks_to_import=None), Clock()
    digest, body, _ = image_manifest("app")
    ecr.serve("1", body)
    clock.seconds = 4000.0
    the_job = job(wait=Wait(poll=5, give_up_after=3600, download=False), progress=Progress(T0, digest))
    told = lambda repository, since: [("UpstreamTooManyRequests", "slow down")]  # noqa: E731
    item = outcome(ecr, the_job, clock=clock, told=told)
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "import_incomplete")
    assert "ECR reported UpstreamTooManyRequests: slow down" in (item.reason or "")
    assert "warm.budget_share" in (item.fix or "")  # the rate limit's fix, not the generic one


def test_an_incomplete_import_quotes_the_latest_of_ecrs_reports() -> None:
    ecr, clock = FakeEcr(checks_to_import=None), Clock()
    digest, body, _ = image_manifest("app")
    ecr.serve("1", body)
    clock.seconds = 4000.0
    the_job = job(wait=Wait(poll=5, give_up_after=3600, download=False), progress=Progress(T0, digest))
    told = lambda repository, since: [("UpstreamTooManyRequests", "earlier"), ("UpstreamAccessDenied", "now")]  # noqa: E731
    item = outcome(ecr, the_job, clock=clock, told=told)
    assert "ECR reported UpstreamAccessDenied: now" in (item.reason or "")


class Refusing(FakeEcr):
    """An ECR whose BatchGetImage raises `error` (the trigger went through)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def images(self, repository: str, references: Sequence[str]) -> Images:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason", "says"),
    [
        (AwsError("ecr:BatchGetImage", REPO, "UnableToGetUpstreamImageException", "secret"), "auth", "Unable"),
        (
            AwsError("ecr:GetDownloadUrlForLayer", REPO, "UnableToGetUpstreamLayerException", "429 Too Many"),
            "rate_limited",
            "429",
        ),
        (AwsAccessDenied("ecr:BatchGetImage", REPO, "AccessDeniedException", "not authorized"), "ecr_denied", "not"),
        (AwsError("ecr:BatchGetImage", REPO, "EndpointConnectionError", "no route"), "ecr_unreachable", "no route"),
        (AwsError("ecr:BatchGetImage", REPO, "InvalidParameterException", "bad"), "error", "bad"),
    ],
)
def test_ecrs_api_refusals_name_their_own_culprit(error: AwsError, reason: str, says: str) -> None:
    # Given an index whose platform manifests ECR's API will not give (ECR's answer about the image, a refusal of
    # access, no route to ECR, or another error)
    ecr = Refusing(error)
    amd, amd_body, _ = image_manifest("amd")
    ecr.serve(amd, amd_body)
    ecr.serve("1", index_manifest({"linux/amd64": amd})[1])
    # When the image is warmed: ECR's answer ends it now; a passing fault goes back to SQS until the last delivery
    if decisive(error):
        found = outcome(ecr, job())
    else:
        with pytest.raises(AwsError) as raised:
            warm(ecr, job())
        assert raised.value is error
        found = warming_last_delivery(job(), raised.value)
    # Then the reason names the culprit, and the text keeps AWS's words
    assert (found.outcome, found.reason_code) == (Outcome.FAILED, reason)
    assert says in (found.reason or "")


def warming_last_delivery(the_job: WarmJob, exc: Exception) -> ReportItem:
    return last_delivery(the_job, exc)


def test_a_job_failing_on_every_delivery_for_want_of_a_route_to_ecr_is_ecr_unreachable() -> None:
    unreachable = warming_last_delivery(job(), AwsError("ecr:BatchGetImage", REPO, "ConnectTimeoutError", "t"))
    other = warming_last_delivery(job(), RuntimeError("boom"))
    assert (unreachable.reason_code, other.reason_code) == ("ecr_unreachable", "error")
    assert other.reason == "error: RuntimeError: boom"


@pytest.mark.parametrize(
    ("trigger", "images", "reason"),
    [
        # A 404 without NAME_UNKNOWN is an image the upstream lacks, as ECR's BatchGetImage then says.
        (RegistryNotFound("ECR", REPO, "manifest 1 not found (MANIFEST_UNKNOWN)", 404), None, "unknown_tag"),
        # ECR's API out of reach after its endpoint refused: the route is the culprit.
        (
            RegistryUnavailable("ECR", REPO, "server error", 500),
            AwsError("ecr:BatchGetImage", REPO, "EndpointConnectionError", "no route"),
            "ecr_unreachable",
        ),
        # Another API error says nothing about the image: the upstream's HEAD explains.
        (
            RegistryUnavailable("ECR", REPO, "server error", 500),
            AwsError("ecr:BatchGetImage", REPO, "InvalidParameterException", "bad"),
            "unknown_tag",
        ),
        # A 401 from the registry endpoint without the upstream named is the function's own refusal.
        (RegistryAuthError("ECR", REPO, "manifest 1: UNAUTHORIZED", 401), None, "ecr_denied"),
    ],
)
def test_a_refused_trigger_is_explained_by_who_refused_it(
    trigger: PullthroughError, images: AwsError | None, reason: str
) -> None:
    class Both(TriggerRefused):
        def images(self, repository: str, references: Sequence[str]) -> Images:
            if images is not None:
                raise images
            return super().images(repository, references)

    ecr = Both(trigger)
    if isinstance(trigger, RegistryNotFound):
        ecr.refusals["1"] = ImageFailure("ImageNotFound", "no such tag upstream")
    upstream = RegistryNotFound("registry-1.docker.io", "library/app", "manifest 1 not found", 404)
    item = outcome(ecr, job(), diagnose=lambda: upstream)
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, reason)


def test_what_a_warmed_job_leaves_in_memory_says_what_it_verified_and_what_ecr_imported() -> None:
    the_job = job()
    single = ReportItem(
        subject=the_job.subject,
        outcome=Outcome.WARMED,
        details=Details(digest=digest_of("app"), size=210, platforms=("linux/amd64",)),
    )
    remembered = verified_of(the_job, single)
    assert remembered is not None
    # A single manifest costs one pull: no index's manifests are remembered for it
    assert (remembered.children, remembered.absent) == (0, ("linux/arm64",))
    # And an outcome without a size (it was not verified layer by layer) leaves nothing to remember
    unsized = single.model_copy(update={"details": Details(digest=digest_of("app"))})
    assert verified_of(the_job, unsized) is None


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


def test_a_job_that_left_its_image_complete_is_remembered_with_its_platforms_and_manifests() -> None:
    ecr = FakeEcr()
    amd, amd_body, _ = image_manifest("amd")
    ecr.serve(amd, amd_body)
    _, top_body = index_manifest({"linux/amd64": amd})
    top = ecr.serve("1", top_body)
    item = outcome(ecr, job())
    assert item.outcome is Outcome.WARMED
    found = verified_of(job(), item)
    assert found is not None
    assert (found.repository, found.tag, found.digest) == (REPO, "1", top)
    assert (found.wanted, found.platforms, found.absent) == (
        ("linux/amd64", "linux/arm64"),
        ("linux/amd64",),
        ("linux/arm64",),
    )
    assert (found.size, found.children) == (item.details.size, 1)


def test_a_warm_or_refresh_job_remembers_when_ecr_looked_upstream_and_a_complete_job_does_not() -> None:
    # The planner HEADs the tag again a day after its last look upstream (warm/decisions.py): an import ECR made
    # is one, dated by the job's first look (carried from delivery to delivery); completing the blobs is none
    item = ReportItem(subject="s", outcome=Outcome.WARMED, details=Details(digest=digest_of("app"), size=210))
    started = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    progress = Progress(started, digest_of("app"))
    before = datetime.now(UTC)
    fresh = verified_of(job(action="refresh"), item)
    assert fresh is not None
    assert fresh.looked is not None
    assert fresh.looked >= before
    for action, looked in (("warm", started), ("refresh", started), ("complete", None)):
        found = verified_of(job(action=action, progress=progress), item)
        assert found is not None
        assert found.looked == looked, action


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
