"""Take Pullthrough out of an account: what it owns that `sam delete` leaves behind, listed, then removed safely.

`sam delete` removes what template.yaml declares, except the ledger table (DeletionPolicy: Retain). It cannot remove
what was made through the API: the pull-through cache rules and repository creation templates reconcile_rules
created, the `ecr-pullthroughcache/` secrets (`pullthrough credentials set`, or by hand), and the cache repositories
ECR created on pulls (a deleted rule leaves them and their images).

What counts as Pullthrough's: a rule or template with an ownership record in the ledger (aws/ownership.py; nothing
else, since ECR rules carry no tags); the cache repositories under the config's prefixes, unless a rule that stays
routes them; the secrets the config's rules name, unless a rule that stays uses them. Everything else is listed as
kept, with the reason.

The order is what keeps a partial run safe to repeat: rules first (no pull reaches an upstream or creates a
repository any more), then templates, repositories, secrets (no rule refers to them now) and the ledger table last:
its ownership records are what a second run needs, so it is kept when anything before it failed. Something that
depends on a rule whose removal failed (its repositories, its secret) is skipped, not removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pullthrough.aws import ledger_table, ownership, ptc, repositories, secrets
from pullthrough.aws.ownership import Owned
from pullthrough.config import Config
from pullthrough.errors import AwsError, AwsNotFound
from pullthrough.reference import ROOT_PREFIX

DEFAULT_RECOVERY_DAYS = 30  # Secrets Manager's own default (botocore's DeleteSecret.RecoveryWindowInDays)


class Resource(StrEnum):
    """What kind of thing a line is about, in the order of removal."""

    RULE = "rule"
    TEMPLATE = "template"
    REPOSITORY = "repository"
    SECRET = "secret"  # noqa: S105 (a kind of resource, not a password)
    LEDGER = "ledger-table"


@dataclass(frozen=True)
class Removal:
    """One thing to remove; `needs` names the rules whose removal must succeed first."""

    kind: Resource
    name: str
    detail: str = ""
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kept:
    """One thing left alone, and why."""

    kind: Resource
    name: str
    reason: str


@dataclass(frozen=True)
class Options:
    """What the operator chose to keep, and how secrets go."""

    keep_repositories: bool = False
    keep_ledger: bool = False
    recovery_days: int = DEFAULT_RECOVERY_DAYS
    force_delete_secrets: bool = False


@dataclass(frozen=True)
class Inventory:
    """What uninstall would remove (in order) and keep, with notes on what it could not know."""

    removals: tuple[Removal, ...]
    kept: tuple[Kept, ...]
    ledger_table: str | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Done:
    """What became of one removal: `removed`, `gone` (already absent), `failed` or `skipped`, with the reason."""

    removal: Removal
    status: str
    reason: str = ""


# --- what there is -------------------------------------------------------------------------------------------------


def survey(config: Config, table: str | None, options: Options = Options(), region: str | None = None) -> Inventory:
    """Read the account (rules, templates, ownership, repositories, secrets, the table) and decide; writes nothing."""
    notes: list[str] = []
    owned = Owned()
    if table is None:
        notes.append(
            "no ledger table: without its ownership records no rule or template counts as Pullthrough's, so none is "
            "removed; pass --ledger-table NAME (the stack's retained LedgerTable)"
        )
    else:
        owned = ownership.owned(table, region)
    snapshot = ptc.snapshot(region)
    removals: list[Removal] = []
    kept: list[Kept] = []
    configured = {rule.prefix for rule in config.rules}
    for kind, prefixes in (
        (ownership.Kind.RULE, [rule.prefix for rule in snapshot.rules]),
        (ownership.Kind.TEMPLATE, [template.prefix for template in snapshot.templates]),
    ):
        found = _owned_or_kept(kind, prefixes, owned, configured)
        removals += [item for item in found if isinstance(item, Removal)]
        kept += [item for item in found if isinstance(item, Kept)]
    leaving = {r.name for r in removals if r.kind is Resource.RULE}
    staying = {rule.prefix: rule for rule in snapshot.rules if rule.prefix not in leaving}
    repository_items = _repositories(configured | leaving, staying, options, region)
    secret_items = _secrets(config, staying, options, region)
    removals += [item for item in repository_items + secret_items if isinstance(item, Removal)]
    kept += [item for item in repository_items + secret_items if isinstance(item, Kept)]
    if table is not None:
        if options.keep_ledger:
            kept.append(Kept(Resource.LEDGER, table, "--keep-ledger"))
        elif ledger_table.exists(table, region):
            removals.append(Removal(Resource.LEDGER, table, "runs, learned costs and ownership records"))
    order = list(Resource)
    removals.sort(key=lambda removal: order.index(removal.kind))
    return Inventory(tuple(removals), tuple(kept), table, tuple(notes))


def _owned_or_kept(
    kind: ownership.Kind, prefixes: Sequence[str], owned: Owned, configured: set[str]
) -> list[Removal | Kept]:
    resource = Resource.RULE if kind is ownership.Kind.RULE else Resource.TEMPLATE
    found: list[Removal | Kept] = []
    for prefix in sorted(prefixes):
        if owned.has(kind, prefix):
            found.append(Removal(resource, prefix, "created by Pullthrough (ownership record)"))
        elif prefix in configured:
            reason = "in the config but no ownership record: adopted or made by hand, so not Pullthrough's to delete"
            found.append(Kept(resource, prefix, reason))
        else:
            found.append(Kept(resource, prefix, "not Pullthrough's (no ownership record, not in the config)"))
    return found


def _repositories(
    prefixes: set[str], staying: dict[str, ptc.RuleSpec], options: Options, region: str | None
) -> list[Removal | Kept]:
    found: list[Removal | Kept] = []
    wanted = sorted(prefix for prefix in prefixes if prefix != ROOT_PREFIX)
    for prefix in wanted:
        if prefix in staying:
            reason = f"rule {prefix} stays (not Pullthrough's): its cache repositories stay with it"
            found.append(Kept(Resource.REPOSITORY, f"{prefix}/*", reason))
    removable = [prefix for prefix in wanted if prefix not in staying]
    for repository in repositories.under(removable, region):
        prefix = next(p for p in removable if repository.name.startswith(p + "/"))
        if options.keep_repositories:
            found.append(Kept(Resource.REPOSITORY, repository.name, "--keep-repositories"))
        else:
            detail = f"cache repository of prefix {prefix}, with its images" + _since(repository.created)
            found.append(Removal(Resource.REPOSITORY, repository.name, detail, needs=(prefix,)))
    return found


def _since(moment: datetime | None) -> str:
    return f", created {moment:%Y-%m-%d}" if moment is not None else ""


def _secrets(
    config: Config, staying: dict[str, ptc.RuleSpec], options: Options, region: str | None
) -> list[Removal | Kept]:
    found: list[Removal | Kept] = []
    users: dict[str, list[str]] = {}
    for rule in config.rules:
        if rule.secret_name:
            users.setdefault(rule.secret_name, []).append(rule.prefix)
        if rule.credentials and rule.credentials.admin_secret:
            reason = f"Docker Hub admin credentials of rule {rule.prefix}: yours; delete it yourself when done"
            found.append(Kept(Resource.SECRET, rule.credentials.admin_secret, reason))
    for name, prefixes in sorted(users.items()):
        holders = sorted(p for p, rule in staying.items() if _secret_of(rule.credential_arn) == name)
        if holders:
            found.append(Kept(Resource.SECRET, name, f"rule {', '.join(holders)} stays and uses it"))
            continue
        try:
            info = secrets.describe(name, region)
        except AwsNotFound:
            continue
        if info.deleted is not None:
            found.append(Kept(Resource.SECRET, name, f"already scheduled for deletion ({info.deleted:%Y-%m-%d})"))
            continue
        how = (
            "deleted at once, no recovery (--force-delete-secrets)"
            if options.force_delete_secrets
            else f"recoverable for {options.recovery_days} days (aws secretsmanager restore-secret)"
        )
        found.append(Removal(Resource.SECRET, name, how, needs=tuple(prefixes)))
    return found


def _secret_of(arn: str | None) -> str | None:
    # arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters> (Secrets Manager's ARN format)
    if not arn or ":secret:" not in arn:
        return None
    return arn.split(":secret:", 1)[1].rsplit("-", 1)[0]


# --- removing ------------------------------------------------------------------------------------------------------


def remove(
    inventory: Inventory,
    options: Options = Options(),
    region: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Done]:
    """Remove what the inventory lists, in its order; a failure never stops the rest, only what depends on it."""
    failed_rules: set[str] = set()
    done: list[Done] = []
    for removal in inventory.removals:
        blocked = sorted(failed_rules.intersection(removal.needs))
        if blocked:
            done.append(Done(removal, "skipped", f"rule {', '.join(blocked)} could not be removed"))
            continue
        if removal.kind is Resource.LEDGER and any(d.status in ("failed", "skipped") for d in done):
            done.append(Done(removal, "skipped", "kept: its ownership records are what a second run needs"))
            continue
        progress(f"removing {removal.kind.value} {removal.name}...")
        try:
            _remove_one(removal, inventory.ledger_table, options, region)
        except AwsNotFound:
            done.append(Done(removal, "gone", "it was gone already"))
        except AwsError as exc:
            if removal.kind is Resource.RULE:
                failed_rules.add(removal.name)
            done.append(Done(removal, "failed", str(exc)))
        else:
            done.append(Done(removal, "removed"))
    return done


def _remove_one(removal: Removal, table: str | None, options: Options, region: str | None) -> None:
    if removal.kind in (Resource.RULE, Resource.TEMPLATE):
        rule = removal.kind is Resource.RULE
        kind = ownership.Kind.RULE if rule else ownership.Kind.TEMPLATE
        try:
            (ptc.delete_rule if rule else ptc.delete_template)(removal.name, region)
        except AwsNotFound:
            _forget(table, kind, removal.name, region)  # a stale record: the rule is gone already
            raise
        # The record goes with the rule, so a second run after a partial failure does not look for it again.
        _forget(table, kind, removal.name, region)
    elif removal.kind is Resource.REPOSITORY:
        repositories.delete(removal.name, region)
    elif removal.kind is Resource.SECRET:
        secrets.delete(
            removal.name, recovery_days=options.recovery_days, force=options.force_delete_secrets, region=region
        )
    else:
        ledger_table.delete(removal.name, region)


def _forget(table: str | None, kind: ownership.Kind, prefix: str, region: str | None) -> None:
    if table is not None:
        ownership.forget(table, kind, prefix, region)
