"""The sandbox's IAM (sandbox/aws/iam.py, iam_conditions.py, iam_guard.py): AWS's evaluation rules, and AWS's refusal.

Each test builds a small role by hand, acts as it, and makes real boto3 calls against moto: a refused call must come
back exactly as AWS sends it (code, message, HTTP status, botocore's exception class), an allowed one must reach
moto untouched.
"""

from __future__ import annotations

import base64
import concurrent.futures
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.aws import iam, iam_guard, iam_requests, moto_ecr
from sandbox.aws.iam import Authorization, Principal, Role, Statement
from sandbox.aws.iam_conditions import UnsupportedPolicy, condition_holds
from tests.fake_aws import fake_aws

ACCOUNT, REGION = "123456789012", "us-east-1"


def role(*statements: dict[str, Any]) -> Role:
    return Role("pullthrough-test-Role-ABC", tuple(Statement.parse("Inline", i, s) for i, s in enumerate(statements)))


def principal(*statements: dict[str, Any]) -> Principal:
    return Principal(role(*statements), "pullthrough-test-Function", ACCOUNT, REGION)


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def ask(action: str, resource: str = "*", **context: str | tuple[str, ...]) -> Authorization:
    return Authorization(action, resource, {k.lower(): v for k, v in context.items()})


@pytest.fixture
def aws() -> Iterator[None]:
    iam_guard.install()
    moto_ecr.install()
    with fake_aws(REGION):
        yield


