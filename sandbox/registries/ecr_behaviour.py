"""What tests turn in the sandbox's ECR: its clock, how its background imports behave, and the events it sends.

sb.ecr.clock.advance(hours=25)          # ECR's idea of now: a cached tag is due for its daily re-check
sb.ecr.imports.hold()                   # layer imports wait (slow) ...
sb.ecr.imports.release()                # ... and go on
sb.ecr.imports.stick()                  # layer imports never finish (stuck)
sb.ecr.imports.fail("UpstreamUnavailable", repository="ns/app")   # layer imports fail, with an event
sb.ecr.events.take()                    # the "ECR Pull Through Cache Action" events sent so far
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

PTC_ACTION = "ECR Pull Through Cache Action"


class Clock:
    """UTC now, plus whatever a test advanced it by (only the sandbox's ECR reads it)."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> None:
        """Move ECR's time forward, e.g. advance(hours=25)."""
        with self._lock:
            self._offset += timedelta(**delta)

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()


@dataclass(frozen=True)
class ImportFailure:
    code: str
    reason: str
    repository: str | None  # None: every repository


Task = Callable[[], None]


class Imports:
    """How ECR's background layer imports behave: at once (the default), held until released, stuck, or failing.

    AWS does not say how long an import takes; a held or stuck import parks its work here (no thread waits), and
    `release()` runs what was parked.
    """

    def __init__(self) -> None:
        self._mode = "fast"
        self._parked: list[Task] = []
        self._failures: list[ImportFailure] = []
        self._lock = threading.Lock()
        self._run: Callable[[Task], None] = lambda task: task()

    def attach(self, run: Callable[[Task], None]) -> None:
        """How parked work is started again (the registry's import pool)."""
        self._run = run

    def hold(self) -> None:
        """Imports wait until release()."""
        with self._lock:
            self._mode = "held"

    def stick(self) -> None:
        """Imports never finish (until release() or clear())."""
        with self._lock:
            self._mode = "stuck"

    def fail(
        self, code: str = "UpstreamUnavailable", reason: str | None = None, *, repository: str | None = None
    ) -> None:
        """Imports of `repository` (every repository: None) fail with ECR's failure code `code`."""
        text = reason or f"The layer could not be imported from the upstream registry ({code})."
        with self._lock:
            self._failures.append(ImportFailure(code, text, repository))

    def on_pull_only(self) -> None:
        """GetDownloadUrlForLayer answers a URL but imports nothing; a blob pulled through the registry endpoint does.

        AWS does not say that the control-plane call alone makes ECR import a layer (botocore says ECR's proxy calls it
        "once per image layer that is not already cached"); this is the other reading, for code that must work under
        both.
        """
        with self._lock:
            self._mode = "pull-only"

    def release(self) -> None:
        """Imports go at once again, and every parked one starts now."""
        with self._lock:
            self._mode = "fast"
            parked, self._parked = self._parked, []
        for task in parked:
            self._run(task)

    def clear(self) -> None:
        """Back to the default: no failures, imports at once, parked work started."""
        with self._lock:
            self._failures.clear()
        self.release()

    def starts(self, *, pulled: bool) -> bool:
        """Whether a request for a layer starts its import (`pulled`: a blob GET through the registry endpoint)."""
        with self._lock:
            return pulled or self._mode != "pull-only"

    def admit(self, repository: str, task: Task) -> Literal["run", "parked"] | ImportFailure:
        """`run` when `task` may run now; `parked` when imports are held or stuck; the failure when they fail."""
        with self._lock:
            for failure in self._failures:
                if failure.repository in (None, repository):
                    return failure
            if self._mode in ("held", "stuck"):
                self._parked.append(task)
                return "parked"
        return "run"


class Events:
    """The events ECR sent to EventBridge, oldest first (EventBridge delivers them; the Stack routes them)."""

    def __init__(self, account: str, region: str, clock: Clock) -> None:
        self.account = account
        self.region = region
        self.clock = clock
        self._sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def pull_through_action(
        self,
        *,
        prefix: str,
        repository: str,
        upstream_url: str,
        tag: str | None,
        digest: str | None,
        failure: tuple[str, str] | None = None,
    ) -> None:
        """One "ECR Pull Through Cache Action" event, shaped as the sample on the ECR guide's EventBridge page.

        The sample shows a SUCCESS; FAILED events add `failure-code` and `failure-reason` (the field names EventBridge's
        schema registry lists for aws.ecr). AWS does not list the codes; the sandbox sends the ImageFailureCode values
        of botocore's model. `rule-version` is "1" as in the sample (AWS does not say what it counts).
        """
        detail: dict[str, Any] = {
            "rule-version": "1",
            "sync-status": "FAILED" if failure else "SUCCESS",
            "ecr-repository-prefix": prefix,
            "repository-name": repository,
            "upstream-registry-url": upstream_url,
        }
        if tag:
            detail["image-tag"] = tag
        if digest:
            detail["image-digest"] = digest
        if failure:
            detail["failure-code"], detail["failure-reason"] = failure
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": PTC_ACTION,
            "source": "aws.ecr",
            "account": self.account,
            "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:ecr:{self.region}:{self.account}:repository/{repository}"],
            "detail": detail,
        }
        with self._lock:
            self._sent.append(event)

    def take(self) -> list[dict[str, Any]]:
        """The events sent since the last take (as EventBridge would deliver them: each once)."""
        with self._lock:
            sent, self._sent = self._sent, []
        return sent

    def peek(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._sent)
