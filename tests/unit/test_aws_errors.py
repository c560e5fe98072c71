"""botocore errors become the library's AwsError types at the adapter boundary (pullthrough/aws/errors.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from pullthrough.aws.errors import aws_call, translate
from pullthrough.errors import AwsAccessDenied, AwsAlreadyExists, AwsError, AwsNotFound, AwsThrottled

TOPIC = "arn:aws:sns:us-east-1:123456789012:pullthrough-reports"


def client_error(code: str, message: str = "something happened", operation: str = "Publish") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("NotFound", AwsNotFound),  # SNS: topic does not exist
        ("ResourceNotFoundException", AwsNotFound),  # Secrets Manager, DynamoDB
        ("PullThroughCacheRuleNotFoundException", AwsNotFound),
        ("RepositoryNotFoundException", AwsNotFound),
        ("AWS.SimpleQueueService.NonExistentQueue", AwsNotFound),
        ("PullThroughCacheRuleAlreadyExistsException", AwsAlreadyExists),
        ("ResourceExistsException", AwsAlreadyExists),  # Secrets Manager
        ("AuthorizationError", AwsAccessDenied),  # SNS
        ("AccessDeniedException", AwsAccessDenied),
        ("KMSAccessDeniedException", AwsAccessDenied),
        ("ExpiredTokenException", AwsAccessDenied),
        ("KMSDisabled", AwsAccessDenied),  # SNS: the topic's key is disabled
        ("ThrottlingException", AwsThrottled),
        ("Throttling", AwsThrottled),
        ("TooManyRequestsException", AwsThrottled),
        ("ProvisionedThroughputExceededException", AwsThrottled),
        ("InvalidParameter", AwsError),
        ("ValidationException", AwsError),
    ],
)
def test_each_error_code_maps_to_its_type(code: str, kind: type[AwsError]) -> None:
    # Given a ClientError with this code / When translated / Then it is exactly that AwsError type, code kept
    error = translate(client_error(code), "sns:Publish", TOPIC)
    assert type(error) is kind
    assert error.code == code


def test_the_message_names_operation_resource_code_and_what_to_do() -> None:
    error = translate(client_error("AuthorizationError", "User is not authorized"), "sns:Publish", TOPIC)
    assert error.operation == "sns:Publish"
    assert error.resource == TOPIC
    assert str(error) == (
        f"sns:Publish on {TOPIC} failed: AuthorizationError: User is not authorized; grant sns:Publish on {TOPIC} "
        "to the function's role (template.yaml) or check the key policy"
    )


def test_aws_call_chains_the_original_error() -> None:
    original = client_error("NotFound", "Topic does not exist")
    with (
        pytest.raises(AwsNotFound, match="check that it exists in this account and region") as caught,
        aws_call("sns:Publish", TOPIC),
    ):
        raise original
    assert caught.value.__cause__ is original


def test_missing_credentials_read_as_access_denied() -> None:
    with pytest.raises(AwsAccessDenied, match="NoCredentials"), aws_call("sns:Publish", TOPIC):
        raise NoCredentialsError()


def test_connection_failures_keep_their_class_name_as_code() -> None:
    with pytest.raises(AwsError) as caught, aws_call("sns:Publish", TOPIC):
        raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com/")
    assert caught.value.code == "EndpointConnectionError"
    assert "sns.us-east-1.amazonaws.com" in str(caught.value)


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), aws_call("sns:Publish", TOPIC):
        raise KeyError("not an AWS error")
