"""The ledger's records as DynamoDB items, both ways: the attribute shapes of META, JOB and VERIFIED items.

Separate from the adapters so that each of them writes and reads one shape through one function, and a change to an
item's attributes is made in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pullthrough.aws.ledger.records import (
    DONE,
    ITEM_BYTES,
    JOB_PREFIX,
    META,
    PART_BYTES,
    PART_PREFIX,
    PENDING,
    RETENTION,
    RUN_PREFIX,
    SHARD_PREFIX,
    SUCCESS_MODES,
    TAG_PREFIX,
    VERIFIED_FOR,
    VERIFIED_PREFIX,
    JobEntry,
    JobRecord,
    RunFacts,
    RunNotifications,
    RunState,
    RunTarget,
    ShardRecord,
    Verified,
)
from pullthrough.errors import AwsAlreadyExists


def s(value: str) -> dict[str, Any]:
    """A string attribute."""
    return {"S": value}


def n(value: int) -> dict[str, Any]:
    """A number attribute."""
    return {"N": str(value)}


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def counter(outcome: str) -> str:
    """The META attribute counting an outcome."""
    return f"n_{outcome}"


def job_item(pk: str, job: JobEntry, expires: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": s(pk),
        "sk": s(JOB_PREFIX + job.key),
        "subject": s(job.subject),
        "status": s(job.status),
        "expires_at": n(expires),
    }
    if job.outcome:
        item["outcome"] = s(job.outcome)
    if job.report_item:
        item["report_item"] = s(job.report_item)
    return item


def meta_item(
    run_id: str,
    facts: RunFacts,
    deadline: datetime,
    jobs: Sequence[JobEntry],
    planned: int | None = None,
    shards: int = 0,
) -> dict[str, Any]:
    """A run's META item, open, its counters counting the jobs already done; a sharded run plans `planned` images
    (more than it has items for yet) in `shards` plan shards."""
    counts: dict[str, int] = {}
    for job in jobs:
        if job.status == DONE and job.outcome:
            counts[job.outcome] = counts.get(job.outcome, 0) + 1
    started = facts["started"]
    meta: dict[str, Any] = {
        "pk": s(RUN_PREFIX + run_id),
        "sk": s(META),
        "run_id": s(run_id),
        "planned": n(len(jobs) if planned is None else planned),
        "done": n(sum(counts.values())),
        "bytes_moved": n(sum(job.bytes_moved for job in jobs if job.status == DONE)),
        "pulls_spent": n(sum(job.pulls_spent for job in jobs if job.status == DONE)),
        "status": s("open"),
        "trigger": s(facts["trigger"]),
        "stack": s(facts["stack"]),
        "started": s(started.isoformat()),
        "deadline": n(epoch(deadline)),
        "expires_at": n(epoch(started + RETENTION)),
    }
    meta.update({counter(outcome): n(count) for outcome, count in counts.items()})
    if shards:
        meta.update({"shards": n(shards), "shards_done": n(0)})
    notes = facts.get("notes") or ()
    if notes:
        meta["notes"] = {"L": [s(note) for note in notes]}
    notifications = facts.get("notifications")
    if notifications is not None:
        meta["success"] = s(notifications.success)
        if notifications.subject_prefix:
            meta["subject_prefix"] = s(notifications.subject_prefix)
    target = facts.get("target")
    if target is not None:
        meta.update({"target_account": s(target.account), "target_region": s(target.region)})
        if target.member:
            meta["member"] = s(target.member)
    return meta


def shard_item(pk: str, shard: ShardRecord, expires: int) -> dict[str, Any]:
    """A plan shard's item: the images it decides, as [key, subject] pairs in one JSON attribute."""
    return {
        "pk": s(pk),
        "sk": s(f"{SHARD_PREFIX}{shard.index:05d}"),
        "status": s(shard.status),
        "images": s(json.dumps([list(image) for image in shard.images], separators=(",", ":"))),
        "expires_at": n(expires),
    }


def shard_record(item: dict[str, Any]) -> ShardRecord:
    images = json.loads(text(item, "images") or "[]")
    return ShardRecord(
        index=int((text(item, "sk") or "0").removeprefix(SHARD_PREFIX)),
        images=tuple((str(key), str(subject)) for key, subject in images),
        status=text(item, "status") or PENDING,
    )


def verified_facts(verified: Verified) -> str:
    """A tag's facts as one JSON string: a run reads hundreds of tags at once, and each attribute costs."""
    facts = {
        "digest": verified.digest,
        "wanted": verified.wanted,
        "platforms": verified.platforms,
        "absent": verified.absent,
        "size": verified.size,
        "at": verified.at.isoformat(),
        "children": verified.children,
    }
    if verified.looked is not None:
        facts["looked"] = verified.looked.isoformat()
    return json.dumps(facts, separators=(",", ":"))


def part_key(repository: str, part: int) -> dict[str, Any]:
    return {"pk": s(VERIFIED_PREFIX + repository), "sk": s(f"{PART_PREFIX}{part:02d}")}


def tag_bytes(tag: str, facts: str) -> int:
    """What one tag adds to an item's size: its attribute's name and value (UTF-8)."""
    return len((TAG_PREFIX + tag).encode()) + len(facts.encode())


