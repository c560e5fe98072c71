"""AWS's own sample events (tests/aws_samples/, each with its source) against the template's rules and the handlers.

The patterns are matched with the sandbox's EventBridge matcher as template.yaml declares them for a deployed stack,
both ways: the sample placed in this stack's account, naming this stack or one of its secrets, is routed where AWS
would deliver it; the sample as published (another account, another stack, another secret) reaches nothing. Then each
is delivered through `Stack` to its handler, which must take it (a refusal for what the event says is fine; a
rejection as malformed is not).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from pullthrough.credentials.rotation import RotationError
from pullthrough.errors import EventError
from sandbox import Sandbox
from sandbox.aws import moto_ecr
from sandbox.stack import Stack
from tests.fake_aws import fake_aws

pytestmark = pytest.mark.sandbox

SAMPLES = Path(__file__).resolve().parents[1] / "aws_samples"
PREFIX = "samples-hub"


def sample(name: str) -> dict[str, Any]:
    """A sample as AWS published it, without this project's `_source` / `_completed` notes."""
    document: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return {key: value for key, value in document.items() if not key.startswith("_")}


@dataclass
class Deployed:
    stack: Stack
    secret_arn: str

    def routes(self, event: dict[str, Any]) -> list[tuple[str, str]]:
        return [(route.function, route.name) for route in self.stack.targets(event)]

    def placed(self, event: dict[str, Any]) -> dict[str, Any]:
        """The sample in this stack's account and region."""
        placed = copy.deepcopy(event)
        placed.update(account=self.stack.account, region=self.stack.region)
        return placed


@pytest.fixture(scope="module")
def deployed(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    with fake_aws(sandbox.region, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"):
        moto_ecr.install()
        sandbox.configure_rules()
        user, token = next(iter(sandbox.users.items()))
        secret_arn = boto3.client("secretsmanager").create_secret(
            Name=f"ecr-pullthroughcache/{PREFIX}", SecretString=json.dumps({"username": user, "accessToken": token})
        )["ARN"]
        config = tmp_path_factory.mktemp("samples") / "pullthrough.yaml"
        rule = {"prefix": PREFIX, "upstream": "docker-hub", "credentials": f"ecr-pullthroughcache/{PREFIX}"}
        config.write_text(yaml.safe_dump({"version": 1, "stack": "samples", "rules": [rule]}), encoding="utf-8")
        stack = Stack(
            stack_name="pullthrough-samples",
            account=sandbox.account,
            region=sandbox.region,
            extra_env={**sandbox.env(), "PULLTHROUGH_CONFIG": str(config)},
        ).deploy()
        yield Deployed(stack, secret_arn)


def test_each_sample_names_its_aws_source() -> None:
    for path in sorted(SAMPLES.glob("*.json")):
        source = json.loads(path.read_text(encoding="utf-8")).get("_source", "")
        assert source.startswith("https://"), path.name


# --- the template's rules ----------------------------------------------------------------------------------------


def test_a_deploy_of_this_stack_reaches_reconcile_rules_and_no_other_does(deployed: Deployed) -> None:
    # Given CloudFormation's sample, Then as published (another stack) it reaches nothing
    published = sample("cloudformation_stack_status_change")
    assert deployed.routes(published) == []
    # When it names this stack, Then the Deployed rule takes it, for CREATE_COMPLETE and UPDATE_COMPLETE only
    event = deployed.placed(published)
    event["resources"] = [deployed.stack.stack_id]
    event["detail"]["stack-id"] = deployed.stack.stack_id
    assert deployed.routes(event) == [("ReconcileRulesFunction", "Deployed")]
    for status, routed in (("UPDATE_COMPLETE", True), ("CREATE_IN_PROGRESS", False), ("ROLLBACK_COMPLETE", False)):
        event["detail"]["status-details"]["status"] = status
        assert bool(deployed.routes(event)) is routed, status


def test_a_rotation_of_one_of_its_secrets_reaches_check_credentials_and_no_other_does(deployed: Deployed) -> None:
    # Given the RotationSucceeded sample, Then as published (a secret outside the prefix) it reaches nothing
    published = sample("secretsmanager_rotation_succeeded")
    assert deployed.routes(published) == []
    # When it names a secret under ecr-pullthroughcache/ of this account and region, Then RotationOutcome takes it
    event = deployed.placed(published)
    event["detail"]["additionalEventData"]["SecretId"] = deployed.secret_arn
    assert deployed.routes(event) == [("CheckCredentialsFunction", "RotationOutcome")]
    # And an API call's detail-type with the same detail is not that rule's (the pattern names the service event)
    assert deployed.routes({**event, "detail-type": "AWS API Call via CloudTrail"}) == []


def test_an_ecr_push_event_reaches_nothing(deployed: Deployed) -> None:
    assert deployed.routes(deployed.placed(sample("ecr_image_action"))) == []


# --- the handlers ------------------------------------------------------------------------------------------------


def test_reconcile_rules_takes_the_deploy_sample(deployed: Deployed) -> None:
    event = deployed.placed(sample("cloudformation_stack_status_change"))
    event["detail"]["stack-id"] = deployed.stack.stack_id
    (result,) = deployed.stack.put_event(event)
    assert result["status"] != "REJECTED", result
    assert any(PREFIX in line for line in result["items"])


def test_check_credentials_takes_the_rotation_outcome_sample(deployed: Deployed) -> None:
    event = deployed.placed(sample("secretsmanager_rotation_succeeded"))
    event["detail"]["additionalEventData"]["SecretId"] = deployed.secret_arn
    (result,) = deployed.stack.put_event(event)
    assert result["status"] != "REJECTED", result
    assert f"ecr-pullthroughcache/{PREFIX}" in json.dumps(result)


def test_rotate_credentials_takes_the_rotation_step_sample(deployed: Deployed) -> None:
    # Given the rotation event as published (a secret named `id`, outside ecr-pullthroughcache/)
    # When the rotation function gets it, Then it is read as a step and refused for its secret, not as malformed
    with pytest.raises(RotationError) as refused:
        deployed.stack.invoke("RotateCredentialsFunction", sample("secretsmanager_rotation_event"))
    assert not isinstance(refused.value, EventError)
    assert refused.value.code == "wrong_prefix"
