"""Every AWS error code the library maps or compares is one AWS's own material names for the calls it comes from.

A code nobody sends is a branch that never runs: an error then falls through to the generic AwsError, without the
fix the mapping promised. Each code below names where it comes from: botocore's model of an operation the library
calls with it (or of the service), AWS's "Common Errors" list, botocore's own list of throttling codes, or a named
page. The library is scanned for code literals, so a new one cannot be added without its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
from botocore.retries.standard import ThrottledRetryableChecker

from pullthrough.aws import errors
from pullthrough.warm.worker import IMAGE_FAILURES

LIBRARY = Path(errors.__file__).resolve().parents[1]
SESSION = botocore.session.get_session()
COMMON = "https://docs.aws.amazon.com/awsconsolehelpdocs/latest/gsg/common-errors.html"
COMMON_QUERY = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html"


@dataclass(frozen=True)
class Modelled:
    """An error shape of these operations in botocore's model (its `error.code`, else its name)."""

    service: str
    operations: tuple[str, ...]


@dataclass(frozen=True)
class Common:
    """On AWS's "Common Errors" list, which botocore does not model."""

    page: str = COMMON


@dataclass(frozen=True)
class Throttling:
    """In botocore's standard retry mode's list of throttling codes (botocore.retries.standard)."""


@dataclass(frozen=True)
class Documented:
    """Named by a page that says where it comes from."""

    source: str


Source = Modelled | Common | Throttling | Documented

# Every code the library maps or compares, by where it is used.
CODES: dict[str, Source] = {
    # aws/errors.py: the translator every call of the library goes through.
    "QueueDoesNotExist": Modelled("sqs", ("SendMessageBatch",)),
    "AWS.SimpleQueueService.NonExistentQueue": Documented(
        "SQS API Reference, QueueDoesNotExist: SQS is query-compatible, so it also sends its query code in the "
        "x-amzn-query-error header, and botocore reports that code (botocore/parsers.py, awsQueryCompatible)"
    ),
    "ResourceExistsException": Modelled("secretsmanager", ("CreateSecret",)),
    "AuthorizationError": Modelled("sns", ("Publish",)),
    "UnrecognizedClientException": Common(),
    "InvalidClientTokenId": Common(COMMON_QUERY),
    "ExpiredTokenException": Common(),
    "DecryptionFailure": Modelled("secretsmanager", ("GetSecretValue",)),
    "KMSDisabled": Modelled("sns", ("Publish",)),
    "KMSInvalidState": Modelled("sns", ("Publish",)),
    "KMSNotFound": Modelled("sns", ("Publish",)),
    "KMSOptInRequired": Modelled("sns", ("Publish",)),
    **dict.fromkeys(sorted(errors._THROTTLED), Throttling()),
    # aws/ledger.py and aws/ownership.py: conditional writes and transactions.
    "ConditionalCheckFailedException": Modelled("dynamodb", ("PutItem", "UpdateItem")),
    "TransactionCanceledException": Modelled("dynamodb", ("TransactWriteItems",)),
    "ConditionalCheckFailed": Documented(
        "DynamoDB API Reference, TransactWriteItems / TransactionCanceledException: a cancellation reason's Code "
        "(botocore's model documents it on TransactionCanceledException)"
    ),
    # warming.py and importing.py: which reason an import ECR refused gets (ECR's answers about the image).
    "UnableToGetUpstreamImageException": Modelled("ecr", ("BatchGetImage",)),
    "UnableToGetUpstreamLayerException": Modelled("ecr", ("GetDownloadUrlForLayer",)),
    "LayerInaccessibleException": Modelled("ecr", ("GetDownloadUrlForLayer",)),
    "LayersNotFoundException": Modelled("ecr", ("GetDownloadUrlForLayer",)),
    "UpstreamAccessDenied": Documented(
        "botocore's ECR model, ImageFailureCode enum: a BatchGetImage failure code, not an error shape "
        "(test_image_failure_codes_are_the_ones_ecr_models checks all of them)"
    ),
    "EndpointConnectionError": Documented(
        "botocore/exceptions.py: the class of a connection that never reached the endpoint; aws/errors.py reports a "
        "BotoCoreError's class name as its code"
    ),
    "ConnectTimeoutError": Documented("botocore/exceptions.py, as EndpointConnectionError"),
    "ConnectionClosedError": Documented("botocore/exceptions.py, as EndpointConnectionError"),
    "ReadTimeoutError": Documented("botocore/exceptions.py, as EndpointConnectionError"),
    "ProxyConnectionError": Documented("botocore/exceptions.py, as EndpointConnectionError"),
    # aws/stack.py: CloudFormation answers a stack that does not exist with this Query-API common error (boto/boto3
    # issue #2807, confirmed by AWS: "ValidationError with a message `Stack with id XXX does not exist`").
    "ValidationError": Documented("https://github.com/boto/boto3/issues/2807 (CloudFormation, stack does not exist)"),
    # rules.py: which fix a failed reconcile call gets.
    "AccessDeniedException": Common(),
    "AccessDenied": Documented(
        "the code botocore reports for an SQS refusal (x-amzn-query-error); a real one is quoted in "
        "aws/serverless-application-model#3633"
    ),
}
# Substrings translate() looks for in a code: each must match a code some called service models.
PATTERNS = ("Throttl", "AccessDenied", "NotFound", "AlreadyExists")
CALLED_SERVICES = ("ecr", "secretsmanager", "dynamodb", "sns", "sqs", "events")
# Literals in the library that look like codes but are Pullthrough's own (an AwsError code it raises itself).
OWN = {"RunExists", "EntriesFailed", "ImageFailure"}  # ImageFailure: aws/ecr.py's class of BatchGetImage failures

