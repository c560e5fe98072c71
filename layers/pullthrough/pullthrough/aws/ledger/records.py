"""The ledger's records as the library reads and writes them: a run's META, its jobs, a verified image.

Separate from the item shapes (items.py) and the adapters (runs.py, jobs.py, ...): these are what callers hold, with
no DynamoDB attribute in sight. The key layout they live under is in `pullthrough.aws.ledger`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, NotRequired, TypedDict

OPEN_PARTITION = "OPEN"
META = "META"
JOB_PREFIX = "JOB#"
SHARD_PREFIX = "SHARD#"
RUN_PREFIX = "RUN#"
PENDING = "pending"
DONE = "done"
UNPLANNED = "unplanned"  # an image of a plan shard that never decided it (the shard failed every delivery)
VERIFIED_PREFIX = "VERIFIED#"
# A repository's verified tags live in one item (sk PART#00), or in numbered items when they outgrow it (PART#01, ...):
# a run recalls a repository with one BatchGetItem key. Each tag is one attribute, TAG#<tag>, holding its facts.
PART_PREFIX = "PART#"
TAG_PREFIX = "TAG#"
# DynamoDB's item size limit is 400 KB, names and values counted (DynamoDB guide, "Service, account, and table
# quotas"). plan_warming fills a part up to PART_BYTES; warm_images adds a tag to part 0 only while its running count
# of bytes stays under ITEM_BYTES, which leaves room for the key, the counters and rounding.
ITEM_BYTES = 380_000
PART_BYTES = 300_000
RETENTION = timedelta(days=30)  # how long a run's items stay before DynamoDB's TTL removes them
VERIFIED_FOR = timedelta(days=7)  # a verification older than this is done again in full
PULL_FAILURE_PREFIX = "PULLFAIL#"
PULL_FAILURES_KEPT = timedelta(days=7)
BUDGET_PREFIX = "BUDGET#"
SHARED = "SHARED"


class Recorded(StrEnum):
    """What happened to a job outcome sent to the ledger."""

    RECORDED = "recorded"  # counted now
    DUPLICATE = "duplicate"  # the job was already counted (a redelivery), or is not part of the run
    CLOSED = "closed"  # the run was closed before this job arrived (the next planner gave up waiting for it)


@dataclass(frozen=True)
class JobEntry:
    """One job of a run as the planner writes it: decided already (done, with its outcome) or pending."""

    key: str
    subject: str
    status: str = PENDING
    outcome: str | None = None
    report_item: str | None = None  # the ReportItem as JSON, when done
    bytes_moved: int = 0
    pulls_spent: int = 0


SuccessMode = Literal["full", "summary", "off"]
SUCCESS_MODES: tuple[SuccessMode, ...] = ("full", "summary", "off")  # the config's notifications.success


@dataclass(frozen=True)
class RunNotifications:
    """The config's `notifications` as the run was planned: its META carries them, so the job that closes the run
    publishes the report without reading the config (warm_images never imports it; bench/README.md, cold start)."""

    success: SuccessMode = "summary"  # the config's default
    subject_prefix: str | None = None


@dataclass(frozen=True)
class RunTarget:
    """The organisation member's account and region a run warms (the hub acting through its warm role), and the
    member's name in the config; a run without one warms the function's own account and region."""

    account: str
    region: str
    member: str = ""


class RunFacts(TypedDict):
    """What a run's META says about the run itself, as the planner opens it (the deadline: open runs only)."""

    trigger: str
    stack: str
    started: datetime
    notes: NotRequired[Sequence[str]]
    notifications: NotRequired[RunNotifications]
    target: NotRequired[RunTarget | None]


class OpenRun(RunFacts):
    """A run to open: its facts, its deadline and its jobs (Ledger.open_run's keywords). A sharded run also has
    `planned` (every image, most not decided yet) and its `shards`, the images each plan shard decides."""

    deadline: datetime
    jobs: Sequence[JobEntry]
    planned: NotRequired[int]
    shards: NotRequired[Sequence[ShardRecord]]


@dataclass(frozen=True)
class ShardRecord:
    """One plan shard of a run: its number and the images (key, subject) it decides."""

    index: int
    images: tuple[tuple[str, str], ...]
    status: str = PENDING


@dataclass(frozen=True)
class RunState:
    """A run's META item."""

    run_id: str
    planned: int
    done: int
    counts: dict[str, int]
    status: str
    trigger: str
    stack: str
    started: datetime
    deadline: datetime
    bytes_moved: int = 0
    pulls_spent: int = 0
    notes: tuple[str, ...] = ()
    notifications: RunNotifications | None = None  # None: a META written before runs carried them
    target: RunTarget | None = None  # None: the function's own account and region
    shards: int = 0  # plan shards (0: planned in one invocation)
    shards_done: int = 0
    closed_by: str | None = None
    closed_at: datetime | None = None
    reported_at: datetime | None = None

    @property
    def complete(self) -> bool:
        """Every planned job has an outcome."""
        return self.done >= self.planned

    @property
    def closed(self) -> bool:
        return self.status == "closed"


@dataclass(frozen=True)
class Verified:
    """ECR held `repository:tag` at `digest` with the manifest, config and layers of every platform in `wanted` it has.

    `wanted` is sorted; `platforms` are those of `wanted` the index has (empty for a single-platform manifest),
    `absent` those it lacks, `size` the bytes of their configs and layers. A digest is immutable and ECR keeps the
    blobs of an image it holds, so while ECR's tag still points at `digest` this stays true; it expires after
    VERIFIED_FOR all the same, and the image is verified in full again.
    """

    repository: str
    tag: str
    digest: str
    wanted: tuple[str, ...]
    platforms: tuple[str, ...]
    absent: tuple[str, ...]
    size: int
    at: datetime
    children: int = 0  # manifests the index lists (ECR imported them all): what its next import costs upstream
    # Pullthrough's last look at the tag upstream: a HEAD, or an import or refresh it triggered (None: not known).
    # The planner HEADs the tag again only once this is a day old (warm/decisions.py: ECR re-checks no sooner).
    looked: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.repository, self.tag)

    def matches(self, digest: str, platforms: Sequence[str]) -> bool:
        """Whether this verification answers for `digest` with these wanted platforms."""
        return digest == self.digest and tuple(sorted(platforms)) == self.wanted


@dataclass(frozen=True)
class JobRecord:
    """A JOB item read back."""

    key: str
    subject: str
    status: str
    outcome: str | None
    report_item: str | None


class Counted(TypedDict, total=False):
    """What a recorded outcome adds to its run's counters, and what it verified (Ledger.record's keywords)."""

    bytes_moved: int
    pulls_spent: int
    verified: Verified | None
