"""sandbox/aws/moto_secrets.py: RotateSecret and UpdateSecretVersionStage as botocore's Secrets Manager model says.

No registry and no rotation function code is needed here: the queued steps are handed to a recording stand-in for
the function, so each test shows what Secrets Manager itself does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.secretsmanager.models import secretsmanager_backends

from sandbox.aws import moto_secrets
from tests.fake_aws import fake_aws

ACCOUNT, REGION = "123456789012", "us-east-1"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotate"
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


@pytest.fixture(scope="module")
def moto_session() -> Iterator[None]:
    with fake_aws(REGION):
        moto_secrets.install()
        yield


@pytest.fixture
def client(moto_session: None) -> Any:
    secretsmanager_backends[ACCOUNT][REGION].reset()
    moto_secrets.register_functions(ACCOUNT, REGION, [FUNCTION])
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def secret(client: Any) -> str:
    arn: str = client.create_secret(Name=f"ecr-pullthroughcache/{uuid.uuid4().hex[:8]}", SecretString="v1")["ARN"]
    return arn


def stages(client: Any, arn: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return result


def run(events: list[dict[str, Any]], fail_at: str | None = None, rotation_token: str | None = None) -> list[str]:
    """Run the queued rotations with a stand-in function that records each event (and raises at `fail_at`)."""

    def invoke(arn: str, event: dict[str, Any]) -> dict[str, str]:
        assert arn == FUNCTION
        events.append(event)
        if event["Step"] == fail_at:
            raise RuntimeError(f"{fail_at} refused")
        return {"step": event["Step"]}

    outcomes = moto_secrets.run_rotations(ACCOUNT, REGION, invoke, rotation_token=rotation_token)
    return [o.step + ("" if o.ok else "!") for o in outcomes]


def error_code(call: Any) -> tuple[str, str]:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - botocore's ClientError subclasses
        call()
    response = raised.value.response  # type: ignore[attr-defined]
    return response["Error"]["Code"], response["Error"]["Message"]


def test_rotate_makes_the_pending_version_answers_its_id_and_queues_the_four_steps(client: Any, secret: str) -> None:
    token = str(uuid.uuid4())
    answer = client.rotate_secret(SecretId=secret, ClientRequestToken=token, RotationLambdaARN=FUNCTION)
    # Then the answer names the new version (moto's own answer names the current one), which carries AWSPENDING only
    assert answer["VersionId"] == token
    assert stages(client, secret)[token] == ["AWSPENDING"]
    described = client.describe_secret(SecretId=secret)
    assert (described["RotationEnabled"], described["RotationLambdaARN"]) == (True, FUNCTION)
    # And nothing runs until Secrets Manager gets to it (the rotation is asynchronous); then each step once, in order
    events: list[dict[str, Any]] = []
    assert run(events) == STEPS
    assert [(e["Step"], e["SecretId"], e["ClientRequestToken"]) for e in events] == [
        (step, secret, token) for step in STEPS
    ]
    assert all("RotationToken" not in e for e in events)


def test_awspending_on_another_version_than_awscurrent_refuses_rotate_secret(client: Any, secret: str) -> None:
    # Given a value put at AWSPENDING on a new version (what `credentials set` used to do before rotating)
    client.put_secret_value(SecretId=secret, SecretString="v2", VersionStages=["AWSPENDING"])

    # When a rotation is started, Then it is refused as botocore documents, with AWS's words
    code, message = error_code(lambda: client.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION))
    assert code == "InvalidRequestException"
    assert message == "A previous rotation isn't complete. That rotation will be reattempted."
    # And the rotation in progress is reattempted, as the message says: its steps run for the pending version
    pending = next(v for v, s in stages(client, secret).items() if "AWSPENDING" in s)
    events: list[dict[str, Any]] = []
    assert run(events) == STEPS
    assert {e["ClientRequestToken"] for e in events} == {pending}


def test_awspending_on_the_awscurrent_version_allows_rotate_secret(client: Any, secret: str) -> None:
    # Given AWSPENDING on AWSCURRENT's version (a rotation that finished and left it there: allowed; moto refused it)
    current = next(v for v, s in stages(client, secret).items() if "AWSCURRENT" in s)
    client.update_secret_version_stage(SecretId=secret, VersionStage="AWSPENDING", MoveToVersionId=current)

    # When a rotation starts, Then it is accepted and AWSPENDING moves to the new version
    answer = client.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION)
    assert stages(client, secret)[current] == ["AWSCURRENT"]
    assert stages(client, secret)[answer["VersionId"]] == ["AWSPENDING"]


def test_a_retry_with_the_same_token_is_the_same_rotation(client: Any, secret: str) -> None:
    # Given a rotation started with a token, and not finished
    token = str(uuid.uuid4())
    client.rotate_secret(SecretId=secret, ClientRequestToken=token, RotationLambdaARN=FUNCTION)

    # When the same request is sent again (a retry), Then it is answered with the same version, not refused
    again = client.rotate_secret(SecretId=secret, ClientRequestToken=token, RotationLambdaARN=FUNCTION)
    assert again["VersionId"] == token
    assert [v for v, s in stages(client, secret).items() if "AWSPENDING" in s] == [token]
    # And the rotation runs once
    assert run([]) == STEPS


def test_a_token_of_another_version_is_refused(client: Any, secret: str) -> None:
    current = next(v for v, s in stages(client, secret).items() if "AWSCURRENT" in s)
    code, message = error_code(
        lambda: client.rotate_secret(SecretId=secret, ClientRequestToken=current, RotationLambdaARN=FUNCTION)
    )
    assert code == "InvalidRequestException"
    assert current in message
    assert stages(client, secret) == {current: ["AWSCURRENT"]}


def test_a_rotation_needs_a_function_that_exists(client: Any, secret: str) -> None:
    # Without a rotation function, given or configured: refused, and moto's move of AWSCURRENT to an empty version
    # never happens
    code, _ = error_code(lambda: client.rotate_secret(SecretId=secret))
    assert code == "InvalidRequestException"
    # A function no stack deployed (moto would look for it in its Lambda backend and run it in Docker)
    code, _ = error_code(lambda: client.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION + "-other"))
    assert code == "ResourceNotFoundException"
    assert client.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"] == "v1"
    assert len(stages(client, secret)) == 1


def test_a_step_that_fails_ends_the_rotation_and_leaves_awspending(client: Any, secret: str) -> None:
    answer = client.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION)
    assert run([], fail_at="testSecret") == ["createSecret", "setSecret", "testSecret!"]
    # Then AWSPENDING stays on the failed rotation's version ("When rotation is unsuccessful, the AWSPENDING staging
    # label might be attached to an empty secret version"), so the next RotateSecret is refused
    assert stages(client, secret)[answer["VersionId"]] == ["AWSPENDING"]
    code, _ = error_code(lambda: client.rotate_secret(SecretId=secret))
    assert code == "InvalidRequestException"


def test_the_rotation_token_is_sent_when_secrets_manager_has_one(client: Any, secret: str) -> None:
    client.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION)
    events: list[dict[str, Any]] = []
    run(events, rotation_token="rotation-token-1")
    assert {e["RotationToken"] for e in events} == {"rotation-token-1"}


def test_rotate_immediately_false_tests_the_configuration_and_removes_the_pending_label(
    client: Any, secret: str
) -> None:
    answer = client.rotate_secret(SecretId=secret, RotationLambdaARN=FUNCTION, RotateImmediately=False)
    assert run([]) == ["testSecret"]
    assert stages(client, secret)[answer["VersionId"]] == []
    client.rotate_secret(SecretId=secret)  # nothing is left in progress


def test_a_label_on_another_version_moves_only_with_remove_from_version_id(client: Any, secret: str) -> None:
    # Given a custom label on one version and a second version
    first = client.put_secret_value(SecretId=secret, SecretString="v2", VersionStages=["PULLTHROUGH_CANDIDATE"])
    second = client.put_secret_value(SecretId=secret, SecretString="v3", VersionStages=["OTHER"])
    # When it is moved to the second without naming the first (or naming the wrong one), Then that fails
    for remove_from in ({}, {"RemoveFromVersionId": second["VersionId"]}):
        code, _ = error_code(
            lambda remove_from=remove_from: client.update_secret_version_stage(
                SecretId=secret,
                VersionStage="PULLTHROUGH_CANDIDATE",
                MoveToVersionId=second["VersionId"],
                **remove_from,
            )
        )
        assert code == "InvalidParameterException"
    # And naming it moves the label, once
    client.update_secret_version_stage(
        SecretId=secret,
        VersionStage="PULLTHROUGH_CANDIDATE",
        MoveToVersionId=second["VersionId"],
        RemoveFromVersionId=first["VersionId"],
    )
    client.update_secret_version_stage(
        SecretId=secret, VersionStage="PULLTHROUGH_CANDIDATE", MoveToVersionId=second["VersionId"]
    )
    assert stages(client, secret)[second["VersionId"]] == ["OTHER", "PULLTHROUGH_CANDIDATE"]
    assert stages(client, secret)[first["VersionId"]] == []


def test_put_secret_value_moves_a_custom_label_off_the_version_that_had_it(client: Any, secret: str) -> None:
    # PutSecretValue: "If you specify a staging label that's already associated with a different version of the same
    # secret, then Secrets Manager removes the label from the other version and attaches it to this version."
    first = client.put_secret_value(SecretId=secret, SecretString="v2", VersionStages=["PULLTHROUGH_CANDIDATE"])
    second = client.put_secret_value(SecretId=secret, SecretString="v3", VersionStages=["PULLTHROUGH_CANDIDATE"])
    assert stages(client, secret)[first["VersionId"]] == []
    assert stages(client, secret)[second["VersionId"]] == ["PULLTHROUGH_CANDIDATE"]
    assert json.dumps(stages(client, secret)).count("PULLTHROUGH_CANDIDATE") == 1
