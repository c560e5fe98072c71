"""warm.sources on the deployed stack: images a Compose project and a text list name are warmed by a scheduled run,
and each report item names its source.

template.yaml in moto with the sandbox's registries (warm_support.py). The config sits beside its source files, as
the config layer puts them under /opt: a Compose project like OLake's (seed 000) whose images come from
${CONTAINER_REGISTRY_BASE}, which its .env points at this account's ECR cache (mapped back to Docker Hub), and a text
list with a reference no rule caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from pullthrough.reporting.vocabulary import Outcome
from sandbox import Sandbox
from tests.integration.warm_support import WarmHarness, unique

pytestmark = pytest.mark.sandbox

HUB, GHCR = "src-hub", "src-ghcr"


class Sources(WarmHarness):
    """This module's stack: its own rule prefixes."""

    HUB, GHCR = HUB, GHCR
    STACK_LABEL = "sources"
    LAYERS = (800, 200)
    BUDGET_SHARE = 0.5


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sources]:
    with Sources.deployed(sandbox, tmp_path_factory.mktemp("sources")) as deployed_world:
        yield deployed_world


def configure_sources(world: Sources, folder: Path, sources: list[dict[str, object]]) -> None:
    """A config in `folder` (beside its source files) with warm.sources and no warm.images; the stack reads it."""
    document = world.document([])
    document["warm"]["sources"] = sources
    path = folder / "pullthrough.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    world.stack.extra_env["PULLTHROUGH_CONFIG"] = str(path)
    world.stack.update()


def test_a_scheduled_run_warms_what_the_sources_name_and_the_report_names_each_source(world: Sources) -> None:
    # Given two images on the upstream, one in an OLake-like compose project (through the cache, per its .env) and
    # one in a text list, and a config beside those files
    ns = unique("src")
    ui = world.push(f"{ns}/ui", "v0.2.3", platforms=("linux/amd64",))
    connector = world.push(f"{ns}/source-mysql", "v0.1.8", platforms=("linux/amd64",))
    folder = world.workdir / unique("config-")
    (folder / "olake").mkdir(parents=True)
    registry = f"{world.sb.account}.dkr.ecr.{world.sb.region}.amazonaws.com"
    (folder / "olake" / ".env").write_text(f'CONTAINER_REGISTRY_BASE="{registry}/{HUB}"\nUI_VERSION=v0.2.3\n')
    (folder / "olake" / "docker-compose.yml").write_text(
        "services:\n"
        f"  olake-ui:\n    image: ${{CONTAINER_REGISTRY_BASE:-registry-1.docker.io}}/{ns}/ui:${{UI_VERSION}}\n"
        "  worker:\n    build: ./worker\n"
    )
    (folder / "connectors.txt").write_text(f"# connectors\n{ns}/source-mysql:v0.1.8\nquay.io/org/app:1\n")
    configure_sources(
        world,
        folder,
        [
            {"kind": "compose", "name": "olake", "files": ["olake/docker-compose.yml"]},
            {"kind": "text", "files": ["connectors.txt"]},
        ],
    )

    # When the schedule fires and the jobs are worked off
    summary, report = world.run()

    # Then both images were warmed into the rule's cache repositories, each attributed to the source naming it
    items = {item.subject: item for item in report.items}
    ui_item = items[f"docker.io/{ns}/ui:v0.2.3"]
    connector_item = items[f"docker.io/{ns}/source-mysql:v0.1.8"]
    assert (ui_item.outcome, ui_item.details.source) == (Outcome.WARMED, "olake")
    assert (connector_item.outcome, connector_item.details.source) == (Outcome.WARMED, "text connectors.txt")
    held = boto3.client("ecr").describe_images(repositoryName=f"{HUB}/{ns}/ui")["imageDetails"]
    assert ui.digest in {detail["imageDigest"] for detail in held}
    assert world.sb.registry.repository(f"{HUB}/{connector.repository}") is not None
    # And the reference no rule caches is a failed item naming the file, the line and the fix; the report says so
    failed = [item for item in report.items if item.reason_code == "source"]
    assert [(item.subject, item.outcome) for item in failed] == [("quay.io/org/app:1", Outcome.FAILED)]
    assert failed[0].reason is not None
    assert failed[0].reason.startswith("connectors.txt:3: no rule caches quay.io images; add a rule with upstream")
    assert failed[0].details.source == "text connectors.txt"
    body = report.body()
    assert "from olake" in body
    assert summary["planned"] == 3
