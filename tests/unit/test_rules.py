"""pullthrough/rules/ without AWS: reading the trigger events (trigger.py), the desired state from the config
(desired.py), and planning (differences.py, diff.py).

Planning is table-driven: each row is one kind of difference between the config and the account, and the action,
the differences and the credentials gate the plan must come up with.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pullthrough import config as config_module
from pullthrough import rules, upstreams
from pullthrough.aws import ptc
from pullthrough.aws.ownership import Kind, Owned
from pullthrough.aws.ptc import RuleSpec, Snapshot, TemplateSpec
from pullthrough.errors import EventError
from pullthrough.rules import Action, DesiredRule, Trigger, TriggerKind
from sandbox.lambdas import sample_event

REGION, ACCOUNT = "us-east-1", "123456789012"
HUB_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
OTHER_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/old-hub-QwErTy"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-pull-through-cache"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/other"
ECR_URL = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
LIFECYCLE = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged"}}]}, sort_keys=True)
ROOT_DIR = Path(__file__).resolve().parents[2]


# --- builders ------------------------------------------------------------------------------------------------------


def hub(arn: str | None = HUB_ARN, *, allow_replace: bool = False, template: TemplateSpec | None = None) -> DesiredRule:
    """The Docker Hub rule as the config wants it (secret resolved to `arn`; None: the secret was not found)."""
    return DesiredRule(
        spec=RuleSpec("docker-hub", "docker-hub", "registry-1.docker.io", credential_arn=arn),
        upstream=upstreams.CATALOGUE["docker-hub"],
        secret="ecr-pullthroughcache/docker-hub",
        allow_replace=allow_replace,
        template=template,
    )


def ecr_rule(
    *, role: str | None = ROLE, upstream_prefix: str | None = None, allow_replace: bool = False
) -> DesiredRule:
    """An ECR to ECR rule as the config wants it."""
    return DesiredRule(
        spec=RuleSpec(
            "shared",
            "ecr",
            ECR_URL,
            custom_role_arn=role,
            upstream_prefix=ptc.upstream_prefix_of(upstream_prefix),
        ),
        upstream=upstreams.CATALOGUE["ecr"],
        allow_replace=allow_replace,
    )


def hub_actual(**changes: Any) -> RuleSpec:
    """The Docker Hub rule as ECR describes it, with `changes`."""
    return replace(RuleSpec("docker-hub", "docker-hub", "registry-1.docker.io", credential_arn=HUB_ARN), **changes)


def template(**changes: Any) -> TemplateSpec:
    """A template for docker-hub, with `changes`."""
    return replace(
        TemplateSpec("docker-hub", lifecycle_policy=LIFECYCLE, resource_tags=(("team", "platform"),)), **changes
    )


# --- planning rules --------------------------------------------------------------------------------------------------

RULE_CASES = [
    # (id, desired, actual, owned, action, differences (substrings, in order), gate)
    ("new rule", hub(), None, False, Action.CREATE, [], True),
    ("owned rule deleted outside", hub(), None, True, Action.CREATE, [], True),
    ("as configured", hub(), hub_actual(), True, Action.KEEP, [], False),
    ("as configured, not owned", hub(), hub_actual(), False, Action.FOREIGN, [], False),
    (
        "another secret",
        hub(),
        hub_actual(credential_arn=OTHER_ARN),
        True,
        Action.UPDATE,
        [f"{OTHER_ARN} -> {HUB_ARN}"],
        True,
    ),
    (
        "the secret was deleted",
        hub(arn=None),
        hub_actual(),
        True,
        Action.UPDATE,
        ["secret ecr-pullthroughcache/docker-hub (not found)"],
        True,
    ),
    (
        "another role",
        ecr_rule(),
        replace(ecr_rule().spec, custom_role_arn=OTHER_ROLE),
        True,
        Action.UPDATE,
        [f"{OTHER_ROLE} -> {ROLE}"],
        False,
    ),
    (
        "another upstream URL",
        hub(),
        hub_actual(upstream_registry=None, upstream_url="index.docker.io"),
        True,
        Action.CONFLICT,
        ["upstreamRegistryUrl: index.docker.io -> registry-1.docker.io"],
        False,
    ),
    (
        "another upstream URL, replacement allowed",
        hub(allow_replace=True),
        hub_actual(upstream_url="index.docker.io"),
        True,
        Action.REPLACE,
        ["upstreamRegistryUrl"],
        True,
    ),
    (
        "another upstream registry",
        hub(),
        hub_actual(upstream_registry="quay", upstream_url="quay.io", credential_arn=None),
        True,
        Action.CONFLICT,
        ["upstreamRegistry: quay -> docker-hub", "upstreamRegistryUrl", "credentialArn: none -> "],
        False,
    ),
    (
        "another upstream prefix",
        ecr_rule(upstream_prefix="team-a", allow_replace=True),
        replace(ecr_rule().spec, upstream_prefix="team-b"),
        True,
        Action.REPLACE,
        ["upstreamRepositoryPrefix: team-b -> team-a"],
        False,
    ),
    (
        "ECR's default upstream prefix",
        ecr_rule(),
        replace(ecr_rule().spec, upstream_prefix="ROOT"),
        True,
        Action.KEEP,
        [],
        False,
    ),
    (
        "a secret ECR cannot take away",
        DesiredRule(RuleSpec("docker-hub", "docker-hub", "registry-1.docker.io"), upstreams.CATALOGUE["docker-hub"]),
        hub_actual(),
        True,
        Action.CONFLICT,
        ["credentialArn: " + HUB_ARN + " -> none"],
        False,
    ),
    (
        "a role ECR cannot take away",
        ecr_rule(role=None),
        replace(ecr_rule().spec, custom_role_arn=ROLE),
        True,
        Action.CONFLICT,
        ["customRoleArn: " + ROLE + " -> none"],
        False,
    ),
    (
        "differs, not owned",
        hub(),
        hub_actual(credential_arn=OTHER_ARN),
        False,
        Action.CONFLICT,
        ["credentialArn"],
        False,
    ),
    ("no longer configured", None, hub_actual(), True, Action.DELETE, [], False),
    ("never configured, not owned", None, hub_actual(), False, Action.FOREIGN, [], False),
    ("gone and no longer configured", None, None, True, Action.FORGET, [], False),
]


@pytest.mark.parametrize(
    ("desired", "actual", "owned", "action", "differences", "gate"),
    [case[1:] for case in RULE_CASES],
    ids=[case[0] for case in RULE_CASES],
)
def test_plan_rule_decides_every_kind_of_difference(
    desired: DesiredRule | None,
    actual: RuleSpec | None,
    owned: bool,
    action: Action,
    differences: list[str],
    gate: bool,
) -> None:
    # Given a rule as configured and as the account has it, owned by Pullthrough or not
    prefix = (desired.spec if desired else actual).prefix if (desired or actual) else "docker-hub"

    # When it is planned
    change = rules.plan_rule(prefix, desired, actual, owned)

    # Then the action, the differences named and whether the credentials gate applies are as expected
    assert change is not None
    assert change.action is action
    assert len(change.differences) >= len(differences)
    for expected, found in zip(differences, change.differences, strict=False):
        assert expected in found
    assert change.sets_credentials is gate
    assert change.owned is owned


def test_plan_rule_says_nothing_of_a_rule_nobody_has() -> None:
    # Given a prefix neither configured, nor in the account, nor recorded, When planned, Then there is no change
    assert rules.plan_rule("docker-hub", None, None, owned=False) is None


def test_a_recreated_rule_says_it_was_deleted_outside() -> None:
    # Given an owned rule missing from the account, When planned, Then the reason says it was deleted outside
    change = rules.plan_rule("docker-hub", hub(), None, owned=True)
    assert change is not None
    assert change.reason == rules.DELETED_OUTSIDE


def test_a_role_update_does_not_pass_the_credentials_gate() -> None:
    # Given an ECR to ECR rule whose role changed, When planned, Then it updates without a secret to check
    change = rules.plan_rule("shared", ecr_rule(), replace(ecr_rule().spec, custom_role_arn=OTHER_ROLE), owned=True)
    assert change is not None
    assert change.action is Action.UPDATE
    assert not change.sets_credentials


# --- planning templates --------------------------------------------------------------------------------------------

TEMPLATE_CASES = [
    # (id, desired, actual, owned, action, differences (substrings))
    ("new template", template(), None, False, Action.CREATE, []),
    ("owned template deleted outside", template(), None, True, Action.CREATE, []),
    ("as configured", template(), template(), True, Action.KEEP, []),
    ("as configured, not owned", template(), template(), False, Action.FOREIGN, []),
    (
        "tag mutability",
        template(tag_mutability="IMMUTABLE"),
        template(),
        True,
        Action.UPDATE,
        ["imageTagMutability: MUTABLE -> IMMUTABLE"],
    ),
    (
        "exclusion filters",
        template(tag_mutability="IMMUTABLE_WITH_EXCLUSION", mutability_exclusions=("latest",)),
        template(tag_mutability="IMMUTABLE_WITH_EXCLUSION", mutability_exclusions=("dev-*",)),
        True,
        Action.UPDATE,
        ["exclusionFilters: dev-* -> latest"],
    ),
    (
        "encryption type",
        template(encryption_type="KMS"),
        template(),
        True,
        Action.UPDATE,
        ["encryption: AES256 -> KMS"],
    ),
    (
        "KMS with ECR's own key",
        template(encryption_type="KMS"),
        template(encryption_type="KMS", kms_key="arn:aws:kms:us-east-1:123456789012:key/aws-ecr"),
        True,
        Action.KEEP,
        [],
    ),
    (
        "another KMS key",
        template(encryption_type="KMS", kms_key="arn:aws:kms:us-east-1:123456789012:key/a"),
        template(encryption_type="KMS", kms_key="arn:aws:kms:us-east-1:123456789012:key/b"),
        True,
        Action.UPDATE,
        ["encryption"],
    ),
    (
        "resource tags",
        template(resource_tags=(("team", "data"),)),
        template(),
        True,
        Action.UPDATE,
        ["resourceTags: team=platform -> team=data"],
    ),
    ("description", template(description="cache"), template(), True, Action.UPDATE, ["description: none -> cache"]),
    ("an empty description is none", template(), template(description=""), True, Action.KEEP, []),
    (
        "applied for more",
        template(),
        template(applied_for=("PULL_THROUGH_CACHE", "REPLICATION")),
        True,
        Action.UPDATE,
        ["appliedFor"],
    ),
    (
        "another lifecycle",
        template(lifecycle_policy='{"rules": []}'),
        template(),
        True,
        Action.UPDATE,
        ["lifecyclePolicy"],
    ),
    (
        "the same lifecycle, formatted otherwise",
        template(),
        template(lifecycle_policy=json.dumps(json.loads(LIFECYCLE), indent=4)),
        True,
        Action.KEEP,
        [],
    ),
    (
        "a lifecycle to remove",
        template(lifecycle_policy=None),
        template(),
        True,
        Action.REPLACE,
        ["lifecyclePolicy: set -> none"],
    ),
    (
        "a repository policy to remove",
        template(),
        template(repository_policy='{"Statement": []}'),
        True,
        Action.REPLACE,
        ["repositoryPolicy"],
    ),
    ("a role to remove", template(), template(custom_role_arn=ROLE), True, Action.REPLACE, ["customRoleArn"]),
    (
        "differs, not owned",
        template(tag_mutability="IMMUTABLE"),
        template(),
        False,
        Action.CONFLICT,
        ["imageTagMutability"],
    ),
    ("no longer configured", None, template(), True, Action.DELETE, []),
    ("never configured, not owned", None, template(prefix="ROOT"), False, Action.FOREIGN, []),
    ("gone and no longer configured", None, None, True, Action.FORGET, []),
]


@pytest.mark.parametrize(
    ("desired", "actual", "owned", "action", "differences"),
    [case[1:] for case in TEMPLATE_CASES],
    ids=[case[0] for case in TEMPLATE_CASES],
)
def test_plan_template_decides_every_kind_of_difference(
    desired: TemplateSpec | None,
    actual: TemplateSpec | None,
    owned: bool,
    action: Action,
    differences: list[str],
) -> None:
    # Given a template as configured and as the account has it
    # When it is planned
    change = rules.plan_template("docker-hub", desired, actual, owned)

    # Then the action and the differences named are as expected
    assert change is not None
    assert change.action is action
    for expected, found in zip(differences, change.differences, strict=False):
        assert expected in found
    assert len(change.differences) >= len(differences)


# --- the whole plan ------------------------------------------------------------------------------------------------


def test_plan_covers_config_account_and_ledger_in_a_stable_order() -> None:
    # Given two configured rules (one with a template), a foreign rule, a stale ownership record and a foreign template
    desired = [
        hub(template=template()),
        DesiredRule(RuleSpec("quay", "quay", "quay.io"), upstreams.CATALOGUE["quay"]),
    ]
    actual = Snapshot(
        ACCOUNT,
        rules=(RuleSpec("legacy", "quay", "quay.io"), RuleSpec("quay", "quay", "quay.io")),
        templates=(TemplateSpec("ROOT"),),
    )
    owned = Owned(rules=frozenset({"quay", "gone"}), templates=frozenset())

    # When the plan is made
    the_plan = rules.plan(desired, actual, owned)

    # Then rules come in config order, then the account's and the ledger's extras, sorted
    assert [(c.prefix, c.action) for c in the_plan.rules] == [
        ("docker-hub", Action.CREATE),
        ("quay", Action.KEEP),
        ("gone", Action.FORGET),
        ("legacy", Action.FOREIGN),
    ]
    assert [(c.prefix, c.action) for c in the_plan.templates] == [
        ("docker-hub", Action.CREATE),
        ("ROOT", Action.FOREIGN),
    ]
    # And only the creates write to ECR
    assert [(c.kind, c.prefix) for c in the_plan.writes()] == [(Kind.RULE, "docker-hub"), (Kind.TEMPLATE, "docker-hub")]
    # And a person can read it line by line
    assert the_plan.lines()[0] == (
        "create rule docker-hub: Docker Hub (registry-1.docker.io), secret ecr-pullthroughcache/docker-hub"
    )
    assert "keep rule quay" in the_plan.lines()
    assert "foreign rule legacy (created outside Pullthrough)" in the_plan.lines()


def test_a_second_plan_against_what_the_first_created_writes_nothing() -> None:
    # Given the account after a first run applied everything the config asks for, all recorded as owned
    desired = [hub(template=template()), ecr_rule()]
    first = rules.plan(desired, Snapshot(ACCOUNT, (), ()), Owned())
    created = Snapshot(
        ACCOUNT,
        rules=tuple(c.desired.spec for c in first.rules if c.desired),
        templates=tuple(c.desired for c in first.templates if c.desired),
    )
    owned = Owned(frozenset(c.prefix for c in first.rules), frozenset(c.prefix for c in first.templates))

    # When it is planned again
    second = rules.plan(desired, created, owned)

    # Then nothing is written
    assert second.writes() == []
    assert {c.action for c in second.changes()} == {Action.KEEP}


# --- desired state from the config ---------------------------------------------------------------------------------


def test_desired_rules_follow_the_example_config() -> None:
    # Given the example config and the secrets' ARNs (ghcr's secret not found)
    config = config_module.load(ROOT_DIR / "config" / "pullthrough.yaml")
    arns = {"ecr-pullthroughcache/docker-hub": HUB_ARN, "ecr-pullthroughcache/ghcr": None}

    # When the desired state is derived
    desired = {rule.spec.prefix: rule for rule in rules.desired_rules(config, arns)}

    # Then every rule is there with ECR's names and the secret's ARN, or none when it was not found
    assert list(desired) == [rule.prefix for rule in config.rules]
    assert desired["docker-hub"].spec == RuleSpec("docker-hub", "docker-hub", "registry-1.docker.io", HUB_ARN)
    assert desired["ghcr"].secret == "ecr-pullthroughcache/ghcr"
    assert desired["ghcr"].spec.credential_arn is None
    assert desired["quay"].secret is None
    assert desired["quay"].spec.credential_arn is None

    # And the templates carry the config's settings for PULL_THROUGH_CACHE
    hub_template = desired["docker-hub"].template
    assert hub_template is not None
    assert hub_template.applied_for == ("PULL_THROUGH_CACHE",)
    assert hub_template.resource_tags == (("cost-center", "4711"), ("team", "platform"))
    assert json.loads(hub_template.lifecycle_policy or "")["rules"][0]["selection"]["tagStatus"] == "untagged"
    ghcr_template = desired["ghcr"].template
    assert ghcr_template is not None
    assert ghcr_template.tag_mutability == "IMMUTABLE_WITH_EXCLUSION"
    assert ghcr_template.mutability_exclusions == ("latest", "main-*")
    assert desired["quay"].template is None


def test_an_ecr_rule_without_upstream_prefix_wants_ecrs_default() -> None:
    # Given an ECR to ECR rule in the config without upstream_prefix
    config = config_module.parse(
        f"version: 1\nrules:\n  - prefix: shared\n    upstream: ecr\n    url: {ECR_URL}\n    custom_role_arn: {ROLE}\n"
    )

    # When the desired state is derived, Then it expects the ROOT upstream prefix AWS sets by itself
    (desired,) = rules.desired_rules(config, {})
    assert desired.spec.upstream_prefix == "ROOT"
    assert desired.spec.custom_role_arn == ROLE


@pytest.mark.parametrize("upstream", sorted(upstreams.CATALOGUE))
def test_root_and_an_absent_upstream_prefix_are_the_same_rule_for_every_upstream(upstream: str) -> None:
    # Given a rule of any upstream that names no upstream prefix, and ECR reporting it with ROOT (botocore: "When
    # this field isn't specified, Amazon ECR will use the ROOT")
    entry = upstreams.CATALOGUE[upstream]
    url = entry.url or ECR_URL
    want = DesiredRule(RuleSpec("p1", upstream, url, upstream_prefix=ptc.upstream_prefix_of(None)), entry)
    described = ptc._rule({"ecrRepositoryPrefix": "p1", "upstreamRegistry": upstream, "upstreamRegistryUrl": url,
                           "upstreamRepositoryPrefix": "ROOT"})  # fmt: skip
    left_out = ptc._rule({"ecrRepositoryPrefix": "p1", "upstreamRegistry": upstream, "upstreamRegistryUrl": url})

    # When each is compared with the config, Then nothing differs: no permanent difference, no replace loop
    for have in (described, left_out):
        assert rules.rule_differences(want, have) == ([], [])
        assert rules.plan_rule("p1", replace(want, allow_replace=True), have, owned=True).action is Action.KEEP


# --- triggers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "kind", "text"),
    [
        ("deploy_create_complete", TriggerKind.DEPLOY, "CloudFormation CREATE_COMPLETE of stack pullthrough-dev"),
        ("deploy_update_complete", TriggerKind.DEPLOY, "CloudFormation UPDATE_COMPLETE of stack pullthrough-dev"),
        ("scheduled", TriggerKind.SCHEDULE, "schedule (pullthrough-dev-ReconcileRulesFunctionScheduled-1A2B3C4D5E6F)"),
        (
            "delete_rule",
            TriggerKind.DRIFT,
            "DeletePullThroughCacheRule docker-hub by arn:aws:iam::123456789012:user/alice at 2026-11-23T09:58:41Z",
        ),
        (
            "update_rule",
            TriggerKind.DRIFT,
            "UpdatePullThroughCacheRule docker-hub by arn:aws:sts::123456789012:assumed-role/PlatformOps/bob at "
            "2026-11-23T11:12:03Z",
        ),
        ("delete_template", TriggerKind.DRIFT, "DeleteRepositoryCreationTemplate docker-hub by"),
        ("update_template", TriggerKind.DRIFT, "UpdateRepositoryCreationTemplate docker-hub by"),
        ("dry_run", TriggerKind.MANUAL, "manual invocation"),
    ],
)
def test_every_sample_event_reads_as_its_trigger(sample: str, kind: TriggerKind, text: str) -> None:
    # Given a sample event of events/reconcile_rules/, When it is read as a trigger
    trigger = Trigger.from_event(sample_event("reconcile_rules", sample))

    # Then its kind and the words the report uses are right
    assert trigger.kind is kind
    assert trigger.text.startswith(text)
    assert trigger.dry_run is (sample == "dry_run")


def test_a_cloudtrail_trigger_names_who_changed_what_and_when() -> None:
    # Given the CloudTrail event of a rule deleted by hand
    trigger = Trigger.from_event(sample_event("reconcile_rules", "delete_rule"))

    # Then it tells about that rule (not the template of the same prefix), and who and when
    assert trigger.drift(Kind.RULE, "docker-hub") == (
        "deleted outside Pullthrough by arn:aws:iam::123456789012:user/alice at 2026-11-23T09:58:41Z"
    )
    assert trigger.drift(Kind.TEMPLATE, "docker-hub") is None
    assert trigger.drift(Kind.RULE, "ghcr") is None
    template_trigger = Trigger.from_event(sample_event("reconcile_rules", "update_template"))
    assert (template_trigger.drift(Kind.TEMPLATE, "docker-hub") or "").startswith("changed outside Pullthrough by")


def test_a_cloudtrail_event_of_the_function_itself_is_recognised() -> None:
    # Given a CloudTrail event whose caller is the function's own role session (named after the function)
    event = sample_event("reconcile_rules", "update_rule")
    event["detail"]["userIdentity"]["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/ReconcileRole-1AB/pullthrough-rr"

    # When it is read, Then it is the function's own change, and nobody else's
    trigger = Trigger.from_event(event)
    assert trigger.made_by("pullthrough-rr")
    assert not trigger.made_by("another-function")
    assert not Trigger.from_event(sample_event("reconcile_rules", "update_rule")).made_by("pullthrough-rr")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"dryRun": "yes"}, "dryRun must be true or false, not 'yes'"),
        ({"key1": "value1"}, "field(s) key1 not understood"),
        ({"detail-type": "Scheduled Event"}, "not an EventBridge event: missing or invalid"),
        ("not an object", "must be a JSON object"),
    ],
)
def test_events_of_the_wrong_shape_are_refused_with_the_fix(event: Any, message: str) -> None:
    # Given an event reconcile_rules does not take, When it is read, Then EventError says what is wrong
    with pytest.raises(EventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Trigger.from_event(event)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"detail-type": "EC2 Instance State-change Notification"}, "is not one reconcile_rules handles"),
        ({"detail": {"eventName": "CreateRepository", "eventSource": "ecr.amazonaws.com"}}, "not one reconcile_rules"),
        (
            {
                "detail-type": "CloudFormation Stack Status Change",
                "detail": {
                    "stack-id": "arn:aws:cloudformation:us-east-1:1:stack/s/1",
                    "status-details": {"status": "DELETE_COMPLETE"},
                },
            },
            "not a finished create or update",
        ),
    ],
)
def test_eventbridge_events_reconcile_does_not_answer_are_refused(change: dict[str, Any], message: str) -> None:
    # Given a well-formed EventBridge event of a kind or status reconcile does not answer
    event = sample_event("reconcile_rules", "delete_rule") | change

    # When it is read, Then EventError names it
    with pytest.raises(EventError, match=message):
        Trigger.from_event(event)
