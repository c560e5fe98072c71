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

Secrets Manager rotation: `deploy()` makes the stack's functions the Lambda functions RotateSecret may name
(sandbox/moto_secrets.py, which never lets moto run a rotation Lambda in Docker), and `rotate()` invokes the queued
rotations' steps, one call per step, as Secrets Manager does.

Custom resources (`Custom::*`, AWS::CloudFormation::CustomResource) are sent CloudFormation's Create request on
`deploy()` (sandbox/cloudformation.py serves the ResponseURL), and `Fn::GetAtt` reads their answer's Data. `update()`
is a `sam deploy` of an edited config: the config layer's version follows its content (a layer publishes a new
version whenever its content changes), so a custom resource whose properties name it gets an Update, as CloudFormation
would send; an unchanged config sends nothing.

While a function runs, every AWS call it makes is evaluated against its execution role as SAM builds it from the
template (sandbox/iam.py): a call the role does not allow fails with AWS's AccessDenied, as it would in the account.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from sandbox import cloudformation, iam, iam_guard, iam_roles, lambdas, moto_ecs, moto_secrets
from sandbox.template import REPO_ROOT, load_template

PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
LAYER_CONFIG = "/opt/pullthrough.yaml"  # where the config layer puts the document (template.yaml, Globals)
CONFIG_SOURCE = REPO_ROOT / "config" / "pullthrough.yaml"  # what `sam build` puts in the config layer


