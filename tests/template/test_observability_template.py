"""template.yaml's Observability section: the alarms and the dashboard watch exactly what the functions emit.

What the library emits is not restated here: a child interpreter with the template's Powertools environment
(Globals) records one report of each kind through `record_report_metrics` and flushes them as a handler's
`@metrics.log_metrics` does, and the EMF documents it prints are the truth the alarms and widgets are checked against:
namespace, metric name, and the exact dimension set with its values (CloudWatch matches a metric only on all of them).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from pullthrough.observability import METRIC_NAMES
from tests.template.cfn import REPO_ROOT, resources_of_type

REGION = "eu-west-3"
ACCOUNT = "111122223333"
STACK = "pullthrough-test"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK, "AWS::Partition": "aws"}

FUNCTION = "AWS::Serverless::Function"
QUEUE = "AWS::SQS::Queue"
ALARM = "AWS::CloudWatch::Alarm"

# The metrics AWS publishes for each service (CloudWatch user guide, "AWS services that publish CloudWatch
# metrics"), with the one dimension the template may use and the resource type that dimension must name.
AWS_NAMESPACES = {
    "AWS/Lambda": (
        {"Errors", "Duration", "Invocations", "Throttles", "ConcurrentExecutions"},
        "FunctionName",
        FUNCTION,
    ),
    "AWS/SQS": (
        {
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
            "NumberOfMessagesReceived",
            "NumberOfMessagesDeleted",
        },
        "QueueName",
        QUEUE,
    ),
}


# --- what the library emits ------------------------------------------------------------------------------------------


class Emitted(NamedTuple):
    """One metric of one EMF directive: namespace, name, and its dimensions with their values."""

    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]


# One report of each kind, every outcome present, items with and without a rule and upstream, then a flush through
# the handler decorator (run-wide metrics and ColdStart) exactly as the functions do it.
EMIT_EVERY_KIND = """
from datetime import UTC, datetime
from types import SimpleNamespace

from pullthrough.observability import metrics, record_hub_report_not_sent, record_report_metrics
from pullthrough.reporting.items import Details, ReportItem
from pullthrough.reporting.model import Report
from pullthrough.reporting.vocabulary import Kind, Outcome

def item(outcome, rule="docker-hub", upstream="docker-hub", **details):
    facts = Details(rule=rule, upstream=upstream, **details)
    return ReportItem(subject=f"{rule} {outcome.value}", outcome=outcome, details=facts)

def report(kind, *items):
    return Report(kind=kind, stack="prod", region="us-east-1", account="123456789012", run_id=f"run-{kind.value}",
                  trigger="test", started=datetime(2026, 11, 23, tzinfo=UTC), items=items)

reports = [
    report(Kind.WARM, *(item(o, bytes_moved=10, pulls_spent=1, pulls_remaining=90) for o in (
        Outcome.WARMED, Outcome.ALREADY_CACHED, Outcome.REFRESHED, Outcome.DEFERRED, Outcome.FAILED))),
    report(Kind.RULES, item(Outcome.CREATED, valid=True), item(Outcome.INVALID, rule="ghcr", upstream="ghcr")),
    report(Kind.CREDENTIALS, item(Outcome.VALID, pulls_remaining=80), item(Outcome.ROTATED, upstream=None),
           item(Outcome.ROTATION_FAILED, rule="ghcr", upstream="ghcr", valid=False)),
    report(Kind.PULLS, item(Outcome.FAILED, upstream=None)),
    report(Kind.PRUNE, item(Outcome.PRUNED, upstream=None, size=10), item(Outcome.FAILED, upstream=None)),
    report(Kind.ORG, item(Outcome.REPORTED, upstream=None), item(Outcome.MISSING, upstream=None),
           item(Outcome.FAILED)),
]

@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event, context):
    for each in reports:
        record_report_metrics(each)
    record_hub_report_not_sent()  # a member's report its hub's bus refused

handler({}, SimpleNamespace(function_name="pullthrough-test-Function"))
"""


@pytest.fixture(scope="module")
def emitted(template: dict[str, Any]) -> set[Emitted]:
    """Every metric the library emitted, as CloudWatch will store it, under the template's Powertools environment."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        assert isinstance(variables[name], str), f"Globals sets {name} to {variables[name]!r}; it must be a literal"
        env[name] = variables[name]
    result = subprocess.run(
        [sys.executable, "-c", EMIT_EVERY_KIND],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = set(emf_metrics(result.stdout))
    assert found, f"no EMF document on stdout:\n{result.stdout[-2000:]}"
    return found


def emf_metrics(stdout: str) -> Iterator[Emitted]:
    """The metrics of every EMF document (one JSON object per line with an `_aws` key) in a process's stdout."""
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, str(document[name])) for name in dimension_set)
                for metric in directive["Metrics"]:
                    yield Emitted(directive["Namespace"], metric["Name"], dimensions)


