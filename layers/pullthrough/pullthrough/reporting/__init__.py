"""One report model for every Pullthrough run (rules, credentials, warm), and its rendering for SNS.

A run's builder (rules.py, credentials.py, warming.py) collects `ReportItem`s, one per image, rule or secret, and
constructs a `Report` once at the end. The report renders itself as a person reads it (a subject of at most 99
characters, status first; a plain-text body) and as a machine reads it (message attributes for SNS filter
policies; the report's JSON as the body's last block, between BEGIN and END marker lines).

SNS caps a message at 262,144 bytes. A report that does not fit is summarised: every failure up to a bound keeps
its reason and fix, the rest collapse into counts, the JSON lists only what the text lists (with a `truncated`
count), and the body says the full detail is in the logs under the run id.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, computed_field, model_validator

# --- limits --------------------------------------------------------------------------------------------------------

# SNS: "messages must be UTF-8 encoded strings and at most 256 KB in size (262,144 bytes, not 262,144 characters)".
MAX_MESSAGE_BYTES = 262_144
# SNS documents subjects as "less than 100 characters long"; 99 is the longest that obeys both readings.
MAX_SUBJECT_CHARS = 99
# A full body lists successes one per line up to this many; beyond it, only their counts per outcome.
SUCCESS_LIST_LIMIT = 30
# A summary lists at most this many problems; a binary search finds the most that fit.
SUMMARY_PROBLEM_LIMIT = 1000
# "Where to look" lists at most this many console pages.
CONSOLE_LINK_LIMIT = 10

JSON_BEGIN = "-----BEGIN PULLTHROUGH REPORT JSON-----"
JSON_END = "-----END PULLTHROUGH REPORT JSON-----"

SuccessVerbosity = Literal["full", "summary", "off"]
"""How a report with status OK is published (config: notifications.success); WARNING and FAILED are always full."""


# --- vocabulary ----------------------------------------------------------------------------------------------------


class Kind(StrEnum):
    """Which run produced the report."""

    RULES = "rules"
    CREDENTIALS = "credentials"
    WARM = "warm"
    PULLS = "pulls"  # pulls that failed in ECR, from its "ECR Pull Through Cache Action" events
    PRUNE = "prune"  # cached images nobody pulled for `prune.unused_for_days`, deleted (or, in a dry run, listed)


class Status(StrEnum):
    """The report's verdict: FAILED when any item failed, WARNING when any needs attention, else OK."""

    OK = "OK"
    WARNING = "WARNING"
    FAILED = "FAILED"


class Severity(StrEnum):
    """How much an item needs the reader: ok (nothing to do), warning (look at it), failure (act on it)."""

    OK = "ok"
    WARNING = "warning"
    FAILURE = "failure"


class Outcome(StrEnum):
    """What happened to one subject. The declaration order is the order of every table and summary."""

    # rules and repository-creation templates
    CREATED = "created"
    UPDATED = "updated"
    REPLACED = "replaced"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    NOT_OWNED = "not_owned"  # a rule or template Pullthrough did not create: reported, never touched
    CONFLICT = "conflict"  # config and account disagree on an immutable field and replacement is not allowed
    SKIPPED = "skipped"  # not attempted, e.g. its secret failed the credentials gate
    # credentials
    VALID = "valid"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"  # the upstream could not be asked; validity unknown
    EXPIRING = "expiring"  # valid today, expires within the configured warning window
    ROTATED = "rotated"
    ROTATION_FAILED = "rotation_failed"  # the pending value was refused; AWSCURRENT kept the old one
    # warm
    WARMED = "warmed"
    ALREADY_CACHED = "already_cached"
    REFRESHED = "refreshed"
    DEFERRED = "deferred"  # did not fit this run's share of the upstream pull budget
    FAILED = "failed"
    # prune
    PRUNED = "pruned"  # deleted: nobody pulled it for prune.unused_for_days
    WOULD_PRUNE = "would_prune"  # a dry run's deletion
    KEPT = "kept"  # unpulled as long, but the warm list, prune.keep or an index still needs it

    @property
    def label(self) -> str:
        """The outcome as words for people ("already cached")."""
        return self.value.replace("_", " ")

    @property
    def severity(self) -> Severity:
        """The severity an item with this outcome has unless its builder says otherwise."""
        return _DEFAULT_SEVERITY.get(self, Severity.OK)


