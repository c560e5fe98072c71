"""The hub's report of one warm cycle across the organisation (kind `org`), built once, when the cycle closes.

Its items, in the report's usual order (problems first):
- one per member account and region: `reported`, with the counts of its warm run(s) of the cycle (warmed, already
  cached, failed, deferred, ...) and their run ids; or `missing` (a failure), with why and the fix;
- one per image a member failed: its account, region, image, the member's reason and fix.
The machine-readable part is the report's JSON block, as every report's (docs/REPORTS.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import ValidationError

from pullthrough.aws.ledger.cycles import CycleState, MemberReport
from pullthrough.org.cycles import parse_cycle
from pullthrough.org.expected import Expected, Where
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome, Severity

MISSING_FIX = (
    "in account {account}, region {region}: check that plan_warming ran this cycle and warm_images finished (their "
    "logs; the members' StackSet instance status); that its functions have HUB_EVENT_BUS_ARN and events:PutEvents on "
    "the hub's bus (HubReportsNotSent counts events the bus refused); and that the bus policy admits the organisation "
    "(aws:PrincipalOrgID)"
)


class Hub(NamedTuple):
    """Where the hub's report is from: the config's stack label, the hub's account and region."""

    stack: str
    account: str
    region: str


def hub_report(
    state: CycleState, reports: Sequence[MemberReport], expected: Expected, hub: Hub, trigger: str
) -> Report:
    """The cycle's report from the member reports the ledger recorded."""
    cycle, deadline = state.cycle, state.deadline
    parsed: dict[Where, list[tuple[MemberReport, Report]]] = {}
    notes: list[str] = list(expected.notes)
    for entry in reports:
        try:
            report = Report.model_validate_json(entry.report)
        except ValidationError as exc:
            source = f"{entry.account}/{entry.region}"
            notes.append(f"run {entry.run_id} of {source}: unreadable report ({exc.error_count()} error(s))")
            continue
        parsed.setdefault((entry.account, entry.region), []).append((entry, report))
        if entry.trimmed:
            notes.append(f"{entry.account}/{entry.region} run {entry.run_id}: {entry.trimmed}")
    items: list[ReportItem] = []
    for where in sorted(set(parsed) | set(expected.members)):
        runs = parsed.get(where, [])
        name = expected.members.get(where) or (runs[0][0].member if runs else "")
        items.append(_member_item(where, name, runs) if runs else _missing(where, name, cycle, deadline))
        if runs and where not in expected.members:
            notes.append(f"{where[0]}/{where[1]} reported but is not an expected member (config or StackSet)")
        items += [_failure(where, name, item) for _, report in runs for item in report.problems() if _failed(item)]
    reported = sum(1 for where in expected.members if where in parsed)
    notes.insert(0, f"cycle {cycle}: {reported} of {len(expected.members)} expected member account/region(s) reported")
    return Report(
        kind=Kind.ORG,
        stack=hub.stack,
        region=hub.region,
        account=hub.account,
        run_id=f"org-{cycle.replace(':', '-')}",
        trigger=trigger,
        started=parse_cycle(cycle),
        finished=datetime.now(UTC),
        items=tuple(items),
        notes=tuple(notes[:50]),
    )


def _failed(item: ReportItem) -> bool:
    return item.severity is Severity.FAILURE


def _member_item(where: Where, name: str, runs: list[tuple[MemberReport, Report]]) -> ReportItem:
    counts: Counter[Outcome] = Counter()
    for _, report in runs:
        counts.update(report.counts)
    return ReportItem(
        subject=_subject(where, name),
        outcome=Outcome.REPORTED,
        details=Details(
            account=where[0],
            region=where[1],
            member=name or None,
            run_ids=tuple(entry.run_id for entry, _ in runs),
            counts=dict(counts),
        ),
    )


def _missing(where: Where, name: str, cycle: str, deadline: datetime) -> ReportItem:
    account, region = where
    return ReportItem(
        subject=_subject(where, name),
        outcome=Outcome.MISSING,
        reason=(
            f"no warm report from account {account} in {region} for cycle {cycle} by its deadline "
            f"{deadline.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        ),
        fix=MISSING_FIX.format(account=account, region=region),
        reason_code="member_missing",
        details=Details(account=account, region=region, member=name or None),
    )


def _failure(where: Where, name: str, item: ReportItem) -> ReportItem:
    account, region = where
    return ReportItem(
        subject=f"{account}/{region} {item.subject}",
        outcome=item.outcome,
        reason=item.reason,
        fix=item.fix,
        reason_code=item.reason_code,
        severity=item.severity,
        details=Details(
            account=account,
            region=region,
            member=name or None,
            rule=item.details.rule,
            upstream=item.details.upstream,
            digest=item.details.digest,
        ),
    )


def _subject(where: Where, name: str) -> str:
    account, region = where
    return f"{name} {account}/{region}" if name else f"{account}/{region}"
