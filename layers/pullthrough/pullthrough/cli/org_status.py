"""`pullthrough org status`: each member account and region as the members' StackSet has it.

The StackSet is the hub's (template.yaml: pullthrough-members-<Stage>, in the hub's region); ListStackInstances
answers per (account, region): Status (CURRENT, OUTDATED, INOPERABLE), StackInstanceStatus.DetailedStatus and
StatusReason (botocore's CloudFormation model). Each instance is matched to the config's member by account, else by
organisational unit; an account a member names without an instance is MISSING, as is an organisational unit with
no instance at all in a region.

With the hub's stack (`--stack`, or LEDGER_TABLE), each row also shows the member's latest warm report the hub's
gather_reports recorded (aws/ledger/cycles.py): the current warm cycle's (org/cycles.py, from warm.schedule), else
the one before. A member without one is not a finding: a cycle's reports arrive as its runs end.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from pullthrough.aws import stacksets
from pullthrough.aws.stacksets import StackInstance
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Io, emit, environment
from pullthrough.cli.deployment import deployed
from pullthrough.cli.documents import InstanceStatusDoc, LastReportDoc, OrgStatusDocument, dump
from pullthrough.config import Config
from pullthrough.config.organization import Member, Organization
from pullthrough.errors import AwsError, AwsNotFound, PullthroughError
from pullthrough.org.latest import latest_reports

__all__ = ["org_status_command", "organization_of", "status_lines"]

_HEALTHY = ("CURRENT", "SUCCEEDED")
_MISSING = (
    "no stack instance: the StackSet has not reached it yet (sam deploy the hub with this config), or it is the "
    "management account, which StackSets never deploys to"
)


def org_status_command(args: argparse.Namespace, io: Io) -> int:
    """Print each member account and region's stack instance; exit 1 when any is missing or unhealthy."""
    settings, config = environment(args)
    org = organization_of(config)
    stack_set = stacksets.members_stack_set(args.stage or settings.stage)
    notes: list[str] = []
    io.progress(f"reading the stack instances of {stack_set} in {org.hub.region}...")
    try:
        instances = stacksets.stack_instances(stack_set, org.hub.region, args.call_as)
    except AwsNotFound:
        instances = []
        notes.append(
            f"no StackSet {stack_set} in {org.hub.region} for this account: deploy the hub (sam deploy) with the "
            "organization section, run in the account that deployed it, or pass --call-as DELEGATED_ADMIN from a "
            "delegated administrator, or --stage for another stage"
        )
    except AwsError as exc:
        instances = []
        notes.append(f"the StackSet {stack_set} could not be read ({exc})")
    rows = instance_rows(config, org, instances)
    if args.stack and not settings.ledger_table:
        settings, missing = deployed(settings, args)
        notes += missing
    if settings.ledger_table:
        rows = with_last_reports(rows, last_reports(settings.ledger_table, config.warm.schedule))
    code = EXIT_FINDINGS if notes or any(row.problems for row in rows) else EXIT_OK
    document = OrgStatusDocument(
        organization=org.id,
        hub={"account": org.hub.account, "region": org.hub.region},
        stack_set=stack_set,
        call_as=args.call_as,
        instances=rows,
        notes=notes,
        exit_code=code,
    )
    emit(io, args, dump(document), status_lines(document))
    return code


def organization_of(config: Config) -> Organization:
    """The config's organization, or a usage error saying how to add one."""
    if config.organization is None:
        raise PullthroughError(
            "the config has no organization section: add one (organization: id, hub, members) to plan or check members"
        )
    return config.organization


