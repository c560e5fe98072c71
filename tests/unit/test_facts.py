"""pullthrough/facts.py: what template.yaml needs from the config, and the config_facts function's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pullthrough import config, custom_resource, facts
from pullthrough.env import ConfigFactsEnv
from pullthrough.org_facts import OrgFacts
from sandbox import lambdas

ROOT_DIR = Path(__file__).resolve().parents[2]
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:pullthrough-reports"
KEY = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"


def parse(rules: str, warm: str = "") -> config.Config:
    return config.parse(f"version: 1\nrules:\n{rules}{warm}")


def test_the_shipped_config_gives_its_prefixes_secrets_schedule_and_role_needs() -> None:
    # Given config/pullthrough.yaml
    shipped = config.load(ROOT_DIR / "config" / "pullthrough.yaml")

    # When its facts are derived
    attributes = facts.derive(shipped).attributes()
    org = {key: attributes.pop(key) for key in list(attributes) if key.startswith("Org")}

    # Then each rule's repositories, each secret (without the prefix the template writes), the warm schedule and what
    # the repository creation role serves (docker-hub's template sets tags with role: create) are there
    assert attributes == {
        "RepositoryPatterns": "docker-hub/*,ghcr/*,quay/*,k8s/*,ecr-public/*",
        "SecretNames": "docker-hub,ghcr",
        "WarmSchedule": shipped.warm.schedule,
        "TemplateRoleRepositoryPatterns": "docker-hub/*",
        "TemplateRoleKeyArns": facts.NO_KEY,
        "EcsResourcePrefix": "",
        "PruneSchedule": shipped.prune.schedule if shipped.prune else facts.DEFAULT_PRUNE_SCHEDULE,
        "PruneScheduleState": "ENABLED" if shipped.prune else "DISABLED",
        "PruneRepositoryPatterns": "docker-hub/*,ghcr/*,quay/*,k8s/*,ecr-public/*" if shipped.prune else "NONE",
    }
    # and, without an organization section, the organisation's facts are the empty ones (the StackSet is not deployed)
    assert shipped.organization is None
    assert org == OrgFacts().attributes()


def test_a_root_rule_covers_every_repository_and_keys_come_from_role_templates() -> None:
    # Given an ECR to ECR rule on ROOT and a template with role: create and its own KMS key
    parsed = parse(
        "  - {prefix: ROOT, upstream: ecr, url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com,"
        " custom_role_arn: 'arn:aws:iam::444455556666:role/r'}\n"
        "  - prefix: quay\n    upstream: quay\n"
        f"    template: {{role: create, encryption: {{type: KMS, key: '{KEY}'}}}}\n",
        "warm: {schedule: 'cron(0 3 * * ? *)'}\n",
    )

    # When derived, Then ROOT's repositories are every repository, the key is the role's, the schedule the config's
    derived = facts.derive(parsed)
    assert derived.repository_patterns == ("*", "quay/*")
    assert derived.role_repository_patterns == ("quay/*",)
    assert derived.role_key_arns == (KEY,)
    assert derived.warm_schedule == "cron(0 3 * * ? *)"
    assert derived.secret_names == ()


def test_prune_is_scheduled_only_with_a_prune_section_and_never_under_a_root_rule() -> None:
    # Given a ROOT rule and a quay rule, without and then with a prune section
    rules = (
        "  - {prefix: ROOT, upstream: ecr, url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com,"
        " custom_role_arn: 'arn:aws:iam::444455556666:role/r'}\n"
        "  - {prefix: quay, upstream: quay}\n"
    )
    without = facts.derive(parse(rules)).attributes()
    with_prune = facts.derive(parse(rules, "prune: {unused_for_days: 30, schedule: 'cron(0 4 ? * SUN *)'}\n"))

    # Then the schedule is disabled (with a valid expression) until prune is configured, then follows prune.schedule;
    # and prune's repositories leave the ROOT rule's out (they cannot be told from the account's own)
    assert (without["PruneScheduleState"], without["PruneSchedule"]) == ("DISABLED", "rate(1 day)")
    assert without["PruneRepositoryPatterns"] == "NONE"  # no prune section: no function may delete an image
    attributes = with_prune.attributes()
    assert (attributes["PruneScheduleState"], attributes["PruneSchedule"]) == ("ENABLED", "cron(0 4 ? * SUN *)")
    assert attributes["PruneRepositoryPatterns"] == "quay/*"
    only_root = rules.split("\n")[0] + "\n"
    root_pruned = facts.derive(parse(only_root, "prune: {unused_for_days: 30}\n")).attributes()
    assert root_pruned["PruneRepositoryPatterns"] == "NONE"


def test_empty_lists_name_nothing_rather_than_everything() -> None:
    # Given a config without secrets, templates or KMS keys
    attributes = facts.derive(parse("  - {prefix: quay, upstream: quay}\n")).attributes()

    # Then the lists the role's statements read stand for no repository and no key (upper case: no such name exists),
    # and no secret name joins the prefix the template writes
    assert attributes["TemplateRoleRepositoryPatterns"] == "NONE"
    assert attributes["TemplateRoleKeyArns"].endswith(":key/NONE")
    assert attributes["SecretNames"] == ""


def fifty_rules(secret_length: int) -> config.Config:
    """ECR's quota of 50 rules, each with a 30-character prefix and a secret name of `secret_length` characters."""
    rules = "".join(
        f"  - {{prefix: {'p' * 26}{n:04d}, upstream: docker-hub,"
        f" credentials: ecr-pullthroughcache/{'s' * (secret_length - 4)}{n:04d}}}\n"
        for n in range(50)
    )
    return parse(rules)


