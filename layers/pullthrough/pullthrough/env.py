"""The environment a handler runs in, as one validated model per handler (never `os.environ[...]` in logic).

`Settings` is what a terminal may know (the CLI fills in the rest from the deployed stack, or goes without); each
function has its own model below, with what template.yaml gives that function required, so a missing variable is
refused once in app.py (`<Model>.from_env()`), naming the variable and the fix, not deep in the logic
(docs/ARCHITECTURE.md, "Thin handlers").

The same code runs in AWS and in the sandbox; only these values differ (docs/CONTRACTS.md, "Endpoints").
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pullthrough.errors import PullthroughError


class SettingsError(PullthroughError):
    """An environment variable has a value the handler cannot work with."""


class Settings(BaseModel):
    """Environment variables read at handler entry."""

    # Each function builds only its own model (at from_env): defer_build leaves the other eight unbuilt.
    model_config = ConfigDict(frozen=True, populate_by_name=True, defer_build=True)

    config_path: str = Field("/opt/pullthrough.yaml", alias="PULLTHROUGH_CONFIG")
    region: str = Field("us-east-1", alias="AWS_REGION")
    stage: str = Field("dev", alias="STAGE")
    stack_name: str = Field("pullthrough", alias="STACK_NAME")
    account_id: str | None = Field(None, alias="ACCOUNT_ID")
    topic_arn: str | None = Field(None, alias="REPORT_TOPIC_ARN")
    queue_url: str | None = Field(None, alias="WARM_QUEUE_URL")
    shards_queue_url: str | None = Field(None, alias="PLAN_SHARDS_QUEUE_URL")
    ledger_table: str | None = Field(None, alias="LEDGER_TABLE")
    event_bus: str = Field("default", alias="EVENT_BUS_NAME")
    # The repository creation role template.yaml deploys, passed as customRoleArn to templates with role: create.
    template_role_arn: str | None = Field(None, alias="TEMPLATE_ROLE_ARN")
    ecr_registry_url: str | None = Field(None, alias="PULLTHROUGH_ECR_REGISTRY_URL")
    upstream_endpoints: Annotated[dict[str, str], Field(alias="PULLTHROUGH_UPSTREAM_ENDPOINTS")] = {}
    dry_run: bool = Field(False, alias="PULLTHROUGH_DRY_RUN")
    # The organisation's members' StackSet (the hub: gather_reports waits for its instances, plan_warming warms
    # them) and how CloudFormation is called there (SELF or DELEGATED_ADMIN).
    member_stack_set: str | None = Field(None, alias="MEMBER_STACK_SET")
    stack_set_call_as: Literal["SELF", "DELEGATED_ADMIN"] = Field("SELF", alias="STACK_SET_CALL_AS")

    @field_validator("upstream_endpoints", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read and validate the environment; a bad value raises SettingsError naming the variable and the fix."""
        source = os.environ if environ is None else environ
        data = {k: v for k, v in source.items() if k in _ALIASES}
        if "AWS_REGION" not in data and "AWS_DEFAULT_REGION" in source:
            data["AWS_REGION"] = source["AWS_DEFAULT_REGION"]
        try:
            return cls.model_validate(data)
        except (ValidationError, json.JSONDecodeError) as exc:
            raise SettingsError(_describe(exc)) from None

    def registry_url(self) -> str:
        """Base URL of the ECR registry endpoint (data plane) of this account and region."""
        if self.ecr_registry_url:
            return self.ecr_registry_url.rstrip("/")
        if not self.account_id:
            raise SettingsError("ACCOUNT_ID is not set: the ECR registry endpoint is <account>.dkr.ecr.<region>...")
        return f"https://{self.account_id}.dkr.ecr.{self.region}.amazonaws.com"

    def stack_set(self) -> str:
        """The members' StackSet: MEMBER_STACK_SET, else pullthrough-members-<Stage> (docs/CONTRACTS.md)."""
        return self.member_stack_set or f"pullthrough-members-{self.stage}"

    def upstream_url(self, host: str) -> str:
        """Base URL for an upstream registry host (https unless the environment maps it elsewhere)."""
        return self.upstream_endpoints.get(host, f"https://{host}").rstrip("/")