_DEFAULT_SEVERITY: dict[Outcome, Severity] = {
    Outcome.CONFLICT: Severity.WARNING,
    Outcome.SKIPPED: Severity.WARNING,
    Outcome.UNREACHABLE: Severity.WARNING,
    Outcome.EXPIRING: Severity.WARNING,
    Outcome.DEFERRED: Severity.WARNING,
    Outcome.INVALID: Severity.FAILURE,
    Outcome.ROTATION_FAILED: Severity.FAILURE,
    Outcome.FAILED: Severity.FAILURE,
}
_SEVERITY_RANK = {Severity.FAILURE: 0, Severity.WARNING: 1, Severity.OK: 2}
_OUTCOME_RANK = {outcome: index for index, outcome in enumerate(Outcome)}
CHANGE_OUTCOMES = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.REPLACED, Outcome.DELETED})


def _clip(text: str, limit: int) -> str:
    # Builders pass upstream error texts through; a bounded field keeps one odd item from crowding out the rest.
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _clipped(limit: int) -> Any:
    return AfterValidator(partial(_clip, limit=limit))


ShortText = Annotated[str, _clipped(300)]
LongText = Annotated[str, _clipped(1000)]


# --- model ---------------------------------------------------------------------------------------------------------


class Details(BaseModel):
    """Small typed facts about an item; every field is optional and only what applies is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str | None = None  # the rule's ECR repository prefix, e.g. "docker-hub"
    upstream: str | None = None  # the upstream's catalogue key, e.g. "docker-hub"
    repository: str | None = None  # the ECR cache repository, e.g. "docker-hub/library/nginx"
    secret: str | None = None  # the secret's name (never its value), e.g. "ecr-pullthroughcache/docker-hub"
    digest: str | None = None
    previous_digest: str | None = None  # for refreshed: what ECR held before
    platforms: tuple[str, ...] | None = None  # e.g. ("linux/amd64", "linux/arm64")
    size: int | None = Field(None, ge=0)  # bytes the image occupies (all wanted platforms)
    bytes_moved: int | None = Field(None, ge=0)  # bytes that passed through the function (manifests, last resorts)
    pulls_spent: int | None = Field(None, ge=0)  # upstream manifest GETs this run spent on the item
    index_manifests: int | None = Field(None, ge=0)  # manifests the index lists: ECR imports (and pays for) them all
    downloaded: tuple[str, ...] | None = None  # layers downloaded as a last resort: ECR had not imported them
    pulls_remaining: int | None = Field(None, ge=0)  # the upstream's remaining pull budget after the item
    valid: bool | None = None  # ValidatePullThroughCacheRule's isValid, or an upstream credential check
    changes: tuple[ShortText, ...] | None = None  # e.g. ("credentialArn -> ...:secret:ecr-pullthroughcache/hub",)
    expires: AwareDatetime | None = None  # a token's known expiry
    seconds: float | None = Field(None, ge=0)  # how long the item took
    source: ShortText | None = None  # the warm.sources entry that names the image (None: warm.images or a request)


class ReportItem(BaseModel):
    """One image, rule or secret, what happened to it, why, and what the reader should do about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: ShortText  # "docker.io/library/nginx:1.27", "rule docker-hub", "secret ecr-pullthroughcache/hub"
    outcome: Outcome
    reason: LongText | None = None  # why, in words: "the upstream has no tag 1.99 (HTTP 404)"
    fix: LongText | None = None  # what to do: "remove 1.99 from warm.images in config/pullthrough.yaml"
    reason_code: str | None = Field(None, max_length=64)  # machine reason, e.g. RegistryError.reason ("auth")
    severity: Severity = Field(default_factory=lambda data: _item_severity(data))
    details: Details = Details()

    def to_log(self) -> dict[str, Any]:
        """Fields for one structured log line about this item (Powertools Logger `extra`)."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"details"}) | {
            "details": self.details.model_dump(mode="json", exclude_none=True)
        }


def _item_severity(data: dict[str, Any]) -> Severity:
    outcome = data.get("outcome")
    # A missing outcome already failed validation; the severity is never seen.
    return outcome.severity if isinstance(outcome, Outcome) else Severity.FAILURE


class Totals(BaseModel):
    """Run-wide figures; derived from the items' details unless the builder knows better (e.g. a ledger)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bytes_moved: int = Field(0, ge=0)
    pulls_spent: int = Field(0, ge=0)
    pulls_remaining: dict[str, int] = {}  # per upstream: the lowest remaining budget seen in the run
    # prune only: the sizes of the images deleted (or, in a dry run, that would be); None for other runs
    bytes_freed: int | None = Field(None, ge=0)


