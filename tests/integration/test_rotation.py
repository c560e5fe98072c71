"""The rotation function (functions/rotate_credentials, pullthrough/credentials/rotation/) on moto, step by step.

moto cannot run a rotation Lambda, so each test arranges what Secrets Manager would (a staged AWSPENDING value, or
the empty AWSPENDING version RotateSecret makes) and calls the handler once per step, as Secrets Manager does.
Values are proved against the sandbox's Hub-like upstream; Docker Hub's API is sandbox/registries/hub_api.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pullthrough.aws.secrets import CANDIDATE
from pullthrough.credentials import rotation
from pullthrough.credentials.rotation import (
    PENDING_TOKEN_ID_TAG,
    TOKEN_ID_TAG,
    RotationError,
    RotationResult,
    docker_hub_api,
)
from pullthrough.credentials.upstream import RATE_LIMIT_REPOSITORY
from pullthrough.env import RotateEnv
from pullthrough.registry.dockerhub import HubClient
from pullthrough.reporting.model import Report
from sandbox import lambdas
from sandbox.registries.hub_api import HubApi
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
ADMIN_PASSWORD = "hub-admin-password-0f9e8d7c"
CONTEXT = lambdas.LambdaContext(function_name="pullthrough-rotate_credentials")


def handle(event: dict[str, Any], env: RotateEnv) -> RotationResult:
    """The function's handle, its JSON answer read back as the step's result."""
    return RotationResult.model_validate(rotation.handle(event, CONTEXT, env))


@dataclass
class Rig:
    """One rotation's world: a secret ECR's rule uses, the config naming it, the upstream, Hub's API, the topic."""

    aws: Aws
    sandbox: Sandbox
    hub: HubApi
    settings: RotateEnv
    secret: str  # the name
    arn: str
    rule: str
    user: str
    token: str  # the AWSCURRENT token
    admin: str

    def event(self, step: str, token: str) -> dict[str, Any]:
        event = lambdas.sample_event("rotate_credentials", step)
        return {**event, "SecretId": self.arn, "ClientRequestToken": token}

    def step(self, step: str, token: str) -> RotationResult:
        return handle(self.event(step, token), self.settings)

    def rotate(self, token: str) -> list[RotationResult]:
        return [self.step(step, token) for step in STEPS]

    def state(self) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
        """Versions with stages, the AWSCURRENT value, and the tags: what a step may change."""
        tags = {t["Key"]: t["Value"] for t in self.aws.secrets.describe_secret(SecretId=self.arn).get("Tags", [])}
        return self.aws.stages(self.arn), self.aws.value(self.arn), tags

    def hub_client(self) -> HubClient:
        client = HubClient(self.hub.url)
        client.login(self.admin, ADMIN_PASSWORD)
        return client


def write_config(path: Path, secret: str, rule: str, rotation_strategy: str, admin_secret: str | None) -> Path:
    credentials: dict[str, Any] = {"secret": secret, "rotation": rotation_strategy}
    if admin_secret:
        credentials["admin_secret"] = admin_secret
    document = {
        "version": 1,
        "stack": "rotation-test",
        "rules": [{"prefix": rule, "upstream": "docker-hub", "credentials": credentials}],
        "notifications": {"success": "summary"},
    }
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


def make_rig(aws: Aws, sandbox: Sandbox, tmp_path: Path, strategy: str) -> Iterator[Rig]:
    from sandbox.aws import moto_ecr

    moto_ecr.install()
    sandbox.configure_rules()  # ValidatePullThroughCacheRule reaches the sandbox's upstream
    rule = unique("hub")
    secret = f"{PREFIX}{rule}"
    admin = unique("hubadmin")
    admin_secret = f"pullthrough/{rule}-admin"
    with HubApi(sandbox, admins={admin: ADMIN_PASSWORD}) as hub:
        if strategy == "docker-hub-api":
            # The live token was minted through Hub's API by an earlier rotation, which tagged its id.
            first = HubClient(hub.url)
            first.login(admin, ADMIN_PASSWORD)
            minted = first.create_token("first")
            user, token = admin, minted.token
            tags = [{"Key": TOKEN_ID_TAG, "Value": minted.id}]
            aws.create_secret(admin_secret, {"username": admin, "password": ADMIN_PASSWORD})
        else:
            user, token, tags = unique("hubuser"), new_token(), []
            sandbox.add_user(user, token)
        arn = aws.create_secret(secret, {"username": user, "accessToken": token}, Tags=tags)
        aws.ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=rule,
            upstreamRegistryUrl="registry-1.docker.io",
            upstreamRegistry="docker-hub",
            credentialArn=arn,
        )
        endpoints = {**sandbox.upstream_endpoints(), "hub.docker.com": hub.url}
        settings = RotateEnv.from_env(
            {
                "AWS_REGION": REGION,
                "ACCOUNT_ID": ACCOUNT,
                "STACK_NAME": "pullthrough-test",
                "REPORT_TOPIC_ARN": aws.topic_arn,
                "PULLTHROUGH_CONFIG": str(
                    write_config(
                        tmp_path / "pullthrough.yaml",
                        secret,
                        rule,
                        strategy,
                        admin_secret if strategy == "docker-hub-api" else None,
                    )
                ),
                "PULLTHROUGH_ECR_REGISTRY_URL": sandbox.ecr_url,
                "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(endpoints),
            }
        )
        try:
            yield Rig(aws, sandbox, hub, settings, secret, arn, rule, user, token, admin)
        finally:
            sandbox.remove_user(user)
            sandbox.upstream.faults.clear()