# What an AWS error code looks like: CamelCase ending the way AWS's codes end, a KMS... code, or a dotted query code.
_CODE_LITERAL = re.compile(
    r'"((?:[A-Z][a-z]+)+(?:Exception|Error|Failed|Denied|Exists|Failure|Throttled|Exist|Exceeded|TokenId|Operation|Entity|Match)'
    r'|KMS[A-Za-z]+|AWS\.[A-Za-z.]+|Throttling|SlowDown)"'
)


def modelled_codes(service: str, operations: tuple[str, ...] | None = None) -> set[str]:
    model = SESSION.get_service_model(service)
    if operations is None:
        shapes = [model.shape_for(name) for name in model.shape_names]
        shapes = [shape for shape in shapes if shape.metadata.get("exception")]
    else:
        shapes = [shape for op in operations for shape in model.operation_model(op).error_shapes]
    return {shape.metadata.get("error", {}).get("code", shape.name) for shape in shapes}


def library_literals() -> set[str]:
    """Code-like string literals in the adapters, rules/ and warm/, where the library compares codes."""
    found: set[str] = set()
    for path in (path for package in ("aws", "rules", "warm") for path in sorted((LIBRARY / package).rglob("*.py"))):
        found.update(_CODE_LITERAL.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_code_literal_of_the_library_is_listed_with_its_source() -> None:
    # Given the code literals of the adapters and of rules.py, Then each is listed here, or is Pullthrough's own
    unlisted = library_literals() - set(CODES) - OWN - set(PATTERNS)
    assert unlisted == set(), "name where AWS's material has each of these codes"
    # And every code listed is still used (a stale entry hides nothing, but says nothing either)
    mapped = errors._NOT_FOUND | errors._ALREADY_EXISTS | errors._ACCESS_DENIED | errors._THROTTLED
    assert set(CODES) - library_literals() - mapped == set()


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_code_is_one_aws_sends(code: str) -> None:
    source = CODES[code]
    if isinstance(source, Modelled):
        assert code in modelled_codes(source.service, source.operations), (code, source)
    elif isinstance(source, Throttling):
        assert code in ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    elif isinstance(source, Common):
        assert source.page.startswith("https://docs.aws.amazon.com/")
    else:
        assert source.source


def test_the_cancellation_reason_is_the_one_dynamodb_documents() -> None:
    documentation = SESSION.get_service_model("dynamodb").shape_for("TransactionCanceledException").documentation
    assert "ConditionalCheckFailed" in documentation


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_substring_translate_looks_for_matches_a_code_a_called_service_sends(pattern: str) -> None:
    matching = {code for service in CALLED_SERVICES for code in modelled_codes(service) if pattern in code}
    assert matching, f"no service Pullthrough calls models a code containing {pattern!r}"


def test_the_sns_key_codes_are_the_ones_sns_sends() -> None:
    # SNS names a refused or disabled topic key KMSAccessDenied, KMSDisabled, ... (its model's error codes), not the
    # KMSDisabledException of other services: the translator must list SNS's own codes to give the key policy fix.
    sns = modelled_codes("sns", ("Publish",))
    kms = {code for code in sns if code.startswith("KMS") and code != "KMSThrottling"}
    assert kms - {"KMSAccessDenied"} <= errors._ACCESS_DENIED


def test_image_failure_codes_are_the_ones_ecr_models() -> None:
    # Given the BatchGetImage failure codes warming.py gives a reason, Then each is a value of ECR's ImageFailureCode
    modelled = set(botocore.session.get_session().get_service_model("ecr").shape_for("ImageFailureCode").enum)
    assert set(IMAGE_FAILURES) - modelled == set()
