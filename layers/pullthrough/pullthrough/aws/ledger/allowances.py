"""The pull allowances open runs share (warm/budget.py): read them with only the live runs' draws, and store one over
the version it was read at, so two planners drawing at once cannot both spend the same pulls.

Separate from the runs: an allowance is keyed by the upstream's allowance, and outlives any one run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pullthrough.aws.errors import translate
from pullthrough.aws.ledger.items import code, epoch, n, number, s, text
from pullthrough.aws.ledger.records import BUDGET_PREFIX, RETENTION, SHARED, RunState
from pullthrough.aws.ledger.table import Table
from pullthrough.warm.budget import Draw, Shared, run_of


@dataclass(frozen=True)
class Allowances:
    """The shared allowances in `table`; `open_run_ids` and `run` read the runs (runs.py) their draws belong to."""

    table: Table
    open_run_ids: Callable[[], set[str]]
    run: Callable[[str], RunState | None]

    def draw(self, allowance: Shared) -> bool:
        """Store a shared allowance over the version it was read at; False when another planner wrote it since (read
        it again, fit again, draw again)."""
        pk = BUDGET_PREFIX + allowance.key
        draws = [{"run": d.run_id, "pulls": d.pulls, "at": d.at.astimezone(UTC).isoformat()} for d in allowance.draws]
        item = {
            "pk": s(pk),
            "sk": s(SHARED),
            "base": n(allowance.base),
            "draws": s(json.dumps(draws, separators=(",", ":"))),
            "version": n(allowance.version + 1),
            "expires_at": n(epoch(self.table.clock() + RETENTION)),
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "version = :read", "ExpressionAttributeValues": {":read": n(allowance.version)}}
            if allowance.version
            else {"ConditionExpression": "attribute_not_exists(version)"}
        )
        try:
            self.table.ddb().put_item(TableName=self.table.name, Item=item, **condition)
        except ClientError as error:
            if code(error) == "ConditionalCheckFailedException":
                return False
            raise translate(error, "dynamodb:PutItem", self.table.where(pk)) from error
        return True

    def shared(self, keys: Sequence[str]) -> dict[str, Shared]:
        """The stored allowances of these keys, with only the draws of runs still open (budget.Shared.live)."""
        if not keys:
            return {}
        open_runs, now = self.open_run_ids(), self.table.clock()
        found: dict[str, Shared] = {}
        for key in keys:
            item = self.table.get(BUDGET_PREFIX + key, SHARED)
            if not item:
                continue
            draws = _draws(item)
            # A draw of a run that is not open but is in the ledger is a finished run's.
            runs = {run_of(d.run_id) for d in draws if run_of(d.run_id) not in open_runs}
            finished = {run for run in runs if self.run(run) is not None}
            stored = Shared(key, number(item, "base"), draws, number(item, "version"))
            found[key] = stored.live(open_runs, finished, now)
        return found


def _draws(item: dict[str, Any]) -> tuple[Draw, ...]:
    try:
        return tuple(
            Draw(str(d["run"]), int(d["pulls"]), datetime.fromisoformat(str(d["at"])))
            for d in json.loads(text(item, "draws") or "[]")
        )
    except (ValueError, KeyError, TypeError):
        return ()  # an item this code cannot read holds no draw it can honour; its version still guards it
