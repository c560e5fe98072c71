"""What a report is made of: one `ReportItem` per image, rule or secret (with its `Details`), and the run's `Totals`.

Separate from the report itself (model.py) because every run's builder makes items long before it makes a report,
and because what the report derives from its items (status, totals, the problems a summary collapses) is a matter of
items alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from pullthrough.reporting.vocabulary import Outcome, Severity, Status


def clip(text: str, limit: int) -> str:
    """`text` stripped and cut to `limit` characters, an ellipsis marking the cut."""
    # Builders pass upstream error texts through; a bounded field keeps one odd item from crowding out the rest.
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _clipped(limit: int) -> Any:
    return AfterValidator(partial(clip, limit=limit))


ShortText = Annotated[str, _clipped(300)]
LongText = Annotated[str, _clipped(1000)]


class Details(BaseModel):
    """Small typed facts about an item; every field is optional and only what applies is set."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

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
    # org reports (the hub's): which member account and region an item is about, and that run's counts per outcome
    account: str | None = Field(None, pattern=r"^\d{12}$")
    region: str | None = Field(None, max_length=32)
    member: str | None = Field(None, max_length=64)  # the organization.members entry's name
    run_ids: tuple[str, ...] | None = None  # the member's warm runs of the cycle
    counts: dict[Outcome, Annotated[int, Field(ge=0)]] | None = None


class ReportItem(BaseModel):
    """One image, rule or secret, what happened to it, why, and what the reader should do about it."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    subject: ShortText  # "docker.io/library/nginx:1.27", "rule docker-hub", "secret ecr-pullthroughcache/hub"
    outcome: Outcome
    reason: LongText | None = None  # why, in words: "the upstream has no tag 1.99 (HTTP 404)"
    fix: LongText | None = None  # what to do: "remove 1.99 from warm.images in config/pullthrough.yaml"
    reason_code: str | None = Field(None, max_length=64)  # machine reason, e.g. RegistryError.reason ("auth")
    severity: Severity = Field(default_factory=lambda data: _item_severity(data))
    details: Details = Field(default_factory=Details)  # a factory: a default instance would build Details at import

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

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    bytes_moved: int = Field(0, ge=0)
    pulls_spent: int = Field(0, ge=0)
    pulls_remaining: dict[str, int] = {}  # per upstream: the lowest remaining budget seen in the run
    # prune only: the sizes of the images deleted (or, in a dry run, that would be); None for other runs
    bytes_freed: int | None = Field(None, ge=0)


# --- derivations ---------------------------------------------------------------------------------------------------


def derive_status(data: dict[str, Any]) -> Status:
    """FAILED when any item (listed or counted) failed, WARNING when any needs attention, else OK."""
    severities = [item.severity for item in data.get("items", ())]
    severities += [outcome.severity for outcome, count in data.get("unlisted", {}).items() if count]
    if Severity.FAILURE in severities:
        return Status.FAILED
    if Severity.WARNING in severities:
        return Status.WARNING
    return Status.OK


def derive_totals(data: dict[str, Any]) -> Totals:
    """The run-wide figures the listed items' details add up to."""
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


Collapsed = tuple[Severity, Outcome, str, int]  # severity, outcome, reason (code or words), how many items


def collapse(items: Iterable[ReportItem]) -> list[Collapsed]:
    """Problems left out of a summary, counted per outcome and reason."""
    counter: Counter[tuple[Severity, Outcome, str]] = Counter()
    for item in items:
        if item.severity is not Severity.OK:
            reason = item.reason_code or clip(item.reason or "no reason given", 80)
            counter[(item.severity, item.outcome, reason)] += 1
    return [(severity, outcome, reason, count) for (severity, outcome, reason), count in counter.most_common()]
