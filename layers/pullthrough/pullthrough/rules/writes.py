"""The ECR calls that carry out one change: create, update, replace (delete and create) or delete.

Separate from apply, which decides whether to write and what a failure or a race means: this module only knows
which pull-through cache or template calls a change takes, and what a half-done replacement leaves behind.
"""

from __future__ import annotations

import contextlib

from pullthrough.aws import ptc
from pullthrough.errors import AwsAlreadyExists, AwsError, AwsNotFound
from pullthrough.rules.diff import Action, Change, RuleChange, TemplateChange

__all__ = ["write"]


def write(change: Change) -> None:
    """Carry out a change that writes; AwsAlreadyExists or AwsNotFound when the account changed since the plan."""
    if isinstance(change, RuleChange):
        write_rule(change)
    else:
        write_template(change)


def write_rule(change: RuleChange) -> None:
    """A rule's calls: an update sends only the fields that change; a replacement that cannot create again says so."""
    want = change.desired
    if change.action is Action.DELETE:
        ptc.delete_rule(change.prefix)
        return
    assert want is not None
    if change.action is Action.UPDATE:
        have = change.actual
        credential = want.spec.credential_arn
        role = want.spec.custom_role_arn
        ptc.update_rule(
            change.prefix,
            credential_arn=credential if have is None or credential != have.credential_arn else None,
            custom_role_arn=role if have is None or role != have.custom_role_arn else None,
        )
        return
    if change.action is Action.REPLACE:
        with contextlib.suppress(AwsNotFound):  # gone already: creating it is all that is left
            ptc.delete_rule(change.prefix)
        try:
            ptc.create_rule(want.spec)
        except (AwsAlreadyExists, AwsNotFound):
            raise
        except AwsError as exc:
            raise AwsError(
                exc.operation,
                exc.resource,
                exc.code,
                f"the rule was deleted for replacement, but creating it again failed: {exc}; pulls through "
                f"{change.prefix}/ fail until the next reconcile creates it",
            ) from exc
        return
    ptc.create_rule(want.spec)


def write_template(change: TemplateChange) -> None:
    """A template's calls: a replacement deletes (if it is still there) and creates."""
    if change.action is Action.DELETE:
        ptc.delete_template(change.prefix)
        return
    assert change.desired is not None
    if change.action is Action.UPDATE:
        ptc.update_template(change.desired)
        return
    if change.action is Action.REPLACE:
        with contextlib.suppress(AwsNotFound):
            ptc.delete_template(change.prefix)
    ptc.create_template(change.desired)
