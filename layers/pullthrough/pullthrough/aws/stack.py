"""The deployed stack's resources, from CloudFormation: where a command run from a terminal finds the ledger table.

A Lambda function gets LEDGER_TABLE and TEMPLATE_ROLE_ARN from template.yaml; an operator's shell has neither, so
the CLI asks CloudFormation for the stack's physical resource ids (DescribeStackResources, read-only; it returns
every resource of a stack: the API reference says it lists up to 100, and template.yaml declares fewer).
"""

from __future__ import annotations

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call
from pullthrough.errors import AwsError


def physical_ids(stack: str, region: str | None = None) -> dict[str, str]:
    """Logical id -> physical id of every resource of `stack`; empty when there is no such stack.

    Any other refusal (access denied, throttling, no credentials) raises AwsError: "no stack" must mean that, since
    `pullthrough uninstall` removes what a deployed stack would put back only when there is none.
    """
    try:
        with aws_call("cloudformation:DescribeStackResources", f"stack {stack}"):
            response = clients.client("cloudformation", region).describe_stack_resources(StackName=stack)
    except AwsError as exc:
        # CloudFormation API reference: a stack that does not exist is a ValidationError, "Stack with id X does not
        # exist"; the caller says what it could not find, and how.
        if exc.code == "ValidationError" and "does not exist" in exc.message:
            return {}
        raise
    return {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for resource in response.get("StackResources") or []
        if resource.get("PhysicalResourceId")
    }
