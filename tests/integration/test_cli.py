"""`pullthrough credentials set|check` end to end: moto's Secrets Manager and ECR, the sandbox's upstream."""

from __future__ import annotations

import io as std_io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pullthrough import cli
from sandbox.stack import Stack
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

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass
class Cli:
    aws: Aws
    sandbox: Sandbox
    config: Path
    rule: str
    secret: str

    def run(self, *args: str, stdin: str = "") -> tuple[int, str]:
        io = cli.Io(stdin=std_io.StringIO(stdin), stdout=std_io.StringIO(), stderr=std_io.StringIO())
        code = cli.main([*args, "--config", str(self.config)], io)
        return code, io.stdout.getvalue() + io.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
def user(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    name, token = unique("hubuser"), new_token()
    sandbox.add_user(name, token)
    yield name, token
    sandbox.remove_user(name)


@pytest.fixture
def new_user(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    name, token = unique("hubuser2"), new_token()
    sandbox.add_user(name, token)
    yield name, token
    sandbox.remove_user(name)


@pytest.fixture
def env(aws: Aws, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    from sandbox.aws import moto_ecr

    moto_ecr.install()
    sandbox.configure_rules()
    rule = unique("hub")
    secret = f"{PREFIX}{rule}"
    document = {"version": 1, "rules": [{"prefix": rule, "upstream": "docker-hub", "credentials": secret}]}
    config = tmp_path / "pullthrough.yaml"
    config.write_text(json.dumps(document))
    for key, value in {"ACCOUNT_ID": ACCOUNT, "AWS_REGION": REGION, **sandbox.env()}.items():
        monkeypatch.setenv(key, value)
    return Cli(aws, sandbox, config, rule, secret)


def test_set_creates_a_missing_secret_after_testing_the_token(env: Cli, user: tuple[str, str]) -> None:
    # Given no secret yet and a good token on stdin
    # When it is set
    code, text = env.run(
        "credentials", "set", env.rule, "--username", user[0], "--expires", "2027-03-01", stdin=user[1]
    )
    # Then the secret holds exactly what ECR reads, with the expiry tag, and the token was never printed
    assert code == 0, text
    assert f"created secret {env.secret}" in text
    assert env.aws.value(env.secret) == {"username": user[0], "accessToken": user[1]}
    tags = {t["Key"]: t["Value"] for t in env.aws.secrets.describe_secret(SecretId=env.secret)["Tags"]}
    assert tags["pullthrough:expires"] == "2027-03-01"
    assert user[1] not in text


def test_set_refuses_a_bad_token_and_stores_nothing(env: Cli, user: tuple[str, str]) -> None:
    code, text = env.run("credentials", "set", env.rule, "--username", user[0], stdin=new_token())
    assert code == 1
    assert "INVALID" in text
    assert "nothing stored" in text
    with pytest.raises(env.aws.secrets.exceptions.ResourceNotFoundException):
        env.aws.secrets.describe_secret(SecretId=env.secret)


def test_set_on_an_existing_secret_stages_and_rotates_locally(
    env: Cli, user: tuple[str, str], sandbox: Sandbox
) -> None:
    # Given a secret with a working value and ECR's rule using it
    old_user, old_token = unique("olduser"), new_token()
    sandbox.add_user(old_user, old_token)
    arn = env.aws.create_secret(env.secret, {"username": old_user, "accessToken": old_token})
    env.aws.ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=env.rule,
        upstreamRegistryUrl="registry-1.docker.io",
        upstreamRegistry="docker-hub",
        credentialArn=arn,
    )
    # When a new token (of another user) is set, the secret having no rotation function
    code, text = env.run("credentials", "set", env.rule, "--username", user[0], stdin=user[1] + "\n")
    sandbox.remove_user(old_user)
    # Then it went through the four steps here and is AWSCURRENT, the old value AWSPREVIOUS
    assert code == 0, text
    assert "staged under PULLTHROUGH_CANDIDATE" in text
    assert "finishSecret:" in text
    assert env.aws.value(arn) == {"username": user[0], "accessToken": user[1]}
    assert env.aws.value(arn, "AWSPREVIOUS")["accessToken"] == old_token
    assert env.aws.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=env.rule)["isValid"]
    assert user[1] not in text


@pytest.fixture
def stack(env: Cli, aws: Aws) -> Stack:
    """template.yaml deployed (its rotation function is then a Lambda function RotateSecret may name), the function
    pointed at this test's config and reports."""
    extra = {**env.sandbox.env(), "PULLTHROUGH_CONFIG": str(env.config), "REPORT_TOPIC_ARN": aws.topic_arn}
    return Stack(stack_name=unique("cli"), account=ACCOUNT, region=REGION, extra_env=extra).deploy()


def rotation_function(stack: Stack) -> str:
    return stack.physical["RotateCredentialsFunction.Arn"]


def existing_secret(env: Cli, sandbox: Sandbox) -> tuple[str, str, str]:
    """A secret with a working value of another user, and ECR's rule using it: (arn, old user, old token)."""
    old_user, old_token = unique("olduser"), new_token()
    sandbox.add_user(old_user, old_token)
    arn = env.aws.create_secret(env.secret, {"username": old_user, "accessToken": old_token})
    env.aws.ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=env.rule,
        upstreamRegistryUrl="registry-1.docker.io",
        upstreamRegistry="docker-hub",
        credentialArn=arn,
    )
    return arn, old_user, old_token


