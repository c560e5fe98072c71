"""A worker closes its run, publishes its report once and hands a slow import back (pullthrough/warm/worker.py and
warm/run.py), with a fake ledger and a recording report: exactly one report per run, from the job that closed it,
and never again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pullthrough.aws.ledger import JobRecord, Recorded, RunFacts, RunNotifications, RunState
from pullthrough.aws.ledger.items import meta_item, run_state
from pullthrough.config import parse
from pullthrough.env import Settings
from pullthrough.errors import AwsError
from pullthrough.reporting import publish as publish_module
from pullthrough.reporting.items import ReportItem
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm import run as warm_run
from pullthrough.warm.importing import Progress, Waiting
from pullthrough.warm.upstream_clients import registry_client
from pullthrough.warm.worker import JobPostponed, WarmJob, Worker

T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)
KEY = "docker-hub/app:1"


def state(**fields: Any) -> RunState:
    base = RunState("warm-1", 2, 2, {"warmed": 2}, "open", "schedule", "test", T0, T0 + timedelta(hours=3))
    return replace(base, **fields)


@dataclass
class Ledger:
    """One run's META as the worker reads it; who closed it; the jobs' statuses."""

    meta: RunState
    close_wins: bool = True
    status: str = "pending"
    closes: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)

    def run(self, run_id: str) -> RunState:
        return self.meta

    def close(self, run_id: str, by: str) -> bool:
        self.closes.append(by)
        if self.close_wins:
            self.meta = replace(self.meta, status="closed", closed_by=by)
        return self.close_wins

    def job(self, run_id: str, key: str) -> JobRecord:
        return JobRecord(key, key, self.status, None, None)

    def record(self, run_id: str, key: str, *args: Any, **kwargs: Any) -> Recorded:
        self.recorded.append(key)
        return Recorded.RECORDED


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The runs whose report went out."""
    sent: list[str] = []
    monkeypatch.setattr(warm_run, "report_run", lambda ledger, run, config, settings: sent.append(run.run_id))
    return sent


def worker(ledger: Ledger) -> Worker:
    settings = Settings(queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/warm")
    return Worker(settings, ledger=ledger)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meta", "close_wins", "closes", "reports"),
    [
        (state(), True, [KEY], 1),  # complete and open: this job closes it and reports
        (state(), False, [KEY], 0),  # another job won the close: it reports, not this one
        (state(done=1), True, [], 0),  # not complete: no close is tried
        (state(status="closed", closed_by=KEY), True, [], 1),  # closed by this job, not yet reported: report now
        (state(status="closed", closed_by="other"), True, [], 0),  # another job's to report
        (state(status="closed", closed_by=KEY, reported_at=T0), True, [], 0),  # reported already
    ],
)
def test_a_run_is_closed_once_and_reported_by_the_job_that_closed_it(
    published: list[str], meta: RunState, close_wins: bool, closes: list[str], reports: int
) -> None:
    ledger = Ledger(meta, close_wins=close_wins)
    worker(ledger).finish_run("warm-1", KEY)
    assert (ledger.closes, len(published)) == (closes, reports)


def message(status_count: int = 1) -> SQSRecord:
    job = WarmJob(
        run_id="warm-1",
        key=KEY,
        subject="docker.io/library/app:1",
        rule="docker-hub",
        upstream="docker-hub",
        repository="docker-hub/library/app",
        upstream_repository="library/app",
        tag="1",
        platforms=("linux/amd64",),
        action="warm",
    )
    attributes = {"ApproximateReceiveCount": str(status_count)}
    return SQSRecord({"messageId": "m-1", "body": job.model_dump_json(), "attributes": attributes})


def test_a_redelivered_job_whose_report_did_not_go_out_publishes_it_without_warming_again(
    published: list[str],
) -> None:
    # Given a job already recorded, which closed its run but whose report failed to publish
    ledger = Ledger(state(status="closed", closed_by=KEY), status="done")
    the_worker = worker(ledger)
    the_worker.warm = lambda job: pytest.fail("a recorded job is not warmed again")  # type: ignore[method-assign]
    # When SQS delivers it again, Then the report goes out, once
    the_worker.process(message(2))
    assert published == ["warm-1"]
    assert ledger.recorded == []


def test_an_import_still_under_way_goes_back_to_the_queue_with_its_progress_and_delay(
    monkeypatch: pytest.MonkeyPatch, published: list[str]
) -> None:
    # Given a job whose import ECR has not finished within this look
    sent: list[tuple[str, str, int]] = []
    from pullthrough.aws import queue

    monkeypatch.setattr(queue, "send_later", lambda url, body, delay: sent.append((url, body, delay)))
    ledger = Ledger(state(done=0))
    the_worker = worker(ledger)
    progress = Progress(T0, "sha256:" + "1" * 64, looks=2, spent=1)
    the_worker.warm = lambda job: Waiting(30, ("sha256:" + "2" * 64,), progress)  # type: ignore[method-assign]
    # When it is processed
    the_worker.process(message())
    # Then it is sent back to the warm queue, due in 30 s, carrying where the import stands; nothing is recorded
    ((url, body, delay),) = sent
    assert (url.endswith("/warm"), delay) == (True, 30)
    assert WarmJob.model_validate_json(body).progress == progress
    assert (ledger.recorded, published) == ([], [])


