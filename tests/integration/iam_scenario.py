"""One pass through everything Pullthrough's functions do in an account, with IAM recording every decision.

template.yaml is deployed into moto (sandbox.stack.Stack) with three rules on the sandbox's upstream, and each
function runs as Lambda would run it, through the template's own routes:
- a deploy (CloudFormation CREATE_COMPLETE) reconciles: rules, templates (one with tags and a lifecycle policy),
  ownership records, validation, a report, and the "rules reconciled" event;
- a consumer's pull puts one image into the cache before the planner runs, so the planner verifies what ECR holds;
- plan_warming reads the account's task definitions (an ecs source) and queues the rest; warm_images imports them
  through the ECR endpoint (one image meets a 429 storm, so the warmer asks the upstream why, with the rule's
  credentials);
- a planner run whose jobs never come back is closed and reported by the next one;
- a list of more repositories than a shard takes is planned in shards (PlanShards and its mapping's poller);
- a secret change (CloudTrail PutSecretValue) and the daily schedule check credentials;
- a staged rotation and a docker-hub-api rotation (the Hub API mints, tags and revokes tokens);
- prune (deployed with a prune section) deletes the aged, unlisted images, an index with its platform images;
- a later reconcile updates a rule's secret and a template, and deletes a rule and a template no longer configured;
- the first config has an organisation whose hub is this account and region, the later ones none: the hub's registry
  policy is written, then deleted; while it is the hub (OrganizationId), warm reports also go to its bus.
`iam.recording()` keeps every (principal, decision) of the whole pass: the test of the grants replays each request
against the role as it was when asked (the pass updates the stack between steps), with one statement or one action
taken away.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from pullthrough.aws import ecr
from pullthrough.credentials.rotation import TOKEN_ID_TAG
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from pullthrough.registry.dockerhub import HubClient
from pullthrough.warm import shards
from sandbox import Sandbox
from sandbox.aws import iam, moto_ecr
from sandbox.aws.iam import Decision, Principal
from sandbox.registries.hub_api import HubApi
from sandbox.stack import Stack
from tests.fake_aws import fake_aws

ORGANIZATION_ID = "o-a1b2c3d4e5"

ADMIN_PASSWORD = "grants-admin-password-5e4d3c"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass
class Recorded:
    """The deployed stack and every IAM decision its functions caused."""

    stack: Stack
    decisions: list[tuple[Principal, Decision]]
    failures: list[str]  # steps of the pass that raised

    def requests_of(self, function: str) -> list[iam.Authorization]:
        """What the function's role was asked (by the function, its poller, or a pull with its registry token)."""
        return [request for _, request in self.asked_of(function)]

    def asked_of(self, function: str) -> list[tuple[iam.Role, iam.Authorization]]:
        """Each request with the role as it was when asked: the pass updates the stack, and a condition (the
        organisation's) turns statements on and off between its steps."""
        role = self.stack.principal(function).role.name
        return [
            (principal.role, decision.request) for principal, decision in self.decisions if principal.role.name == role
        ]