class Link(BaseModel):
    """A console page, with words saying what it shows."""

    model_config = ConfigDict(frozen=True)

    title: str
    url: str


class Links(BaseModel):
    """Where to look for more: the run id, a Logs Insights query for it, and console pages."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    logs_insights_query: str
    logs_insights_url: str
    console: tuple[Link, ...]


# Derived on output, recomputed on input: a report's JSON read back must not trust stale copies of them.
_COMPUTED = ("counts", "total", "truncated", "links")


class Report(BaseModel):
    """The result of one run, for a person (subject, body) and for machines (attributes, JSON, log, metrics)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    status: Status = Field(default_factory=lambda data: _derive_status(data))
    totals: Totals = Field(default_factory=lambda data: _derive_totals(data))

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
        return {outcome: counter[outcome] for outcome in _ordered(counter) if counter[outcome]}

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
            console=self._console_links(),
        )

    def problems(self) -> list[ReportItem]:
        """Listed items that need the reader, failures first, in builder order within a severity."""
        listed = [item for item in self.items if item.severity is not Severity.OK]
        return sorted(listed, key=lambda item: _SEVERITY_RANK[item.severity])

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

    def _console_links(self) -> tuple[Link, ...]:
        links: dict[str, Link] = {}
        for item in self.problems():
            url = self.item_url(item)
            if url and url not in links:
                links[url] = Link(title=_link_title(item), url=url)
            if len(links) >= CONSOLE_LINK_LIMIT - 1:  # one place is kept for the kind's own page
                break
        page = _kind_page(self)
        links.setdefault(page.url, page)
        return tuple(links.values())

    # --- rendering -----------------------------------------------------------------------------------------------

    def headline(self, prefix: str | None = None) -> str:
        """The one-line verdict, unshortened: status, kind, where, and the counts (`prefix`: see `subject`).

        The body's first line; `subject` is this line fitted into SNS's limit, so the two always agree.
        """
        head, where, parts = self._verdict(prefix)
        return _one_line(f"{head} {where}: {', '.join(parts)}")

    def subject(self, prefix: str | None = None) -> str:
        """The SNS subject: the headline fitted into 99 characters, status first, no line breaks.

        `prefix` (config: notifications.subject_prefix) replaces the word "pullthrough" after the status, so a
        reader and a mail filter still see the status first.
        """
        head, where, parts = self._verdict(prefix)
        if len(headline := self.headline(prefix)) <= MAX_SUBJECT_CHARS:
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
        return _one_line(subject)[:MAX_SUBJECT_CHARS]

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
        budget = limit - _attributes_size(self.attributes())
        full = _render(self, summarised=False, prefix=prefix)
        if _size(full) <= budget:
            return full
        problems = self.problems()

        def summary(bound: int) -> str:
            short, collapsed = self._shortened(problems[:bound])
            return _render(short, summarised=True, collapsed=collapsed, prefix=prefix)

        # The largest number of listed problems that fits: a binary search, about ten renderings at most.
        fits, low, high = summary(0), 0, min(len(problems), SUMMARY_PROBLEM_LIMIT)
        if _size(fits) > budget:
            raise ValueError(f"report {self.run_id}: even its shortest summary is {_size(fits)} bytes, over {budget}")
        while low < high:
            middle = (low + high + 1) // 2
            text = summary(middle)
            if _size(text) <= budget:
                fits, low = text, middle
            else:
                high = middle - 1
        return fits

    def message(self, success: SuccessVerbosity = "full", prefix: str | None = None) -> Message | None:
        """What to publish: None when the report is OK and success reports are off; a one-line body for summary."""
        if self.status is Status.OK and success == "off":
            return None
        if self.status is Status.OK and success == "summary":
            body = _one_line(f"{self.headline(prefix)}. Run {self.run_id}.")
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
        label = _one_line(prefix or "") or "pullthrough"
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
            if _SEVERITY_RANK[item.severity] < _SEVERITY_RANK[worst[item.outcome]]:
                worst[item.outcome] = item.severity
        return worst

    def _shortened(self, keep: Sequence[ReportItem]) -> tuple[Report, list[Collapsed]]:
        """A copy listing only `keep`, every other item moved into `unlisted` (counts, status and totals kept),
        and the problems left out, counted per outcome and reason."""
        kept_ids = {id(item) for item in keep}
        dropped = [item for item in self.items if id(item) not in kept_ids]
        unlisted: Counter[Outcome] = Counter(self.unlisted)
        unlisted.update(item.outcome for item in dropped)
        short = self.model_copy(
            update={
                "items": tuple(item for item in self.items if id(item) in kept_ids),
                "unlisted": {outcome: unlisted[outcome] for outcome in _ordered(unlisted)},
            }
        )
        return short, _collapse(dropped)


