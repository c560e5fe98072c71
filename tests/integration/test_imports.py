"""How warm jobs wait for ECR's import, and how failed pulls are heard: the sandbox's ECR made slow, stuck or failing.

Each test turns one of ECR's import behaviours (sandbox.registries.ecr_behaviour) and drives plan_warming, warm_images
and report_pull_failures as template.yaml wires them. warm.imports is set to seconds so a test waits a second or two
where a deployment waits minutes; the queue's delays pass at once (Stack.pass_delays).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullthrough.reporting.vocabulary import Outcome
from sandbox import Sandbox
from sandbox.registries import skopeo
from tests.integration.warm_support import WarmHarness, unique

pytestmark = pytest.mark.sandbox


class Imports(WarmHarness):
    HUB, GHCR = "imp-hub", "imp-ghcr"
    STACK_LABEL = "imports"
    LAYERS = (700, 300)
    BUDGET_SHARE = 1.0


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imports]:
    with Imports.deployed(sandbox, tmp_path_factory.mktemp("imports")) as deployed_world:
        yield deployed_world


@pytest.fixture(autouse=True)
def ecr_imports(world: Imports) -> Iterator[Any]:
    """ECR's import behaviour for one test; imports at once again afterwards, and no event left for the next."""
    registry = world.sb.registry
    registry.settle()
    registry.events.take()
    yield registry.imports
    registry.imports.clear()
    registry.settle()
    registry.events.take()
    world.stack.timeouts.clear()


def test_an_import_longer_than_one_invocation_comes_back_delayed_then_succeeds(
    world: Imports, ecr_imports: Any
) -> None:
    # Given an image whose layers ECR imports slowly, and a warm function with time for one short look only
    image = world.push(unique("slow/app"))
    world.configure([f"{image.repository}:1.0"], imports={"poll": 1, "download_after": 600, "give_up_after": 600})
    world.stack.timeouts["WarmImagesFunction"] = 25  # a short function: it looks once (for a second) and hands back
    ecr_imports.hold()
    summary = world.plan()
    # When the job's first delivery is warmed
    assert world.deliver(world.receive()) == {"batchItemFailures": []}
    # Then the job is back on the queue, delayed, its outcome not recorded and its run not reported
    (waiting,) = _delayed_jobs(world)
    assert '"looks":2' in waiting
    assert image.repository in waiting
    assert world.reports_of(summary["run_id"]) == []
    # And once ECR's import goes on, the delayed look finds the image complete: warmed, and reported once
    ecr_imports.release()
    world.drain()
    (report,) = world.reports_of(summary["run_id"])
    (item,) = report.items
    assert item.outcome is Outcome.WARMED
    assert item.details.bytes_moved is not None
    assert item.details.bytes_moved < sum(world.LAYERS)


def test_an_import_that_never_finishes_fails_as_import_incomplete_naming_the_layers(
    world: Imports, ecr_imports: Any
) -> None:
    # Given an image whose layer imports are stuck in ECR, and no last-resort download
    image = world.push(unique("stuck/app"))
    world.configure(
        [f"{image.repository}:1.0"], imports={"poll": 1, "download_after": 0, "give_up_after": 2, "download": False}
    )
    ecr_imports.stick()
    # When the run goes through (each look waits a second; the job gives up after two)
    summary, report = world.run()
    # Then the image failed as import_incomplete, naming every config and layer ECR still lacks, and the run reported
    (item,) = report.items
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "import_incomplete")
    for digest in image.blob_digests:
        assert digest in (item.reason or "")
    assert summary["queued"] == 1
    assert report.total == 1


def test_layers_ecr_does_not_import_are_downloaded_once_as_a_last_resort_and_named(
    world: Imports, ecr_imports: Any
) -> None:
    # Given an ECR that imports a layer only when a client pulls it (the other reading of what AWS documents)
    image = world.push(unique("pullonly/app"))
    world.configure([f"{image.repository}:1.0"], imports={"poll": 1, "download_after": 1, "give_up_after": 30})
    ecr_imports.on_pull_only()
    # When the run goes through
    _, report = world.run()
    # Then the job downloaded the missing config and layers through the registry endpoint, once, and says which
    (item,) = report.items
    assert item.outcome is Outcome.WARMED
    assert set(item.details.downloaded or ()) == set(image.blob_digests)
    assert item.severity.value == "warning"
    assert (item.details.bytes_moved or 0) >= image.total_size


def test_a_failing_import_names_what_ecrs_events_reported(world: Imports, ecr_imports: Any) -> None:
    # Given an image whose layer imports ECR reports failed (its action events)
    image = world.push(unique("failing/app"))
    world.configure(
        [f"{image.repository}:1.0"], imports={"poll": 1, "download_after": 0, "give_up_after": 2, "download": False}
    )
    ecr_imports.fail("UpstreamTooManyRequests", "Too many requests to the upstream registry.")
    world.plan()
    world.deliver(world.receive())
    # When ECR's events reach report_pull_failures (which records them) before the job looks again
    (pulls,) = world.report_pull_failures()
    world.drain()
    # Then the failures were reported once, with ECR's failure code and the fix
    assert {i.reason_code for i in pulls.items} == {"UpstreamTooManyRequests"}
    assert all("rate limit" in (i.fix or "") for i in pulls.items)
    # And the job that gave up names what ECR reported, with that code's fix
    (report,) = [
        r for r in world.collect() if r.kind.value == "warm" and any(image.repository in i.subject for i in r.items)
    ]
    (item,) = report.items
    assert item.reason_code == "import_incomplete"
    assert "ECR reported UpstreamTooManyRequests" in (item.reason or "")


