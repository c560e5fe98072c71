"""The registry fault matrix: one warm run per fault, on the sandbox, with the fault aimed at one image of three.

Each row injects one fault and runs plan_warming and warm_images as template.yaml wires them. It asserts the
faulted image's outcome and reason code, its report line (reason and fix), how often the fault was met (the retry
policy at work), that the other two images of the same rule were warmed as if nothing happened, and that nothing
is lost: planned == warmed + already cached + refreshed + deferred + failed, in the run's one report.

Where a fault is injected (`hop`):
- upstream: the sandbox's Hub-like front (sandbox/registries/upstream.py), which both the planner's HEADs and the ECR
  cache's own pulls go through. A fault on every method hits the planner's free HEAD first; a fault on GET only is met
  by ECR pulling from the upstream while the image is warmed, and reaches the warmer as ECR's answer.
- ecr: sandbox/registries/fault_proxy.py between the warmer and the ECR registry endpoint: the function cannot reach
ECR.

The registry client's backoff is shortened tenfold and the upstream timeout is two seconds, so the matrix stays fast;
the attempts, not the waits, are what it asserts.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import pytest

from pullthrough.registry import transport
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm import upstream_clients
from sandbox import Sandbox
from sandbox.registries.fault_proxy import FaultProxy
from sandbox.registries.upstream import Fault, Faults
from tests.integration.fault_support import (
    HUB,
    World,
    accounted,
    by_subject,
    report_lines,
    subject,
)
from tests.integration.warm_support import WANTED, secret_of, unique

pytestmark = pytest.mark.sandbox

UPSTREAM_TIMEOUT = 2.0  # seconds: the stall row waits this long once; healthy calls on loopback take milliseconds
RETRIES = 3  # RegistryClient's default: a retried fault is met 1 + RETRIES times


def manifests(repository: str) -> str:
    return rf"^/v2/{repository}/manifests/"


def ecr_manifests(repository: str) -> str:
    # The ECR endpoint's path scheme: the rule's prefix in front of the upstream path.
    return rf"^/v2/[^/]+/{repository}/manifests/"


Inject = Callable[[Faults, str], Fault]


@dataclass(frozen=True)
class Row:
    """One fault, where it is injected, and what the run must make of it."""

    name: str
    hop: Literal["upstream", "ecr"]
    inject: Inject  # (faults, the target's upstream repository) -> the queued fault
    outcome: Outcome
    reason_code: str | None
    says: str  # words the target's report line must carry (its reason, or its line when warmed)
    fix: str  # words its Fix line must carry ("" when warmed)
    attempts: int  # requests the fault answered
    waited: float = 0.0  # seconds the run must at least take (a Retry-After honoured)


MATRIX = [
    Row(
        "429 with Retry-After 1, once",
        "upstream",
        lambda f, r: f.too_many_requests(retry_after=1, path=manifests(r), times=1),
        Outcome.WARMED,
        None,
        "warmed",
        "",
        attempts=1,
        waited=1.0,
    ),
    Row(
        "429 with Retry-After 3600",
        "upstream",
        lambda f, r: f.too_many_requests(retry_after=3600, path=manifests(r), times=None),
        Outcome.FAILED,
        "rate_limited",
        "retry after 3600s",
        "the next run retries it",
        attempts=1,  # a wait past the client's max_wait is not slept through: reported at once
    ),
    Row(
        "429 without Retry-After",
        "upstream",
        lambda f, r: f.too_many_requests(path=manifests(r), times=None),
        Outcome.FAILED,
        "rate_limited",
        "rate limited, still after retrying (HTTP 429)",
        "the next run retries it",
        attempts=1 + RETRIES,
    ),
    Row(
        "500",
        "upstream",
        lambda f, r: f.status(500, path=manifests(r), times=None),
        Outcome.FAILED,
        "upstream_down",
        "server error, still after retrying (HTTP 500)",
        "the next run retries it",
        attempts=1 + RETRIES,
    ),
    Row(
        "502",
        "upstream",
        lambda f, r: f.status(502, path=manifests(r), times=None),
        Outcome.FAILED,
        "upstream_down",
        "server error, still after retrying (HTTP 502)",
        "the next run retries it",
        attempts=1 + RETRIES,
    ),
    Row(
        "503",
        "upstream",
        lambda f, r: f.status(503, path=manifests(r), times=None),
        Outcome.FAILED,
        "upstream_down",
        "server error, still after retrying (HTTP 503)",
        "the next run retries it",
        attempts=1 + RETRIES,
    ),
    Row(
        # ECR meets it on the trigger (retried by the warmer's client), then once more when asked why (BatchGetImage)
        "connection reset mid-manifest",
        "upstream",
        lambda f, r: f.reset(method="GET", path=manifests(r), times=None),
        Outcome.FAILED,
        "upstream_down",
        "ECR says UpstreamUnavailable",
        "the next run retries it",
        attempts=1 + RETRIES + 1,
    ),
    Row(
        # ECR meets it asking the upstream where a layer is (GetDownloadUrlForLayer), on every wanted layer
        "layer refused upstream",
        "upstream",
        lambda f, r: f.status(503, path=rf"^/v2/{r}/blobs/", times=None),
        Outcome.FAILED,
        "upstream_down",
        "UnableToGetUpstreamLayerException",
        "the next run retries it",
        attempts=1,
    ),
    Row(
        # between the warm function and ECR's registry endpoint: the function cannot reach ECR
        "connection to ECR reset",
        "ecr",
        lambda f, r: f.reset(method="GET", path=ecr_manifests(r), times=None),
        Outcome.FAILED,
        "ecr_unreachable",
        "ecr unreachable",
        "com.amazonaws.<region>.ecr.dkr",
        attempts=1,  # a connection broken mid-body is not retried: a slow network would multiply Lambda time
    ),
    Row(
        "stall past the timeout",
        "upstream",
        lambda f, r: f.stall(method="HEAD", path=manifests(r), times=None),
        Outcome.FAILED,
        "timeout",
        f"HEAD manifest: no answer within {UPSTREAM_TIMEOUT}s",
        "the next run retries it",
        attempts=1,
    ),
    Row(
        "truncated body",
        "upstream",
        lambda f, r: f.truncate(method="GET", path=manifests(r), times=None),
        Outcome.FAILED,
        "upstream_down",
        "ECR says UpstreamUnavailable",
        "the next run retries it",
        attempts=1 + RETRIES + 1,
    ),
    Row(
        # ECR refuses content that does not hash to its digest, as a registry does
        "manifest digest does not match",
        "upstream",
        lambda f, r: f.corrupt(method="GET", path=manifests(r), times=None),
        Outcome.FAILED,
        "upstream_down",
        "does not match its digest",
        "the next run retries it",
        attempts=1 + RETRIES + 1,
    ),
    Row(
        # +1: the planner's one token request for the rule's repositories (Docker Hub's HEADs share it) meets the
        # fault first, unretried; then each repository asks for its own, and only the faulted one fails
        "token realm 401",
        "upstream",
        lambda f, r: f.token_status(401, repository=r, times=None),
        Outcome.FAILED,
        "auth",
        "the token realm",
        f"in secret {secret_of(HUB)}",
        attempts=1 + 1,
    ),
    Row(
        # +1 likewise: the shared token request is not retried
        "token realm 500",
        "upstream",
        lambda f, r: f.token_status(500, repository=r, times=None),
        Outcome.FAILED,
        "upstream_down",
        "the token realm",
        "the next run retries it",
        attempts=1 + 1 + RETRIES,
    ),
]


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World.deployed(sandbox, tmp_path_factory.mktemp("faults")) as deployed_world:
        yield deployed_world


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """A two-second upstream timeout and a tenth of the client's backoff."""
    monkeypatch.setattr(upstream_clients, "UPSTREAM_TIMEOUT", UPSTREAM_TIMEOUT)
    real = transport.backoff_delay
    monkeypatch.setattr(
        transport, "backoff_delay", lambda attempt, base, cap, jitter: real(attempt, base / 10, cap, jitter)
    )


