"""The template's wiring, routed: how EventBridge, schedules, SQS event sources and Secrets Manager reach functions.

`Routing` is the part of `sandbox.stack.Stack` that reads each function's events and the template's rules, schedules
and event source mappings into `Route`s (`_route`), and delivers by them: `put_event` (EventBridge pattern matching,
sandbox/aws/eventbridge.py), `fire_schedule`, `drain` (Lambda's SQS poller: batches, partial batch responses),
`rotate` (Secrets Manager's rotation steps) and `bus` (what handlers put on the default bus, routed back).
Separate from the deployment (sandbox/stack.py) so each holds one concern.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox.aws import accounts, iam, iam_guard, moto_secrets
from sandbox.aws.deployed_functions import DeployedFunctions
from sandbox.aws.eventbridge import envelope, matches


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


class Routing(DeployedFunctions):
    """Routes read from the template, and delivery by them; the attributes below are the Stack's."""

    routes: list[Route]

    # --- reading the wiring ---------------------------------------------------------------------------------------

    def _route(self, logical_id: str, resource: dict[str, Any]) -> None:
        kind, props = resource.get("Type", ""), resource.get("Properties", {}) or {}
        if kind == "AWS::Serverless::Function":
            for name, event in (props.get("Events") or {}).items():
                self._function_event(logical_id, name, event)
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                self._rule_target(logical_id, props, target)
        elif kind == "AWS::Scheduler::Schedule":
            target = props.get("Target", {})
            function = function_of(target.get("Arn"))
            if function is not None:
                expression = self.resolve(props.get("ScheduleExpression"))
                self.routes.append(
                    Route(function, "schedule", input=target.get("Input"), name=logical_id, expression=expression)
                )
        elif kind == "AWS::Lambda::EventSourceMapping":
            function = function_of(props.get("FunctionName"))
            source = function_of(props.get("EventSourceArn"))
            if function is not None and self._kind_of(source) == "AWS::SQS::Queue":
                self._sqs_route(function, logical_id, source, props)

    def _rule_target(self, logical_id: str, props: dict[str, Any], target: dict[str, Any]) -> None:
        """One target of an AWS::Events::Rule: a function (pattern, schedule or both) or a queue a function drains."""
        function = function_of(target.get("Arn"))
        if function is None:
            return
        if "EventPattern" in props and self._kind_of(function) == "AWS::SQS::Queue":
            # A queue target: EventBridge sends the event as the message body (a function drains the queue).
            pattern = self.resolve(props["EventPattern"])
            self.routes.append(Route("", "eventbridge", pattern=pattern, queue=function, name=logical_id))
            return
        if "EventPattern" in props:
            pattern = self.resolve(props["EventPattern"])
            self.routes.append(Route(function, "eventbridge", pattern=pattern, name=logical_id))
        if "ScheduleExpression" in props:
            self.routes.append(Route(function, "schedule", input=target.get("Input"), name=logical_id))

    def _function_event(self, function: str, name: str, event: dict[str, Any]) -> None:
        kind, props = event.get("Type"), event.get("Properties", {}) or {}
        if kind in ("EventBridgeRule", "CloudWatchEvent"):
            pattern = self.resolve(props.get("Pattern", {}))
            self.routes.append(Route(function, "eventbridge", pattern=pattern, input=props.get("Input"), name=name))
        elif kind in ("Schedule", "ScheduleV2"):
            expression = self.resolve(props.get("Schedule") or props.get("ScheduleExpression"))
            self.routes.append(Route(function, "schedule", input=props.get("Input"), name=name, expression=expression))
        elif kind == "SQS":
            self._sqs_route(function, name, function_of(props.get("Queue")), props)

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

    # --- delivering -----------------------------------------------------------------------------------------------

    def targets(self, event: dict[str, Any]) -> list[Route]:
        """The routes whose EventBridge pattern matches the event."""
        bridge = [r for r in self.routes if r.kind == "eventbridge" and r.pattern is not None]
        return [r for r in bridge if r.pattern is not None and matches(r.pattern, event)]

    def put_event(self, event: dict[str, Any]) -> list[Any]:
        """Deliver an EventBridge event to every function whose rule matches it; returns their results."""
        event = {**envelope(self.account, self.region), **event}
        results = []
        for route in self.targets(event):
            payload = json.loads(route.input) if isinstance(route.input, str) else (route.input or event)
            if route.queue is not None:
                url = self.physical[route.queue]
                results.append(
                    client("sqs", self.region, self.account).send_message(QueueUrl=url, MessageBody=json.dumps(payload))
                )
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
                **envelope(self.account, self.region),
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
        sqs = client("sqs", self.region, self.account)
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
                got = self._batch(sqs, url, route.batch_size)
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

    def _batch(self, sqs: Any, url: str, size: int) -> list[dict[str, Any]]:
        """One batch as Lambda's poller gathers it: ReceiveMessage takes at most 10, a batch holds up to BatchSize.

        With a batching window the poller keeps receiving until the batch is full or the window ends; here, until the
        queue is empty. `sqs` acts in the stack's account (made outside the poller's role: the sandbox's own way into
        another account is not the poller's call).
        """
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
        events, sqs = client("events", self.region, self.account), client("sqs", self.region, self.account)
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


def client(service: str, region: str, account: str = accounts.DEFAULT_ACCOUNT) -> Any:
    """A boto3 client acting in the stack's account (sandbox/aws/accounts.py)."""
    return accounts.client(service, region, account)


def function_of(node: Any) -> str | None:
    """The logical id a `!GetAtt X.Arn` / `!Ref X` target names."""
    if isinstance(node, dict):
        if "Fn::GetAtt" in node:
            value = node["Fn::GetAtt"]
            return str(value[0] if isinstance(value, list) else value.split(".", 1)[0])
        if "Ref" in node:
            return str(node["Ref"])
    return None


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
