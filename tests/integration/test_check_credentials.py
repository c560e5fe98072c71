"""check_credentials (functions/check_credentials, pullthrough/credentials/handler.py) on moto and the sandbox upstream.

Each test feeds one of the sample events in events/check_credentials/ (the shapes EventBridge delivers), pointed at
a secret of its own, and reads the report from the SNS topic through a subscribed queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pullthrough.credentials import handler as check_handler
from pullthrough.credentials.handler import CheckResult
from pullthrough.credentials.usage import EXPIRES_TAG
from pullthrough.env import CheckEnv
from pullthrough.errors import EventError
from pullthrough.reporting.model import Report
from sandbox import lambdas
from tests.integration.credentials_support import (
    ACCOUNT,
    PREFIX,
    REGION,
    Aws,
    aws,
    aws_env,
    new_token,
    unique,
)

if TYPE_CHECKING:
    from sandbox import Sandbox

__all__ = ["aws", "aws_env"]

pytestmark = pytest.mark.sandbox

TODAY = date(2026, 11, 23)
CONTEXT = lambdas.LambdaContext(function_name="pullthrough-check_credentials")


def handle(event: dict[str, Any], env: CheckEnv) -> CheckResult:
    """The function's handle, its JSON answer read back as the result it is."""
    return CheckResult.model_validate(check_handler.handle(event, CONTEXT, env))


@dataclass
class World:
    aws: Aws
    sandbox: Sandbox
    settings: CheckEnv
    secret: str
    arn: str
    rule: str
    user: str
    token: str

    def event(self, sample: str, secret: str | None = None) -> dict[str, Any]:
        """A sample event with its secret id replaced by this world's secret (by name or ARN, as the sample has)."""
        event = lambdas.sample_event("check_credentials", sample)
        detail = event.get("detail") or {}
        for part in ("requestParameters", "additionalEventData", "responseElements"):
            if isinstance(detail.get(part), dict):
                for key, value in detail[part].items():
                    if isinstance(value, str) and value.startswith("arn:aws:secretsmanager"):
                        detail[part][key] = secret or self.arn
                    elif isinstance(value, str) and value.startswith(PREFIX):
                        detail[part][key] = secret or self.secret
        return event

    def check(self, sample: str) -> CheckResult:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(check_handler, "today", lambda: TODAY)
            return handle(self.event(sample), self.settings)

    def reports(self) -> list[str]:
        return [m["Body"] for m in self.aws.reports()]


def make_world(aws: Aws, sandbox: Sandbox, tmp_path: Path, **credentials_fields: Any) -> Iterator[World]:
    from sandbox.aws import moto_ecr

    moto_ecr.install()
    sandbox.configure_rules()
    rule = unique("hub")
    secret = f"{PREFIX}{rule}"
    user, token = unique("hubuser"), new_token()
    sandbox.add_user(user, token)
    arn = aws.create_secret(secret, {"username": user, "accessToken": token})
    aws.ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=rule,
        upstreamRegistryUrl="registry-1.docker.io",
        upstreamRegistry="docker-hub",
        credentialArn=arn,
    )
    config = {
        "version": 1,
        "stack": "check-test",
        "rules": [{"prefix": rule, "upstream": "docker-hub", "credentials": {"secret": secret, **credentials_fields}}],
        "notifications": {"success": "summary"},
    }
    (tmp_path / "pullthrough.yaml").write_text(json.dumps(config))
    settings = CheckEnv.from_env(
        {
            "AWS_REGION": REGION,
            "ACCOUNT_ID": ACCOUNT,
            "STACK_NAME": "pullthrough-test",
            "REPORT_TOPIC_ARN": aws.topic_arn,
            "PULLTHROUGH_CONFIG": str(tmp_path / "pullthrough.yaml"),
            **sandbox.env(),
        }
    )
    try:
        yield World(aws, sandbox, settings, secret, arn, rule, user, token)
    finally:
        sandbox.remove_user(user)


@pytest.fixture
def world(aws: Aws, sandbox: Sandbox, tmp_path: Path) -> Iterator[World]:
    yield from make_world(aws, sandbox, tmp_path)


# --- events -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["put_secret_value", "update_secret"])
def test_change_to_a_good_secret_is_one_ok_line(world: World, sample: str) -> None:
    # Given a secret whose current value the upstream accepts
    # When a CloudTrail API call on it arrives
    result = world.check(sample)
    # Then the value and ECR's rule are valid, and the report is a single line naming the trigger
    assert result.status == "OK"
    assert result.counts == {"valid": 2}
    assert result.secrets == (world.secret,)
    [body] = world.reports()
    assert "\n" not in body
    assert body.startswith("OK pullthrough credentials check-test/us-east-1: 2 valid")  # the config's stack label


def test_change_to_a_broken_token_is_loud(world: World) -> None:
    # Given someone put a token the upstream does not know as AWSCURRENT
    wrong = new_token()
    world.aws.secrets.put_secret_value(
        SecretId=world.arn, SecretString=json.dumps({"username": world.user, "accessToken": wrong})
    )
    # When the PutSecretValue event arrives
    result = world.check("put_secret_value")
    # Then the report fails loudly: the value is invalid upstream and ECR's rule cannot pull
    assert result.status == "FAILED"
    [body] = world.reports()
    report = Report.from_message(body)
    outcomes = {item.subject: item.outcome.value for item in report.items}
    assert outcomes == {f"secret {world.secret} (AWSCURRENT)": "invalid", f"rule {world.rule}": "invalid"}
    assert "PutSecretValue by arn:aws:sts::123456789012:assumed-role/PlatformOps/alice" in report.trigger
    assert "incorrect username or password" in body
    assert "Fix: create a new access token on Docker Hub" in body
    assert wrong not in body


