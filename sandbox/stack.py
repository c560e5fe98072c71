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
So the sandbox exercises the template's wiring instead of re-inventing it. The Stack is built in layers, each its own
module: intrinsic functions (sandbox/aws/intrinsics.py), the functions as Lambda runs them
(sandbox/aws/deployed_functions.py), the routes and their delivery (sandbox/aws/routing.py, EventBridge patterns in
sandbox/aws/eventbridge.py); this module deploys.

Secrets Manager rotation: `deploy()` makes the stack's functions the Lambda functions RotateSecret may name
(sandbox/aws/moto_secrets.py, which never lets moto run a rotation Lambda in Docker), and `rotate()` invokes the queued
rotations' steps, one call per step, as Secrets Manager does.

Custom resources (`Custom::*`, AWS::CloudFormation::CustomResource) are sent CloudFormation's Create request on
`deploy()` (sandbox/aws/cloudformation.py serves the ResponseURL), and `Fn::GetAtt` reads their answer's Data.
`update()` is a `sam deploy` of an edited config: the config layer's version follows its content (a layer publishes a
new version whenever its content changes), so a custom resource whose properties name it gets an Update, as
CloudFormation would send; an unchanged config sends nothing.

While a function runs, every AWS call it makes is evaluated against its execution role as SAM builds it from the
template (sandbox/aws/iam.py): a call the role does not allow fails with AWS's AccessDenied, as it would in the account.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.aws import cloudformation, iam, moto_dynamodb, moto_ecs, moto_secrets
from sandbox.aws.deployed_functions import CONFIG_SOURCE, LAYER_CONFIG, environment_set
from sandbox.aws.eventbridge import matches
from sandbox.aws.intrinsics import PSEUDO
from sandbox.aws.routing import Route, Routing, client, function_of, sqs_record
from sandbox.template import load_template

# What importers of sandbox.stack use (tests, bench, the demo): the Stack's parts live in their own modules.
__all__ = [
    "CONFIG_SOURCE",
    "LAYER_CONFIG",
    "PSEUDO",
    "Route",
    "Stack",
    "environment_set",
    "matches",
    "sqs_record",
]


@dataclass
class Stack(Routing):
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
        moto_dynamodb.install()  # TransactWriteItems' rollback by item, not by copying tables
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
            arn = client("sns", self.region, self.account).create_topic(
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
        function = function_of((resource.get("Properties") or {}).get("ServiceToken"))
        if function is None or self._kind_of(function) != "AWS::Serverless::Function":
            raise cloudformation.DeployFailed(f"{logical_id}: ServiceToken must be a function of this template")
        with cloudformation.response_url() as (url, received):
            event = cloudformation.request(
                "Create" if old is None else "Update",
                cloudformation.CustomResource(logical_id, str(resource["Type"]), str(props["ServiceToken"]), props),
                url=url,
                stack_id=self.stack_id,
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
        sqs = client("sqs", self.region, self.account)
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
        ddb = client("dynamodb", self.region, self.account)
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


def _is_custom(resource: dict[str, Any]) -> bool:
    kind = str(resource.get("Type", ""))
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"
