"""The ECR operations the sandbox adds to moto, called through boto3 under `mock_aws()` as against AWS.

Upstreams are tiny loopback stubs (Basic auth on /v2/), so these tests need neither the real registries nor the rest
of the sandbox. What cache repositories hold (images, layers, imports) is tested with the sandbox's registry model in
test_ecr_model.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ecr.models import ecr_backends
from moto.secretsmanager.models import secretsmanager_backends

from sandbox.aws import moto_ecr
from tests.fake_aws import fake_aws

ACCOUNT = "123456789012"
REGION = "us-east-1"
USER, TOKEN = "sandbox-user", "dckr_pat_sandbox-good-token"
WRONG_TOKEN = "dckr_pat_sandbox-wrong-token"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_session() -> Iterator[None]:
    """moto with fake credentials and the added ECR operations, started once per module (starting costs 0.2 s)."""
    moto_ecr.install()
    with fake_aws(REGION):
        yield


@pytest.fixture
def aws(moto_session: None) -> Iterator[None]:
    """A clean ECR and Secrets Manager for each test; the module registries cleared after it."""
    for backends in (ecr_backends, secretsmanager_backends):
        for account in backends.values():
            account.reset()
    try:
        yield
    finally:
        moto_ecr.set_upstream_endpoints({})


@pytest.fixture
def ecr(aws: None) -> Any:
    return boto3.client("ecr", region_name=REGION)


@pytest.fixture
def secrets(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def make_secret(secrets: Any) -> Callable[..., str]:
    def make(name: str = "ecr-pullthroughcache/docker-hub", token: str = TOKEN, raw: str | None = None) -> str:
        value = raw if raw is not None else json.dumps({"username": USER, "accessToken": token})
        return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])

    return make


@pytest.fixture
def upstream() -> Iterator[str]:
    """A stub upstream: /v2/ answers 401 with a Basic challenge, and 200 for USER / TOKEN."""
    good = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.rstrip("/") == "/v2" and self.headers.get("Authorization") == good
            self.send_response(200 if ok else 401)
            if not ok:
                self.send_header("Www-Authenticate", 'Basic realm="x"')
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def error_of(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def docker_hub_rule(ecr: Any, arn: str, prefix: str = "docker-hub") -> dict[str, Any]:
    return dict(
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=prefix,
            upstreamRegistryUrl="registry-1.docker.io",
            upstreamRegistry="docker-hub",
            credentialArn=arn,
        )
    )


# --- CreatePullThroughCacheRule ------------------------------------------------------------------------------------


def test_create_rule_returns_what_was_given_and_describe_adds_timestamps(ecr: Any, make_secret: Any) -> None:
    # Given a secret for Docker Hub
    arn = make_secret()
    # When a rule is created with it
    created = docker_hub_rule(ecr, arn)
    # Then the answer echoes the request, with the registry and a creation time
    assert created["ecrRepositoryPrefix"] == "docker-hub"
    assert created["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert created["upstreamRegistry"] == "docker-hub"
    assert created["credentialArn"] == arn
    assert created["registryId"] == ACCOUNT
    assert isinstance(created["createdAt"], datetime)
    # And Describe shows the same rule with createdAt and updatedAt
    (rule,) = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert rule["ecrRepositoryPrefix"] == "docker-hub"
    assert rule["credentialArn"] == arn
    assert rule["createdAt"] == created["createdAt"]
    assert rule["updatedAt"] == rule["createdAt"]


def test_create_rule_infers_the_upstream_registry_from_the_url(ecr: Any) -> None:
    # Given / When a Quay rule without upstreamRegistry and without credentials
    created = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    # Then the upstream is known from its URL, and no credentialArn is invented
    assert created["upstreamRegistry"] == "quay"
    assert "credentialArn" not in created


def test_create_rule_twice_for_one_prefix_is_refused_also_with_a_trailing_slash(ecr: Any) -> None:
    # Given a rule for ecr-public
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    # When the same prefix, written with the assumed trailing slash, is created again
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public/", upstreamRegistryUrl="quay.io")
    )
    # Then ECR says it exists
    assert code == "PullThroughCacheRuleAlreadyExistsException"
    assert "ecr-public" in message


@pytest.mark.parametrize("prefix", ["Docker-Hub", "a//b", "-dash", "ROOT/x"])
def test_create_rule_with_a_prefix_outside_the_pattern_is_an_invalid_parameter(ecr: Any, prefix: str) -> None:
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="quay.io")
    )
    assert code == "InvalidParameterException"
    assert "ecrRepositoryPrefix" in message


def test_create_rule_accepts_root_as_prefix(ecr: Any) -> None:
    created = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl="public.ecr.aws")
    assert created["ecrRepositoryPrefix"] == "ROOT"


@pytest.mark.parametrize(
    ("registry", "url"),
    [("docker-hub", "ghcr.io"), ("quay", "quay.io.evil.example"), (None, "registry.example.com")],
)
def test_create_rule_with_an_url_the_upstream_does_not_have_is_unsupported(
    ecr: Any, registry: str | None, url: str
) -> None:
    extra = {"upstreamRegistry": registry} if registry else {}
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="up", upstreamRegistryUrl=url, **extra)
    )
    assert code == "UnsupportedUpstreamRegistryException"
    assert url in message


def test_create_rule_without_the_secret_an_upstream_needs_is_an_invalid_parameter(ecr: Any) -> None:
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="ghcr", upstreamRegistryUrl="ghcr.io", upstreamRegistry="github-container-registry"
        )
    )
    assert code == "InvalidParameterException"
    assert "credentialArn" in message
    assert "github-container-registry" in message


def test_create_rule_with_a_secret_for_a_public_upstream_is_an_invalid_parameter(ecr: Any, make_secret: Any) -> None:
    arn = make_secret("ecr-pullthroughcache/quay")
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", credentialArn=arn
        )
    )
    assert code == "InvalidParameterException"
    assert "credentialArn" in message


def test_create_rule_with_a_secret_that_does_not_exist_is_secret_not_found(ecr: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/missing-AbCdEf"
    code, message = error_of(lambda: docker_hub_rule(ecr, arn))
    assert code == "SecretNotFoundException"
    assert arn in message


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
        f"arn:aws:secretsmanager:{REGION}:210987654321:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
    ],
)
def test_create_rule_with_a_secret_of_another_region_or_account_is_unable_to_access(ecr: Any, arn: str) -> None:
    code, _ = error_of(lambda: docker_hub_rule(ecr, arn))
    assert code == "UnableToAccessSecretException"


def test_create_rule_with_a_secret_outside_the_ptc_prefix_is_an_invalid_parameter(ecr: Any, make_secret: Any) -> None:
    arn = make_secret("team/docker-hub-credentials-for-ptc")
    code, message = error_of(lambda: docker_hub_rule(ecr, arn))
    assert code == "InvalidParameterException"
    assert "credentialArn" in message


def test_create_rule_with_a_secret_scheduled_for_deletion_is_unable_to_access(
    ecr: Any, secrets: Any, make_secret: Any
) -> None:
    arn = make_secret()
    secrets.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    code, _ = error_of(lambda: docker_hub_rule(ecr, arn))
    assert code == "UnableToAccessSecretException"


def test_the_51st_rule_of_a_registry_exceeds_the_quota(ecr: Any) -> None:
    # Given the 50 rules the quota allows
    for n in range(50):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=f"quay-{n:02d}", upstreamRegistryUrl="quay.io")
    # When one more is created
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay-50", upstreamRegistryUrl="quay.io")
    )
    # Then the quota says no
    assert code == "LimitExceededException"
    assert "50" in message


def test_an_ecr_upstream_in_another_account_needs_a_role_and_defaults_the_upstream_prefix(ecr: Any) -> None:
    url = f"210987654321.dkr.ecr.{REGION}.amazonaws.com"
    # Given / When a cross-account ECR rule without a role
    code, message = error_of(
        lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="other", upstreamRegistryUrl=url)
    )
    # Then the role is demanded
    assert code == "InvalidParameterException"
    assert "customRoleArn" in message
    # When the role is given
    role = f"arn:aws:iam::{ACCOUNT}:role/ecr-ptc"
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="other", upstreamRegistryUrl=url, upstreamRegistry="ecr", customRoleArn=role
    )
    # Then the rule keeps it, and matches any upstream repository (ROOT)
    assert created["customRoleArn"] == role
    assert created["upstreamRepositoryPrefix"] == "ROOT"


@pytest.mark.parametrize(
    ("registry", "url", "secret"),
    [("docker-hub", "registry-1.docker.io", True), ("quay", "quay.io", False), ("k8s", "registry.k8s.io", False)],
)
def test_every_rule_created_without_an_upstream_prefix_reports_root(
    ecr: Any, make_secret: Callable[..., str], registry: str, url: str, secret: bool
) -> None:
    # Given a rule of an upstream other than ECR, created without upstreamRepositoryPrefix
    extra = {"credentialArn": make_secret()} if secret else {}
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="p1", upstreamRegistryUrl=url, upstreamRegistry=registry, **extra
    )
    # Then ECR says ROOT, as botocore's model says it uses when the field isn't specified (for every upstream)
    assert created["upstreamRepositoryPrefix"] == "ROOT"
    [described] = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["p1"])["pullThroughCacheRules"]
    assert described["upstreamRepositoryPrefix"] == "ROOT"


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"upstreamRegistryUrl": "quay.io", "customRoleArn": f"arn:aws:iam::{ACCOUNT}:role/r"}, "customRoleArn"),
        ({"upstreamRegistryUrl": "quay.io", "upstreamRepositoryPrefix": "team"}, "upstreamRepositoryPrefix"),
        (
            {
                "upstreamRegistryUrl": f"210987654321.dkr.ecr.{REGION}.amazonaws.com",
                "customRoleArn": "arn:aws:iam::210987654321:role/r",
            },
            "customRoleArn",
        ),
    ],
)
def test_role_and_upstream_prefix_belong_to_ecr_upstreams_only(
    ecr: Any, arguments: dict[str, str], parameter: str
) -> None:
    code, message = error_of(lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="x1", **arguments))
    assert code == "InvalidParameterException"
    assert parameter in message


# --- DescribePullThroughCacheRules ---------------------------------------------------------------------------------


def test_describe_rules_pages_through_the_boto3_paginator(ecr: Any) -> None:
    # Given five rules
    prefixes = [f"quay-{n}" for n in range(5)]
    for prefix in prefixes:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="quay.io")
    # When they are listed two at a time
    pages = list(ecr.get_paginator("describe_pull_through_cache_rules").paginate(PaginationConfig={"PageSize": 2}))
    # Then three pages hold every rule once
    assert [len(p["pullThroughCacheRules"]) for p in pages] == [2, 2, 1]
    assert [r["ecrRepositoryPrefix"] for p in pages for r in p["pullThroughCacheRules"]] == prefixes
    assert "nextToken" not in pages[-1]


def test_describe_rules_filters_by_prefix_and_names_a_missing_one(ecr: Any) -> None:
    for prefix, url in (("quay", "quay.io"), ("k8s", "registry.k8s.io")):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl=url)
    found = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["k8s"])["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in found] == ["k8s"]
    code, message = error_of(lambda: ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["gcr"]))
    assert code == "PullThroughCacheRuleNotFoundException"
    assert "gcr" in message


def test_describe_rules_with_a_forged_token_is_an_invalid_parameter(ecr: Any) -> None:
    code, message = error_of(lambda: ecr.describe_pull_through_cache_rules(nextToken="not-a-token", maxResults=1))
    assert code == "InvalidParameterException"
    assert "nextToken" in message


def test_describe_rules_with_too_many_results_asked_is_a_validation_error(ecr: Any) -> None:
    code, _ = error_of(lambda: ecr.describe_pull_through_cache_rules(maxResults=1001))
    assert code == "ValidationException"


# --- UpdatePullThroughCacheRule / DeletePullThroughCacheRule ------------------------------------------------------


def test_update_rule_changes_the_credential_and_updated_at(
    ecr: Any, make_secret: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rule created at a known time, and a second secret
    created_at = datetime(2026, 1, 1, tzinfo=UTC)
    monkeypatch.setattr("sandbox.aws.moto_ecr_rules.now", lambda: created_at)
    docker_hub_rule(ecr, make_secret())
    rotated = make_secret("ecr-pullthroughcache/docker-hub-2")
    # When the rule is pointed at the second secret an hour later
    monkeypatch.setattr("sandbox.aws.moto_ecr_rules.now", lambda: created_at + timedelta(hours=1))
    updated = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", credentialArn=rotated)
    # Then the answer and Describe show the new secret and the new time, and the creation time stays
    assert updated["credentialArn"] == rotated
    assert updated["updatedAt"] == created_at + timedelta(hours=1)
    (rule,) = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert rule["credentialArn"] == rotated
    assert rule["createdAt"] == created_at
    assert rule["updatedAt"] == created_at + timedelta(hours=1)


def test_update_rule_errors(ecr: Any, make_secret: Any) -> None:
    arn = make_secret()
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    docker_hub_rule(ecr, arn)
    missing = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/gone-AbCdEf"
    cases = {
        "PullThroughCacheRuleNotFoundException": {"ecrRepositoryPrefix": "ghcr", "credentialArn": arn},
        "InvalidParameterException": {"ecrRepositoryPrefix": "quay", "credentialArn": arn},
        "SecretNotFoundException": {"ecrRepositoryPrefix": "docker-hub", "credentialArn": missing},
    }
    for expected, arguments in cases.items():
        code, _ = error_of(lambda arguments=arguments: ecr.update_pull_through_cache_rule(**arguments))
        assert code == expected, arguments
    # Neither a credential nor a role: AWS's own words
    code, message = error_of(lambda: ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub"))
    assert code == "InvalidParameterException"
    assert "Please set either credential arn or role arn" in message


def test_update_rule_changes_the_custom_role_of_an_ecr_upstream(ecr: Any) -> None:
    url = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"  # same account, other region: no role needed
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="eu", upstreamRegistryUrl=url)
    role = f"arn:aws:iam::{ACCOUNT}:role/ecr-ptc"
    updated = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="eu", customRoleArn=role)
    assert updated["customRoleArn"] == role


def test_delete_rule_returns_it_and_it_is_gone(ecr: Any, make_secret: Any) -> None:
    arn = make_secret()
    docker_hub_rule(ecr, arn)
    deleted = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert deleted["credentialArn"] == arn
    assert deleted["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []
    code, _ = error_of(lambda: ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub"))
    assert code == "PullThroughCacheRuleNotFoundException"


# --- ValidatePullThroughCacheRule ----------------------------------------------------------------------------------


def test_validate_authenticates_upstream_with_the_secret(ecr: Any, make_secret: Any, upstream: str) -> None:
    # Given a rule whose secret holds the credentials the upstream accepts
    docker_hub_rule(ecr, make_secret())
    moto_ecr.set_upstream_endpoints({"registry-1.docker.io": upstream})
    # When it is validated
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    # Then it is valid
    assert result["isValid"] is True
    assert "failure" not in result
    assert result["upstreamRegistryUrl"] == "registry-1.docker.io"


def test_validate_with_a_wrong_token_fails_without_showing_it(ecr: Any, make_secret: Any, upstream: str) -> None:
    arn = make_secret(token=WRONG_TOKEN)
    docker_hub_rule(ecr, arn)
    moto_ecr.set_upstream_endpoints({"registry-1.docker.io": upstream})
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert result["isValid"] is False
    assert "authenticate" in result["failure"]
    assert arn in result["failure"]
    assert WRONG_TOKEN not in result["failure"]


def test_validate_with_an_unreachable_or_unmapped_upstream_cannot_connect(
    ecr: Any, make_secret: Any, closed_port_url: str
) -> None:
    docker_hub_rule(ecr, make_secret())
    for endpoints in ({"registry-1.docker.io": closed_port_url}, {}):
        moto_ecr.set_upstream_endpoints(endpoints)
        result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
        assert result["isValid"] is False
        assert result["failure"].startswith("Unable to connect to upstream registry registry-1.docker.io")


def test_validate_reads_the_awscurrent_value_after_a_rotation(
    ecr: Any, secrets: Any, make_secret: Any, upstream: str
) -> None:
    # Given a rule whose secret's current value is wrong
    arn = make_secret(token=WRONG_TOKEN)
    docker_hub_rule(ecr, arn)
    moto_ecr.set_upstream_endpoints({"registry-1.docker.io": upstream})
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")["isValid"] is False
    # When a good value is staged as AWSPENDING and then promoted to AWSCURRENT
    current = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (old_version,) = [v for v, stages in current.items() if "AWSCURRENT" in stages]
    pending = secrets.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps({"username": USER, "accessToken": TOKEN}),
        VersionStages=["AWSPENDING"],
    )["VersionId"]
    secrets.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=pending, RemoveFromVersionId=old_version
    )
    # Then validation uses the promoted value
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")["isValid"] is True
    assert moto_ecr.rule_secret(ACCOUNT, REGION, "docker-hub") == (USER, TOKEN)


def test_validate_with_a_malformed_or_deleted_secret_fails_naming_the_fields(
    ecr: Any, secrets: Any, make_secret: Any, upstream: str
) -> None:
    arn = make_secret(raw="username=sandbox-user;token=s3cr3t-value")
    docker_hub_rule(ecr, arn)
    moto_ecr.set_upstream_endpoints({"registry-1.docker.io": upstream})
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert result["isValid"] is False
    assert "username" in result["failure"]
    assert "accessToken" in result["failure"]
    assert "s3cr3t-value" not in result["failure"]
    # And once the secret is gone
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert result["isValid"] is False
    assert "not found" in result["failure"]


def test_validate_an_unknown_rule_is_not_found(ecr: Any) -> None:
    code, _ = error_of(lambda: ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub"))
    assert code == "PullThroughCacheRuleNotFoundException"


# --- repository creation templates ---------------------------------------------------------------------------------

LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "pull",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": ["ecr:BatchGetImage"],
            }
        ],
    }
)
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"
TEMPLATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pullthrough/template-role"


def docker_hub_template(
    ecr: Any, prefix: str = "docker-hub", applied_for: tuple[str, ...] = ("PULL_THROUGH_CACHE",)
) -> Any:
    return ecr.create_repository_creation_template(
        prefix=prefix,
        description="Docker Hub cache",
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": KMS_KEY},
        resourceTags=[{"Key": "owner", "Value": "pullthrough"}],
        imageTagMutability="IMMUTABLE",
        repositoryPolicy=POLICY,
        lifecyclePolicy=LIFECYCLE,
        appliedFor=list(applied_for),
        customRoleArn=TEMPLATE_ROLE,
    )


def test_create_template_returns_it_with_the_registry_and_times(ecr: Any) -> None:
    created = docker_hub_template(ecr)
    template = created["repositoryCreationTemplate"]
    assert created["registryId"] == ACCOUNT
    assert template["prefix"] == "docker-hub"
    assert template["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": KMS_KEY}
    assert template["resourceTags"] == [{"Key": "owner", "Value": "pullthrough"}]
    assert template["imageTagMutability"] == "IMMUTABLE"
    assert template["lifecyclePolicy"] == LIFECYCLE
    assert template["repositoryPolicy"] == POLICY
    assert template["appliedFor"] == ["PULL_THROUGH_CACHE"]
    assert isinstance(template["createdAt"], datetime)
    assert template["updatedAt"] == template["createdAt"]


def test_create_template_defaults_to_mutable_aes256(ecr: Any) -> None:
    template = ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"])[
        "repositoryCreationTemplate"
    ]
    assert template["imageTagMutability"] == "MUTABLE"
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}


def test_create_template_twice_is_refused(ecr: Any) -> None:
    docker_hub_template(ecr)
    code, message = error_of(lambda: docker_hub_template(ecr, prefix="docker-hub/"))
    assert code == "TemplateAlreadyExistsException"
    assert "docker-hub" in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prefix": "Bad Prefix", "appliedFor": ["PULL_THROUGH_CACHE"]}, "InvalidParameterException"),
        ({"prefix": "p", "appliedFor": []}, "ValidationException"),
        ({"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "lifecyclePolicy": "{}"}, "InvalidParameterException"),
        ({"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "repositoryPolicy": "[1]"}, "InvalidParameterException"),
        (
            {
                "prefix": "p",
                "appliedFor": ["PULL_THROUGH_CACHE"],
                "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": KMS_KEY},
            },
            "InvalidParameterException",
        ),
        (
            {"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
            "InvalidParameterException",
        ),
        (
            {"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "customRoleArn": "arn:aws:iam::210987654321:role/r"},
            "InvalidParameterException",
        ),
        # botocore's model: RCTAppliedFor enum, RepositoryTemplateDescription max 256, CustomRoleArn max 2048,
        # RepositoryPolicyText max 10240
        ({"prefix": "p", "appliedFor": ["PULL_THROUGH"]}, "InvalidParameterException"),
        ({"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "description": "d" * 257}, "ValidationException"),
        (
            {"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "customRoleArn": TEMPLATE_ROLE + "x" * 2048},
            "ValidationException",
        ),
        (
            {"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "repositoryPolicy": " " * 10241},
            "ValidationException",
        ),
        # AWS's ECR guide: tags and a KMS key are applied through the template's role (customRoleArn)
        (
            {"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "resourceTags": [{"Key": "k", "Value": "v"}]},
            "InvalidParameterException",
        ),
        (
            {"prefix": "p", "appliedFor": ["PULL_THROUGH_CACHE"], "encryptionConfiguration": {"encryptionType": "KMS"}},
            "InvalidParameterException",
        ),
        (
            {
                "prefix": "p",
                "appliedFor": ["PULL_THROUGH_CACHE"],
                "encryptionConfiguration": {"encryptionType": "KMS_DSSE"},
            },
            "InvalidParameterException",
        ),
    ],
)
def test_create_template_checks_its_fields(ecr: Any, arguments: dict[str, Any], expected: str) -> None:
    code, _ = error_of(lambda: ecr.create_repository_creation_template(**arguments))
    assert code == expected


def test_tags_and_kms_need_a_role_on_create_and_after_an_update(ecr: Any) -> None:
    # Given a template with tags and KMS, created with its role
    docker_hub_template(ecr)
    # When an update would leave the tags without a role, Then it is refused, naming customRoleArn
    code, message = error_of(lambda: ecr.update_repository_creation_template(prefix="docker-hub", customRoleArn=""))
    assert code in ("InvalidParameterException", "ValidationException")
    # And a template without tags or KMS needs none; adding tags to it without a role is refused
    ecr.create_repository_creation_template(prefix="quay", appliedFor=["PULL_THROUGH_CACHE", "REPLICATION"])
    code, message = error_of(
        lambda: ecr.update_repository_creation_template(prefix="quay", resourceTags=[{"Key": "k", "Value": "v"}])
    )
    assert code == "InvalidParameterException"
    assert "customRoleArn" in message
    # And with the role in the same update it is accepted
    updated = ecr.update_repository_creation_template(
        prefix="quay", resourceTags=[{"Key": "k", "Value": "v"}], customRoleArn=TEMPLATE_ROLE
    )["repositoryCreationTemplate"]
    assert updated["customRoleArn"] == TEMPLATE_ROLE
    assert updated["appliedFor"] == ["PULL_THROUGH_CACHE", "REPLICATION"]


def test_describe_templates_filters_and_pages(ecr: Any) -> None:
    prefixes = ["a1", "b2", "c3", "ROOT"]
    for prefix in prefixes:
        ecr.create_repository_creation_template(prefix=prefix, appliedFor=["PULL_THROUGH_CACHE"])
    pages = list(ecr.get_paginator("describe_repository_creation_templates").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["repositoryCreationTemplates"]) for p in pages] == [3, 1]
    assert sorted(t["prefix"] for p in pages for t in p["repositoryCreationTemplates"]) == sorted(prefixes)
    assert all(p["registryId"] == ACCOUNT for p in pages)
    found = ecr.describe_repository_creation_templates(prefixes=["b2", "zz"])["repositoryCreationTemplates"]
    assert [t["prefix"] for t in found] == ["b2"]


def test_update_template_changes_the_given_fields_only(ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    created_at = datetime(2026, 2, 1, tzinfo=UTC)
    monkeypatch.setattr("sandbox.aws.moto_ecr_templates.now", lambda: created_at)
    docker_hub_template(ecr)
    monkeypatch.setattr("sandbox.aws.moto_ecr_templates.now", lambda: created_at + timedelta(minutes=5))
    updated = ecr.update_repository_creation_template(prefix="docker-hub", imageTagMutability="MUTABLE")[
        "repositoryCreationTemplate"
    ]
    assert updated["imageTagMutability"] == "MUTABLE"
    assert updated["lifecyclePolicy"] == LIFECYCLE  # untouched
    assert updated["createdAt"] == created_at
    assert updated["updatedAt"] == created_at + timedelta(minutes=5)
    (described,) = ecr.describe_repository_creation_templates(prefixes=["docker-hub"])["repositoryCreationTemplates"]
    assert described["imageTagMutability"] == "MUTABLE"


def test_update_and_delete_of_a_missing_template_are_not_found(ecr: Any) -> None:
    for call in (
        lambda: ecr.update_repository_creation_template(prefix="nope", description="x"),
        lambda: ecr.delete_repository_creation_template(prefix="nope"),
    ):
        code, message = error_of(call)
        assert code == "TemplateNotFoundException"
        assert "nope" in message


def test_delete_template_returns_it_and_it_is_gone(ecr: Any) -> None:
    docker_hub_template(ecr)
    deleted = ecr.delete_repository_creation_template(prefix="docker-hub")
    assert deleted["repositoryCreationTemplate"]["prefix"] == "docker-hub"
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


# --- hooks for the sandbox's ECR endpoint --------------------------------------------------------------------------


def test_ensure_cache_repository_applies_the_most_specific_ptc_template(ecr: Any) -> None:
    # Given a ROOT template, a Docker Hub one, and a more specific one that is not for pull-through cache
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"])
    docker_hub_template(ecr)
    ecr.create_repository_creation_template(
        prefix="docker-hub/library", appliedFor=["REPLICATION"], imageTagMutability="MUTABLE"
    )
    # When the endpoint creates two cache repositories (the first twice)
    moto_ecr.ensure_cache_repository(ACCOUNT, REGION, "docker-hub/library/nginx")
    moto_ecr.ensure_cache_repository(ACCOUNT, REGION, "docker-hub/library/nginx")
    moto_ecr.ensure_cache_repository(ACCOUNT, REGION, "quay/coreos/etcd")
    # Then the Docker Hub one has every setting of the Docker Hub template
    repos = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    nginx = repos["docker-hub/library/nginx"]
    assert nginx["imageTagMutability"] == "IMMUTABLE"
    assert nginx["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": KMS_KEY}
    assert ecr.list_tags_for_resource(resourceArn=nginx["repositoryArn"])["tags"] == [
        {"Key": "owner", "Value": "pullthrough"}
    ]
    assert ecr.get_lifecycle_policy(repositoryName=nginx["repositoryName"])["lifecyclePolicyText"] == LIFECYCLE
    assert ecr.get_repository_policy(repositoryName=nginx["repositoryName"])["policyText"] == POLICY
    # And the other one the ROOT template's
    assert repos["quay/coreos/etcd"]["imageTagMutability"] == "MUTABLE"
    assert repos["quay/coreos/etcd"]["encryptionConfiguration"] == {"encryptionType": "AES256"}


def test_ensure_cache_repository_without_templates_uses_ecr_defaults(ecr: Any) -> None:
    moto_ecr.ensure_cache_repository(ACCOUNT, REGION, "k8s/pause")
    (repo,) = ecr.describe_repositories(repositoryNames=["k8s/pause"])["repositories"]
    assert repo["imageTagMutability"] == "MUTABLE"


def test_find_rule_takes_the_longest_whole_component_prefix_then_root(ecr: Any, make_secret: Any) -> None:
    arn = make_secret()
    docker_hub_rule(ecr, arn)
    docker_hub_rule(ecr, arn, prefix="docker-hub/library")
    assert (
        moto_ecr.find_rule(ACCOUNT, REGION, "docker-hub/library/nginx")["ecrRepositoryPrefix"] == "docker-hub/library"
    )
    assert moto_ecr.find_rule(ACCOUNT, REGION, "docker-hub/bitnami/redis")["ecrRepositoryPrefix"] == "docker-hub"
    assert moto_ecr.find_rule(ACCOUNT, REGION, "docker-hubx/redis") is None
    assert moto_ecr.find_rule(ACCOUNT, REGION, "docker-hub") is None
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl="public.ecr.aws")
    assert moto_ecr.find_rule(ACCOUNT, REGION, "docker-hubx/redis")["ecrRepositoryPrefix"] == "ROOT"
    assert moto_ecr.find_rule(ACCOUNT, REGION, "docker-hub/x/y")["credentialArn"] == arn


def test_rule_secret_is_none_without_a_secret_or_a_rule(ecr: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    assert moto_ecr.rule_secret(ACCOUNT, REGION, "quay") is None
    assert moto_ecr.rule_secret(ACCOUNT, REGION, "docker-hub") is None


# --- images outside the registry model -----------------------------------------------------------------------


def test_repositories_outside_ptc_keep_mocos_own_images(ecr: Any) -> None:
    # Given a plain repository with an image pushed through the API, and install() run again
    moto_ecr.install()
    ecr.create_repository(repositoryName="team/app")
    config = "sha256:" + "c" * 64
    layer = "sha256:" + "a" * 64
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 10},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": 300}],
        }
    )
    ecr.put_image(repositoryName="team/app", imageManifest=manifest, imageTag="v1")
    # When its images are described
    (detail,) = ecr.describe_images(repositoryName="team/app")["imageDetails"]
    # Then moto answers as before (its own digest)
    assert detail["imageTags"] == ["v1"]
    assert detail["imageDigest"] != "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


def test_a_registry_without_a_model_keeps_mocos_own_images(ecr: Any, make_secret: Any) -> None:
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    code, _ = error_of(lambda: ecr.describe_images(repositoryName="quay/coreos/etcd"))
    assert code == "RepositoryNotFoundException"
    moto_ecr.ensure_cache_repository(ACCOUNT, REGION, "quay/coreos/etcd")
    assert ecr.describe_images(repositoryName="quay/coreos/etcd")["imageDetails"] == []
