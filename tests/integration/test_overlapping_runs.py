"""Warm runs that overlap (a schedule and a manual start, a redeploy), end to end on the sandbox.

A run planned while another is open leaves the images that run is warming to it, and draws from the same pull
allowance: together they spend `budget_share` of what the upstream had left, as one run would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Outcome
from sandbox import Sandbox
from tests.integration.warm_support import WarmHarness, unique

pytestmark = pytest.mark.sandbox


class Overlap(WarmHarness):
    HUB, GHCR = "overlap-hub", "overlap-ghcr"
    STACK_LABEL = "overlap"
    LAYERS = (400,)
    BUDGET_SHARE = 0.5


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Overlap]:
    with Overlap.deployed(sandbox, tmp_path_factory.mktemp("overlap")) as deployed_world:
        yield deployed_world


def outcomes(report: Report) -> dict[str, tuple[Outcome, str | None]]:
    return {item.subject.rsplit("/", 1)[-1]: (item.outcome, item.reason_code) for item in report.items}


def test_a_run_started_while_another_is_open_shares_its_allowance_and_leaves_it_its_images(world: Overlap) -> None:
    # Given four single-platform images upstream and a share leaving room for 3.5 pulls of what the user has left
    ns = unique("overlap")
    a, b, c, d = (f"{ns}/{name}:1.0" for name in "abcd")
    for name in "abcd":
        world.push(f"{ns}/{name}")
    remaining = world.sb.upstream.user_limit - world.sb.upstream.pulls[world.user]
    share = round(3.5 / remaining, 6)
    # ...and a scheduled run of a and b, planned and queued, not yet warmed
    world.configure([a, b], budget_share=share)
    first = world.plan()
    before = world.pulls()
    # When a manual start of all four is planned while the first run is open
    world.configure([a, b, c, d], budget_share=share)
    second = world.plan({"trigger": "manual"})
    world.drain()
    # Then the first run warms its two images and reports them once
    assert outcomes(world.report_of(first["run_id"])) == {
        "a:1.0": (Outcome.WARMED, None),
        "b:1.0": (Outcome.WARMED, None),
    }
    # And the second leaves a and b to it, warms what is left of the one allowance (3 - 2 = 1), defers the rest
    report = world.report_of(second["run_id"])
    assert outcomes(report) == {
        "a:1.0": (Outcome.SKIPPED, "in_flight"),
        "b:1.0": (Outcome.SKIPPED, "in_flight"),
        "c:1.0": (Outcome.WARMED, None),
        "d:1.0": (Outcome.DEFERRED, "budget"),
    }
    deferred = next(item for item in report.items if item.subject.endswith("/d:1.0"))
    assert first["run_id"] in (deferred.reason or "")
    assert any(first["run_id"] in note and "skipped" in note for note in report.notes)
    # And between them the two runs pulled what one run's share allows, no more: each image once
    assert world.pulls() - before == 3


def test_once_the_open_run_is_reported_the_next_run_has_a_new_allowance(world: Overlap) -> None:
    # Given a run that spent its whole allowance and was reported
    ns = unique("after")
    images = [f"{ns}/{name}:1.0" for name in "abc"]
    for name in "abc":
        world.push(f"{ns}/{name}")
    remaining = world.sb.upstream.user_limit - world.sb.upstream.pulls[world.user]
    world.configure(images, budget_share=round(2.5 / remaining, 6))
    _, first = world.run()
    assert Counter(i.outcome for i in first.items) == {Outcome.WARMED: 2, Outcome.DEFERRED: 1}
    # When the next run plans what was deferred
    _, second = world.run()
    # Then it spends its own share of what the upstream has left now: the deferred image is warmed
    assert [i.outcome for i in second.items if i.outcome is not Outcome.ALREADY_CACHED] == [Outcome.WARMED]
