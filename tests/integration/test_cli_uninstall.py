"""`pullthrough uninstall` on moto: what `sam delete` leaves behind, listed, and removed only on confirmation.

The account holds what a deployed-then-deleted stack leaves (template.yaml's retained LedgerTable, named as
CloudFormation names it, `<stack>-LedgerTable-<suffix>`; rules, a template, secrets and cache repositories), beside
things that are not Pullthrough's: a rule the config names that Pullthrough adopted (no ownership record) with its
secret and repositories, another team's rule, and an unrelated repository. Every AWS call is recorded.
"""

from __future__ import annotations

import io as std_io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pullthrough import cli
from pullthrough.aws import clients, ownership, ptc
from pullthrough.aws.ownership import Kind
from pullthrough.cli.documents import schema
from pullthrough.errors import AwsError
from sandbox.aws import moto_ecr
from tests.fake_aws import fake_aws

REGION = "us-east-1"
STACK = "pullthrough-test"
TABLE = f"{STACK}-LedgerTable-1A2B3C4D5E6F"
SCHEMAS = Path(__file__).parents[2] / "docs" / "cli"
HUB_SECRET = "ecr-pullthroughcache/hub"
ADOPTED_SECRET = "ecr-pullthroughcache/adopted"
CONFIG = f"""version: 1
stack: prod
rules:
  - {{prefix: hub, upstream: docker-hub, credentials: {HUB_SECRET}}}
  - prefix: quay
    upstream: quay
    template: {{tag_mutability: IMMUTABLE}}
  - {{prefix: adopted, upstream: docker-hub, credentials: {ADOPTED_SECRET}}}
"""
REPOSITORIES = (
    "hub/library/alpine",
    "hub/library/nginx",
    "quay/prometheus/node-exporter",
    "adopted/library/redis",
    "theirs/prometheus/prometheus",
    "myapp",
)
READS = ("Describe", "Get", "List", "Query", "Scan")


@dataclass
class Account:
    config: Path
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def writes(self) -> list[str]:
        return [name for name, _ in self.calls if not name.startswith(READS)]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]

    def run(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = std_io.StringIO(), std_io.StringIO()
        code = cli.main(["uninstall", *args, "--config", str(self.config)], cli.Io(std_io.StringIO(stdin), out, err))
        return code, out.getvalue(), err.getvalue()

    def rules(self) -> set[str]:
        found = boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
        return {rule["ecrRepositoryPrefix"] for rule in found}

    def templates(self) -> set[str]:
        found = boto3.client("ecr").describe_repository_creation_templates()["repositoryCreationTemplates"]
        return {template["prefix"] for template in found}

    def repositories(self) -> set[str]:
        return {r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]}

    def tables(self) -> list[str]:
        names: list[str] = boto3.client("dynamodb").list_tables()["TableNames"]
        return names

    def secret_deleted(self, name: str) -> bool | None:
        """True when scheduled for deletion, False when live, None when gone for good."""
        try:
            return "DeletedDate" in boto3.client("secretsmanager").describe_secret(SecretId=name)
        except ClientError:
            return None


@pytest.fixture
def account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    moto_ecr.install()
    for name in ("LEDGER_TABLE", "STACK_NAME", "PULLTHROUGH_CONFIG", "TEMPLATE_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STACK_NAME", STACK)
    with fake_aws(REGION):
        boto3.setup_default_session(region_name=REGION)
        clients.clear()
        _leave_behind()
        config = tmp_path / "pullthrough.yaml"
        config.write_text(CONFIG)
        world = Account(config)

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            world.calls.append((model.name, dict(params)))

        boto3.DEFAULT_SESSION.events.register("before-parameter-build", record)  # type: ignore[union-attr]
        clients.clear()
        try:
            yield world
        finally:
            boto3.DEFAULT_SESSION.events.unregister("before-parameter-build", record)  # type: ignore[union-attr]
            clients.clear()


def _leave_behind() -> None:
    """What a deleted stack leaves, beside what is not Pullthrough's."""
    dynamodb, ecr, secrets = boto3.client("dynamodb"), boto3.client("ecr"), boto3.client("secretsmanager")
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    value = json.dumps({"username": "someone", "accessToken": "dckr_pat_not-a-real-token"})
    arns = {name: secrets.create_secret(Name=name, SecretString=value)["ARN"] for name in (HUB_SECRET, ADOPTED_SECRET)}
    hub = {"upstreamRegistryUrl": "registry-1.docker.io", "upstreamRegistry": "docker-hub"}
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub", credentialArn=arns[HUB_SECRET], **hub)
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="adopted", credentialArn=arns[ADOPTED_SECRET], **hub)
    for prefix in ("quay", "theirs"):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="quay.io")
    ecr.create_repository_creation_template(prefix="quay", appliedFor=["PULL_THROUGH_CACHE"])
    ecr.create_repository_creation_template(prefix="theirs", appliedFor=["PULL_THROUGH_CACHE"])
    for name in REPOSITORIES:
        ecr.create_repository(repositoryName=name)
    for kind, prefix in ((Kind.RULE, "hub"), (Kind.RULE, "quay"), (Kind.TEMPLATE, "quay")):
        ownership.record(TABLE, kind, prefix, "prod")