@contextmanager
def faults_at(world: World, hop: str) -> Iterator[Faults]:
    """The Faults of the hop; every fault (and stalled request) is gone when the block ends."""
    if hop == "upstream":
        try:
            yield world.sb.upstream.faults
        finally:
            world.sb.upstream.faults.clear()
        return
    env = world.stack.extra_env
    saved = env["PULLTHROUGH_ECR_REGISTRY_URL"]
    with FaultProxy(world.sb.ecr_url, lifetime=60) as proxy:
        env["PULLTHROUGH_ECR_REGISTRY_URL"] = proxy.url
        try:
            yield proxy.faults
        finally:
            env["PULLTHROUGH_ECR_REGISTRY_URL"] = saved


@pytest.mark.usefixtures("fast")
@pytest.mark.parametrize("row", MATRIX, ids=[row.name for row in MATRIX])
def test_a_fault_ends_in_its_outcome_for_its_image_only_and_every_image_is_accounted_for(
    world: World, row: Row
) -> None:
    # Given three images of one rule, a multi-arch one and two others, and the row's fault aimed at the first
    ns = unique("mx")
    target = world.push(f"{ns}/target", platforms=WANTED)
    others = [world.push(f"{ns}/other{i}") for i in range(2)]
    world.configure([f"{image.repository}:1.0" for image in (target, *others)])
    started = time.monotonic()
    with faults_at(world, row.hop) as faults:
        fault = row.inject(faults, target.repository)
        # When a warm run goes through
        summary, report = world.run()
    elapsed = time.monotonic() - started
    # Then the faulted image ends in the row's outcome and reason, and its report line says why and what to do
    items = by_subject(report)
    item = items[subject(target)]
    assert (item.outcome, item.reason_code) == (row.outcome, row.reason_code), item.reason
    lines = "\n".join(report_lines(report, subject(target)))
    assert row.says in lines
    if row.outcome is Outcome.FAILED:
        assert f"  - {subject(target)}: failed" in lines
        assert f"    Reason: {item.reason}" in lines
        assert f"    Fix: {item.fix}" in lines
        assert row.fix in (item.fix or "")
    # And the fault was met as often as the retry policy says, and a Retry-After was waited out
    assert fault.hits == row.attempts
    assert elapsed >= row.waited
    # And the other images were warmed as if nothing had happened
    assert {subject(image): (items[subject(image)].outcome, items[subject(image)].reason) for image in others} == {
        subject(image): (Outcome.WARMED, None) for image in others
    }
    # And nothing is lost: the one report accounts for every planned image
    assert accounted(summary, report)
    assert summary["planned"] == 3


def test_the_fault_proxy_stops_by_itself_when_its_lifetime_ends(world: World) -> None:
    # Given a fault proxy in front of the ECR endpoint with a short lifetime, answering while it lives
    proxy = FaultProxy(world.sb.ecr_url, lifetime=0.5).start()
    try:
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=1):
            pass
        # When nobody stops it, Then it stops by itself: its port refuses connections
        assert proxy.stopped.wait(10)
        assert not proxy.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=1).close()
    finally:
        proxy.stop()
