"""Resource-based policies and role trust policies for the sandbox: the `Principal` element, and cross-account rules.

`sandbox.aws.iam` evaluates identity-based policies (a principal in its own account). An import across accounts
(ECR to ECR pull through cache) also needs the two other kinds of policy, evaluated here with the same statement
matching (Action, Resource, Condition: sandbox/aws/iam_conditions.py):

- a role's trust policy: who may `sts:AssumeRole` it (IAM User Guide, "Roles terms and concepts": the trust policy is
  the role's resource-based policy); for a service principal the element is `{"Service": "<service>"}`;
- a registry policy (ECR User Guide, "Private registry permissions"): a resource-based policy on the registry.

Sources of the rules below:
- IAM User Guide, "AWS JSON policy elements: Principal": `"*"` and `{"AWS": "*"}` are everyone; an account id or
  `arn:aws:iam::<account>:root` is every principal of that account (the account delegates to its own policies); a
  role ARN is that role's sessions; an assumed-role session ARN is that session; `{"Service": ...}` a service.
- IAM User Guide, "Policy evaluation logic", "Cross-account policy evaluation logic": within one account an Allow in
  the identity-based OR the resource-based policy is enough; across accounts the request must be allowed by the
  identity-based policy of the caller's account AND the resource-based policy of the resource's account; an explicit
  Deny in either wins.
- IAM User Guide, "AWS global condition context keys": aws:PrincipalArn of an assumed-role session is the ARN of the
  role (not the session); aws:PrincipalAccount, aws:PrincipalOrgID and aws:PrincipalOrgPaths (multivalued, the
  account's path `o-.../r-.../ou-.../`) describe the caller; aws:SourceAccount is set when a service acts for an
  account.
`NotPrincipal` is not evaluated (it raises): a policy the sandbox cannot read is a bug to fix, not an Allow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.aws.iam import Authorization, Decision, Statement, evaluate
from sandbox.aws.iam import Role as IdentityPolicies
from sandbox.aws.iam_conditions import UnsupportedPolicy


@dataclass(frozen=True)
class Caller:
    """Who is asking: an AWS principal (a role session) or a service principal."""

    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>, or the service's name for a service principal
    account: str  # "" for a service principal
    role_arn: str = ""  # the role of an assumed-role session (aws:PrincipalArn)
    service: str = ""  # pullthroughcache.ecr.amazonaws.com ...


@dataclass(frozen=True)
class ResourceStatement:
    """One statement of a resource-based policy: the principal element beside the usual parts."""

    principal: Any
    statement: Statement


def parse(name: str, text: str | Mapping[str, Any] | None) -> tuple[ResourceStatement, ...]:
    """The statements of a resource-based policy document (JSON text or parsed); none for an absent policy."""
    if text is None:
        return ()
    document = json.loads(text) if isinstance(text, str) else dict(text)
    found = document.get("Statement") or []
    parsed: list[ResourceStatement] = []
    for index, raw in enumerate(found if isinstance(found, list) else [found]):
        if "NotPrincipal" in raw:
            raise UnsupportedPolicy(f"{name}: NotPrincipal is not evaluated by the sandbox")
        if "Principal" not in raw:
            raise UnsupportedPolicy(f"{name}: statement {index} of a resource-based policy has no Principal")
        parsed.append(ResourceStatement(raw["Principal"], Statement.parse(name, index, raw)))
    return tuple(parsed)


def principal_matches(element: Any, caller: Caller) -> bool:
    """Whether a Principal element names the caller (the Principal element reference, module docstring)."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        raise UnsupportedPolicy(f"Principal element {element!r} is not evaluated by the sandbox")
    for kind, values in element.items():
        for value in values if isinstance(values, list) else [values]:
            if kind == "Service" and caller.service and str(value) == caller.service:
                return True
            if kind == "AWS" and not caller.service and _aws_principal(str(value), caller):
                return True
            if kind not in ("Service", "AWS"):
                raise UnsupportedPolicy(f"Principal type {kind} is not evaluated by the sandbox")
    return False