def test_a_secret_with_its_fields_swapped_is_loud_and_names_neither_value(world: World) -> None:
    # Given the token pasted as the username and the user name as the token (a common paste accident)
    world.aws.secrets.put_secret_value(
        SecretId=world.arn, SecretString=json.dumps({"username": world.token, "accessToken": world.user})
    )
    # When the PutSecretValue event arrives
    result = world.check("put_secret_value")
    # Then the report fails loudly with the fix, and neither the token nor the name is in it (nor in any log line:
    # the canary watches the token; it is the sandbox user's)
    assert result.status == "FAILED"
    [body] = world.reports()
    assert "the value of 'username' looks like an access token" in body
    assert world.token not in body
    assert f"'{world.user}'" not in body


def test_malformed_current_value_is_loud(world: World) -> None:
    world.aws.secrets.put_secret_value(SecretId=world.arn, SecretString="dckr_pat_pasted-without-json")
    result = world.check("update_secret")
    assert result.status == "FAILED"
    body = world.reports()[0]
    assert "its value is not JSON" in body
    assert "dckr_pat_pasted" not in body


def test_rotation_failed_is_reported_with_the_current_value_still_valid(world: World) -> None:
    # Given Secrets Manager reports a failed rotation
    # When the service event arrives
    result = world.check("rotation_failed")
    # Then the report fails, saying the rotation failed and that AWSCURRENT still works
    assert result.status == "FAILED"
    report = Report.from_message(world.reports()[0])
    assert [i.outcome.value for i in report.items] == ["rotation_failed", "valid", "valid"]
    assert report.trigger.startswith("RotationFailed by secretsmanager.amazonaws.com")


def test_rotation_succeeded_is_one_ok_line(world: World) -> None:
    result = world.check("rotation_succeeded")
    assert result.status == "OK"
    assert len(world.reports()) == 1


def test_failed_api_call_and_other_secrets_are_ignored(world: World) -> None:
    # Given a PutSecretValue that failed, and one on a secret outside ecr-pullthroughcache/
    failed = world.event("put_secret_value")
    failed["detail"]["errorCode"] = "AccessDeniedException"
    other = world.event("put_secret_value", secret="team/database-password")
    # When they arrive
    results = [handle(e, world.settings) for e in (failed, other)]
    # Then nothing is checked or reported, and each says why
    assert [r.ignored is not None for r in results] == [True, True]
    assert "AccessDeniedException" in (results[0].ignored or "")
    assert world.reports() == []


def test_value_staged_at_awspending_is_left_to_the_rotation(world: World) -> None:
    # Given a PutSecretValue that staged a value at AWSPENDING (the CLI or the rotation's createSecret)
    event = world.event("put_secret_value")
    event["detail"]["requestParameters"]["versionStages"] = ["AWSPENDING"]
    # When it arrives
    result = handle(event, world.settings)
    # Then nothing live changed, so nothing is checked: the rotation's testSecret proves the value
    assert result.ignored is not None
    assert "staged at AWSPENDING" in result.ignored
    assert world.reports() == []


def test_unexpected_event_is_an_event_error(world: World) -> None:
    with pytest.raises(EventError, match="detail-type 'Object Created'"):
        handle({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}, world.settings)


# --- schedule and expiry ----------------------------------------------------------------------------------------------


@pytest.fixture
def expiring(aws: Aws, sandbox: Sandbox, tmp_path: Path) -> Iterator[World]:
    yield from make_world(aws, sandbox, tmp_path, expires=(TODAY + timedelta(days=5)).isoformat(), warn_days=14)


def test_schedule_warns_before_the_token_expires(expiring: World) -> None:
    # Given a token the config says expires in 5 days (warn 14 days ahead)
    # When the daily schedule runs
    result = expiring.check("scheduled")
    # Then every configured secret was checked, and the report warns with the date and the fix
    assert expiring.secret in result.secrets
    assert result.status == "WARNING"
    body = expiring.reports()[0]
    assert "the token expires in 5 day(s), on 2026-11-28" in body
    assert f"pullthrough credentials set {expiring.rule}" in body


def test_expiry_tag_from_rotation_wins_over_the_config(expiring: World) -> None:
    # Given a rotation recorded a later expiry on the secret
    expiring.aws.secrets.tag_resource(SecretId=expiring.arn, Tags=[{"Key": EXPIRES_TAG, "Value": "2027-06-01"}])
    # When the schedule runs
    result = expiring.check("scheduled")
    # Then there is nothing to warn about
    assert result.status == "OK"


def test_handler_answers_the_sample_schedule(world: World) -> None:
    # Given the handler's environment pointing at this world
    with pytest.MonkeyPatch.context() as patch:
        for key, value in world.settings.model_dump(by_alias=True).items():
            if value is not None:
                patch.setenv(key, value if isinstance(value, str) else json.dumps(value))
        # When the Lambda handler gets the scheduled sample event
        answer = lambdas.invoke("check_credentials", lambdas.sample_event("check_credentials", "scheduled"))
    # Then it checked the configured secret and returned the verdict as JSON
    assert world.secret in answer["secrets"]
    assert answer["status"] in ("OK", "WARNING", "FAILED")
    assert answer["run_id"].startswith("credentials-")