@dataclass(frozen=True)
class Message:
    """One SNS message: subject, body and attributes, ready for sns:Publish."""

    subject: str
    body: str
    attributes: dict[str, dict[str, str]]

    @property
    def size(self) -> int:
        """Bytes SNS counts against its limit: body and attributes, UTF-8."""
        return _size(self.body) + _attributes_size(self.attributes)


# --- derivations ---------------------------------------------------------------------------------------------------


def _derive_status(data: dict[str, Any]) -> Status:
    severities = [item.severity for item in data.get("items", ())]
    severities += [outcome.severity for outcome, count in data.get("unlisted", {}).items() if count]
    if Severity.FAILURE in severities:
        return Status.FAILED
    if Severity.WARNING in severities:
        return Status.WARNING
    return Status.OK


def _derive_totals(data: dict[str, Any]) -> Totals:
    items: Iterable[ReportItem] = data.get("items", ())
    moved = spent = 0
    freed: int | None = None
    remaining: dict[str, int] = {}
    for item in items:
        details = item.details
        if item.outcome in (Outcome.PRUNED, Outcome.WOULD_PRUNE):
            freed = (freed or 0) + (details.size or 0)
        moved += details.bytes_moved or 0
        spent += details.pulls_spent or 0
        if details.pulls_remaining is not None:
            upstream = details.upstream or "upstream"
            remaining[upstream] = min(remaining.get(upstream, details.pulls_remaining), details.pulls_remaining)
    return Totals(bytes_moved=moved, pulls_spent=spent, pulls_remaining=remaining, bytes_freed=freed)