def instance_rows(config: Config, org: Organization, instances: list[StackInstance]) -> list[InstanceStatusDoc]:
    """A row per stack instance, then one per expected account (or unit) and region that has none."""
    prefixes = [rule.prefix for rule in org.cached_rules(config)]
    rows = [_row(_member_of(org, instance), instance, prefixes) for instance in instances]
    seen = {(instance.account, instance.region) for instance in instances}
    units = {(instance.organizational_unit, instance.region) for instance in instances}
    for member in org.members:
        for region in member.regions:
            missing: list[tuple[str | None, str | None]] = [
                (account, None) for account in member.accounts if (account, region) not in seen
            ]
            missing += [(None, unit) for unit in member.organizational_units if (unit, region) not in units]
            rows += [
                InstanceStatusDoc(
                    member=member.name,
                    account=account,
                    region=region,
                    organizational_unit=unit,
                    status="MISSING",
                    rules=prefixes,
                    problems=[_MISSING],
                )
                for account, unit in missing
            ]
    return rows


def last_reports(table: str, schedule: str) -> dict[tuple[str, str], LastReportDoc]:
    """Per (account, region), its latest warm report at the hub (org/latest.py)."""
    return {
        where: LastReportDoc(
            cycle=last.cycle, run_id=last.run_id, status=last.status, counts=last.counts, finished=last.finished
        )
        for where, last in latest_reports(table, schedule).items()
    }


def with_last_reports(
    rows: list[InstanceStatusDoc], reports: dict[tuple[str, str], LastReportDoc]
) -> list[InstanceStatusDoc]:
    return [row.model_copy(update={"last_report": reports.get((row.account or "", row.region))}) for row in rows]


def _member_of(org: Organization, instance: StackInstance) -> Member | None:
    by_account = [m for m in org.members if instance.account in m.accounts and instance.region in m.regions]
    by_unit = [m for m in org.members if instance.organizational_unit in m.organizational_units]
    found = by_account or by_unit
    return found[0] if found else None


def _row(member: Member | None, instance: StackInstance, prefixes: list[str]) -> InstanceStatusDoc:
    problems = []
    if member is None:
        problems.append(
            "no member of the config targets this account and region: the StackSet still has its instance (the "
            "hub's next deploy removes it), or the config misses a member"
        )
    if instance.status not in _HEALTHY or (instance.detailed_status or "SUCCEEDED") not in _HEALTHY:
        state = "/".join(part for part in (instance.status, instance.detailed_status) if part)
        reason = f": {instance.status_reason}" if instance.status_reason else ""
        problems.append(
            f"stack instance {state}{reason}; see the StackSet's last operation in CloudFormation, fix the cause, "
            "then deploy the hub again (sam deploy)"
        )
    return InstanceStatusDoc(
        member=member.name if member else None,
        account=instance.account,
        region=instance.region,
        organizational_unit=instance.organizational_unit,
        status=instance.status,
        detailed_status=instance.detailed_status,
        status_reason=instance.status_reason,
        drift_status=instance.drift_status,
        rules=prefixes if member else [],
        problems=problems,
    )


def status_lines(document: OrgStatusDocument) -> Iterator[str]:
    """The status for people: one line per account and region, problems indented under it."""
    yield f"Organization {document.organization}: StackSet {document.stack_set} in {document.hub['region']}"
    yield f"Members ({len(document.instances)} account(s) and region(s)):"
    for row in document.instances:
        where = row.account or f"every account of {row.organizational_unit}"
        state = "/".join(part for part in (row.status, row.detailed_status) if part)
        rules = f"; rules {', '.join(row.rules)}" if row.rules else ""
        yield f"  {row.member or '(no member)'}: {where} in {row.region}: {state}{rules}"
        if row.last_report is not None:
            last = row.last_report
            counted = ", ".join(f"{n} {outcome}" for outcome, n in sorted(last.counts.items()))
            yield f"      last warm report: {last.status} in cycle {last.cycle} (run {last.run_id}): {counted}"
        yield from (f"      ! {problem}" for problem in row.problems)
    yield from (f"note: {note}" for note in document.notes)
    problems = sum(len(row.problems) for row in document.instances) + len(document.notes)
    yield "All good." if not problems else f"{problems} problem(s) need attention."
