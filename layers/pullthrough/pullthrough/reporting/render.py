"""A report rendered for SNS: the subject fitted into 99 characters, the plain-text body (summarised when the message
would not fit SNS's limit), and the report's JSON between marker lines at its end.

Separate from the model (model.py), which says what a run found; this module only lays it out. The layout is pinned
by tests/unit/golden/.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pullthrough.reporting.facts import duration, facts_line, human_bytes
from pullthrough.reporting.items import Collapsed, ReportItem, collapse
from pullthrough.reporting.vocabulary import Kind, Outcome, Severity, ordered

if TYPE_CHECKING:
    from pullthrough.reporting.model import Report

# SNS: "messages must be UTF-8 encoded strings and at most 256 KB in size (262,144 bytes, not 262,144 characters)".
MAX_MESSAGE_BYTES = 262_144
# SNS documents subjects as "less than 100 characters long"; 99 is the longest that obeys both readings.
MAX_SUBJECT_CHARS = 99
# A full body lists successes one per line up to this many; beyond it, only their counts per outcome.
SUCCESS_LIST_LIMIT = 30
# A summary lists at most this many problems; a binary search finds the most that fit.
SUMMARY_PROBLEM_LIMIT = 1000

JSON_BEGIN = "-----BEGIN PULLTHROUGH REPORT JSON-----"
JSON_END = "-----END PULLTHROUGH REPORT JSON-----"


@dataclass(frozen=True)
class Message:
    """One SNS message: subject, body and attributes, ready for sns:Publish."""

    subject: str
    body: str
    attributes: dict[str, dict[str, str]]

    @property
    def size(self) -> int:
        """Bytes SNS counts against its limit: body and attributes, UTF-8."""
        return size(self.body) + attributes_size(self.attributes)


def size(text: str) -> int:
    """Bytes SNS counts for `text`: UTF-8."""
    return len(text.encode())


def attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    """Bytes SNS counts for message attributes: names, types and values."""
    return sum(size(name) + size(a["DataType"]) + size(a["StringValue"]) for name, a in attributes.items())


def one_line(text: str) -> str:
    """`text` with every run of whitespace, line breaks included, as one space."""
    return " ".join(text.split())


def when(moment: datetime) -> str:
    """A moment as people read it in a report, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fit_subject(headline: str, head: str, where: str, parts: Sequence[str]) -> str:
    """The headline fitted into MAX_SUBJECT_CHARS: the status and the first count kept, the stack name shortened."""
    if len(headline) <= MAX_SUBJECT_CHARS:
        return headline
    room = MAX_SUBJECT_CHARS - len(head) - len(": ") - 1 - len(parts[0])
    if len(where) > room:
        # A long stack name gives way first: the status and the first count are what a reader scans for.
        where = where[: max(room - 3, 1)] + "..."
    subject = f"{head} {where}: {parts[0]}"
    for part in parts[1:]:
        if len(subject) + 2 + len(part) > MAX_SUBJECT_CHARS:
            break
        subject += f", {part}"
    return one_line(subject)[:MAX_SUBJECT_CHARS]


def body(report: Report, limit: int, prefix: str | None) -> str:
    """The full plain-text body, summarised when the message would exceed `limit` bytes (see `Report.body`)."""
    budget = limit - attributes_size(report.attributes())
    full = render(report, summarised=False, prefix=prefix)
    if size(full) <= budget:
        return full
    problems = report.problems()

    def summary(bound: int) -> str:
        short, collapsed = shortened(report, problems[:bound])
        return render(short, summarised=True, collapsed=collapsed, prefix=prefix)

    # The largest number of listed problems that fits: a binary search, about ten renderings at most.
    fits, low, high = summary(0), 0, min(len(problems), SUMMARY_PROBLEM_LIMIT)
    if size(fits) > budget:
        raise ValueError(f"report {report.run_id}: even its shortest summary is {size(fits)} bytes, over {budget}")
    while low < high:
        middle = (low + high + 1) // 2
        text = summary(middle)
        if size(text) <= budget:
            fits, low = text, middle
        else:
            high = middle - 1
    return fits


def shortened(report: Report, keep: Sequence[ReportItem]) -> tuple[Report, list[Collapsed]]:
    """A copy listing only `keep`, every other item moved into `unlisted` (counts, status and totals kept),
    and the problems left out, counted per outcome and reason."""
    kept_ids = {id(item) for item in keep}
    dropped = [item for item in report.items if id(item) not in kept_ids]
    unlisted: Counter[Outcome] = Counter(report.unlisted)
    unlisted.update(item.outcome for item in dropped)
    short = report.model_copy(
        update={
            "items": tuple(item for item in report.items if id(item) in kept_ids),
            "unlisted": {outcome: unlisted[outcome] for outcome in ordered(unlisted)},
        }
    )
    return short, collapse(dropped)


# --- the body's sections -------------------------------------------------------------------------------------------


def render(report: Report, *, summarised: bool, collapsed: Sequence[Collapsed] = (), prefix: str | None = None) -> str:
    lines: list[str] = [report.headline(prefix), ""]
    lines += _header(report)
    lines += _summary_table(report)
    problems = report.problems()
    failures = [i for i in problems if i.severity is Severity.FAILURE]
    warnings = [i for i in problems if i.severity is Severity.WARNING]
    lines += _problem_section(report, "Failures", failures, collapsed, Severity.FAILURE)
    lines += _problem_section(report, "Warnings", warnings, collapsed, Severity.WARNING)
    lines += _success_section(report)
    notes = list(report.notes)
    if summarised:
        notes.insert(
            0,
            f"This message was shortened to fit SNS's {MAX_MESSAGE_BYTES:,}-byte limit: {report.truncated:,} of "
            f"{report.total:,} items are counted but not listed. The full detail is in the logs under run id "
            f"{report.run_id} (query below).",
        )
    if notes:
        lines += ["Notes", *(f"  - {note}" for note in notes), ""]
    lines += _where_to_look(report)
    lines += [JSON_BEGIN, report.to_json(), JSON_END]
    return "\n".join(lines) + "\n"


