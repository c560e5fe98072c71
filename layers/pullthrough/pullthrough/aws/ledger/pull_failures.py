"""The failed syncs ECR reported (its pull-through cache action events), kept a week: so a worker whose import stalls
can say what ECR said about the repository meanwhile.

Separate from the runs: report_pull_failures writes them, keyed by repository, whatever run is open.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pullthrough.aws.ledger.items import epoch, n, s, text
from pullthrough.aws.ledger.records import PULL_FAILURE_PREFIX, PULL_FAILURES_KEPT
from pullthrough.aws.ledger.table import Table

if TYPE_CHECKING:
    from pullthrough.pull_failures import PullFailure


@dataclass(frozen=True)
class PullFailures:
    """The reported pull failures in `table`."""

    table: Table

    def record_pull_failures(self, failures: Sequence[PullFailure]) -> None:
        """Record failed syncs ECR reported (BatchWriteItem); each expires after PULL_FAILURES_KEPT."""
        items = []
        for index, failure in enumerate(failures):
            facts = {"code": failure.code, "reason": failure.reason, "tag": failure.tag, "digest": failure.digest}
            items.append(
                {
                    "pk": s(PULL_FAILURE_PREFIX + failure.repository),
                    "sk": s(f"{failure.at.astimezone(UTC).isoformat()}#{index:04d}#{failure.code}"),
                    "failure": s(json.dumps(facts, separators=(",", ":"))),
                    "expires_at": n(epoch(failure.at + PULL_FAILURES_KEPT)),
                }
            )
        self.table.batch_put(items, f"{self.table.name} {PULL_FAILURE_PREFIX}*")

    def pull_failures(self, repository: str, since: datetime) -> list[tuple[str, str]]:
        """(code, reason) of the failed syncs ECR reported for `repository` since `since`, oldest first."""
        found = []
        condition = "pk = :pk AND sk >= :since"
        values = {":pk": s(PULL_FAILURE_PREFIX + repository), ":since": s(since.astimezone(UTC).isoformat())}
        for item in self.table.query(condition, values, f"{self.table.name} {PULL_FAILURE_PREFIX}{repository}"):
            try:
                facts = json.loads(text(item, "failure") or "")
                found.append((str(facts["code"]), str(facts["reason"])))
            except (ValueError, KeyError, TypeError):
                continue  # an item this code cannot read says nothing it can use
        return found