def run_wide(emitted: set[Emitted]) -> set[Emitted]:
    """The metrics with only the `service` dimension: the ones alarms and the run widgets must use."""
    return {metric for metric in emitted if {name for name, _ in metric.dimensions} == {"service"}}


# --- reading the template --------------------------------------------------------------------------------------------


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {logical_id: resource["Properties"] for logical_id, resource in resources_of_type(template, ALARM).items()}


def dimensions_of(alarm: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in alarm.get("Dimensions", [])}


def watches(alarm: dict[str, Any], namespace: str, metric: str) -> bool:
    return alarm.get("Namespace") == namespace and alarm.get("MetricName") == metric


def named_resource(template: dict[str, Any], value: Any) -> tuple[str, str]:
    """(logical id, type) of the resource an alarm dimension names with `!Ref X` or `!GetAtt X.Attr`."""
    if isinstance(value, dict) and "Ref" in value:
        logical_id = value["Ref"]
    elif isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id = value["Fn::GetAtt"][0]
    else:
        raise AssertionError(f"{value!r} names no resource of this stack: use !Ref or !GetAtt")
    return logical_id, template["Resources"][logical_id]["Type"]


def dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Logical ids of the queues some queue's RedrivePolicy sends its failures to."""
    targets = set()
    for queue in resources_of_type(template, QUEUE).values():
        redrive = queue.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            targets.add(named_resource(template, redrive["deadLetterTargetArn"])[0])
    return targets


# --- the alarms ------------------------------------------------------------------------------------------------------

# The conditions the issue asks an alarm for, each as (namespace, metric name) of what the library really emits.
REQUIRED_PULLTHROUGH_ALARMS = {
    "warm failures": "ImagesFailed",
    "rotation failed": "RotationFailed",
    "a rule invalid": "RulesInvalid",
    "credentials invalid": "CredentialsInvalid",
    "pulls failing in ECR": "PullFailures",
}


