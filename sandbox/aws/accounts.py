"""Several AWS accounts in one moto: credentials that act in a given account, for tests and for deployed functions.

moto keeps every account's state apart and picks the account of a request from its credentials (getmoto/moto,
docs/docs/multi_account.rst, "Configure an account using STS": "Passing in a role that belongs to a different account
will return a set of credentials that give access to that account"; the role need not exist). Requests with any
other credentials act in moto's default account, 123456789012. The environment variable MOTO_ACCOUNT_ID would take
precedence over every credential (same page), so the sandbox never sets it.

`credentials(account, region)` assumes OrganizationAccountAccessRole in the account: the role AWS Organizations
creates in the accounts it creates for the management account to administer them (Organizations User Guide,
"Accessing a member account that has a management account access role").

A function of a stack deployed into another account runs with that account's credentials in its environment, as
Lambda sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the execution role (Lambda Developer
Guide, "Defined runtime environment variables"), and in an execution environment of its own ("Lambda execution
environment": environments are never shared between functions, let alone accounts): the library's cached clients are
dropped before and after each such invocation, with boto3's default session (`own_environment`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from pullthrough.aws import clients

DEFAULT_ACCOUNT = "123456789012"  # moto's (moto.core.DEFAULT_ACCOUNT_ID)
ACCESS_ROLE = "OrganizationAccountAccessRole"


def credentials(account: str, region: str) -> dict[str, str]:
    """boto3 keyword arguments acting in `account` (empty for moto's default account: the environment's keys)."""
    if account == DEFAULT_ACCOUNT:
        return {}
    # A session of its own: boto3's default one would keep the credentials it read now (a function's environment
    # is set after its credentials are made).
    sts = boto3.session.Session().client("sts", region_name=region)
    keys = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ACCESS_ROLE}", RoleSessionName="sandbox")[
        "Credentials"
    ]
    return {
        "aws_access_key_id": keys["AccessKeyId"],
        "aws_secret_access_key": keys["SecretAccessKey"],
        "aws_session_token": keys["SessionToken"],
    }


def client(service: str, region: str, account: str = DEFAULT_ACCOUNT) -> Any:
    """A boto3 client of `service` acting in `account` and `region`."""
    if account == DEFAULT_ACCOUNT:
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]
    session = boto3.session.Session()
    return session.client(service, region_name=region, **credentials(account, region))  # type: ignore[call-overload]


def environment(account: str, region: str) -> dict[str, str]:
    """The credential variables Lambda would give a function of `account` (empty for moto's default account)."""
    found = credentials(account, region)
    if not found:
        return {}
    return {
        "AWS_ACCESS_KEY_ID": found["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": found["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": found["aws_session_token"],
        "AWS_SECURITY_TOKEN": found["aws_session_token"],  # the older name botocore also reads
    }


@contextmanager
def own_environment(account: str) -> Iterator[None]:
    """A function of another account runs in an execution environment of its own: no cached client crosses."""
    if account == DEFAULT_ACCOUNT:
        yield
        return
    # A fresh process: no cached client, and boto3's default session (which keeps the credentials it resolved
    # first) made anew from the function's environment.
    kept_session = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None
    clients.clear()
    try:
        yield
    finally:
        clients.clear()
        boto3.DEFAULT_SESSION = kept_session


__all__ = ["ACCESS_ROLE", "DEFAULT_ACCOUNT", "client", "credentials", "environment", "own_environment"]
