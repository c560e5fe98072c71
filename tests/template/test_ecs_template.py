"""plan_warming reads ECS task definitions only when the config has an `ecs` source (ConfigFacts.EcsResourcePrefix)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template.cfn import config_facts
from tests.template.test_security import ACCOUNT, REGION, Evaluator

RULES = "version: 1\nrules:\n  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/dh}\n"
NAMES_NOTHING = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/NONE"


def statement(template: dict[str, Any]) -> dict[str, Any]:
    policies = template["Resources"]["PlanWarmingFunction"]["Properties"]["Policies"]
    (found,) = [s for p in policies for s in p.get("Statement", []) if s.get("Sid") == "ReadTaskDefinitions"]
    return found


@pytest.mark.parametrize(
    ("warm", "resources"),
    [
        ("", {NAMES_NOTHING}),
        ("warm:\n  sources:\n    - {kind: text, files: [images.txt]}\n", {NAMES_NOTHING}),
        ("warm:\n  sources:\n    - {kind: ecs, family_prefix: olake-}\n", {"*", NAMES_NOTHING}),
    ],
    ids=["no-sources", "file-source", "ecs-source"],
)
def test_task_definitions_are_readable_only_with_an_ecs_source(
    template: dict[str, Any], warm: str, resources: set[str]
) -> None:
    # Given the config's facts, When CloudFormation evaluates the statement's resources
    found = Evaluator(template, facts=config_facts(RULES + warm)).strings(statement(template)["Resource"])
    # Then "*" (the only resource the two actions accept) is there only with an ecs source
    assert found == resources
    assert statement(template)["Action"] == ["ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"]
