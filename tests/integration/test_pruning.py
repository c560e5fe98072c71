"""pullthrough/prune/ on the sandbox's ECR: images pulled through the cache endpoint, ECR's clock moved on, then
a prune run deletes exactly what nobody pulled for `unused_for_days` and no warm-list entry or keep names, never
outside the config's rule prefixes, nothing in a dry run, at most max_deletions, and platform images with their index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullthrough import config as config_module
from pullthrough import prune as pruning
from pullthrough.aws import clients
from pullthrough.env import PruneEnv, Settings
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome
from pullthrough.sources import ecs as ecs_source
from sandbox import PushedImage, Sandbox
from tests.fake_aws import fake_aws
from tests.integration.registry_http import docker_hub_rule, ecr_auth, manifest, unique

pytestmark = pytest.mark.sandbox

DAYS = 30
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cache:
    sb: Sandbox
    ecr: Any
    prefix: str  # the config's rule
    other: str  # a rule of the account the config does not name
    ns: str
    calls: list[str]
    directory: Path  # where the config file is written (warm.sources files are relative to it)

    def pull(self, image: PushedImage, prefix: str | None = None, reference: str | None = None) -> None:
        repository = f"{prefix or self.prefix}/{image.repository}"
        answer = manifest(self.sb.ecr_url, repository, reference or image.tag, ecr_auth(self.sb))
        assert answer.status == 200, answer.data
        self.sb.registry.settle()

    def digests(self, image: PushedImage, prefix: str | None = None) -> set[str]:
        repository = f"{prefix or self.prefix}/{image.repository}"
        try:
            details = self.ecr.describe_images(repositoryName=repository)["imageDetails"]
        except self.ecr.exceptions.RepositoryNotFoundException:
            return set()
        return {detail["imageDigest"] for detail in details}

    def later(self, days: float) -> None:
        self.sb.registry.clock.advance(days=days)

    def prune(self, warm: list[Any], sources: list[Any] | None = None, **prune: Any) -> Report:
        config = config_module.load(self.write(warm, sources, **prune))
        settings = Settings.from_env({"AWS_REGION": self.sb.region})
        return pruning.run(
            config,
            pruning.AwsEcr(self.sb.region),
            pruning.RunInfo(self.sb.registry.clock.now(), "prune-test", "test", settings.region, self.sb.account),
            ecs=ecs_source.reader_in(config, settings.region),
        )

    def write(self, warm: list[Any], sources: list[Any] | None = None, **prune: Any) -> Path:
        """The config file: the rule, the warm list and sources, and a prune section with `prune`."""
        document = {
            "version": 1,
            "rules": [
                {"prefix": self.prefix, "upstream": "docker-hub", "credentials": f"ecr-pullthroughcache/{self.prefix}"}
            ],
            "warm": {"images": warm, "sources": sources or []},
            "prune": {"unused_for_days": DAYS, **prune},
        }
        path = self.directory / "pullthrough.yaml"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path


@pytest.fixture
def cache(sandbox: Sandbox, tmp_path: Path) -> Iterator[Cache]:
    from sandbox.aws import moto_ecr

    with fake_aws(sandbox.region):
        moto_ecr.install()
        sandbox.configure_rules()
        ecr = boto3.client("ecr", region_name=sandbox.region)
        secrets = boto3.client("secretsmanager", region_name=sandbox.region)
        user, password = next(iter(sandbox.users.items()))
        prefix, other = unique("hub"), unique("elsewhere")
        for name in (prefix, other):
            docker_hub_rule((ecr, secrets), name, user, password)
        calls: list[str] = []
        # Every ECR call the library makes, by operation name (its cached client is the one pruning uses).
        clients.client("ecr", sandbox.region).meta.events.register(
            "before-call.ecr.*", lambda model, **_: calls.append(model.name)
        )
        yield Cache(sandbox, ecr, prefix, other, unique("team"), calls, tmp_path)
    sandbox.registry.imports.clear()
    sandbox.registry.clock.reset()
    sandbox.registry.events.take()


def outcomes(report: Report) -> dict[str, str]:
    return {item.subject: item.outcome.value for item in report.items}


def test_deletes_exactly_what_is_old_and_unlisted_never_outside_the_prefixes(cache: Cache) -> None:
    # Given images pulled through the config's rule: one the warm list names, one a tag pattern selects, one kept,
    # one pulled again lately, and two nobody names; and an image of another rule and a repository of no rule
    sb, ns = cache.sb, cache.ns
    named = sb.push_image(f"{ns}/named", "1.0")
    matched = sb.push_image(f"{ns}/series", "v1.2")
    unmatched = sb.push_image(f"{ns}/series", "2.0", seed=2)
    kept = sb.push_image(f"{ns}/kept", "3")
    fresh = sb.push_image(f"{ns}/fresh", "1")
    old = sb.push_image(f"{ns}/old", "1")
    for image in (named, matched, unmatched, kept, fresh, old):
        cache.pull(image)
    cache.pull(old, cache.other)
    outside = cache.ecr.create_repository(repositoryName=f"{ns}-outside/app")["repository"]["repositoryName"]
    cache.ecr.put_image(
        repositoryName=outside,
        imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}
        ),
        imageTag="1",
    )
    # When ECR's clock moves past the window, one image is pulled again, and prune runs for real
    cache.later(DAYS + 1)
    cache.pull(fresh)
    report = cache.prune(
        [f"{ns}/named:1.0", {"image": f"{ns}/series", "tag_pattern": r"^v1\..*$"}], keep=[f"{ns}/kept"], dry_run=False
    )
    # Then only the unnamed, unused images are gone, with their sizes reported
    assert cache.digests(old) == set()
    assert cache.digests(unmatched) == {matched.digest}
    for image in (named, kept, fresh):
        assert cache.digests(image) == {image.digest}, image.repository
    # And nothing outside the config's prefix was touched
    assert cache.digests(old, cache.other) == {old.digest}
    assert len(cache.ecr.describe_images(repositoryName=outside)["imageDetails"]) == 1
    prefix = cache.prefix
    assert outcomes(report) == {
        f"{prefix}/{ns}/old:1": "pruned",
        f"{prefix}/{ns}/series:2.0": "pruned",
        f"{prefix}/{ns}/named:1.0": "kept",
        f"{prefix}/{ns}/series:v1.2": "kept",
        f"{prefix}/{ns}/kept:3": "kept",
    }
    assert report.kind is Kind.PRUNE
    assert not report.dry_run
    assert report.totals.bytes_freed == sum(i.details.size or 0 for i in report.items if i.outcome is Outcome.PRUNED)
    assert report.totals.bytes_freed > 0


def test_a_dry_run_deletes_nothing_and_lists_what_would_go_with_sizes(cache: Cache) -> None:
    # Given an old, unlisted image
    old = cache.sb.push_image(f"{cache.ns}/old", "1", layer_sizes=(4096,))
    cache.pull(old)
    cache.later(DAYS + 1)
    cache.calls.clear()
    # When prune runs with its default (a dry run)
    report = cache.prune([])
    # Then ECR was never asked to delete (nor to read a manifest, which would count as a pull), the image stays
    assert "BatchDeleteImage" not in cache.calls
    assert "BatchGetImage" not in cache.calls
    assert "DescribeImages" in cache.calls
    assert cache.digests(old) == {old.digest}
    (item,) = report.items
    assert (item.outcome, item.details.size) == (Outcome.WOULD_PRUNE, old.total_size)
    assert report.dry_run
    assert report.totals.bytes_freed == old.total_size
    assert "would be freed" in report.body()
    assert report.subject().startswith("OK pullthrough prune dry-run")


def test_the_cap_deletes_the_oldest_first_and_leaves_the_rest_for_later(cache: Cache) -> None:
    # Given three unlisted images last used a day apart
    images = [cache.sb.push_image(f"{cache.ns}/capped{n}", "1", seed=n) for n in range(3)]
    for image in images:
        cache.pull(image)
        cache.later(1)
    cache.later(DAYS + 1)
    # When prune may delete two
    report = cache.prune([], dry_run=False, max_deletions=2)
    # Then the two oldest went and the newest waits for a later run
    assert [cache.digests(image) for image in images] == [set(), set(), {images[2].digest}]
    assert report.counts == {Outcome.PRUNED: 2, Outcome.DEFERRED: 1}


def test_platform_images_follow_their_index(cache: Cache) -> None:
    # Given two multi-platform images pulled through the cache (the index and every platform image imported): one
    # the warm list names, one nobody names, whose arm64 image is pulled by digest again later
    sb, ns = cache.sb, cache.ns
    platforms = ("linux/amd64", "linux/arm64")
    named = sb.push_image(f"{ns}/multi", "1", platforms=platforms)
    unnamed = sb.push_image(f"{ns}/multi", "2", platforms=platforms, seed=2)
    cache.pull(named)
    cache.pull(unnamed)
    cache.later(DAYS + 1)
    pinned = unnamed.platforms["linux/arm64"]
    cache.pull(unnamed, reference=pinned)
    # When prune runs for real
    report = cache.prune([f"{ns}/multi:1"], dry_run=False)
    # Then the unnamed index went with its unused amd64 image; the named index keeps every platform image; the
    # arm64 image pulled by digest lately stays
    assert cache.digests(named) == {named.digest, *named.platforms.values(), pinned}
    assert outcomes(report) == {f"{cache.prefix}/{ns}/multi:2": "pruned", f"{cache.prefix}/{ns}/multi:1": "kept"}
    (pruned,) = [i for i in report.items if i.outcome is Outcome.PRUNED]
    assert "1 platform image(s) with it" in (pruned.reason or "")


def test_untagged_images_stay_while_an_index_might_list_them(cache: Cache) -> None:
    # Given a named multi-platform image in the cache, all of it unused for longer than the window
    sb, ns = cache.sb, cache.ns
    named = sb.push_image(f"{ns}/held", "1", platforms=("linux/amd64", "linux/arm64"))
    cache.pull(named)
    cache.later(DAYS + 1)
    # When prune runs, Then the platform images of the index that stays are not touched
    report = cache.prune([f"{ns}/held:1"], dry_run=False)
    assert cache.digests(named) == {named.digest, *named.platforms.values()}
    assert report.counts == {Outcome.KEPT: 1}


def test_what_a_source_names_is_kept_and_a_broken_source_stops_the_run(cache: Cache) -> None:
    # Given two old images, one named by a text source's file
    sb, ns = cache.sb, cache.ns
    listed = sb.push_image(f"{ns}/from-file", "1")
    other = sb.push_image(f"{ns}/unnamed", "1")
    for image in (listed, other):
        cache.pull(image)
    cache.later(DAYS + 1)
    (cache.directory / "images.txt").write_text(f"{ns}/from-file:1\n", encoding="utf-8")
    text = {"kind": "text", "files": ["images.txt"]}
    # When a source cannot be read, Then prune deletes nothing and says why
    refused = cache.prune([], sources=[text, {"kind": "text", "files": ["missing.txt"]}], dry_run=False)
    assert cache.digests(other) == {other.digest}
    (item,) = refused.items
    assert item.outcome is Outcome.SKIPPED
    assert "missing.txt" in (item.reason or "")
    # When the sources read, Then what the file names stays and the rest goes
    report = cache.prune([], sources=[text], dry_run=False)
    assert cache.digests(listed) == {listed.digest}
    assert cache.digests(other) == set()
    assert outcomes(report)[f"{cache.prefix}/{ns}/from-file:1"] == "kept"


def test_what_an_ecs_task_definition_runs_is_kept(cache: Cache) -> None:
    # Given two old images, one run by an ACTIVE task definition of the account's ECS
    sb, ns = cache.sb, cache.ns
    running = sb.push_image(f"{ns}/service", "1")
    other = sb.push_image(f"{ns}/retired", "1")
    for image in (running, other):
        cache.pull(image)
    cache.later(DAYS + 1)
    boto3.client("ecs", region_name=sb.region).register_task_definition(
        family=f"{ns}-api",
        containerDefinitions=[{"name": "api", "image": f"docker.io/{ns}/service:1", "memory": 128}],
    )
    # When prune runs with an ecs source for that family
    report = cache.prune([], sources=[{"kind": "ecs", "family_prefix": f"{ns}-"}], dry_run=False)
    # Then the image the task definition runs stays, named with its task definition, and the other goes
    assert cache.digests(running) == {running.digest}
    assert cache.digests(other) == set()
    kept = next(i for i in report.items if i.subject == f"{cache.prefix}/{ns}/service:1")
    assert kept.outcome is Outcome.KEPT
    assert f"{ns}-api:1" in (kept.reason or "")


def test_the_handler_runs_dry_when_asked_and_does_nothing_without_a_prune_section(cache: Cache) -> None:
    # Given an old, unlisted image and a config that deletes
    old = cache.sb.push_image(f"{cache.ns}/old", "1")
    cache.pull(old)
    cache.sb.registry.age(days=DAYS + 1)  # the handler reads the real clock
    cache.prune([], dry_run=False, max_deletions=1)  # writes the config file; deletes the image
    assert cache.digests(old) == set()
    cache.pull(old)
    cache.sb.registry.age(days=DAYS + 1)
    path = cache.directory / "pullthrough.yaml"
    env = PruneEnv.from_env(
        {
            "AWS_REGION": cache.sb.region,
            "ACCOUNT_ID": cache.sb.account,
            "PULLTHROUGH_CONFIG": str(path),
            "REPORT_TOPIC_ARN": "",  # no topic: the report is only logged
        }
    )
    # When the handler gets the sample event asking for a dry run
    event = json.loads((ROOT / "events" / "prune_images" / "dry_run.json").read_text(encoding="utf-8"))
    result = pruning.handle(event, None, env)
    # Then it only looked
    assert result["dry_run"] is True
    assert result["counts"] == {"would_prune": 1}
    assert cache.digests(old) == {old.digest}
    # And without a prune section it does nothing at all
    document = json.loads(path.read_text(encoding="utf-8"))
    del document["prune"]
    path.write_text(json.dumps(document), encoding="utf-8")
    cache.calls.clear()
    schedule = json.loads((ROOT / "events" / "prune_images" / "schedule.json").read_text(encoding="utf-8"))
    assert pruning.handle(schedule, None, env)["disabled"] is True
    assert cache.calls == []


def test_the_cli_lists_with_dry_run_then_prunes_and_prints_its_document(cache: Cache) -> None:
    from tests.integration import cli_support

    # Given an old, unlisted image and a config that deletes
    old = cache.sb.push_image(f"{cache.ns}/old", "1")
    cache.pull(old)
    cache.sb.registry.age(days=DAYS + 1)  # the command reads the real clock
    path = str(cache.write([], dry_run=False))
    options = ("--config", path, "--region", cache.sb.region, "--json")
    # When `pullthrough prune --dry-run`, Then nothing is deleted and the document lists what would go
    dry = cli_support.run("prune", "--dry-run", *options)
    document = dry.document("prune")
    assert (dry.code, document["dry_run"]) == (0, True), dry.err
    assert [item["outcome"] for item in document["report"]["items"]] == ["would_prune"]
    assert cache.digests(old) == {old.digest}
    # When `pullthrough prune`, Then it is deleted
    done = cli_support.run("prune", *options)
    assert (done.code, done.document("prune")["report"]["totals"]["bytes_freed"]) == (0, old.total_size), done.err
    assert cache.digests(old) == set()
    # And without a prune section the command says what to add
    cache.directory.joinpath("pullthrough.yaml").write_text(
        json.dumps({**json.loads(Path(path).read_text(encoding="utf-8")), "prune": None}), encoding="utf-8"
    )
    refused = cli_support.run("prune", *options)
    assert refused.code == 2
    assert "prune: {unused_for_days: 30}" in refused.err