def verified_parts(repository: str, verified: Sequence[Verified]) -> list[dict[str, Any]]:
    """The repository's items: its tags (the latest verification of each) in parts of at most PART_BYTES; part 0
    says how many parts there are and counts its bytes (warm_images adds to it while they stay under ITEM_BYTES)."""
    latest: dict[str, Verified] = {}
    for v in sorted(verified, key=lambda v: v.at):
        latest[v.tag] = v
    parts: list[dict[str, Any]] = []
    size, expires = PART_BYTES, 0
    for tag in sorted(latest):
        facts = verified_facts(latest[tag])
        grows = tag_bytes(tag, facts)
        if size + grows > PART_BYTES:
            parts.append(part_key(repository, len(parts)))
            size = 0
        parts[-1][TAG_PREFIX + tag] = s(facts)
        size += grows
        parts[-1]["bytes"] = n(size)
        expires = max(expires, epoch(latest[tag].at + VERIFIED_FOR))
    for item in parts:
        item["expires_at"] = n(expires)
    if parts:
        parts[0]["parts"] = n(len(parts))
    return parts


def verified_update(verified: Verified) -> dict[str, Any]:
    """warm_images' write of one tag into its repository's part 0 (an Update of a transaction): set while part 0's
    count of bytes leaves room; a full part 0 fails the condition, and the tag is verified again by the next run."""
    facts = verified_facts(verified)
    grows = tag_bytes(verified.tag, facts)
    return {
        "Key": part_key(verified.repository, 0),
        "UpdateExpression": "SET #tag = :facts, expires_at = :expires ADD #bytes :grows",
        "ConditionExpression": "attribute_not_exists(#bytes) OR #bytes <= :room",
        "ExpressionAttributeNames": {"#tag": TAG_PREFIX + verified.tag, "#bytes": "bytes"},
        "ExpressionAttributeValues": {
            ":facts": s(facts),
            ":expires": n(epoch(verified.at + VERIFIED_FOR)),
            ":grows": n(grows),
            ":room": n(ITEM_BYTES - grows),
        },
    }


def verified_in(item: dict[str, Any]) -> list[Verified]:
    """The tags of one part item that this code can read (one it cannot is verified in full again)."""
    repository = (text(item, "pk") or "").removeprefix(VERIFIED_PREFIX)
    found = []
    for name, value in item.items():
        if name.startswith(TAG_PREFIX) and isinstance(value, dict) and "S" in value:
            verified = verified_of(repository, name.removeprefix(TAG_PREFIX), str(value["S"]))
            if verified is not None:
                found.append(verified)
    return found


def verified_of(repository: str, tag: str, facts_json: str) -> Verified | None:
    """One tag's verification; None for facts this code cannot read."""
    try:
        facts = json.loads(facts_json)
        return Verified(
            repository=repository,
            tag=tag,
            digest=str(facts["digest"]),
            wanted=tuple(str(p) for p in facts["wanted"]),
            platforms=tuple(str(p) for p in facts["platforms"]),
            absent=tuple(str(p) for p in facts["absent"]),
            size=int(facts["size"]),
            at=datetime.fromisoformat(facts["at"]),
            children=int(facts.get("children", 0)),
            looked=datetime.fromisoformat(facts["looked"]) if facts.get("looked") else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def number(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else 0


def text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else None


def moment(item: dict[str, Any], name: str) -> datetime | None:
    found = text(item, name)
    return datetime.fromisoformat(found) if found else None


def run_state(item: dict[str, Any]) -> RunState:
    counts = {name[2:]: int(value["N"]) for name, value in item.items() if name.startswith("n_") and "N" in value}
    started = moment(item, "started") or datetime.fromtimestamp(0, UTC)
    return RunState(
        run_id=text(item, "run_id") or "",
        planned=number(item, "planned"),
        done=number(item, "done"),
        counts=counts,
        status=text(item, "status") or "open",
        trigger=text(item, "trigger") or "",
        stack=text(item, "stack") or "",
        started=started,
        deadline=datetime.fromtimestamp(number(item, "deadline"), UTC),
        bytes_moved=number(item, "bytes_moved"),
        pulls_spent=number(item, "pulls_spent"),
        notes=tuple(str(note["S"]) for note in (item.get("notes") or {}).get("L", []) if "S" in note),
        notifications=notifications_of(item),
        target=target_of(item),
        shards=number(item, "shards"),
        shards_done=number(item, "shards_done"),
        closed_by=text(item, "closed_by"),
        closed_at=moment(item, "closed_at"),
        reported_at=moment(item, "reported_at"),
    )


def target_of(item: dict[str, Any]) -> RunTarget | None:
    """The member account and region the run warms, as its META names them; None for the function's own."""
    account, region = text(item, "target_account"), text(item, "target_region")
    if not account or not region:
        return None
    return RunTarget(account, region, text(item, "member") or "")


def notifications_of(item: dict[str, Any]) -> RunNotifications | None:
    """The run's notifications as its META carries them; None for a META without them (or one this code cannot read)."""
    success = text(item, "success")
    mode = next((mode for mode in SUCCESS_MODES if mode == success), None)  # the text, as the Literal it is
    return RunNotifications(mode, text(item, "subject_prefix")) if mode is not None else None


def job_record(item: dict[str, Any]) -> JobRecord:
    return JobRecord(
        key=(text(item, "sk") or "").removeprefix(JOB_PREFIX),
        subject=text(item, "subject") or "",
        status=text(item, "status") or PENDING,
        outcome=text(item, "outcome"),
        report_item=text(item, "report_item"),
    )


def run_exists(operation: str, resource: str) -> AwsAlreadyExists:
    return AwsAlreadyExists(operation, resource, "RunExists", "run ids are never reused")


def code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code") or "")


def cancellation_reasons(error: ClientError) -> list[str] | None:
    """The per-item codes of a cancelled transaction ("None" where the item was fine), else None."""
    if code(error) != "TransactionCanceledException":
        return None
    raw: Any = error.response
    reasons = raw.get("CancellationReasons")
    if not isinstance(reasons, list):
        return None
    return [str(reason.get("Code") or "None") for reason in reasons]
