"""The planner with an `ecs` source: task definition images join the run; what ECS refuses fails the source only."""

from __future__ import annotations

from pullthrough import config as config_module
from pullthrough.aws.ecs import Container, TaskDefinition, TaskDefinitions
from pullthrough.errors import AwsAccessDenied
from pullthrough.planning import Planner, WarmRequest
from pullthrough.report import Outcome
from pullthrough.sources.plan_time import SOURCE_REASON
from tests.unit.test_planning import RUN, FakeEcr, FakeUpstream, digest_of

CONFIG = config_module.parse(
    """
version: 1
rules:
  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}
warm:
  images: [nginx:1.27]
  sources:
    - {kind: ecs, family_prefix: olake-}
"""
)


def served() -> tuple[FakeEcr, FakeUpstream]:
    upstream = FakeUpstream(remaining=100)
    upstream.serve("library/nginx", "1.27", digest_of("nginx"))
    upstream.serve("olakego/source-mysql", "v0.1.8", digest_of("mysql"))
    return FakeEcr(), upstream


def lister(*definitions: TaskDefinition) -> object:
    return lambda prefix: TaskDefinitions(definitions) if prefix == "olake-" else TaskDefinitions(())


def test_task_definition_images_join_the_run_and_the_report_names_the_source() -> None:
    # Given an ecs source whose task definition runs warm.images' nginx and a connector, and one digest-only image
    ecr, upstream = served()
    worker = TaskDefinition(
        "olake-worker",
        4,
        (
            Container("mysql", "olakego/source-mysql:v0.1.8"),
            Container("proxy", "nginx:1.27"),
            Container("pinned", "busybox@sha256:" + "c" * 64),
        ),
    )
    planner = Planner(CONFIG, ecr, lambda rule: upstream, workers=2, ecs=lister(worker))  # type: ignore[arg-type]
    # When the run is planned
    plan = planner.plan(WarmRequest(trigger="t"), RUN)
    # Then nginx is warmed once, the connector too, the digest-only image is skipped naming revision and container
    assert sorted(job.subject for job in plan.jobs) == [
        "docker.io/library/nginx:1.27",
        "docker.io/olakego/source-mysql:v0.1.8",
    ]
    (skipped,) = plan.decided
    assert (skipped.item.outcome, skipped.item.reason_code) == (Outcome.SKIPPED, SOURCE_REASON)
    assert "task definition olake-worker:4 → pinned" in (skipped.item.reason or "")
    # And the notes name the source and what it yielded
    note = "ecs olake-: 2 image(s) named by the account's ACTIVE task definitions, 1 that cannot be warmed"
    assert note in plan.notes


def test_a_refused_ecs_call_fails_the_source_and_the_rest_still_warms() -> None:
    # Given ECS refuses the listing (plan_warming's role lacks the grant)
    ecr, upstream = served()

    def refused(prefix: str | None) -> TaskDefinitions:
        raise AwsAccessDenied("ecs:ListTaskDefinitions", "task definitions", "AccessDeniedException", "not authorized")

    planner = Planner(CONFIG, ecr, lambda rule: upstream, workers=2, ecs=refused)
    # When the run is planned
    plan = planner.plan(WarmRequest(trigger="t"), RUN)
    # Then warm.images still warms, and the source is a failed item saying what to grant
    assert [job.subject for job in plan.jobs] == ["docker.io/library/nginx:1.27"]
    (failed,) = plan.decided
    assert failed.item.subject == "source ecs olake-"
    assert failed.item.outcome == Outcome.FAILED
    assert "ecs:ListTaskDefinitions" in (failed.item.reason or "")
    assert "ReadTaskDefinitions" in (failed.item.fix or "")


def test_without_a_lister_an_ecs_source_yields_nothing() -> None:
    ecr, upstream = served()
    plan = Planner(CONFIG, ecr, lambda rule: upstream, workers=2).plan(WarmRequest(trigger="t"), RUN)
    assert [job.subject for job in plan.jobs] == ["docker.io/library/nginx:1.27"]
    assert plan.decided == ()
