"""Reconcile the account's ECR pull-through cache rules and repository creation templates with the config.

    desired (config) + actual (ECR, ownership records) --plan()--> Plan --credentials gate--> apply --> validate
    --> Report (SNS) and a "Pullthrough Rules Reconciled" event that starts warming

`plan()` is pure: it compares and decides, and its `Plan` reads as a list of changes a person can check (a dry
run checks and validates but writes none of it). Applying is `reconcile()`: it writes only what the plan says, only
to rules and templates Pullthrough owns (aws/ownership.py says why ownership lives in the ledger table), points a
rule at a secret only after the secret proved itself upstream, survives a concurrent run creating or deleting the
same thing, and then asks ECR to validate every rule that has credentials. A run with nothing to change makes no
write call.

The package, one concept a module:
    trigger       which event asked (deploy, schedule, drift, manual)
    desired       config -> the rules and templates ECR should hold, secrets resolved to ARNs
    differences   field by field, what differs between a rule or template and the account's
    diff          the one generic diff: what to do with each rule and template (the Plan)
    gate          the credentials gate
    apply         carrying out a change, and settling a race; writes.py holds the ECR calls
    records       the ownership records as a run uses them
    items         the report's items, and ECR's validation of each rule with a secret
    reconcile     the Run: orchestration only
    handler       reconcile_rules' handle(event, context, env)
"""

from __future__ import annotations

from pullthrough.rules.apply import CONFIG_FILE, Applier
from pullthrough.rules.desired import (
    TEMPLATE_ROLE_UNKNOWN,
    DesiredRule,
    desired_rule,
    desired_rules,
    secret_arns,
    template_spec,
)
from pullthrough.rules.diff import (
    DELETED_OUTSIDE,
    Action,
    Change,
    Comparison,
    Decision,
    Plan,
    RuleChange,
    TemplateChange,
    decide,
    plan,
    plan_rule,
    plan_template,
)
from pullthrough.rules.differences import rule_differences, template_differences, template_settings
from pullthrough.rules.gate import SECRET_VALUE_SHAPE, CredentialsGate
from pullthrough.rules.handler import LambdaContextLike, Summary, handle
from pullthrough.rules.reconcile import Run, reconcile
from pullthrough.rules.result import Result
from pullthrough.rules.trigger import Trigger, TriggerKind

__all__ = [
    "CONFIG_FILE",
    "DELETED_OUTSIDE",
    "SECRET_VALUE_SHAPE",
    "TEMPLATE_ROLE_UNKNOWN",
    "Action",
    "Applier",
    "Change",
    "Comparison",
    "CredentialsGate",
    "Decision",
    "DesiredRule",
    "LambdaContextLike",
    "Plan",
    "Result",
    "RuleChange",
    "Run",
    "Summary",
    "TemplateChange",
    "Trigger",
    "TriggerKind",
    "decide",
    "desired_rule",
    "desired_rules",
    "handle",
    "plan",
    "plan_rule",
    "plan_template",
    "reconcile",
    "rule_differences",
    "secret_arns",
    "template_differences",
    "template_settings",
    "template_spec",
]