@pytest.mark.parametrize(("condition", "metric"), REQUIRED_PULLTHROUGH_ALARMS.items())
def test_each_condition_has_an_alarm_on_the_run_wide_metric(
    template: dict[str, Any], emitted: set[Emitted], condition: str, metric: str
) -> None:
    # Given the metric the library emits run-wide for the condition
    (expected,) = [m for m in run_wide(emitted) if m.name == metric]
    # When the template's alarms on it are looked up
    found = [a for a in alarms(template).values() if watches(a, expected.namespace, metric)]
    # Then one alarm watches it with exactly the emitted dimensions, and fires on the first occurrence
    assert len(found) == 1, f"{condition}: expected one alarm on {expected.namespace}/{metric}, found {len(found)}"
    (alarm,) = found
    assert dimensions_of(alarm) == dict(expected.dimensions)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_each_dead_letter_queue_has_an_alarm(template: dict[str, Any]) -> None:
    # Given the queues the queues' redrive policies send failed messages to (warm jobs, failed-pull events)
    queues = dead_letter_queues(template)
    assert {"WarmDeadLetterQueue", "FailedEventsQueue"} <= queues
    for dlq in queues:
        # Then an alarm fires as soon as one message is visible in each
        found = [
            a
            for a in alarms(template).values()
            if watches(a, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
            and dimensions_of(a) == {"QueueName": {"Fn::GetAtt": [dlq, "QueueName"]}}
        ]
        assert len(found) == 1, dlq
        assert (found[0]["ComparisonOperator"], found[0]["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_function_has_an_errors_alarm(template: dict[str, Any]) -> None:
    # Given every function of the template (reconcile_rules among them)
    functions = set(resources_of_type(template, FUNCTION))
    assert "ReconcileRulesFunction" in functions
    # When the alarms on AWS/Lambda Errors are collected by the function they name
    watched = {
        named_resource(template, dimensions_of(a)["FunctionName"])[0]
        for a in alarms(template).values()
        if watches(a, "AWS/Lambda", "Errors")
    }
    # Then each function has one, and no alarm names something else
    assert watched == functions


def test_pullthrough_alarms_watch_exactly_what_the_library_emits(
    template: dict[str, Any], emitted: set[Emitted]
) -> None:
    # Given every alarm outside the AWS namespaces
    own = {i: a for i, a in alarms(template).items() if not str(a.get("Namespace")).startswith("AWS/")}
    assert own
    for logical_id, alarm in own.items():
        # Then it watches a published metric name, in the emitted namespace, with exactly the run-wide dimensions
        assert alarm["MetricName"] in METRIC_NAMES, logical_id
        metric = Emitted(alarm["Namespace"], alarm["MetricName"], frozenset(dimensions_of(alarm).items()))
        assert metric in run_wide(emitted), f"{logical_id} watches {metric}, which the library never emits"
        # And at a period CloudWatch stores EMF metrics at (standard resolution: one minute)
        assert alarm["Period"] % 60 == 0, logical_id


def test_aws_alarms_name_a_metric_and_a_resource_of_this_stack(template: dict[str, Any]) -> None:
    for logical_id, alarm in alarms(template).items():
        namespace = alarm["Namespace"]
        if not namespace.startswith("AWS/"):
            continue
        # Given an alarm on a metric AWS publishes
        metrics, dimension, resource_type = AWS_NAMESPACES[namespace]
        # Then it is a metric of that service, with that service's one dimension naming a resource of this stack
        assert alarm["MetricName"] in metrics, logical_id
        (name,) = dimensions_of(alarm)
        assert name == dimension, logical_id
        assert named_resource(template, dimensions_of(alarm)[name])[1] == resource_type, logical_id


# Metrics that describe a standing state rather than an event of one run: every run of their kind reports them, 0
# included, so their alarms ignore missing data and stay in ALARM until a run reports the state fixed.
STATE_METRICS = {"RulesInvalid", "CredentialsInvalid"}


def test_every_alarm_notifies_the_report_topic_on_alarm_and_on_ok(template: dict[str, Any]) -> None:
    (topic,) = resources_of_type(template, "AWS::SNS::Topic")
    for logical_id, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], logical_id
        assert alarm["OKActions"] == [{"Ref": topic}], logical_id
        if alarm["MetricName"] in STATE_METRICS:
            # An invalid rule or token stays invalid between runs: only a run reporting 0 clears the alarm
            assert alarm["TreatMissingData"] == "ignore", logical_id
        else:
            # A run emits its metrics once, and an idle function none: no data is no trouble
            assert alarm["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["EvaluationPeriods"] >= 1
        assert len(alarm["AlarmDescription"].split()) >= 8, f"{logical_id}: say what fired and where to look"


def test_state_metrics_are_reported_as_zero_by_a_run_without_trouble() -> None:
    # Given a rules run and a credentials run where everything is valid
    from datetime import UTC, datetime

    from pullthrough.observability import report_metrics
    from pullthrough.reporting.items import Details, ReportItem
    from pullthrough.reporting.model import Report
    from pullthrough.reporting.vocabulary import Kind, Outcome

    def healthy(kind: Kind) -> Report:
        item = ReportItem(subject="docker-hub", outcome=Outcome.VALID, details=Details(rule="docker-hub"))
        return Report(
            kind=kind,
            stack="prod",
            region=REGION,
            account=ACCOUNT,
            run_id="run",
            trigger="test",
            started=datetime(2026, 11, 23, tzinfo=UTC),
            items=(item,),
        )

    # When their metrics are computed, Then each state metric is there as 0: that is what clears an `ignore` alarm
    reported = {
        name.value: value
        for kind in (Kind.RULES, Kind.CREDENTIALS)
        for name, value in report_metrics(healthy(kind)).items()
    }
    assert {name: reported.get(name) for name in STATE_METRICS} == dict.fromkeys(STATE_METRICS, 0)


def test_the_key_lets_cloudwatch_publish_each_alarm_to_the_encrypted_topic(template: dict[str, Any]) -> None:
    # Given the topic's key and the statement of its policy for CloudWatch
    (topic_id,) = resources_of_type(template, "AWS::SNS::Topic")
    key_id = template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    statements = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    (grant,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    # Then it grants what SNS needs from a publisher of an encrypted topic, for this account only
    assert grant["Effect"] == "Allow"
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # And each alarm's ARN, as CloudWatch presents it in aws:SourceArn, matches the ArnLike condition
    pattern = substitute(grant["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"])
    for logical_id, alarm in alarms(template).items():
        name = substitute(alarm["AlarmName"]["Fn::Sub"])
        arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
        assert fnmatch.fnmatchcase(arn, pattern), f"{logical_id}: {arn} does not match {pattern}"
        assert name.startswith(f"{STACK}-"), f"{logical_id}: name alarms after the stack, so stacks never clash"


def test_the_exact_match_rejects_near_misses(emitted: set[Emitted]) -> None:
    # Given the run-wide ImagesFailed the library emits
    (failed,) = [m for m in run_wide(emitted) if m.name == "ImagesFailed"]
    # Then an alarm missing the service dimension, with a breakdown dimension, or another service would not match:
    # CloudWatch treats each as a different metric, and so does this module's check
    near_misses = [
        failed._replace(dimensions=frozenset()),
        failed._replace(dimensions=failed.dimensions | {("Rule", "docker-hub")}),
        failed._replace(dimensions=frozenset({("service", "Pullthrough")})),
        failed._replace(namespace="pullthrough"),
    ]
    assert all(miss not in run_wide(emitted) for miss in near_misses)
    # And the breakdown the library emits too is kept out of the run-wide set the alarms must use
    assert any(m.name == "ImagesFailed" and ("Rule", "docker-hub") in m.dimensions for m in emitted)


def test_no_function_overrides_the_powertools_environment(template: dict[str, Any]) -> None:
    # The alarms' namespace and service dimension hold for every function only if none sets its own
    for logical_id, function in resources_of_type(template, FUNCTION).items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} & set(variables), logical_id


# --- the dashboard ---------------------------------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)',\s*'(?P<stat>\w+)',\s*(?P<period>\d+)\)")


def substitute(text: str) -> str:
    """A Sub string with pseudo parameters filled in, `${X}` as `ref:X` and `${X.Attr}` as `getatt:X.Attr`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in PSEUDO:
            return PSEUDO[name]
        return f"getatt:{name}" if "." in name else f"ref:{name}"

    return _SUB_VARIABLE.sub(replace, text)


def placeholder_resource(template: dict[str, Any], value: str) -> tuple[str, str]:
    """(logical id, type) of the resource a substituted `ref:X` / `getatt:X.Attr` stands for."""
    kind, _, name = value.partition(":")
    assert kind in ("ref", "getatt"), f"{value!r} is a literal: name the resource through ${{...}}"
    logical_id = name.split(".", 1)[0]
    assert logical_id in template["Resources"], f"{value!r} names no resource of the template"
    return logical_id, template["Resources"][logical_id]["Type"]


# Resources only the organisation's hub has (template.yaml: Condition GathersOrgReports) are on its own dashboard,
# which exists with them: the stack's dashboard cannot name a resource that may not exist.
ORG_CONDITION = "GathersOrgReports"


def of_the_hub(template: dict[str, Any], logical_id: str) -> bool:
    return template["Resources"][logical_id].get("Condition") == ORG_CONDITION


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    return parse_dashboard(template, "PullthroughDashboard")


@pytest.fixture(scope="module")
def org_dashboard(template: dict[str, Any]) -> dict[str, Any]:
    assert of_the_hub(template, "OrgDashboard")
    return parse_dashboard(template, "OrgDashboard")


def parse_dashboard(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource = template["Resources"][logical_id]
    body = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str), "write DashboardBody as !Sub over one JSON string"
    parsed = json.loads(substitute(body))
    assert isinstance(parsed, dict)
    return parsed


def metric_rows(dashboard: dict[str, Any]) -> Iterator[tuple[str, list[Any]]]:
    """(widget title, row) for every row of every metric widget."""
    for widget in dashboard["widgets"]:
        if widget["type"] == "metric":
            for row in widget["properties"]["metrics"]:
                yield widget["properties"]["title"], row


def test_the_dashboard_body_is_json_with_widgets_on_the_grid(dashboard: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for widget in dashboard["widgets"]:
        x, y, width, height = widget["x"], widget["y"], widget["width"], widget["height"]
        # Then each widget fits the 24-column grid and overlaps no other
        assert x >= 0, widget
        assert x + width <= 24, widget
        area = {(col, row) for col in range(x, x + width) for row in range(y, y + height)}
        assert not cells & area, f"widget overlaps another: {widget.get('properties', {}).get('title')}"
        cells |= area
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == REGION
            assert widget["properties"]["metrics"], widget["properties"]["title"]


def test_each_widget_metric_is_one_the_stack_emits(
    template: dict[str, Any], dashboard: dict[str, Any], emitted: set[Emitted]
) -> None:
    for title, row in metric_rows(dashboard):
        # Given a row: [namespace, name, dimension, value, ..., {options}], or [{expression}]
        fields = [f for f in row if not isinstance(f, dict)]
        options = [f for f in row if isinstance(f, dict)]
        if not fields:
            (expression,) = options
            assert_search_matches_the_breakdown(expression["expression"], emitted, title)
            continue
        assert "." not in fields, f"{title}: spell every row out (no '.' shorthand) so each can be checked"
        namespace, name, *pairs = fields
        dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
        if namespace in AWS_NAMESPACES:
            # Then an AWS metric is one that service publishes, for a resource of this stack of the right type
            metrics, dimension, resource_type = AWS_NAMESPACES[namespace]
            assert name in metrics, title
            assert list(dimensions) == [dimension], title
            assert placeholder_resource(template, dimensions[dimension])[1] == resource_type, title
        else:
            # And a Pullthrough metric is a published name with exactly the run-wide dimensions it is emitted with
            assert name in METRIC_NAMES, f"{title}: {name}"
            metric = Emitted(namespace, name, frozenset(dimensions.items()))
            assert metric in run_wide(emitted), f"{title}: {metric} is never emitted"


def assert_search_matches_the_breakdown(expression: str, emitted: set[Emitted], title: str) -> None:
    """A SEARCH over `{Namespace,Dim,...} MetricName="X"` finds what the library emits in its breakdown."""
    match = _SEARCH.fullmatch(expression)
    assert match, f"{title}: not a SEARCH(...) expression: {expression}"
    namespace, *dimension_names = (part.strip() for part in match["schema"].split(","))
    (name,) = re.findall(r'MetricName="([^"]+)"', match["terms"])
    assert name in METRIC_NAMES, f"{title}: {name}"
    schemas = {frozenset(n for n, _ in m.dimensions) for m in emitted if (m.namespace, m.name) == (namespace, name)}
    # A schema matches metrics with exactly these dimension names
    assert frozenset(dimension_names) in schemas, f"{title}: {match['schema']} is not how {name} is broken down"


def test_the_dashboard_shows_every_metric_the_library_publishes(dashboard: dict[str, Any]) -> None:
    shown = {row[1] for _, row in metric_rows(dashboard) if isinstance(row[0], str) and row[0] == "Pullthrough"}
    # Then images by outcome, bytes, pulls spent and remaining, rules, credentials and rotations are all there
    assert set(METRIC_NAMES) <= shown, f"not on the dashboard: {sorted(set(METRIC_NAMES) - shown)}"


def test_the_dashboard_shows_each_function_and_both_queues(
    template: dict[str, Any], dashboard: dict[str, Any], org_dashboard: dict[str, Any]
) -> None:
    shown: dict[str, set[str]] = {}
    for page, hub in ((dashboard, False), (org_dashboard, True)):
        for _, row in metric_rows(page):
            if isinstance(row[0], str) and row[0] in AWS_NAMESPACES:
                logical_id, _ = placeholder_resource(template, row[3])
                assert of_the_hub(template, logical_id) == hub, f"{logical_id} on the wrong dashboard"
                shown.setdefault(logical_id, set()).add(row[1])
    for function in resources_of_type(template, FUNCTION):
        assert {"Errors", "Duration"} <= shown.get(function, set()), function
    for queue in resources_of_type(template, QUEUE):
        assert "ApproximateNumberOfMessagesVisible" in shown.get(queue, set()), queue


def test_the_dashboard_shows_the_state_of_every_alarm(
    template: dict[str, Any], dashboard: dict[str, Any], org_dashboard: dict[str, Any]
) -> None:
    listed = []
    for page in (dashboard, org_dashboard):
        (widget,) = [w for w in page["widgets"] if w["type"] == "alarm"]
        listed += [placeholder_resource(template, arn)[0] for arn in widget["properties"]["alarms"]]
    assert sorted(listed) == sorted(alarms(template))
    # the hub's own alarms on the hub's dashboard (which exists with them), the rest on the stack's
    assert {a for a in listed if of_the_hub(template, a)} == {"GatherReportsErrorsAlarm", "OrgReportsDeadLettersAlarm"}


def test_the_outputs_give_the_dashboard_url(template: dict[str, Any]) -> None:
    dashboard_id = "PullthroughDashboard"
    assert set(resources_of_type(template, "AWS::CloudWatch::Dashboard")) == {dashboard_id, "OrgDashboard"}
    url = substitute(template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"])
    assert url == (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#dashboards:name=ref:{dashboard_id}"
    )
    # !Ref of a dashboard is its name: the stack's, so the URL opens this stack's dashboard
    name = template["Resources"][dashboard_id]["Properties"]["DashboardName"]
    assert name == {"Ref": "AWS::StackName"}
