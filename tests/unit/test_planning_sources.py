"""Planning with warm.sources: their references join the warm list, deduplicated with warm.images (which wins), each
job and item attributed to its source, and a source's problem a failed item naming the file, the place and the fix."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pullthrough import config as config_module
from pullthrough import sources
from pullthrough.config.source_entries import EcsSource
from pullthrough.env import Settings
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.sources import Reading, Yielded
from pullthrough.warm.planner import Planner, WarmRequest, dry_run_report
from pullthrough.warm.worker import details_of
from tests.unit.test_planning import RUN, FakeEcr, FakeUpstream, digest_of, image_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"

CONFIG = """version: 1
rules:
  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}
warm:
  platforms: [linux/amd64]
  images:
    - {image: olakego/source-mysql, tags: [v0.1.8], platforms: [linux/arm64]}
    - {image: olakego/ui, latest: 1}
  sources:
    - {kind: text, name: connectors, files: [images.txt]}
    - {kind: ecs, family_prefix: olake-}
"""


def loaded(tmp_path: Path, listing: str) -> config_module.Config:
    (tmp_path / "images.txt").write_text(listing)
    (tmp_path / "pullthrough.yaml").write_text(CONFIG)
    return config_module.load(tmp_path / "pullthrough.yaml")


def test_source_references_become_jobs_attributed_to_their_source(tmp_path: Path) -> None:
    # Given a text source naming a connector warm.images lacks, one it lists, and a tag of a latest-N entry
    config = loaded(tmp_path, "olakego/source-postgres:v0.1.8\nolakego/source-mysql:v0.1.8\nolakego/ui:v0.2.0\n")
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=100)
    for repository, tag in [
        ("olakego/source-postgres", "v0.1.8"),
        ("olakego/source-mysql", "v0.1.8"),
        ("olakego/ui", "v0.2.0"),
        ("olakego/ui", "v0.3.0"),
    ]:
        upstream.serve(repository, tag, digest_of(repository + tag))
    upstream.tag_lists["olakego/ui"] = ["v0.2.0", "v0.3.0"]

    # When the run is planned
    plan = Planner(config, ecr, lambda rule: upstream, workers=2).plan(WarmRequest(trigger="t"), RUN)

    # Then every tag is one job; warm.images wins where it names the tag (no source, its platforms)
    jobs = {job.subject: job for job in plan.jobs}
    assert set(jobs) == {
        "docker.io/olakego/source-mysql:v0.1.8",
        "docker.io/olakego/source-postgres:v0.1.8",
        "docker.io/olakego/ui:v0.3.0",
        "docker.io/olakego/ui:v0.2.0",
    }
    assert (
        jobs["docker.io/olakego/source-mysql:v0.1.8"].source,
        jobs["docker.io/olakego/source-mysql:v0.1.8"].platforms,
    ) == (None, ("linux/arm64",))
    assert jobs["docker.io/olakego/source-postgres:v0.1.8"].source == "connectors"
    assert jobs["docker.io/olakego/ui:v0.3.0"].source is None  # latest 1, from warm.images
    # A tag of an image warm.images selects by latest-N is still warmed, attributed to the source
    assert jobs["docker.io/olakego/ui:v0.2.0"].source == "connectors"
    # And the report item a worker writes, like a dry run's, names the source
    assert details_of(jobs["docker.io/olakego/source-postgres:v0.1.8"]).source == "connectors"
    settings = Settings(ACCOUNT_ID="111122223333")  # type: ignore[call-arg]
    report = dry_run_report(plan, config, settings, "t", plan_started())
    sourced = {item.subject: item.details.source for item in report.items}
    assert sourced["docker.io/olakego/source-postgres:v0.1.8"] == "connectors"
    assert "from connectors" in report.body()


def test_an_image_ecr_holds_is_kept_and_still_attributed(tmp_path: Path) -> None:
    # Given ECR holding, complete, the image a source names
    config = loaded(tmp_path, "olakego/source-postgres:v0.1.8\n")
    ecr, upstream = FakeEcr(), FakeUpstream(remaining=100)
    digest, body, blobs = image_manifest("postgres")
    ecr.hold("docker-hub/olakego/source-postgres", "v0.1.8", digest, body, blobs)
    upstream.serve("olakego/source-postgres", "v0.1.8", digest)
    # When the run is planned, Then it is kept, attributed to the source
    plan = Planner(config, ecr, lambda rule: upstream, workers=2).plan(WarmRequest(trigger="t"), RUN)
    kept = {d.item.subject: d.item for d in plan.decided}["docker.io/olakego/source-postgres:v0.1.8"]
    assert (kept.outcome, kept.details.source) == (Outcome.ALREADY_CACHED, "connectors")


def test_a_source_problem_is_a_failed_item_naming_the_file_and_place(tmp_path: Path) -> None:
    config = loaded(tmp_path, "quay.io/org/app:1\n")
    plan = Planner(config, FakeEcr(), lambda rule: FakeUpstream(), workers=2).plan(WarmRequest(trigger="t"), RUN)
    failed = [d.item for d in plan.decided if d.item.reason_code == "source"]
    (item,) = failed
    assert item.outcome is Outcome.FAILED
    assert item.subject == "quay.io/org/app:1"
    assert (
        item.reason
        == "images.txt:1: no rule caches quay.io images; add a rule with upstream: quay; or drop it from this source"
    )
    assert item.details.source == "connectors"


def test_the_ecs_reader_s_references_join_the_plan(tmp_path: Path) -> None:
    config = loaded(tmp_path, "")
    upstream = FakeUpstream(remaining=100)
    upstream.serve("library/redis", "7.4", digest_of("redis"))

    def tasks(source: EcsSource) -> Reading:
        return Reading(references=[Yielded("docker.io/library/redis:7.4", source.label, "olake-cache:4 → redis")])

    planner = Planner(config, FakeEcr(), lambda rule: upstream, workers=2, ecs=tasks)
    jobs = {job.subject: job for job in planner.plan(WarmRequest(trigger="t", images=()), RUN).jobs}
    assert jobs["docker.io/library/redis:7.4"].source == "ecs olake-"


def test_config_targets_read_the_file_sources_and_explain_names_them() -> None:
    config = config_module.load(FIXTURES / "pullthrough.yaml")
    reading = sources.read(config)
    targets = config.targets(reading)
    sourced = [t for t in targets if t.source == "olake"]
    assert [t.image.image.familiar for t in sourced][:2] == ["olakego/ui:v0.2.3", "temporalio/auto-setup:1.22.3"]
    # warm.images names source-mysql:v0.1.8: one target, warm.images', not also the source's
    mysql = [t for t in targets if t.image.image.name == "docker.io/olakego/source-mysql"]
    assert [(t.source, t.platforms) for t in mysql] == [(None, ("linux/amd64", "linux/arm64"))]
    explained = "\n".join(config.explain(reading))
    assert (
        "image docker.io/olakego/ui -> dockerhub/olakego/ui (rule dockerhub): v0.2.3; linux/amd64; "
        "from olake (olake/docker-compose.yml → olake-ui)" in explained
    )


def plan_started() -> datetime:
    return datetime.now(UTC)


def test_the_config_reads_no_source_itself_and_a_function_that_reads_none_does_not_import_the_readers() -> None:
    config = config_module.load(FIXTURES / "pullthrough.yaml")
    # Targets of a config with warm.sources need their reading: the config never reads files behind a caller's back
    with pytest.raises(ValueError, match=r"pass their reading"):
        config.targets()
    # ...so loading the config imports none of the readers (nor does reconcile_rules, which loads it)
    probe = (
        "import sys, pullthrough.config; print(sorted(m for m in sys.modules if m.startswith('pullthrough.sources')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
