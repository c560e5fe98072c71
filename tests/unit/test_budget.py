"""The pull budget (pullthrough/warm/budget.py): one run's share, and the allowance runs open at once share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pullthrough.registry.headers import RateLimit
from pullthrough.warm.budget import DRAW_GRACE, Budget, Draw, Shared

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_budget_is_a_share_of_the_lowest_remaining_count() -> None:
    # Given a budget of half, and two answers from one upstream
    budget = Budget(0.5)
    budget.observe("hub", RateLimit(200, 9, 21600, "u"))
    budget.observe("hub", RateLimit(200, 7, 21600, "u"))
    # When pulls are taken
    taken = [budget.take("hub", 2), budget.take("hub", 1), budget.take("hub", 1)]
    # Then floor(7 * 0.5) = 3 pulls fit, and what is left upstream is known
    assert taken == [True, True, False]
    assert (budget.allowance("hub"), budget.spent("hub"), budget.left("hub")) == (3, 3, 4)


def test_an_upstream_without_rate_limit_headers_is_not_limited() -> None:
    budget = Budget(0.1)
    budget.observe("quay", None)
    assert all(budget.take("quay", 50) for _ in range(10))
    assert budget.allowance("quay") is None
    assert budget.drawn(NOW) == []


def test_open_runs_share_one_allowance_and_the_lower_of_the_two_limits_holds() -> None:
    # Given an allowance of half of 20 (10) of which an open run drew 7
    shared = Shared("hub", 20, (Draw("open", 7, NOW),), version=2)
    budget = Budget(0.5)
    budget.observe("hub", RateLimit(200, 20, 3600, "u"))
    budget.share_with("mine", {"hub": shared})
    # Then this run may spend 3, and its draw is stored beside the open run's over the version read
    assert budget.allowance("hub") == 3
    assert [budget.take("hub", 1) for _ in range(4)] == [True, True, True, False]
    (after,) = budget.drawn(NOW)
    assert (after.base, after.version, {d.run_id: d.pulls for d in after.draws}) == (20, 2, {"open": 7, "mine": 3})
    # And when the upstream has less left than the allowance says (others pulled), its own share is the limit
    budget.observe("hub", RateLimit(200, 4, 3600, "u"))
    budget.share_with("mine", {"hub": shared})
    assert budget.allowance("hub") == 2


def test_a_run_drawing_again_replaces_its_own_draw() -> None:
    shared = Shared("hub", 20, (Draw("open", 2, NOW), Draw("mine", 5, NOW)), version=4)
    budget = Budget(0.5)
    budget.observe("hub", RateLimit(200, 20, 3600, "u"))
    budget.share_with("mine", {"hub": shared})
    assert budget.allowance("hub") == 8  # its own earlier draw is not counted against it
    budget.take("hub", 1)
    (after,) = budget.drawn(NOW)
    assert {d.run_id: d.pulls for d in after.draws} == {"open": 2, "mine": 1}


def test_only_open_runs_and_runs_not_yet_opened_hold_a_draw() -> None:
    draws = (
        Draw("open", 1, NOW - timedelta(hours=5)),  # old, but its run is open
        Draw("finished", 2, NOW - timedelta(minutes=1)),  # recent, but its run is in the ledger and not open
        Draw("opening", 3, NOW - timedelta(minutes=1)),  # recent and not in the ledger yet: its planner is opening it
        Draw("lost", 4, NOW - DRAW_GRACE),  # never opened (its planner failed): released after the grace
    )
    live = Shared("hub", 10, draws).live(open_runs={"open"}, finished={"finished"}, now=NOW)
    assert [d.run_id for d in live.draws] == ["open", "opening"]


def test_a_run_drawing_again_with_no_other_run_open_starts_from_what_the_upstream_reports_now() -> None:
    # Given an allowance holding only this run's own earlier draw (from a base of 100), and 10 pulls left now
    shared = Shared("hub", 100, (Draw("mine", 5, NOW),), version=3)
    budget = Budget(0.5)
    budget.observe("hub", RateLimit(200, 10, 3600, "u"))
    budget.share_with("mine", {"hub": shared})
    # Then no other run holds it, and what is stored starts from the 10, over the version read
    assert budget.shared("hub") is None
    budget.take("hub", 2)
    (after,) = budget.drawn(NOW)
    assert (after.base, after.version, [(d.run_id, d.pulls) for d in after.draws]) == (10, 3, [("mine", 2)])


def test_a_run_that_draws_nothing_writes_nothing() -> None:
    # Given a limited upstream, once with no allowance stored and once with another open run's
    for stored in ({}, {"hub": Shared("hub", 20, (Draw("open", 4, NOW),), version=1)}):
        budget = Budget(0.5)
        budget.observe("hub", RateLimit(200, 20, 3600, "u"))
        budget.share_with("mine", stored)
        # When it takes nothing (everything cached or deferred), Then nothing is written
        assert budget.drawn(NOW) == []


def test_with_a_share_of_all_nothing_is_left_once_all_is_spent() -> None:
    budget = Budget(1.0)
    budget.observe("hub", RateLimit(200, 2, 3600, "u"))
    assert budget.take("hub", 2)
    assert budget.left("hub") == 0
