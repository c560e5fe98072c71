"""The organisation's warm cycles at the hub (gather_reports): each member report recorded once, each cycle closed once.

    pk = CYCLE#<cycle>  sk = META                              status (open | closed), deadline, closed_by, reported_at
    pk = CYCLE#<cycle>  sk = REPORT#<account>#<region>#<run>   the member's report event (member, kind, report JSON)
    pk = OPENCYCLE      sk = CYCLE#<cycle>                     present until the cycle's report went out: the sweep

A report is written only if its item is absent and the cycle still open (one transaction), so a redelivered event
counts once and a report arriving after its cycle closed counts not at all. Only pullthrough/org/ holds this adapter
(tools/house.py); the warm runs' records (runs.py, jobs.py) are the warm package's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pullthrough.aws.errors import translate
from pullthrough.aws.ledger.items import cancellation_reasons, epoch, moment, n, number, s, text
from pullthrough.aws.ledger.records import META, RETENTION, Recorded
from pullthrough.aws.ledger.table import Table

CYCLE_PREFIX = "CYCLE#"
REPORT_PREFIX = "REPORT#"
OPEN_CYCLES = "OPENCYCLE"
OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True)
class MemberReport:
    """One member run's report event as the hub recorded it."""

    account: str
    region: str
    run_id: str
    member: str
    kind: str
    report: str  # the report's JSON as the event carried it
    trimmed: str | None = None


@dataclass(frozen=True)
class CycleState:
    """A cycle's META item."""

    cycle: str
    status: str
    deadline: datetime
    closed_by: str | None = None
    reported_at: datetime | None = None

    @property
    def closed(self) -> bool:
        return self.status == CLOSED


@dataclass(frozen=True)
class Cycles:
    """The organisation's cycles in `table`."""

    table: Table

    @classmethod
    def in_table(cls, name: str) -> Cycles:
        """The cycles in the ledger table `name` (LEDGER_TABLE)."""
        return cls(Table(name))

    def record(self, cycle: str, deadline: datetime, entry: MemberReport) -> Recorded:
        """Count a member's report in `cycle` once (opening the cycle, with its deadline, on its first report)."""
        self._open(cycle, deadline)
        pk = CYCLE_PREFIX + cycle
        item: dict[str, Any] = {
            "pk": s(pk),
            "sk": s(f"{REPORT_PREFIX}{entry.account}#{entry.region}#{entry.run_id}"),
            "account": s(entry.account),
            "region": s(entry.region),
            "run_id": s(entry.run_id),
            "member": s(entry.member),
            "kind": s(entry.kind),
            "report": s(entry.report),
            "recorded_at": s(self.table.clock().isoformat()),
            "expires_at": n(epoch(deadline + RETENTION)),
        }
        if entry.trimmed:
            item["trimmed"] = s(entry.trimmed)
        name = self.table.name
        try:
            self.table.ddb().transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
                    {
                        "ConditionCheck": {
                            "TableName": name,
                            "Key": {"pk": s(pk), "sk": s(META)},
                            "ConditionExpression": "#status = :open",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": {":open": s(OPEN)},
                        }
                    },
                ]
            )
        except ClientError as error:
            reasons = cancellation_reasons(error) or []
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return Recorded.DUPLICATE
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                return Recorded.CLOSED
            raise translate(error, "dynamodb:TransactWriteItems", self.table.where(pk)) from error
        return Recorded.RECORDED

    def reports(self, cycle: str) -> list[MemberReport]:
        """Every member report recorded in `cycle`, in key order (account, region, run)."""
        pk = CYCLE_PREFIX + cycle
        values = {":pk": s(pk), ":report": s(REPORT_PREFIX)}
        found = self.table.query("pk = :pk AND begins_with(sk, :report)", values, self.table.where(pk))
        return [
            MemberReport(
                account=text(item, "account") or "",
                region=text(item, "region") or "",
                run_id=text(item, "run_id") or "",
                member=text(item, "member") or "",
                kind=text(item, "kind") or "",
                report=text(item, "report") or "{}",
                trimmed=text(item, "trimmed"),
            )
            for item in found
        ]

    def state(self, cycle: str) -> CycleState | None:
        """The cycle's META (strongly consistent), or None before its first report."""
        item = self.table.get(CYCLE_PREFIX + cycle, META)
        return _state(item) if item else None

    def open_cycles(self) -> list[CycleState]:
        """Every cycle whose report has not gone out, oldest first."""
        markers = self.table.query("pk = :pk", {":pk": s(OPEN_CYCLES)}, self.table.where(OPEN_CYCLES))
        states = [self.state((text(marker, "sk") or "").removeprefix(CYCLE_PREFIX)) for marker in markers]
        return sorted((state for state in states if state is not None), key=lambda state: state.cycle)

    def close(self, cycle: str, by: str) -> bool:
        """Close an open cycle; True for exactly one caller, however many try at once."""
        pk = CYCLE_PREFIX + cycle
        try:
            self.table.ddb().update_item(
                TableName=self.table.name,
                Key={"pk": s(pk), "sk": s(META)},
                UpdateExpression="SET #status = :closed, closed_at = :now, closed_by = :by",
                ConditionExpression="#status = :open",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":closed": s(CLOSED),
                    ":open": s(OPEN),
                    ":now": s(self.table.clock().isoformat()),
                    ":by": s(by),
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise translate(error, "dynamodb:UpdateItem", self.table.where(pk)) from error
        return True

    def mark_reported(self, cycle: str) -> None:
        """Note that the cycle's report went out, and take the cycle off the open list."""
        self.table.mark_reported(CYCLE_PREFIX + cycle, OPEN_CYCLES)

    def _open(self, cycle: str, deadline: datetime) -> None:
        """Write the cycle's META and its open marker, unless the cycle exists already."""
        pk = CYCLE_PREFIX + cycle
        expires = n(epoch(deadline + RETENTION))
        meta = {"pk": s(pk), "sk": s(META), "status": s(OPEN), "deadline": n(epoch(deadline)), "expires_at": expires}
        marker = {"pk": s(OPEN_CYCLES), "sk": s(pk), "deadline": n(epoch(deadline)), "expires_at": expires}
        name = self.table.name
        try:
            self.table.ddb().transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": meta, "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": name, "Item": marker}},
                ]
            )
        except ClientError as error:
            if (cancellation_reasons(error) or [""])[0] != "ConditionalCheckFailed":
                raise translate(error, "dynamodb:TransactWriteItems", self.table.where(pk)) from error


def _state(item: dict[str, Any]) -> CycleState:
    return CycleState(
        cycle=(text(item, "pk") or "").removeprefix(CYCLE_PREFIX),
        status=text(item, "status") or OPEN,
        deadline=datetime.fromtimestamp(number(item, "deadline"), UTC),
        closed_by=text(item, "closed_by"),
        reported_at=moment(item, "reported_at"),
    )


__all__ = ["CLOSED", "OPEN", "CycleState", "Cycles", "MemberReport", "Recorded"]
