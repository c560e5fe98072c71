"""The JSON documents `--json` prints, as models: one per command, and the schemas published in docs/cli/.

Each document is `{"schema": "pullthrough/<command>/v1", ...}`. Versioning: a change that only adds fields (or
values of an open set) keeps v1; a consumer ignores what it does not know. Renaming, removing or retyping a field, or
changing its meaning, is v2. `make schema` writes the schemas (main() below); a test keeps them current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pullthrough.cli.common import SCHEMA_VERSION
from pullthrough.consumers import Artefact, CachedImage, RegistryBase, Target
from pullthrough.reporting.model import Report

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class Ended(_Doc):
    exit_code: int = Field(description="The command's exit status: 0 ok, 1 findings, 2 usage or config error.")


# --- credentials -----------------------------------------------------------------------------------------------------


class CredentialCheckDoc(_Doc):
    """One secret checked upstream; never its token."""

    rule: str
    secret: str
    status: str = Field(description="valid, invalid, unreachable, ...")
    valid: bool
    username: str | None = None
    message: str
    fix: str | None = None
    reason_code: str | None = None
    pulls_limit: int | None = None
    pulls_remaining: int | None = None
    window_seconds: int | None = None


class CredentialsCheckDocument(Ended):
    """`pullthrough credentials check --json`."""

    rules: list[CredentialCheckDoc]


class CredentialsSetDocument(Ended):
    """`pullthrough credentials set --json`: the check, what was stored, and the lines a person would have read."""

    rule: str
    secret: str | None = None
    check: CredentialCheckDoc | None = None
    stored: Literal["created", "staged", "rotating", "current"] | None = Field(
        None,
        description="created: a new secret; staged: under the candidate label only; rotating: the rotation "
        "function was started; current: promoted here. None: nothing stored.",
    )
    lines: list[str]


# --- warm, plan, reconcile -------------------------------------------------------------------------------------------


class WarmDocument(Ended):
    """`pullthrough warm --json`: the run's report, as the SNS message's JSON block carries it."""

    report: Report


class PruneDocument(Ended):
    """`pullthrough prune --json`: the run's report (kind prune), as the SNS message's JSON block carries it."""

    dry_run: bool = Field(description="Whether the run only listed what would be deleted.")
    report: Report


class ChangeDoc(_Doc):
    """What a reconcile does (or would do) with one rule or repository creation template."""

    kind: Literal["rule", "template"]
    prefix: str
    action: str = Field(description="create, update, replace, delete, keep, conflict, foreign, forget or blocked")
    writes: bool = Field(description="Whether the action changes ECR.")
    differences: list[str] = Field(description='Field-level differences, e.g. "credentialArn: <now> -> <wanted>".')
    reason: str | None = None
    outcome: str | None = Field(None, description="The report's outcome for it (created, unchanged, skipped, ...).")
    valid: bool | None = Field(None, description="ValidatePullThroughCacheRule's isValid, when it was asked.")
    fix: str | None = None


class WarmImageDoc(_Doc):
    """What a warm run would do with one image tag."""

    subject: str
    action: Literal["warm", "refresh", "complete", "defer", "keep", "fail", "skip"] = Field(
        description="warm: ECR lacks it; refresh: the upstream tag moved; complete: blobs are missing; defer: over "
        "the pull budget; keep: ECR holds it; fail: cannot be warmed; skip: not attempted"
    )
    outcome: str
    cost: int = Field(0, description="Upstream pulls the job is budgeted (0 for decided images).")
    repository: str | None = None
    digest: str | None = None
    previous_digest: str | None = None
    platforms: list[str] = []
    reason: str | None = None
    fix: str | None = None
    source: str | None = Field(None, description="The warm.sources entry naming the image; None for warm.images.")


class WarmPlanDoc(_Doc):
    images: list[WarmImageDoc]
    pulls: int = Field(description="Upstream pulls the run would spend in all.")
    notes: list[str]


class PlanDocument(Ended):
    """`pullthrough plan --json`: what a reconcile and a warm run would do now; nothing was written."""

    stack: str
    region: str
    account: str
    rules: list[ChangeDoc]
    warm: WarmPlanDoc | None = Field(None, description="None with --rules-only.")
    changes: int = Field(description="Rule and template writes plus images to pull: 0 means nothing to do.")
    notes: list[str]


# --- images -----------------------------------------------------------------------------------------------------------


class SourceReferenceDoc(_Doc):
    """One image reference a warm.sources entry names, and where."""

    reference: str = Field(description="The upstream reference warmed, e.g. docker.io/olakego/ui:v0.2.3.")
    source: str = Field(description="The source's name: its name, or its kind and first file.")
    place: str = Field(description="file:line, or file → service, or file → Kind/name → container.")
    repository: str | None = Field(None, description="The ECR cache repository it is warmed in.")
    warm_images: bool = Field(description="Whether warm.images names this tag too (its settings win; warmed once).")


class SourceProblemDoc(_Doc):
    """Something a source names that cannot be warmed, or a note about what yields nothing on purpose."""

    location: str = Field(description="The file and the place in it.")
    value: str
    message: str = Field(description="What is wrong and the fix.")


class ImagesDocument(Ended):
    """`pullthrough images --json`: what warm.sources yield (file sources; ecs sources are read at plan time)."""

    references: list[SourceReferenceDoc]
    problems: list[SourceProblemDoc]
    notes: list[SourceProblemDoc]


class ReconcileDocument(Ended):
    """`pullthrough reconcile --json`."""

    dry_run: bool
    rules: list[ChangeDoc]
    changes: int = Field(description="Writes made (or, with --dry-run, that would be made).")
    report: Report


# --- status ----------------------------------------------------------------------------------------------------------


class RuleStatusDoc(_Doc):
    prefix: str
    upstream: str
    in_account: bool = Field(description="ECR has the rule.")
    valid: bool | None = Field(None, description="ValidatePullThroughCacheRule's isValid (None: not asked).")
    failure: str | None = None
    secret: str | None = None
    secret_exists: bool | None = None
    expires: str | None = Field(None, description="The token's known expiry (YYYY-MM-DD).")
    days_left: int | None = None
    problems: list[str]


class ImageStatusDoc(_Doc):
    subject: str
    repository: str
    tag: str
    ecr_digest: str | None = None
    upstream_digest: str | None = None
    current: bool | None = Field(None, description="ECR holds what the upstream tag points at (None: unknown).")
    pushed_at: str | None = Field(None, description="imagePushedAt: when ECR imported it.")
    last_pulled: str | None = Field(None, description="lastRecordedPullTime (ECR updates it about once a day).")
    platforms_verified: list[str] = []
    verified_at: str | None = None
    last_outcome: str | None = None
    last_reason: str | None = None
    last_run: str | None = None
    problems: list[str]


class RunStatusDoc(_Doc):
    run_id: str
    status: str
    trigger: str
    started: str
    planned: int
    done: int
    counts: dict[str, int]
    pulls_spent: int
    bytes_moved: int
    open: bool


class StatusDocument(Ended):
    """`pullthrough status --json`."""

    stack: str
    region: str
    account: str
    rules: list[RuleStatusDoc]
    images: list[ImageStatusDoc]
    runs: list[RunStatusDoc]
    notes: list[str]


# --- urls, pull-config -----------------------------------------------------------------------------------------------
# Their parts are pullthrough.consumers' own dataclasses (one definition; the descriptions are there).


class UrlsDocument(Ended):
    """`pullthrough urls --json`."""

    target: Target
    registries: list[RegistryBase]
    images: list[CachedImage]


class PullConfigDocument(Ended):
    """`pullthrough pull-config --json`."""

    target: Target
    artefacts: list[Artefact]
    written: list[str] | None = Field(None, description="With --output-dir: the files written, in order")


# --- uninstall -------------------------------------------------------------------------------------------------------


class RemovalDoc(_Doc):
    """One thing uninstall removes (or would remove), in the order it does."""

    kind: Literal["rule", "template", "repository", "secret", "ledger-table"]
    name: str
    detail: str = ""
    status: str = Field(
        description="planned (a dry run, or not confirmed), removed, gone (was absent already), failed or skipped"
    )
    reason: str | None = Field(None, description="why it failed or was skipped")


class KeptDoc(_Doc):
    """One thing uninstall leaves alone, and why (not Pullthrough's, still in use, or kept on request)."""

    kind: Literal["rule", "template", "repository", "secret", "ledger-table"]
    name: str
    reason: str


class UninstallDocument(Ended):
    """`pullthrough uninstall --json`: what Pullthrough owns in the account, and what became of it."""

    dry_run: bool
    confirmed: bool = Field(description="true when the removal was confirmed (typed stack name or --yes)")
    stack: str = Field(description="the CloudFormation stack name the confirmation asks for")
    region: str
    ledger_table: str | None = Field(description="the ledger table whose ownership records were read")
    remove: list[RemovalDoc]
    keep: list[KeptDoc]
    notes: list[str]


# --- org plan, org status ---------------------------------------------------------------------------------------------


class MemberRuleDoc(_Doc):
    """One ECR-to-ECR rule a member target gets: the hub's prefix, cached from the hub's registry."""

    prefix: str = Field(description="ecrRepositoryPrefix: the hub rule's prefix, the same in the member.")
    upstream_registry: str = Field(description="Always ecr (ECR to ECR).")
    upstream_registry_url: str = Field(description="The hub's registry: <hub>.dkr.ecr.<hub region>.amazonaws.com.")
    upstream_repository_prefix: str = Field(description="upstreamRepositoryPrefix: the same prefix in the hub.")
    custom_role_arn: str = Field(
        description="The member role ECR assumes; ${AWS::AccountId} stands for each account of an organisational unit."
    )
    template: dict[str, Any] | None = Field(
        None, description="The hub rule's repository creation template (config fields), created in the member too."
    )


class MemberTargetDoc(_Doc):
    """What one member target (an account, or every account of an organisational unit) gets in one region."""

    member: str
    account: str | None = Field(description="None for an organisational unit's accounts.")
    organizational_unit: str | None = None
    region: str
    role_name: str = Field(description="The member role ECR assumes: pullthrough-org-ptc-<region>.")
    rules: list[MemberRuleDoc]
    warm: list[str] = Field(description="The member's warm list, as the config writes each image.")


class StatementChangeDoc(_Doc):
    """What a reconcile in the hub does (or would do) with one of Pullthrough's registry policy statements."""

    sid: str
    outcome: str = Field(description="created, updated (drift repaired), deleted or unchanged")
    differences: list[str] = Field(description="The statement's elements that differ from the config.")


class HubPolicyDoc(_Doc):
    """The hub's registry policy: Pullthrough's statements, and how the hub's current policy differs."""

    account: str
    region: str
    statements: list[dict[str, Any]] = Field(description="The PullthroughOrg* statements the config asks for.")
    changes: list[StatementChangeDoc] | None = Field(
        None, description="None when the hub's current policy could not be read (the notes say why)."
    )


class OrgPlanDocument(Ended):
    """`pullthrough org plan --json`: what every member target and region gets, and the hub policy's diff."""

    organization: str
    hub: dict[str, str] = Field(description="{account, region}")
    stack_set: str = Field(description="The members' StackSet: pullthrough-members-<Stage>.")
    targets: list[MemberTargetDoc]
    hub_policy: HubPolicyDoc
    notes: list[str]


class LastReportDoc(_Doc):
    """A member's latest warm report the hub gathered (its ledger's cycles: the current warm cycle, else the one
    before)."""

    cycle: str = Field(description="The warm cycle it counted in (ISO 8601 UTC).")
    run_id: str
    status: str = Field(description="The report's status: SUCCEEDED, PARTIAL, FAILED, ...")
    counts: dict[str, int] = Field(description="Images per outcome.")
    finished: str | None = None


class InstanceStatusDoc(_Doc):
    """One member account in one region: its stack instance, and the rules it should hold."""

    member: str | None = Field(description="The config's member it belongs to; None: no member targets it.")
    account: str | None = Field(description="None: an organisational unit with no stack instance in the region.")
    region: str
    organizational_unit: str | None = None
    status: str = Field(description="CURRENT, OUTDATED, INOPERABLE (CloudFormation's), or MISSING (no instance).")
    detailed_status: str | None = Field(None, description="PENDING, RUNNING, SUCCEEDED, FAILED, ...")
    status_reason: str | None = None
    drift_status: str | None = None
    rules: list[str] = Field(description="The prefixes the member caches from the hub.")
    last_report: LastReportDoc | None = Field(
        None, description="Its latest warm report at the hub (with --stack or LEDGER_TABLE); None: none gathered."
    )
    problems: list[str]


class OrgStatusDocument(Ended):
    """`pullthrough org status --json`: each member account and region, as the members' StackSet has it."""

    organization: str
    hub: dict[str, str] = Field(description="{account, region}")
    stack_set: str
    call_as: str = Field(description="SELF (management account) or DELEGATED_ADMIN")
    instances: list[InstanceStatusDoc]
    notes: list[str]


DOCUMENTS: dict[str, type[BaseModel]] = {
    "credentials-check": CredentialsCheckDocument,
    "credentials-set": CredentialsSetDocument,
    "warm": WarmDocument,
    "plan": PlanDocument,
    "reconcile": ReconcileDocument,
    "status": StatusDocument,
    "urls": UrlsDocument,
    "images": ImagesDocument,
    "pull-config": PullConfigDocument,
    "uninstall": UninstallDocument,
    "prune": PruneDocument,
    "org-plan": OrgPlanDocument,
    "org-status": OrgStatusDocument,
}


def schema(name: str) -> dict[str, Any]:
    """The published JSON Schema (2020-12) of a command's document."""
    model = DOCUMENTS[name]
    body = _open(model.model_json_schema(mode="serialization"))
    body["properties"] = {"schema": {"const": f"pullthrough/{name}/{SCHEMA_VERSION}"}, **body["properties"]}
    body["required"] = ["schema", *body.get("required", [])]
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": f"urn:pullthrough:cli:{name}:{SCHEMA_VERSION}", **body}


def _open(node: Any) -> Any:
    """Drop additionalProperties: false: additive changes keep v1, so a v1 consumer must accept unknown fields."""
    if isinstance(node, dict):
        return {k: _open(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_open(v) for v in node]
    return node


def dump(document: BaseModel) -> dict[str, Any]:
    """A document as emit() takes it."""
    data: dict[str, Any] = document.model_dump(mode="json", by_alias=True)
    return data


def main(argv: list[str]) -> int:
    """Write every schema to DIR/<command>.schema.json (default docs/cli)."""
    target = Path(argv[0] if argv else "docs/cli")
    target.mkdir(parents=True, exist_ok=True)
    for name in DOCUMENTS:
        (target / f"{name}.schema.json").write_text(json.dumps(schema(name), indent=2) + "\n")
    return 0
