"""functions/reconcile_rules against moto (with the sandbox's ECR pull-through cache operations) and the sandbox's
real upstream registry, which the credentials gate and ValidatePullThroughCacheRule authenticate against.

Each test gets clean AWS state: ECR, Secrets Manager, the ledger table (keys from template.yaml), the report topic.
Every boto3 call the handler makes is recorded through a botocore `before-parameter-build` hook, so "writes nothing"
is a checked claim, not a hope, and each call is checked against the function's role in template.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import dynamodb_backends
from moto.ecr.models import ecr_backends
from moto.events.models import events_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sns.models import sns_backends

from pullthrough import config as config_module
from pullthrough import rules
from pullthrough.aws import clients, ownership, ptc
from pullthrough.env import Settings
from pullthrough.errors import AwsError
from pullthrough.reporting.model import Report
from sandbox import Sandbox
from sandbox.aws import moto_ecr
from sandbox.lambdas import LambdaContext, invoke, sample_event
from tests.fake_aws import fake_aws
from tests.template.cfn import load_template
from tests.template.test_reconcile_rules_template import CALLED, ON_ITS_BEHALF

pytestmark = [
    pytest.mark.sandbox,
    # A dry run records no metrics, and Powertools warns about an empty flush; that is the point of a dry run.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

ACCOUNT, REGION = "123456789012", "us-east-1"
STACK = "pullthrough-dev"  # the stack of events/reconcile_rules/deploy_*.json
TABLE = f"{STACK}-ledger"
FUNCTION = f"{STACK}-ReconcileRulesFunction-AbC123"
TEMPLATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pullthrough/{STACK}-RepositoryCreationRole-AbC123"
HUB_SECRET, GHCR_SECRET = "ecr-pullthroughcache/docker-hub", "ecr-pullthroughcache/ghcr"
WRITE_PREFIXES = ("Create", "Update", "Delete", "Put")

CONFIG = """\
version: 1
stack: sandbox
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials: ecr-pullthroughcache/docker-hub
    template:
      tag_mutability: MUTABLE
      lifecycle: {keep_last_tags: 50, expire_untagged_days: 7}
      description: Docker Hub images cached by Pullthrough
  - prefix: ghcr
    upstream: github-container-registry
    credentials: ecr-pullthroughcache/ghcr
  - prefix: quay
    upstream: quay
  - prefix: k8s
    upstream: k8s
notifications:
  success: full
"""


# An organisation whose hub is this account and region: two cached prefixes, one member account.
ORGANIZATION = f"""\
organization:
  id: o-a1b2c3d4e5
  hub: {{account: "{ACCOUNT}", region: {REGION}}}
  cache: [docker-hub, quay]
  members:
    - {{name: prod, accounts: ["444455556666"], regions: [eu-west-1, us-east-1]}}
"""


# --- the world a test runs in --------------------------------------------------------------------------------------


@dataclass
class World:
    """The sandbox, moto's clients, the config file and what the handler did."""

    sb: Sandbox
    config_path: Path
    topic_arn: str
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def ecr(self) -> Any:
        return boto3.client("ecr", region_name=REGION)

    @property
    def secrets(self) -> Any:
        return boto3.client("secretsmanager", region_name=REGION)

    def configure(self, text: str) -> None:
        self.config_path.write_text(text, encoding="utf-8")

    def invoke(self, event: str | dict[str, Any]) -> dict[str, Any]:
        """Call the handler as Lambda would, with a sample event's name or an event; returns its summary."""
        payload = sample_event("reconcile_rules", event) if isinstance(event, str) else event
        result: dict[str, Any] = invoke("reconcile_rules", payload, LambdaContext(function_name=FUNCTION))
        return result

    def writes(self) -> list[tuple[str, str]]:
        """Every write call recorded so far (Create*, Update*, Delete*, Put*), as (service, operation)."""
        return [(service, op) for service, op, _ in self.calls if op.startswith(WRITE_PREFIXES)]

    def ops(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, op, params in self.calls if op == operation]

    def rules(self) -> dict[str, dict[str, Any]]:
        found = self.ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
        return {rule["ecrRepositoryPrefix"]: rule for rule in found}

    def templates(self) -> dict[str, dict[str, Any]]:
        found = self.ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
        return {template["prefix"]: template for template in found}

    def owned(self) -> set[str]:
        items = boto3.client("dynamodb", region_name=REGION).query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "OWNED"}},
        )["Items"]
        return {item["sk"]["S"] for item in items}

    def secret(self, name: str, username: str | None = None, token: str | None = None, raw: str | None = None) -> str:
        """Create a secret holding the sandbox user's credentials (or `raw` text); returns its ARN."""
        user = username or next(iter(self.sb.users))
        value = raw if raw is not None else json.dumps({"username": user, "accessToken": token or self.sb.users[user]})
        arn: str = self.secrets.create_secret(Name=name, SecretString=value)["ARN"]
        return arn

    def messages(self) -> list[tuple[str, str]]:
        """(subject, body) of every report published to the topic."""
        topic = sns_backends[ACCOUNT][REGION].topics[self.topic_arn]
        return [(subject or "", body) for _, body, subject, _, _ in topic.sent_notifications]

    def report(self) -> Report:
        """The last published report, read back from its message."""
        return Report.from_message(self.messages()[-1][1])


def ledger_table() -> dict[str, Any]:
    """The ledger's keys as template.yaml declares them (docs/CONTRACTS.md's until the warming section lands)."""
    resource = load_template()["Resources"].get("LedgerTable")
    if resource is not None and resource.get("Type") == "AWS::DynamoDB::Table":
        properties = resource["Properties"]
        return {"KeySchema": properties["KeySchema"], "AttributeDefinitions": properties["AttributeDefinitions"]}
    return {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    }


@pytest.fixture(scope="module")
def moto_session() -> Iterator[None]:
    """moto with fake credentials and the sandbox's ECR additions, for the whole module."""
    moto_ecr.install()
    with fake_aws(REGION):
        yield


