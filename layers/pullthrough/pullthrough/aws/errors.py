"""Translate botocore errors into the library's AwsError types, naming the operation and the resource.

Every adapter wraps its calls in `aws_call`, so no caller ever sees a botocore exception and every message says
which call failed on what, and what to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from pullthrough.errors import AwsAccessDenied, AwsAlreadyExists, AwsError, AwsNotFound, AwsThrottled

# Codes that do not carry their meaning in their name, each from the model of a service Pullthrough calls or AWS's
# "Common Errors" list (tests/contracts/test_error_codes.py holds every one to its source).
_NOT_FOUND = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}  # SQS (JSON, and its query code)
_ALREADY_EXISTS = {"ResourceExistsException"}  # Secrets Manager CreateSecret
_ACCESS_DENIED = {
    "AuthorizationError",  # SNS
    "UnrecognizedClientException",  # common: the access key is unknown
    "InvalidClientTokenId",  # common (query services)
    "ExpiredTokenException",  # common: the session token expired
    # A KMS key that will not decrypt (no kms:Decrypt for the role in the key policy, or the key is disabled): Secrets
    # Manager's DecryptionFailure, and SNS's codes for the topic's key (KMSAccessDenied is caught by its name).
    "DecryptionFailure",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSOptInRequired",
}
# botocore's own list of throttling codes (botocore.retries.standard), the ones its standard retry mode waits out.
_THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
}


def translate(error: ClientError, operation: str, resource: str) -> AwsError:
    """The AwsError subclass for a botocore ClientError on `operation` (e.g. "sns:Publish") against `resource`."""
    info = error.response.get("Error", {})
    code = str(info.get("Code") or "Unknown")
    text = str(info.get("Message") or error)
    if code in _THROTTLED or "Throttl" in code:
        return AwsThrottled(operation, resource, code, f"{text}; AWS still refused after retries: retry later")
    if code in _ACCESS_DENIED or "AccessDenied" in code:
        fix = f"grant {operation} on {resource} to the function's role (template.yaml) or check the key policy"
        return AwsAccessDenied(operation, resource, code, f"{text}; {fix}")
    if code in _NOT_FOUND or "NotFound" in code:
        return AwsNotFound(operation, resource, code, f"{text}; check that it exists in this account and region")
    if code in _ALREADY_EXISTS or "AlreadyExists" in code:
        return AwsAlreadyExists(operation, resource, code, f"{text}; another run may have created it first")
    return AwsError(operation, resource, code, text)


@contextmanager
def aws_call(operation: str, resource: str) -> Iterator[None]:
    """Run one AWS call; a botocore error leaves it as the matching AwsError, the original chained as its cause."""
    try:
        yield
    except ClientError as error:
        raise translate(error, operation, resource) from error
    except NoCredentialsError as error:
        raise AwsAccessDenied(
            operation, resource, "NoCredentials", f"{error}; set AWS credentials or run with an IAM role"
        ) from error
    except BotoCoreError as error:
        # Connection failures, timeouts and bad parameters: the class name is the most precise code there is.
        raise AwsError(operation, resource, type(error).__name__, str(error)) from error
