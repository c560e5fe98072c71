"""Importing one image into ECR the way ECR imports: trigger it, ask ECR for what it lacks, wait for ECR.

    trigger   one manifest GET by tag through the registry endpoint: ECR creates the repository from its creation
              template and imports the manifest, and for an index every manifest it lists (the ECR guide: "the
              manifest list and each image referenced in the manifest list are pulled")
    ask       BatchGetImage for the tag's manifest and the wanted platforms' manifests (ECR fetches what it lacks, or
              says why it cannot), BatchCheckLayerAvailability for their configs and layers, and GetDownloadUrlForLayer
              for each one ECR has nothing of, which makes ECR import it ("called once per image layer that is not
              already cached", botocore's ECR model); the URL it returns is not downloaded
    wait      BatchCheckLayerAvailability again, with backoff, as long as the invocation may; then the job goes back to
              the queue with a delay (SQS allows 15 minutes) and looks again: a slow import never holds a function
    last      layers still missing `download_after` into the import are downloaded once through the registry endpoint,
    resort    as a client's pull would fetch them (streamed and discarded; the report names them): AWS does not say
              whether GetDownloadUrlForLayer alone always makes ECR import a layer, and a pull does; after
              `give_up_after` the image fails as import_incomplete

Nothing but manifests (and last-resort layers) passes through the function. Failure reasons are ECR's own: the
registry endpoint's answer, BatchGetImage's failure codes, GetDownloadUrlForLayer's exceptions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pullthrough.errors import AwsAccessDenied, AwsError, InvalidManifest, PullthroughError, RegistryError
from pullthrough.registry import manifests
from pullthrough.registry.client import Manifest

if TYPE_CHECKING:
    from pullthrough.aws.ecr import Images

# BatchCheckLayerAvailability's answers (pullthrough.aws.ecr has the same; repeated so this module needs no boto3).
AVAILABLE, UNAVAILABLE, ARCHIVED, MISSING = "AVAILABLE", "UNAVAILABLE", "ARCHIVED", "MISSING"
# Seconds an invocation keeps for itself after waiting: to record the outcome and hand the job back.
MARGIN_SECONDS = 15.0
# SQS's longest message delay.
MAX_DELAY_SECONDS = 900
FIRST_DELAY_SECONDS = 30
# Waiting within a look: the first check of the layers asked for comes FIRST_POLL_SECONDS after asking, then the pause
# doubles up to LONGEST_POLL_SECONDS. AWS does not say how long ECR takes to import a layer (neither the ECR guide nor
# botocore's model; the sandbox imports as fast as its upstream answers: sandbox/registries/ecr_behaviour.py): ECR
# has to fetch each layer from the upstream over the internet (a token, a GET, the bytes) and store it, which takes
# the better part of a second at least, so checking sooner mostly hears UNAVAILABLE again. Each check is one
# BatchCheckLayerAvailability call for all the image's layers still missing (layers seen AVAILABLE are not asked
# again).
FIRST_POLL_SECONDS = 0.5
LONGEST_POLL_SECONDS = 5.0


class EcrImports(Protocol):
    """What importing asks of ECR: the registry endpoint for the trigger, the control plane for the rest."""

    def trigger(self, repository: str, tag: str) -> Manifest: ...

    def images(self, repository: str, references: Sequence[str]) -> Images: ...

    def layer_states(self, repository: str, digests: Sequence[str]) -> dict[str, str]: ...

    def request_layer(self, repository: str, digest: str) -> str: ...

    def download(self, repository: str, digest: str) -> int: ...


@dataclass(frozen=True)
class Wait:
    """How long to wait for ECR (config warm.imports), in seconds."""

    poll: int = 60
    download_after: int = 900
    give_up_after: int = 3600
    download: bool = True


@dataclass(frozen=True)
class Progress:
    """Where an import stands between looks: carried by the job's message from one delivery to the next."""

    started: datetime  # when the first look began
    digest: str  # what the tag pointed at in ECR then
    looks: int = 1
    moved: int = 0  # bytes that passed through the function so far
    spent: int = 0  # upstream pulls ECR spent on the trigger
    downloaded: tuple[str, ...] = ()  # layers fetched as a last resort


@dataclass(frozen=True)
class Landed:
    """ECR holds every wanted platform's manifest, config and layers."""

    digest: str
    platforms: tuple[str, ...]  # the wanted platforms the index has (empty for a single manifest)
    absent: tuple[str, ...]  # the wanted platforms it lacks
    children: int  # manifests the index lists (0 for a single manifest)
    size: int  # bytes of the wanted platforms' configs and layers
    progress: Progress


@dataclass(frozen=True)
class Waiting:
    """ECR is still importing: look again in `delay` seconds."""

    delay: int
    missing: tuple[str, ...]
    progress: Progress


@dataclass(frozen=True)
class Refused:
    """ECR could not import the image; `error` is ECR's (or the registry endpoint's) own answer."""

    error: PullthroughError | ImageRefusal
    progress: Progress | None


@dataclass(frozen=True)
class Incomplete:
    """The import did not finish within give_up_after; `missing` are the layers ECR still lacks."""

    missing: tuple[str, ...]
    waited: float
    progress: Progress


