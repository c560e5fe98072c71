"""`pullthrough org plan|status`: the organisation as the config describes it, and as AWS has it.

    org plan     per member target and region: the ECR-to-ECR rules, templates, member role and warm list; the hub
                 policy's PullthroughOrg statements and their diff against the hub's current registry policy
    org status   per member account and region: the stack instance of the members' StackSet
                 (pullthrough-members-<Stage>, CloudFormation ListStackInstances, in the hub's region) and the
                 rules the member caches

Reads only. `org plan` reads the hub's registry policy only with the hub account's credentials (the caller's account,
STS GetCallerIdentity, must be the hub's: another account's GetRegistryPolicy answers for its own registry).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from pullthrough.aws import identity, stacksets
from pullthrough.aws import registry_policy as policies
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Command, Io, emit, environment, option
from pullthrough.cli.documents import (
    HubPolicyDoc,
    MemberRuleDoc,
    MemberTargetDoc,
    OrgPlanDocument,
    StatementChangeDoc,
    dump,
)
from pullthrough.cli.org_status import org_status_command, organization_of
from pullthrough.config import Config
from pullthrough.config.organization import MemberRule, Organization, member_role_name, partition_of
from pullthrough.errors import AwsError
from pullthrough.rules.registry_policy import plan_policy

__all__ = ["add_org_commands", "plan_lines"]


def add_org_commands(commands: Any) -> None:
    """`pullthrough org plan|status`."""
    family = commands.add_parser("org", help="the organisation: what each member gets, and how its StackSet stands")
    actions = family.add_subparsers(dest="action", required=True, metavar="ACTION")
    Command(
        "plan",
        org_plan_command,
        help="per member target and region: rules, templates, role and warm list; the hub policy and its diff",
        description=(
            "What the members' StackSet gives each member target (an account, or every account of an organisational "
            "unit) in each region: the ECR-to-ECR rules to the hub, the repository creation templates, the role ECR "
            "assumes and the warm list; and the hub's registry policy statements (PullthroughOrg*), compared with "
            "the hub's current policy when run with the hub account's credentials. Exit status 1 when the hub "
            "policy differs from the config."
        ),
        schema_name="org-plan",
    ).register(actions)
    Command(
        "status",
        org_status_command,
        help="per member account and region: the StackSet's stack instance and the rules it caches",
        description=(
            "Reads the stack instances of the members' StackSet (pullthrough-members-<Stage>) in the hub's region "
            "(CloudFormation ListStackInstances), run in the account that deployed the hub: the management account "
            "(--call-as SELF) or a delegated administrator (--call-as DELEGATED_ADMIN). A member account the config "
            "names without an instance is MISSING. With --stack (the hub's stack), each also shows its latest warm "
            "report the hub gathered. Exit status 1 when any instance is missing, not CURRENT, or failed."
        ),
        options=(
            option("--stage", help="the hub stack's Stage parameter (default: STAGE, else dev)"),
            option("--call-as", choices=stacksets.CALL_AS, default="SELF", help="CloudFormation's CallAs (SELF)"),
            option(
                "--stack",
                help="the hub's stack: each member's latest warm report is read from its ledger (or set LEDGER_TABLE)",
            ),
        ),
        schema_name="org-status",
    ).register(actions)


def org_plan_command(args: argparse.Namespace, io: Io) -> int:
    """Print what each member target gets and the hub policy's diff; exit 1 when the hub policy must change."""
    settings, config = environment(args)
    org = organization_of(config)
    hub_policy, notes = _hub_policy(config, org, io)
    document = OrgPlanDocument(
        organization=org.id,
        hub={"account": org.hub.account, "region": org.hub.region},
        stack_set=stacksets.members_stack_set(settings.stage),
        targets=_targets(config, org),
        hub_policy=hub_policy,
        notes=notes,
        exit_code=EXIT_OK,
    )
    pending = hub_policy.changes is not None and any(c.outcome != "unchanged" for c in hub_policy.changes)
    document = document.model_copy(update={"exit_code": EXIT_FINDINGS if pending else EXIT_OK})
    emit(io, args, dump(document), plan_lines(document))
    return document.exit_code


