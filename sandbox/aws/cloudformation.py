"""CloudFormation's side of a custom resource, for `sandbox.stack.Stack`: the request it sends, the answer it reads.

AWS CloudFormation User Guide, "Custom resource request and response reference": CloudFormation invokes the
ServiceToken's function with RequestType Create, Update (with OldResourceProperties) or Delete, and waits for a JSON
answer PUT to the request's presigned S3 ResponseURL ("Custom resource response objects": Status SUCCESS or FAILED,
Reason required when FAILED, PhysicalResourceId non-empty and the same for every answer about the resource, StackId,
RequestId and LogicalResourceId copied from the request, Data; the body at most 4096 bytes). `Fn::GetAtt` on the
resource reads Data's keys; a missing key fails the stack operation.

The presigned URL is served here on 127.0.0.1 by a small HTTP server for the duration of one request.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_RESPONSE_BYTES = 4096


class DeployFailed(Exception):
    """The stack operation failed, as CloudFormation would report it (the resource and the reason)."""


@dataclass
class Received:
    """The answers PUT to the response URL."""

    bodies: list[bytes] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)


@contextmanager
def response_url() -> Iterator[tuple[str, Received]]:
    """A presigned-URL stand-in on 127.0.0.1 for one request: the URL to hand the provider, and what it received."""
    received = Received()
    path = f"/cloudformation-custom-resource-response/{uuid.uuid4()}"

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != path:
                self.send_response(403)  # a presigned URL is good for its own object only
            else:
                received.bodies.append(body)
                received.content_types.append(self.headers.get("Content-Type"))
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="cloudformation-response", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class CustomResource:
    """The custom resource a request is about: its logical id, type, ServiceToken and resolved properties."""

    logical_id: str
    resource_type: str
    service_token: str
    properties: dict[str, Any]


def request(
    request_type: str,
    resource: CustomResource,
    *,
    url: str,
    stack_id: str,
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request event CloudFormation sends the provider."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": resource.service_token,
        "ResponseURL": url,
        "StackId": stack_id,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": resource.logical_id,
        "ResourceType": resource.resource_type,
        # CloudFormation hands every property over as a string (numbers included), ServiceToken among them.
        "ResourceProperties": _strings(resource.properties),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = _strings(old_properties)
    return event


def read_answer(event: dict[str, Any], received: Received) -> dict[str, Any]:
    """The provider's answer to `event`, checked as CloudFormation checks it; DeployFailed when the operation fails."""
    where = f"{event['LogicalResourceId']} ({event['ResourceType']}, {event['RequestType']})"
    if not received.bodies:
        raise DeployFailed(f"{where}: no answer at the ResponseURL; CloudFormation waits out ServiceTimeout and fails")
    body = received.bodies[-1]
    if len(body) > MAX_RESPONSE_BYTES:
        raise DeployFailed(f"{where}: Response object is too long ({len(body)} bytes, at most {MAX_RESPONSE_BYTES})")
    try:
        answer: dict[str, Any] = json.loads(body)
    except ValueError:
        raise DeployFailed(f"{where}: the answer is not JSON") from None
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if answer.get(key) != event[key]:
            raise DeployFailed(f"{where}: the answer's {key} is not the request's")
    if not answer.get("PhysicalResourceId"):
        raise DeployFailed(f"{where}: the answer has no PhysicalResourceId")
    if event.get("PhysicalResourceId") and answer["PhysicalResourceId"] != event["PhysicalResourceId"]:
        # A new id is a replacement: CloudFormation would create anew and delete the old one; ConfigFacts never does.
        raise DeployFailed(f"{where}: the answer changed PhysicalResourceId, which would replace the resource")
    status = answer.get("Status")
    if status == "FAILED":
        raise DeployFailed(f"{where}: {answer.get('Reason') or 'failed without a reason'}")
    if status != "SUCCESS":
        raise DeployFailed(f"{where}: Status must be SUCCESS or FAILED, not {status!r}")
    return answer


def _strings(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _strings(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_strings(item) for item in node]
    if isinstance(node, bool):
        return str(node).lower()
    return str(node) if isinstance(node, int | float) else node