@dataclass(frozen=True)
class Mismatch:
    """ECR serves another digest than the one the config pins."""

    digest: str
    progress: Progress


@dataclass(frozen=True)
class NoPlatform:
    """The index has none of the wanted platforms."""

    offered: tuple[str, ...]
    progress: Progress


@dataclass(frozen=True)
class Archived:
    """ECR holds the image in its archive storage class: it cannot be pulled until restored."""

    digest: str
    layers: tuple[str, ...]
    progress: Progress


class ImageRefusal(PullthroughError):
    """BatchGetImage's failure for one reference: botocore's ImageFailureCode and ECR's words."""

    def __init__(self, code: str, reason: str, reference: str) -> None:
        super().__init__(f"ECR could not get {reference}: {code}: {reason}")
        self.code = code
        self.reason = reason
        self.reference = reference


Result = Landed | Waiting | Refused | Incomplete | Mismatch | NoPlatform | Archived


@dataclass(frozen=True)
class _Read:
    """A look's manifests: the top one parsed, the wanted platforms' images, which platforms it has and lacks."""

    progress: Progress
    parsed: manifests.Index | manifests.ImageManifest
    images: list[manifests.ImageManifest]
    platforms: tuple[str, ...]
    absent: tuple[str, ...]


_Held = tuple[Progress, list[str]]  # the progress after the wait, and the layers ECR still lacks


