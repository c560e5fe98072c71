"""Roles a function assumes in other accounts (the organisation's hub acting through a member's warm role): the
calls made with the assumed keys are evaluated against the assumed role's own policies, not the function's.

STS API Reference, AssumeRole: the caller gets "temporary security credentials" of the role, whose permissions are
the role's identity-based policies (IAM User Guide, "Policy evaluation logic"). moto serves the keys of any role ARN,
even one that does not exist ("Note that the role does not need to exist", moto's STSBackend.assume_role); AWS
refuses a role that does not exist (or does not trust the caller) with AccessDenied, so here an AssumeRole of a
role moto's IAM does not hold in the target account is refused before moto answers.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import unquote

from moto.iam.models import iam_backends

from sandbox.aws.iam import Principal, Role, Statement

_lock = threading.Lock()
_by_key: dict[str, Principal] = {}  # an assumed session's access key id -> its principal


def role_of(arn: str) -> Role | None:
    """The role moto's IAM holds for `arn` with its inline and attached policies' statements, or None."""
    account, name = arn.split(":")[4], arn.rsplit("/", 1)[-1]
    try:
        found = iam_backends[account]["global"].get_role(name)
    except Exception:  # moto's NoSuchEntity: the role is not there
        return None
    statements: list[Statement] = []
    for policy, document in found.policies.items():
        body = json.loads(unquote(document)) if isinstance(document, str) else document
        listed = body.get("Statement") or []
        for index, statement in enumerate(listed if isinstance(listed, list) else [listed]):
            statements.append(Statement.parse(policy, index, statement))
    return Role(name=name, statements=tuple(statements))


def remember(answer: dict[str, Any], region: str) -> None:
    """Keep the principal of an AssumeRole answer, by its access key id."""
    arn = str(answer["AssumedRoleUser"]["Arn"])  # arn:aws:sts::<account>:assumed-role/<role>/<session>
    account, (_, name, session) = arn.split(":")[4], arn.split(":")[5].split("/", 2)
    role = role_of(f"arn:aws:iam::{account}:role/{name}") or Role(name=name, statements=())
    with _lock:
        _by_key[str(answer["Credentials"]["AccessKeyId"])] = Principal(role, session, account, region)


def principal_of_request(headers: Any) -> Principal | None:
    """The assumed role's principal when a request (moto's view of it) is signed with an assumed session's keys:
    SigV4's Authorization header names the key in `Credential=<key id>/<date>/...` (AWS General Reference,
    "Signature Version 4")."""
    found = re.search(r"Credential=([^/,\s]+)/", str((headers or {}).get("Authorization") or ""))
    with _lock:
        return _by_key.get(found.group(1)) if found else None


def principal_of(client: Any) -> Principal | None:
    """The assumed role's principal when `client` signs with an assumed session's keys, else None."""
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    key = getattr(credentials, "access_key", None) if credentials is not None else None
    with _lock:
        return _by_key.get(key) if key else None


__all__ = ["principal_of", "principal_of_request", "remember", "role_of"]
