"""The run ledger (pullthrough/aws/ledger/) on moto's DynamoDB, with the table as template.yaml declares it.

What it promises: a run is written whole; a job's outcome counts once however often it is delivered; a job that
arrives after its run closed counts not at all; however many jobs finish at once, exactly one closes the run; the
planner finds every run not yet reported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from pullthrough.aws.ledger import DONE, VERIFIED_FOR, JobEntry, Ledger, Recorded, Verified
from pullthrough.aws.ledger.items import verified_facts
from pullthrough.aws.ledger.records import ITEM_BYTES, PART_BYTES
from pullthrough.errors import AwsAlreadyExists, AwsError
from pullthrough.registry.headers import RateLimit
from pullthrough.warm.budget import Budget
from sandbox.aws.moto_threads import serialised
from sandbox.template import load_template
from tests.fake_aws import fake_aws

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
REGION = "us-east-1"


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    """An empty ledger table with template.yaml's keys and TTL attribute."""
    table = load_template()["Resources"]["LedgerTable"]["Properties"]
    with fake_aws(REGION):
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="ledger",
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        ddb.update_time_to_live(TableName="ledger", TimeToLiveSpecification=table["TimeToLiveSpecification"])
        yield Ledger("ledger", clock=lambda: T0 + timedelta(minutes=5))


def open_run(ledger: Ledger, run_id: str = "warm-1", pending: int = 3, decided: int = 1) -> None:
    jobs = [
        JobEntry(
            key=f"docker-hub/cached{i}:1",
            subject=f"docker.io/cached{i}:1",
            status=DONE,
            outcome="already_cached",
            report_item='{"subject":"x","outcome":"already_cached"}',
        )
        for i in range(decided)
    ]
    jobs += [JobEntry(key=f"docker-hub/app{i}:1", subject=f"docker.io/app{i}:1") for i in range(pending)]
    ledger.open_run(
        run_id,
        trigger="schedule",
        stack="test",
        started=T0,
        deadline=T0 + timedelta(hours=3),
        jobs=jobs,
        notes=["one note"],
    )


def record(ledger: Ledger, key: str, run_id: str = "warm-1", outcome: str = "warmed") -> Recorded:
    return ledger.record(
        run_id, key, outcome, f'{{"subject":"{key}","outcome":"{outcome}"}}', bytes_moved=10, pulls_spent=1
    )


def test_an_opened_run_holds_every_job_with_its_counters_ttl_and_open_marker(ledger: Ledger) -> None:
    # When a run of one decided and three pending jobs is opened
    open_run(ledger)
    # Then META counts the decided job, the jobs are listed, and the run is on the open list
    state = ledger.run("warm-1")
    assert state is not None
    assert (state.planned, state.done, state.counts, state.status) == (4, 1, {"already_cached": 1}, "open")
    assert (state.trigger, state.stack, state.started, state.notes) == ("schedule", "test", T0, ("one note",))
    assert state.deadline == T0 + timedelta(hours=3)
    assert [job.status for job in ledger.jobs("warm-1")] == ["pending", "pending", "pending", "done"]
    assert [run.run_id for run in ledger.open_runs()] == ["warm-1"]
    # And every item expires by TTL
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName="ledger")["Items"]
    assert len(items) == 6
    assert all(int(item["expires_at"]["N"]) == int((T0 + timedelta(days=30)).timestamp()) for item in items)


def test_a_run_id_cannot_be_opened_twice(ledger: Ledger) -> None:
    open_run(ledger)
    with pytest.raises(AwsAlreadyExists) as raised:
        open_run(ledger)
    # the ledger's own refusal (run ids are never reused), not whatever DynamoDB's cancellation translates to
    assert raised.value.code == "RunExists"


def test_a_job_outcome_counts_once_however_often_it_is_delivered(ledger: Ledger) -> None:
    # Given an open run
    open_run(ledger)
    # When one job's outcome is recorded twice
    first = record(ledger, "docker-hub/app0:1")
    second = record(ledger, "docker-hub/app0:1", outcome="failed")
    # Then the second is a duplicate, and the counters moved once
    assert (first, second) == (Recorded.RECORDED, Recorded.DUPLICATE)
    state = ledger.run("warm-1")
    assert state is not None
    assert (state.done, state.counts, state.bytes_moved, state.pulls_spent) == (
        2,
        {"already_cached": 1, "warmed": 1},
        10,
        1,
    )
    job = ledger.job("warm-1", "docker-hub/app0:1")
    assert job is not None
    assert (job.status, job.outcome) == ("done", "warmed")


def test_a_job_unknown_to_the_run_is_not_counted(ledger: Ledger) -> None:
    open_run(ledger)
    assert record(ledger, "docker-hub/stranger:1") is Recorded.DUPLICATE
    state = ledger.run("warm-1")
    assert state is not None
    assert state.done == 1


