"""Pure parts of pullthrough/credentials/rotation/: the event Secrets Manager sends, and the admin credentials' shape.

The four steps themselves run against moto in tests/integration/test_rotation.py.
"""

from __future__ import annotations

import json

import pytest

from pullthrough.credentials.rotation import RotationError, RotationEvent, new_token
from pullthrough.credentials.rotation.docker_hub_api import _admin_credentials, _int_tag
from pullthrough.errors import EventError, SecretError
from sandbox import lambdas

ADMIN_PASSWORD = "hub-admin-unit-password"


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_sample_events_parse(step: str) -> None:
    # Given the sample event of a step, as Secrets Manager sends it
    event = lambdas.sample_event("rotate_credentials", step)
    # When it is parsed
    parsed = RotationEvent.parse(event)
    # Then every field is read
    assert parsed.step == step
    assert parsed.secret_id == event["SecretId"]
    assert parsed.token == event["ClientRequestToken"]
    assert parsed.rotation_token == event["RotationToken"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"Step": "rotateSecret", "SecretId": "s", "ClientRequestToken": "t"}, "Step"),
        ({"Step": "createSecret", "ClientRequestToken": "t"}, "SecretId"),
        ({"Step": "createSecret", "SecretId": "s"}, "ClientRequestToken"),
        ({"Step": "createSecret", "SecretId": "", "ClientRequestToken": "t"}, "SecretId"),
    ],
)
def test_bad_events_name_the_field(event: dict[str, str], expected: str) -> None:
    with pytest.raises(EventError) as raised:
        RotationEvent.parse(event)
    assert expected in str(raised.value)
    assert "createSecret, setSecret, testSecret or finishSecret" in str(raised.value)


def test_rotation_token_is_optional() -> None:
    parsed = RotationEvent.parse({"Step": "testSecret", "SecretId": "s", "ClientRequestToken": "t"})
    assert parsed.rotation_token is None


def test_admin_credentials_accept_password_or_access_token() -> None:
    by_password = _admin_credentials("pullthrough/admin", json.dumps({"username": "a", "password": ADMIN_PASSWORD}))
    by_token = _admin_credentials("pullthrough/admin", json.dumps({"username": "a", "accessToken": ADMIN_PASSWORD}))
    assert by_password == by_token
    assert ADMIN_PASSWORD not in repr(by_password)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "not JSON"),
        (ADMIN_PASSWORD, "not JSON"),
        ("[1]", "not a JSON object"),
        (json.dumps({"username": "a"}), "username and password"),
    ],
)
def test_admin_credentials_problems_never_show_the_value(value: str | None, expected: str) -> None:
    with pytest.raises(SecretError) as raised:
        _admin_credentials("pullthrough/admin", value)
    assert expected in str(raised.value)
    assert ADMIN_PASSWORD not in str(raised.value)


@pytest.mark.parametrize(("tag", "days"), [(None, 90), ("30", 30), ("0", 90), ("soon", 90), ("99999", 90)])
def test_token_lifetime_tag_falls_back_to_the_default(tag: str | None, days: int) -> None:
    assert _int_tag(tag, 90) == days


def test_rotation_error_carries_reason_and_fix() -> None:
    error = RotationError("ecr-pullthroughcache/hub", "testSecret", "refused", "make a new token", "auth")
    assert str(error) == "rotation of secret ecr-pullthroughcache/hub (testSecret): refused; fix: make a new token"
    assert (error.reason, error.fix, error.code, error.target) == ("refused", "make a new token", "auth", None)


def test_new_tokens_are_distinct_version_ids() -> None:
    first, second = new_token(), new_token()
    assert first != second
    assert len(first) == 36
