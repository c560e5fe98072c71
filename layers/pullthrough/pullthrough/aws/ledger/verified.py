"""The images verified complete in ECR, remembered for the next run: so a run need not read their manifests and blobs
again while ECR's tag still points at the digest verified (each expires after VERIFIED_FOR).

Separate from the runs: it outlives them. One item per repository (sk PART#00) holds all its tags' facts, one
attribute each, so a run recalls a repository with one BatchGetItem key (of 100 a call): 0.01 calls per image at ten
tags a repository, against 0.1 with an item per tag. A repository whose tags outgrow one item (DynamoDB's 400 KB)
is split into numbered parts, PART#01 and on, which part 0 counts (`parts`); they are read in a second batch.
Items of the earlier layout (sk TAG#<tag>, one per tag) are not read: their tags are verified in full once more,
remembered in this layout, and the old items expire by their TTL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pullthrough.aws.errors import aws_call
from pullthrough.aws.ledger.items import number, part_key, verified_in, verified_parts
from pullthrough.aws.ledger.records import VERIFIED_FOR, VERIFIED_PREFIX, Verified
from pullthrough.aws.ledger.table import READ_BATCH, WRITE_ATTEMPTS, Table


@dataclass(frozen=True)
class Memory:
    """The verifications in `table`."""

    table: Table

    def remember(self, verified: Sequence[Verified]) -> None:
        """Remember images verified complete in ECR: each repository's item(s) written whole (BatchWriteItem, 25 at a
        time), so `verified` holds every tag of a repository worth keeping (what the run recalled and what it
        verified), not only the new ones."""
        by_repository: dict[str, list[Verified]] = {}
        for v in verified:
            by_repository.setdefault(v.repository, []).append(v)
        items = [item for repository, tags in by_repository.items() for item in verified_parts(repository, tags)]
        self.table.batch_put(items, f"{self.table.name} {VERIFIED_PREFIX}*")

    def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
        """The unexpired verifications of these (repository, tag) keys: part 0 of each repository (BatchGetItem, 100
        at a time), then the further parts of a repository that has them."""
        now, wanted = self.table.clock(), set(keys)
        repositories = list(dict.fromkeys(repository for repository, _ in keys))
        items = self._read([(repository, 0) for repository in repositories])
        more = [(item_repository(item), part) for item in items for part in range(1, number(item, "parts"))]
        items += self._read(more)
        found: dict[tuple[str, str], Verified] = {}
        for item in items:
            for verified in verified_in(item):
                known = found.get(verified.key)
                fresh = verified.at + VERIFIED_FOR > now
                if verified.key in wanted and fresh and (known is None or known.at < verified.at):
                    found[verified.key] = verified
        return found

    def _read(self, parts: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for begin in range(0, len(parts), READ_BATCH):
            items += self._batch(parts[begin : begin + READ_BATCH])
            # Keys still unprocessed are simply not remembered: their images are verified in full.
        return items

    def _batch(self, parts: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        name = self.table.name
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {name: {"Keys": [part_key(repository, part) for repository, part in parts]}}
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                self.table.sleep(0.05 * 2**attempt)
            with aws_call("dynamodb:BatchGetItem", f"{name} {VERIFIED_PREFIX}*"):
                response = self.table.ddb().batch_get_item(RequestItems=request)
            items += (response.get("Responses") or {}).get(name) or []
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
        return items


def item_repository(item: dict[str, Any]) -> str:
    return str(item["pk"]["S"]).removeprefix(VERIFIED_PREFIX)
