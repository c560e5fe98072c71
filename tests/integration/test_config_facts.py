"""One source of truth: the deployed stack takes what it needs from config/pullthrough.yaml (ConfigFacts).

template.yaml is deployed into moto by `sandbox.stack.Stack`, which sends the ConfigFacts custom resource
CloudFormation's Create (and, after a config edit, Update) request and resolves `!GetAtt ConfigFacts.<name>` from
the answer config_facts PUTs to its ResponseURL. A config edit followed by `update()` is `sam build && sam deploy`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.aws.cloudformation import DeployFailed
from sandbox.stack import CONFIG_SOURCE, Stack
from tests.fake_aws import fake_aws

REGION = "us-east-1"


def config(prefixes: list[str], schedule: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"prefix": prefix, "upstream": "docker-hub", "credentials": f"ecr-pullthroughcache/{prefix}"}
        for prefix in prefixes[:1]
    ]
    rules += [{"prefix": prefix, "upstream": "quay"} for prefix in prefixes[1:]]
    return {"version": 1, "rules": rules, "warm": {"schedule": schedule}}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "pullthrough.yaml"
    path.write_text(yaml.safe_dump(config(["hub", "quay"], "rate(6 hours)")))
    return path


@pytest.fixture
def stack(config_file: Path) -> Iterator[Stack]:
    with fake_aws(REGION, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
        yield Stack(extra_env={"PULLTHROUGH_CONFIG": str(config_file)}).deploy()


def resources(stack: Stack, function: str, sid: str) -> list[str]:
    """A statement's Resource of a function's role, as the deployed stack resolves it."""
    properties = stack.template["Resources"][function]["Properties"]
    statements = [s for policy in properties["Policies"] for s in policy["Statement"]]
    (statement,) = [s for s in statements if s.get("Sid") == sid]
    resolved = stack.resolve(statement["Resource"])
    return resolved if isinstance(resolved, list) else [resolved]


def test_the_deployed_iam_scope_and_schedule_come_from_the_config(stack: Stack) -> None:
    # Given the stack deployed with a config of two rules and a six-hourly warm schedule
    # Then every repository statement names those rules' repositories, the secret statements their secret, and
    # plan_warming's schedule is the config's
    expected = ["arn:*:ecr:*:*:repository/hub/*", "arn:*:ecr:*:*:repository/quay/*"]
    assert resources(stack, "WarmImagesFunction", "PullThroughCacheRepositories") == expected
    assert resources(stack, "PlanWarmingFunction", "ReadCacheRepositories") == expected
    assert resources(stack, "ReconcileRulesFunction", "CreateCacheRepositoriesFromTemplates") == expected
    assert resources(stack, "WarmImagesFunction", "ReadUpstreamCredentials") == [
        "arn:*:secretsmanager:*:*:secret:ecr-pullthroughcache/hub-??????"
    ]
    assert stack.schedule_expression("PlanWarmingFunction") == "rate(6 hours)"


def test_an_edited_config_is_deployed_by_the_next_deploy(stack: Stack, config_file: Path) -> None:
    # Given the deployed stack, When the config gains a rule and another schedule and the stack is deployed again
    config_file.write_text(yaml.safe_dump(config(["hub", "quay", "team/extra"], "cron(0 3 * * ? *)")))
    updated = stack.update()

    # Then CloudFormation sent ConfigFacts an Update (the config layer has a new version)
    assert updated == ["ConfigFacts"]
    # And the functions may now reach the new rule's repositories, and plan_warming runs on the new schedule
    assert "arn:*:ecr:*:*:repository/team/extra/*" in resources(
        stack, "WarmImagesFunction", "PullThroughCacheRepositories"
    )
    assert "arn:*:ecr:*:*:repository/team/extra/*" in resources(stack, "PlanWarmingFunction", "ReadCacheRepositories")
    assert stack.schedule_expression("PlanWarmingFunction") == "cron(0 3 * * ? *)"


def test_an_unchanged_config_sends_no_request(stack: Stack) -> None:
    # Given the deployed stack, When it is deployed again with the same config, Then ConfigFacts is not asked again
    before = list(stack.invocations)
    assert stack.update() == []
    assert stack.invocations == before


def test_a_broken_config_fails_the_deploy_saying_why_and_keeps_what_was_deployed(
    stack: Stack, config_file: Path
) -> None:
    # Given the deployed stack, When the config is edited into one that does not validate and deployed
    config_file.write_text(yaml.safe_dump({**config(["hub"], "rate(6 hours)"), "warm": {"schedule": "every day"}}))
    with pytest.raises(DeployFailed) as failed:
        stack.update()

    # Then the deploy fails with the config's problem as the reason, naming the field, the value and the fix
    assert "warm.schedule" in str(failed.value)
    assert "every day" in str(failed.value)
    assert "rate(6 hours)" in str(failed.value)  # the fix's example
    # And what was deployed stays (CloudFormation rolls the update back)
    assert stack.schedule_expression("PlanWarmingFunction") == "rate(6 hours)"


def test_without_an_override_the_stack_deploys_the_shipped_config() -> None:
    # Given the stack deployed as `sam deploy` would, with the config layer built from config/pullthrough.yaml
    with fake_aws(REGION, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
        stack = Stack().deploy()

    # Then the schedule and the repository scope are the shipped config's
    shipped = yaml.safe_load(CONFIG_SOURCE.read_text())
    assert stack.schedule_expression("PlanWarmingFunction") == shipped["warm"]["schedule"]
    scope = resources(stack, "WarmImagesFunction", "PullThroughCacheRepositories")
    assert scope == [f"arn:*:ecr:*:*:repository/{rule['prefix']}/*" for rule in shipped["rules"]]
