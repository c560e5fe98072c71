"""Who the caller is: the account id of the credentials in use (STS GetCallerIdentity).

GetCallerIdentity needs no permission ("No permissions are required to perform this operation": the STS API
reference), so any working credentials can answer it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pullthrough.aws import clients
from pullthrough.aws.errors import aws_call

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient


def account_id(region: str | None = None, client: STSClient | None = None) -> str:
    """The 12-digit account id of the caller's credentials."""
    sts = client if client is not None else clients.client("sts", region)
    with aws_call("sts:GetCallerIdentity", "the caller's credentials"):
        return sts.get_caller_identity()["Account"]
