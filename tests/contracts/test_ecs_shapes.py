"""The sandbox's ECS answers (moto, with sandbox/aws/moto_ecs.py's order and pages) conform to botocore's output shapes.

The three operations the `ecs` source and its tests call are driven through boto3, and the body that went over the
wire is checked against the model (tests/contracts/shapes.py), before botocore's parser could forgive it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest

from tests.contracts.shapes import problems
from tests.fake_aws import fake_aws

MODEL = botocore.session.get_session().get_service_model("ecs")
CALLED = ("RegisterTaskDefinition", "ListTaskDefinitions", "DescribeTaskDefinition")


@pytest.fixture
def wire() -> Iterator[tuple[Any, list[tuple[str, Any]]]]:
    seen: list[tuple[str, Any]] = []
    with fake_aws("eu-west-1"):
        client = boto3.client("ecs", region_name="eu-west-1")

        def keep(http_response: Any, model: Any, **_: Any) -> None:
            seen.append((model.name, json.loads(http_response.content or b"{}")))

        client.meta.events.register("after-call.ecs", keep)
        yield client, seen


def test_every_answer_conforms_to_the_model(wire: tuple[Any, list[tuple[str, Any]]]) -> None:
    # Given task definitions with a tag, a digest and an ECR image, on enough revisions to page
    client, seen = wire
    for n in range(3):
        client.register_task_definition(
            family="web",
            containerDefinitions=[
                {"name": "app", "image": f"nginx:1.2{n}", "memory": 128},
                {"name": "sidecar", "image": "busybox@sha256:" + "a" * 64, "memory": 64},
            ],
        )
    # When each operation is called, paged
    client.list_task_definitions(status="ACTIVE", sort="DESC", maxResults=2)
    client.list_task_definitions(status="ACTIVE", sort="DESC", maxResults=2, nextToken=seen[-1][1]["nextToken"])
    client.describe_task_definition(taskDefinition="web:2")
    # Then every body conforms, and each operation was seen
    assert {operation for operation, _ in seen} == set(CALLED)
    for operation, body in seen:
        assert problems(MODEL.operation_model(operation).output_shape, body) == [], operation
