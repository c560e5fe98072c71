"""The planner with an `ecs` source: task definition images join the run attributed to the source; what ECS refuses
fails the source only."""

from __future__ import annotations

from pullthrough import config as config_module
from pullthrough.aws.ecs import Container, TaskDefinition, TaskDefinitions
from pullthrough.errors import AwsAccessDenied
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.sources import ecs as ecs_source
from pullthrough.warm.planner import Planner, WarmRequest
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


def planner(ecr: FakeEcr, upstream: FakeUpstream, lister: ecs_source.Lister) -> Planner:
    return Planner(CONFIG, ecr, lambda rule: upstream, workers=2, ecs=ecs_source.reader(CONFIG, lister))


def test_task_definition_images_join_the_run_attributed_to_the_source() -> None:
    # Given an ecs source whose task definition runs warm.images' nginx, a connector, and a digest-only image, and
    # an older revision no longer read (the describe limit)
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
    asked: list[str | None] = []

    def lister(prefix: str | None) -> TaskDefinitions:
        asked.append(prefix)
        return TaskDefinitions((worker,), unread=("olake-worker:3",))

    # When the run is planned
    plan = planner(ecr, upstream, lister).plan(WarmRequest(trigger="t"), RUN)
    # Then the family prefix was asked for; nginx is warmed once, as warm.images', the connector as the source's
    assert asked == ["olake-"]
    assert sorted((job.subject, job.source) for job in plan.jobs) == [
        ("docker.io/library/nginx:1.27", None),
        ("docker.io/olakego/source-mysql:v0.1.8", "ecs olake-"),
    ]
    # And the digest-only image fails, naming revision and container, with a fix for the task definition
    (failed,) = plan.decided
    assert (failed.item.outcome, failed.item.reason_code, failed.item.details.source) == (
        Outcome.FAILED,
        "source",
        "ecs olake-",
    )
    assert "task definition olake-worker:4 → pinned" in (failed.item.reason or "")
    assert "register a revision of olake-worker" in (failed.item.fix or "")
    # And the revision left unread is noted
    assert any("olake-worker:3" in note for note in plan.notes), plan.notes


def test_a_refused_ecs_call_fails_the_source_and_the_rest_still_warms() -> None:
    # Given ECS refuses the listing (plan_warming's role lacks the grant)
    ecr, upstream = served()

    def refused(prefix: str | None) -> TaskDefinitions:
        raise AwsAccessDenied("ecs:ListTaskDefinitions", "task definitions", "AccessDeniedException", "not authorized")

    # When the run is planned
    plan = planner(ecr, upstream, refused).plan(WarmRequest(trigger="t"), RUN)
    # Then warm.images still warms, and the source is a failed item saying what to grant
    assert [job.subject for job in plan.jobs] == ["docker.io/library/nginx:1.27"]
    (failed,) = plan.decided
    assert failed.item.subject == "source ecs olake-"
    assert failed.item.outcome == Outcome.FAILED
    assert "ecs:ListTaskDefinitions" in (failed.item.reason or "")
    assert "ReadTaskDefinitions" in (failed.item.fix or "")


def test_without_a_reader_an_ecs_source_yields_nothing() -> None:
    ecr, upstream = served()
    plan = Planner(CONFIG, ecr, lambda rule: upstream, workers=2).plan(WarmRequest(trigger="t"), RUN)
    assert [job.subject for job in plan.jobs] == ["docker.io/library/nginx:1.27"]
    assert plan.decided == ()
