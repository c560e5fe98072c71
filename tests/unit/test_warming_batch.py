"""The jobs of one SQS batch warm at once (pullthrough/warm/worker.py): every outcome is recorded, and a run whose jobs
finish together in one invocation is still checked for completion, by the last of them to be recorded.

The worker's warm step is replaced by one that waits until every job of the batch has started, so the jobs truly
overlap; the ledger is a fake that counts what the worker asks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pullthrough.aws.ledger import JobRecord, Recorded
from pullthrough.env import Settings
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.worker import WarmJob, Worker


@dataclass
class Ledger:
    """Pending jobs; records outcomes; remembers, at each completion check, how many outcomes it had."""

    recorded: list[tuple[str, str]] = field(default_factory=list)
    checks: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def job(self, run_id: str, key: str) -> JobRecord:
        return JobRecord(key, key, "pending", None, None)

    def record(self, run_id: str, key: str, outcome: str, report_item: str, **_: int) -> Recorded:
        with self.lock:
            self.recorded.append((run_id, key))
        return Recorded.RECORDED


def message(run_id: str, index: int) -> SQSRecord:
    job = WarmJob(
        run_id=run_id,
        key=f"docker-hub/app{index}:1",
        subject=f"docker.io/app{index}:1",
        rule="docker-hub",
        upstream="docker-hub",
        repository=f"docker-hub/app{index}",
        upstream_repository=f"app{index}",
        tag="1",
        platforms=("linux/amd64",),
        action="warm",
    )
    body = job.model_dump_json()
    return SQSRecord({"messageId": f"{run_id}-{index}", "body": body, "attributes": {"ApproximateReceiveCount": "1"}})


def batch_worker(ledger: Ledger, jobs: int) -> Worker:
    """A worker whose warm step returns only once all `jobs` are warming, and whose run check is recorded."""
    worker = Worker(Settings(), ledger=ledger)  # type: ignore[arg-type]
    together = threading.Barrier(jobs, timeout=10)

    def warm(job: WarmJob) -> ReportItem:
        together.wait()
        return ReportItem(subject=job.subject, outcome=Outcome.WARMED, details=Details(rule=job.rule))

    def finish_run(run_id: str, key: str) -> None:
        ledger.checks.append((run_id, sum(1 for run, _ in ledger.recorded if run == run_id)))

    worker.warm = warm  # type: ignore[method-assign]
    worker.finish_run = finish_run  # type: ignore[method-assign]
    return worker


def process_at_once(worker: Worker, records: list[SQSRecord]) -> list[BaseException]:
    """Process the records in one thread each, as the batch processor does; the exceptions they raised."""
    errors: list[BaseException] = []

    def process(record: SQSRecord) -> None:
        try:
            worker.process(record)
        except Exception as exc:  # handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=process, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


@pytest.mark.parametrize("jobs", [2, 10])
def test_jobs_of_one_run_warmed_together_are_all_recorded_and_the_last_checks_the_run(jobs: int) -> None:
    # Given a batch of jobs of one run, all warming at the same time in one invocation
    ledger = Ledger()
    worker = batch_worker(ledger, jobs)
    # When they finish
    errors = process_at_once(worker, [message("warm-1", i) for i in range(jobs)])
    # Then every outcome is recorded, and the run is checked once, after the last of them
    assert errors == []
    assert len(ledger.recorded) == jobs
    assert ledger.checks == [("warm-1", jobs)]


def test_each_run_in_a_batch_gets_its_own_completion_check() -> None:
    # Given a batch holding three jobs of one run and one of another
    ledger = Ledger()
    worker = batch_worker(ledger, 4)
    records = [message("warm-1", i) for i in range(3)] + [message("warm-2", 9)]
    # When they all finish together
    errors = process_at_once(worker, records)
    # Then each run is checked once, once all its jobs of this batch are recorded
    assert errors == []
    assert sorted(ledger.checks) == [("warm-1", 3), ("warm-2", 1)]


def test_a_job_that_breaks_leaves_the_check_to_its_redelivery() -> None:
    # Given two jobs of one run warming together, one of which breaks before it is recorded
    ledger = Ledger()
    worker = batch_worker(ledger, 2)
    warm = worker.warm

    def breaks(job: WarmJob) -> ReportItem:
        item = warm(job)
        if job.key == "docker-hub/app1:1":
            raise RuntimeError("boom")
        return item

    worker.warm = breaks  # type: ignore[method-assign]
    # When both run at once
    errors = process_at_once(worker, [message("warm-1", 0), message("warm-1", 1)])
    # Then the broken one goes back to the queue (it raised), the other is recorded, and no check saw two outcomes
    assert [str(e) for e in errors] == ["boom"]
    assert ledger.recorded == [("warm-1", "docker-hub/app0:1")]
    assert ledger.checks in ([], [("warm-1", 1)])
    # And when SQS delivers it again and it is recorded, the run is checked with both outcomes
    worker.warm = lambda job: ReportItem(subject=job.subject, outcome=Outcome.WARMED)  # type: ignore[method-assign]
    assert process_at_once(worker, [message("warm-1", 1)]) == []
    assert ledger.checks[-1] == ("warm-1", 2)
