"""The images verified complete in ECR, remembered for the next run: so a run need not read their manifests and blobs
again while ECR's tag still points at the digest verified (each expires after VERIFIED_FOR).

Separate from the runs: it outlives them, keyed by repository and tag, not by run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pullthrough.aws.errors import aws_call
from pullthrough.aws.ledger.items import s, verified_item, verified_of
from pullthrough.aws.ledger.records import TAG_PREFIX, VERIFIED_FOR, VERIFIED_PREFIX, Verified
from pullthrough.aws.ledger.table import READ_BATCH, WRITE_ATTEMPTS, Table


@dataclass(frozen=True)
class Memory:
    """The verifications in `table`."""

    table: Table

    def remember(self, verified: Sequence[Verified]) -> None:
        """Remember images verified complete in ECR (BatchWriteItem, 25 at a time)."""
        self.table.batch_put([verified_item(v) for v in verified], f"{self.table.name} {VERIFIED_PREFIX}*")

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        """The unexpired verifications of these (repository, tag) keys (BatchGetItem, 100 at a time)."""
        now, wanted = self.table.clock(), list(dict.fromkeys(keys))
        found: dict[tuple[str, str], Verified] = {}
        for begin in range(0, len(wanted), READ_BATCH):
            found.update(self._batch(wanted[begin : begin + READ_BATCH], now))
            # Keys still unprocessed are simply not remembered: their images are verified in full.
        return found

    def _batch(self, keys: Sequence[tuple[str, str]], now: datetime) -> dict[tuple[str, str], Verified]:
        name = self.table.name
        found: dict[tuple[str, str], Verified] = {}
        wanted = [{"pk": s(VERIFIED_PREFIX + repository), "sk": s(TAG_PREFIX + tag)} for repository, tag in keys]
        request: dict[str, Any] = {name: {"Keys": wanted}}
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                self.table.sleep(0.05 * 2**attempt)
            with aws_call("dynamodb:BatchGetItem", f"{name} {VERIFIED_PREFIX}*"):
                response = self.table.ddb().batch_get_item(RequestItems=request)
            for item in (response.get("Responses") or {}).get(name) or []:
                verified = verified_of(item)
                if verified is not None and verified.at + VERIFIED_FOR > now:
                    found[verified.key] = verified
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
        return found