def _ordered(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return sorted(set(outcomes), key=lambda o: (_SEVERITY_RANK[o.severity], _OUTCOME_RANK[o]))


Collapsed = tuple[Severity, Outcome, str, int]  # severity, outcome, reason (code or words), how many items


def _collapse(items: Iterable[ReportItem]) -> list[Collapsed]:
    """Problems left out of a summary, counted per outcome and reason."""
    counter: Counter[tuple[Severity, Outcome, str]] = Counter()
    for item in items:
        if item.severity is not Severity.OK:
            reason = item.reason_code or _clip(item.reason or "no reason given", 80)
            counter[(item.severity, item.outcome, reason)] += 1
    return [(severity, outcome, reason, count) for (severity, outcome, reason), count in counter.most_common()]


# --- console and Logs Insights links -------------------------------------------------------------------------------


def _console_host(region: str) -> str:
    if region.startswith("cn-"):
        return f"https://{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def console_repository_url(region: str, account: str, repository: str) -> str:
    """The ECR console page of one private repository."""
    return f"{_console_host(region)}/ecr/repositories/private/{account}/{repository}?region={region}"


def console_pull_through_cache_url(region: str) -> str:
    """The ECR console's Private registry > Pull through cache page, listing the rules."""
    return f"{_console_host(region)}/ecr/private-registry/pull-through-cache?region={region}"


def console_repositories_url(region: str) -> str:
    """The ECR console's list of private repositories."""
    return f"{_console_host(region)}/ecr/private-registry/repositories?region={region}"


def console_secret_url(region: str, secret: str) -> str:
    """The Secrets Manager console page of one secret, by name or ARN."""
    if ":secret:" in secret:
        # An ARN ends in "-" and six random characters that Secrets Manager added; the console wants the name.
        secret = re.sub(r"-[A-Za-z0-9]{6}$", "", secret.split(":secret:", 1)[1])
    return f"{_console_host(region)}/secretsmanager/secret?name={quote(secret, safe='')}&region={region}"


def logs_insights_query(run_id: str) -> str:
    """A Logs Insights query for every log line of one run (handlers append `run_id` to their logger's keys)."""
    quoted = run_id.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "fields @timestamp, level, message, subject, outcome, reason\n"
        f'| filter run_id = "{quoted}"\n'
        "| sort @timestamp asc\n"
        "| limit 10000"
    )


def logs_insights_url(region: str, query: str, log_groups: Sequence[str], start: datetime, end: datetime) -> str:
    """A CloudWatch console link that opens Logs Insights with `query` over `log_groups` between start and end.

    The console's fragment format is not documented: a JSURL-like object whose strings are percent-encoded with
    `*` for `%`, then escaped again with `$` for `%`; this follows URLs the console itself produces.
    """
    detail: dict[str, Any] = {
        "end": _insights_time(end),
        "start": _insights_time(start),
        "timeType": "ABSOLUTE",
        "tz": "Local",  # the value the console writes; the times are UTC either way
        "editorString": query,
        "isLiveTail": False,
    }
    if log_groups:
        detail["source"] = list(log_groups)
    encoded = _jsurl(detail)
    for char, escaped in (("~", "$257E"), ("(", "$2528"), (")", "$2529"), ("'", "$2527")):
        encoded = encoded.replace(char, escaped)
    return f"{_console_host(region)}/cloudwatch/home?region={region}#logsV2:logs-insights$3FqueryDetail$3D{encoded}"


def _insights_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _jsurl(value: Any) -> str:
    if isinstance(value, bool):
        return "~true" if value else "~false"
    if isinstance(value, int | float):
        return f"~{value}"
    if isinstance(value, str):
        return "~'" + "".join(c if c.isascii() and (c.isalnum() or c in "-.") else _star(c) for c in value)
    if isinstance(value, list):
        return "~(" + ("".join(_jsurl(v) for v in value) or "~") + ")"
    if isinstance(value, dict):
        return "~(" + "~".join(f"{key}{_jsurl(v)}" for key, v in value.items()) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} for a Logs Insights link")


def _star(char: str) -> str:
    return "".join(f"*{byte:02x}" for byte in char.encode())


