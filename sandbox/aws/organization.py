"""An AWS Organization as IAM sees it: which accounts belong, and each account's path of organizational units.

IAM reads two things of a caller's organization (IAM User Guide, "AWS global condition context keys"):
aws:PrincipalOrgID, the organization's id (`o-` and 10 to 32 lower-case letters or digits: the Organizations API
reference's pattern for an organization id), and aws:PrincipalOrgPaths, the caller account's path from the
organization down to its parent OU, `o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/` (a multivalued key; a
policy matches it with ForAnyValue:StringLike). An account outside the organization has neither key: conditions on
them do not hold (a missing key fails every operator but ...IfExists and the negated ones).

The sandbox keeps the organization as data rather than in moto's Organizations backend: moto draws organization,
root, OU and account ids at random, and tests need fixed account ids (111111111111 ...) that policies name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")  # Organizations API reference, OrganizationId
ROOT_ID = re.compile(r"^r-[0-9a-z]{4,32}$")  # RootId
OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")  # OrganizationalUnitId
ACCOUNT_ID = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Organization:
    """An organization: its id, its root, and every member account with its OU path below the root.

    `accounts` maps an account id to its OUs from the root down, separated by `/` ("" for an account directly under
    the root): {"222222222222": "ou-ab12-11111111/ou-ab12-22222222"}.
    """

    id: str
    root: str = "r-ab12"
    accounts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not ORG_ID.fullmatch(self.id):
            raise ValueError(f"organization id {self.id!r} must match {ORG_ID.pattern}")
        if not ROOT_ID.fullmatch(self.root):
            raise ValueError(f"root id {self.root!r} must match {ROOT_ID.pattern}")
        for account, path in self.accounts.items():
            if not ACCOUNT_ID.fullmatch(account):
                raise ValueError(f"account {account!r} must be 12 digits")
            for ou in filter(None, path.split("/")):
                if not OU_ID.fullmatch(ou):
                    raise ValueError(f"account {account}: OU {ou!r} must match {OU_ID.pattern}")

    def member(self, account: str) -> bool:
        return account in self.accounts

    def path_of(self, account: str) -> str | None:
        """aws:PrincipalOrgPaths' value for the account, or None when it is not in the organization."""
        if account not in self.accounts:
            return None
        ous = "".join(f"{ou}/" for ou in self.accounts[account].split("/") if ou)
        return f"{self.id}/{self.root}/{ous}"

    def ou_of(self, account: str) -> str | None:
        """The account's parent OU (the root's id for an account directly under the root)."""
        if account not in self.accounts:
            return None
        ous = [ou for ou in self.accounts[account].split("/") if ou]
        return ous[-1] if ous else self.root

    def accounts_in(self, ou: str) -> list[str]:
        """Every account at or below an OU (or the root): what a StackSet targeting the OU deploys to."""
        if ou == self.root:
            return sorted(self.accounts)
        return sorted(a for a, path in self.accounts.items() if ou in path.split("/"))

    def context_of(self, account: str) -> dict[str, str | tuple[str, ...]]:
        """The caller's organization keys of a request made by a principal of `account` (lower case, as IAM's)."""
        keys: dict[str, str | tuple[str, ...]] = {"aws:principalaccount": account}
        path = self.path_of(account)
        if path is not None:
            keys["aws:principalorgid"] = self.id
            keys["aws:principalorgpaths"] = (path,)
        return keys


__all__ = ["Organization"]