def test_a_job_arriving_after_its_run_closed_is_not_counted(ledger: Ledger) -> None:
    # Given a run closed before its jobs came back
    open_run(ledger)
    assert ledger.close("warm-1", by="planner")
    # When a job reports
    late = record(ledger, "docker-hub/app0:1")
    # Then nothing changes
    assert late is Recorded.CLOSED
    state = ledger.run("warm-1")
    assert state is not None
    assert (state.done, state.status, state.closed_by) == (1, "closed", "planner")
    job = ledger.job("warm-1", "docker-hub/app0:1")
    assert job is not None
    assert job.status == "pending"


def test_exactly_one_of_many_finishing_jobs_closes_the_run(ledger: Ledger) -> None:
    # Given a run of twelve pending jobs
    open_run(ledger, pending=12, decided=0)
    closers: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def finish(index: int) -> None:
        key = f"docker-hub/app{index}:1"
        start.wait()
        assert record(ledger, key) is Recorded.RECORDED
        state = ledger.run("warm-1")
        if state is not None and state.complete and ledger.close("warm-1", by=key):
            with lock:
                closers.append(key)

    # When all of them finish at once, each checking whether it completed the run (moto answering one request at a
    # time, as DynamoDB serialises the writes to one item: moto alone can let two conditional writes both succeed)
    with serialised():
        threads = [threading.Thread(target=finish, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    # Then every outcome counted, and exactly one job closed the run
    state = ledger.run("warm-1")
    assert state is not None
    assert (state.done, state.status) == (12, "closed")
    assert len(closers) == 1
    assert state.closed_by == closers[0]
    assert not ledger.close("warm-1", by="late")


def test_a_reported_run_leaves_the_open_list(ledger: Ledger) -> None:
    # Given two runs, one closed and reported
    open_run(ledger, "warm-1")
    open_run(ledger, "warm-2")
    ledger.close("warm-1", by="x")
    ledger.mark_reported("warm-1")
    # Then only the other one is still open, and the reported one says when it was reported
    assert [run.run_id for run in ledger.open_runs()] == ["warm-2"]
    state = ledger.run("warm-1")
    assert state is not None
    assert state.reported_at == T0 + timedelta(minutes=5)


def test_a_large_run_is_written_in_batches_and_read_back_whole(ledger: Ledger) -> None:
    open_run(ledger, pending=120, decided=3)
    jobs = ledger.jobs("warm-1")
    assert (len(jobs), sum(job.status == "done" for job in jobs)) == (123, 3)


def test_a_missing_table_is_an_aws_error_naming_it(ledger: Ledger) -> None:
    with pytest.raises(AwsError, match="no-such-table"):
        Ledger("no-such-table").run("warm-1")


def test_unwritten_job_items_are_retried_then_refused() -> None:
    # Given a DynamoDB that keeps returning the items unprocessed
    class Stubborn:
        calls = 0

        def get_item(self, **_: Any) -> dict[str, Any]:
            return {}

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            Stubborn.calls += 1
            return {"UnprocessedItems": RequestItems}

    slept: list[float] = []
    ledger = Ledger("ledger", client=Stubborn(), sleep=slept.append)  # type: ignore[arg-type]
    # When a run is opened, Then it fails after bounded retries with a growing pause, before any META is written
    with pytest.raises(AwsError, match="still unwritten"):
        open_run(ledger)
    assert Stubborn.calls == 6
    assert slept == sorted(slept)
    assert len(slept) == 5


def verified(
    tag: str, at: datetime = T0, digest: str = "sha256:" + "a" * 64, looked: datetime | None = None
) -> Verified:
    return Verified(
        "docker-hub/library/app",
        tag,
        digest,
        ("linux/amd64", "linux/arm64"),
        ("linux/amd64",),
        ("linux/arm64",),
        1234,
        at,
        looked=looked,
    )


def test_verified_images_are_remembered_and_recalled_in_batches(ledger: Ledger) -> None:
    # Given 150 verified tags remembered (more than one BatchGetItem's 100 keys)
    # (every other one with the time of Pullthrough's last look at the tag upstream)
    ledger.remember([verified(str(i), looked=T0 if i % 2 else None) for i in range(150)])
    # When they and an unknown tag are recalled
    found = ledger.remembered([("docker-hub/library/app", str(i)) for i in range(150)] + [("other", "1")])
    # Then each comes back whole, and the unknown one is simply absent
    assert len(found) == 150
    assert found[("docker-hub/library/app", "7")] == verified("7", looked=T0)
    assert found[("docker-hub/library/app", "8")] == verified("8")


def test_a_repositorys_tags_are_one_item_recalled_with_one_key(ledger: Ledger) -> None:
    # Given ten tags of each of 150 repositories remembered
    tags = [replace(verified(str(t)), repository=f"docker-hub/app{r}") for r in range(150) for t in range(10)]
    ledger.remember(tags)
    # Then the memory is one item per repository
    ddb = boto3.client("dynamodb", region_name=REGION)
    assert len(verified_items(ddb)) == 150
    # And recalling all 1,500 tags asks for 150 keys: two BatchGetItem calls (100 keys each at most)
    client = boto3.client("dynamodb", region_name=REGION)
    calls = count_calls(client)
    memory = Ledger("ledger", client=client, clock=lambda: T0 + timedelta(minutes=5))
    found = memory.remembered([(v.repository, v.tag) for v in tags])
    assert len(found) == 1_500
    assert calls == ["BatchGetItem", "BatchGetItem"]


def test_a_repository_whose_tags_outgrow_one_item_is_split_into_numbered_parts(ledger: Ledger) -> None:
    # Given more tags of one repository than one item's PART_BYTES holds (each tag about 300 bytes)
    many = [verified(f"1.{i}.0-a-long-suffix-for-a-long-tag-name") for i in range(2_000)]
    ledger.remember(many)
    # Then they are written as numbered parts, each within DynamoDB's 400 KB, part 0 counting them
    ddb = boto3.client("dynamodb", region_name=REGION)
    items = verified_items(ddb)
    assert len(items) > 1
    assert items[0]["parts"] == {"N": str(len(items))}
    assert all(len(json.dumps(item)) < PART_BYTES * 1.2 for item in items)
    # And every tag is recalled, from whichever part holds it
    assert len(ledger.remembered([v.key for v in many])) == 2_000


def test_a_job_adds_its_tag_to_the_repositorys_item_and_a_full_item_only_skips_the_memory(ledger: Ledger) -> None:
    # Given a repository whose item the planner wrote with two tags
    ledger.remember([verified("a"), verified("b")])
    open_run(ledger)
    # When a job records a third tag
    assert ledger.record("warm-1", "docker-hub/app0:1", "warmed", "{}", verified=verified("c")) == Recorded.RECORDED
    # Then the item holds all three
    found = ledger.remembered([("docker-hub/library/app", t) for t in "abc"])
    assert sorted(tag for _, tag in found) == ["a", "b", "c"]
    # And when the item's count of bytes says it is full, a job is still counted, its tag not remembered
    ddb = boto3.client("dynamodb", region_name=REGION)
    key = {"pk": {"S": "VERIFIED#docker-hub/library/app"}, "sk": {"S": "PART#00"}}
    ddb.update_item(
        TableName="ledger",
        Key=key,
        UpdateExpression="SET #b = :full",
        ExpressionAttributeNames={"#b": "bytes"},
        ExpressionAttributeValues={":full": {"N": str(ITEM_BYTES)}},
    )
    assert ledger.record("warm-1", "docker-hub/app1:1", "warmed", "{}", verified=verified("d")) == Recorded.RECORDED
    assert ledger.run("warm-1").done == 3  # type: ignore[union-attr]
    assert ("docker-hub/library/app", "d") not in ledger.remembered([("docker-hub/library/app", "d")])


def verified_items(ddb: Any) -> list[dict[str, Any]]:
    items = ddb.scan(TableName="ledger")["Items"]
    return sorted(
        (i for i in items if i["pk"]["S"].startswith("VERIFIED#")), key=lambda i: (i["pk"]["S"], i["sk"]["S"])
    )


def count_calls(ddb: Any) -> list[str]:
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


def test_an_expired_verification_is_not_recalled(ledger: Ledger) -> None:
    # Given a verification older than VERIFIED_FOR (DynamoDB's TTL deletes it late, if at all)
    ledger.remember([verified("old", at=T0 - VERIFIED_FOR), verified("new")])
    found = ledger.remembered([("docker-hub/library/app", "old"), ("docker-hub/library/app", "new")])
    assert list(found) == [("docker-hub/library/app", "new")]


def test_a_recorded_job_remembers_its_verification_and_a_duplicate_does_not(ledger: Ledger) -> None:
    open_run(ledger)
    first = ledger.record(
        "warm-1", "docker-hub/app0:1", "warmed", "{}", verified=verified("a", digest="sha256:" + "1" * 64)
    )
    again = ledger.record(
        "warm-1", "docker-hub/app0:1", "warmed", "{}", verified=verified("a", digest="sha256:" + "2" * 64)
    )
    assert (first, again) == (Recorded.RECORDED, Recorded.DUPLICATE)
    assert ledger.remembered([("docker-hub/library/app", "a")])[("docker-hub/library/app", "a")].digest.endswith("1")


def test_a_run_decided_whole_is_written_closed_and_reported_without_jobs(ledger: Ledger) -> None:
    jobs = [JobEntry(key="docker-hub/a:1", subject="a", status=DONE, outcome="already_cached", report_item="{}")]
    ledger.reported_run("warm-9", trigger="schedule", stack="test", started=T0, jobs=jobs, notes=["n"])
    state = ledger.run("warm-9")
    assert state is not None
    assert (state.planned, state.done, state.counts, state.status) == (1, 1, {"already_cached": 1}, "closed")
    assert (state.closed_by, state.reported_at, state.notes) == ("planner", T0 + timedelta(minutes=5), ("n",))
    assert ledger.jobs("warm-9") == []
    assert ledger.open_runs() == []
    with pytest.raises(AwsAlreadyExists):
        ledger.reported_run("warm-9", trigger="schedule", stack="test", started=T0, jobs=jobs)


def test_a_verification_holds_only_for_its_digest_and_its_wanted_platforms() -> None:
    # Given what an earlier run verified: the tag at digest a..., for linux/amd64 and linux/arm64
    known = verified("1.0")
    same, moved = known.digest, "sha256:" + "b" * 64
    # Then it vouches for that digest and those platforms (in any order), and for nothing else: a tag that moved
    # or a platform that was not verified is checked in full again
    assert known.matches(same, ["linux/arm64", "linux/amd64"])
    assert not known.matches(moved, ["linux/amd64", "linux/arm64"])
    assert not known.matches(same, ["linux/amd64"])


def test_a_verification_this_code_cannot_read_is_not_recalled(ledger: Ledger) -> None:
    # Given an item under VERIFIED# whose facts are not what this code writes (another version, a hand edit)
    ddb = boto3.client("dynamodb", region_name=REGION)
    item = {"pk": {"S": "VERIFIED#docker-hub/library/app"}, "sk": {"S": "PART#00"}, "TAG#odd": {"S": '{"digest": 1'}}
    ddb.put_item(TableName="ledger", Item=item)
    # Then it is not recalled: the image is verified in full instead
    assert ledger.remembered([("docker-hub/library/app", "odd")]) == {}


def test_an_item_of_the_earlier_layout_is_not_found(ledger: Ledger) -> None:
    # Given an item per tag, as the ledger kept them before one item per repository
    ddb = boto3.client("dynamodb", region_name=REGION)
    facts = verified_facts(verified("old"))
    item = {"pk": {"S": "VERIFIED#docker-hub/library/app"}, "sk": {"S": "TAG#old"}, "verified": {"S": facts}}
    ddb.put_item(TableName="ledger", Item=item)
    # Then it is simply not found: the next run verifies the image again and remembers it in the new layout
    assert ledger.remembered([("docker-hub/library/app", "old")]) == {}


# --- the pull allowances runs open at once share ---------------------------------------------------------------------


def test_two_planners_drawing_over_the_same_read_cannot_both_win(ledger: Ledger) -> None:
    # Given two planners that read the same (new) allowance
    first, second = Budget(0.5), Budget(0.5)
    for budget, run_id in ((first, "warm-a"), (second, "warm-b")):
        budget.observe("hub", RateLimit(100, 10, 3600, "u"))
        budget.share_with(run_id, ledger.shared(["hub"]))
        budget.take("hub", 5)
    # When both draw what they fitted
    (a,), (b,) = first.drawn(T0), second.drawn(T0)
    # Then the first wins, the second is told to read again, and what is stored is the first's draw alone
    assert (ledger.draw(a), ledger.draw(b)) == (True, False)
    open_run(ledger, "warm-a")
    (stored,) = ledger.shared(["hub"]).values()
    assert (stored.base, stored.version, [(d.run_id, d.pulls) for d in stored.draws]) == (10, 1, [("warm-a", 5)])
    # And read again, the second run finds nothing left of the allowance the first run holds
    second.share_with("warm-b", ledger.shared(["hub"]))
    assert second.allowance("hub") == 0


def test_a_finished_runs_draw_no_longer_holds_the_allowance(ledger: Ledger) -> None:
    # Given a run that drew and then was reported (its META closed, off the open list)
    budget = Budget(0.5)
    budget.observe("hub", RateLimit(100, 10, 3600, "u"))
    budget.share_with("warm-1", {})
    budget.take("hub", 5)
    (drawn,) = budget.drawn(T0)
    assert ledger.draw(drawn)
    open_run(ledger, "warm-1")
    assert [d.run_id for d in ledger.shared(["hub"])["hub"].draws] == ["warm-1"]
    ledger.close("warm-1", by="test")
    ledger.mark_reported("warm-1")
    # Then the allowance holds no draw: the next run starts a new one from what the upstream reports then
    assert ledger.shared(["hub"])["hub"].draws == ()