def _kind_page(report: Report) -> Link:
    if report.kind in (Kind.WARM, Kind.PULLS, Kind.PRUNE):
        return Link(title="ECR private repositories", url=console_repositories_url(report.region))
    return Link(title="ECR pull through cache rules", url=console_pull_through_cache_url(report.region))


def _link_title(item: ReportItem) -> str:
    details = item.details
    if details.repository:
        return f"ECR repository {details.repository}"
    if details.secret:
        return f"secret {details.secret.split(':secret:')[-1]}"
    return "ECR pull through cache rules"


# --- text ----------------------------------------------------------------------------------------------------------


def _size(text: str) -> int:
    return len(text.encode())


def _attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    return sum(_size(name) + _size(a["DataType"]) + _size(a["StringValue"]) for name, a in attributes.items())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def human_bytes(count: int) -> str:
    """1536 -> "1.5 KiB"."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _facts(item: ReportItem) -> str:
    """The item's details as one short line: digest, platforms, sizes, budget, validity, changes, expiry."""
    d = item.details
    facts: list[str] = []
    # Facts the subject already states ("rule ghcr", "secret ecr-pullthroughcache/hub") are not repeated.
    if d.source:
        facts.append(f"from {d.source}")
    if d.rule and f"rule {d.rule}" not in item.subject:
        facts.append(f"rule {d.rule}")
    if d.upstream and d.upstream != d.rule:
        facts.append(f"upstream {d.upstream}")
    if d.secret and d.secret not in item.subject:
        facts.append(f"secret {d.secret}")
    if d.digest:
        facts.append(_short_digest(d.digest))
    if d.previous_digest:
        facts.append(f"was {_short_digest(d.previous_digest)}")
    if d.platforms:
        # The config's platforms choose what is verified; ECR imports (and the upstream charges) every manifest.
        platforms = ", ".join(d.platforms)
        facts.append(f"{platforms} verified of {d.index_manifests} imported" if d.index_manifests else platforms)
    if d.size is not None:
        facts.append(human_bytes(d.size))
    if d.bytes_moved:
        facts.append(f"{human_bytes(d.bytes_moved)} moved")
    if d.pulls_spent:
        facts.append(f"{d.pulls_spent} pull{'s' if d.pulls_spent != 1 else ''}")
    if d.pulls_remaining is not None:
        facts.append(f"{d.pulls_remaining:,} pulls left")
    if d.valid is not None:
        facts.append("valid" if d.valid else "invalid")
    if d.expires:
        facts.append(f"expires {d.expires.astimezone(UTC):%Y-%m-%d}")
    if d.changes:
        facts.append("; ".join(d.changes))
    if d.seconds is not None:
        facts.append(_duration(d.seconds))
    return "; ".join(facts)


def _short_digest(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]


def _render(report: Report, *, summarised: bool, collapsed: Sequence[Collapsed] = (), prefix: str | None = None) -> str:
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
    took = _duration((report.finished - report.started).total_seconds())
    lines = [
        f"Stack {report.stack} in {report.region}, account {report.account}",
        f"Run {report.run_id}, triggered by {report.trigger}",
        f"Started {_when(report.started)}, finished {_when(report.finished)} (took {took})",
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
            facts = _facts(first)
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
            facts = _facts(item)
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


__all__ = [
    "CHANGE_OUTCOMES",
    "JSON_BEGIN",
    "JSON_END",
    "MAX_MESSAGE_BYTES",
    "MAX_SUBJECT_CHARS",
    "Details",
    "Kind",
    "Link",
    "Links",
    "Message",
    "Outcome",
    "Report",
    "ReportItem",
    "Severity",
    "Status",
    "SuccessVerbosity",
    "Totals",
    "console_pull_through_cache_url",
    "console_repositories_url",
    "console_repository_url",
    "console_secret_url",
    "human_bytes",
    "logs_insights_query",
    "logs_insights_url",
]
