"""Shared fixtures and helpers for the credentials tests: moto (Secrets Manager, ECR with the sandbox's rules).

Imported by the test modules (`from tests.integration.credentials_support import *`-free: by name), so the fixtures
stay next to the tests that use them instead of in a conftest other helpers edit.
"""

from __future__ import annotations

import json
import secrets as random_secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from pullthrough.env import Settings
from tests.fake_aws import fake_aws

if TYPE_CHECKING:
    from sandbox import Sandbox

ACCOUNT = "123456789012"
REGION = "us-east-1"
PREFIX = "ecr-pullthroughcache/"


@dataclass
class Aws:
    """boto3 clients on moto, for arranging state and reading it back (the code under test uses its own)."""

    secrets: Any
    ecr: Any
    sns: Any
    sqs: Any
    topic_arn: str
    queue_url: str

    def create_secret(self, name: str, value: str | dict[str, str], **kwargs: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        arn: str = self.secrets.create_secret(Name=name, SecretString=text, **kwargs)["ARN"]
        return arn

    def value(self, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, str]:
        text = self.secrets.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"]
        data: dict[str, str] = json.loads(text)
        return data

    def stages(self, secret_id: str) -> dict[str, list[str]]:
        result: dict[str, list[str]] = self.secrets.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        return result

    def stage_pending(self, secret_id: str, value: dict[str, str], token: str | None = None) -> str:
        """Put `value` as AWSPENDING with `token` as its version id, as `pullthrough credentials set` does."""
        version = token or str(uuid.uuid4())
        self.secrets.put_secret_value(
            SecretId=secret_id, SecretString=json.dumps(value), VersionStages=["AWSPENDING"], ClientRequestToken=version
        )
        return version

    def placeholder(self, secret_id: str, token: str | None = None) -> str:
        """An empty AWSPENDING version, as Secrets Manager's RotateSecret creates before calling createSecret."""
        from moto.secretsmanager.models import secretsmanager_backends

        version = token or str(uuid.uuid4())
        secret = secretsmanager_backends[ACCOUNT][REGION].secrets[secret_id]
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[version] = {"createdate": 0, "version_id": version, "version_stages": ["AWSPENDING"]}
        return version

    def reports(self) -> list[dict[str, Any]]:
        """Every message published to the report topic so far (moto delivers to the queue synchronously)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(message)
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def new_token() -> str:
    return f"dckr_pat_{random_secrets.token_urlsafe(18)}"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    """moto, with fake credentials and region and no endpoint override, started once per module (0.2 s a start)."""
    from sandbox.aws import moto_ecr

    with fake_aws(REGION):
        moto_ecr.install()
        yield


@pytest.fixture
def aws(aws_env: None) -> Aws:
    """Fresh Secrets Manager, ECR (with the sandbox's rules), SNS and SQS state, a topic and a queue reading it."""
    from moto.ecr.models import ecr_backends
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.sns.models import sns_backends
    from moto.sqs.models import sqs_backends

    for backends in (secretsmanager_backends, ecr_backends, sns_backends, sqs_backends):
        for account in backends.values():
            account.reset()
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="pullthrough-reports")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="reports")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return Aws(
        secrets=boto3.client("secretsmanager", region_name=REGION),
        ecr=boto3.client("ecr", region_name=REGION),
        sns=sns,
        sqs=sqs,
        topic_arn=topic_arn,
        queue_url=queue_url,
    )


def settings_for(sandbox: Sandbox | None = None, **extra: str) -> Settings:
    """Settings as a handler would read them in the sandbox: this account and region, upstreams on loopback."""
    env = {"AWS_REGION": REGION, "ACCOUNT_ID": ACCOUNT, "STACK_NAME": "pullthrough-test", **extra}
    if sandbox is not None:
        env.update(sandbox.env())
    return Settings.from_env(env)
