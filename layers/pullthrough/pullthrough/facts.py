"""What template.yaml needs from the config, derived from config/pullthrough.yaml when the stack deploys.

config/pullthrough.yaml is the one source of truth (ARCHITECTURE.md): the rules' prefixes scope the functions' ECR
permissions, their secrets scope who may read which secret, `warm.schedule` is when plan_warming runs, and templates
with `role: create` say what the repository creation role may do. The template reads these from the ConfigFacts
custom resource (functions/config_facts, answered by `handle`): its properties name the config layer's version, so
every config edit is a new version, and `sam deploy` makes CloudFormation ask again.

The answers are short lists joined by commas, because CloudFormation takes at most 4096 bytes from a custom resource
("Custom resource response objects"): the template builds the ARNs from them with Fn::Join and Fn::Split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pullthrough import config as config_module
from pullthrough import custom_resource
from pullthrough.config import CREATE_ROLE, SECRET_PREFIX, Config
from pullthrough.config.source_entries import EcsSource
from pullthrough.env import ConfigFactsEnv
from pullthrough.org_facts import ORG_MEMBER_SLOTS, ORG_PREFIX_SLOTS, OrgFacts, check_deployment, derive_org
from pullthrough.reference import ROOT_PREFIX

__all__ = [
    "NOTHING",
    "ORG_MEMBER_SLOTS",
    "ORG_PREFIX_SLOTS",
    "PHYSICAL_ID",
    "Facts",
    "derive",
    "handle",
    "repository_pattern",
]

PHYSICAL_ID = "pullthrough-config-facts"  # one per stack, the same on every update: never a replacement
# Stands for an empty list in a repository or KMS key ARN: upper case, which neither an ECR repository name nor a KMS
# key id can hold, so the ARN it ends names nothing (IAM needs at least one Resource in a statement).
NOTHING = "NONE"
NO_KEY = "arn:aws:kms:*:*:key/" + NOTHING
# A schedule needs a valid expression even when DISABLED (no prune section).
DEFAULT_PRUNE_SCHEDULE = "rate(1 day)"


@dataclass(frozen=True)
class Facts:
    """What the template needs from the config."""

    # "<prefix>/*" for each rule (the template puts "arn:*:ecr:*:*:repository/" in front); "*" for a ROOT rule,
    # whose cache repositories are named after the upstream's own
    repository_patterns: tuple[str, ...]
    # the rules' secrets, without the ecr-pullthroughcache/ prefix the template writes itself (so no grant can
    # reach another secret); the template appends "-??????", Secrets Manager's suffix of every secret ARN
    secret_names: tuple[str, ...]
    warm_schedule: str  # warm.schedule: EventBridge Scheduler's expression for plan_warming
    # what the repository creation role (templates with role: create) may act on: their repositories and KMS keys
    role_repository_patterns: tuple[str, ...]
    role_key_arns: tuple[str, ...]
    # an `ecs` source reads the account's task definitions at plan time: plan_warming needs ListTaskDefinitions and
    # DescribeTaskDefinition, which take only Resource "*" (the IAM service reference)
    reads_ecs: bool = False
    # prune.schedule, and ENABLED only when the config has a prune section (the schedule's State)
    prune_schedule: str = DEFAULT_PRUNE_SCHEDULE
    prune_enabled: bool = False
    # "<prefix>/*" of the rules prune may delete under: never a ROOT rule's (pullthrough.prune); none unless the
    # config has a prune section
    prune_repository_patterns: tuple[str, ...] = ()
    # the organization section: the StackSet's targets and the member template's parameters (pullthrough.org_facts)
    org: OrgFacts = field(default_factory=OrgFacts)

    def attributes(self, org_root: str = "") -> dict[str, str]:
        """The custom resource's Data: each attribute `!GetAtt ConfigFacts.<name>` reads (`org_root`: the stack's
        OrgRootId parameter, the unit of members that list accounts only)."""
        return self.org.attributes(org_root) | {
            "RepositoryPatterns": ",".join(self.repository_patterns or (NOTHING,)),
            "SecretNames": ",".join(self.secret_names),
            "WarmSchedule": self.warm_schedule,
            "TemplateRoleRepositoryPatterns": ",".join(self.role_repository_patterns or (NOTHING,)),
            "TemplateRoleKeyArns": ",".join(self.role_key_arns or (NO_KEY,)),
            # Put in front of a task-definition ARN that names nothing: "*" joins the statement's resources only when
            # a source reads ECS (CloudFormation conditions cannot read a custom resource's answer).
            "EcsResourcePrefix": "*," if self.reads_ecs else "",
            "PruneSchedule": self.prune_schedule,
            "PruneScheduleState": "ENABLED" if self.prune_enabled else "DISABLED",
            "PruneRepositoryPatterns": ",".join(self.prune_repository_patterns or (NOTHING,)),
        }


def repository_pattern(prefix: str) -> str:
    """The cache repositories of a rule prefix, as the tail of a repository ARN."""
    return "*" if prefix == ROOT_PREFIX else f"{prefix}/*"


def derive(config: Config) -> Facts:
    """The facts of a validated config."""
    secrets = dict.fromkeys(rule.secret_name for rule in config.rules if rule.secret_name)
    with_role = [rule for rule in config.rules if rule.template is not None and rule.template.role == CREATE_ROLE]
    keys = dict.fromkeys(
        rule.template.encryption.key for rule in with_role if rule.template and rule.template.encryption.key
    )
    return Facts(
        repository_patterns=tuple(dict.fromkeys(repository_pattern(rule.prefix) for rule in config.rules)),
        secret_names=tuple(name.removeprefix(SECRET_PREFIX) for name in secrets if name is not None),
        warm_schedule=config.warm.schedule,
        role_repository_patterns=tuple(repository_pattern(rule.prefix) for rule in with_role),
        role_key_arns=tuple(key for key in keys if key),
        reads_ecs=any(isinstance(source, EcsSource) for source in config.warm.sources),
        prune_schedule=config.prune.schedule if config.prune else DEFAULT_PRUNE_SCHEDULE,
        prune_enabled=config.prune is not None,
        # None without a prune section: no function may delete images then (and fifty rules still fit 4096 bytes)
        prune_repository_patterns=tuple(
            dict.fromkeys(repository_pattern(rule.prefix) for rule in config.rules if rule.prefix != ROOT_PREFIX)
        )
        if config.prune is not None
        else (),
        org=derive_org(config),
    )


def handle(event: Mapping[str, Any], context: LambdaContext, env: ConfigFactsEnv) -> dict[str, Any]:
    """config_facts: answer CloudFormation's Create/Update of ConfigFacts with the facts of the deployed config.

    Returns the answer as CloudFormation reads it (its field names), for the function's log.
    """

    def facts(request: custom_resource.Request) -> dict[str, str]:
        # A ConfigError lists every problem of the document; it becomes the deploy's failure reason. The stack's
        # organisation parameters (OrgMembers, OrgRootId) and its account and region must agree with the config.
        derived = derive(config_module.load(env.config_path))
        check_deployment(derived.org, request.resource_properties)
        return derived.attributes(str(request.resource_properties.get("OrgRootId", "")))

    answer = custom_resource.answer(event, facts, physical_id=PHYSICAL_ID)
    return answer.model_dump(mode="json", by_alias=True)