EXPECTED_REMOVALS = [
    ("rule", "hub"),
    ("rule", "quay"),
    ("template", "quay"),
    ("repository", "hub/library/alpine"),
    ("repository", "hub/library/nginx"),
    ("repository", "quay/prometheus/node-exporter"),
    ("secret", HUB_SECRET),
    ("ledger-table", TABLE),
]


def document(out: str) -> dict[str, Any]:
    import jsonschema

    found: dict[str, Any] = json.loads(out)
    published = json.loads((SCHEMAS / "uninstall.schema.json").read_text())
    jsonschema.validate(found, published, cls=jsonschema.Draft202012Validator)
    assert found["schema"] == "pullthrough/uninstall/v1"
    return found


def test_the_published_schema_is_the_documents_own() -> None:
    assert json.loads((SCHEMAS / "uninstall.schema.json").read_text()) == schema("uninstall"), (
        "docs/cli/uninstall.schema.json is stale: run python -m pullthrough.cli.documents docs/cli"
    )


def test_a_dry_run_lists_what_pullthrough_owns_and_deletes_nothing(account: Account) -> None:
    # Given an account after `sam delete`
    # When the operator asks for a dry run
    code, out, err = account.run("--dry-run")
    # Then it lists the removals in their order and what stays with the reason, and makes no write call at all
    assert (code, err) == (0, "")
    assert account.writes() == []
    lines = out.splitlines()
    assert lines[0] == "Pullthrough owns 8 item(s), removed in this order:"
    assert [line.split()[:2] for line in lines[1:9]] == [list(pair) for pair in EXPECTED_REMOVALS]
    assert "  secret       ecr-pullthroughcache/hub  (recoverable for 30 days (aws secretsmanager restore-secret))" in (
        lines
    )
    kept = "\n".join(lines[9:])
    assert "rule         adopted: in the config but no ownership record" in kept
    assert "rule         theirs: not Pullthrough's" in kept
    assert "repository   adopted/*: rule adopted stays (not Pullthrough's)" in kept
    assert f"secret       {ADOPTED_SECRET}: rule adopted stays and uses it" in kept
    assert "myapp" not in out
    assert account.rules() == {"hub", "quay", "adopted", "theirs"}


def test_the_dry_runs_json_is_the_published_document(account: Account) -> None:
    code, out, _ = account.run("--dry-run", "--json")
    found = document(out)
    assert code == found["exit_code"] == 0
    assert [(item["kind"], item["name"]) for item in found["remove"]] == EXPECTED_REMOVALS
    assert {item["status"] for item in found["remove"]} == {"planned"}
    assert (found["dry_run"], found["confirmed"], found["ledger_table"]) == (True, False, TABLE)
    assert account.writes() == []


def test_yes_removes_exactly_what_pullthrough_owns(account: Account) -> None:
    # When the operator confirms with --yes
    code, out, _ = account.run("--yes", "--json")
    # Then every listed item is removed, and nothing else is touched
    found = document(out)
    assert code == 0
    assert [(i["kind"], i["name"], i["status"]) for i in found["remove"]] == [
        (*p, "removed") for p in EXPECTED_REMOVALS
    ]
    assert account.rules() == {"adopted", "theirs"}
    assert account.templates() == {"theirs"}
    assert account.repositories() == {"adopted/library/redis", "theirs/prometheus/prometheus", "myapp"}
    assert account.tables() == []
    # The secret is scheduled for deletion with Secrets Manager's recovery window, not force-deleted
    assert account.params("DeleteSecret") == [{"SecretId": HUB_SECRET, "RecoveryWindowInDays": 30}]
    assert account.secret_deleted(HUB_SECRET) is True
    assert account.secret_deleted(ADOPTED_SECRET) is False
    # Rules go first, the ledger table last
    writes = account.writes()
    assert writes[0] == "DeletePullThroughCacheRule"
    assert writes[-1] == "DeleteTable"


def test_force_delete_secrets_deletes_them_without_recovery(account: Account) -> None:
    code, _, _ = account.run("--yes", "--force-delete-secrets", "--keep-ledger", "--keep-repositories")
    assert code == 0
    assert account.params("DeleteSecret") == [{"SecretId": HUB_SECRET, "ForceDeleteWithoutRecovery": True}]
    assert account.secret_deleted(HUB_SECRET) is None
    assert "hub/library/alpine" in account.repositories()
    assert account.tables() == [TABLE]


