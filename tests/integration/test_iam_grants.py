"""Every grant of template.yaml is needed: take any statement, or any action of a statement, away from a function's
role, and something that function really does in the account is refused.

The functions run once through tests/integration/iam_scenario.py (deploy, warm, a stale run, credential checks, two
rotations, a reconcile that updates and deletes) with IAM enforced and every decision recorded; each removal is then
replayed against the recorded requests, which costs no second run. A grant nothing needs is a finding: it leaves
template.yaml, or it is listed in NOT_EXERCISED with the reason AWS needs it although this pass cannot show it.

Statements a config turns on are turned on in the pass's config: PlanWarmingFunction's ReadTaskDefinitions (an `ecs`
source; ConfigFacts grants it only then) is exercised by the pass's task definition, and its refusal is reported as
tests/integration/test_ecs_source.py shows.

Only the statements template.yaml writes are judged here. What SAM adds (AWSLambdaBasicExecutionRole, the X-Ray
policy, the dead-letter queue's sqs:SendMessage) is used by the Lambda service itself, which the sandbox does not
run; tests/template/test_security.py pins those to exactly what SAM attaches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from sandbox.aws import iam
from sandbox.aws.iam import Role, Statement
from sandbox.template import load_template
from tests.integration.iam_scenario import Recorded, recorded_pass

pytestmark = pytest.mark.sandbox

# (function, Sid) -> why AWS needs it although the recorded pass cannot exercise it.
NOT_EXERCISED: dict[tuple[str, str], str] = {
    ("WarmImagesFunction", "ReadUpstreamCredentials"): (
        "the upstream HEAD that explains a refused import where ECR gives no reason of its own; the sandbox's ECR "
        "always gives one (a failed first pull leaves a repository that BatchGetImage answers for), AWS's may not "
        "(whether a failed first pull creates the repository is not documented)"
    ),
}
# gather_reports' grants: the pass's stack is an organisation's hub (OrganizationId: its bus exists, and
# plan_warming's and warm_images' ReportToHub put their reports on it, judged above), but no member's report is
# gathered here. tests/integration/test_org_reports.py runs what they allow in moto: the cycle ledger, the member
# instances, the hub report, its queue.
_ORG_REASON = (
    "the recorded pass runs no gather_reports (no member account reports to the hub here); tests/integration/"
    "test_org_reports.py exercises it in moto"
)
NOT_EXERCISED |= {
    **{
        ("GatherReportsFunction", sid): _ORG_REASON
        for sid in ("CycleLedger", "MemberInstances", "PublishReports", "EncryptReports", "PollOrgReports")
    },
    # The hub warming its members: the pass's organisation has no member with a warm list (its StackSet is not
    # deployed here).
    ("WarmImagesFunction", "ActInMembers"): (
        "the recorded pass deploys no members' StackSet; tests/integration/test_org_warm.py assumes each member's "
        "warm role through warm_images with IAM enforced (removed, every member image fails naming the role)"
    ),
    ("PlanWarmingFunction", "MemberInstances"): (
        "members given by organisational unit only; the sandbox has no ListStackInstances (moto 5 lacks it), "
        "so tests/unit/test_org_warming.py resolves units through a stub of the instances"
    ),
}


def _template_statements() -> list[tuple[str, str, tuple[str, ...]]]:
    """(function, Sid, actions) of every statement a function's Policies spell out in template.yaml."""
    found = []
    for logical_id, resource in load_template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies") or []:
            for written in policy.get("Statement") or []:
                # A statement a condition turns on (Fn::If [condition, statement, AWS::NoValue]) is judged as on.
                statement = written["Fn::If"][1] if "Fn::If" in written else written
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                found.append((logical_id, str(statement["Sid"]), tuple(actions)))
    return found


STATEMENTS = _template_statements()
JUDGED = [(f, sid) for f, sid, _ in STATEMENTS if (f, sid) not in NOT_EXERCISED]
ACTIONS = [
    (f, sid, a) for f, sid, actions in STATEMENTS if (f, sid) not in NOT_EXERCISED and len(actions) > 1 for a in actions
]