def _targets(config: Config, org: Organization) -> list[MemberTargetDoc]:
    """One entry per (member, target, region), in the config's order."""
    grouped: dict[tuple[str, str | None, str | None, str], list[MemberRule]] = {}
    for rule in org.member_rules(config):
        grouped.setdefault((rule.member, rule.account, rule.organizational_unit, rule.region), []).append(rule)
    warm = {member.name: [_warm_text(image) for image in member.warm] for member in org.members}
    return [
        MemberTargetDoc(
            member=member,
            account=account,
            organizational_unit=unit,
            region=region,
            role_name=member_role_name(region),
            rules=[_rule_doc(rule) for rule in rules],
            warm=warm[member],
        )
        for (member, account, unit, region), rules in grouped.items()
    ]


def _rule_doc(rule: MemberRule) -> MemberRuleDoc:
    template = rule.template.model_dump(mode="json", exclude_none=True) if rule.template else None
    return MemberRuleDoc(
        prefix=rule.ecr_repository_prefix,
        upstream_registry=rule.upstream_registry,
        upstream_registry_url=rule.upstream_registry_url,
        upstream_repository_prefix=rule.upstream_repository_prefix,
        custom_role_arn=rule.custom_role_arn,
        template=template,
    )


def _warm_text(image: Any) -> str:
    text = str(image.image)
    if image.tags:
        text += f" tags {', '.join(image.tags)}"
    if image.tag_pattern:
        text += f" matching {image.tag_pattern}"
    if image.latest:
        text += f" latest {image.latest}"
    return text


def _hub_policy(config: Config, org: Organization, io: Io) -> tuple[HubPolicyDoc, list[str]]:
    """The statements the config asks for, and their diff against the hub's policy when the caller is the hub."""
    hub = org.hub
    statements = org.registry_policy_statements(config, partition_of(hub.region))
    doc = HubPolicyDoc(account=hub.account, region=hub.region, statements=statements)
    try:
        caller = identity.account_id(hub.region)
        if caller != hub.account:
            return doc, [
                f"the credentials are account {caller}'s, not the hub's ({hub.account}): the hub's registry policy "
                "was not compared; run with the hub account's credentials (--profile) to see its diff"
            ]
        io.progress(f"reading the registry policy of {hub.account} in {hub.region}...")
        current = policies.get_policy(hub.region)
    except AwsError as exc:
        return doc, [f"the hub's registry policy could not be read ({exc}); its diff is unknown"]
    changes = [
        StatementChangeDoc(sid=change.sid, outcome=change.outcome.value, differences=list(change.differences))
        for change in plan_policy(statements, current).changes
    ]
    return doc.model_copy(update={"changes": changes}), []


def plan_lines(document: OrgPlanDocument) -> Iterator[str]:
    """The plan for people: each target and region, then the hub policy."""
    yield f"Organization {document.organization}, hub {document.hub['account']} in {document.hub['region']}"
    yield f"Members ({len(document.targets)} target(s) and region(s), StackSet {document.stack_set}):"
    for target in document.targets:
        where = target.account or f"every account of {target.organizational_unit}"
        yield f"  {target.member}: {where} in {target.region} (role {target.role_name})"
        for rule in target.rules:
            template = ", template" if rule.template else ""
            yield f"    rule {rule.prefix} <- {rule.upstream_registry_url}/{rule.upstream_repository_prefix}{template}"
        if target.warm:
            yield f"    warm: {'; '.join(target.warm)}"
    policy = document.hub_policy
    yield f"Hub policy ({len(policy.statements)} statement(s)):"
    if policy.changes is None:
        yield from (f"  {statement['Sid']}: not compared" for statement in policy.statements)
    for change in policy.changes or []:
        detail = f" ({', '.join(change.differences)})" if change.differences else ""
        yield f"  {change.sid}: {change.outcome.replace('_', ' ')}{detail}"
    yield from (f"note: {note}" for note in document.notes)
    if policy.changes is None:
        yield "The hub policy was not compared."
    elif document.exit_code != EXIT_OK:
        yield "The hub policy differs from the config: the hub's next reconcile brings it in line."
    else:
        yield "The hub policy matches the config."