@contextmanager
def recorded_pass(sb: Sandbox, workdir: Path) -> Iterator[Recorded]:
    """Run the whole pass (see the module's docstring) and yield what IAM decided."""
    ns = f"grants{uuid.uuid4().hex[:6]}"
    hub, ghcr, quay = f"{ns}-hub", f"{ns}-ghcr", f"{ns}-quay"
    admin, user, token = f"{ns}-admin", f"{ns}-user", f"dckr_pat_{uuid.uuid4().hex}"
    sb.add_user(user, token)
    images = {
        name: sb.push_image(f"{ns}/{name}", "1.0", layer_sizes=(512,)) for name in ("tool", "late", "ghapp", "failing")
    }
    for multi in ("app", "multi"):
        images[multi] = sb.push_image(
            f"{ns}/{multi}", "1.0", platforms=("linux/amd64", "linux/arm64"), layer_sizes=(512,)
        )
    try:
        with fake_aws(sb.region, POWERTOOLS_METRICS_NAMESPACE="Pullthrough"), _hub_api(sb, admin) as api:
            moto_ecr.install()
            sb.configure_rules()
            ecr.forget_authorization()
            _store_secrets(api, hub, ghcr, admin, user, token)
            config = workdir / "pullthrough.yaml"
            rules = _rules(hub, ghcr, quay, description="first", ghcr_secret=f"ecr-pullthroughcache/{ghcr}")
            # The first config has an organisation whose hub is this account and region: the deploy's reconcile
            # writes the hub's registry policy (PutRegistryPolicy); the later configs have none, so the next
            # reconcile removes its statements and, nothing else being in it, the policy (DeleteRegistryPolicy).
            organization = {
                "id": ORGANIZATION_ID,
                "hub": {"account": sb.account, "region": sb.region},
                "members": [{"name": "members", "accounts": ["444455556666"], "regions": ["eu-west-1"]}],
            }
            _write(config, ns, rules, ["app", "tool", "ghcr.io/{ns}/ghapp"], organization=organization)
            endpoints = {**json.loads(sb.env()["PULLTHROUGH_UPSTREAM_ENDPOINTS"]), "hub.docker.com": api.url}
            stack = Stack(
                stack_name="pullthrough-grants",
                account=sb.account,
                region=sb.region,
                # config_facts checks the member count against the organization section (README, "Organisation")
                parameters={"OrganizationId": ORGANIZATION_ID, "OrgMembers": "1", "OrgRootId": "r-ab12"},
                extra_env={
                    **sb.env(),
                    "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(endpoints),
                    "PULLTHROUGH_CONFIG": str(config),
                },
            ).deploy()
            # A task definition of the pass's family runs an image warm.images names too: the ecs source reads it
            # (ListTaskDefinitions, DescribeTaskDefinition) and the planner keeps one target for the image.
            boto3.client("ecs", region_name=sb.region).register_task_definition(
                family=f"{ns}-worker",
                containerDefinitions=[{"name": "app", "image": f"docker.io/{ns}/app:1.0", "memory": 128}],
            )
            later = _rules(hub, ghcr, None, description="second", ghcr_secret=f"ecr-pullthroughcache/{ghcr}-next")
            steps = {
                "deploy and warm": lambda: _deploy_and_warm(stack, sb, hub, ns, images),
                "stale run": lambda: _stale_run_closed(stack, config, ns, rules),
                "sharded plan": lambda: _sharded_plan(stack, config, ns, rules),
                "credentials checks": lambda: _credentials_checked(stack, f"ecr-pullthroughcache/{ghcr}"),
                "rotations": lambda: _rotations(
                    stack, sb, f"ecr-pullthroughcache/{ghcr}", f"ecr-pullthroughcache/{hub}", user, token
                ),
                "a failing import": lambda: _failing_import(stack, sb, config, ns, rules),
                "prune": lambda: _prune(stack, sb, config, ns, rules),
                "update and delete": lambda: (
                    _write(config, ns, later, ["app"]),
                    stack.parameters.update(OrgMembers="0", OrganizationId=""),
                    stack.update(),  # an edited config is deployed: the functions' IAM scopes follow it
                    stack.fire_schedule("ReconcileRulesFunction"),
                ),
            }
            failures = []
            with iam.recording() as decisions:
                for name, step in steps.items():
                    # A step that fails (say, because IAM refused a call) is reported by the test, not a crash here.
                    try:
                        step()
                    except Exception as exc:  # any failure of a step is the finding
                        failures.append(f"{name}: {type(exc).__name__}: {exc}")
            yield Recorded(stack, list(decisions), failures)
            ecr.forget_authorization()
    finally:
        sb.remove_user(user)
        sb.upstream.faults.clear()


def _hub_api(sb: Sandbox, admin: str) -> HubApi:
    return HubApi(sb, admins={admin: ADMIN_PASSWORD})


def _store_secrets(api: HubApi, hub: str, ghcr: str, admin: str, user: str, token: str) -> None:
    """The rules' secrets (the Hub one holding a token minted through Hub's API, tagged with its id), the Hub admin
    secret of docker-hub-api, and a second secret for the GHCR rule to move to."""
    first = HubClient(api.url)
    first.login(admin, ADMIN_PASSWORD)
    minted = first.create_token("first")
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(
        Name=f"ecr-pullthroughcache/{hub}",
        SecretString=json.dumps({"username": admin, "accessToken": minted.token}),
        Tags=[{"Key": TOKEN_ID_TAG, "Value": minted.id}],
    )
    admin_value = json.dumps({"username": admin, "password": ADMIN_PASSWORD})
    secrets.create_secret(Name=f"pullthrough/{hub}-admin", SecretString=admin_value)
    for name in (f"ecr-pullthroughcache/{ghcr}", f"ecr-pullthroughcache/{ghcr}-next"):
        secrets.create_secret(Name=name, SecretString=json.dumps({"username": user, "accessToken": token}))