@pytest.fixture
def world(moto_session: None, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Clean AWS state, the example config, two working secrets, and every boto3 call recorded."""
    for backends in (ecr_backends, secretsmanager_backends, dynamodb_backends, sns_backends, events_backends):
        backends[ACCOUNT][REGION].reset()  # type: ignore[attr-defined]
    # A session made inside mock_aws carries moto's hooks; the library's clients are made from it afresh.
    boto3.setup_default_session(region_name=REGION)
    clients.clear()
    boto3.client("dynamodb").create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", **ledger_table())
    topic_arn = boto3.client("sns").create_topic(Name=f"{STACK}-reports")["TopicArn"]
    config_path = tmp_path / "pullthrough.yaml"
    config_path.write_text(CONFIG, encoding="utf-8")
    environment = {
        "ACCOUNT_ID": ACCOUNT,
        "STACK_NAME": STACK,
        "LEDGER_TABLE": TABLE,
        "TEMPLATE_ROLE_ARN": TEMPLATE_ROLE,  # template.yaml gives the function both; ReconcileEnv requires them
        "REPORT_TOPIC_ARN": topic_arn,
        "PULLTHROUGH_CONFIG": str(config_path),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Pullthrough",
        **sandbox.env(),
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PULLTHROUGH_DRY_RUN", raising=False)
    # ValidatePullThroughCacheRule in moto reaches the same loopback upstream the library does.
    moto_ecr.set_upstream_endpoints(json.loads(sandbox.env()["PULLTHROUGH_UPSTREAM_ENDPOINTS"]))
    the_world = World(sb=sandbox, config_path=config_path, topic_arn=topic_arn)
    the_world.secret(HUB_SECRET)
    the_world.secret(GHCR_SECRET)

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        the_world.calls.append((model.service_model.service_name, model.name, params))

    boto3.DEFAULT_SESSION.events.register("before-parameter-build", record)  # type: ignore[union-attr]
    try:
        yield the_world
    finally:
        boto3.DEFAULT_SESSION.events.unregister("before-parameter-build", record)  # type: ignore[union-attr]
        clients.clear()
        moto_ecr.set_upstream_endpoints(sandbox.upstream_endpoints())


def items_of(summary: dict[str, Any]) -> dict[str, str]:
    """The summary's item lines by subject ("rule docker-hub" -> "created: ...")."""
    return {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in summary["items"]}


def reconcile_as_the_cli(world: World) -> tuple[Report, rules.Plan]:
    """Reconcile as `pullthrough reconcile` does: the terminal's Settings, whose ledger and role may be unknown."""
    config = config_module.load(str(world.config_path))
    return rules.reconcile(config, Settings.from_env(), rules.Trigger(rules.TriggerKind.MANUAL, "a test"))


def first_deploy(world: World) -> dict[str, Any]:
    """Run the deploy of a fresh stack and forget the calls it made."""
    summary = world.invoke("deploy_create_complete")
    assert summary["status"] == "OK", summary
    world.calls.clear()
    return summary


# --- first deploy, and nothing to do after it ----------------------------------------------------------------------


def test_first_deploy_creates_rules_and_template_validates_them_and_starts_warming(world: World) -> None:
    # Given a fresh account with the two secrets the config names
    # When the stack's CREATE_COMPLETE triggers the reconcile
    summary = world.invoke("deploy_create_complete")

    # Then every configured rule exists with ECR's fields, the Docker Hub one pointing at its secret's ARN
    rules_now = world.rules()
    assert set(rules_now) == {"docker-hub", "ghcr", "quay", "k8s"}
    hub_arn = world.secrets.describe_secret(SecretId=HUB_SECRET)["ARN"]
    assert rules_now["docker-hub"]["credentialArn"] == hub_arn
    assert rules_now["docker-hub"]["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert rules_now["ghcr"]["upstreamRegistry"] == "github-container-registry"
    assert "credentialArn" not in rules_now["quay"]

    # And the template of docker-hub is there, for pull through cache, with the lifecycle policy
    template = world.templates()["docker-hub"]
    assert template["appliedFor"] == ["PULL_THROUGH_CACHE"]
    assert template["description"] == "Docker Hub images cached by Pullthrough"
    assert json.loads(template["lifecyclePolicy"])["rules"][0]["selection"]["countNumber"] == 7

    # And Pullthrough recorded that it owns all of them
    assert world.owned() == {"rule#docker-hub", "rule#ghcr", "rule#quay", "rule#k8s", "template#docker-hub"}

    # And both rules with credentials were validated by ECR, and valid
    assert summary["status"] == "OK"
    assert summary["counts"] == {"created": 5}
    assert [params["ecrRepositoryPrefix"] for params in world.ops("ValidatePullThroughCacheRule")] == [
        "docker-hub",
        "ghcr",
    ]
    report = world.report()
    validity = {item.subject: item.details.valid for item in report.items}
    assert validity == {
        "rule docker-hub": True,
        "rule ghcr": True,
        "rule quay": None,
        "rule k8s": None,
        "template docker-hub": None,
    }

    # And warming was told which rules are ready, on the default bus
    (put,) = world.ops("PutEvents")
    entry = put["Entries"][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "pullthrough",
        "Pullthrough Rules Reconciled",
        "default",
    )
    detail = json.loads(entry["Detail"])
    assert detail == {"stack": STACK, "run_id": summary["run_id"], "rules": ["docker-hub", "ghcr", "quay", "k8s"]}
    assert summary["event_id"]

    # And one report was published: OK, five created, triggered by the deploy, and no token anywhere in it
    ((subject, body),) = world.messages()
    assert subject == "OK pullthrough rules sandbox/us-east-1: 5 created"
    assert f"triggered by CloudFormation CREATE_COMPLETE of stack {STACK}" in body
    assert summary["message_id"]
    for token in world.sb.users.values():
        assert token not in body
        assert token not in json.dumps(summary)


def test_a_second_run_with_nothing_changed_makes_no_write_call(world: World) -> None:
    # Given the first deploy's reconcile done
    first_deploy(world)

    # When the schedule reconciles again
    summary = world.invoke("scheduled")

    # Then it made no write call at all (ECR, ledger, EventBridge, Secrets Manager), only reads and the report
    assert world.writes() == []
    assert {op for _, op, _ in world.calls} <= {
        "DescribePullThroughCacheRules",
        "DescribeRepositoryCreationTemplates",
        "Query",
        "DescribeSecret",
        "ValidatePullThroughCacheRule",
        "GetRegistryPolicy",  # the registry policy's PullthroughOrg statements, none without an organisation
        "Publish",
    }
    # And it says so: everything unchanged, and still valid
    assert summary["counts"] == {"unchanged": 5}
    assert summary["event_id"] is None
    assert items_of(summary)["rule docker-hub"] == "unchanged [valid]"


def test_a_redeploy_with_nothing_changed_only_starts_warming(world: World) -> None:
    # Given the first deploy's reconcile done
    first_deploy(world)

    # When the stack is updated (say, only the warm list changed)
    summary = world.invoke("deploy_update_complete")

    # Then nothing in ECR or the ledger is written, but warming is started: the warm list may have changed
    assert world.writes() == [("events", "PutEvents")]
    assert summary["counts"] == {"unchanged": 5}


# --- credentials ---------------------------------------------------------------------------------------------------


def test_a_new_secret_in_the_config_re_points_the_rule_after_proving_itself(world: World) -> None:
    # Given the first deploy done, and a second working Docker Hub secret the config now names
    first_deploy(world)
    new_arn = world.secret("ecr-pullthroughcache/docker-hub-2")
    world.configure(CONFIG.replace(HUB_SECRET + "\n", "ecr-pullthroughcache/docker-hub-2\n", 1))
    token_requests = world.sb.upstream.counters[("GET", "token")]
    world.calls.clear()

    # When the reconcile runs
    summary = world.invoke("scheduled")

    # Then the rule points at the new secret, through UpdatePullThroughCacheRule only
    assert world.rules()["docker-hub"]["credentialArn"] == new_arn
    assert world.writes() == [("ecr", "UpdatePullThroughCacheRule"), ("events", "PutEvents")]
    (update,) = world.ops("UpdatePullThroughCacheRule")
    assert update == {"ecrRepositoryPrefix": "docker-hub", "credentialArn": new_arn}
    # And the secret was proved upstream before (the gate), and the rule validated after
    assert world.sb.upstream.counters[("GET", "token")] > token_requests
    assert items_of(summary)["rule docker-hub"].startswith("updated")
    item = next(i for i in world.report().items if i.subject == "rule docker-hub")
    assert item.details.valid is True
    assert item.details.changes == (
        f"credentialArn: {world.secrets.describe_secret(SecretId=HUB_SECRET)['ARN']} -> {new_arn}",
    )


def test_secret_problems_each_get_their_own_message_and_the_other_rules_proceed(world: World) -> None:
    # Given rules whose secrets are missing, not JSON, or hold a token the upstream refuses, beside two good rules
    user = next(iter(world.sb.users))
    world.secret("ecr-pullthroughcache/hub-malformed", raw="dckr_pat_pasted-alone")
    world.secret("ecr-pullthroughcache/hub-wrong", username=user, token="dckr_pat_revoked-long-ago")
    world.configure(
        "version: 1\nstack: sandbox\nrules:\n"
        "  - {prefix: hub-missing, upstream: docker-hub, credentials: ecr-pullthroughcache/hub-missing}\n"
        "  - {prefix: hub-malformed, upstream: docker-hub, credentials: ecr-pullthroughcache/hub-malformed}\n"
        "  - {prefix: hub-wrong, upstream: docker-hub, credentials: ecr-pullthroughcache/hub-wrong}\n"
        "  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}\n"
        "  - {prefix: quay, upstream: quay}\n"
    )

    # When the reconcile runs
    summary = world.invoke("deploy_create_complete")

    # Then the three rules are skipped and the others are created
    assert set(world.rules()) == {"ghcr", "quay"}
    assert summary["status"] == "WARNING"
    assert summary["counts"] == {"skipped": 3, "created": 2}
    report = world.report()
    skipped = {item.subject: item for item in report.items if item.outcome.value == "skipped"}
    assert {subject: item.reason_code for subject, item in skipped.items()} == {
        "rule hub-missing": "secret_missing",
        "rule hub-malformed": "secret_malformed",
        "rule hub-wrong": "secret_invalid",
    }
    # And each says what is wrong with that secret, and what to do
    missing = skipped["rule hub-missing"]
    assert missing.reason == (
        f"not created: secret ecr-pullthroughcache/hub-missing does not exist in account {ACCOUNT}, region {REGION}"
    )
    assert missing.fix is not None
    assert (
        "aws secretsmanager create-secret --name ecr-pullthroughcache/hub-missing --region us-east-1 "
        """--secret-string '{"username":"<user>","accessToken":"<token>"}'"""
    ) in missing.fix
    assert "its value is not JSON" in (skipped["rule hub-malformed"].reason or "")
    assert "refused the credentials of user" in (skipped["rule hub-wrong"].reason or "")
    assert "create a new access token on Docker Hub" in (skipped["rule hub-wrong"].fix or "")
    # And no secret value reached the report, the summary or the subject
    published = "\n".join(subject + body for subject, body in world.messages()) + json.dumps(summary)
    for value in ("dckr_pat_pasted-alone", "dckr_pat_revoked-long-ago", *world.sb.users.values()):
        assert value not in published
    # And warming is told only about the rules that exist
    assert json.loads(world.ops("PutEvents")[0]["Entries"][0]["Detail"])["rules"] == ["ghcr", "quay"]


def test_a_secret_outside_the_ecr_prefix_is_refused_by_the_gate_too(world: World) -> None:
    # Given a config object naming a secret without the ecr-pullthroughcache/ prefix (the loader refuses such a
    # file outright; the gate must hold even for a config built another way), beside a public rule
    loaded = config_module.parse(
        "version: 1\nstack: sandbox\nrules:\n"
        "  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}\n"
        "  - {prefix: quay, upstream: quay}\n"
    )
    world.secret("docker-hub")
    hub = loaded.rules[0]
    assert hub.credentials is not None
    bad = hub.model_copy(update={"credentials": hub.credentials.model_copy(update={"secret": "docker-hub"})})
    config = loaded.model_copy(update={"rules": (bad, loaded.rules[1])})

    # When reconciled
    report, plan = rules.reconcile(config, Settings.from_env(), rules.Trigger(rules.TriggerKind.MANUAL, "a test"))

    # Then the rule is skipped with the prefix's own message and fix, and the public rule is created
    assert [change.action.value for change in plan.rules] == ["create", "create"]
    outcomes = {item.subject: item for item in report.items}
    assert outcomes["rule quay"].outcome.value == "created"
    skipped = outcomes["rule docker-hub"]
    assert skipped.outcome.value == "skipped"
    assert skipped.reason_code == "secret_wrong_prefix"
    assert "only reads secrets whose name starts with ecr-pullthroughcache/" in (skipped.reason or "")
    assert "create it as ecr-pullthroughcache/docker-hub" in (skipped.fix or "")
    assert set(world.rules()) == {"quay"}


def test_a_rule_whose_token_stopped_working_is_reported_invalid(world: World) -> None:
    # Given the first deploy done, then the Docker Hub token replaced by one the upstream refuses
    first_deploy(world)
    user = next(iter(world.sb.users))
    world.secrets.put_secret_value(
        SecretId=HUB_SECRET, SecretString=json.dumps({"username": user, "accessToken": "dckr_pat_expired"})
    )
    world.calls.clear()

    # When the schedule reconciles
    summary = world.invoke("scheduled")

    # Then nothing is written, and the rule is reported invalid with ECR's reason and the way to fix it
    assert world.writes() == []
    assert summary["status"] == "FAILED"
    item = next(i for i in world.report().items if i.subject == "rule docker-hub")
    assert item.outcome.value == "invalid"
    assert item.details.valid is False
    assert "ECR says the rule is not valid: Unable to authenticate to upstream registry" in (item.reason or "")
    assert "aws secretsmanager put-secret-value --secret-id ecr-pullthroughcache/docker-hub" in (item.fix or "")
    assert world.messages()[-1][0].startswith("FAILED pullthrough rules sandbox/us-east-1: 1 of 5 invalid")


# --- drift ---------------------------------------------------------------------------------------------------------


def test_a_rule_deleted_by_hand_comes_back_and_the_report_names_who_and_when(world: World) -> None:
    # Given the first deploy done, then the Docker Hub rule deleted by alice (CloudTrail tells EventBridge)
    first_deploy(world)
    world.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    world.calls.clear()

    # When the CloudTrail event triggers the reconcile
    summary = world.invoke("delete_rule")

    # Then the rule is back, pointing at its secret, and valid
    assert "docker-hub" in world.rules()
    assert world.writes() == [("ecr", "CreatePullThroughCacheRule"), ("events", "PutEvents")]
    # And the report says who deleted it and when, from the event
    item = next(i for i in world.report().items if i.subject == "rule docker-hub")
    assert item.outcome.value == "created"
    assert item.reason == (
        "recreated: deleted outside Pullthrough by arn:aws:iam::123456789012:user/alice at 2026-11-23T09:58:41Z"
    )
    assert item.details.valid is True
    assert summary["trigger"] == (
        "DeletePullThroughCacheRule docker-hub by arn:aws:iam::123456789012:user/alice at 2026-11-23T09:58:41Z"
    )


def test_a_rule_re_pointed_by_hand_is_pointed_back_and_the_report_names_who(world: World) -> None:
    # Given the first deploy done, then bob pointing the Docker Hub rule at another secret by hand
    first_deploy(world)
    old_arn = world.secret("ecr-pullthroughcache/old-hub")
    world.ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", credentialArn=old_arn)
    world.calls.clear()

    # When the CloudTrail event of bob's update triggers the reconcile
    world.invoke("update_rule")

    # Then the rule points at the configured secret again, after the secret proved itself
    hub_arn = world.secrets.describe_secret(SecretId=HUB_SECRET)["ARN"]
    assert world.rules()["docker-hub"]["credentialArn"] == hub_arn
    assert world.writes() == [("ecr", "UpdatePullThroughCacheRule"), ("events", "PutEvents")]
    # And the report says who changed it and when
    item = next(i for i in world.report().items if i.subject == "rule docker-hub")
    assert item.outcome.value == "updated"
    assert item.reason == (
        "restored: changed outside Pullthrough by arn:aws:sts::123456789012:assumed-role/PlatformOps/bob at "
        "2026-11-23T11:12:03Z"
    )
    assert item.details.changes == (f"credentialArn: {old_arn} -> {hub_arn}",)


def test_a_template_deleted_by_hand_comes_back(world: World) -> None:
    # Given the first deploy done, then the docker-hub template deleted by hand
    first_deploy(world)
    world.ecr.delete_repository_creation_template(prefix="docker-hub")
    world.calls.clear()

    # When the CloudTrail event triggers the reconcile
    world.invoke("delete_template")

    # Then the template is back and the report names who deleted it
    assert "docker-hub" in world.templates()
    assert world.writes() == [("ecr", "CreateRepositoryCreationTemplate"), ("events", "PutEvents")]
    item = next(i for i in world.report().items if i.subject == "template docker-hub")
    assert (item.reason or "").startswith(
        "recreated: deleted outside Pullthrough by arn:aws:iam::123456789012:user/alice"
    )


def test_the_functions_own_changes_coming_back_from_cloudtrail_are_ignored(world: World) -> None:
    # Given a CloudTrail event of a change this very function made (its role session bears its name)
    event = sample_event("reconcile_rules", "update_rule")
    event["detail"]["userIdentity"]["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/ReconcileRole/{FUNCTION}"

    # When it arrives, Then the function does nothing: no AWS call, no report
    summary = world.invoke(event)
    assert summary["ignored"] == "the change was made by this function itself"
    assert world.calls == []


def test_another_stacks_deploy_is_ignored(world: World) -> None:
    # Given the deploy event of another stack, When it arrives, Then nothing is read or written
    event = sample_event("reconcile_rules", "deploy_update_complete")
    event["detail"]["stack-id"] = event["detail"]["stack-id"].replace(f"stack/{STACK}/", "stack/other/")
    summary = world.invoke(event)
    assert summary["ignored"] == f"the event is about stack other, not {STACK}"
    assert world.calls == []


# --- what Pullthrough does not own -----------------------------------------------------------------------------------


def test_foreign_rules_and_templates_are_reported_and_never_touched(world: World) -> None:
    # Given rules and a template made by hand before Pullthrough (the seed's console steps): one not in the config,
    # one exactly as the config wants, one under a configured prefix but caching another upstream
    hub_arn = world.secrets.describe_secret(SecretId=HUB_SECRET)["ARN"]
    world.ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="dockercache", upstreamRegistryUrl="registry-1.docker.io", credentialArn=hub_arn
    )
    world.ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    world.ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="quay.io")
    world.ecr.create_repository_creation_template(
        prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"], encryptionConfiguration={"encryptionType": "AES256"}
    )
    before = world.rules()
    world.calls.clear()

    # When the reconcile runs
    summary = world.invoke("scheduled")

    # Then only the rules and template that did not exist were created; the hand-made ones are as they were
    assert sorted(world.writes()) == [
        ("dynamodb", "PutItem"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "PutItem"),
        ("ecr", "CreatePullThroughCacheRule"),
        ("ecr", "CreatePullThroughCacheRule"),
        ("ecr", "CreateRepositoryCreationTemplate"),
        ("events", "PutEvents"),
    ]
    after = world.rules()
    for prefix in ("dockercache", "quay", "k8s"):
        assert after[prefix] == before[prefix]
    assert "ROOT" in world.templates()
    # And the report says which is which, and for the conflicting one what to do
    items = items_of(summary)
    assert items["rule dockercache"] == "not owned: created outside Pullthrough; not in the config: left alone"
    assert items["rule quay"] == "not owned: created outside Pullthrough; matches the config, left as it is"
    assert items["rule k8s"].startswith("conflict: created outside Pullthrough and different from the config")
    assert "aws ecr delete-pull-through-cache-rule --ecr-repository-prefix k8s --region us-east-1" in items["rule k8s"]
    assert items["template ROOT"].startswith("not owned")
    assert world.owned() == {"rule#docker-hub", "rule#ghcr", "template#docker-hub"}

    # And when the config drops them, they are still never deleted
    world.configure(CONFIG.split("  - prefix: quay")[0] + "notifications:\n  success: full\n")
    world.calls.clear()
    world.invoke("scheduled")
    assert "DeletePullThroughCacheRule" not in [op for _, op in world.writes()]
    assert {"dockercache", "quay", "k8s"} <= set(world.rules())


def test_a_rule_pullthrough_owns_is_deleted_when_the_config_drops_it(world: World) -> None:
    # Given the first deploy done, When the config drops the k8s rule and the reconcile runs
    first_deploy(world)
    world.configure(CONFIG.replace("  - prefix: k8s\n    upstream: k8s\n", ""))
    summary = world.invoke("scheduled")

    # Then the rule and its ownership record are gone, and the report says why
    assert "k8s" not in world.rules()
    assert "rule#k8s" not in world.owned()
    assert items_of(summary)["rule k8s"] == "deleted: no longer in the config"
    assert ("dynamodb", "DeleteItem") in world.writes()


def test_the_record_of_an_owned_rule_gone_from_account_and_config_is_forgotten(world: World) -> None:
    # Given the first deploy done, then the k8s rule deleted by hand and dropped from the config
    first_deploy(world)
    world.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="k8s")
    world.configure(CONFIG.replace("  - prefix: k8s\n    upstream: k8s\n", ""))
    # When reconciled (not a dry run)
    world.invoke("scheduled")
    # Then its ownership record is gone too: a rule created by someone else under that prefix later is not Pullthrough's
    assert "rule#k8s" not in world.owned()
    assert "rule#quay" in world.owned()
    assert "Forgot the ownership record of rule k8s: it is gone from the account." in world.report().notes