class FunctionEnv(Settings):
    """What template.yaml's Globals give every function: the account (AWS::AccountId) and the report topic."""

    account_id: str = Field(alias="ACCOUNT_ID")
    topic_arn: str = Field(alias="REPORT_TOPIC_ARN")


class ConfigFactsEnv(FunctionEnv):
    """config_facts: the config file it derives the template's facts from."""


class ReconcileEnv(FunctionEnv):
    """reconcile_rules: the ledger that records ownership, and the role templates with `role: create` pass."""

    ledger_table: str = Field(alias="LEDGER_TABLE")
    template_role_arn: str = Field(alias="TEMPLATE_ROLE_ARN")


class RotateEnv(FunctionEnv):
    """rotate_credentials: Secrets Manager's four steps, the upstreams it proves a token against."""


class CheckEnv(FunctionEnv):
    """check_credentials: a secret's change event, the upstreams it proves the value against."""


class WarmEnv(FunctionEnv):
    """warm_images: the ledger it records outcomes in and the queue a waiting import goes back to."""

    ledger_table: str = Field(alias="LEDGER_TABLE")
    queue_url: str = Field(alias="WARM_QUEUE_URL")


class PlanEnv(WarmEnv):
    """plan_warming: the ledger it opens runs in, the queue it sends jobs to, and the queue of its plan shards."""

    shards_queue_url: str = Field(alias="PLAN_SHARDS_QUEUE_URL")


class PullFailuresEnv(FunctionEnv):
    """report_pull_failures: the ledger that counts a failure once."""

    ledger_table: str = Field(alias="LEDGER_TABLE")


class PruneEnv(FunctionEnv):
    """prune_images: the config's prune section and the rules' prefixes."""


class GatherEnv(FunctionEnv):
    """gather_reports (the organisation's hub): the ledger that counts each member report once, the StackSet whose
    instances are the members it waits for, and how it calls CloudFormation there (SELF or DELEGATED_ADMIN)."""

    ledger_table: str = Field(alias="LEDGER_TABLE")


class HubSettings(BaseModel):
    """What reporting.publish reads to send a member's report to the hub (template.yaml: HubEventBusArn; the member
    template sets all three): only these variables, unvalidated beyond their type, so a publish never fails on the
    environment (a wrong ARN fails the PutEvents, which is logged and counted, and the hub names the member missing).
    The member label and the warm schedule name the report's cycle (pullthrough.org.event)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, defer_build=True)

    hub_event_bus_arn: str | None = Field(None, alias="HUB_EVENT_BUS_ARN")
    member: str = Field("", alias="PULLTHROUGH_MEMBER")
    warm_schedule: str = Field("rate(6 hours)", alias="PULLTHROUGH_WARM_SCHEDULE")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        return cls.model_validate({name: source[name] for name in HUB_VARIABLES if source.get(name)})


HUB_VARIABLES = ("HUB_EVENT_BUS_ARN", "PULLTHROUGH_MEMBER", "PULLTHROUGH_WARM_SCHEDULE")


def hub_settings() -> HubSettings:
    """This environment's HubSettings, validated once per distinct value of its three variables (a function's
    environment is fixed, so once per execution environment; every report publish reads it)."""
    return _hub_settings(*(os.environ.get(name) for name in HUB_VARIABLES))


@functools.lru_cache(maxsize=8)
def _hub_settings(*values: str | None) -> HubSettings:
    return HubSettings.from_env({name: value for name, value in zip(HUB_VARIABLES, values, strict=True) if value})


_ALIASES = (
    {field.alias for field in Settings.model_fields.values() if field.alias}
    | {field.alias for field in GatherEnv.model_fields.values() if field.alias}
    | {"AWS_REGION"}
)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            fix = "template.yaml sets it for this function" if err["type"] == "missing" else "fix its value"
            parts.append(f"environment variable {name}: {err['msg']}; {fix}")
        return "; ".join(parts)
    return f"environment variable PULLTHROUGH_UPSTREAM_ENDPOINTS: not a JSON object ({exc}); fix: e.g. '{{}}'"