def answer_for(parsed: config.Config) -> tuple[custom_resource.Answer, bytes]:
    sent: list[bytes] = []
    event = lambdas.sample_event("config_facts", "create")
    answer = custom_resource.answer(
        event,
        lambda _: facts.derive(parsed).attributes(),
        physical_id=facts.PHYSICAL_ID,
        sender=lambda u, b: sent.append(b),
    )
    return answer, sent[0]


def test_fifty_rules_fit_cloudformations_answer() -> None:
    # Given 50 rules (ECR's quota) with the longest prefixes and secrets named like them, When answered
    answer, body = answer_for(fifty_rules(30))

    # Then the answer stays within CloudFormation's 4096 bytes
    assert answer.status == "SUCCESS", answer.reason
    assert len(body) <= custom_resource.MAX_RESPONSE_BYTES


def test_more_than_fits_fails_the_deploy_saying_so_never_truncates() -> None:
    # Given 50 rules whose secret names are long as well, When answered
    answer, body = answer_for(fifty_rules(64))

    # Then the deploy fails with the reason and what to do, rather than a truncated list (which would leave rules
    # out of the functions' IAM scope)
    assert answer.status == "FAILED"
    assert "4096" in (answer.reason or "")
    assert "split it into two stacks" in (answer.reason or "")
    assert len(body) <= custom_resource.MAX_RESPONSE_BYTES


def handle(event: dict[str, Any], path: Path) -> tuple[custom_resource.Answer, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    env = ConfigFactsEnv.from_env(
        {"PULLTHROUGH_CONFIG": str(path), "ACCOUNT_ID": "123456789012", "REPORT_TOPIC_ARN": TOPIC_ARN}
    )
    context = lambdas.LambdaContext(function_name="pullthrough-config_facts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(custom_resource, "send", lambda url, body: sent.append(json.loads(body)))
        answer = facts.handle(event, context, env)
    return custom_resource.Answer.model_validate(answer), sent


@pytest.mark.parametrize("sample", ["create", "update"])
def test_the_function_answers_create_and_update_with_the_facts(tmp_path: Path, sample: str) -> None:
    # Given the sample request and a config file
    path = tmp_path / "pullthrough.yaml"
    path.write_text("version: 1\nrules:\n  - {prefix: quay, upstream: quay}\n")
    event = lambdas.sample_event("config_facts", sample)

    # When the function answers
    answer, sent = handle(event, path)

    # Then it PUT one SUCCESS with the facts, the request's ids and the same physical id as ever
    assert sent == [answer.model_dump(by_alias=True, exclude_none=True)]
    assert answer.status == "SUCCESS"
    assert answer.data["RepositoryPatterns"] == "quay/*"
    assert (answer.stack_id, answer.request_id, answer.logical_resource_id) == (
        event["StackId"],
        event["RequestId"],
        event["LogicalResourceId"],
    )
    assert answer.physical_resource_id == facts.PHYSICAL_ID


def test_a_broken_config_is_answered_failed_with_its_problems(tmp_path: Path) -> None:
    # Given a config whose schedule and a rule are wrong (and a token pasted where it does not belong)
    path = tmp_path / "pullthrough.yaml"
    path.write_text(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay, url: dckr_pat_abcdefghijklmnopQRST}\n"
        "warm: {schedule: daily}\n"
    )

    # When the function answers a Create
    answer, sent = handle(lambdas.sample_event("config_facts", "create"), path)

    # Then the deploy fails with every problem, each naming its field and fix, never the token
    assert answer.status == "FAILED"
    assert "warm.schedule" in (answer.reason or "")
    assert "rules[0].url" in (answer.reason or "")
    assert "dckr_pat_abcdefghijklmnopQRST" not in json.dumps(sent)
    assert "Traceback" not in (answer.reason or "")


def test_a_delete_succeeds_whatever_the_config(tmp_path: Path) -> None:
    # Given no config at all, When CloudFormation deletes the resource, Then it succeeds: a stack stays deletable
    answer, sent = handle(lambdas.sample_event("config_facts", "delete"), tmp_path / "missing.yaml")
    assert answer.status == "SUCCESS"
    assert sent[0]["PhysicalResourceId"] == facts.PHYSICAL_ID


def test_an_ecs_source_opens_the_task_definition_reads_and_nothing_else_does() -> None:
    # Given a config with a no source with an ecs source
    rules = "  - {prefix: docker-hub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}\n"
    without = parse(rules)
    with_ecs = parse(rules, "warm:\n  sources:\n    - {kind: ecs, family_prefix: olake-}\n")
    # Then only the ecs source puts "*" in front of the statement's resource that names nothing
    assert facts.derive(without).attributes()["EcsResourcePrefix"] == ""
    assert facts.derive(with_ecs).attributes()["EcsResourcePrefix"] == "*,"
