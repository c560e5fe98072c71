"""A warm cycle: the slot of the warm schedule a run belongs to, the same for every member that runs in it.

Every member runs its planner on the organisation's `warm.schedule`; the hub gathers their reports per cycle. A run's
cycle is derived from its start and the schedule alone, so every member and the hub agree without talking:

- `rate(N unit)`: slots of N units counted from the Unix epoch (00:00 UTC, 1 January 1970); a run's cycle is the
  start of the slot its start falls in. EventBridge Scheduler starts a rate schedule's count when the schedule is
  created ("Schedule types on EventBridge Scheduler": rate-based schedules), not at the epoch, so a slot boundary can
  fall between two members' runs of one round; a run near a boundary then counts for the next cycle. A `cron(...)`
  schedule has no such drift: use one for an organisation (docs/REPORTS.md, "Organisation reports").
- `cron(m h ...)`: the latest minute at or before the start whose minute and hour the expression's first two fields
  allow (numbers, lists, ranges, steps, `*`); the day fields choose which days run, and a run happens on a day they
  allow, so its cycle is that day's slot.

A cycle's deadline (when the hub stops waiting for missing members) is its start plus one period for a rate, and for
a cron the next slot, at most a day later; a cycle waits at least `MIN_WAIT`, so a member's run has time to finish.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
MIN_WAIT = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period(schedule: str) -> timedelta | None:
    """The interval of a `rate(...)` expression; None for a cron expression."""
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", schedule.strip())
    if rate is None:
        return None
    return timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2)])


def cycle_of(started: datetime, schedule: str) -> datetime:
    """The start of the warm cycle a run that started at `started` belongs to (UTC, whole minutes or slots)."""
    moment = started.astimezone(UTC)
    step = period(schedule)
    if step is not None:
        seconds = int(step.total_seconds())
        since = int((moment - _EPOCH).total_seconds())
        return _EPOCH + timedelta(seconds=since - since % seconds)
    minutes, hours = _cron_fields(schedule)
    day = moment.replace(second=0, microsecond=0)
    for back in range(2):  # today's slots, then yesterday's last one
        date = day - timedelta(days=back)
        slots = [date.replace(hour=h, minute=m) for h in hours for m in minutes]
        earlier = [slot for slot in slots if slot <= moment]
        if earlier:
            return max(earlier)
    return day.replace(hour=0, minute=0)  # unreachable for a valid expression; the day itself


def deadline_of(cycle: datetime, schedule: str) -> datetime:
    """When the hub closes the cycle whoever is missing: the next slot (a cron's, at most a day on), at least
    MIN_WAIT after the cycle began."""
    step = period(schedule)
    if step is None:
        minutes, hours = _cron_fields(schedule)
        later = [(cycle + timedelta(days=d)).replace(hour=h, minute=m) for d in (0, 1) for h in hours for m in minutes]
        step = min((slot for slot in later if slot > cycle), default=cycle + timedelta(days=1)) - cycle
    return cycle + max(step, MIN_WAIT)


def cycle_id(cycle: datetime) -> str:
    """The cycle as the events and the ledger name it: ISO 8601 UTC to the second, e.g. 2026-12-07T06:00:00Z."""
    return cycle.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cycle(text: str) -> datetime:
    """A cycle id back to its moment; ValueError for anything but an aware ISO 8601 time."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"cycle {text!r} has no time zone; the cycle is ISO 8601 UTC, e.g. 2026-12-07T06:00:00Z")
    return moment.astimezone(UTC)


def _cron_fields(schedule: str) -> tuple[list[int], list[int]]:
    body = re.fullmatch(r"cron\((.*)\)", schedule.strip())
    fields = body.group(1).split() if body else []
    if len(fields) < 2:
        return [0], [0]  # not a cron expression the config accepts: one slot a day, at midnight
    return _values(fields[0], 60), _values(fields[1], 24)


def _values(field: str, size: int) -> list[int]:
    """The values a cron minute or hour field allows: `*`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s`, and lists of these."""
    found: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else 1
        if base in ("*", "?"):
            low, high = 0, size - 1
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = int(first), int(last)
        elif base.isdigit():
            low = int(base)
            high = size - 1 if step_text else low
        else:
            continue
        found.update(v for v in range(low, high + 1, step) if 0 <= v < size)
    return sorted(found) or [0]