def test_a_rule_deleted_by_someone_else_while_reconcile_deletes_it_is_settled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first deploy done, the k8s rule dropped from the config, and another party deleting it just before
    # this run's delete reaches it
    first_deploy(world)
    world.configure(CONFIG.replace("  - prefix: k8s\n    upstream: k8s\n", ""))
    delete = ptc.delete_rule

    def racing_delete(prefix: str) -> None:
        world.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        delete(prefix)

    monkeypatch.setattr(ptc, "delete_rule", racing_delete)
    # When reconciled
    summary = world.invoke("scheduled")
    # Then the run settles on what it finds (gone already), forgets the record and says so, without failing
    assert summary["status"] == "OK"
    assert items_of(summary)["rule k8s"].startswith("deleted: changed by someone else between plan and apply")
    assert "rule#k8s" not in world.owned()


def test_a_template_deleted_by_someone_else_while_reconcile_deletes_it_is_settled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first deploy done, the docker-hub template dropped from the config, and another party deleting it
    # just before this run's delete reaches it
    first_deploy(world)
    world.configure(CONFIG.split("    template:\n")[0] + "  - prefix: ghcr" + CONFIG.split("  - prefix: ghcr", 1)[1])
    delete = ptc.delete_template

    def racing_delete(prefix: str) -> None:
        world.ecr.delete_repository_creation_template(prefix=prefix)
        delete(prefix)

    monkeypatch.setattr(ptc, "delete_template", racing_delete)
    # When reconciled
    summary = world.invoke("scheduled")
    # Then the run settles on what it finds (gone already) and forgets the record
    assert items_of(summary)["template docker-hub"].startswith(
        "deleted: changed by someone else between plan and apply"
    )
    assert "template#docker-hub" not in world.owned()


