"""`pullthrough credentials set|check` end to end: moto's Secrets Manager and ECR, the sandbox's upstream."""

from __future__ import annotations

import io as std_io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pullthrough import cli
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
def env(aws: Aws, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    from sandbox import moto_ecr

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
    assert "staged as AWSPENDING" in text
    assert "finishSecret:" in text
    assert env.aws.value(arn) == {"username": user[0], "accessToken": user[1]}
    assert env.aws.value(arn, "AWSPREVIOUS")["accessToken"] == old_token
    assert env.aws.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=env.rule)["isValid"]
    assert user[1] not in text


def test_set_via_lambda_stages_and_starts_the_rotation_with_the_same_token(
    env: Cli, user: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an existing secret, and RotateSecret recorded instead of run (moto cannot run rotation functions)
    arn = env.aws.create_secret(env.secret, {"username": user[0], "accessToken": user[1]})
    started: list[dict[str, Any]] = []
    from pullthrough.aws import secrets

    monkeypatch.setattr(secrets, "start_rotation", lambda secret_id, **kw: started.append({"id": secret_id, **kw}))
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pullthrough-RotateCredentials"
    # When set runs through the rotation function
    code, text = env.run(
        "credentials", "set", env.rule, "--via", "lambda", "--rotation-function", function, stdin=user[1]
    )
    # Then the value is AWSPENDING on the version the rotation was started for, and AWSCURRENT is untouched
    assert code == 0, text
    [call] = started
    assert call["lambda_arn"] == function
    pending = env.aws.secrets.get_secret_value(SecretId=arn, VersionStage="AWSPENDING")
    assert pending["VersionId"] == call["token"]
    assert "rotation started" in text


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
