"""boto3 clients, created on first use and cached per service and region.

boto3 is imported on first use, not at import time, so modules that merely import an adapter stay cheap. The
endpoint comes from boto3's own resolution, so AWS_ENDPOINT_URL (the sandbox's moto server) applies untouched.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ProfileNotFound

from pullthrough import redaction
from pullthrough.errors import PullthroughError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

# Standard retries back off with jitter on throttling and 5xx; timeouts stay well inside a Lambda's own.
RETRY_ATTEMPTS = 5  # in all, the first try included
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}


@overload
def client(service: Literal["cloudformation"], region: str | None = None) -> CloudFormationClient: ...
@overload
def client(service: Literal["cloudwatch"], region: str | None = None) -> CloudWatchClient: ...
@overload
def client(service: Literal["dynamodb"], region: str | None = None) -> DynamoDBClient: ...
@overload
def client(service: Literal["ecr"], region: str | None = None) -> ECRClient: ...
# No mypy_boto3_ecs among the dev stubs: the ECS client is Any, its answers read with .get() (aws/ecs.py).
@overload
def client(service: Literal["ecs"], region: str | None = None) -> Any: ...
@overload
def client(service: Literal["events"], region: str | None = None) -> EventBridgeClient: ...
@overload
def client(service: Literal["scheduler"], region: str | None = None) -> EventBridgeSchedulerClient: ...
@overload
def client(service: Literal["secretsmanager"], region: str | None = None) -> SecretsManagerClient: ...
@overload
def client(service: Literal["sns"], region: str | None = None) -> SNSClient: ...
@overload
def client(service: Literal["sqs"], region: str | None = None) -> SQSClient: ...
@overload
def client(service: Literal["sts"], region: str | None = None) -> STSClient: ...
def client(service: str, region: str | None = None) -> Any:
    """The cached client for `service` in `region` (None: boto3's default region from the environment)."""
    key = (service, region)
    found = _clients.get(key)
    if found is not None:
        return found
    # boto3's default session is not thread-safe to create; BatchProcessor workers may ask at the same time.
    with _lock:
        if key not in _clients:
            boto3 = _boto3()
            # botocore logs whole requests and responses at DEBUG: whoever uses an adapter gets them redacted.
            redaction.install()

            config = boto3.session.Config(
                retries={"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS},
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                user_agent_extra="pullthrough",
            )
            _clients[key] = boto3.client(service, region_name=region, config=config)
        return _clients[key]


def clear() -> None:
    """Forget every cached client (tests that switch credentials, endpoints or moto state between cases)."""
    with _lock:
        _clients.clear()


def use_profile(name: str) -> None:
    """Take credentials (and the default region) from this named profile from now on (the CLI's --profile)."""
    try:
        _boto3().setup_default_session(profile_name=name)
    except ProfileNotFound:
        raise PullthroughError(
            f"--profile {name}: no such profile in the AWS config files; fix: `aws configure list-profiles` lists "
            "them, or `aws configure --profile NAME` creates one"
        ) from None
    clear()


def _boto3() -> ModuleType:
    """boto3, imported on the first client, not with the adapters: it brings botocore's endpoint, loader and session
    machinery, about 400 ms of import on this machine beyond the botocore exceptions every adapter needs (bench/
    README.md, cold start), which a handler then pays at its first AWS call, inside the invocation that needs it.
    The one deferred import of the library (docs/ARCHITECTURE.md, house rules)."""
    import boto3

    return boto3
