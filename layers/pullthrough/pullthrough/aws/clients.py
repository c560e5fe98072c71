"""boto3 clients, created on first use and cached per service and region (and per assumed role).

boto3 is imported on first use, not at import time, so modules that merely import an adapter stay cheap. The
endpoint comes from boto3's own resolution, so AWS_ENDPOINT_URL (the sandbox's moto server) applies untouched.

Acting in another account (the organisation's hub warming a member): inside `acting_as(role)`, every client this
thread makes is made from that role's keys (sts:AssumeRole, STS API Reference: "Returns a set of temporary security
credentials", valid for DurationSeconds, 3,600 s by default), cached per role, service and region until
`RENEW_BEFORE_SECONDS` before the keys expire. So the adapters (aws/ecr.py) act in the member unchanged, and what is
not inside the block (the ledger, the queue, the report) stays in the function's own account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ProfileNotFound

from pullthrough import redaction
from pullthrough.aws.errors import aws_call
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

# Assumed keys are renewed this long before they expire, so no call starts with keys about to lapse.
RENEW_BEFORE_SECONDS = 300.0

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}


@dataclass(frozen=True)
class Role:
    """A role to act as: its ARN, and the session name CloudTrail records in the role's account (the run)."""

    arn: str
    session_name: str


_acting: ContextVar[Role | None] = ContextVar("pullthrough_acting_as", default=None)
_sessions: dict[str, tuple[Any, float]] = {}  # role ARN -> (boto3 Session of its keys, renew after, monotonic)
_assumed: dict[tuple[str, str, str | None], tuple[Any, Any]] = {}  # (role ARN, service, region) -> (client, session)


@contextmanager
def acting_as(role: Role) -> Iterator[None]:
    """Make this thread's clients from `role`'s keys for the block; the keys are assumed now (AwsError when the role
    cannot be assumed: no such role, or its trust does not name this function's role)."""
    session(role)
    token = _acting.set(role)
    try:
        yield
    finally:
        _acting.reset(token)


def session(role: Role, *, clock: Any = time.monotonic) -> Any:
    """A boto3 Session of `role`'s keys, assumed with this function's own, reused until shortly before expiry."""
    with _lock:
        found = _sessions.get(role.arn)
    if found is not None and found[1] > clock():
        return found[0]
    with aws_call("sts:AssumeRole", role.arn):
        keys = client("sts").assume_role(RoleArn=role.arn, RoleSessionName=role.session_name[:64])["Credentials"]
    lifetime = keys["Expiration"].timestamp() - time.time()
    made = _boto3().session.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    with _lock:
        _sessions[role.arn] = (made, clock() + max(lifetime - RENEW_BEFORE_SECONDS, 0.0))
        for key in [key for key in _assumed if key[0] == role.arn]:
            del _assumed[key]  # clients of the old keys
    return made


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
    """The cached client for `service` in `region` (None: boto3's default region from the environment); inside
    `acting_as(role)`, the role's."""
    role = _acting.get()
    if role is not None:
        return _assumed_client(role, service, region)
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
            _clients[key] = boto3.client(service, region_name=region, config=_config())
        return _clients[key]


def _assumed_client(role: Role, service: str, region: str | None) -> Any:
    """The client for `service` in `region` made from `role`'s current keys."""
    made = session(role)
    key = (role.arn, service, region)
    with _lock:
        found = _assumed.get(key)
        if found is None or found[1] is not made:
            redaction.install()
            found = (made.client(service, region_name=region, config=_config()), made)
            _assumed[key] = found
        return found[0]


def _config() -> Any:
    return _boto3().session.Config(
        retries={"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="pullthrough",
    )


def clear() -> None:
    """Forget every cached client and assumed session (tests that switch credentials, endpoints or moto state)."""
    with _lock:
        _clients.clear()
        _sessions.clear()
        _assumed.clear()


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
