"""A stack deployed into another account of moto: its resources are that account's, its functions act in it.

sandbox/aws/accounts.py: moto picks a request's account from its credentials (STS AssumeRole into the account);
Lambda gives a function its execution role's keys, and a function of another account never shares an execution
environment (the library's cached clients) with one of this account.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pullthrough.aws import clients
from sandbox.aws import accounts
from sandbox.aws.deployed_functions import environment_set
from sandbox.stack import Stack
from tests.fake_aws import fake_aws

MEMBER, REGION = "222222222222", "eu-west-1"


@pytest.fixture
def member_stack() -> Iterator[Stack]:
    with fake_aws(REGION):
        yield Stack(stack_name="pullthrough-member", account=MEMBER, region=REGION).deploy()


def topics(account: str) -> list[str]:
    found = accounts.client("sns", REGION, account).list_topics()["Topics"]
    return sorted(t["TopicArn"] for t in found)


def test_a_stack_deployed_into_an_account_creates_its_resources_there(member_stack: Stack) -> None:
    created = topics(MEMBER)
    assert created
    assert all(arn.split(":")[4] == MEMBER for arn in created)
    assert topics(accounts.DEFAULT_ACCOUNT) == []
    queues = accounts.client("sqs", REGION, MEMBER).list_queues().get("QueueUrls", [])
    assert queues
    assert accounts.client("sqs", REGION).list_queues().get("QueueUrls", []) == []


def test_a_function_of_that_stack_acts_in_its_account_with_clients_of_its_own(member_stack: Stack) -> None:
    function = next(iter(member_stack.functions()))
    kept = clients.client("sts", REGION)  # a client of the test's own account, cached by the library
    assert kept.get_caller_identity()["Account"] == accounts.DEFAULT_ACCOUNT
    with accounts.own_environment(MEMBER), environment_set(member_stack.environment(function)):
        assert clients.client("sts", REGION).get_caller_identity()["Account"] == MEMBER
    assert clients.client("sts", REGION) is not kept  # nothing of the member's environment outlives it either
