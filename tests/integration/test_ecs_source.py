"""An `ecs` warm source on the sandbox: template.yaml deployed into moto, a task definition registered in moto's ECS,
plan_warming reading it as its own role (IAM enforced) and warm_images importing its image through the ECR endpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import boto3
import pytest
import yaml

from pullthrough.reporting.vocabulary import Outcome
from sandbox import Sandbox
from tests.integration.test_iam_grants import statement_of
from tests.integration.warm_support import WarmHarness, unique

pytestmark = pytest.mark.sandbox

HUB, GHCR = "ecs-hub", "ecs-ghcr"
FAMILY = "olake-"
PLANNER = "PlanWarmingFunction"


class Ecs(WarmHarness):
    HUB, GHCR = HUB, GHCR
    STACK_LABEL = "ecs"
    LAYERS = (700, 200)
    BUDGET_SHARE = 0.5

    def with_ecs_source(self) -> None:
        """The module's rules, no warm.images, and an ecs source on the family prefix; deployed as `sam deploy`."""
        document = self.document([])
        document["warm"]["sources"] = [{"kind": "ecs", "family_prefix": FAMILY}]
        path = self.workdir / f"{unique('config-')}.yaml"
        path.write_text(yaml.safe_dump(document))
        self.stack.extra_env["PULLTHROUGH_CONFIG"] = str(path)
        self.stack.update()


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ecs]:
    with Ecs.deployed(sandbox, tmp_path_factory.mktemp("ecs")) as deployed:
        deployed.with_ecs_source()
        yield deployed


def register(world: Ecs, family: str, image: str) -> None:
    boto3.client("ecs", region_name=world.sb.region).register_task_definition(
        family=family, containerDefinitions=[{"name": "main", "image": image, "memory": 128}]
    )


def test_a_registered_task_definition_is_warmed_and_the_report_names_the_source(world: Ecs) -> None:
    # Given an image upstream, named by a task definition of the prefixed family, and one outside the prefix
    name = unique("olakego/source-mysql")
    world.push(name, "v0.1.8")
    register(world, unique(FAMILY + "worker-"), f"docker.io/{name}:v0.1.8")
    register(world, unique("other-"), f"docker.io/{unique('elsewhere/app')}:1.0")
    # When a whole run is planned (plan_warming's own role asks ECS) and drained
    summary, report = world.run()
    # Then the task definition's image was warmed into the cache, and nothing else, the report naming its source
    found = [(item.subject, item.outcome, item.details.source) for item in report.items]
    assert found == [(f"docker.io/{name}:v0.1.8", Outcome.WARMED, f"ecs {FAMILY}")], report.items
    assert summary["run_id"] == report.run_id


@pytest.fixture
def without_task_definition_reads(world: Ecs) -> Iterator[None]:
    """plan_warming's role with the ReadTaskDefinitions statement taken away (restored after the test)."""
    principal = world.stack.principal(PLANNER)
    role = principal.role.without(statement_of(principal.role, "ReadTaskDefinitions"))
    world.stack.principals[PLANNER] = dataclasses.replace(principal, role=role)
    yield
    world.stack.principals[PLANNER] = principal


@pytest.mark.usefixtures("without_task_definition_reads")
def test_a_refused_ecs_call_is_a_clear_problem_and_not_a_failed_run(world: Ecs) -> None:
    # Given a planner IAM refuses ecs:ListTaskDefinitions (the fixture)
    # When its schedule fires
    result = world.plan()
    report = world.report_of(result["run_id"])
    # Then the run completed, and its report fails the source saying what to grant
    (item,) = [i for i in report.items if i.subject == f"source ecs {FAMILY}"]
    assert (item.outcome, item.reason_code) == (Outcome.FAILED, "source")
    assert "ecs:ListTaskDefinitions" in (item.reason or "")
    assert "AccessDeniedException" in (item.reason or "")
    assert "ReadTaskDefinitions" in (item.fix or "")
