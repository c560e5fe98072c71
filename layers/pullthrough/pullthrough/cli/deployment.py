"""Which deployed stack a command works with: its ledger table and its repository creation role.

A function gets both from template.yaml (LEDGER_TABLE, TEMPLATE_ROLE_ARN); at a terminal they come from the same
environment variables when set, else from the stack's resources in CloudFormation (`--stack`, default STACK_NAME,
else "pullthrough"). Without the ledger, ownership is unknown: every existing rule counts as not Pullthrough's.
"""

from __future__ import annotations

import argparse

from pullthrough.aws import ecr
from pullthrough.aws import stack as cloudformation
from pullthrough.env import Settings
from pullthrough.errors import AwsError

LEDGER_TABLE = "LedgerTable"  # template.yaml's logical ids
TEMPLATE_ROLE = "RepositoryCreationRole"
ROLE_PATH = "/pullthrough/"  # template.yaml: RepositoryCreationRole's Path (part of its ARN)


def add_stack_option(parser: argparse.ArgumentParser) -> None:
    """`--stack NAME`: the deployed stack whose ledger and roles the command uses."""
    parser.add_argument(
        "--stack",
        help="the deployed stack (default: STACK_NAME, else pullthrough); its ledger table and repository creation "
        "role are read from CloudFormation unless LEDGER_TABLE and TEMPLATE_ROLE_ARN are set",
    )


def deployed(settings: Settings, args: argparse.Namespace) -> tuple[Settings, list[str]]:
    """The settings with the stack's ledger table and template role filled in; notes on what could not be found."""
    stack = getattr(args, "stack", None) or settings.stack_name
    settings = settings.model_copy(update={"stack_name": stack})
    if not settings.account_id:
        settings = settings.model_copy(update={"account_id": ecr.registry_account(settings.region)})
    if settings.ledger_table and settings.template_role_arn:
        return settings, []
    notes = []
    try:
        ids = cloudformation.physical_ids(stack, settings.region)
    except AwsError as exc:
        ids = {}
        notes.append(f"stack {stack}: CloudFormation could not be read ({exc})")
    update: dict[str, str] = {}
    if not settings.ledger_table and LEDGER_TABLE in ids:
        update["ledger_table"] = ids[LEDGER_TABLE]
    if not settings.template_role_arn and TEMPLATE_ROLE in ids and settings.account_id:
        update["template_role_arn"] = role_arn(settings.region, settings.account_id, ids[TEMPLATE_ROLE])
    settings = settings.model_copy(update=update)
    if not settings.ledger_table:
        notes.append(
            f"stack {stack}: no ledger table found (CloudFormation has no stack {stack} here, or no access): ownership "
            "and runs are unknown; pass --stack NAME or set LEDGER_TABLE to the stack's LedgerTable"
        )
    return settings, notes


def role_arn(region: str, account: str, name: str) -> str:
    """The ARN of a role of template.yaml's path (IAM ARNs carry the path; the partition follows the region)."""
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:iam::{account}:role{ROLE_PATH}{name}"