def test_a_consumers_failed_pull_is_reported_from_ecrs_event_once_per_batch(world: Imports, tmp_path: Path) -> None:
    # Given two consumers pulling, through the cache, a tag the upstream does not have (a typo)
    world.configure([])
    missing = f"{world.HUB}/{unique('consumer')}/app:9.9"
    for n in range(2):
        pulled = skopeo.copy(world.sb.ecr_url, world.sb.ecr_password, missing, tmp_path / str(n))
        assert not pulled.ok
    # ...and a successful pull, and a failure under a prefix Pullthrough does not manage
    world.sb.registry.events.pull_through_action(
        prefix="foreign", repository="foreign/app", upstream_url="quay.io", tag="1", digest=None,
        failure=("UpstreamUnavailable", "outage"),
    )  # fmt: skip
    # When ECR's events reach EventBridge and report_pull_failures takes its queue
    reports = world.report_pull_failures()
    # Then one report names the image once, with ECR's failure code, how often, and the fix
    (report,) = reports
    (item,) = report.items
    assert item.subject == missing
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "ImageNotFound")
    assert "2 failed pulls" in (item.reason or "")
    assert "not on the upstream" in (item.fix or "")


def test_an_archived_image_is_a_warning_with_the_restore_fix_not_a_new_pull(world: Imports) -> None:
    # Given a warmed image that was then moved to ECR's archive storage class
    image = world.push(unique("archived/app"))
    world.configure([f"{image.repository}:1.0"])
    world.run()
    world.sb.registry.archive(f"{world.HUB}/{image.repository}", image.digest)
    before = world.pulls()
    # When the next run goes through
    summary, report = world.run()
    # Then nothing is queued or pulled: the image is reported archived with the command that restores it
    (item,) = report.items
    assert (item.outcome, item.reason_code, item.severity.value) == (Outcome.ALREADY_CACHED, "archived", "warning")
    assert "update-image-storage-class" in (item.fix or "")
    assert image.digest in (item.fix or "")
    assert summary["queued"] == 0
    assert world.pulls() == before


def _delayed_jobs(world: Imports) -> list[str]:
    """The bodies of the warm queue's delayed messages (moto keeps them until their delay passes)."""
    from moto.sqs.models import sqs_backends

    name = world.stack.physical["WarmQueue.QueueName"]
    queue = sqs_backends[world.sb.account][world.sb.region].queues[name]
    return [message.body for message in queue._messages if message.delayed]


def test_the_template_routes_only_failed_syncs_to_the_pull_failures_queue(world: Imports) -> None:
    # Given ECR's events: a failure and a success under a managed prefix, a failure under another prefix
    def event(prefix: str, status: str) -> dict[str, Any]:
        return {
            "source": "aws.ecr",
            "detail-type": "ECR Pull Through Cache Action",
            "detail": {"sync-status": status, "ecr-repository-prefix": prefix, "repository-name": f"{prefix}/x"},
        }

    # When they are put on the bus
    queued = [
        bool(world.stack.put_event(event(p, s)))
        for p, s in ((world.HUB, "FAILED"), (world.HUB, "SUCCESS"), ("other", "FAILED"))
    ]
    # Then both failures reach the queue (report_pull_failures keeps those of the config's rules), the success not
    assert queued == [True, False, True]
    url = world.stack.physical["PullFailuresQueue"]
    boto3.client("sqs").purge_queue(QueueUrl=url)


def test_an_unreachable_ecr_is_named_with_the_vpc_endpoints_to_add(world: Imports, tmp_path: Path) -> None:
    # Given a warm function whose ECR registry endpoint does not answer (no VPC endpoint, no route out)
    image = world.push(unique("noroute/app"))
    world.configure([f"{image.repository}:1.0"], imports={"poll": 1, "download_after": 600, "give_up_after": 600})
    summary = world.plan()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens on this port now
    saved = world.stack.extra_env["PULLTHROUGH_ECR_REGISTRY_URL"]
    world.stack.extra_env["PULLTHROUGH_ECR_REGISTRY_URL"] = f"http://127.0.0.1:{port}"
    try:
        # When its job is warmed
        world.drain()
    finally:
        world.stack.extra_env["PULLTHROUGH_ECR_REGISTRY_URL"] = saved
    # Then the image fails naming ECR as out of reach and the endpoints to add, not an upstream outage
    (item,) = world.report_of(summary["run_id"]).items
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "ecr_unreachable")
    for endpoint in ("ecr.api", "ecr.dkr", "S3 gateway"):
        assert endpoint in (item.fix or "")