@dataclass
class Import:
    """One image's import through ECR: `look()` once per delivery of its job."""

    ecr: EcrImports
    repository: str
    tag: str
    platforms: tuple[str, ...]
    pinned: str | None
    wait: Wait
    trigger: bool  # ECR lacks the tag, or it moved upstream: a manifest GET makes ECR (re)import it
    previous: str | None = None  # what ECR held for the tag when the run was planned
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def look(self, progress: Progress | None, seconds_left: float | None) -> Result:
        """One look: on the first, trigger and ask; on every one, wait as long as this invocation may."""
        read = self._read(progress)
        if not isinstance(read, _Read):
            return read
        progress = read.progress
        sizes = {blob.digest: blob.size for image in read.images for blob in image.blobs}
        children = len(read.parsed.entries) if isinstance(read.parsed, manifests.Index) else 0
        budget = float(self.wait.poll) if seconds_left is None else min(self.wait.poll, seconds_left - MARGIN_SECONDS)
        held = self._hold(progress, list(sizes), self.clock() + max(budget, 0.0))
        if not isinstance(held, tuple):
            return held
        progress, missing = held
        if not missing:
            return Landed(progress.digest, read.platforms, read.absent, children, sum(sizes.values()), progress)
        waited = (self.now() - progress.started).total_seconds()
        if waited >= self.wait.give_up_after:
            return Incomplete(tuple(missing), waited, progress)
        return Waiting(self._delay(progress, waited), tuple(missing), _next(progress))

    def _read(self, progress: Progress | None) -> Result | _Read:
        """The image's manifests as ECR holds them (after the trigger, on the first look), or why the look ends."""
        try:
            if progress is None:
                progress, top = self._first()
            else:
                top = self._top(progress.digest)
            if self.pinned and progress.digest != self.pinned:
                return Mismatch(progress.digest, progress)
            parsed = top.parsed()
            images, platforms, absent = self._platforms(parsed, progress)
            if not images:
                offered = tuple(parsed.platforms) if isinstance(parsed, manifests.Index) else ()
                return NoPlatform(offered, progress)
        except (ImageRefusal, RegistryError, InvalidManifest) as error:
            return Refused(error, progress)
        except AwsError as error:
            if not decisive(error):
                raise  # throttling, a passing fault: SQS delivers the job again, the last delivery reports it
            return Refused(error, progress)
        return _Read(progress, parsed, images, platforms, absent)

    def _hold(self, progress: Progress, digests: list[str], deadline: float) -> Archived | Refused | _Held:
        """Ask ECR for the layers it lacks and wait until `deadline` (downloading them once, when due): the layers
        still missing, or why the look ends."""
        try:
            states = self.ecr.layer_states(self.repository, digests)
            archived = tuple(d for d, state in states.items() if state == ARCHIVED)
            if archived:
                return Archived(progress.digest, archived, progress)
            missing = self._until_held(self._ask(states), deadline)
            if missing and self._due_for_download(progress):
                progress = self._download(missing, progress)
                missing = self._until_held(self._ask(self.ecr.layer_states(self.repository, missing)), deadline)
        except AwsError as error:
            if not decisive(error):
                raise
            return Refused(error, progress)
        return progress, missing

    # --- the first look -------------------------------------------------------------------------------------

    def _first(self) -> tuple[Progress, Manifest]:
        started = self.now()
        if not self.trigger:
            top = self._top_by_tag()
            return Progress(started, top.digest), top
        fetched = self.ecr.trigger(self.repository, self.tag)
        # ECR imported (index + every manifest it lists) unless it already held the tag at the same digest.
        imported = self.previous is None or fetched.digest != self.previous
        spent = (1 + _children(fetched)) if imported else 0
        return Progress(started, fetched.digest, moved=len(fetched.body), spent=spent), fetched

    def _top_by_tag(self) -> Manifest:
        return self._got(self.ecr.images(self.repository, [self.tag]), self.tag)

    def _top(self, digest: str) -> Manifest:
        return self._got(self.ecr.images(self.repository, [digest]), digest)

    def _got(self, answer: Images, reference: str) -> Manifest:
        stored = answer.found.get(reference)
        if stored is not None:
            return Manifest(stored.digest, stored.media_type, len(stored.body), None, stored.body)
        failure = answer.failures.get(reference)
        if failure is not None:
            raise ImageRefusal(failure.code, failure.reason, reference)
        raise ImageRefusal("ImageNotFound", "ECR holds no such image", reference)

    def _platforms(
        self, parsed: manifests.Index | manifests.ImageManifest, progress: Progress
    ) -> tuple[list[manifests.ImageManifest], tuple[str, ...], tuple[str, ...]]:
        if isinstance(parsed, manifests.ImageManifest):
            return [parsed], (), ()
        entries = {p: e for p in self.platforms if (e := parsed.entry_for(p)) is not None}
        absent = tuple(p for p in self.platforms if p not in entries)
        if not entries:
            return [], (), absent
        answer = self.ecr.images(self.repository, [e.digest for e in entries.values()])
        images = []
        for platform, entry in entries.items():
            child = self._got(answer, entry.digest).parsed()
            if not isinstance(child, manifests.ImageManifest):
                raise InvalidManifest(f"{self.repository}:{self.tag}: the {platform} entry is not an image manifest")
            images.append(child)
        return images, tuple(entries), absent

    # --- layers -----------------------------------------------------------------------------------------------

    def _ask(self, states: dict[str, str]) -> list[str]:
        """Ask ECR for every layer it has nothing of; the layers not yet held."""
        for digest, state in states.items():
            if state == MISSING:
                self.ecr.request_layer(self.repository, digest)
        return [d for d, state in states.items() if state != AVAILABLE]

    def _until_held(self, missing: list[str], deadline: float) -> list[str]:
        """Poll ECR with backoff until it holds every layer or this invocation's share of waiting is spent."""
        pause = FIRST_POLL_SECONDS
        while missing and self.clock() < deadline:
            self.sleep(min(pause, max(deadline - self.clock(), 0.0)))
            pause = min(pause * 2, LONGEST_POLL_SECONDS)
            states = self.ecr.layer_states(self.repository, missing)
            # A layer ECR dropped (its import failed) is asked for again: GetDownloadUrlForLayer then says why.
            missing = self._ask(states)
        return missing

    def _due_for_download(self, progress: Progress) -> bool:
        waited = (self.now() - progress.started).total_seconds()
        return self.wait.download and not progress.downloaded and waited >= self.wait.download_after

    def _download(self, missing: list[str], progress: Progress) -> Progress:
        """The last resort: fetch each missing layer once as a client pull would (streamed, discarded, counted)."""
        moved = 0
        for digest in missing:
            moved += self.ecr.download(self.repository, digest)
        return Progress(
            progress.started,
            progress.digest,
            progress.looks,
            progress.moved + moved,
            progress.spent,
            tuple(missing),
        )

    def _delay(self, progress: Progress, waited: float) -> int:
        """Seconds until the next look: doubling from 30, never past the next milestone, within SQS's limit."""
        backoff = FIRST_DELAY_SECONDS * 2 ** (progress.looks - 1)
        milestones = [self.wait.give_up_after - waited]
        if self.wait.download and not progress.downloaded:
            milestones.append(self.wait.download_after - waited)
        upcoming = min((m for m in milestones if m > 0), default=1.0)
        return int(max(1, min(backoff, upcoming, MAX_DELAY_SECONDS)))


# ECR's answers about the image itself (botocore's ECR model): asking again soon would get the same answer.
DECISIVE_CODES = frozenset(
    {
        "UnableToGetUpstreamImageException",
        "UnableToGetUpstreamLayerException",
        "LayerInaccessibleException",
        "LayersNotFoundException",
    }
)


def decisive(error: AwsError) -> bool:
    """Whether an AWS error is ECR's answer about the image (or a refusal of access), not a passing fault."""
    return error.code in DECISIVE_CODES or isinstance(error, AwsAccessDenied)


def _next(progress: Progress) -> Progress:
    return Progress(
        progress.started, progress.digest, progress.looks + 1, progress.moved, progress.spent, progress.downloaded
    )


def _children(manifest: Manifest) -> int:
    try:
        parsed = manifest.parsed()
    except InvalidManifest:
        return 0
    return len(parsed.entries) if isinstance(parsed, manifests.Index) else 0


__all__ = [
    "ARCHIVED",
    "AVAILABLE",
    "MISSING",
    "UNAVAILABLE",
    "Archived",
    "EcrImports",
    "ImageRefusal",
    "Import",
    "Incomplete",
    "Landed",
    "Mismatch",
    "NoPlatform",
    "Progress",
    "Refused",
    "Result",
    "Wait",
    "Waiting",
]
