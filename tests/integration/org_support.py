"""What the organisation's integration tests share: the hub's bus as template.yaml declares it (the sandbox's
CloudFormation creates no buses), and what the hub's report topic was sent (moto's SNS backend keeps it)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto.sns.models import sns_backends

from sandbox.stack import Stack


def hub_bus(stack: Stack, events: Any = None) -> str:
    """Create the hub's OrgReportBus with its policy and OrgReportsRule targeting OrgReportsQueue (with `events`, a
    client in the stack's account; moto's default account's by default); the bus name."""
    bus = stack.template["Resources"]["OrgReportBus"]["Properties"]
    name = str(stack.resolve(bus["Name"]))
    events = events or boto3.client("events", region_name=stack.region)
    events.create_event_bus(Name=name)
    events.put_permission(EventBusName=name, Policy=json.dumps(stack.resolve(bus["Policy"])))
    rule = stack.template["Resources"]["OrgReportsRule"]["Properties"]
    events.put_rule(Name="org-reports", EventBusName=name, EventPattern=json.dumps(rule["EventPattern"]))
    target = {"Id": "org-reports", "Arn": stack.physical["OrgReportsQueue.Arn"]}
    events.put_targets(Rule="org-reports", EventBusName=name, Targets=[target])
    return name


def moto_sns_messages(topic_arn: str) -> list[tuple[str, str]]:
    """(subject, body) of what moto's SNS backend kept of the messages published to the topic (FACTS.md)."""
    account, region = topic_arn.split(":")[4], topic_arn.split(":")[3]
    topic = sns_backends[account][region].topics[topic_arn]
    return [(subject or "", body) for _, body, subject, _, _ in topic.sent_notifications]