def _rules(hub: str, ghcr: str, quay: str | None, *, description: str, ghcr_secret: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "prefix": hub,
            "upstream": "docker-hub",
            "credentials": {
                "secret": f"ecr-pullthroughcache/{hub}",
                "rotation": "docker-hub-api",
                "admin_secret": f"pullthrough/{hub}-admin",
            },
            "template": {
                "lifecycle": {"keep_last_tags": 5},
                "tags": {"team": "platform"},
                "role": "create",
                "description": description,
            },
        },
        {"prefix": ghcr, "upstream": "github-container-registry", "credentials": ghcr_secret},
    ]
    if quay is not None:
        rules.append({"prefix": quay, "upstream": "quay", "template": {"lifecycle": {"expire_untagged_days": 7}}})
    return rules


def _write(
    path: Path,
    ns: str,
    rules: list[dict[str, Any]],
    images: list[str],
    *,
    imports: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> None:
    """The pass's config: the rules, the warm images, and top-level `sections` (prune, organization) as given."""
    warm = [f"{image.format(ns=ns)}:1.0" if image.startswith("ghcr.io") else f"{ns}/{image}:1.0" for image in images]
    document = {
        "version": 1,
        "stack": "grants",
        "rules": rules,
        "warm": {
            "platforms": ["linux/amd64", "linux/arm64"],
            "images": warm,
            # The account's task definitions of this pass's family (registered in recorded_pass): plan_warming reads
            # them as its own role, which exercises ReadTaskDefinitions.
            "sources": [{"kind": "ecs", "family_prefix": f"{ns}-"}],
            **({"imports": imports} if imports else {}),
        },
        "notifications": {"success": "full"},
        **sections,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


def _deploy_and_warm(stack: Stack, sb: Sandbox, hub: str, ns: str, images: dict[str, Any]) -> None:
    with stack.bus() as forward:
        stack.put_event(
            {
                "source": "aws.cloudformation",
                "detail-type": "CloudFormation Stack Status Change",
                "resources": [stack.stack_id],
                "detail": {"stack-id": stack.stack_id, "status-details": {"status": "CREATE_COMPLETE"}},
            }
        )
        # A consumer pulls one image first (with a token got outside any function): the planner finds it cached.
        consumer = RegistryClient(sb.ecr_url, name="ecr", credentials=Credentials("AWS", sb.ecr_password))
        tool = images["tool"]
        consumer.get_manifest(f"{hub}/{ns}/tool", "1.0")
        for blob in tool.blobs[tool.digest]:
            consumer.fetch_blob(f"{hub}/{ns}/tool", blob)
        sb.registry.settle()  # ECR imports the layers the consumer pulled
        forward()  # "rules reconciled" -> plan_warming
    # One image meets a 429 storm between planning and warming: warm_images asks the upstream why.
    sb.upstream.faults.too_many_requests(retry_after=0, path=rf"^/v2/{ns}/ghapp/manifests/", times=None)
    stack.drain("WarmImagesFunction")
    sb.upstream.faults.clear()


def _failing_import(stack: Stack, sb: Sandbox, config: Path, ns: str, rules: list[dict[str, Any]]) -> None:
    # ECR fails to import an image's layers: the job looks again later (back on the queue), ECR's FAILED events are
    # recorded by report_pull_failures, and the job that gives up names what ECR reported.
    imports = {"poll": 1, "download_after": 0, "give_up_after": 2, "download": False}
    _write(config, ns, rules, ["failing"], imports=imports)
    sb.registry.imports.fail("UpstreamUnavailable")
    try:
        stack.fire_schedule("PlanWarmingFunction")
        for _ in range(2):
            stack.drain("WarmImagesFunction", max_rounds=1)  # one look: the job goes back to the queue
            for event in sb.registry.events.take():
                stack.put_event(event)
            stack.drain("ReportPullFailuresFunction")
        stack.drain("WarmImagesFunction")
    finally:
        sb.registry.imports.clear()


def _prune(stack: Stack, sb: Sandbox, config: Path, ns: str, rules: list[dict[str, Any]]) -> None:
    # A config with prune is deployed (ConfigFacts grants deletion only then); everything in the cache ages past the
    # window. tool stays (warm.images) and so does app (the pass's task definition: prune reads the ecs source as
    # its own role, which exercises its ReadTaskDefinitions); the rest goes, a multi-platform image's index read
    # first, then deleted with its platform images.
    _write(config, ns, rules, ["tool"], prune={"unused_for_days": 30, "dry_run": False})
    stack.parameters.update(OrgMembers="0", OrganizationId="")  # the config has no organization section any more
    stack.update()
    sb.registry.age(days=31)
    result = stack.fire_schedule("PruneImagesFunction")
    if not result.get("counts", {}).get("pruned"):
        raise AssertionError(f"prune deleted nothing: {result}")


def _stale_run_closed(stack: Stack, config: Path, ns: str, rules: list[dict[str, Any]]) -> None:
    # A run whose jobs never come back: its deadline passes, and the next planner closes and reports it.
    _write(config, ns, rules, ["app", "tool", "late", "ghcr.io/{ns}/ghapp"])
    lost = stack.fire_schedule("PlanWarmingFunction")["run_id"]
    boto3.client("dynamodb").update_item(
        TableName=stack.physical["LedgerTable"],
        Key={"pk": {"S": f"RUN#{lost}"}, "sk": {"S": "META"}},
        UpdateExpression="SET deadline = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    stack.fire_schedule("PlanWarmingFunction")
    stack.drain("WarmImagesFunction")


def _sharded_plan(stack: Stack, config: Path, ns: str, rules: list[dict[str, Any]]) -> None:
    # A list of more repositories than a shard takes (warm/shards.py, lowered to one repository here): plan_warming
    # sends the shards to PlanShards (QueuePlanShards), and its PlanWarmingShards mapping's poller receives them
    # (PollPlanShards) and hands each to plan_warming. multi, a multi-platform image, is warmed here for prune to
    # delete (its index read first: PruneCacheRepositories' BatchGetImage).
    _write(config, ns, rules, ["app", "tool", "multi"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards, "SHARD_REPOSITORIES", 1)
        summary = stack.fire_schedule("PlanWarmingFunction")
        stack.drain("PlanWarmingFunction")
    if not summary.get("shards"):
        raise AssertionError(f"the plan was not sharded: {summary}")
    stack.drain("WarmImagesFunction")


def _credentials_checked(stack: Stack, secret: str) -> None:
    arn = boto3.client("secretsmanager").describe_secret(SecretId=secret)["ARN"]
    stack.put_event(
        {
            "source": "aws.secretsmanager",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {
                "eventSource": "secretsmanager.amazonaws.com",
                "eventName": "PutSecretValue",
                "requestParameters": {"secretId": arn},
            },
        }
    )
    stack.fire_schedule("CheckCredentialsFunction")


def _rotations(stack: Stack, sb: Sandbox, staged: str, minted: str, user: str, token: str) -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    secrets = boto3.client("secretsmanager")
    # staged: the new value was put as AWSPENDING, then Secrets Manager runs the four steps.
    request = str(uuid.uuid4())
    arn = secrets.describe_secret(SecretId=staged)["ARN"]
    value = json.dumps({"username": user, "accessToken": token})
    secrets.put_secret_value(SecretId=arn, ClientRequestToken=request, SecretString=value, VersionStages=["AWSPENDING"])
    for step in STEPS:
        stack.invoke("RotateCredentialsFunction", {"Step": step, "SecretId": arn, "ClientRequestToken": request})
    # docker-hub-api: RotateSecret's empty AWSPENDING version (moto cannot invoke the function itself).
    arn = secrets.describe_secret(SecretId=minted)["ARN"]
    request = str(uuid.uuid4())
    secret = secretsmanager_backends[sb.account][sb.region].secrets[arn]
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[request] = {"createdate": 0, "version_id": request, "version_stages": ["AWSPENDING"]}
    for step in STEPS:
        stack.invoke("RotateCredentialsFunction", {"Step": step, "SecretId": arn, "ClientRequestToken": request})
