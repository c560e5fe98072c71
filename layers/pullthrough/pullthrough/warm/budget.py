"""The upstream pull budget: what one run may spend, and the allowance runs that overlap share.

    Budget   one plan's spending, per allowance key: `share` of the lowest remaining count the upstream reported
             on this plan's HEADs (Docker Hub's `ratelimit-remaining`); an upstream that reports none is not limited
    Shared   the allowance of the runs open at once, per allowance key: `share` of what the upstream had left when
             the first of them planned (`base`), and what each open run drew from it. A run planned while another is
             still open draws from the same allowance, so two overlapping runs (a schedule and a manual start, a
             redeploy) spend `share` between them, not each. The ledger keeps it (aws/ledger.py, BUDGET# items),
             written with a condition on its version so two planners never both draw the same pulls.

An allowance key is an upstream and the credentials pulls are counted against: Docker Hub counts pulls per
authenticated account (per IP address without one), so two rules with one secret share one allowance.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pullthrough.config import Rule
    from pullthrough.registry.headers import RateLimit

# A draw stays while its run is open, and this long after it was made while the run is not in the ledger yet: a planner
# draws first, then opens its run (seconds later; minutes for the largest lists).
DRAW_GRACE = timedelta(minutes=15)
SHARD_DRAW = "#shard-"


def draw_id(run_id: str, shard: int) -> str:
    """Who draws for plan shard `shard` of a run: each shard holds its own draw, so the shards of one run draw from
    the shared allowance as overlapping runs do, and two shards cannot spend the same pulls."""
    return f"{run_id}{SHARD_DRAW}{shard}"


def run_of(drawer: str) -> str:
    """The run a draw belongs to (a shard's draw id, or the run id itself)."""
    return drawer.split(SHARD_DRAW, 1)[0]


def allowance_key(rule: Rule) -> str:
    """Whose pull allowance the rule's pulls count against: its upstream and its credentials (or none)."""
    return f"{rule.upstream_url}#{rule.secret_name or 'anonymous'}"


@dataclass(frozen=True)
class Draw:
    """Pulls one run drew from a shared allowance."""

    run_id: str
    pulls: int
    at: datetime


@dataclass(frozen=True)
class Shared:
    """The allowance open runs draw from: `base` pulls were left upstream when the first of them planned."""

    key: str
    base: int
    draws: tuple[Draw, ...] = ()
    version: int = 0  # the stored version this was read at (0: not stored yet)

    def drawn(self, run_id: str) -> int:
        """Pulls the other runs drew (a run's own earlier draw is replaced when it draws again)."""
        return sum(draw.pulls for draw in self.draws if draw.run_id != run_id)

    def holders(self, run_id: str) -> tuple[Draw, ...]:
        return tuple(draw for draw in self.draws if draw.run_id != run_id and draw.pulls)

    def live(self, open_runs: Collection[str], finished: Collection[str], now: datetime) -> Shared:
        """Only the draws of runs still open, or not yet opened (drawn within DRAW_GRACE, and not `finished`). With
        none left, no run is open: the next run starts a new allowance from what the upstream then reports."""
        kept = tuple(
            draw
            for draw in self.draws
            if run_of(draw.run_id) in open_runs or (run_of(draw.run_id) not in finished and now - draw.at < DRAW_GRACE)
        )
        return replace(self, draws=kept)

    def with_draw(self, run_id: str, pulls: int, at: datetime) -> Shared:
        """This allowance once `run_id` has drawn `pulls` (its earlier draw replaced)."""
        others = tuple(draw for draw in self.draws if draw.run_id != run_id)
        return replace(self, draws=(*others, Draw(run_id, pulls, at)))


class Budget:
    """Upstream pulls one run may spend, per allowance key."""

    def __init__(self, share: float) -> None:
        self.share = share
        self._remaining: dict[str, int] = {}
        self._spent: dict[str, int] = {}
        self._shared: dict[str, Shared] = {}
        self.run_id = ""
        self._lock = threading.Lock()

    def observe(self, key: str, rate_limit: RateLimit | None) -> None:
        """Take in what one answer said about the remaining pulls."""
        if rate_limit is None or rate_limit.remaining is None:
            return
        with self._lock:
            self._remaining[key] = min(self._remaining.get(key, rate_limit.remaining), rate_limit.remaining)

    def limited(self) -> list[str]:
        """The allowance keys an upstream reported a remaining count for."""
        return sorted(self._remaining)

    def share_with(self, run_id: str, shared: Mapping[str, Shared]) -> None:
        """Draw from the allowances open runs share (read from the ledger), as `run_id`; spending starts again."""
        self.run_id = run_id
        self._shared = dict(shared)
        self._spent = {}

    def remaining(self, key: str) -> int | None:
        """The pulls the upstream said it had left (None: it did not say)."""
        return self._remaining.get(key)

    def shared(self, key: str) -> Shared | None:
        """The allowance this run shares with other open runs, if another is open."""
        shared = self._shared.get(key)
        return shared if shared is not None and shared.holders(self.run_id) else None

    def allowance(self, key: str) -> int | None:
        """Pulls this run may spend (None: unlimited): its share of what is left now, and no more than the open
        runs' shared allowance leaves."""
        remaining = self._remaining.get(key)
        if remaining is None:
            return None
        own = math.floor(remaining * self.share)
        shared = self.shared(key)
        if shared is None:
            return own
        return max(0, min(own, math.floor(shared.base * self.share) - shared.drawn(self.run_id)))

    def spent(self, key: str) -> int:
        return self._spent.get(key, 0)

    def take(self, key: str, cost: int) -> bool:
        """Spend `cost` pulls if they fit in the allowance; False (and nothing spent) when they do not."""
        allowance = self.allowance(key)
        if allowance is not None and self.spent(key) + cost > allowance:
            return False
        self._spent[key] = self.spent(key) + cost
        return True

    def left(self, key: str) -> int | None:
        """The upstream's remaining pulls once this run's spending is taken off."""
        remaining = self._remaining.get(key)
        return None if remaining is None else max(remaining - self.spent(key), 0)

    def drawn(self, at: datetime) -> list[Shared]:
        """Each limited allowance as this run's spending leaves it, to store over the version it was read at. Where no
        other run is open, the allowance starts anew from what the upstream reports now."""
        changes: list[Shared] = []
        for key in self.limited():
            read = self._shared.get(key)
            spent = self.spent(key)
            if not spent and (read is None or all(draw.run_id != self.run_id for draw in read.draws)):
                continue  # nothing drawn now, nothing drawn before
            if read is not None and self.shared(key) is not None:
                start = read
            else:
                start = Shared(key, self._remaining[key], version=read.version if read is not None else 0)
            changes.append(start.with_draw(self.run_id, spent, at))
        return changes


__all__ = ["DRAW_GRACE", "Budget", "Draw", "Shared", "allowance_key", "draw_id", "run_of"]
