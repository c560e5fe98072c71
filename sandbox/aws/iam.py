"""IAM policy evaluation for the sandbox: a function's role decides every AWS call the function makes.

The rules are the IAM User Guide's "Policy evaluation logic" for a principal in its own account with identity-based
policies only (no resource policy, permissions boundary, SCP or session policy is involved in Pullthrough's calls):
an explicit Deny in any statement wins; otherwise an Allow in any statement allows; otherwise the request is
implicitly denied. A statement applies when its Action (or NotAction), its Resource (or NotResource) and all its
Conditions match (sandbox/aws/iam_conditions.py).

Who is asking is process-wide (`acting_as`): `sandbox.stack.Stack.invoke` sets the invoked function's principal for
the length of the call, so the worker threads of warm_images act as it too; calls made outside a function (test
setup, the sandbox, moto) are not evaluated. What each botocore call asks IAM for is `sandbox.aws.iam_requests`; the
hook that refuses calls is `sandbox.aws.iam_guard`. The ECR registry endpoint (the data plane) authorizes pulls as the
principal that asked GetAuthorizationToken for the token (`registry_token`, `registry_denial`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.aws.iam_conditions import action_matches, conditions_hold, resource_matches


def _listed(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


@dataclass(frozen=True)
class Statement:
    """One statement of an identity-based policy, its intrinsic functions already resolved."""

    policy: str  # the inline policy's name, or the managed policy's
    index: int  # its position in the policy
    effect: str  # Allow | Deny
    sid: str | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    condition: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, policy: str, index: int, document: Mapping[str, Any]) -> Statement:
        """A statement from its JSON form (IAM JSON policy element reference)."""
        return cls(
            policy=policy,
            index=index,
            effect=str(document["Effect"]),
            sid=document.get("Sid"),
            actions=_listed(document.get("Action")),
            not_actions=_listed(document.get("NotAction")),
            resources=_listed(document.get("Resource")),
            not_resources=_listed(document.get("NotResource")),
            condition=document.get("Condition") or {},
        )

    @property
    def name(self) -> str:
        """How reports name it: `<policy>/<Sid>`, or `<policy>/#<index>` for a statement without a Sid."""
        return f"{self.policy}/{self.sid}" if self.sid else f"{self.policy}/#{self.index}"

    def applies(self, request: Authorization) -> bool:
        """Action, Resource and Condition all match the request."""
        if self.actions is not None:
            if not any(action_matches(p, request.action) for p in self.actions):
                return False
        elif self.not_actions is None or any(action_matches(p, request.action) for p in self.not_actions):
            return False
        if self.resources is not None:
            if not any(resource_matches(p, request.resource) for p in self.resources):
                return False
        elif self.not_resources is None or any(resource_matches(p, request.resource) for p in self.not_resources):
            return False
        return conditions_hold(self.condition, request.context)


@dataclass(frozen=True)
class Role:
    """An IAM role: its name and every statement of the identity-based policies attached to it."""

    name: str
    statements: tuple[Statement, ...]
    logical_id: str = ""

    def without(self, statement: Statement, action: str | None = None) -> Role:
        """This role with one statement removed, or (given `action`) with that one action taken out of it."""
        kept: list[Statement] = []
        for own in self.statements:
            if own != statement:
                kept.append(own)
            elif action is not None and own.actions is not None and len(own.actions) > 1:
                kept.append(replace(own, actions=tuple(a for a in own.actions if a != action)))
        return replace(self, statements=tuple(kept))


@dataclass(frozen=True)
class Authorization:
    """One thing IAM is asked: may the principal do `action` on `resource` in this context?"""

    action: str
    resource: str
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    # What made the request: the API operation, and for a dependent action the action that needed it.
    cause: str = ""


@dataclass(frozen=True)
class Decision:
    """IAM's answer, and the statement that gave it (the Allow that granted, or the Deny that refused)."""

    request: Authorization
    allowed: bool
    statement: Statement | None = None

    @property
    def explicit_deny(self) -> bool:
        return not self.allowed and self.statement is not None


