"""Each member account and region's latest warm report at the hub: what `pullthrough org status` shows beside the
StackSet's instances.

gather_reports records every member report in the cycle its run started in (aws/ledger/cycles.py); the cycles follow
warm.schedule (org/cycles.py). The latest report of a member is the current cycle's, else the previous cycle's: a
run's report arrives after its cycle began, so right after a slot the current cycle may have none yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pullthrough.aws.ledger.cycles import Cycles, MemberReport
from pullthrough.org.cycles import cycle_id, cycle_of


@dataclass(frozen=True)
class Latest:
    """A member run's report as the hub recorded it: its cycle, run, status and counts per outcome."""

    cycle: str
    run_id: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    finished: str | None = None


def latest_reports(table: str, schedule: str, now: datetime | None = None) -> dict[tuple[str, str], Latest]:
    """Per (account, region): its latest run's report (the last run id within the latest cycle that has one)."""
    current = cycle_of(now or datetime.now(UTC), schedule)
    previous = cycle_of(current - timedelta(seconds=1), schedule)
    found: dict[tuple[str, str], Latest] = {}
    cycles = Cycles.in_table(table)
    for cycle in (cycle_id(current), cycle_id(previous)):
        for entry in reversed(cycles.reports(cycle)):  # key order: account, region, run id
            where = (entry.account, entry.region)
            if where not in found:
                found[where] = _latest(cycle, entry)
    return found


def _latest(cycle: str, entry: MemberReport) -> Latest:
    report = json.loads(entry.report)
    counts = report.get("counts") or {}
    return Latest(
        cycle=cycle,
        run_id=entry.run_id,
        status=str(report.get("status", "UNKNOWN")),
        counts={str(k): int(v) for k, v in counts.items()},
        finished=report.get("finished"),
    )
