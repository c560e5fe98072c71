"""pullthrough.aws.ecs against moto (with the sandbox's ListTaskDefinitions order and pages,
sandbox/aws/moto_ecs.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from pullthrough.aws import ecs
from pullthrough.errors import AwsError
from tests.fake_aws import fake_aws

REGION = "eu-west-1"


@pytest.fixture
def client() -> Iterator[object]:
    with fake_aws(REGION):
        yield boto3.client("ecs", region_name=REGION)


def register(client: object, family: str, *images: str) -> None:
    definitions = [{"name": f"c{i}", "image": image, "memory": 64} for i, image in enumerate(images)]
    client.register_task_definition(family=family, containerDefinitions=definitions)  # type: ignore[attr-defined]


def test_every_active_revision_is_read_latest_of_each_family_first(client: object) -> None:
    # Given two families, one with three revisions (the second deregistered), one with one
    for tag in ("1", "2", "3"):
        register(client, "web", f"nginx:{tag}", "busybox:1.36")
    register(client, "api", "python:3.13")
    client.deregister_task_definition(taskDefinition="web:2")  # type: ignore[attr-defined]
    # When the adapter reads them
    found = ecs.task_definitions(region=REGION)
    # Then each family's latest comes first, then the older ACTIVE revision; the INACTIVE one is not read
    assert [d.name for d in found.read] == ["api:1", "web:3", "web:1"]
    assert found.read[1].containers == (ecs.Container("c0", "nginx:3"), ecs.Container("c1", "busybox:1.36"))
    assert found.unread == ()


def test_the_family_prefix_is_a_prefix(client: object) -> None:
    # Given families olake-worker, olake-ui and other
    for family in ("olake-worker", "olake-ui", "other"):
        register(client, family, f"{family}:1")
    # When read with the prefix olake- (ListTaskDefinitions' own familyPrefix would need the full family name)
    found = ecs.task_definitions("olake-", region=REGION)
    # Then only the olake- families are read
    assert sorted(d.family for d in found.read) == ["olake-ui", "olake-worker"]


def test_listing_follows_every_page(client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given more revisions than one page holds
    monkeypatch.setattr(ecs, "LIST_PAGE", 2)
    for n in range(5):
        register(client, "web", f"nginx:{n}")
    # Then every page is listed, newest first
    assert ecs.active_revisions(region=REGION) == {"web": [5, 4, 3, 2, 1]}


def test_the_describe_limit_names_what_it_left_unread(client: object) -> None:
    # Given three families with two revisions each
    for family in ("a", "b", "c"):
        register(client, family, "nginx:1")
        register(client, family, "nginx:2")
    # When at most four revisions may be described
    found = ecs.task_definitions(region=REGION, limit=4)
    # Then every family's latest is read before any older one, and the rest is named
    assert [d.name for d in found.read] == ["a:2", "b:2", "c:2", "a:1"]
    assert found.unread == ("b:1", "c:1")


def test_a_refused_call_is_an_aws_error_naming_the_operation(client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ECS refuses the listing
    def refuse(**_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListTaskDefinitions")

    monkeypatch.setattr(ecs._client(REGION), "list_task_definitions", refuse)
    # Then the adapter raises the library's error, naming the call
    with pytest.raises(AwsError) as raised:
        ecs.task_definitions(region=REGION)
    assert raised.value.operation == "ecs:ListTaskDefinitions"
    assert raised.value.code == "AccessDeniedException"