def test_a_template_created_between_plan_and_apply_is_settled_not_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another run that creates the docker-hub template, just as configured, between this run's plan and apply
    create = ptc.create_template

    def racing_create(spec: ptc.TemplateSpec) -> None:
        if spec.prefix == "docker-hub":
            world.ecr.create_repository_creation_template(**ptc.template_params(spec))
        create(spec)

    monkeypatch.setattr(ptc, "create_template", racing_create)
    # When the reconcile runs
    summary = world.invoke("deploy_create_complete")
    # Then it settles on what it finds: the template is someone else's and matches the config; not deleted, not failed
    assert items_of(summary)["template docker-hub"].startswith(
        "not owned: changed by someone else between plan and apply"
    )
    assert "docker-hub" in world.templates()
    assert "template#docker-hub" not in world.owned()


def test_without_a_ledger_table_the_report_says_ownership_cannot_be_known(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run without LEDGER_TABLE (the function always has it, ReconcileEnv requires it: the CLI's run may not)
    monkeypatch.delenv("LEDGER_TABLE")
    # When reconciled
    report, _ = reconcile_as_the_cli(world)
    # Then the report says that existing rules count as not Pullthrough's, so none will be changed or deleted
    assert any("No ledger table is configured" in note for note in report.notes)


# --- immutable fields ------------------------------------------------------------------------------------------------


def test_an_immutable_difference_is_a_conflict_unless_replacement_is_allowed(world: World) -> None:
    # Given the first deploy done, then the rule under prefix quay switched to another upstream in the config
    first_deploy(world)
    switched = CONFIG.replace("  - prefix: quay\n    upstream: quay\n", "  - prefix: quay\n    upstream: ecr-public\n")
    world.configure(switched)

    # When reconciled, Then the rule is left alone and the conflict says what to do
    summary = world.invoke("scheduled")
    assert world.rules()["quay"]["upstreamRegistryUrl"] == "quay.io"
    assert world.writes() == []
    assert items_of(summary)["rule quay"].startswith(
        "conflict: ECR cannot update these fields and the rule does not allow replacement"
    )
    assert "set allow_replace: true on rule quay" in items_of(summary)["rule quay"]

    # When the rule allows replacement, Then it is deleted and created anew with the new upstream
    world.configure(
        switched.replace("    upstream: ecr-public\n", "    upstream: ecr-public\n    allow_replace: true\n")
    )
    world.calls.clear()
    summary = world.invoke("scheduled")
    assert world.rules()["quay"]["upstreamRegistryUrl"] == "public.ecr.aws"
    assert world.writes() == [
        ("ecr", "DeletePullThroughCacheRule"),
        ("ecr", "CreatePullThroughCacheRule"),
        ("events", "PutEvents"),
    ]
    assert items_of(summary)["rule quay"].startswith("replaced: ECR cannot update these fields")


# --- templates -------------------------------------------------------------------------------------------------------


def test_template_changes_update_replace_and_delete_it(world: World) -> None:
    # Given the first deploy done
    first_deploy(world)

    # When the template's tag mutability changes, Then it is updated in place
    world.configure(CONFIG.replace("tag_mutability: MUTABLE", "tag_mutability: IMMUTABLE"))
    summary = world.invoke("scheduled")
    assert world.templates()["docker-hub"]["imageTagMutability"] == "IMMUTABLE"
    assert world.writes() == [("ecr", "UpdateRepositoryCreationTemplate"), ("events", "PutEvents")]
    assert items_of(summary)["template docker-hub"] == "updated"
    assert "ECR applies a repository creation template only when it creates a repository" in " ".join(summary["notes"])

    # When the lifecycle policy is removed, Then the template is replaced (an update cannot remove it)
    world.calls.clear()
    world.configure(
        CONFIG.replace("tag_mutability: MUTABLE", "tag_mutability: IMMUTABLE").replace(
            "      lifecycle: {keep_last_tags: 50, expire_untagged_days: 7}\n", ""
        )
    )
    summary = world.invoke("scheduled")
    assert "lifecyclePolicy" not in world.templates()["docker-hub"]
    assert world.writes()[:2] == [
        ("ecr", "DeleteRepositoryCreationTemplate"),
        ("ecr", "CreateRepositoryCreationTemplate"),
    ]
    assert items_of(summary)["template docker-hub"] == "replaced: an update cannot remove lifecyclePolicy"
    assert "template#docker-hub" in world.owned()

    # When the template leaves the config, Then it is deleted and forgotten
    world.calls.clear()
    text = CONFIG.split("    template:\n")[0] + "  - prefix: ghcr" + CONFIG.split("  - prefix: ghcr", 1)[1]
    world.configure(text)
    summary = world.invoke("scheduled")
    assert "docker-hub" not in world.templates()
    assert "template#docker-hub" not in world.owned()
    assert items_of(summary)["template docker-hub"] == "deleted: no longer in the config"


POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "OrgPull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}],
}
WITH_ROLE = CONFIG.replace(
    "      description: Docker Hub images cached by Pullthrough\n",
    "      description: Docker Hub images cached by Pullthrough\n"
    "      tags: {team: platform}\n"
    "      role: create\n"
    "      applied_for: [PULL_THROUGH_CACHE, REPLICATION]\n"
    f"      repository_policy: {json.dumps(POLICY)}\n",
)


def test_a_template_with_tags_gets_the_stacks_role_its_policy_and_scenarios(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a template with tags and role: create, and the role template.yaml deploys (TEMPLATE_ROLE_ARN)
    monkeypatch.setenv("TEMPLATE_ROLE_ARN", TEMPLATE_ROLE)
    world.configure(WITH_ROLE)

    # When reconciled
    summary = world.invoke("deploy_create_complete")

    # Then the template names that role as customRoleArn, with the tags, policy and scenarios of the config
    template = world.templates()["docker-hub"]
    assert summary["status"] == "OK", summary
    assert template["customRoleArn"] == TEMPLATE_ROLE
    assert template["resourceTags"] == [{"Key": "team", "Value": "platform"}]
    assert sorted(template["appliedFor"]) == ["PULL_THROUGH_CACHE", "REPLICATION"]
    assert json.loads(template["repositoryPolicy"]) == POLICY
    # And a cache repository ECR creates from it carries the tags
    moto_ecr.ensure_cache_repository(ACCOUNT, REGION, "docker-hub/library/nginx")
    arn = world.ecr.describe_repositories(repositoryNames=["docker-hub/library/nginx"])["repositories"][0]
    assert world.ecr.list_tags_for_resource(resourceArn=arn["repositoryArn"])["tags"] == [
        {"Key": "team", "Value": "platform"}
    ]
    # And the next run finds nothing to change (ECR's copy of the policy compares equal to the config's)
    world.calls.clear()
    again = world.invoke("scheduled")
    assert items_of(again)["template docker-hub"] == "unchanged"
    assert [w for w in world.writes() if w[0] == "ecr"] == []


def test_role_create_without_the_stacks_role_leaves_the_template_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a template asking for role: create, and a run that was not given the stack's role (the function always
    # is, ReconcileEnv requires it: the CLI's run may not be)
    monkeypatch.delenv("TEMPLATE_ROLE_ARN")
    world.configure(WITH_ROLE)

    # When reconciled
    report, _ = reconcile_as_the_cli(world)

    # Then the template is not written (ECR would refuse its tags without a role), and the report says what to do
    assert "docker-hub" not in world.templates()
    assert ("ecr", "CreateRepositoryCreationTemplate") not in world.writes()
    item = next(i for i in report.items if i.subject == "template docker-hub")
    assert item.outcome.value == "skipped"
    assert item.reason_code == "template_role"
    assert "TEMPLATE_ROLE_ARN" in (item.fix or "")
    # And the rules themselves were still reconciled
    assert "docker-hub" in world.rules()
    assert report.status.value == "WARNING"


def test_a_template_with_its_own_role_arn_passes_it(world: World) -> None:
    # Given a template naming a role of the account itself
    role = f"arn:aws:iam::{ACCOUNT}:role/ecr-template-role"
    world.configure(WITH_ROLE.replace("      role: create\n", f"      custom_role_arn: {role}\n"))

    # When reconciled, Then that role is the template's customRoleArn
    world.invoke("deploy_create_complete")
    assert world.templates()["docker-hub"]["customRoleArn"] == role


# --- dry run -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["event", "environment"])
def test_a_dry_run_plans_and_reports_but_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Given a fresh account, and a dry run asked for by the event or by PULLTHROUGH_DRY_RUN
    if how == "environment":
        monkeypatch.setenv("PULLTHROUGH_DRY_RUN", "true")
    event = "dry_run" if how == "event" else {}

    # When reconciled
    summary = world.invoke(event)

    # Then nothing was written: no rule, no template, no ownership record, no event
    assert world.writes() == []
    assert world.rules() == {}
    assert world.templates() == {}
    assert world.owned() == set()
    # And the report says what a real run would do, and that it is a dry run
    assert summary["dry_run"] is True
    assert summary["counts"] == {"created": 5}
    (subject, body) = world.messages()[-1]
    assert subject.startswith("OK pullthrough rules dry-run sandbox/us-east-1: 5 created")
    assert "Dry run: nothing was written" in body


def test_a_dry_run_keeps_the_ownership_record_of_a_rule_that_is_gone(world: World) -> None:
    # Given the first deploy done, then the k8s rule deleted by hand and dropped from the config: a real run would
    # forget its ownership record
    first_deploy(world)
    world.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="k8s")
    world.configure(CONFIG.replace("  - prefix: k8s\n    upstream: k8s\n", ""))
    assert "rule#k8s" in world.owned()
    world.calls.clear()
    # When a dry run reconciles
    world.invoke("dry_run")
    # Then the record is still there, and nothing was written at all
    assert "rule#k8s" in world.owned()
    assert world.writes() == []


# --- concurrent runs -----------------------------------------------------------------------------------------------


def test_a_rule_created_between_plan_and_apply_is_settled_not_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another run that creates the ghcr rule, just as configured, between this run's plan and its apply
    create = ptc.create_rule
    ghcr_arn = world.secrets.describe_secret(SecretId=GHCR_SECRET)["ARN"]

    def racing_create(spec: ptc.RuleSpec) -> None:
        if spec.prefix == "ghcr":
            world.ecr.create_pull_through_cache_rule(
                ecrRepositoryPrefix="ghcr",
                upstreamRegistryUrl="ghcr.io",
                upstreamRegistry="github-container-registry",
                credentialArn=ghcr_arn,
            )
        create(spec)

    monkeypatch.setattr(ptc, "create_rule", racing_create)

    # When the reconcile runs
    summary = world.invoke("deploy_create_complete")

    # Then the run settles on what it finds instead of failing, and the other rules are created as usual
    assert summary["status"] == "OK"
    assert items_of(summary)["rule ghcr"].startswith(
        "not owned: changed by someone else between plan and apply (PullThroughCacheRuleAlreadyExistsException); "
        "created outside Pullthrough; matches the config"
    )
    assert set(world.rules()) == {"docker-hub", "ghcr", "quay", "k8s"}


def test_a_failed_ownership_read_in_the_race_check_counts_as_not_owned(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another party creating the ghcr rule, with other credentials, between this run's plan and its create,
    # and the ledger unreadable when the run looks again at who owns it
    create, owned = ptc.create_rule, ownership.owned
    hub_arn = world.secrets.describe_secret(SecretId=HUB_SECRET)["ARN"]
    reads: list[str] = []

    def racing_create(spec: ptc.RuleSpec) -> None:
        if spec.prefix == "ghcr":
            world.ecr.create_pull_through_cache_rule(
                ecrRepositoryPrefix="ghcr",
                upstreamRegistryUrl="ghcr.io",
                upstreamRegistry="github-container-registry",
                credentialArn=hub_arn,
            )
        create(spec)

    def failing_second_read(table: str) -> ownership.Owned:
        reads.append(table)
        if len(reads) > 1:
            raise AwsError("dynamodb:Query", f"table {table}", "ProvisionedThroughputExceededException", "slow down")
        return owned(table)

    monkeypatch.setattr(ptc, "create_rule", racing_create)
    monkeypatch.setattr(ownership, "owned", failing_second_read)
    # When the reconcile runs
    summary = world.invoke("deploy_create_complete")
    # Then the rule it did not create is not treated as its own: left with the other party's credentials, reported
    # as a conflict, never updated
    assert len(reads) == 2
    assert world.rules()["ghcr"]["credentialArn"] == hub_arn
    assert world.ops("UpdatePullThroughCacheRule") == []
    assert items_of(summary)["rule ghcr"].startswith("conflict: changed by someone else between plan and apply")


def test_a_rule_deleted_between_plan_and_apply_is_created_again(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the first deploy done, a new secret for Docker Hub, and another party deleting the rule just before
    # this run's update reaches it
    first_deploy(world)
    new_arn = world.secret("ecr-pullthroughcache/docker-hub-2")
    world.configure(CONFIG.replace(HUB_SECRET + "\n", "ecr-pullthroughcache/docker-hub-2\n", 1))
    update = ptc.update_rule

    def racing_update(prefix: str, **changes: Any) -> None:
        world.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        update(prefix, **changes)

    monkeypatch.setattr(ptc, "update_rule", racing_update)

    # When the reconcile runs
    summary = world.invoke("scheduled")

    # Then the update's NotFound leads to creating the rule, with the new secret
    assert world.rules()["docker-hub"]["credentialArn"] == new_arn
    assert items_of(summary)["rule docker-hub"].startswith(
        "created: recreated: it was deleted outside Pullthrough; changed by someone else between plan and apply "
        "(PullThroughCacheRuleNotFoundException)"
    )
    assert summary["status"] == "OK"


def test_a_rule_someone_keeps_changing_is_fought_for_once_then_left_for_the_next_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first deploy done, a new secret for Docker Hub, and another party that deletes the rule before each
    # update reaches it and recreates it (with the old secret) before each create does
    first_deploy(world)
    old_arn = world.rules()["docker-hub"]["credentialArn"]
    world.secret("ecr-pullthroughcache/docker-hub-2")
    world.configure(CONFIG.replace(HUB_SECRET + "\n", "ecr-pullthroughcache/docker-hub-2\n", 1))
    update, create = ptc.update_rule, ptc.create_rule
    writes: list[str] = []

    def racing_update(prefix: str, **changes: Any) -> None:
        writes.append("update")
        world.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
        update(prefix, **changes)

    def racing_create(spec: ptc.RuleSpec) -> None:
        writes.append("create")
        world.ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=spec.prefix,
            upstreamRegistryUrl=spec.upstream_url,
            upstreamRegistry=spec.upstream_registry,
            credentialArn=old_arn,
        )
        create(spec)

    monkeypatch.setattr(ptc, "update_rule", racing_update)
    monkeypatch.setattr(ptc, "create_rule", racing_create)
    # When reconciled
    summary = world.invoke("scheduled")
    # Then it tried the update, settled once by creating, and when that raced too left the rule for the next run,
    # saying the rule exists (with the other party's settings) rather than fighting on
    assert writes == ["update", "create"]
    assert items_of(summary)["rule docker-hub"].startswith("skipped: changed by someone else between plan and apply")
    assert "twice: left for the next run" in items_of(summary)["rule docker-hub"]
    assert world.rules()["docker-hub"]["credentialArn"] == old_arn
    # And the rule, which exists (the other party's), was still validated for the report
    (item,) = [i for i in world.report().items if i.subject == "rule docker-hub"]
    assert item.details.valid is not None


def test_a_template_someone_keeps_changing_is_fought_for_once_then_left_for_the_next_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first deploy done, the docker-hub template made IMMUTABLE in the config, and another party that
    # deletes it before each update reaches it and recreates it as it was before each create does
    first_deploy(world)
    before = ptc.describe_template("docker-hub")
    assert before is not None
    world.configure(CONFIG.replace("tag_mutability: MUTABLE", "tag_mutability: IMMUTABLE"))
    update, create = ptc.update_template, ptc.create_template
    writes: list[str] = []

    def racing_update(spec: ptc.TemplateSpec) -> None:
        writes.append("update")
        world.ecr.delete_repository_creation_template(prefix=spec.prefix)
        update(spec)

    def racing_create(spec: ptc.TemplateSpec) -> None:
        writes.append("create")
        world.ecr.create_repository_creation_template(**ptc.template_params(before))
        create(spec)

    monkeypatch.setattr(ptc, "update_template", racing_update)
    monkeypatch.setattr(ptc, "create_template", racing_create)
    # When reconciled
    summary = world.invoke("scheduled")
    # Then it tried the update, settled once by creating, and when that raced too left it for the next run
    assert writes == ["update", "create"]
    assert items_of(summary)["template docker-hub"].startswith(
        "skipped: changed by someone else between plan and apply"
    )
    assert "twice: left for the next run" in items_of(summary)["template docker-hub"]


# --- the role ------------------------------------------------------------------------------------------------------


def test_every_call_the_function_makes_is_granted_by_its_role_and_nothing_more(world: World) -> None:
    # Given the actions template.yaml grants the function
    resources = load_template()["Resources"]
    statements = [s for p in resources["ReconcileRulesFunction"]["Properties"]["Policies"] for s in p["Statement"]]
    granted = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    # When the function lives through a first deploy, a re-pointed secret, a template update and replacement,
    # a rule and a template dropped from the config
    world.invoke("deploy_create_complete")
    world.secret("ecr-pullthroughcache/docker-hub-2")
    world.configure(CONFIG.replace(HUB_SECRET + "\n", "ecr-pullthroughcache/docker-hub-2\n", 1))
    world.invoke("scheduled")
    world.configure(world.config_path.read_text().replace("tag_mutability: MUTABLE", "tag_mutability: IMMUTABLE"))
    world.invoke("scheduled")
    lifecycle = "      lifecycle: {keep_last_tags: 50, expire_untagged_days: 7}\n"
    world.configure(world.config_path.read_text().replace(lifecycle, ""))
    world.invoke("scheduled")
    text = world.config_path.read_text()
    world.configure(text.split("    template:\n")[0] + "  - prefix: ghcr" + text.split("  - prefix: ghcr", 1)[1])
    world.invoke("scheduled")
    world.configure(world.config_path.read_text().replace("  - prefix: k8s\n    upstream: k8s\n", ""))
    world.invoke("scheduled")
    # an organisation whose hub is this account and region (PutRegistryPolicy), then none (DeleteRegistryPolicy)
    without = world.config_path.read_text()
    world.configure(without + ORGANIZATION)
    world.invoke("scheduled")
    world.configure(without)
    world.invoke("scheduled")

    # Then every AWS call it made is granted, and every granted action was used or is checked by AWS on its behalf
    setup = {"secretsmanager:CreateSecret"}  # the test's own call above
    used = {f"{service}:{operation}" for service, operation, _ in world.calls} - setup
    assert used <= granted
    assert granted - used == ON_ITS_BEHALF
    assert used == CALLED


# --- the hub's registry policy ---------------------------------------------------------------------------------------


def registry_policy(world: World) -> dict[str, Any] | None:
    try:
        text = world.ecr.get_registry_policy()["policyText"]
    except world.ecr.exceptions.RegistryPolicyNotFoundException:
        return None
    document: dict[str, Any] = json.loads(text)
    return document


def test_the_hub_reconciles_its_registry_policy_beside_the_rules_and_repairs_drift(world: World) -> None:
    # Given a registry policy someone else wrote (replication from another account) and a config with an organisation
    foreign = {
        "Sid": "ReplicationFromProd",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*",
    }
    world.ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}))
    world.configure(CONFIG + ORGANIZATION)

    # When the stack's deploy reconciles
    summary = world.invoke("deploy_create_complete")

    # Then the report has one item per organisation statement, created, beside the rules
    lines = items_of(summary)
    assert lines["hub policy PullthroughOrgDockerHub"] == (
        "created: the organisation may now import docker-hub/* from this registry"
    )
    assert lines["hub policy PullthroughOrgQuay"].startswith("created")
    assert summary["counts"] == {"created": 7}
    # And the policy holds them after the foreign statement, which is unchanged
    config = config_module.load(str(world.config_path))
    assert config.organization is not None
    assert registry_policy(world) == {
        "Version": "2012-10-17",
        "Statement": [foreign, *config.organization.registry_policy_statements(config)],
    }

    # When someone drops the organisation condition from one statement (anyone could import), and the schedule runs
    document = registry_policy(world)
    assert document is not None
    document["Statement"][1].pop("Condition")
    world.ecr.put_registry_policy(policyText=json.dumps(document))
    world.calls.clear()
    summary = world.invoke("scheduled")

    # Then it is restored, with one PutRegistryPolicy, and the report says what differed
    assert items_of(summary)["hub policy PullthroughOrgDockerHub"] == (
        "updated: restored: the statement differed from the config (Condition)"
    )
    assert world.writes() == [("ecr", "PutRegistryPolicy")]
    restored = registry_policy(world)
    assert restored is not None
    assert restored["Statement"][1]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}

    # And a run with nothing changed writes nothing
    world.calls.clear()
    world.invoke("scheduled")
    assert world.writes() == []

    # When the organisation leaves the config, its access goes, and the foreign statement stays
    world.configure(CONFIG)
    summary = world.invoke("scheduled")
    assert items_of(summary)["hub policy PullthroughOrgQuay"].startswith("deleted: no longer in the config")
    assert registry_policy(world) == {"Version": "2012-10-17", "Statement": [foreign]}
