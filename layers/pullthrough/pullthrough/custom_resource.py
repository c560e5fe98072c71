"""CloudFormation's custom resource protocol: read a request, answer it with a PUT to its presigned ResponseURL.

AWS CloudFormation User Guide, "Custom resource request and response reference" and "Custom resource response
objects": a request carries RequestType (Create, Update, Delete), ResponseURL, StackId, RequestId, LogicalResourceId,
PhysicalResourceId (Update, Delete) and ResourceProperties; the answer is a JSON document PUT to ResponseURL with
Status SUCCESS or FAILED, Reason (required when FAILED), PhysicalResourceId (the same for every answer about one
resource, or CloudFormation treats an update as a replacement), StackId, RequestId and LogicalResourceId copied from
the request, and Data; the whole body at most 4096 bytes. Without an answer the stack operation waits for the
resource's ServiceTimeout and fails.

`answer` never raises for a request it can answer: a failure becomes Status FAILED with a reason a person can act
on (the deploy shows it), never a traceback. A Delete is always answered SUCCESS without work: nothing to undo, and a
stack must always be deletable.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pullthrough.errors import EventError, PullthroughError
from pullthrough.observability import logger

__all__ = ["MAX_RESPONSE_BYTES", "Answer", "Request", "answer", "send"]

MAX_RESPONSE_BYTES = 4096  # "The total size of the response body can't exceed 4096 bytes."
_REASON_ROOM = 3000  # what a reason may take, leaving room for the identifiers around it
SEND_ATTEMPTS = 3
SEND_TIMEOUT = 10.0


class Request(BaseModel):
    """The fields of a custom resource request the answer needs."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    response_url: str = Field(alias="ResponseURL", min_length=1)
    stack_id: str = Field(alias="StackId", min_length=1)
    request_id: str = Field(alias="RequestId", min_length=1)
    logical_resource_id: str = Field(alias="LogicalResourceId", min_length=1)
    physical_resource_id: str | None = Field(None, alias="PhysicalResourceId")
    resource_properties: dict[str, Any] = Field(default_factory=dict, alias="ResourceProperties")


class Answer(BaseModel):
    """The response document CloudFormation reads, and what the handler returns for the logs."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, defer_build=True)

    status: Literal["SUCCESS", "FAILED"] = Field(alias="Status")
    reason: str | None = Field(None, alias="Reason")
    physical_resource_id: str = Field(alias="PhysicalResourceId")
    stack_id: str = Field(alias="StackId")
    request_id: str = Field(alias="RequestId")
    logical_resource_id: str = Field(alias="LogicalResourceId")
    data: dict[str, str] = Field(default_factory=dict, alias="Data")

    def body(self) -> bytes:
        """The JSON body PUT to the ResponseURL."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


Sender = Callable[[str, bytes], None]
Compute = Callable[[Request], dict[str, str]]


def send(url: str, body: bytes) -> None:
    """PUT the answer to the presigned URL, as cfn-response does (an empty Content-Type: the URL is signed without
    one); a few attempts, since CloudFormation waits out its timeout when no answer arrives."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - CloudFormation's presigned https URL
            url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
        )
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:  # noqa: S310
                response.read()
            return
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning(
                "the answer to CloudFormation was not delivered", extra={"attempt": attempt, "error": str(exc)}
            )
            if attempt == SEND_ATTEMPTS:
                raise PullthroughError(f"could not deliver the answer to CloudFormation: {exc}") from None


def answer(event: Mapping[str, Any], compute: Compute, *, physical_id: str, sender: Sender | None = None) -> Answer:
    """Answer one request: Data from `compute` for Create and Update, nothing for Delete; FAILED with the reason.

    `sender` delivers the body (`send`, a PUT to the ResponseURL, unless given).
    """
    try:
        request = Request.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in error["loc"]) for error in exc.errors())
        # Without a valid ResponseURL there is nobody to answer; CloudFormation's timeout reports it.
        raise EventError(f"not a CloudFormation custom resource request: missing or invalid {fields}") from None
    status: Literal["SUCCESS", "FAILED"] = "SUCCESS"
    reason: str | None = None
    data: dict[str, str] = {}
    if request.request_type != "Delete":
        try:
            data = compute(request)
        except PullthroughError as exc:
            status, reason = "FAILED", str(exc)
        except Exception as exc:
            status, reason = "FAILED", f"unexpected {type(exc).__name__}: {exc}"
    result = _answer(request, physical_id, status, reason, data)
    if len(result.body()) > MAX_RESPONSE_BYTES:
        size = len(result.body())
        result = _answer(
            request,
            physical_id,
            "FAILED",
            f"the answer is {size} bytes, and CloudFormation takes at most {MAX_RESPONSE_BYTES} from a custom "
            "resource: the config names too many rules or secrets for one deployment; split it into two stacks",
            {},
        )
    if result.status == "FAILED":
        logger.error("custom resource request failed", extra={"reason": result.reason, "request": request.request_type})
    else:
        logger.info("custom resource request answered", extra={"request": request.request_type, "data": data})
    (sender or send)(request.response_url, result.body())
    return result


def _answer(
    request: Request, physical_id: str, status: Literal["SUCCESS", "FAILED"], reason: str | None, data: dict[str, str]
) -> Answer:
    if reason is not None and len(reason) > _REASON_ROOM:
        reason = reason[: _REASON_ROOM - 40] + " ... (the rest is in the function's log)"
    return Answer(
        status=status,
        reason=reason,
        # The request's own id when it has one: a changed id would make CloudFormation replace the resource.
        physical_resource_id=request.physical_resource_id or physical_id,
        stack_id=request.stack_id,
        request_id=request.request_id,
        logical_resource_id=request.logical_resource_id,
        data=data,
    )