def test_a_wrong_name_at_the_prompt_removes_nothing(account: Account) -> None:
    # When the operator types something other than the stack's name
    code, out, err = account.run(stdin="prod\n")
    # Then nothing is removed and the exit status says so
    assert code == 1
    assert "Type the stack name (pullthrough-test)" in err
    assert "not confirmed: nothing was removed" in err
    assert "Pullthrough owns 8 item(s)" in out
    assert account.writes() == []


def test_the_typed_stack_name_confirms(account: Account) -> None:
    code, out, _ = account.run(stdin=f"{STACK}\n")
    assert code == 0
    assert out.splitlines()[-1] == "8 of 8 removed"
    assert account.rules() == {"adopted", "theirs"}


def test_a_stack_still_deployed_is_refused_until_sam_delete(account: Account) -> None:
    # Given the stack is still deployed (its reconcile would put the rules back)
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    account.calls.clear()
    # When uninstall is asked to remove
    code, out, err = account.run("--yes")
    # Then it refuses as a usage error, writes nothing, and says what to run first
    assert (code, out) == (2, "")
    assert f"run `sam delete --stack-name {STACK}` first" in err.lower()
    assert account.writes() == []
    # A dry run still lists
    assert account.run("--dry-run")[0] == 0


def test_a_stack_that_cannot_be_looked_up_is_not_taken_for_deleted(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the operator may not call cloudformation:DescribeStackResources (the stack may well be deployed)
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DescribeStackResources")
    client = clients.client

    def refuse(**_: Any) -> None:
        raise denied

    def refusing(service: str, region: str | None = None) -> Any:
        made = client(service, region)  # type: ignore[call-overload]
        if service == "cloudformation":
            monkeypatch.setattr(made, "describe_stack_resources", refuse)
        return made

    monkeypatch.setattr(clients, "client", refusing)
    # When uninstall is asked to remove
    code, out, err = account.run("--yes")
    # Then it stops as AWS refused a call it cannot do without, naming the call, and removes nothing
    assert (code, out) == (2, "")
    assert "cloudformation:DescribeStackResources" in err
    assert account.writes() == []
    assert account.rules() == {"hub", "quay", "adopted", "theirs"}


def test_json_without_yes_or_dry_run_is_a_usage_error(account: Account) -> None:
    code, out, err = account.run("--json")
    assert (code, out) == (2, "")
    assert "--json needs --dry-run or --yes" in err
    assert account.writes() == []


def test_a_rule_that_cannot_be_removed_keeps_its_secret_its_repositories_and_the_ledger(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ECR refuses to delete the hub rule
    delete_rule = ptc.delete_rule

    def refuse(prefix: str, region: str | None = None) -> None:
        if prefix == "hub":
            raise AwsError("ecr:DeletePullThroughCacheRule", f"rule {prefix}", "AccessDeniedException", "denied")
        delete_rule(prefix, region)

    monkeypatch.setattr(ptc, "delete_rule", refuse)
    # When uninstall runs
    code, out, _ = account.run("--yes", "--json")
    # Then what depends on the rule is skipped, the rest removed, and the ledger kept for a second run
    status = {item["name"]: item["status"] for item in document(out)["remove"]}
    assert code == 1
    assert status == {
        "hub": "failed",
        "quay": "removed",
        "hub/library/alpine": "skipped",
        "hub/library/nginx": "skipped",
        "quay/prometheus/node-exporter": "removed",
        HUB_SECRET: "skipped",
        TABLE: "skipped",
    }
    assert account.secret_deleted(HUB_SECRET) is False
    assert account.tables() == [TABLE]
    assert ownership.owned(TABLE).rules == {"hub"}


def test_region_decides_every_call_not_only_some(account: Account) -> None:
    # Given everything lives in us-east-1 (the environment's region)
    # When the operator names another region
    code, out, _ = account.run("--dry-run", "--region", "eu-west-1")
    # Then rules, templates, repositories, secrets and the ledger are all looked for there: nothing is Pullthrough's
    assert code == 0
    assert out.splitlines()[0] == "Nothing of Pullthrough's to remove here."
    assert "hub" not in out


def test_uninstall_as_a_process(account: Account, tmp_path: Path) -> None:
    # Given the same account behind moto's server, and `pullthrough` run as a user runs it, in its own process
    from tests.integration.cli_support import moto_server, run_process

    with moto_server() as endpoint:
        # When the user lists, then confirms with --yes
        listed = run_process("uninstall", "--dry-run", "--config", str(account.config), endpoint=endpoint, cwd=tmp_path)
        removed = run_process(
            "uninstall", "--yes", "--json", "--config", str(account.config), endpoint=endpoint, cwd=tmp_path
        )
    # Then the listing is text on stdout and nothing on stderr, and the removal's document says every item went
    assert (listed.code, listed.err) == (0, "")
    assert listed.out.startswith("Pullthrough owns 8 item(s), removed in this order:\n")
    document = removed.document("uninstall")
    assert removed.code == 0, removed.err
    assert {item["status"] for item in document["remove"]} == {"removed"}
    assert account.rules() == {"adopted", "theirs"}