@dataclass
class Route:
    """One way an event reaches a function."""

    function: str  # logical id ("" for an EventBridge rule whose target is a queue)
    kind: str  # eventbridge | schedule | sqs
    pattern: dict[str, Any] | None = None
    queue: str | None = None  # logical id of the queue: sqs (the event source), eventbridge (the rule's target)
    batch_size: int = 10
    partial: bool = False
    max_concurrency: int | None = None  # sqs: ScalingConfig.MaximumConcurrency, when set
    input: Any = None
    name: str = ""
    expression: str | None = None  # schedule: the resolved rate() / cron() expression


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
    timeouts: dict[str, int] = field(default_factory=dict)  # a test's shorter Timeout for a function, in seconds
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)  # custom resource -> the properties it was sent
    layer_versions: dict[str, tuple[str, int]] = field(default_factory=dict)  # layer -> (content digest, version)
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
        # CloudFormation creates what a resource refers to first; a queue's dead-letter queue is the one reference
        # here that can come later in the template.
        redriving = [i for i, r in resources.items() if (r.get("Properties") or {}).get("RedrivePolicy")]
        for logical_id in [i for i in resources if i not in redriving] + redriving:
            self._create(logical_id, resources[logical_id])
        moto_secrets.install()
        moto_ecs.install()  # ListTaskDefinitions sorted and paged as AWS documents
        moto_secrets.register_functions(
            self.account, self.region, [self.physical[f"{f}.Arn"] for f in self.functions()]
        )
        for logical_id, resource in resources.items():
            if _is_custom(resource):
                self._custom_resource(logical_id, resource)
        for logical_id, resource in resources.items():
            self._route(logical_id, resource)
        return self

    def update(self) -> list[str]:
        """`sam deploy` again (e.g. after a config edit): layers whose content changed get a new version, and each
        custom resource whose resolved properties changed is sent an Update; returns those resources' ids."""
        resources = self.template.get("Resources", {})
        for logical_id, resource in resources.items():
            if resource.get("Type") == "AWS::Serverless::LayerVersion":
                self._publish_layer(logical_id, resource)
        updated = [
            logical_id
            for logical_id, resource in resources.items()
            if _is_custom(resource) and self._custom_resource(logical_id, resource)
        ]
        self.routes = []
        for logical_id, resource in resources.items():
            self._route(logical_id, resource)
        self.principals.clear()  # the roles' policies are resolved anew: their scopes follow the facts
        return updated

    def config_path(self) -> str:
        """The config document the functions read: the sandbox's PULLTHROUGH_CONFIG, else the config layer's source."""
        return self.extra_env.get("PULLTHROUGH_CONFIG") or str(CONFIG_SOURCE)

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
            self._publish_layer(logical_id, resource)
        elif _is_custom(resource):
            return  # sent its Create once every other resource exists (deploy)
        elif kind == "AWS::IAM::Role":
            # CloudFormation names a role <stack>-<logical id>-<suffix> under its Path; !GetAtt X.Arn is that ARN.
            name = f"{self.stack_name}-{logical_id}"[:64]
            path = str(self.resolve(props.get("Path", "/")))
            self.physical[logical_id] = name
            self.physical[f"{logical_id}.Arn"] = f"arn:aws:iam::{self.account}:role{path}{name}"
        else:
            self.physical.setdefault(logical_id, f"{self.stack_name}-{logical_id}")

    def _publish_layer(self, logical_id: str, resource: dict[str, Any]) -> None:
        """A layer version ARN that changes when the layer's content does, as each `sam deploy` of new content
        publishes a new version. The config layer's content is the document the functions read (config_path)."""
        content = str((resource.get("Properties") or {}).get("ContentUri", ""))
        source = Path(self.config_path()) if content.rstrip("/") == "config" else None
        # A missing document is content too: the facts function then fails the deploy saying it cannot read it.
        digest = hashlib.sha256(source.read_bytes()).hexdigest() if source and source.is_file() else ""
        known, version = self.layer_versions.get(logical_id, (digest, 0))
        version = version + 1 if version == 0 or known != digest else version
        self.layer_versions[logical_id] = (digest, version)
        self.physical[logical_id] = f"arn:aws:lambda:{self.region}:{self.account}:layer:{logical_id}:{version}"

    def _custom_resource(self, logical_id: str, resource: dict[str, Any]) -> bool:
        """Send CloudFormation's Create (first deploy) or Update (changed properties); False when nothing was sent."""
        props = self.resolve(resource.get("Properties") or {})
        old = self.custom.get(logical_id)
        if old == props:
            return False  # CloudFormation sends no request for a resource whose properties did not change
        function = _function_of((resource.get("Properties") or {}).get("ServiceToken"))
        if function is None or self._kind_of(function) != "AWS::Serverless::Function":
            raise cloudformation.DeployFailed(f"{logical_id}: ServiceToken must be a function of this template")
        with cloudformation.response_url() as (url, received):
            event = cloudformation.request(
                "Create" if old is None else "Update",
                url=url,
                stack_id=self.stack_id,
                logical_id=logical_id,
                resource_type=str(resource["Type"]),
                service_token=str(props["ServiceToken"]),
                properties=props,
                physical_id=self.physical.get(logical_id) if old is not None else None,
                old_properties=old,
            )
            self.invoke(function, event, "cloudformation")
            answer = cloudformation.read_answer(event, received)
        data = answer.get("Data") or {}
        for name in self._attributes_read(logical_id):
            if name not in data:
                raise cloudformation.DeployFailed(
                    f"{logical_id}: CustomResource attribute error: Vendor response doesn't contain {name} key"
                )
        self.physical[logical_id] = answer["PhysicalResourceId"]
        for name, value in data.items():
            self.physical[f"{logical_id}.{name}"] = value
        self.custom[logical_id] = props
        return True

    def _attributes_read(self, logical_id: str) -> set[str]:
        """Every attribute of a resource the template reads with Fn::GetAtt (or ${X.Y} in Fn::Sub)."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "Fn::GetAtt" in node:
                    value = node["Fn::GetAtt"]
                    resource, attribute = value if isinstance(value, list) else str(value).split(".", 1)
                    if resource == logical_id:
                        found.add(str(attribute))
                if "Fn::Sub" in node:
                    text = node["Fn::Sub"][0] if isinstance(node["Fn::Sub"], list) else node["Fn::Sub"]
                    found.update(re.findall(rf"\$\{{{logical_id}\.([^}}]+)\}}", str(text)))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.template.get("Resources", {}))
        walk(self.template.get("Outputs", {}))
        return found

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
                if "EventPattern" in props and self._kind_of(function) == "AWS::SQS::Queue":
                    # A queue target: EventBridge sends the event as the message body (a function drains the queue).
                    pattern = self.resolve(props["EventPattern"])
                    self.routes.append(Route("", "eventbridge", pattern=pattern, queue=function, name=logical_id))
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
                expression = self.resolve(props.get("ScheduleExpression"))
                self.routes.append(
                    Route(function, "schedule", input=_input(target), name=logical_id, expression=expression)
                )
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
            expression = self.resolve(props.get("Schedule") or props.get("ScheduleExpression"))
            self.routes.append(Route(function, "schedule", input=props.get("Input"), name=name, expression=expression))
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
                if res in self.custom and f"{res}.{attr}" not in self.physical:
                    raise cloudformation.DeployFailed(f"{res}: the custom resource's answer has no {attr}")
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
        if env.get("PULLTHROUGH_CONFIG") == LAYER_CONFIG:
            env["PULLTHROUGH_CONFIG"] = str(CONFIG_SOURCE)  # the config layer holds config/pullthrough.yaml
        env.update(self.extra_env)
        return env

    def timeout(self, function: str) -> int:
        """The function's Timeout in seconds (its own, else Globals'), or what a test set in `timeouts`."""
        if function in self.timeouts:
            return self.timeouts[function]
        own = self.template["Resources"][function]["Properties"].get("Timeout")
        glob = self.template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        return int(self.resolve(own if own is not None else glob))

    def principal(self, function: str) -> iam.Principal:
        """The session the function's code runs as: its execution role, named after the function."""
        if function not in self.principals:
            self.principals[function] = iam_roles.principal_of(self, function)
        return self.principals[function]

    def invoke(self, function: str, event: dict[str, Any], kind: str = "direct") -> Any:
        """Call a function's handler with its environment in place and its role deciding its AWS calls, as Lambda
        would, its time counting down from its Timeout."""
        self.invocations.append((function, kind))
        iam_guard.install()
        with environment_set(self.environment(function)), iam.acting_as(self.principal(function)):
            context = lambdas.LambdaContext(
                function_name=self.physical[function],
                region=self.region,
                account=self.account,
                remaining_ms=self.timeout(function) * 1000,
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
            if route.queue is not None:
                url = self.physical[route.queue]
                results.append(_client("sqs", self.region).send_message(QueueUrl=url, MessageBody=json.dumps(payload)))
                continue
            results.append(self.invoke(route.function, payload, "eventbridge"))
        return results

    def rotate(self, rotation_token: str | None = None) -> list[moto_secrets.StepOutcome]:
        """Run the rotations RotateSecret queued, as Secrets Manager invokes the rotation function: each step in
        order, stopping a rotation at the step that raised. `rotation_token` is sent as RotationToken (Secrets
        Manager sends one when the function rotates through an assumed role or across accounts)."""
        by_arn = {self.physical[f"{f}.Arn"]: f for f in self.functions()}

        def invoke(arn: str, event: dict[str, Any]) -> Any:
            return self.invoke(by_arn[arn], event, "rotation")

        return moto_secrets.run_rotations(self.account, self.region, invoke, rotation_token=rotation_token)

    def schedule_expression(self, function: str) -> str | None:
        """The rate() / cron() expression the function's schedule was deployed with."""
        route = next((r for r in self.routes if r.kind == "schedule" and r.function == function), None)
        return route.expression if route is not None else None

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
                got = self._batch(url, route.batch_size)
            if not got and self.pass_delays(route.queue):
                continue
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

    def _batch(self, url: str, size: int) -> list[dict[str, Any]]:
        """One batch as Lambda's poller gathers it: ReceiveMessage takes at most 10, a batch holds up to BatchSize.

        With a batching window the poller keeps receiving until the batch is full or the window ends; here, until the
        queue is empty.
        """
        sqs = _client("sqs", self.region)
        batch: list[dict[str, Any]] = []
        while len(batch) < size:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(size - len(batch), 10), AttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                break
            batch += got
        return batch

    def pass_delays(self, queue: str) -> int:
        """Let the delay of every delayed message of a queue pass now; returns how many there were.

        A handler may send a message with DelaySeconds (up to 15 minutes) to look at something again later; the
        sandbox lets that time pass at once for the queue (moto honours the delay in real time). Only the queue's clock
        moves: what the message carries keeps its own times.
        """
        from moto.sqs.models import sqs_backends

        name = self.physical[f"{queue}.QueueName"]
        found = sqs_backends[self.account][self.region].queues.get(name)
        if found is None:
            return 0
        delayed = [message for message in found._messages if message.delayed]
        for message in delayed:
            message.delayed_until = 0
        return len(delayed)

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


def _is_custom(resource: dict[str, Any]) -> bool:
    kind = str(resource.get("Type", ""))
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"


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