def _aws_principal(value: str, caller: Caller) -> bool:
    if value == "*":
        return True
    if value in (caller.account, f"arn:aws:iam::{caller.account}:root"):
        return True
    if "*" in value or "?" in value:
        # "You cannot use a wildcard to match part of a principal name or ARN" (the Principal element reference).
        raise UnsupportedPolicy(f"Principal {value} uses a wildcard inside an ARN, which IAM refuses")
    return value in (caller.role_arn, caller.arn) and bool(value)


def decide(statements: tuple[ResourceStatement, ...], caller: Caller, request: Authorization) -> Decision:
    """A resource-based policy's answer for the caller: an explicit Deny wins, then any Allow, else no Allow."""
    applying = tuple(s.statement for s in statements if principal_matches(s.principal, caller))
    return evaluate(IdentityPolicies(name="resource-policy", statements=applying), request)


def cross_account(
    identity: IdentityPolicies,
    resource_policy: tuple[ResourceStatement, ...],
    caller: Caller,
    resource_account: str,
    request: Authorization,
) -> tuple[Decision, str]:
    """The request decided as IAM does across accounts (module docstring); the decision and which policy gave it:
    "identity", "resource" or "" when allowed."""
    mine = evaluate(identity, request)
    theirs = decide(resource_policy, caller, request)
    if mine.explicit_deny or theirs.explicit_deny:
        return (mine, "identity") if mine.explicit_deny else (theirs, "resource")
    if caller.account == resource_account:
        # Within one account either policy may allow (policy evaluation logic).
        allowed = mine if mine.allowed else theirs
        return (allowed, "") if allowed.allowed else (mine, "identity")
    if not mine.allowed:
        return mine, "identity"
    return (theirs, "resource") if not theirs.allowed else (mine, "")


def denied_by(caller: Caller, decision: Decision, policy: str) -> str:
    """AWS's wording of a refusal (IAM User Guide, "Troubleshoot access denied error messages")."""
    action, resource = decision.request.action, decision.request.resource
    head = f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource}"
    kind = "resource-based" if policy == "resource" else "identity-based"
    if decision.explicit_deny:
        return f"{head} with an explicit deny in a {kind} policy"
    return f"{head} because no {kind} policy allows the {action} action"


def trust_allows(trust_policy: str | Mapping[str, Any] | None, service: str, context: Mapping[str, Any]) -> bool:
    """Whether a role's trust policy lets the service principal `sts:AssumeRole` (conditions on `context`)."""
    statements = parse("trust policy", trust_policy)
    caller = Caller(arn=service, account="", service=service)
    request = Authorization("sts:AssumeRole", "*", {k.lower(): v for k, v in context.items()})
    return decide(_any_resource(statements), caller, request).allowed


def _any_resource(statements: tuple[ResourceStatement, ...]) -> tuple[ResourceStatement, ...]:
    # A trust policy has no Resource element: the role it is attached to is the resource.
    return tuple(
        ResourceStatement(s.principal, s.statement if s.statement.resources is not None else _with_star(s.statement))
        for s in statements
    )


def _with_star(statement: Statement) -> Statement:
    if statement.not_resources is not None:
        return statement
    return Statement(
        policy=statement.policy,
        index=statement.index,
        effect=statement.effect,
        sid=statement.sid,
        actions=statement.actions,
        not_actions=statement.not_actions,
        resources=("*",),
        condition=statement.condition,
    )


def statements_of(name: str, text: str | Mapping[str, Any]) -> tuple[Statement, ...]:
    """The statements of an identity-based policy document (JSON text or parsed)."""
    document = json.loads(text) if isinstance(text, str) else dict(text)
    found = document.get("Statement") or []
    return tuple(Statement.parse(name, i, s) for i, s in enumerate(found if isinstance(found, list) else [found]))


__all__ = [
    "Caller",
    "ResourceStatement",
    "cross_account",
    "decide",
    "denied_by",
    "parse",
    "principal_matches",
    "statements_of",
    "trust_allows",
]
