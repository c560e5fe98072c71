"""pullthrough/sources/ecs.py: what the images of ECS task definitions yield, resolved against the config's rules."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from pullthrough import config
from pullthrough.aws import ecs
from pullthrough.aws.ecs import Container, TaskDefinition, TaskDefinitions
from pullthrough.config.source_entries import EcsSource
from pullthrough.sources import ecs as ecs_source
from tests.fake_aws import fake_aws

REGION = "eu-west-1"
CACHE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
CONFIG = config.parse(
    "version: 1\nrules:\n"
    "  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}\n"
    "  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}\n"
)
SOURCE = EcsSource(kind="ecs", family_prefix="olake-")


def lister_of(*definitions: TaskDefinition, unread: tuple[str, ...] = ()) -> ecs_source.Lister:
    asked: list[str | None] = []

    def lister(prefix: str | None) -> TaskDefinitions:
        asked.append(prefix)
        return TaskDefinitions(definitions, unread)

    lister.asked = asked  # type: ignore[attr-defined]
    return lister


def definition(name: str, *images: str) -> TaskDefinition:
    family, _, revision = name.rpartition(":")
    return TaskDefinition(family, int(revision), tuple(Container(f"c{i}", image) for i, image in enumerate(images)))


def test_images_become_upstream_references_attributed_to_revision_and_container() -> None:
    # Given a task definition with an upstream image, a cache URI and the same image again in an older revision
    lister = lister_of(
        definition("olake-worker:7", "olakego/source-mysql:v0.1.8", f"{CACHE}/ghcr/datazip/olake-ui:v1"),
        definition("olake-worker:6", "olakego/source-mysql:v0.1.8"),
    )
    # When read
    found = ecs_source.read(SOURCE, CONFIG, lister)
    # Then the family prefix was asked for, each image is there once (at its newest place), the cache URI mapped back
    assert lister.asked == ["olake-"]  # type: ignore[attr-defined]
    assert [(y.reference, y.source, y.place) for y in found.unique()] == [
        ("docker.io/olakego/source-mysql:v0.1.8", "ecs olake-", "task definition olake-worker:7 → c0"),
        ("ghcr.io/datazip/olake-ui:v1", "ecs olake-", "task definition olake-worker:7 → c1"),
    ]
    assert found.problems == []
    assert found.notes == []


def test_digest_only_and_uncached_images_are_problems_naming_the_place() -> None:
    # Given a digest-only image and one no rule caches
    digest = "sha256:" + "a" * 64
    lister = lister_of(definition("olake-ui:3", f"busybox@{digest}", "quay.io/prometheus/node-exporter:v1.8.2"))
    # When read
    found = ecs_source.read(SOURCE, CONFIG, lister)
    # Then both are problems naming the revision and container, with the image and a fix
    assert found.references == []
    assert [(p.location, p.value) for p in found.problems] == [
        ("task definition olake-ui:3 → c0", f"busybox@{digest}"),
        ("task definition olake-ui:3 → c1", "quay.io/prometheus/node-exporter:v1.8.2"),
    ]
    assert "digest" in found.problems[0].message
    assert "rule" in found.problems[1].message


def test_images_of_private_ecr_repositories_are_skipped_and_counted() -> None:
    # Given the account's own pushed image (not under a rule's prefix), twice, and one by digest
    own = f"{CACHE}/team/app:2.0"
    lister = lister_of(definition("olake-api:2", own, own, f"{CACHE}/team/job@sha256:" + "b" * 64))
    # When read
    found = ecs_source.read(SOURCE, CONFIG, lister)
    # Then none is warmed or a problem; one note counts them
    assert found.references == []
    assert found.problems == []
    (note,) = found.notes
    assert (note.location, note.value) == ("warm.sources ecs olake-", "2 image(s)")
    assert note.message.startswith("skipped: ECR private repositories no rule pulls through")
    assert own in note.message


def test_revisions_left_unread_are_named_in_a_note() -> None:
    lister = lister_of(definition("olake-api:9", "nginx:1.27"), unread=("olake-api:8", "olake-api:7"))
    (note,) = ecs_source.read(SOURCE, CONFIG, lister).notes
    assert note.value == "2 older ACTIVE revision(s)"
    assert "olake-api:8, olake-api:7" in note.message


@pytest.fixture
def registered() -> Iterator[object]:
    with fake_aws(REGION):
        yield boto3.client("ecs", region_name=REGION)


def test_the_adapter_is_the_lister(registered: object) -> None:
    # Given task definitions in moto, one family outside the prefix
    for family, image in (("olake-worker", "olakego/source-postgres:v0.1.8"), ("other", "nginx:1.27")):
        registered.register_task_definition(  # type: ignore[attr-defined]
            family=family, containerDefinitions=[{"name": "main", "image": image, "memory": 64}]
        )
    # When the source reads through the adapter
    references = ecs_source.ecs_references(SOURCE, lambda prefix: ecs.task_definitions(prefix, REGION), CONFIG)
    # Then only the prefixed family's image is yielded
    assert [(y.reference, y.place) for y in references] == [
        ("docker.io/olakego/source-postgres:v0.1.8", "task definition olake-worker:1 → main")
    ]
