"""Deploy template.yaml into moto, and route events to the handlers the way its wiring says.

`Stack` reads the template (sandbox/template.py), creates its stateful resources in moto (SNS topics, SQS queues with
their redrive policies, DynamoDB tables, subscriptions), resolves every function's environment from the template's own
`Environment` (Globals merged), and routes:
- `put_event(event)`: EventBridge. Every rule of the template (a function's EventBridgeRule / CloudWatchEvent events
  and AWS::Events::Rule resources targeting a function) is matched with EventBridge's pattern semantics.
- `fire_schedule(function)`: a Schedule / ScheduleV2 event or an AWS::Scheduler::Schedule targeting the function.
- `drain(function)`: the function's SQS event source (a SAM `SQS` event or an AWS::Lambda::EventSourceMapping),
  batch by batch, honouring partial batch responses, until the queue is empty (messages that fail go back; after
  maxReceiveCount moto moves them to the DLQ).
- `forward_bus()`: events the handlers put on the default bus (PutEvents) come back through `put_event`.
So the sandbox exercises the template's wiring instead of re-inventing it.

While a function runs, every AWS call it makes is evaluated against its execution role as SAM builds it from the
template (sandbox/iam.py): a call the role does not allow fails with AWS's AccessDenied, as it would in the account.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from sandbox import iam, iam_guard, iam_roles, lambdas
from sandbox.template import load_template

PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}


@dataclass
class Route:
    """One way an event reaches a function."""

    function: str  # logical id
    kind: str  # eventbridge | schedule | sqs
    pattern: dict[str, Any] | None = None
    queue: str | None = None  # logical id of the queue for sqs
    batch_size: int = 10
    partial: bool = False
    max_concurrency: int | None = None  # sqs: ScalingConfig.MaximumConcurrency, when set
    input: Any = None
    name: str = ""


@dataclass
class Stack:
    """The template deployed into moto: physical names, environments, routes."""

    stack_name: str = "pullthrough-dev"
    account: str = "123456789012"
    region: str = "us-east-1"
    parameters: dict[str, Any] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=load_template)
    physical: dict[str, str] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    invocations: list[tuple[str, str]] = field(default_factory=list)  # (function logical id, route kind)
    principals: dict[str, iam.Principal] = field(default_factory=dict)  # function logical id -> its role session

    @property
    def stack_id(self) -> str:
        """The stack's ARN, as `!Ref AWS::StackId` resolves and CloudFormation's events carry it."""
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/sandbox"

    # --- deploy ---------------------------------------------------------------------------------------------------

    def deploy(self) -> Stack:
        """Create the template's topics, queues and tables in moto and collect the routes."""
        params = {k: v.get("Default") for k, v in self.template.get("Parameters", {}).items()}
        params.update(self.parameters)
        self.parameters = params
        resources = self.template.get("Resources", {})
        for logical_id, resource in resources.items():
            self._create(logical_id, resource)
        for logical_id, resource in resources.items():
            self._route(logical_id, resource)
        return self

    def _create(self, logical_id: str, resource: dict[str, Any]) -> None:
        kind, props = resource.get("Type", ""), resource.get("Properties", {}) or {}
        if kind == "AWS::SNS::Topic":
            attributes = {}
            if "KmsMasterKeyId" in props:  # publishers then need the key too (SNS Developer Guide, "Key management")
                attributes["KmsMasterKeyId"] = str(self.resolve(props["KmsMasterKeyId"]))
            arn = _client("sns", self.region).create_topic(
                Name=f"{self.stack_name}-{logical_id}", Attributes=attributes
            )["TopicArn"]
            self.physical[logical_id] = arn
            self.physical[f"{logical_id}.TopicArn"] = arn
        elif kind == "AWS::SQS::Queue":
            self._create_queue(logical_id, props)
        elif kind == "AWS::DynamoDB::Table":
            self._create_table(logical_id, props)
        elif kind == "AWS::KMS::Key":
            arn = f"arn:aws:kms:{self.region}:{self.account}:key/sandbox-{logical_id.lower()}"
            self.physical[logical_id] = arn
            self.physical[f"{logical_id}.Arn"] = arn
        elif kind == "AWS::Serverless::Function":
            name = f"{self.stack_name}-{logical_id}"
            self.physical[logical_id] = name
            self.physical[f"{logical_id}.Arn"] = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        elif kind == "AWS::Serverless::LayerVersion":
            self.physical[logical_id] = f"arn:aws:lambda:{self.region}:{self.account}:layer:{logical_id}:1"
        else:
            self.physical.setdefault(logical_id, f"{self.stack_name}-{logical_id}")

    def _create_queue(self, logical_id: str, props: dict[str, Any]) -> None:
        sqs = _client("sqs", self.region)
        attributes: dict[str, str] = {}
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(self.resolve(props["VisibilityTimeout"]))
        redrive = props.get("RedrivePolicy")
        if redrive:
            policy = self.resolve(redrive)
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": policy["deadLetterTargetArn"], "maxReceiveCount": policy["maxReceiveCount"]}
            )
        url = sqs.create_queue(QueueName=f"{self.stack_name}-{logical_id}", Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.physical[logical_id] = url
        self.physical[f"{logical_id}.Arn"] = arn
        self.physical[f"{logical_id}.QueueUrl"] = url
        self.physical[f"{logical_id}.QueueName"] = url.rsplit("/", 1)[-1]

    def _create_table(self, logical_id: str, props: dict[str, Any]) -> None:
        ddb = _client("dynamodb", self.region)
        name = f"{self.stack_name}-{logical_id}"
        ddb.create_table(
            TableName=name,
            KeySchema=self.resolve(props["KeySchema"]),
            AttributeDefinitions=self.resolve(props["AttributeDefinitions"]),
            BillingMode="PAY_PER_REQUEST",
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=self.resolve(ttl))
        self.physical[logical_id] = name
        self.physical[f"{logical_id}.Arn"] = f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"

    def _route(self, logical_id: str, resource: dict[str, Any]) -> None:
        kind, props = resource.get("Type", ""), resource.get("Properties", {}) or {}
        if kind == "AWS::Serverless::Function":
            for name, event in (props.get("Events") or {}).items():
                self._function_event(logical_id, name, event)
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                function = _function_of(target.get("Arn"))
                if function is None:
                    continue
                if "EventPattern" in props:
                    pattern = self.resolve(props["EventPattern"])
                    self.routes.append(Route(function, "eventbridge", pattern=pattern, name=logical_id))
                if "ScheduleExpression" in props:
                    self.routes.append(Route(function, "schedule", input=_input(target), name=logical_id))
        elif kind == "AWS::Scheduler::Schedule":
            target = props.get("Target", {})
            function = _function_of(target.get("Arn"))
            if function is not None:
                self.routes.append(Route(function, "schedule", input=_input(target), name=logical_id))
        elif kind == "AWS::Lambda::EventSourceMapping":
            function = _function_of(props.get("FunctionName"))
            source = _function_of(props.get("EventSourceArn"))
            if function is not None and self._kind_of(source) == "AWS::SQS::Queue":
                self._sqs_route(function, logical_id, source, props)

    def _function_event(self, function: str, name: str, event: dict[str, Any]) -> None:
        kind, props = event.get("Type"), event.get("Properties", {}) or {}
        if kind in ("EventBridgeRule", "CloudWatchEvent"):
            pattern = self.resolve(props.get("Pattern", {}))
            self.routes.append(Route(function, "eventbridge", pattern=pattern, input=props.get("Input"), name=name))
        elif kind in ("Schedule", "ScheduleV2"):
            self.routes.append(Route(function, "schedule", input=props.get("Input"), name=name))
        elif kind == "SQS":
            self._sqs_route(function, name, _function_of(props.get("Queue")), props)

    def _sqs_route(self, function: str, name: str, queue: str | None, props: dict[str, Any]) -> None:
        """A SAM `SQS` event or an AWS::Lambda::EventSourceMapping on a queue (their properties share names)."""
        partial = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        batch = int(self.resolve(props.get("BatchSize", 10)))
        maximum = (props.get("ScalingConfig") or {}).get("MaximumConcurrency")
        concurrency = int(self.resolve(maximum)) if maximum is not None else None
        self.routes.append(
            Route(
                function,
                "sqs",
                queue=queue,
                batch_size=batch,
                partial=partial,
                max_concurrency=concurrency,
                name=name,
            )
        )

    def _kind_of(self, logical_id: str | None) -> str | None:
        resource = self.template.get("Resources", {}).get(logical_id) if logical_id else None
        return resource.get("Type") if isinstance(resource, dict) else None

    # --- intrinsic functions ----------------------------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """Evaluate Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::If, Fn::Select, Fn::Split against this deployment."""
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Fn::GetAtt":
                res, attr = value if isinstance(value, list) else value.split(".", 1)
                return self.physical.get(f"{res}.{attr}", f"{self.physical.get(res, res)}")
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Join":
                sep, items = value
                return sep.join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = self.resolve(value)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(value)
                return text.split(sep)
            if key == "Fn::If":
                condition, yes, no = value
                return self.resolve(yes if self.condition(condition) else no)
        return {k: self.resolve(v) for k, v in node.items()}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.get("Conditions", {})[name]))

    def _evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(self._evaluate(v)) for v in value)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self._evaluate(value[0])
            if key == "Fn::And":
                return all(self._evaluate(v) for v in value)
            if key == "Fn::Or":
                return any(self._evaluate(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        return self.resolve(node)

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::StackId": self.stack_id,
            **PSEUDO,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            declared = self.template.get("Parameters", {}).get(name, {})
            if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [v.strip() for v in value.split(",")]
            return value
        return self.physical.get(name, name)

    def _sub(self, value: Any) -> str:
        text, variables = (value[0], self.resolve(value[1])) if isinstance(value, list) else (value, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # --- functions ------------------------------------------------------------------------------------------------

    def functions(self) -> dict[str, str]:
        """Logical id -> the functions/ directory its CodeUri names."""
        out = {}
        for logical_id, resource in self.template.get("Resources", {}).items():
            if resource.get("Type") == "AWS::Serverless::Function":
                code = str(resource["Properties"].get("CodeUri", "")).rstrip("/")
                out[logical_id] = code.rsplit("/", 1)[-1]
        return out

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment as Lambda would set it (Globals merged, intrinsics resolved)."""
        glob = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        env = {k: self.resolve(v) for k, v in {**glob, **own}.items()}
        env = {k: str(v) for k, v in env.items() if v is not None}
        env.update(AWS_REGION=self.region, AWS_LAMBDA_FUNCTION_NAME=self.physical[function])
        env.update(self.extra_env)
        return env

    def principal(self, function: str) -> iam.Principal:
        """The session the function's code runs as: its execution role, named after the function."""
        if function not in self.principals:
            self.principals[function] = iam_roles.principal_of(self, function)
        return self.principals[function]

    def invoke(self, function: str, event: dict[str, Any], kind: str = "direct") -> Any:
        """Call a function's handler with its environment in place and its role deciding its AWS calls, as Lambda
        would."""
        self.invocations.append((function, kind))
        iam_guard.install()
        with environment_set(self.environment(function)), iam.acting_as(self.principal(function)):
            context = lambdas.LambdaContext(
                function_name=self.physical[function], region=self.region, account=self.account
            )
            return lambdas.invoke(self.functions()[function], event, context)

    # --- routing --------------------------------------------------------------------------------------------------

    def targets(self, event: dict[str, Any]) -> list[Route]:
        """The routes whose EventBridge pattern matches the event."""
        bridge = [r for r in self.routes if r.kind == "eventbridge" and r.pattern is not None]
        return [r for r in bridge if r.pattern is not None and matches(r.pattern, event)]

    def put_event(self, event: dict[str, Any]) -> list[Any]:
        """Deliver an EventBridge event to every function whose rule matches it; returns their results."""
        event = {**_envelope(self.account, self.region), **event}
        results = []
        for route in self.targets(event):
            payload = json.loads(route.input) if isinstance(route.input, str) else (route.input or event)
            results.append(self.invoke(route.function, payload, "eventbridge"))
        return results

    def fire_schedule(self, function: str) -> Any:
        """Fire the function's schedule as EventBridge Scheduler or a schedule rule would."""
        route = next((r for r in self.routes if r.kind == "schedule" and r.function == function), None)
        if route is None:
            raise LookupError(f"{function} has no schedule in template.yaml")
        if route.input is not None:
            resolved = self.resolve(route.input)
            payload = json.loads(resolved) if isinstance(resolved, str) else resolved
        else:
            payload = {
                **_envelope(self.account, self.region),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "resources": [f"arn:aws:events:{self.region}:{self.account}:rule/{route.name}"],
                "detail": {},
            }
        return self.invoke(function, payload, "schedule")

    def drain(self, function: str, max_rounds: int = 10_000) -> int:
        """Feed the function's SQS queue to it batch by batch until empty; returns the messages processed."""
        route = next((r for r in self.routes if r.kind == "sqs" and r.function == function), None)
        if route is None or route.queue is None:
            raise LookupError(f"{function} has no SQS event source in template.yaml")
        sqs = _client("sqs", self.region)
        url = self.physical[route.queue]
        arn = self.physical[f"{route.queue}.Arn"]
        # Lambda's poller reads, receives and deletes with the function's execution role (Lambda Developer Guide,
        # "Using Lambda with Amazon SQS": execution role permissions); the sandbox's own shortcut (making a failed
        # message visible again at once) is not the poller's, and is not evaluated.
        iam_guard.install()
        poller = self.principal(function)
        with iam.acting_as(poller):
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
        processed = 0
        for _ in range(max_rounds):
            with iam.acting_as(poller):
                got = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=min(route.batch_size, 10), AttributeNames=["All"]
                ).get("Messages", [])
            if not got:
                return processed
            event = {"Records": [sqs_record(m, arn, self.region) for m in got]}
            result = self.invoke(function, event, "sqs") or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])} if route.partial else set()
            for message in got:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    with iam.acting_as(poller):
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    processed += 1
        return processed

    @contextmanager
    def bus(self) -> Iterator[Callable[[], int]]:
        """Capture the events handlers put on the default bus; the yielded callable routes what arrived."""
        events, sqs = _client("events", self.region), _client("sqs", self.region)
        url = sqs.create_queue(QueueName=f"{self.stack_name}-sandbox-bus")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule = f"{self.stack_name}-sandbox-bus"
        events.put_rule(Name=rule, EventPattern=json.dumps({"account": [self.account]}))
        events.put_targets(Rule=rule, Targets=[{"Id": "bus", "Arn": arn}])

        def forward() -> int:
            count = 0
            while True:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    return count
                for message in got:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    self.put_event(json.loads(message["Body"]))
                    count += 1

        try:
            yield forward
        finally:
            events.remove_targets(Rule=rule, Ids=["bus"])
            events.delete_rule(Name=rule)