def test_set_on_an_existing_secret_rotates_through_the_function_under_awss_rule(
    env: Cli, user: tuple[str, str], sandbox: Sandbox, stack: Stack
) -> None:
    # Given a secret with a working value (RotateSecret refuses while AWSPENDING is on another version than AWSCURRENT)
    arn, _, old_token = existing_secret(env, sandbox)

    # When a new token is set through the rotation function, and Secrets Manager runs the rotation it started
    code, text = env.run(
        "credentials", "set", env.rule, "--username", user[0], "--rotation-function", rotation_function(stack),
        stdin=user[1],
    )  # fmt: skip
    outcomes = stack.rotate()

    # Then the value was staged under Pullthrough's label, RotateSecret accepted it, and the four steps promoted it
    assert code == 0, text
    assert "staged under PULLTHROUGH_CANDIDATE" in text
    assert "rotation started" in text
    assert [(o.step, o.ok) for o in outcomes] == [(step, True) for step in STEPS]
    assert [o.result["action"] for o in outcomes] == ["copied", "nothing_to_set", "tested", "promoted"]
    assert env.aws.value(arn) == {"username": user[0], "accessToken": user[1]}
    assert env.aws.value(arn, "AWSPREVIOUS")["accessToken"] == old_token
    # And the staging label is gone: nothing is left for a later rotation to promote again
    assert not any("PULLTHROUGH_CANDIDATE" in stages for stages in env.aws.stages(arn).values())
    assert user[1] not in text


def test_set_after_a_refused_rotation_ends_it_and_rotates_again(
    env: Cli, user: tuple[str, str], sandbox: Sandbox, stack: Stack
) -> None:
    # Given a rotation that failed: a bad candidate staged by a pipeline, refused at testSecret, AWSPENDING left on
    # its version (Secrets Manager leaves it there; RotateSecret then refuses)
    arn, _, old_token = existing_secret(env, sandbox)
    env.aws.secrets.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({"username": user[0], "accessToken": new_token()}),
        VersionStages=["PULLTHROUGH_CANDIDATE"],
    )
    env.aws.secrets.rotate_secret(SecretId=arn, RotationLambdaARN=rotation_function(stack))
    refused = stack.rotate()
    assert [(o.step, o.ok) for o in refused][-1] == ("testSecret", False)
    with pytest.raises(env.aws.secrets.exceptions.InvalidRequestException):
        env.aws.secrets.rotate_secret(SecretId=arn)
    stack.rotate()  # the refused rotation, reattempted as the refusal says: refused again
    assert env.aws.value(arn)["accessToken"] == old_token

    # When a good token is set
    code, text = env.run("credentials", "set", env.rule, "--username", user[0], stdin=user[1])
    outcomes = stack.rotate()

    # Then the unfinished rotation was ended, the new one went through, and the good token is current
    assert code == 0, text
    assert "a previous rotation did not finish" in text
    assert [o.step for o in outcomes if o.ok] == list(STEPS)
    assert env.aws.value(arn) == {"username": user[0], "accessToken": user[1]}


