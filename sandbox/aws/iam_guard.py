"""The hook that puts every botocore call made as a function's principal before IAM, and refuses as AWS refuses.

`install()` wraps botocore's `BaseClient._make_api_call` once for the process. While a principal is set
(`sandbox.aws.iam.acting_as`, which `Stack.invoke` uses) each call is mapped to what it asks IAM for
(`sandbox.aws.iam_requests`) and evaluated against the principal's role (`sandbox.aws.iam`); a refused call never
reaches moto. The refusal is the HTTP error AWS sends, in the service's own protocol, parsed by botocore's own parser
and raised as botocore raises it, so callers see exactly the ClientError (code, message, HTTP status, modelled
exception class) they would see from AWS.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from botocore.client import BaseClient
from botocore.parsers import create_parser

from sandbox.aws import iam, iam_assumed, iam_requests

_lock = threading.Lock()
_original: Any = None

# The error AWS answers an identity-policy refusal with, per service: (code, HTTP status).
# - JSON protocol services answer AccessDeniedException with 400 (the "Common Errors" page of each API reference:
#   ECR, Secrets Manager, DynamoDB, EventBridge, KMS).
# - SQS speaks JSON but is "awsQueryCompatible" in botocore's model: it adds the query code in the
#   x-amzn-query-error header, and botocore reports that code, AccessDenied (a real refusal of SendMessageBatch is
#   quoted in aws/serverless-application-model#3633: "An error occurred (AccessDenied) ...").
# - SNS (query protocol) models AuthorizationErrorException as code AuthorizationError, HTTP 403 (botocore's SNS
#   model); a publisher refused the topic's KMS key gets KMSAccessDenied, 400 (the same model, Publish's errors).
# - IAM and STS (query protocol) answer AccessDenied, 403.
_DENIED: dict[str, tuple[str, int]] = {
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "iam": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
}
_DEFAULT = ("AccessDeniedException", 400)


def install() -> None:
    """Wrap botocore's API call once for the process (idempotent). Calls without a principal are untouched."""
    global _original
    with _lock:
        if _original is not None:
            return
        _original = BaseClient._make_api_call

        def guarded(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            principal = iam.current()
            if principal is None:
                return _original(self, operation_name, api_params)
            # A call signed with keys the function assumed is the assumed role's (sandbox/aws/iam_assumed.py).
            principal = iam_assumed.principal_of(self) or principal
            _check(self, principal, operation_name, api_params)
            if self.meta.service_model.service_name == "sts" and operation_name == "AssumeRole":
                if iam_assumed.role_of(str(api_params["RoleArn"])) is None:
                    _refuse_missing_role(self, principal, str(api_params["RoleArn"]))
                answer = _original(self, operation_name, api_params)
                iam_assumed.remember(answer, principal.region)
                return answer
            return _original(self, operation_name, api_params)

        BaseClient._make_api_call = guarded  # type: ignore[method-assign]


def _check(client: BaseClient, principal: iam.Principal, operation: str, params: dict[str, Any]) -> None:
    model = client.meta.service_model
    region = client.meta.region_name or principal.region
    requests = iam_requests.requests_for(principal, model.service_name, operation, params, region)
    refused = iam.authorize(principal, requests)
    if refused is None:
        return
    code, status = _DENIED.get(model.service_name, _DEFAULT)
    if model.service_name == "sns" and refused.request.action.startswith("kms:"):
        code, status = "KMSAccessDenied", 400
    message = iam.denial_message(principal, refused)
    if model.service_name == "sqs":
        # SQS names the action in lower case ("not authorized to perform: sqs:sendmessage ... allows the
        # sqs:sendmessage action", as quoted from AWS in aws/serverless-application-model#3633).
        message = message.replace(refused.request.action, refused.request.action.lower())
    parsed = _parse_error(client, operation, code, status, message)
    raise client.exceptions.from_code(code)(parsed, operation)


def _refuse_missing_role(client: BaseClient, principal: iam.Principal, role: str) -> None:
    # STS answers a role that does not exist (or does not trust the caller) with AccessDenied, 403 (STS API
    # Reference, AssumeRole; "Common Errors").
    message = f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {role}"
    parsed = _parse_error(client, "AssumeRole", "AccessDenied", 403, message)
    raise client.exceptions.from_code("AccessDenied")(parsed, "AssumeRole")


def _parse_error(client: BaseClient, operation: str, code: str, status: int, message: str) -> dict[str, Any]:
    """The error response as the service sends it, run through botocore's parser for the service's protocol."""
    model = client.meta.service_model
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if model.protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    elif model.protocol == "json":
        body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
        headers["Content-Type"] = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        if "awsQueryCompatible" in model.metadata:
            headers["x-amzn-query-error"] = f"{code};Sender"
    else:
        raise NotImplementedError(f"{model.service_name}: the sandbox does not write {model.protocol} errors")
    response = {"status_code": status, "headers": headers, "body": body}
    shape = model.operation_model(operation).output_shape
    parsed: dict[str, Any] = create_parser(model.protocol).parse(response, shape)
    return parsed


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