# --- EventBridge pattern matching ---------------------------------------------------------------------------------


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge event pattern semantics: every key must match; a list is a set of alternatives."""
    for key, expected in pattern.items():
        present = key in event
        actual = event.get(key)
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if not _any_value(expected, actual, present):
                return False
        elif actual != expected:
            return False
    return True


def _any_value(alternatives: list[Any], actual: Any, present: bool) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    for alt in alternatives:
        if isinstance(alt, dict):
            if "exists" in alt:
                if bool(alt["exists"]) == present:
                    return True
                continue
            if present and any(_filter(alt, v) for v in values):
                return True
        elif present and alt in values:
            return True
    return False


def _filter(rule: dict[str, Any], value: Any) -> bool:
    (name, arg), *_ = rule.items()
    text = value if isinstance(value, str) else None
    if name == "prefix":
        if isinstance(arg, dict):
            return text is not None and text.lower().startswith(str(arg["equals-ignore-case"]).lower())
        return text is not None and text.startswith(arg)
    if name == "suffix":
        return text is not None and text.endswith(arg)
    if name == "equals-ignore-case":
        return text is not None and text.lower() == str(arg).lower()
    if name == "wildcard":
        return text is not None and re.fullmatch(".*".join(re.escape(p) for p in str(arg).split("*")), text) is not None
    if name == "anything-but":
        if isinstance(arg, dict):
            return not _filter(arg, value)
        return value not in (arg if isinstance(arg, list) else [arg])
    raise ValueError(f"event pattern filter {name!r} is not supported by the sandbox router")


# --- small pieces ---------------------------------------------------------------------------------------------------


def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _function_of(node: Any) -> str | None:
    """The logical id a `!GetAtt X.Arn` / `!Ref X` target names."""
    if isinstance(node, dict):
        if "Fn::GetAtt" in node:
            value = node["Fn::GetAtt"]
            return str(value[0] if isinstance(value, list) else value.split(".", 1)[0])
        if "Ref" in node:
            return str(node["Ref"])
    return None


def _input(target: dict[str, Any]) -> Any:
    return target.get("Input")


def _envelope(account: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": os.urandom(16).hex(),
        "account": account,
        "region": region,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [],
    }


def sqs_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """An SQS message as the Lambda event source hands it over (the shape of events/warm_images/batch.json)."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


@contextmanager
def environment_set(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block, what was there before restored after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
