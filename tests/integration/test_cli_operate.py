"""`pullthrough plan`, `reconcile` and `status` end to end: template.yaml in moto, the sandbox's registries.

Each test drives the command as a user would (stdout, stderr, exit code) with the environment a terminal has: the
sandbox's endpoints, the stack's ledger table (LEDGER_TABLE, as `--stack` would find it in CloudFormation), no
function role. --json output is validated against docs/cli/<command>.schema.json.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from sandbox import PushedImage, Sandbox
from tests.integration.cli_support import moto_server, recorded, run, run_process
from tests.integration.warm_support import WarmHarness, secret_of, unique

pytestmark = pytest.mark.sandbox


class Operate(WarmHarness):
    HUB, GHCR = "op-hub", "op-ghcr"
    STACK_LABEL = "operate"
    LAYERS = (700, 200)
    BUDGET_SHARE = 0.5


@pytest.fixture(scope="module")
def world(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operate]:
    with Operate.deployed(sandbox, tmp_path_factory.mktemp("operate")) as deployed_world:
        yield deployed_world


@pytest.fixture
def terminal(world: Operate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Operate:
    """A shell's environment: the sandbox's endpoints, the account, the stack's ledger table; no config file here."""
    function = world.stack.environment("ReconcileRulesFunction")
    for key, value in {
        **world.sb.env(),
        "ACCOUNT_ID": world.sb.account,
        "AWS_REGION": world.sb.region,
        "LEDGER_TABLE": function["LEDGER_TABLE"],
        "TEMPLATE_ROLE_ARN": function["TEMPLATE_ROLE_ARN"],
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PULLTHROUGH_DRY_RUN", raising=False)
    monkeypatch.chdir(tmp_path)
    return world


@pytest.fixture
def quay(terminal: Operate) -> Iterator[str]:
    """A rule prefix the test may create; afterwards neither the rule nor its ownership record is left for others."""
    from pullthrough.aws import ownership

    prefix = unique("op-quay")
    yield prefix
    with contextlib.suppress(boto3.client("ecr").exceptions.PullThroughCacheRuleNotFoundException):
        boto3.client("ecr").delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    ownership.forget(terminal.stack.environment("ReconcileRulesFunction")["LEDGER_TABLE"], ownership.Kind.RULE, prefix)


def config(world: Operate, images: list[Any], extra_rules: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
    document = world.document(images)
    document["rules"] += list(extra_rules)
    path = world.workdir / f"{unique('cli-config-')}.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def subject(image: PushedImage) -> str:
    return f"docker.io/{image.repository}:{image.tag}"


# --- plan ------------------------------------------------------------------------------------------------------------


def test_plan_shows_the_rule_to_create_and_the_image_to_warm_and_writes_nothing(quay: str, terminal: Operate) -> None:
    # Given a config with a rule ECR lacks, an image ECR does not hold, and one it holds (a run would verify it and
    # remember that in the ledger)
    image = terminal.push(unique("plan/app"))
    held = terminal.push(unique("plan/held"), platforms=("linux/amd64", "linux/arm64"))
    assert run("warm", "--config", config(terminal, [f"{held.repository}:1.0"])).code == 0
    path = config(
        terminal, [f"{image.repository}:1.0", f"{held.repository}:1.0"], [{"prefix": quay, "upstream": "quay"}]
    )
    pulls = terminal.pulls()
    # When `pullthrough plan` runs (every AWS call recorded)
    with recorded() as aws:
        ran = run("plan", "--config", path, progress=True)
    # Then it says what reconcile and warm would do, exits 1 (there is work), and wrote nothing anywhere
    assert ran.code == 1, ran.err
    assert f"create rule {quay}: Quay (quay.io)" in ran.out
    assert f"warm     {subject(image)} (1 pull(s))" in ran.out
    assert "Images: 1 to pull through ECR, 1 upstream pull(s)" in ran.out
    assert f"keep     {subject(held)}" in ran.out
    assert "To apply: pullthrough reconcile (1 rule/template change(s)); then pullthrough warm (1 image(s))" in ran.out
    assert "planning" in ran.err  # progress, on stderr only
    assert aws.calls
    assert aws.writes() == []
    assert terminal.pulls() == pulls  # HEADs only: no upstream pull was spent
    assert boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert quay not in {
        r["ecrRepositoryPrefix"]
        for r in boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
    }


def test_plan_json_matches_its_schema_and_carries_the_differences_and_costs(quay: str, terminal: Operate) -> None:
    image = terminal.push(unique("plan/json"))
    path = config(terminal, [f"{image.repository}:1.0"], [{"prefix": quay, "upstream": "quay"}])
    ran = run("plan", "--config", path, "--json")
    document = ran.document("plan")
    assert ran.err == ""
    rules = {(c["kind"], c["prefix"]): c for c in document["rules"]}
    assert rules[("rule", quay)]["action"] == "create"
    assert rules[("rule", quay)]["writes"] is True
    assert rules[("rule", Operate.HUB)]["writes"] is False  # created outside Pullthrough: reported, never touched
    (warm,) = [i for i in document["warm"]["images"] if i["subject"] == subject(image)]
    assert (warm["action"], warm["cost"], warm["digest"]) == ("warm", 1, image.digest)
    assert document["changes"] == 2
    assert document["warm"]["pulls"] == 1


def test_plan_attributes_an_image_a_source_names_to_that_source(terminal: Operate) -> None:
    # Given a config whose only image comes from a text source beside it
    image = terminal.push(unique("plan/sourced"))
    folder = terminal.workdir / unique("sourced-")
    folder.mkdir()
    (folder / "images.txt").write_text(f"{image.repository}:1.0  # deployed by the batch team\n")
    document = terminal.document([])
    document["warm"]["sources"] = [{"kind": "text", "name": "batch", "files": ["images.txt"]}]
    (folder / "pullthrough.yaml").write_text(yaml.safe_dump(document))
    path = str(folder / "pullthrough.yaml")
    # When `pullthrough plan` runs, Then the image to warm names its source, in text and in JSON
    ran = run("plan", "--config", path)
    assert f"warm     {subject(image)} [from batch] (1 pull(s))" in ran.out
    (warm,) = [i for i in run("plan", "--config", path, "--json").document("plan")["warm"]["images"]]
    assert (warm["subject"], warm["action"], warm["source"]) == (subject(image), "warm", "batch")


# --- reconcile -------------------------------------------------------------------------------------------------------


def test_reconcile_dry_run_writes_nothing_then_reconcile_creates_and_owns_the_rule(
    quay: str, terminal: Operate
) -> None:
    path = config(terminal, [], [{"prefix": quay, "upstream": "quay"}])
    # When --dry-run runs: it plans, exits 1 (drift to apply), writes nothing
    with recorded() as aws:
        dry = run("reconcile", "--dry-run", "--config", path)
    assert dry.code == 1, dry.err
    assert f"create rule {quay}" in dry.out
    assert aws.writes() == []
    # When reconcile runs: the rule is created and recorded as Pullthrough's (the ledger's OWNED item)
    with recorded() as aws:
        done = run("reconcile", "--config", path, "--json")
    document = done.document("reconcile")
    assert done.code == 0, done.out
    assert ("ecr", "CreatePullThroughCacheRule") in aws.writes()
    (change,) = [c for c in document["rules"] if c["prefix"] == quay]
    assert (change["action"], change["outcome"]) == ("create", "created")
    # Then a plan finds nothing to do for it: kept, and owned (a foreign rule would say so)
    again = run("plan", "--config", path, "--rules-only")
    assert f"keep rule {quay}" in again.out
    assert again.code == 0, again.out
    assert "Nothing to do." in again.out


def test_reconcile_refuses_to_write_without_the_ledger(terminal: Operate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_TABLE")
    path = config(terminal, [], [{"prefix": unique("op-quay"), "upstream": "quay"}])
    with recorded() as aws:
        ran = run("reconcile", "--config", path, "--stack", "no-such-stack")
    assert ran.code == 2
    assert ran.out == ""
    assert "no ledger table found" in ran.err
    assert "--stack NAME or set LEDGER_TABLE" in ran.err
    assert aws.writes() == []


# --- status ----------------------------------------------------------------------------------------------------------


def test_status_shows_rules_images_and_runs_from_the_ledger(terminal: Operate) -> None:
    # Given an image warmed by the stack's own run (twice: the second verifies it and remembers that) and one never
    warmed = terminal.push(unique("status/warm"), platforms=("linux/amd64", "linux/arm64"))
    missing = terminal.push(unique("status/miss"))
    terminal.configure([f"{warmed.repository}:1.0"])
    summary, _ = terminal.run()
    terminal.run()
    boto3.client("secretsmanager").tag_resource(
        SecretId=secret_of(Operate.HUB), Tags=[{"Key": "pullthrough:expires", "Value": "2099-01-31"}]
    )
    path = config(terminal, [f"{warmed.repository}:1.0", f"{missing.repository}:1.0"])
    # When `pullthrough status --json` runs
    with recorded() as aws:
        ran = run("status", "--config", path, "--json")
    document = ran.document("status")
    # Then it exits 1 (one image missing), wrote nothing, and says per rule, per image and per run what holds
    assert ran.code == 1
    assert aws.writes() == []
    rules = {rule["prefix"]: rule for rule in document["rules"]}
    hub = rules[Operate.HUB]
    assert (hub["in_account"], hub["valid"], hub["secret"], hub["expires"]) == (
        True,
        True,
        secret_of(Operate.HUB),
        "2099-01-31",
    )
    images = {image["subject"]: image for image in document["images"]}
    good, absent = images[subject(warmed)], images[subject(missing)]
    assert (good["ecr_digest"], good["upstream_digest"], good["current"]) == (warmed.digest, warmed.digest, True)
    assert good["pushed_at"]
    assert good["platforms_verified"] == ["linux/amd64", "linux/arm64"]
    assert (good["last_outcome"], good["last_run"]) == ("warmed", summary["run_id"])
    assert good["problems"] == []
    assert absent["ecr_digest"] is None
    assert absent["upstream_digest"] == missing.digest
    assert absent["problems"] == ["ECR does not hold it: `pullthrough warm` pulls it through"]
    assert summary["run_id"] in {r["run_id"] for r in document["runs"]}


def test_status_text_names_the_problems_and_the_rules_state(terminal: Operate) -> None:
    missing = terminal.push(unique("status/text"))
    path = config(terminal, [f"{missing.repository}:1.0"])
    ran = run("status", "--config", path)
    assert ran.code == 1
    assert f"  {Operate.HUB:<20} in ECR, valid, secret {secret_of(Operate.HUB)}" in ran.out
    assert f"  {subject(missing)}: ECR lacks it; upstream {missing.digest[:19]}" in ran.out
    assert "      ! ECR does not hold it: `pullthrough warm` pulls it through" in ran.out
    assert "problem(s) need attention." in ran.out
    assert ran.err == ""


def test_status_rules_only_is_ok_when_every_rule_is_valid(terminal: Operate) -> None:
    path = config(terminal, [])
    ran = run("status", "--config", path, "--rules-only", "--json")
    document = ran.document("status")
    assert ran.code == 0, json.dumps(document, indent=1)
    assert (document["images"], document["runs"]) == ([], [])


# --- as a process: `python -m pullthrough.cli`, AWS reached over HTTP ------------------------------------------------


@pytest.fixture
def server(terminal: Operate) -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def test_status_as_a_process(terminal: Operate, server: str, tmp_path: Path) -> None:
    image = terminal.push(unique("proc/status"))
    path = config(terminal, [f"{image.repository}:1.0"])
    ran = run_process("status", "--config", path, "--json", endpoint=server, cwd=tmp_path)
    document = ran.document("status")
    assert ran.code == 1, ran.err
    assert ran.err == ""
    (found,) = [i for i in document["images"] if i["subject"] == subject(image)]
    assert (found["ecr_digest"], found["upstream_digest"]) == (None, image.digest)


def test_plan_as_a_process(quay: str, terminal: Operate, server: str, tmp_path: Path) -> None:
    path = config(terminal, [], [{"prefix": quay, "upstream": "quay"}])
    ran = run_process("plan", "--config", path, endpoint=server, cwd=tmp_path)
    assert ran.code == 1, ran.err
    assert f"create rule {quay}: Quay (quay.io)" in ran.out
    assert ran.err == ""  # progress is for terminals; a pipe gets none
    held = boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert quay not in {rule["ecrRepositoryPrefix"] for rule in held}


def test_reconcile_as_a_process(quay: str, terminal: Operate, server: str, tmp_path: Path) -> None:
    path = config(terminal, [], [{"prefix": quay, "upstream": "quay"}])
    ran = run_process("reconcile", "--config", path, "--json", endpoint=server, cwd=tmp_path)
    document = ran.document("reconcile")
    assert ran.code == 0, ran.err
    (created,) = [c for c in document["rules"] if c["prefix"] == quay]
    assert (created["action"], created["outcome"]) == ("create", "created")
    held = boto3.client("ecr").describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert quay in {rule["ecrRepositoryPrefix"] for rule in held}


# --- warm and credentials check: their --json documents -------------------------------------------------------------


def test_warm_json_is_the_report_and_matches_its_schema(terminal: Operate) -> None:
    image = terminal.push(unique("warm/json"))
    path = config(terminal, [f"{image.repository}:1.0"])
    ran = run("warm", "--config", path, "--json")
    document = ran.document("warm")
    assert ran.code == 0, ran.err
    (item,) = document["report"]["items"]
    assert (item["subject"], item["outcome"]) == (subject(image), "warmed")


def test_credentials_check_json_matches_its_schema_and_never_holds_the_token(terminal: Operate) -> None:
    path = config(terminal, [])
    ran = run("credentials", "check", "--config", path, "--json")
    document = ran.document("credentials-check")
    assert ran.code == 0, ran.out
    assert {(r["rule"], r["valid"]) for r in document["rules"]} == {(Operate.HUB, True), (Operate.GHCR, True)}
    assert terminal.sb.users[terminal.user] not in ran.out


def test_a_moved_upstream_tag_is_a_refresh_in_the_plan_and_a_problem_in_status(terminal: Operate) -> None:
    # Given an image ECR holds, then the upstream tag moves to a new build
    name = unique("moved/app")
    old = terminal.push(name)
    path = config(terminal, [f"{name}:1.0"])
    assert run("warm", "--config", path).code == 0
    new = terminal.push(name, seed="rebuilt")
    # When plan and status run
    plan = run("plan", "--config", path)
    status = run("status", "--config", path, "--json")
    # Then plan refreshes it, naming both digests, and status says the tag moved
    assert plan.code == 1
    assert f"  refresh  docker.io/{name}:1.0 (1 pull(s)): {old.digest[:19]} -> {new.digest[:19]}" in plan.out
    (image,) = status.document("status")["images"]
    assert (image["ecr_digest"], image["upstream_digest"], image["current"]) == (old.digest, new.digest, False)
    assert image["problems"] == ["the upstream tag moved: the next warm run refreshes it"]
    assert status.code == 1
