"""Every field of the config is used: a field that is validated and echoed but read by nothing is a promise broken.

(`warm.schedule` was once such a field: validated, shown by --check, and never deployed.) Each config model's field
reads are recorded while the library's consumers of the config run on a document that sets every field: the facts
the template is deployed with, the desired rules and templates, the secrets' rotation settings, the warm targets and
their tags, the warm budget, and the report settings. A field none of them reads fails, unless it is listed below
with the reason nothing needs to read it. `explain()` is not a consumer: echoing a field is not using it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pullthrough import config as config_module
from pullthrough import facts, prune, rules, sources
from pullthrough.credentials.usage import secret_use
from pullthrough.env import Settings
from pullthrough.org.expected import expected as org_expected
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind
from pullthrough.warm import planner
from pullthrough.warm import run as warm_run

# Fields no consumer needs to read, each with its reason.
VALIDATED_ONLY = {
    ("Config", "version"): "the format's version: validation refuses any other, so there is nothing left to decide",
    ("EcsSource", "family_prefix"): "read by the ecs reader at plan time, which lands on branch issue16-ecs",
    ("EcsSource", "name"): "the ecs reader's attribution (its label), which lands on branch issue16-ecs",
    **{
        (model, "kind"): "the discriminator: validation picks the model by it, and readers dispatch on the model"
        for model in ("ComposeSource", "KubernetesSource", "TextSource", "EcsSource")
    },
}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"

KEY = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"
EVERY_FIELD = f"""
version: 1
stack: prod
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials:
      secret: ecr-pullthroughcache/docker-hub
      rotation: docker-hub-api
      admin_secret: pullthrough/docker-hub-admin
      organization: acmeorg
      expires: 2027-05-01
      warn_days: 10
    template:
      applied_for: [PULL_THROUGH_CACHE, REPLICATION]
      role: create
      tag_mutability: IMMUTABLE_WITH_EXCLUSION
      mutability_exclusions: [latest]
      encryption: {{type: KMS, key: "{KEY}"}}
      lifecycle: {{keep_last_tags: 5, expire_untagged_days: 3}}
      repository_policy: {{Statement: [{{Effect: Allow, Principal: "*", Action: "ecr:BatchGetImage"}}]}}
      tags: {{team: platform}}
      description: cached
  - prefix: ghcr
    upstream: github-container-registry
    credentials: ecr-pullthroughcache/ghcr
  - prefix: quay
    upstream: quay
  - prefix: shared
    upstream: ecr
    url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com
    custom_role_arn: arn:aws:iam::444455556666:role/ptc
    upstream_prefix: team-a
    allow_replace: true
    template:
      custom_role_arn: arn:aws:iam::444455556666:role/template
      tags: {{team: a}}
warm:
  schedule: rate(1 day)
  platforms: [linux/amd64]
  budget_share: 0.25
  images:
    - image: nginx
      tags: ["1.27"]
      tag_pattern: '^1\\.\\d+$'
      latest: 2
      platforms: [linux/arm64]
      rule: docker-hub
    - alpine:3.20  # warm.platforms
  imports: {{poll: 30 seconds, download_after: 10 minutes, give_up_after: 1 hour, download: false}}
  sources:
    - kind: compose
      name: olake
      files: [olake/docker-compose.yml]
      env_file: olake/.env
      profiles: [connectors]
      variables: {{OLAKE_UI_VERSION: v0.2.3}}
    - {{kind: kubernetes, name: exporter, files: [helm/prometheus-node-exporter-4.39.0.yaml]}}
    - {{kind: text, name: extra, files: [images.txt]}}
    - {{kind: ecs, name: tasks, family_prefix: olake-}}
notifications:
  success: full
  subject_prefix: "[ACME]"
organization:
  id: o-a1b2c3d4e5
  paths: [o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/]
  hub: {{account: "111122223333", region: us-east-1}}
  cache: [docker-hub]
  members:
    - name: prod-eu
      organizational_units: [ou-ab12-11111111]
      accounts: ["444455556666"]
      regions: [eu-west-1]
      warm: [nginx:1.27]
prune:
  schedule: rate(2 days)
  unused_for_days: 30
  dry_run: false
  max_deletions: 10
  keep: [nginx:1.25]