def test_a_job_is_not_started_with_too_little_of_the_invocation_left() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1_000

    ledger = Ledger(state(done=0))
    the_worker = Worker(Settings(), context=Context(), ledger=ledger)  # type: ignore[arg-type]
    the_worker.warm = lambda job: ReportItem(subject=job.subject, outcome=Outcome.WARMED)  # type: ignore[method-assign]
    with pytest.raises(JobPostponed, match="back to the queue"):
        the_worker.process(message())
    assert ledger.recorded == []


def test_a_report_sns_refuses_is_not_marked_sent_and_the_closing_job_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a run this job completes, and a report topic that refuses the message
    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AwsError("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t", "Throttling", "Rate exceeded")

    monkeypatch.setattr(publish_module.sns, "publish", refuse)
    marked: list[str] = []
    ledger = Ledger(state())
    ledger.jobs = lambda run_id: []  # type: ignore[attr-defined]
    ledger.mark_reported = marked.append  # type: ignore[attr-defined]
    # When the job closes it, Then the error reaches SQS (the job is delivered again and the report retried: the
    # redelivery test above) and the run is not marked reported, so no report is lost
    settings = Settings(ACCOUNT_ID="123456789012", REPORT_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:t")  # type: ignore[call-arg]
    with pytest.raises(AwsError):
        Worker(settings, ledger=ledger).finish_run("warm-1", KEY)  # type: ignore[arg-type]
    assert (ledger.closes, marked) == ([KEY], [])


def test_the_closing_job_reports_with_the_notifications_its_runs_meta_carries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a run this job completes, planned with `success: off` and a subject prefix (its META says so)
    said = RunNotifications("off", "[ACME]")
    told: list[object] = []
    monkeypatch.setattr(warm_run, "report_run", lambda ledger, run, notifications, settings: told.append(notifications))
    # When the job closes it, Then the report goes out as the META says, with no config read (the worker has none)
    worker(Ledger(state(notifications=said))).finish_run("warm-1", KEY)
    assert told == [said]


def test_a_runs_meta_keeps_its_notifications_and_one_written_before_them_has_none() -> None:
    facts: RunFacts = {"trigger": "t", "stack": "s", "started": T0, "notifications": RunNotifications("full", "[X]")}
    assert run_state(meta_item("warm-1", facts, T0, [])).notifications == RunNotifications("full", "[X]")
    assert run_state(meta_item("warm-1", {"trigger": "t", "stack": "s", "started": T0}, T0, [])).notifications is None


def test_a_run_opened_by_the_planner_carries_the_configs_notifications() -> None:
    # Given the planner's WarmRun, with a config whose reports have a subject prefix
    opened: list[dict[str, Any]] = []

    class Opening:
        def open_run(self, run_id: str, **run: Any) -> None:
            opened.append(run)

    config = parse("version: 1\nrules: []\nnotifications: {success: full, subject_prefix: '[ACME]'}\n")
    # When it opens a run, Then the META is given the config's notifications
    warm_run.WarmRun(Opening(), Settings(), lambda: config).open(  # type: ignore[arg-type]
        "warm-1", trigger="t", stack="s", started=T0, deadline=T0, jobs=()
    )
    assert opened[0]["notifications"] == RunNotifications("full", "[ACME]")


def test_warm_images_imports_neither_the_config_nor_the_credentials_nor_powertools_batch() -> None:
    # Given the function's directory as Lambda runs it (its module first on the path)
    root = Path(__file__).resolve().parents[2]
    probe = (
        "import sys, app; print(sorted(m for m in sys.modules if m.startswith(('pullthrough.config', "
        "'pullthrough.credentials.check', 'pullthrough.sources', 'yaml', 'aws_lambda_powertools.utilities.batch'))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "layers" / "pullthrough"), str(root)])}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=root / "functions" / "warm_images", env=env, capture_output=True, text=True
    )
    # When app is imported, Then none of them is (bench/README.md, cold start)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr[-2000:]


def test_a_diagnosis_reaches_the_upstream_its_job_names_without_the_config() -> None:
    # The job's URL (a rule's own), else the catalogue's for its upstream; none where only ECR reaches it (IAM role)
    assert registry_client("docker-hub", "mirror.example", None, Settings()).base_url == "https://mirror.example"  # type: ignore[union-attr]
    assert registry_client("docker-hub", None, None, Settings()).base_url == "https://registry-1.docker.io"  # type: ignore[union-attr]
    assert registry_client("ecr", "111122223333.dkr.ecr.us-east-1.amazonaws.com", None, Settings()) is None