@pytest.fixture
def staged(aws: Aws, sandbox: Sandbox, tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(aws, sandbox, tmp_path, "staged")


@pytest.fixture
def minting(aws: Aws, sandbox: Sandbox, tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(aws, sandbox, tmp_path, "docker-hub-api")


@pytest.fixture
def new_user(sandbox: Sandbox) -> Iterator[tuple[str, str]]:
    """Another upstream account with a token the realm accepts (the realm keeps one token per user)."""
    name, token = unique("hubbot"), new_token()
    sandbox.add_user(name, token)
    yield name, token
    sandbox.remove_user(name)


def reports(rig: Rig) -> list[str]:
    return [message["Body"] for message in rig.aws.reports()]


# --- staged -----------------------------------------------------------------------------------------------------------


def test_staged_good_token_is_promoted_and_rules_revalidated(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given a good token staged as AWSPENDING
    token = staged.aws.stage_pending(staged.arn, {"username": new_user[0], "accessToken": new_user[1]})
    previous = staged.state()[0]
    # When Secrets Manager runs the four steps
    results = staged.rotate(token)
    # Then each step did its part, the new value is AWSCURRENT, the old one AWSPREVIOUS
    assert [r.action for r in results] == ["kept", "nothing_to_set", "tested", "promoted"]
    stages, current, _ = staged.state()
    assert "AWSCURRENT" in stages[token]
    old_version = next(v for v, s in previous.items() if "AWSCURRENT" in s)
    assert stages[old_version] == ["AWSPREVIOUS"]
    assert current == {"username": new_user[0], "accessToken": new_user[1]}
    # And ECR's rule validates with it, and the report is one line saying so
    assert staged.aws.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=staged.rule)["isValid"]
    [body] = reports(staged)
    assert body.count("\n") == 0
    assert body.startswith("OK pullthrough credentials rotation-test/us-east-1:")  # the config's stack label
    assert "1 rotated" in body
    assert "2 valid" in body  # the new value upstream, and ECR's rule


def test_each_step_run_twice_changes_nothing_more(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given a staged token
    token = staged.aws.stage_pending(staged.arn, {"username": new_user[0], "accessToken": new_user[1]})
    # When every step runs twice in a row (Secrets Manager retries)
    changes = []
    for step in STEPS:
        staged.step(step, token)
        after_first = staged.state()
        second = staged.step(step, token)
        changes.append((step, after_first == staged.state(), second.action))
    # Then no second run changed anything, and the second finish knew the work was done
    assert all(same for _, same, _ in changes), changes
    assert changes[-1][2] == "already_current"
    assert len(reports(staged)) == 1  # one report for the one promotion


def test_bad_token_is_never_promoted(
    staged: Rig, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a staged token the upstream does not know, with every log line captured (botocore's wire logs too)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("pullthrough").addHandler(caplog.handler)
    bad = new_token()
    token = staged.aws.stage_pending(staged.arn, {"username": staged.user, "accessToken": bad})
    before = staged.state()
    # When the steps run: create and set pass, test refuses
    staged.step("createSecret", token)
    staged.step("setSecret", token)
    with pytest.raises(RotationError) as refused:
        staged.step("testSecret", token)
    # And even a finish called anyway refuses
    with pytest.raises(RotationError):
        staged.step("finishSecret", token)
    logging.getLogger("pullthrough").removeHandler(caplog.handler)
    # Then AWSCURRENT still holds the old, working value
    assert staged.state() == before
    assert staged.aws.value(staged.arn) == {"username": staged.user, "accessToken": staged.token}
    assert "incorrect username or password" in str(refused.value)
    assert "AWSCURRENT still holds the previous value" in refused.value.fix
    # And the report is loud: the pending value failed, the current one is still valid
    bodies = reports(staged)
    assert len(bodies) == 2
    report = Report.from_message(bodies[0])
    assert report.status.value == "FAILED"
    assert [i.outcome.value for i in report.items] == ["rotation_failed", "valid"]
    assert report.items[0].reason_code == "auth"
    # And neither token appears in a report, a log line or the output
    out, err = capsys.readouterr()
    everything = "".join(bodies) + out + err + caplog.text
    assert "GetSecretValue" in caplog.text  # the wire logs were captured, so their absence below means something
    assert bad not in everything
    assert staged.token not in everything


def test_rotation_to_the_current_version_returns_early(staged: Rig) -> None:
    # Given the token of the version that is already AWSCURRENT
    before = staged.state()
    current = next(v for v, s in before[0].items() if "AWSCURRENT" in s)
    # When each step is called with it
    results = staged.rotate(current)
    # Then every step returns early and nothing changes
    assert {r.action for r in results} == {"already_current"}
    assert staged.state() == before
    assert reports(staged) == []


def test_nothing_staged_is_refused_clearly(staged: Rig) -> None:
    # Given a rotation started with nothing staged (RotateSecret's empty AWSPENDING version)
    token = staged.aws.placeholder(staged.arn)
    before = staged.aws.value(staged.arn)
    # When createSecret runs
    with pytest.raises(RotationError) as refused:
        staged.step("createSecret", token)
    # Then the message says nothing is staged and how to stage, and AWSCURRENT is untouched
    assert "nothing is staged" in str(refused.value)
    assert f"pullthrough credentials set {staged.rule}" in refused.value.fix
    assert staged.aws.value(staged.arn) == before
    assert Report.from_message(reports(staged)[0]).items[0].reason_code == "nothing_staged"


def test_unknown_and_non_pending_versions_are_refused(staged: Rig) -> None:
    # Given a token Secrets Manager never made, and the AWSPREVIOUS version of an earlier change
    staged.aws.secrets.put_secret_value(
        SecretId=staged.arn, SecretString=json.dumps({"username": staged.user, "accessToken": staged.token})
    )
    previous = next(v for v, s in staged.aws.stages(staged.arn).items() if "AWSPREVIOUS" in s)
    # When createSecret runs for each
    with pytest.raises(RotationError) as unknown:
        staged.step("createSecret", "0b3f5a9e-1111-4222-8333-444455556666")
    with pytest.raises(RotationError) as not_pending:
        staged.step("createSecret", previous)
    # Then each says what is wrong with the version
    assert "has no staging label" in str(unknown.value)
    assert "is not AWSPENDING (it has AWSPREVIOUS)" in str(not_pending.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dckr_pat_pasted-alone", "is not JSON"),
        (json.dumps({"username": "bot"}), "'accessToken' is missing"),
        (json.dumps({"user": "bot", "accessToken": "dckr_pat_x"}), "'username' is missing"),
    ],
)
def test_malformed_pending_value_is_refused_with_a_clear_message(staged: Rig, value: str, expected: str) -> None:
    # Given a badly shaped value staged
    token = staged.aws.placeholder(staged.arn)
    staged.aws.secrets.put_secret_value(
        SecretId=staged.arn, SecretString=value, VersionStages=["AWSPENDING"], ClientRequestToken=token
    )
    # When testSecret runs
    with pytest.raises(RotationError) as refused:
        staged.step("testSecret", token)
    # Then the problem is named, never the value, and the current value stays
    assert expected in str(refused.value)
    assert "dckr_pat_" not in str(refused.value)
    assert staged.aws.value(staged.arn)["accessToken"] == staged.token


def test_wrong_prefix_and_wrong_region_are_refused(staged: Rig) -> None:
    # Given a secret outside ecr-pullthroughcache/, and an ARN from another region
    outside = staged.aws.create_secret(unique("dockerhub-creds"), {"username": "u", "accessToken": new_token()})
    elsewhere = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:{staged.secret}-AbCdEf"
    token = "7c1d2e3f-aaaa-4bbb-8ccc-dddddddddddd"
    # When a step is called for each
    with pytest.raises(RotationError) as prefix:
        handle({"Step": "testSecret", "SecretId": outside, "ClientRequestToken": token}, staged.settings)
    with pytest.raises(RotationError) as region:
        handle({"Step": "testSecret", "SecretId": elsewhere, "ClientRequestToken": token}, staged.settings)
    # Then each message says what ECR needs
    assert "ecr-pullthroughcache/" in str(prefix.value)
    assert "region eu-west-1" in str(region.value)
    assert "us-east-1" in region.value.fix


def test_token_realm_down_during_test_keeps_the_old_value(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given a good staged token, and a realm that answers 503 to every check token request
    token = staged.aws.stage_pending(staged.arn, {"username": new_user[0], "accessToken": new_user[1]})
    staged.sandbox.upstream.faults.token_status(503, repository=RATE_LIMIT_REPOSITORY, times=None)
    # When testSecret runs
    with pytest.raises(RotationError) as refused:
        staged.step("testSecret", token)
    # Then the value could not be proved, so it is not promoted
    assert "could not be tested" in str(refused.value)
    assert staged.aws.value(staged.arn)["accessToken"] == staged.token


def test_slow_token_realm_still_lets_a_good_token_through(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given a good staged token and a realm that takes 0.3 s per check token
    token = staged.aws.stage_pending(staged.arn, {"username": new_user[0], "accessToken": new_user[1]})
    fault = staged.sandbox.upstream.faults.delay(
        0.3, path=rf"^/token\?.*scope=repository:{RATE_LIMIT_REPOSITORY}:"
    )  # When testSecret runs
    result = staged.step("testSecret", token)
    # Then it waited and passed
    assert result.action == "tested"
    assert fault.hits == 1


def test_handler_runs_the_sample_events_shape(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given the sample event of each step, pointed at this secret and a staged token
    token = staged.aws.stage_pending(staged.arn, {"username": new_user[0], "accessToken": new_user[1]})
    with pytest.MonkeyPatch.context() as patch:
        for key, value in staged.settings.model_dump(by_alias=True).items():
            if value is not None:
                patch.setenv(key, value if isinstance(value, str) else json.dumps(value))
        # When the Lambda handler is invoked as the runtime would
        answers = [lambdas.invoke("rotate_credentials", staged.event(step, token)) for step in STEPS]
    # Then it returned each step's result as JSON
    assert [a["action"] for a in answers] == ["kept", "nothing_to_set", "tested", "promoted"]
    assert staged.aws.value(staged.arn)["username"] == new_user[0]


# --- staged under PULLTHROUGH_CANDIDATE (what `credentials set` stages), then RotateSecret's empty AWSPENDING version


def stage_candidate(rig: Rig, value: dict[str, str]) -> str:
    """Stage a value under Pullthrough's label, as `pullthrough credentials set` (or a pipeline) does."""
    version: str = rig.aws.secrets.put_secret_value(
        SecretId=rig.arn, SecretString=json.dumps(value), VersionStages=[CANDIDATE]
    )["VersionId"]
    return version


def labelled(rig: Rig, label: str) -> list[str]:
    return [version for version, stages in rig.aws.stages(rig.arn).items() if label in stages]


@pytest.fixture
def put_calls() -> Iterator[list[dict[str, Any]]]:
    """The parameters of every PutSecretValue the library's clients send (values are in them: never printed)."""
    import boto3

    from pullthrough.aws import clients

    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    clients.clear()
    boto3.setup_default_session(region_name=REGION)
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-parameter-build.secrets-manager.PutSecretValue", record)
    yield calls
    session.events.unregister("before-parameter-build.secrets-manager.PutSecretValue", record)
    clients.clear()


def test_a_staged_candidate_is_copied_tested_promoted_and_its_label_taken_off(
    staged: Rig, new_user: tuple[str, str]
) -> None:
    # Given a good token staged under PULLTHROUGH_CANDIDATE, and RotateSecret's empty AWSPENDING version
    value = {"username": new_user[0], "accessToken": new_user[1]}
    candidate = stage_candidate(staged, value)
    token = staged.aws.placeholder(staged.arn)

    # When the four steps run
    results = staged.rotate(token)

    # Then createSecret copied the candidate to AWSPENDING, and the rest tested and promoted it
    assert [r.action for r in results] == ["copied", "nothing_to_set", "tested", "promoted"]
    assert staged.aws.value(staged.arn) == value
    # And the label is off the candidate, which no rotation will promote again
    assert labelled(staged, CANDIDATE) == []
    assert staged.aws.stages(staged.arn)[candidate] == []


def test_each_step_of_a_staged_rotation_run_twice_changes_nothing_more(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given a staged candidate and RotateSecret's version
    stage_candidate(staged, {"username": new_user[0], "accessToken": new_user[1]})
    token = staged.aws.placeholder(staged.arn)
    # When every step runs twice in a row (Secrets Manager retries)
    changes = []
    for step in STEPS:
        first = staged.step(step, token)
        after_first = staged.state()
        second = staged.step(step, token)
        changes.append((step, first.action, second.action, after_first == staged.state()))
    # Then the second createSecret keeps what the first copied, no second run changed anything, and the second
    # finish knew the work was done
    assert [(step, second) for step, _, second, _ in changes] == [
        ("createSecret", "kept"),
        ("setSecret", "nothing_to_set"),
        ("testSecret", "tested"),
        ("finishSecret", "already_current"),
    ]
    assert all(same for *_, same in changes), changes
    assert labelled(staged, CANDIDATE) == []


def test_a_refused_candidate_is_never_promoted_and_loses_its_label(staged: Rig) -> None:
    # Given a candidate the upstream does not know
    stage_candidate(staged, {"username": staged.user, "accessToken": new_token()})
    token = staged.aws.placeholder(staged.arn)
    staged.step("createSecret", token)
    staged.step("setSecret", token)

    # When testSecret runs, and a finish is called anyway
    with pytest.raises(RotationError) as refused:
        staged.step("testSecret", token)
    with pytest.raises(RotationError):
        staged.step("finishSecret", token)

    # Then AWSCURRENT still holds the old value, and the candidate lost its label (no later rotation tries it)
    assert refused.value.code == "auth"
    assert staged.aws.value(staged.arn) == {"username": staged.user, "accessToken": staged.token}
    assert labelled(staged, CANDIDATE) == []


def test_a_candidate_that_could_not_be_tested_keeps_its_label(staged: Rig, new_user: tuple[str, str]) -> None:
    # Given a good candidate, and an upstream that cannot be reached for the test
    stage_candidate(staged, {"username": new_user[0], "accessToken": new_user[1]})
    token = staged.aws.placeholder(staged.arn)
    staged.step("createSecret", token)
    staged.sandbox.upstream.faults.token_status(503, repository=RATE_LIMIT_REPOSITORY, times=None)

    # When testSecret runs, Then it is not promoted, but the candidate stays staged for the retry
    with pytest.raises(RotationError) as refused:
        staged.step("testSecret", token)
    assert "could not be tested" in str(refused.value)
    assert len(labelled(staged, CANDIDATE)) == 1
    assert staged.aws.value(staged.arn)["accessToken"] == staged.token


def test_a_candidate_staged_during_the_rotation_stays_for_the_next(
    staged: Rig, new_user: tuple[str, str], sandbox: Sandbox
) -> None:
    # Given a rotation that copied one candidate, and a newer candidate staged before it finished
    stage_candidate(staged, {"username": new_user[0], "accessToken": new_user[1]})
    token = staged.aws.placeholder(staged.arn)
    for step in STEPS[:3]:
        staged.step(step, token)
    newer = stage_candidate(staged, {"username": new_user[0], "accessToken": new_token()})

    # When finishSecret runs, Then it promoted what it tested, and the newer candidate keeps its label
    staged.step("finishSecret", token)
    assert staged.aws.value(staged.arn)["accessToken"] == new_user[1]
    assert labelled(staged, CANDIDATE) == [newer]


def test_nothing_staged_under_the_label_is_refused_naming_it(staged: Rig) -> None:
    token = staged.aws.placeholder(staged.arn)
    with pytest.raises(RotationError) as refused:
        staged.step("createSecret", token)
    assert CANDIDATE in str(refused.value)
    assert refused.value.code == "nothing_staged"


def test_the_rotation_token_reaches_put_secret_value(
    staged: Rig, new_user: tuple[str, str], put_calls: list[dict[str, Any]]
) -> None:
    # Given a rotation event with a RotationToken (Secrets Manager sends one when rotating through an assumed role
    # or across accounts), and a staged candidate
    stage_candidate(staged, {"username": new_user[0], "accessToken": new_user[1]})
    token = staged.aws.placeholder(staged.arn)
    put_calls.clear()
    event = {**staged.event("createSecret", token), "RotationToken": "7b0f3c2e-6a1d-4e5f-9a8b-0c1d2e3f4a5b"}

    # When createSecret copies the candidate
    handle(event, staged.settings)

    # Then PutSecretValue, the one operation botocore's model gives a RotationToken, carried it
    [put] = put_calls
    assert put["RotationToken"] == "7b0f3c2e-6a1d-4e5f-9a8b-0c1d2e3f4a5b"
    assert put["ClientRequestToken"] == token
    assert put["VersionStages"] == ["AWSPENDING"]


def test_the_rotation_token_reaches_put_secret_value_when_minting(
    minting: Rig, put_calls: list[dict[str, Any]]
) -> None:
    token = minting.aws.placeholder(minting.arn)
    put_calls.clear()
    handle(
        {**minting.event("createSecret", token), "RotationToken": "8c1a4d3f-7b2e-4f6a-8b9c-1d2e3f4a5b6c"},
        minting.settings,
    )
    [put] = put_calls
    assert put["RotationToken"] == "8c1a4d3f-7b2e-4f6a-8b9c-1d2e3f4a5b6c"


# --- docker-hub-api --------------------------------------------------------------------------------------------------


def test_docker_hub_api_mints_promotes_and_revokes_the_old_token(minting: Rig) -> None:
    # Given a rotation started by Secrets Manager (an empty AWSPENDING version)
    token = minting.aws.placeholder(minting.arn)
    old_id = minting.state()[2][TOKEN_ID_TAG]
    # When the four steps run
    results = minting.rotate(token)
    # Then a new token was minted, tested, promoted, and the previous one revoked
    assert [r.action for r in results] == ["created", "nothing_to_set", "tested", "promoted"]
    _, current, tags = minting.state()
    assert current["username"] == minting.admin
    assert current["accessToken"] != minting.token
    assert not minting.hub.tokens[old_id].active
    new_id = tags[TOKEN_ID_TAG]
    assert minting.hub.tokens[new_id].active
    assert minting.hub.tokens[new_id].token == current["accessToken"]
    assert minting.hub.tokens[new_id].scopes == ["repo:public_read"]
    assert minting.hub.tokens[new_id].expires_at is not None
    assert PENDING_TOKEN_ID_TAG not in tags
    assert "pullthrough:expires" in tags
    # And ECR's rule still validates with the new token
    assert minting.aws.ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=minting.rule)["isValid"]


def test_docker_hub_api_create_is_idempotent(minting: Rig) -> None:
    # Given a rotation whose createSecret runs twice
    token = minting.aws.placeholder(minting.arn)
    first = minting.step("createSecret", token)
    state = minting.state()
    second = minting.step("createSecret", token)
    # Then only the first minted a token
    assert (first.action, second.action) == ("created", "kept")
    assert minting.state() == state
    assert minting.hub.counters[("POST", "/v2/access-tokens")] == 1 + 1  # the fixture's first token, and this one


def test_docker_hub_api_refused_admin_stops_the_rotation(minting: Rig) -> None:
    # Given Hub refusing the admin's login
    token = minting.aws.placeholder(minting.arn)
    minting.hub.fail(401, path="^/v2/auth/token$", times=None)
    # When createSecret runs
    with pytest.raises(RotationError) as refused:
        minting.step("createSecret", token)
    # Then the rotation stops with Hub's reason, nothing is pending, and AWSCURRENT is unchanged
    assert "Docker Hub did not mint a new token" in str(refused.value)
    assert "HTTP 401" in str(refused.value)
    assert refused.value.code == "auth"
    assert ADMIN_PASSWORD not in str(refused.value)
    assert minting.aws.value(minting.arn)["accessToken"] == minting.token


def test_docker_hub_api_short_429_is_waited_out_long_one_stops(minting: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a Hub client that records its waits instead of sleeping
    waits: list[float] = []

    def factory(url: str) -> HubClient:
        return HubClient(url, sleep=waits.append, max_wait=30)

    monkeypatch.setattr(docker_hub_api, "hub_factory", factory)
    # When Hub rate-limits the creation briefly
    token = minting.aws.placeholder(minting.arn)
    minting.hub.fail(429, path="^/v2/access-tokens$", retry_after=2)
    created = minting.step("createSecret", token)
    # Then the step waited and minted
    assert created.action == "created"
    assert len(waits) == 1
    # And when Hub rate-limits for ten minutes on the next rotation, the step stops instead of waiting
    minting.rotate(token)
    again = minting.aws.placeholder(minting.arn)
    minting.hub.fail(429, path="^/v2/access-tokens$", retry_after=600, times=None)
    with pytest.raises(RotationError) as limited:
        minting.step("createSecret", again)
    assert limited.value.code == "rate_limited"
    assert len(waits) == 1