"""


def models(root: type[BaseModel] = config_module.Config) -> dict[str, type[BaseModel]]:
    """Every config model reachable from Config, by name."""
    found: dict[str, type[BaseModel]] = {}
    pending = [root]
    while pending:
        model = pending.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for field in model.model_fields.values():
            pending.extend(_models_in(field.annotation))
    return found


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_in(argument)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """(model, field) of every field read from a config model instance while the fixture is active."""
    seen: set[tuple[str, str]] = set()
    for name, model in models().items():
        fields = frozenset(model.model_fields)

        def getattribute(self: Any, attribute: str, _name: str = name, _fields: frozenset[str] = fields) -> Any:
            if attribute in _fields:
                seen.add((_name, attribute))
            return object.__getattribute__(self, attribute)

        monkeypatch.setattr(model, "__getattribute__", getattribute)
    return seen


class _EmptyRegistry:
    """An ECR with no repositories: prune reads its settings, finds nothing to delete."""

    def repositories(self, prefixes: Any) -> list[str]:
        return []

    def images(self, repository: str) -> list[Any]:
        return []

    def manifests(self, repository: str, digests: Any) -> dict[str, Any]:
        return {}

    def delete(self, repository: str, digests: Any) -> Any:
        raise AssertionError("nothing to delete")


def consume(config: config_module.Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run what the library does with a config, without AWS or upstreams (the report's SNS call is caught)."""
    facts.derive(config)
    rules.desired_rules(config, {"ecr-pullthroughcache/docker-hub": None}, "arn:aws:iam::111122223333:role/r")
    secret_use("ecr-pullthroughcache/docker-hub", config, {})
    for target in config.targets(sources.read(config)):
        planner.select_tags(target.image, ["1.26", "1.27", "2.0"])
    without_images = config.model_copy(update={"warm": config.warm.model_copy(update={"images": (), "sources": ()})})
    planner.Planner(without_images, ecr=None, upstream_for=lambda rule: None).plan(  # type: ignore[arg-type]
        planner.WarmRequest(trigger="test"), "run-1"
    )
    # Without the sources (their ecs one stops a prune run before it reads anything: pullthrough/prune/keeping.py)
    prune.run(
        config.model_copy(update={"warm": config.warm.model_copy(update={"sources": ()})}),
        _EmptyRegistry(),
        prune.RunInfo(datetime.now(UTC), "run-1", "test", Settings().region, "111122223333"),  # type: ignore[call-arg]
    )
    # The organisation: what members get, what the hub's policy allows, whom the hub waits for (pullthrough/org/)
    assert config.organization is not None
    config.organization.member_rules(config)
    config.organization.registry_policy_statements(config)
    org_expected(config, list, "pullthrough-members-prod")
    from pullthrough.aws import sns

    monkeypatch.setattr(sns, "publish", lambda report, topic, **options: "message-1")
    report = Report(
        kind=Kind.WARM,
        stack=config.stack,
        region="us-east-1",
        account="111122223333",
        run_id="run-1",
        trigger="test",
        started=datetime.now(UTC),
    )
    warm_run.publish(report, config.notifications, Settings(REPORT_TOPIC_ARN="arn:aws:sns:us-east-1:111122223333:t"))  # type: ignore[call-arg]


def test_every_config_field_is_read_by_something(reads: set[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a config that sets every field (parsed before the reads are recorded), beside the source fixtures
    monkeypatch.chdir(FIXTURES)
    reads_before = set(reads)
    config = config_module.parse(EVERY_FIELD)
    reads.clear()
    assert reads_before == set()

    # When the library's consumers of the config run
    consume(config, monkeypatch)

    # Then every field of every model was read, or is listed with its reason
    every = {(name, field) for name, model in models().items() for field in model.model_fields}
    unused = every - reads - set(VALIDATED_ONLY)
    assert not unused, f"validated but used by nothing: {sorted(unused)} (use them, or list them with a reason)"
    # And a listed field really is unread (else it leaves the list)
    assert not set(VALIDATED_ONLY) & reads, "now read: remove from VALIDATED_ONLY"


def test_the_recorder_sees_a_field_nobody_reads() -> None:
    # Given the recorder's model walk, Then it reaches every model of the config (a field of a model it missed could
    # never fail the test above)
    assert set(models()) == {
        "Config",
        "Rule",
        "RuleCredentials",
        "Template",
        "Encryption",
        "Lifecycle",
        "Warm",
        "WarmImage",
        "Imports",
        "Notifications",
        "Prune",
        "ComposeSource",
        "KubernetesSource",
        "TextSource",
        "EcsSource",
        "Organization",
        "Hub",
        "Member",
    }