def evaluate(role: Role, request: Authorization) -> Decision:
    """The policy evaluation logic: an explicit Deny wins, then any Allow, else the implicit deny."""
    allow: Statement | None = None
    for statement in role.statements:
        if not statement.applies(request):
            continue
        if statement.effect == "Deny":
            return Decision(request, allowed=False, statement=statement)
        if statement.effect == "Allow" and allow is None:
            allow = statement
    return Decision(request, allowed=allow is not None, statement=allow)


@dataclass(frozen=True)
class Principal:
    """A function's role session: Lambda assumes the execution role with the function's name as the session name."""

    role: Role
    session: str
    account: str
    region: str  # the function's: AWS_REGION, which its clients call by default

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{self.account}:assumed-role/{self.role.name}/{self.session}"


def denial_message(principal: Principal, decision: Decision) -> str:
    """AWS's wording (IAM User Guide, "Troubleshoot access denied error messages")."""
    action, resource = decision.request.action, decision.request.resource
    head = f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource}"
    if decision.explicit_deny:
        return f"{head} with an explicit deny in an identity-based policy"
    return f"{head} because no identity-based policy allows the {action} action"


# --- who is asking (process-wide), and what was asked ----------------------------------------------------------------

_lock = threading.RLock()
_current: list[Principal] = []  # a stack: the innermost `acting_as` is the one asking
_recorders: list[list[tuple[Principal, Decision]]] = []
_registry_tokens: dict[str, Principal] = {}


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Every AWS call in the process, on any thread, is `principal`'s for the block."""
    with _lock:
        _current.append(principal)
    try:
        yield principal
    finally:
        with _lock:
            _current.remove(principal)


def current() -> Principal | None:
    """The principal asking now, or None outside any function (nothing is evaluated then)."""
    with _lock:
        return _current[-1] if _current else None


@contextmanager
def recording() -> Iterator[list[tuple[Principal, Decision]]]:
    """Collect every (principal, decision) evaluated during the block, allowed or not."""
    seen: list[tuple[Principal, Decision]] = []
    with _lock:
        _recorders.append(seen)
    try:
        yield seen
    finally:
        with _lock:
            _recorders.remove(seen)


def authorize(principal: Principal, requests: Sequence[Authorization]) -> Decision | None:
    """Evaluate every request (an action and the dependent actions it needs); the first refusal, or None."""
    refused: Decision | None = None
    for request in requests:
        decision = evaluate(principal.role, request)
        with _lock:
            for seen in _recorders:
                seen.append((principal, decision))
        if not decision.allowed and refused is None:
            refused = decision
    return refused


# --- the data plane: registry tokens carry their principal -----------------------------------------------------------


def registry_token(account: str, principal: Principal | None) -> str:
    """The password of `AWS:<password>` GetAuthorizationToken hands out: moto's fixed one outside a function, else
    one that names the principal who asked (ECR authorizes a pull as that principal: ECR User Guide, "Private
    registry authentication in Amazon ECR")."""
    plain = f"{account}-auth-token"  # moto's (moto/ecr/responses.py), which the sandbox's endpoint accepts
    if principal is None:
        return plain
    token = f"{plain}.{secrets.token_urlsafe(18)}"
    with _lock:
        _registry_tokens[token] = principal
    return token


def principal_of_token(password: str) -> Principal | None:
    """The principal a registry password was issued to (None for moto's plain token or an unknown one)."""
    with _lock:
        return _registry_tokens.get(password)


def registry_denial(header: str | None, repository: str, kind: str, method: str = "GET") -> tuple[int, bytes] | None:
    """Authorize one registry request by the principal its token was issued to; ECR's 403 DENIED, or None.

    A token issued outside a function (tests, skopeo, the demo's offline pulls) is not evaluated.
    """
    from sandbox.aws import iam_requests  # here: iam_requests builds on this module
    from sandbox.registries.upstream import error_body

    password = iam_requests.registry_password(header)
    principal = principal_of_token(password) if password else None
    if principal is None:
        return None
    refused = authorize(principal, iam_requests.registry_request(principal, repository, kind, method))
    if refused is None:
        return None
    # ECR's registry API answers a refused pull with 403 and the distribution error code DENIED.
    return 403, error_body("DENIED", denial_message(principal, refused))