def _header(report: Report) -> list[str]:
    took = duration((report.finished - report.started).total_seconds())
    lines = [
        f"Stack {report.stack} in {report.region}, account {report.account}",
        f"Run {report.run_id}, triggered by {report.trigger}",
        f"Started {when(report.started)}, finished {when(report.finished)} (took {took})",
    ]
    if report.dry_run:
        lines.append("Dry run: nothing was written; each outcome says what a real run would have done.")
    return [*lines, ""]


def _summary_table(report: Report) -> list[str]:
    counts = report.counts
    rows = [(outcome.label, count) for outcome, count in counts.items()] + [("total", report.total)]
    width = max(len("outcome"), *(len(label) for label, _ in rows))
    digits = max(len("count"), *(len(f"{count:,}") for _, count in rows))
    lines = ["Summary", f"  {'outcome':<{width}}  {'count':>{digits}}"]
    lines += [f"  {label:<{width}}  {count:>{digits},}" for label, count in rows]
    totals = report.totals
    figures = []
    if totals.bytes_moved or report.kind is Kind.WARM:
        figures.append(f"{human_bytes(totals.bytes_moved)} moved")
    if totals.pulls_spent or report.kind is Kind.WARM:
        figures.append(f"{totals.pulls_spent:,} upstream pulls spent")
    figures += [f"{left:,} pulls left on {upstream}" for upstream, left in sorted(totals.pulls_remaining.items())]
    if report.kind is Kind.PRUNE:
        freed = human_bytes(totals.bytes_freed or 0)
        figures.append(f"{freed} {'would be freed' if report.dry_run else 'freed'}")
    if figures:
        lines.append("  " + "; ".join(figures))
    return [*lines, ""]


def _problem_section(
    report: Report,
    title: str,
    items: list[ReportItem],
    collapsed: Sequence[Collapsed],
    severity: Severity,
) -> list[str]:
    rest = [(outcome, reason, count) for level, outcome, reason, count in collapsed if level is severity]
    not_listed = sum(count for _, _, count in rest)
    if not items and not not_listed:
        return []
    lines = [f"{title} ({len(items) + not_listed:,})"]
    for group in _same_reason(items):
        first = group[0]
        if len(group) == 1:
            lines.append(f"  - {first.subject}: {first.outcome.label}")
        else:
            # One upstream outage fails every image alike: one reason and fix under the list reads in seconds.
            lines.append(f"  - {len(group):,} {first.outcome.label}, for the same reason:")
            lines += [f"      {item.subject}" for item in group]
        if first.reason:
            lines.append(f"    Reason: {first.reason}")
        if first.fix:
            lines.append(f"    Fix: {first.fix}")
        if len(group) == 1:
            facts = facts_line(first)
            if facts:
                lines.append(f"    Details: {facts}")
            url = report.item_url(first)
            if url:
                lines.append(f"    Console: {url}")
    if not_listed:
        lines.append(f"  ... and {not_listed:,} more, not listed here (see the logs under the run id):")
        lines += [f"    {count:,} {outcome.label}: {reason}" for outcome, reason, count in rest]
    return [*lines, ""]


def _same_reason(items: Iterable[ReportItem]) -> list[list[ReportItem]]:
    """Items grouped by outcome, reason and fix, in order of first appearance."""
    groups: dict[tuple[Outcome, str | None, str | None], list[ReportItem]] = {}
    for item in items:
        groups.setdefault((item.outcome, item.reason, item.fix), []).append(item)
    return list(groups.values())


def _success_section(report: Report) -> list[str]:
    listed = report.successes()
    ok_counts = {o: c for o, c in report.counts.items() if o.severity is Severity.OK and c}
    count = sum(ok_counts.values())
    if not count:
        return []
    lines = [f"Succeeded ({count:,})"]
    if listed and len(listed) <= SUCCESS_LIST_LIMIT:
        width = max(len(item.outcome.label) for item in listed)
        for item in listed:
            facts = facts_line(item)
            line = f"  {item.outcome.label:<{width}}  {item.subject}"
            line += (f": {item.reason}" if item.reason else "") + (f"  ({facts})" if facts else "")
            lines.append(line)
        rest = Counter(ok_counts)
        rest.subtract(item.outcome for item in listed)
        if rest.total() > 0:
            counted = ", ".join(f"{c:,} {o.label}" for o, c in rest.items() if c > 0)
            lines.append(
                f"  and {rest.total():,} more, counted but not listed: {counted} (see the logs under the run id)"
            )
    else:
        by_outcome = ", ".join(f"{c:,} {o.label}" for o, c in ok_counts.items())
        if len(listed) == count:
            where = "each one is listed in the JSON block below"
        elif listed:
            where = f"{len(listed):,} are listed in the JSON block below, the rest in the logs under the run id"
        else:
            where = "each one is in the logs under the run id"
        lines.append(f"  {by_outcome}; {where}.")
    return [*lines, ""]


def _where_to_look(report: Report) -> list[str]:
    links = report.links
    groups = ", ".join(report.log_groups) if report.log_groups else "the Pullthrough functions' log groups"
    lines = ["Where to look", f"  Run id: {links.run_id}", f"  CloudWatch Logs Insights query (on {groups}):"]
    lines += [f"    {line}" for line in links.logs_insights_query.splitlines()]
    lines.append(f"  Open the query: {links.logs_insights_url}")
    lines += [f"  {link.title}: {link.url}" for link in links.console]
    return [*lines, ""]