def test_a_scheduled_rotation_promotes_what_was_staged_since_the_last_one(
    env: Cli, user: tuple[str, str], new_user: tuple[str, str], sandbox: Sandbox, stack: Stack
) -> None:
    # Given a secret rotated once through its function (which stays attached, as a schedule needs)
    arn, _, _ = existing_secret(env, sandbox)
    env.run(
        "credentials", "set", env.rule, "--username", user[0], "--rotation-function", rotation_function(stack),
        stdin=user[1],
    )  # fmt: skip
    stack.rotate()

    # When another token is staged only, and the schedule's RotateSecret comes
    code, text = env.run("credentials", "set", env.rule, "--username", new_user[0], "--stage-only", stdin=new_user[1])
    assert code == 0, text
    assert env.aws.value(arn)["accessToken"] == user[1]
    env.aws.secrets.rotate_secret(SecretId=arn)  # what Secrets Manager's schedule does: no token, no function named
    outcomes = stack.rotate()

    # Then the staged token was copied, tested and promoted, and nothing is left staged
    assert [o.result["action"] for o in outcomes if o.ok] == ["copied", "nothing_to_set", "tested", "promoted"]
    assert env.aws.value(arn) == {"username": new_user[0], "accessToken": new_user[1]}
    assert not any("PULLTHROUGH_CANDIDATE" in stages for stages in env.aws.stages(arn).values())


def test_stage_only_leaves_the_value_for_the_scheduled_rotation(
    env: Cli, user: tuple[str, str], sandbox: Sandbox, stack: Stack
) -> None:
    # Given a secret whose rotation function is attached, with a schedule (a rotation already done)
    arn, _, old_token = existing_secret(env, sandbox)
    env.aws.secrets.rotate_secret(
        SecretId=arn, RotationLambdaARN=rotation_function(stack), RotationRules={"AutomaticallyAfterDays": 30}
    )
    stack.rotate()  # nothing staged yet: refused at createSecret, AWSCURRENT untouched
    assert env.aws.value(arn)["accessToken"] == old_token

    # When a token is staged only, and the schedule comes round (Secrets Manager reattempts the unfinished rotation)
    code, text = env.run("credentials", "set", env.rule, "--username", user[0], "--stage-only", stdin=user[1])
    assert code == 0, text
    assert env.aws.value(arn)["accessToken"] == old_token  # staging changes nothing current
    with pytest.raises(env.aws.secrets.exceptions.InvalidRequestException):
        env.aws.secrets.rotate_secret(SecretId=arn)  # the schedule's RotateSecret: the unfinished one is reattempted
    outcomes = stack.rotate()

    # Then the reattempted rotation copied the staged value, tested it and promoted it
    assert [o.result["action"] for o in outcomes if o.ok] == ["copied", "nothing_to_set", "tested", "promoted"]
    assert env.aws.value(arn) == {"username": user[0], "accessToken": user[1]}


def test_check_prints_validity_and_budget(env: Cli, user: tuple[str, str]) -> None:
    # Given a good secret
    env.aws.create_secret(env.secret, {"username": user[0], "accessToken": user[1]})
    # When checked
    code, text = env.run("credentials", "check")
    # Then it is valid with the remaining pulls
    assert code == 0
    assert f"{env.rule}: valid (" in text
    assert "pulls left per 6h" in text


def test_check_fails_on_an_invalid_secret(env: Cli) -> None:
    env.aws.create_secret(env.secret, {"username": "nobody", "accessToken": new_token()})
    code, text = env.run("credentials", "check", env.rule)
    assert code == 1
    assert f"{env.rule}: INVALID" in text
    assert "fix: create a new access token on Docker Hub" in text