@pytest.fixture(scope="module")
def recorded(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    with recorded_pass(sandbox, Path(tmp_path_factory.mktemp("grants"))) as found:
        yield found


def statement_of(role: Role, sid: str) -> Statement:
    (found,) = [s for s in role.statements if s.sid == sid]
    return found


def refused_without(recorded: Recorded, function: str, sid: str, action: str | None = None) -> list[str]:
    """The recorded requests of the function that its role as it was then, without that statement (or action), would
    refuse (a role without the statement at that time is judged as it was)."""
    refused = []
    for role, request in recorded.asked_of(function):
        found = [s for s in role.statements if s.sid == sid]
        without = role.without(found[0], action) if found else role
        if not iam.evaluate(without, request).allowed:
            refused.append(f"{request.action} on {request.resource} (for {request.cause})")
    return refused


def test_the_pass_ran_every_function_and_iam_refused_nothing(recorded: Recorded) -> None:
    # Given the recorded pass, Then every function with a grant it judges was evaluated (gather_reports' grants are all
    # NOT_EXERCISED, with why), and nothing was refused
    functions = {f for f, _ in JUDGED}
    assert {f for f in functions if recorded.requests_of(f)} == functions
    refused = [(p.role.logical_id, d.request) for p, d in recorded.decisions if not d.allowed]
    assert refused == []
    assert recorded.failures == []


@pytest.mark.parametrize(("function", "sid"), JUDGED, ids=[f"{f}.{sid}" for f, sid in JUDGED])
def test_each_statement_is_needed(recorded: Recorded, function: str, sid: str) -> None:
    # When the statement is taken away, Then something the function did is refused
    assert refused_without(recorded, function, sid), (
        f"{function} {sid}: nothing the recorded pass did needs it. Remove it from template.yaml (least privilege), "
        "or list it in NOT_EXERCISED with the reason AWS needs it"
    )


@pytest.mark.parametrize(("function", "sid", "action"), ACTIONS, ids=[f"{f}.{sid}.{a}" for f, sid, a in ACTIONS])
def test_each_action_of_each_statement_is_needed(recorded: Recorded, function: str, sid: str, action: str) -> None:
    # When one action is taken out of the statement, Then something the function did is refused
    assert refused_without(recorded, function, sid, action), (
        f"{function} {sid}: nothing the recorded pass did needs {action}. Remove it from template.yaml, or explain"
    )


@pytest.mark.parametrize(("function", "sid"), list(NOT_EXERCISED), ids=[f"{f}.{s}" for f, s in NOT_EXERCISED])
def test_a_grant_listed_as_not_exercised_really_is_not(recorded: Recorded, function: str, sid: str) -> None:
    # Then the listed grant is in the template and nothing recorded needs it (else it leaves NOT_EXERCISED)
    assert (function, sid) in {(f, s) for f, s, _ in STATEMENTS}, f"{function} {sid} is gone: unlist it"
    assert refused_without(recorded, function, sid) == [], f"{function} {sid} is exercised now: unlist it"


def test_the_pass_saw_the_dependent_and_data_plane_requests(recorded: Recorded) -> None:
    # Then IAM was asked for what AWS asks besides the API actions themselves: ECR's service-linked roles, a tagged
    # repository created from a template, and the registry pulls warm_images made with its token
    def asked(function: str) -> set[str]:
        return {r.action for r in recorded.requests_of(function)}

    assert {"iam:CreateServiceLinkedRole", "ecr:CreateRepository", "ecr:TagResource"} <= asked("ReconcileRulesFunction")
    pulls = {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchImportUpstreamImage", "ecr:TagResource"}
    assert pulls <= asked("WarmImagesFunction")
    kinds: Any = {r.cause.split(" ")[0] for r in recorded.requests_of("WarmImagesFunction")}
    assert "registry" in kinds