def code_and_message(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response: Any = error.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


# --- refusals look like AWS's ----------------------------------------------------------------------------------------


def test_a_call_outside_the_role_is_refused_as_ecr_refuses_it(aws: None) -> None:
    # Given a function whose role may only publish reports
    acting = principal(allow("sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:reports"))
    ecr = boto3.client("ecr", region_name=REGION)
    # When it lists the pull-through cache rules
    with iam.acting_as(acting), pytest.raises(ClientError) as refused:
        ecr.describe_pull_through_cache_rules()
    # Then ECR's AccessDeniedException comes back, with IAM's wording, HTTP 400
    assert code_and_message(refused) == (
        "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/pullthrough-test-Role-ABC/pullthrough-test-Function is not "
        "authorized to perform: ecr:DescribePullThroughCacheRules on resource: * because no identity-based policy "
        "allows the ecr:DescribePullThroughCacheRules action",
        400,
    )
    # And outside the function the same call is not evaluated
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


@pytest.mark.parametrize(
    ("service", "call", "code", "status", "modelled"),
    [
        ("sns", lambda c: c.publish(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:t", Message="m"), "AuthorizationError",
         403, "AuthorizationErrorException"),
        ("sqs", lambda c: c.send_message(QueueUrl=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/q", MessageBody="m"),
         "AccessDenied", 403, "ClientError"),
        ("dynamodb", lambda c: c.get_item(TableName="t", Key={"pk": {"S": "x"}}), "AccessDeniedException", 400,
         "ClientError"),
        ("secretsmanager", lambda c: c.get_secret_value(SecretId="ecr-pullthroughcache/x"), "AccessDeniedException",
         400, "ClientError"),
        ("events", lambda c: c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
         "AccessDeniedException", 400, "AccessDeniedException"),
    ],
)  # fmt: skip
def test_each_service_refuses_with_its_own_code(aws: None, service: str, call: Any, code: str, status: int,
                                                 modelled: str) -> None:  # fmt: skip
    # Given a role that allows nothing of this service (and a table, for DynamoDB's key lookup)
    if service == "dynamodb":
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
    # When the function calls it
    with iam.acting_as(principal(allow("s3:GetObject"))), pytest.raises(ClientError) as refused:
        call(client)
    # Then the code, the HTTP status and botocore's exception class are the service's (guard's table and models)
    found, message, http = code_and_message(refused)
    assert (found, http) == (code, status)
    assert "is not authorized to perform" in message
    assert "because no identity-based policy allows" in message
    assert type(refused.value).__name__ == modelled
    if service == "sqs":  # SQS writes the action in lower case
        assert "perform: sqs:sendmessage on resource: arn:aws:sqs:us-east-1:123456789012:q" in message


def test_a_missing_dependent_action_refuses_the_call_and_names_it(aws: None) -> None:
    # Given a role that may create pull-through cache rules, but not the service-linked role ECR then creates
    acting = principal(allow("ecr:CreatePullThroughCacheRule"))
    ecr = boto3.client("ecr", region_name=REGION)
    # When it creates a rule
    with iam.acting_as(acting), pytest.raises(ClientError) as refused:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    # Then the refusal names the dependent action and the role's ARN
    _, message, _ = code_and_message(refused)
    assert "iam:CreateServiceLinkedRole on resource: arn:aws:iam::123456789012:role/aws-service-role/" in message
    assert "pullthroughcache.ecr.amazonaws.com/AWSServiceRoleForECRPullThroughCache" in message


def test_a_dependent_action_is_evaluated_with_its_own_condition_both_ways() -> None:
    # Given roles that may create service-linked roles for one service name or for another
    slr = "arn:aws:iam::123456789012:role/aws-service-role/*"
    create = allow(["ecr:CreatePullThroughCacheRule"])

    def linked_role_for(service: str) -> dict[str, Any]:
        condition = {"StringEquals": {"iam:AWSServiceName": service}}
        return allow("iam:CreateServiceLinkedRole", slr, Condition=condition)

    right = principal(create, linked_role_for("pullthroughcache.ecr.amazonaws.com"))
    wrong = principal(create, linked_role_for("ecr.amazonaws.com"))
    params = {"ecrRepositoryPrefix": "quay", "upstreamRegistryUrl": "quay.io"}
    # When each creates a rule, Then only the one scoped to ECR's pull-through cache service may
    for acting, allowed in ((right, True), (wrong, False)):
        asked = iam_requests.requests_for(acting, "ecr", "CreatePullThroughCacheRule", params, REGION)
        assert (iam.authorize(acting, asked) is None) is allowed


def test_an_allowed_call_reaches_moto_and_threads_act_as_the_function(aws: None) -> None:
    # Given a role that may describe rules, and a worker pool as warm_images uses
    acting = principal(allow("ecr:DescribePullThroughCacheRules"), allow("ecr:GetAuthorizationToken"))
    ecr = boto3.client("ecr", region_name=REGION)
    with iam.recording() as seen, iam.acting_as(acting), concurrent.futures.ThreadPoolExecutor(2) as pool:
        # When calls are made on other threads
        results = list(pool.map(lambda _: ecr.describe_pull_through_cache_rules(), range(2)))
        refused = pool.submit(ecr.list_images, repositoryName="docker-hub/library/nginx").exception()
    # Then they were evaluated as the function: allowed ones answered, the other refused
    assert all(r["pullThroughCacheRules"] == [] for r in results)
    assert isinstance(refused, ClientError)
    assert [d.request.action for _, d in seen].count("ecr:DescribePullThroughCacheRules") == 2
    assert iam.current() is None


def test_an_operation_the_sandbox_cannot_map_is_never_let_through(aws: None) -> None:
    with iam.acting_as(principal(allow("*"))), pytest.raises(iam_requests.Unmapped, match="ecr:DeleteLifecyclePolicy"):
        boto3.client("ecr", region_name=REGION).delete_lifecycle_policy(repositoryName="xy")


# --- the evaluation logic --------------------------------------------------------------------------------------------


def test_an_explicit_deny_beats_any_allow() -> None:
    acting = role(allow("ecr:*"), {"Effect": "Deny", "Action": "ecr:DeletePullThroughCacheRule", "Resource": "*"})
    denied = iam.evaluate(acting, ask("ecr:DeletePullThroughCacheRule"))
    assert (denied.allowed, denied.explicit_deny) == (False, True)
    assert iam.evaluate(acting, ask("ecr:DescribePullThroughCacheRules")).allowed
    message = iam.denial_message(principal(), denied)
    assert message.endswith("on resource: * with an explicit deny in an identity-based policy")


def test_default_deny_and_the_statement_that_allowed() -> None:
    acting = role(allow("sns:Publish", "arn:aws:sns:us-east-1:123456789012:reports", Sid="PublishReports"))
    allowed = iam.evaluate(acting, ask("SNS:publish", "arn:aws:sns:us-east-1:123456789012:reports"))
    assert allowed.allowed
    assert allowed.statement is not None
    assert allowed.statement.name == "Inline/PublishReports"
    assert not iam.evaluate(acting, ask("sns:Publish", "arn:aws:sns:us-east-1:123456789012:other")).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [("kms:GenerateDataKey*", "kms:GenerateDataKey", True), ("kms:GenerateDataKey*", "kms:GenerateDataKeyPair", True),
     ("kms:GenerateDataKey*", "kms:Decrypt", False), ("ecr:Batch?etImage", "ecr:BatchGetImage", True),
     ("ecr:*", "ecr:CreateRepository", True), ("ecr:*", "iam:PassRole", False)],
)  # fmt: skip
def test_action_wildcards(pattern: str, action: str, matches: bool) -> None:
    assert iam.evaluate(role(allow(pattern)), ask(action)).allowed is matches


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        ("arn:*:ecr:*:*:repository/docker-hub/*", "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/a/b", True),
        ("arn:*:ecr:*:*:repository/docker-hub/*", "arn:aws:ecr:us-east-1:123456789012:repository/docker-hubx/a", False),
        ("arn:*:ecr:*:*:repository/docker-hub", "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/a", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/*",
         "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf", True),
        # A wildcard stays inside its ARN part: the account cannot leak into the region.
        ("arn:aws:sns:us-*:reports", "arn:aws:sns:us-east-1:123456789012:reports", False),
        ("arn:aws:ecr:*:*:repository/*", "*", False),  # an action with no resource type is requested on "*"
        ("*", "*", True),
    ],
)  # fmt: skip
def test_resource_wildcards_match_part_by_part(pattern: str, resource: str, matches: bool) -> None:
    assert (
        iam.evaluate(role(allow("ecr:BatchGetImage", pattern)), ask("ecr:BatchGetImage", resource)).allowed is matches
    )


def test_not_action_and_not_resource() -> None:
    acting = role({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:sns:us-east-1:123456789012:x"})
    assert iam.evaluate(acting, ask("sns:Publish", "arn:aws:sns:us-east-1:123456789012:y")).allowed
    assert not iam.evaluate(acting, ask("sns:Publish", "arn:aws:sns:us-east-1:123456789012:x")).allowed
    assert not iam.evaluate(acting, ask("iam:PassRole", "arn:aws:iam::123456789012:role/r")).allowed


LEDGER = "arn:aws:dynamodb:us-east-1:123456789012:table/ledger"
RUNS = allow(
    "dynamodb:Query", LEDGER, Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RUN#*", "OPEN"]}}
)


@pytest.mark.parametrize(
    ("keys", "allowed"),
    [(("RUN#1",), True), (("OPEN", "RUN#2"), True), (("OWNED",), False), (("RUN#1", "OWNED"), False)],
)
def test_leading_keys_every_value_must_match(keys: tuple[str, ...], allowed: bool) -> None:
    request = Authorization("dynamodb:Query", LEDGER, {"dynamodb:leadingkeys": keys})
    assert iam.evaluate(role(RUNS), request).allowed is allowed


def test_requested_region_and_resource_account_both_ways() -> None:
    pinned = role(
        allow("ecr:BatchGetImage", "arn:*:ecr:*:*:repository/hub/*",
              Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-3", "aws:ResourceAccount": "111122223333"}})
    )  # fmt: skip
    there = "arn:aws:ecr:eu-west-3:111122223333:repository/hub/a"
    elsewhere = "arn:aws:ecr:us-east-1:444455556666:repository/hub/a"

    def asked(arn: str, region: str, account: str) -> Authorization:
        return ask("ecr:BatchGetImage", arn, **{"aws:RequestedRegion": region, "aws:ResourceAccount": account})

    ok = asked(there, "eu-west-3", "111122223333")
    wrong_region = asked(there, "us-east-1", "111122223333")
    wrong_account = asked(elsewhere, "eu-west-3", "444455556666")
    assert iam.evaluate(pinned, ok).allowed
    assert not iam.evaluate(pinned, wrong_region).allowed
    assert not iam.evaluate(pinned, wrong_account).allowed


def test_requested_region_comes_from_the_client(aws: None) -> None:
    # Given a role pinned to us-east-1
    acting = principal(
        allow("ecr:DescribePullThroughCacheRules", Condition={"StringEquals": {"aws:RequestedRegion": REGION}})
    )
    # Then a client of that region may call, one of another region may not
    with iam.acting_as(acting):
        boto3.client("ecr", region_name=REGION).describe_pull_through_cache_rules()
        with pytest.raises(ClientError):
            boto3.client("ecr", region_name="eu-west-1").describe_pull_through_cache_rules()


@pytest.mark.parametrize(
    ("operator", "context", "holds"),
    [
        ("StringEquals", {}, False),  # a missing key never equals
        ("StringNotEquals", {}, True),  # ...and a negated operator holds
        ("StringEqualsIfExists", {}, True),
        ("StringEqualsIfExists", {"k": "other"}, False),
        ("ForAnyValue:StringLike", {}, False),
        ("ForAllValues:StringLike", {}, True),  # the documented pitfall of ForAllValues on a missing key
        ("StringEqualsIgnoreCase", {"k": "VALUE"}, True),
        ("StringLike", {"k": "x-value"}, False),  # the whole value must match
        ("Bool", {"k": "TRUE"}, False),
    ],
)
def test_condition_operators(operator: str, context: dict[str, str], holds: bool) -> None:
    assert condition_holds(operator, "K", ["value", "v*"] if "Like" in operator else "value", context) is holds


def test_null_and_bool() -> None:
    assert condition_holds("Null", "k", "true", {})
    assert not condition_holds("Null", "k", "true", {"k": "x"})
    assert condition_holds("Bool", "aws:SecureTransport", "true", {"aws:securetransport": "true"})


def test_what_the_sandbox_does_not_evaluate_is_refused_loudly() -> None:
    with pytest.raises(UnsupportedPolicy):
        condition_holds("NumericLessThan", "k", "1", {"k": "0"})
    with pytest.raises(UnsupportedPolicy):
        condition_holds("StringEquals", "k", "${aws:username}", {"k": "x"})
    with pytest.raises(UnsupportedPolicy):
        condition_holds("StringEquals", "k", "x", {"k": ("x", "y")})  # a multivalued key needs a set operator


# --- the registry endpoint's side ------------------------------------------------------------------------------------


def test_a_registry_token_names_the_principal_that_asked(aws: None) -> None:
    # Given a function that may get a registry token
    acting = principal(allow("ecr:GetAuthorizationToken"))
    ecr = boto3.client("ecr", region_name=REGION)
    with iam.acting_as(acting):
        inside = ecr.get_authorization_token()["authorizationData"][0]
    outside = ecr.get_authorization_token()["authorizationData"][0]

    # Then its token leads back to it, a token got outside a function to no one, and both live 12 hours (ECR's model)
    def password(entry: dict[str, Any]) -> str:
        return base64.b64decode(entry["authorizationToken"]).decode().partition(":")[2]

    assert iam.principal_of_token(password(inside)) == acting
    assert iam.principal_of_token(password(outside)) is None
    assert password(outside) == f"{ACCOUNT}-auth-token"
    for entry in (inside, outside):
        assert timedelta(hours=11, minutes=59) < entry["expiresAt"] - datetime.now(UTC) <= timedelta(hours=12)
    header = "Basic " + inside["authorizationToken"]
    # And a pull by that token is authorized as the function: refused here, with ECR's 403 DENIED
    denied = iam.registry_denial(header, "docker-hub/library/nginx", "blob")
    assert denied is not None
    assert denied[0] == 403
    assert b'"DENIED"' in denied[1]
    assert b"ecr:GetDownloadUrlForLayer" in denied[1]
    assert iam.registry_denial("Basic " + outside["authorizationToken"], "docker-hub/library/nginx", "blob") is None
