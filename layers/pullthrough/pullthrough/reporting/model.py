"""The report of one run (rules, credentials, warm, pulls, prune): what it found, for a person and for machines.

A run's builder collects `ReportItem`s (items.py) and constructs a `Report` once at the end. The report derives its
status, counts, totals and links, renders itself through render.py (subject, body, SNS message), and reads itself
back from a message's JSON block. This module is the model; the layout lives in render.py, the links in links.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field, model_validator

from pullthrough.reporting.items import LongText, ReportItem, ShortText, Totals, derive_status, derive_totals
from pullthrough.reporting.links import (
    Links,
    console_links,
    console_pull_through_cache_url,
    console_repository_url,
    console_secret_url,
    logs_insights_query,
    logs_insights_url,
)
from pullthrough.reporting.render import (
    JSON_BEGIN,
    JSON_END,
    MAX_MESSAGE_BYTES,
    Message,
    fit_subject,
    one_line,
)
from pullthrough.reporting.render import body as fitted_body
from pullthrough.reporting.vocabulary import SEVERITY_RANK, Kind, Outcome, Severity, Status, ordered

SuccessVerbosity = Literal["full", "summary", "off"]
"""How a report with status OK is published (config: notifications.success); WARNING and FAILED are always full."""


# Derived on output, recomputed on input: a report's JSON read back must not trust stale copies of them.
_COMPUTED = ("counts", "total", "truncated", "links")


class Report(BaseModel):
    """The result of one run, for a person (subject, body) and for machines (attributes, JSON, log, metrics)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: Kind
    stack: str = Field(min_length=1, max_length=128)
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    account: str = Field(pattern=r"^\d{12}$")
    run_id: str = Field(min_length=1, max_length=128)
    trigger: ShortText  # "schedule", "CloudFormation UPDATE_COMPLETE", "DeletePullThroughCacheRule by ... at ..."
    started: AwareDatetime
    finished: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    dry_run: bool = False
    items: tuple[ReportItem, ...] = ()
    # Outcomes counted but not itemised: a ledger that keeps only counters, or items a summary left out.
    unlisted: dict[Outcome, Annotated[int, Field(ge=0)]] = {}
    notes: tuple[LongText, ...] = Field((), max_length=50)
    # For the Logs Insights query, e.g. ("/aws/lambda/pullthrough-warm",); Logs Insights takes at most 50 groups.
    log_groups: tuple[Annotated[str, Field(min_length=1, max_length=512)], ...] = Field((), max_length=50)
    status: Status = Field(default_factory=lambda data: derive_status(data))
    totals: Totals = Field(default_factory=lambda data: derive_totals(data))

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(key in data for key in _COMPUTED):
            return {key: value for key, value in data.items() if key not in _COMPUTED}
        return data

    # --- derived views -------------------------------------------------------------------------------------------

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[Outcome, int]:
        """Count per outcome, listed and unlisted, in table order."""
        counter: Counter[Outcome] = Counter(item.outcome for item in self.items)
        counter.update(self.unlisted)
        return {outcome: counter[outcome] for outcome in ordered(counter) if counter[outcome]}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        """How many subjects the run accounted for."""
        return len(self.items) + sum(self.unlisted.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def truncated(self) -> int:
        """How many counted items this report does not list (see `unlisted`)."""
        return sum(self.unlisted.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def links(self) -> Links:
        """The run id, the Logs Insights query for it, and the console pages worth opening."""
        query = logs_insights_query(self.run_id)
        start = self.started - timedelta(minutes=5)
        end = self.finished + timedelta(minutes=5)
        return Links(
            run_id=self.run_id,
            logs_insights_query=query,
            logs_insights_url=logs_insights_url(self.region, query, self.log_groups, start, end),
            console=console_links(self),
        )

    def problems(self) -> list[ReportItem]:
        """Listed items that need the reader, failures first, in builder order within a severity."""
        listed = [item for item in self.items if item.severity is not Severity.OK]
        return sorted(listed, key=lambda item: SEVERITY_RANK[item.severity])

    def successes(self) -> list[ReportItem]:
        """Listed items with nothing to do."""
        return [item for item in self.items if item.severity is Severity.OK]

    def item_url(self, item: ReportItem) -> str | None:
        """The console page of the item's repository or secret (or, in a rules report, the rules page)."""
        details = item.details
        if details.repository:
            return console_repository_url(self.region, self.account, details.repository)
        if details.secret:
            return console_secret_url(self.region, details.secret)
        if details.rule and self.kind is Kind.RULES:
            return console_pull_through_cache_url(self.region)
        return None

    # --- rendering -----------------------------------------------------------------------------------------------

    def headline(self, prefix: str | None = None) -> str:
        """The one-line verdict, unshortened: status, kind, where, and the counts (`prefix`: see `subject`).

        The body's first line; `subject` is this line fitted into SNS's limit, so the two always agree.
        """
        head, where, parts = self._verdict(prefix)
        return one_line(f"{head} {where}: {', '.join(parts)}")

    def subject(self, prefix: str | None = None) -> str:
        """The SNS subject: the headline fitted into 99 characters, status first, no line breaks.

        `prefix` (config: notifications.subject_prefix) replaces the word "pullthrough" after the status, so a
        reader and a mail filter still see the status first.
        """
        head, where, parts = self._verdict(prefix)
        return fit_subject(self.headline(prefix), head, where, parts)

    def attributes(self) -> dict[str, dict[str, str]]:
        """SNS MessageAttributes (`kind`, `status`, `stack`) for subscription filter policies."""
        return {
            "kind": {"DataType": "String", "StringValue": self.kind.value},
            "status": {"DataType": "String", "StringValue": self.status.value},
            "stack": {"DataType": "String", "StringValue": self.stack},
        }

    def body(self, limit: int = MAX_MESSAGE_BYTES, prefix: str | None = None) -> str:
        """The full plain-text body, summarised when the message would exceed `limit` bytes.

        Its first line is `headline(prefix)`: give the prefix the subject was rendered with.
        """
        return fitted_body(self, limit, prefix)

    def message(self, success: SuccessVerbosity = "full", prefix: str | None = None) -> Message | None:
        """What to publish: None when the report is OK and success reports are off; a one-line body for summary."""
        if self.status is Status.OK and success == "off":
            return None
        if self.status is Status.OK and success == "summary":
            body = one_line(f"{self.headline(prefix)}. Run {self.run_id}.")
        else:
            body = self.body(prefix=prefix)
        return Message(subject=self.subject(prefix), body=body, attributes=self.attributes())

    def to_json(self) -> str:
        """The report as compact JSON; `Report.model_validate_json` reads it back."""
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_message(cls, body: str) -> Report:
        """Read a report back from a rendered body (its JSON block); raises ValueError when there is none."""
        _, found, rest = body.partition(JSON_BEGIN + "\n")
        if not found:
            raise ValueError(f"no line {JSON_BEGIN!r} in the message: not a full Pullthrough report")
        return cls.model_validate_json(rest.partition("\n" + JSON_END)[0])

    def to_log(self, item_limit: int = 50) -> dict[str, Any]:
        """Fields for the run's structured log line (Powertools Logger `extra`); lists at most `item_limit` problems."""
        problems = self.problems()
        summary = {
            "kind": self.kind.value,
            "status": self.status.value,
            "stack": self.stack,
            "region": self.region,
            "account": self.account,
            "trigger": self.trigger,
            "dry_run": self.dry_run,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "seconds": round((self.finished - self.started).total_seconds(), 3),
            "counts": {outcome.value: count for outcome, count in self.counts.items()},
            "total": self.total,
            "totals": self.totals.model_dump(mode="json"),
            "problems": [item.to_log() for item in problems[:item_limit]],
            "problems_not_shown": max(len(problems) - item_limit, 0),
        }
        return {"run_id": self.run_id, "report": summary}

    # --- internals -----------------------------------------------------------------------------------------------

    def _verdict(self, prefix: str | None) -> tuple[str, str, list[str]]:
        """The headline's pieces: `<STATUS> <prefix> <kind>[ dry-run]`, `<stack>/<region>`, the counts."""
        label = one_line(prefix or "") or "pullthrough"
        mode = " dry-run" if self.dry_run else ""
        head = f"{self.status.value} {label} {self.kind.value}{mode}"
        return head, f"{self.stack}/{self.region}", self._summary_parts()

    def _summary_parts(self) -> list[str]:
        counts = self.counts
        if not counts:
            return ["nothing to report"]
        severities = self._severity_by_outcome()
        problems = [o for o in counts if severities[o] is not Severity.OK]
        others = [o for o in counts if severities[o] is Severity.OK]
        parts = [f"{counts[o]:,} {o.label}" for o in problems + others]
        if problems:
            first = problems[0]
            parts[0] = f"{counts[first]:,} of {self.total:,} {first.label}"
        return parts

    def _severity_by_outcome(self) -> dict[Outcome, Severity]:
        # An outcome counts as a problem in the summary when any of its items is one (builders may raise severity).
        worst = {outcome: outcome.severity for outcome in Outcome}
        for item in self.items:
            if SEVERITY_RANK[item.severity] < SEVERITY_RANK[worst[item.outcome]]:
                worst[item.outcome] = item.severity
        return worst
